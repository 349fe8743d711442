/**
 * OCSP requests and responses (src/core/ocsp.ts), judged by the real
 * `openssl ocsp`: requests made by openssl (-reqout), answers built by our
 * code (in process, through the same OcspService that `pki serve` uses),
 * verified by openssl (-respin with -CAfile: the delegated responder must
 * chain to the CA and carry OCSPSigning).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { errorResponse, OcspMalformed, parseOcspRequest, readOcspResponse } from "../../src/core/ocsp.js";
import { ServeState } from "../../src/serve/state.js";
import { OcspService } from "../../src/serve/server.js";
import { DirStore } from "../../src/store/dir-store.js";
import { issueResponder } from "../../src/serve/responder.js";
import { json, makeCa, openssl, PASSPHRASE } from "../helpers.js";

let ca: ReturnType<typeof makeCa>;
let other: ReturnType<typeof makeCa>;
let state: ServeState;
let service: OcspService;
const serials: Record<string, string> = {};
const caCrt = () => path.join(ca.dir, "ca.crt");

function request(args: string[], name = "req.der"): Buffer {
  const out = path.join(ca.root, name);
  const r = openssl(["ocsp", "-issuer", caCrt(), ...args, "-reqout", out]);
  expect(r.code, r.stderr).toBe(0);
  return fs.readFileSync(out);
}

/** Write the response and let openssl verify it and print each status. */
function judge(resp: Uint8Array, args: string[], reqFile?: string): { code: number; out: string } {
  const f = path.join(ca.root, "resp.der");
  fs.writeFileSync(f, resp);
  const r = openssl(["ocsp", "-respin", f, "-issuer", caCrt(), "-CAfile", caCrt(), ...(reqFile ? ["-reqin", reqFile] : []), ...args]);
  return { code: r.code, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  ca = makeCa();
  other = makeCa([], "pki-other-");
  for (const n of ["good", "gone", "held"]) serials[n] = json(ca.run(["issue", "client", n, "--json"])).serial;
  expect(ca.run(["revoke", "gone", "--reason", "keyCompromise"]).code).toBe(0);
  expect(ca.run(["revoke", "held", "--reason", "certificateHold"]).code).toBe(0);
  const store = new DirStore(ca.dir);
  state = new ServeState(store);
  await state.load(true);
  await issueResponder(state.ca, async () => PASSPHRASE, undefined, () => new Date());
  await state.load(true);
  expect(state.responder).toBeDefined();
  service = new OcspService(state, { nextUpdateMinutes: 5 });
});

