/**
 * Issue 5.4: 2,000 seeded mutations of valid CSR DER through the parse +
 * policy path, in-process (checkCsr, then templateFromCsr with a name
 * policy). Each either yields a template, and then its signature verifies
 * for openssl too, or fails with a PkiError: never another exception type,
 * never a template from an invalid signature.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkCsr } from "../../src/ca/csr.js";
import { parseCsr } from "../../src/core/parse.js";
import { templateFromCsr, validateNamePolicy } from "../../src/core/csr-policy.js";
import * as der from "../../src/core/der.js";
import { PkiError } from "../../src/core/errors.js";
import type { Profile } from "../../src/core/profiles.js";
import { CaDir } from "../../src/store/ca-dir.js";
import { openssl, tmpdir } from "../helpers.js";
import { prng } from "../hardening-helpers.js";

const MUTATIONS = 2000;

let seeds: Buffer[] = [];
/** each seed's key, to re-sign a mutated request (a hostile but validly signed CSR) */
let keys: crypto.KeyObject[] = [];
let profiles: Profile[] = [];
const policy = validateNamePolicy({
  "*": { dns: ["*.example.lan", "example.lan"], ip: ["10.0.0.0/8", "fd00::/8"], email: ["example.lan"], uri: ["spiffe://example.lan/"] },
});

beforeAll(() => {
  const dir = tmpdir("pki-fuzz-");
  const make = (name: string, alg: string[], subj: string, exts: string[]) => {
    const csr = path.join(dir, `${name}.der`);
    const r = openssl(["req", "-new", ...alg, "-nodes", "-keyout", path.join(dir, `${name}.key`), "-outform", "DER", "-out", csr, "-subj", subj, ...exts.flatMap((e) => ["-addext", e])]);
    if (r.code !== 0) throw new Error(r.stderr);
    keys.push(crypto.createPrivateKey(fs.readFileSync(path.join(dir, `${name}.key`))));
    return fs.readFileSync(csr);
  };
  seeds = [
    make("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "/O=Acme/CN=a1.example.lan", [
      "subjectAltName=DNS:a1.example.lan,IP:10.1.2.3,email:ops@example.lan",
      "keyUsage=digitalSignature",
      "basicConstraints=CA:FALSE",
    ]),
    make("rsa", ["-newkey", "rsa:2048"], "/CN=web.example.lan", ["subjectAltName=DNS:web.example.lan,URI:spiffe://example.lan/web"]),
    make("ed", ["-newkey", "ed25519"], "/CN=alice", ["subjectAltName=email:alice@example.lan"]),
    make("p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], "/CN=b.example.lan", []),
  ];
  const all = new CaDir(dir).loadProfiles();
  profiles = ["ssl", "client", "code-signing", "server"].map((n) => all.get(n)!);
});

