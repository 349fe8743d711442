/**
 * What pki import refuses, each with exit 1 (2 for usage), nothing created at
 * the target and the source tree unchanged: a target that holds a CA or
 * anything else, a source key that is not the CA's, a wrong source
 * passphrase, and a source with problems (listed line by line), which
 * --skip-broken imports without ever un-revoking anyone.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, snapshot, tmpdir } from "../helpers.js";
import { indexSet, makeEasyRsa, secretFile, treeHash, verifyWithCrl, type EasyRsa } from "./import-lib.js";

let src: EasyRsa;
let work: string;
let newPass: string;

beforeAll(() => {
  src = makeEasyRsa({ passphrase: "the old passphrase", algo: "ec" });
  for (const n of ["alice", "bob", "carol"]) src.run(["build-client-full", n, "nopass"]);
  src.run(["revoke", "bob", "keyCompromise"]);
  src.run(["gen-crl"]);
  work = tmpdir("pki-import-refusals-");
  newPass = secretFile(work, "new.pass", "a new and longer passphrase");
}, 120_000);

/** A copy of the source to break (the original stays good for the other tests). */
function copyOfSource(): string {
  const d = path.join(tmpdir("pki-broken-"), "pki");
  fs.cpSync(src.pki, d, { recursive: true, preserveTimestamps: true });
  return d;
}

function importInto(source: string, dir: string, extra: string[] = []) {
  return pki(["import", "easyrsa", source, "--dir", dir, "--source-passphrase-file", src.pass!, "--passphrase-file", newPass, ...extra]);
}

function expectOneLineRefusal(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.split("\n").filter(Boolean);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^pki: error: \S/);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at |TypeError|RangeError/);
  expect(r.stdout).toBe("");
}