describe("OCSP answers verified by openssl ocsp", () => {
  it("good, revoked (time and reason) and unknown in one request", () => {
    const req = request(["-serial", "0x" + serials.good, "-serial", "0x" + serials.gone, "-serial", "0x0123456789ABCDEF", "-no_nonce"]);
    const o = service.answer(req);
    expect(o.status).toBe("good,revoked,unknown");
    const v = judge(o.body, ["-serial", "0x" + serials.good, "-serial", "0x" + serials.gone, "-serial", "0x0123456789ABCDEF"]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain("Response verify OK");
    const lines = v.out.split("\n");
    expect(lines.find((l) => l.startsWith("0x" + serials.good))).toMatch(/: good$/);
    expect(lines.find((l) => l.startsWith("0x" + serials.gone))).toMatch(/: revoked$/);
    expect(v.out).toMatch(/Reason: keyCompromise/);
    expect(v.out).toMatch(/Revocation Time: \w{3} +\d+ \d\d:\d\d:\d\d \d{4} GMT/);
    expect(lines.find((l) => l.startsWith("0x0123456789ABCDEF"))).toMatch(/: unknown$/);
    expect(v.out).toMatch(/This Update: .*\n\s*Next Update: /);
  });

  it("a certificateHold revocation carries its reason", () => {
    const o = service.answer(request(["-serial", "0x" + serials.held, "-no_nonce"]));
    const v = judge(o.body, ["-serial", "0x" + serials.held]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toMatch(/revoked[\s\S]*Reason: certificateHold/);
  });

  it("the nonce of the request is echoed (openssl checks it against -reqin)", () => {
    const reqFile = path.join(ca.root, "nonce.der");
    request(["-serial", "0x" + serials.good, "-nonce"], "nonce.der");
    const o = service.answer(fs.readFileSync(reqFile));
    expect(o.cacheable).toBe(false);
    expect(readOcspResponse(o.body).hasNonce).toBe(true);
    // (no -serial here: openssl would build a second request with its own nonce)
    const v = judge(o.body, [], reqFile);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain("Response verify OK");
    expect(v.out).not.toMatch(/nonce/i);
    // and a response without it is noticed by the same check: the test can fail
    const bare = service.answer(request(["-serial", "0x" + serials.good, "-no_nonce"]));
    expect(judge(bare.body, [], reqFile).out).toMatch(/WARNING: no nonce in response/);
  });

  it("SHA-256 CertIDs are answered too", () => {
    const o = service.answer(request(["-sha256", "-serial", "0x" + serials.gone, "-no_nonce"]));
    const v = judge(o.body, ["-sha256", "-serial", "0x" + serials.gone]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toMatch(/: revoked/);
  });

  it("the responder certificate is delegated: OCSPSigning and ocsp-nocheck, issued by the CA, recorded in the index", () => {
    const crt = path.join(ca.dir, "issued", "ocsp-responder.crt");
    const t = openssl(["x509", "-in", crt, "-noout", "-text"]).stdout;
    expect(t).toMatch(/Extended Key Usage: *\n\s*OCSP Signing/);
    expect(t).toContain("OCSP No Check");
    expect(t).toMatch(/Public-Key: \(256 bit\)/);
    expect(openssl(["verify", "-CAfile", caCrt(), crt]).code).toBe(0);
    const list = json(ca.run(["list", "--json"]));
    const rows = (list.certificates ?? list) as Array<{ name?: string; profile?: string }>;
    expect(rows.some((r) => r.name === "ocsp-responder" && r.profile === "ocsp")).toBe(true);
    expect((fs.statSync(path.join(ca.dir, "private", "ocsp-responder.key")).mode & 0o777).toString(8)).toBe("600");
  });

  it("a request about another CA's certificate: unauthorized", () => {
    const out = path.join(ca.root, "other.der");
    expect(openssl(["ocsp", "-issuer", path.join(other.dir, "ca.crt"), "-serial", "0x01", "-no_nonce", "-reqout", out]).code).toBe(0);
    const o = service.answer(fs.readFileSync(out));
    expect(o.status).toBe("unauthorized");
    const v = judge(o.body, ["-serial", "0x01"]);
    expect(v.out).toMatch(/Responder Error: unauthorized \(6\)/);
  });

  it("garbage and truncated requests: malformedRequest, never a throw", () => {
    const good = request(["-serial", "0x" + serials.good, "-nonce"]);
    const cases: Uint8Array[] = [Buffer.from("hello"), Buffer.alloc(0), Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff), Buffer.concat([good, Buffer.of(0)])];
    for (let i = 1; i < good.length; i++) cases.push(good.subarray(0, i));
    for (let i = 0; i < good.length; i++) {
      const m = Buffer.from(good);
      m[i] = m[i]! ^ 0xff;
      cases.push(m);
    }
    for (const c of cases) {
      const o = service.answer(c);
      expect(["malformedRequest", "unauthorized", "good", "unknown"]).toContain(o.status);
      expect(readOcspResponse(o.body).status).toBe(o.status === "malformedRequest" ? "malformedRequest" : o.status === "unauthorized" ? "unauthorized" : "successful");
    }
    expect(() => parseOcspRequest(Buffer.from("hello"))).toThrow(OcspMalformed);
    const v = judge(errorResponse("malformedRequest"), ["-serial", "0x01"]);
    expect(v.out).toMatch(/Responder Error: malformedrequest \(1\)/i);
  });

  it("a nonce-less answer is found again by its GET path (cached()) until the index changes; a nonce'd one never is", () => {
    const bare = request(["-serial", "0x" + serials.good, "-no_nonce"]);
    const key = encodeURIComponent(bare.toString("base64"));
    const fresh = new OcspService(state, { nextUpdateMinutes: 5 });
    expect(fresh.cached(key)).toBeUndefined();
    const first = fresh.answer(bare, key);
    expect(first.status).toBe("good");
    const hit = fresh.cached(key);
    expect(hit?.body).toBe(first.body); // the same signed bytes, nothing decoded or signed again
    expect(hit?.status).toBe("cached");
    // a nonce'd request is signed afresh every time: nothing to find under its path
    const nonced = request(["-serial", "0x" + serials.good, "-nonce"], "nonced.der");
    const nkey = encodeURIComponent(nonced.toString("base64"));
    expect(fresh.answer(nonced, nkey).cacheable).toBe(false);
    expect(fresh.cached(nkey)).toBeUndefined();
    // the index (or CA, or responder) changed: the cached answer is gone
    state.version++;
    expect(fresh.cached(key)).toBeUndefined();
    expect(fresh.answer(bare, key).body).not.toBe(first.body);
  });

  it("more than 16 certificates in one request: malformedRequest", () => {
    const args: string[] = [];
    for (let i = 1; i <= 17; i++) args.push("-serial", "0x" + i.toString(16).padStart(2, "0"));
    expect(service.answer(request([...args, "-no_nonce"])).status).toBe("malformedRequest");
  });
});