/** Offsets of every DER node (to mutate length octets where they are). */
function nodes(buf: Uint8Array): der.Node[] {
  const out: der.Node[] = [];
  const walk = (n: der.Node) => {
    out.push(n);
    if (n.tag & 0x20) {
      try {
        for (const c of der.children(buf, n)) walk(c);
      } catch {
        /* a primitive that looks constructed */
      }
    }
  };
  try {
    walk(der.read(buf));
  } catch {
    /* an already mutated buffer: whatever was found */
  }
  return out;
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

type Mutation = (b: Buffer, rnd: () => number) => Buffer;
const pick = (n: number, rnd: () => number) => Math.floor(rnd() * n);

const MUTATORS: Record<string, Mutation> = {
  bitFlips(b, rnd) {
    const out = Buffer.from(b);
    for (let k = 1 + pick(3, rnd); k > 0; k--) {
      const i = pick(out.length, rnd);
      out[i] = out[i]! ^ (1 << pick(8, rnd));
    }
    return out;
  },
  truncate(b, rnd) {
    return b.subarray(0, pick(b.length, rnd));
  },
  lengthChange(b, rnd) {
    const ns = nodes(b);
    if (!ns.length) return MUTATORS.bitFlips!(b, rnd);
    const n = ns[pick(ns.length, rnd)]!;
    const out = Buffer.from(b);
    const lenAt = n.start + 1; // first length octet (tags here are one octet)
    const choice = pick(4, rnd);
    if (choice === 0) out[lenAt] = (out[lenAt]! + 1 + pick(3, rnd)) & 0xff;
    else if (choice === 1) out[lenAt] = (out[lenAt]! - 1 - pick(3, rnd)) & 0xff;
    else if (choice === 2) out[lenAt] = [0x80, 0x84, 0x85, 0xff, 0x00][pick(5, rnd)]!;
    else out[n.contentStart - 1] = pick(256, rnd); // last length octet, any value
    return out;
  },
  insertBytes(b, rnd) {
    const at = pick(b.length + 1, rnd);
    const ins = Buffer.from(Array.from({ length: 1 + pick(8, rnd) }, () => pick(256, rnd)));
    return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
  },
  deleteBytes(b, rnd) {
    const at = pick(b.length, rnd);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(8, rnd))]);
  },
  /** flip a bit inside a name (subject strings, SAN entries): what a hostile requester would tamper with */
  stringFlip(b, rnd) {
    const ns = nodes(b).filter((n) => [0x0c, 0x13, 0x16, 0x81, 0x82, 0x86].includes(n.tag) && n.end > n.contentStart);
    if (!ns.length) return MUTATORS.bitFlips!(b, rnd);
    const n = ns[pick(ns.length, rnd)]!;
    const out = Buffer.from(b);
    const i = n.contentStart + pick(n.end - n.contentStart, rnd);
    out[i] = out[i]! ^ (1 << pick(8, rnd));
    return out;
  },
  /** a node's contents change size (a byte more or less) and every enclosing length follows: structure stays parseable, meaning changes */
  resizeNode(b, rnd) {
    const ns = nodes(b).filter((n) => !(n.tag & 0x20));
    if (!ns.length) return MUTATORS.bitFlips!(b, rnd);
    const target = ns[pick(ns.length, rnd)]!;
    const grow = rnd() < 0.5 || target.end === target.contentStart;
    const encode = (n: der.Node): Buffer => {
      if (n.start === target.start && n.end === target.end && n.tag === target.tag) {
        const c = Buffer.from(der.content(b, n));
        return tlv(n.tag, grow ? Buffer.concat([c, Buffer.from([pick(256, rnd)])]) : c.subarray(0, c.length - 1));
      }
      if (n.tag & 0x20 && n.start <= target.start && target.end <= n.end) return tlv(n.tag, Buffer.concat(der.children(b, n).map(encode)));
      return Buffer.from(der.raw(b, n));
    };
    return encode(der.read(b));
  },
};

const DIGEST: Record<string, string | null> = { "1.2.840.10045.4.3.2": "sha256", "1.2.840.10045.4.3.3": "sha384", "1.2.840.113549.1.1.11": "sha256", "1.3.101.112": null };

/** Mutate the signed part (certificationRequestInfo) and sign it again with the request's own key. */
function mutateAndResign(seedIndex: number, how: Mutation, rnd: () => number): Buffer {
  const seed = seeds[seedIndex]!;
  const p = parseCsr(seed);
  const info = how(Buffer.from(p.info), rnd);
  const sig = crypto.sign(DIGEST[p.signatureAlgorithm]!, info, keys[seedIndex]!);
  return tlv(0x30, Buffer.concat([info, Buffer.from(p.signatureAlgorithmRaw), tlv(0x03, Buffer.concat([Buffer.from([0]), sig]))]));
}