describe("pki import: refusals", () => {
  it("a target that already holds a CA: CA_EXISTS, the CA untouched", () => {
    const ca = makeCa();
    const before = snapshot(ca.dir);
    const srcBefore = treeHash(src.pki);
    const r = importInto(src.pki, ca.dir);
    expectOneLineRefusal(r, /already holds a CA/);
    expect(snapshot(ca.dir)).toEqual(before);
    expect(treeHash(src.pki)).toBe(srcBefore);
    const j = json(importInto(src.pki, ca.dir, ["--json"]));
    expect(j.error.code).toBe("CA_EXISTS");
    // the refusal is in the existing CA's audit log
    expect(fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8")).toMatch(/"command":"import easyrsa".*"outcome":"refused".*"error":"CA_EXISTS"/);
  });

  it("a target directory that holds other files: refused, nothing added", () => {
    const dir = path.join(work, "busy");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "notes.txt"), "mine\n");
    const r = importInto(src.pki, dir);
    expectOneLineRefusal(r, /is not empty/);
    expect(fs.readdirSync(dir)).toEqual(["notes.txt"]);
  });

  it("a source key that is not the key of the source CA certificate: SOURCE_INVALID, nothing created", () => {
    const broken = copyOfSource();
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path.join(broken, "private", "ca.key")]);
    const before = treeHash(broken);
    const dir = path.join(work, "mismatch");
    const r = importInto(broken, dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(json(r).error).toMatchObject({ code: "SOURCE_INVALID" });
    expect(json(r).error.message).toMatch(/is not the key of/);
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readdirSync(work).filter((f) => f.includes("mismatch"))).toEqual([]);
    expect(treeHash(broken)).toBe(before);
  });

  it("a target whose parent directories are missing (--dir /etc/pki/vpn): --dry-run makes nothing, the import makes them like mkdir -p", () => {
    const dir = path.join(work, "etc-missing", "pki", "vpn");
    const dry = importInto(src.pki, dir, ["--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(fs.existsSync(path.join(work, "etc-missing"))).toBe(false);
    const r = importInto(src.pki, dir);
    expect(r.code, r.stderr).toBe(0);
    expect(openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout"]).code).toBe(0);
    expect(fs.readdirSync(path.join(work, "etc-missing", "pki"))).toEqual(["vpn"]);
  });

  it("a wrong source passphrase: BAD_PASSPHRASE, nothing created, no secret in the output", () => {
    const wrong = secretFile(work, "wrong.pass", "not the passphrase");
    const dir = path.join(work, "wrongpass");
    const before = treeHash(src.pki);
    const r = pki(["import", "easyrsa", src.pki, "--dir", dir, "--source-passphrase-file", wrong, "--passphrase-file", newPass]);
    expectOneLineRefusal(r, /passphrase does not decrypt .*--source-passphrase-file/);
    expect(r.stderr).not.toContain("not the passphrase");
    expect(fs.existsSync(dir)).toBe(false);
    expect(treeHash(src.pki)).toBe(before);
  });

  it("no source passphrase without a terminal: a usage error naming --source-passphrase-file; a passphrase is never an argument", () => {
    const dir = path.join(work, "nopass");
    const r = pki(["import", "easyrsa", src.pki, "--dir", dir, "--passphrase-file", newPass]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--source-passphrase-file/);
    expect(fs.existsSync(dir)).toBe(false);
    const a = pki(["import", "easyrsa", src.pki, "--dir", dir, "--source-passphrase=the old passphrase"]);
    expect(a.code).toBe(2);
    expect(a.stderr).not.toContain("the old passphrase");
  });

  it("the source does not exist, or is not an easy-rsa PKI", () => {
    expectOneLineRefusal(importInto(path.join(work, "nowhere"), path.join(work, "x1")), /does not exist/);
    expectOneLineRefusal(importInto(path.dirname(src.pki), path.join(work, "x2")), /not an easy-rsa PKI directory; did you mean .*\/pki\?/);
    expect(fs.existsSync(path.join(work, "x1")) || fs.existsSync(path.join(work, "x2"))).toBe(false);
  });
});

describe("pki import: a source with problems", () => {
  let broken: string;
  let serials: Record<string, string>;

  beforeAll(() => {
    broken = copyOfSource();
    const lines = fs.readFileSync(path.join(broken, "index.txt"), "utf8").split("\n").filter(Boolean);
    serials = Object.fromEntries(lines.map((l) => [l.split("\t")[5]!.replace("/CN=", ""), l.split("\t")[3]!]));
    // carol's certificate files are gone; bob's revoked line is duplicated as valid; a garbage line
    fs.rmSync(path.join(broken, "issued", "carol.crt"));
    fs.rmSync(path.join(broken, "certs_by_serial", `${serials.carol}.pem`));
    const bobValid = lines.find((l) => l.startsWith("R"))!.replace(/^R\t(\S+)\t[^\t]*\t/, "V\t$1\t\t");
    fs.writeFileSync(path.join(broken, "index.txt"), [...lines, bobValid, "this is not an index line"].join("\n") + "\n");
  });

  it("is refused with every problem on its own line, then one error line; nothing created", () => {
    const before = treeHash(broken);
    const dir = path.join(work, "broken");
    const r = importInto(broken, dir);
    expect(r.code).toBe(1);
    const lines = r.stderr.split("\n").filter(Boolean);
    expect(lines.at(-1)).toMatch(/^pki: error: .*3 problem\(s\) in the source .*--skip-broken/);
    const problems = lines.slice(0, -1);
    expect(problems).toHaveLength(3);
    expect(problems.join("\n")).toMatch(/index\.txt line 5: unparsable line/);
    expect(problems.join("\n")).toMatch(new RegExp(`index\\.txt line 4: duplicate serial ${serials.bob} \\(also on line 2\\)`));
    expect(problems.join("\n")).toMatch(new RegExp(`serial ${serials.carol} \\(/CN=carol\\): no certificate file for it`));
    expect(fs.existsSync(dir)).toBe(false);
    expect(treeHash(broken)).toBe(before);
    const j = json(importInto(broken, dir, ["--json"]));
    expect(j.error.code).toBe("SOURCE_INVALID");
    expect(j.problems).toHaveLength(3);
  });

  it("--dry-run --skip-broken reports and writes nothing; --skip-broken imports the rest, bob stays revoked", () => {
    const before = treeHash(broken);
    const dir = path.join(work, "skipped");
    const dry = importInto(broken, dir, ["--skip-broken", "--dry-run", "--json"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(json(dry)).toMatchObject({ dryRun: true, certificates: 2, revoked: 1 });
    expect(fs.existsSync(dir)).toBe(false);
    const r = importInto(broken, dir, ["--skip-broken", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect(j).toMatchObject({ certificates: 2, revoked: 1, names: ["alice", "bob"] });
    expect(j.skipped.join("\n")).toContain(`serial ${serials.carol} (/CN=carol): left out`);
    expect(j.skipped.join("\n")).toContain(`serial ${serials.bob} (/CN=bob): kept as revoked`);
    expect(r.stderr).toMatch(/^problem: /m);
    const set = indexSet(path.join(dir, "index.txt"));
    expect(set.map((l) => [l.serial, l.status])).toEqual([
      [serials.alice, "V"],
      [serials.bob, "R"],
    ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    expect(verifyWithCrl(dir, path.join(broken, "issued", "alice.crt")).code).toBe(0);
    expect(treeHash(broken)).toBe(before);
  });
});