describe("CSR fuzzing: parse + policy path", () => {
  it("the unmutated seeds pass (the fuzzer starts from valid requests)", () => {
    for (const s of seeds) {
      const c = checkCsr(s, "seed");
      expect(templateFromCsr(c.csr, profiles[0]!, {}, policy).subject.length).toBeGreaterThan(0);
    }
  });

  it(`${MUTATIONS} mutations: a template only from a verified signature, else a PkiError`, () => {
    const rnd = prng(20240605);
    const names = Object.keys(MUTATORS);
    const outcomes: Record<string, number> = {};
    const accepted: Array<{ how: string; der: Buffer }> = [];
    for (let i = 0; i < MUTATIONS; i++) {
      const seed = seeds[i % seeds.length]!;
      let how = names[i % names.length]!;
      let m: Buffer;
      if (i % 4 === 3) {
        // a quarter: the signed part mutated and signed again, so that parsing and policy see hostile but signed content
        how = names[pick(names.length, rnd)]!;
        m = mutateAndResign(i % seeds.length, MUTATORS[how]!, rnd);
        how = `resigned ${how}`;
      } else {
        m = MUTATORS[how]!(seed, rnd);
        if (rnd() < 0.2) m = MUTATORS[names[pick(names.length, rnd)]!]!(m, rnd); // sometimes two mutations
      }
      if (m.equals(seed)) continue;
      try {
        const checked = checkCsr(m, "fuzz");
        const t = templateFromCsr(checked.csr, profiles[i % profiles.length]!, {}, policy);
        expect(Array.isArray(t.sans)).toBe(true);
        accepted.push({ how, der: m });
        outcomes.accepted = (outcomes.accepted ?? 0) + 1;
      } catch (e) {
        if (!(e instanceof PkiError)) {
          throw new Error(`mutation ${i} (${how}) of seed ${i % seeds.length} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${m.toString("hex")}`);
        }
        outcomes[e.code] = (outcomes[e.code] ?? 0) + 1;
      }
    }
    // whatever we accepted, openssl agrees that its self-signature verifies
    for (const a of accepted) {
      const r = openssl(["req", "-inform", "DER", "-noout", "-verify"], { input: a.der });
      expect(r.stdout + r.stderr, `accepted ${a.how} mutation ${a.der.toString("hex")}`).toMatch(/verify OK/);
    }
    console.log(`CSR fuzz: ${JSON.stringify(outcomes)}`);
    expect(Object.values(outcomes).reduce((x, y) => x + y, 0)).toBeGreaterThan(MUTATIONS * 0.95);
    // the mutations reach past the first parse: signature and policy checks refuse some too
    expect(outcomes.BAD_CSR_SIGNATURE ?? 0).toBeGreaterThan(0);
    expect(outcomes.POLICY_DENIED ?? 0).toBeGreaterThan(0);
    expect(accepted.length, "some re-signed mutants pass: the openssl cross-check is not vacuous").toBeGreaterThan(0);
    // and nothing whose signature was broken got through: every accepted mutant was re-signed
    expect(accepted.every((a) => a.how.startsWith("resigned"))).toBe(true);
  });
});

describe("what the fuzzer found (kept as plain regressions)", () => {
  it("an OID whose last octet continues (0x80 bit set) is malformed, not the OID without its tail", () => {
    const oid = Buffer.from("06092a864886f70d01010b", "hex"); // sha256WithRSAEncryption
    expect(der.readOid(oid, der.read(oid))).toBe("1.2.840.113549.1.1.11");
    const tail = Buffer.from("060a2a864886f70d01010b88", "hex");
    expect(() => der.readOid(tail, der.read(tail))).toThrow(der.DerError);
    const padded = Buffer.from("060a2a80864886f70d01010b", "hex");
    expect(() => der.readOid(padded, der.read(padded))).toThrow(der.DerError);
  });

  it("signature algorithm parameters outside the signed part must be canonical (openssl refuses the others)", () => {
    const seed = seeds[1]!; // RSA: NULL parameters
    const p = parseCsr(seed);
    const algOid = der.raw(p.signatureAlgorithmRaw, der.children(p.signatureAlgorithmRaw, der.read(p.signatureAlgorithmRaw))[0]!);
    const withAlg = (alg: Buffer) => tlv(0x30, Buffer.concat([Buffer.from(p.info), alg, tlv(0x03, Buffer.concat([Buffer.from([0]), Buffer.from(p.signature)]))]));
    expect(checkCsr(withAlg(tlv(0x30, Buffer.concat([Buffer.from(algOid), Buffer.from([0x05, 0x00])]))), "ok").keyKind).toBe("rsa");
    expect(checkCsr(withAlg(tlv(0x30, Buffer.from(algOid))), "absent").keyKind).toBe("rsa");
    const bad = withAlg(tlv(0x30, Buffer.concat([Buffer.from(algOid), Buffer.from([0x05, 0x01, 0x88])])));
    expect(openssl(["req", "-inform", "DER", "-noout", "-verify"], { input: bad }).code).not.toBe(0);
    expect(() => checkCsr(bad, "bad")).toThrow(/malformed signature algorithm/);
  });
});
