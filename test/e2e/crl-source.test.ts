/**
 * crl-source.json (issue 17, core/crl-source.ts): a revocation or `pki crl`
 * skips checking the current crl.pem for dropped revocations when that
 * crl.pem was built from the index as it is (or as it was before lines were
 * appended), and only then; a revocation then makes the new CRL from its
 * entries (core/crl.ts spliceRevoked), the same entries as from the index.
 * What is read is counted for real: a preload (node --require) wraps
 * fs.readFileSync before bin/pki.js runs and lists every crl.pem read.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, cleanEnv, json, makeCa, openssl, snapshot } from "../helpers.js";
import { expectRefused } from "./lib.js";

type Ca = ReturnType<typeof makeCa>;

/** Run pki with reads of crl.pem counted: the exit status and how many whole reads of it there were. */
function counted(ca: Ca, args: string[]): { code: number | null; stderr: string; crlReads: number } {
  const preload = path.join(ca.root, "count-reads.cjs");
  const report = path.join(ca.root, "reads.json");
  fs.writeFileSync(
    preload,
    `const fs = require("fs"); const orig = fs.readFileSync; let n = 0;
fs.readFileSync = function (p, ...rest) { if (typeof p === "string" && p.endsWith("/crl.pem")) n++; return orig.call(this, p, ...rest); };
process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(report)}, String(n)));
`,
  );
  const r = spawnSync(process.execPath, ["--require", preload, BIN, "--dir", ca.dir, "--passphrase-file", ca.pass, ...args], { env: cleanEnv(), encoding: "utf8" });
  return { code: r.status, stderr: r.stderr, crlReads: Number(fs.readFileSync(report, "utf8")) };
}

const crlSerials = (ca: Ca): string[] =>
  [...openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-text"]).stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!).sort();
const serialOf = (ca: Ca, name: string): string => openssl(["x509", "-in", path.join(ca.dir, "issued", `${name}.crt`), "-noout", "-serial"]).stdout.trim().replace("serial=", "");
const record = (ca: Ca) => JSON.parse(fs.readFileSync(path.join(ca.dir, "crl-source.json"), "utf8"));

describe("crl-source.json", () => {
  it("goes with every crl.pem pki writes, and names it and the index it was built from", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    expect(ca.run(["revoke", "a"]).code).toBe(0);
    const crl = fs.readFileSync(path.join(ca.dir, "crl.pem"));
    const index = fs.readFileSync(path.join(ca.dir, "index.txt"));
    expect(record(ca)).toEqual({
      index: { bytes: index.length, sha256: createHash("sha256").update(index).digest("hex") },
      crl: { bytes: crl.length, tail: crl.subarray(crl.length - 128).toString("base64") },
    });
    expect(fs.statSync(path.join(ca.dir, "crl-source.json")).mode & 0o777).toBe(0o644);
    // --out and --der write elsewhere: crl.pem and its record stay as they are
    const before = fs.readFileSync(path.join(ca.dir, "crl-source.json"));
    expect(ca.run(["crl", "--der"]).code).toBe(0);
    expect(ca.run(["crl", "--out", path.join(ca.root, "other.pem")]).code).toBe(0);
    expect(fs.readFileSync(path.join(ca.dir, "crl-source.json"))).toEqual(before);
  });

  it("after issuance (lines appended) a revocation reads crl.pem once, to carry its entries over, and pki crl not at all; without the record, or with another crl.pem, the check reads it", () => {
    const ca = makeCa();
    for (const x of ["a", "b", "c", "d", "f", "g"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    expect(ca.run(["revoke", "a"]).code).toBe(0);
    expect(ca.run(["issue", "client", "e"]).code).toBe(0); // appended after the CRL was built
    // two at once, one before and one after a's line, one of them appended: the new CRL is made from crl.pem's entries
    const fast = counted(ca, ["revoke", "e", "b", "--reason", "keyCompromise"]);
    expect(fast.code, fast.stderr).toBe(0);
    expect(fast.crlReads).toBe(1);
    // the same entries as a CRL built from the whole index (--out: built from index.txt), as openssl reads them
    const fullPem = path.join(ca.root, "full.pem");
    expect(ca.run(["crl", "--out", fullPem]).code).toBe(0);
    const entries = (f: string) => openssl(["crl", "-in", f, "-noout", "-text"]).stdout.split("Revoked Certificates:")[1]!.split("Signature Algorithm:")[0]!;
    expect(entries(path.join(ca.dir, "crl.pem"))).toBe(entries(fullPem));
    expect(entries(fullPem)).toMatch(/Key Compromise[\s\S]*Key Compromise/);
    expect(openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-CAfile", path.join(ca.dir, "ca.crt")]).stderr).toMatch(/verify OK/);
    const fastCrl = counted(ca, ["crl"]);
    expect(fastCrl.code, fastCrl.stderr).toBe(0);
    expect(fastCrl.crlReads).toBe(0);
    expect(crlSerials(ca)).toEqual(["a", "b", "e"].map((x) => serialOf(ca, x)).sort());

    fs.rmSync(path.join(ca.dir, "crl-source.json"));
    const full = counted(ca, ["revoke", "c"]);
    expect(full.code, full.stderr).toBe(0);
    expect(full.crlReads).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(ca.dir, "crl-source.json"))).toBe(true); // written again with the new crl.pem

    // crl.pem rewritten by hand (a blank line: the same CRL to openssl, another file): not the one the record names
    const pem = fs.readFileSync(path.join(ca.dir, "crl.pem"), "latin1");
    fs.writeFileSync(path.join(ca.dir, "crl.pem"), pem.replace(/\n-----END/, "\n\n-----END"));
    const other = counted(ca, ["revoke", "d"]);
    expect(other.code, other.stderr).toBe(0);
    expect(other.crlReads).toBeGreaterThan(0);
    expect(crlSerials(ca)).toEqual(["a", "b", "c", "d", "e"].map((x) => serialOf(ca, x)).sort());
  });

  it("a newer crl.pem kept beside an index and record restored from a backup: the drop is found and refused", () => {
    const ca = makeCa();
    for (const x of ["a", "b"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    expect(ca.run(["crl"]).code).toBe(0);
    const backup = ["index.txt", "crl-source.json"].map((f) => [f, fs.readFileSync(path.join(ca.dir, f))] as const);
    expect(ca.run(["revoke", "a", "--reason", "keyCompromise"]).code).toBe(0);
    for (const [f, b] of backup) fs.writeFileSync(path.join(ca.dir, f), b); // crl.pem (listing a) stays
    for (const args of [["crl"], ["revoke", "b"]]) {
      const before = snapshot(ca.dir);
      expectRefused(ca.run(args), before, ca.dir, /drop 1 revoked certificate/);
      expect(json(ca.run([...args, "--json"])).error.code).toBe("CRL_SHRINK");
    }
  });

  it("an index whose revocation was undone by hand, at the same length: refused", () => {
    const ca = makeCa();
    for (const x of ["a", "b"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    expect(ca.run(["revoke", "a", "--reason", "keyCompromise"]).code).toBe(0);
    const idx = path.join(ca.dir, "index.txt");
    const text = fs.readFileSync(idx, "utf8");
    // "R", the revocation field and the file field "unknown" become "V", nothing and a file field as much longer
    const undone = text.replace(/^R\t(\d+Z)\t(\d+Z,keyCompromise)\t([0-9A-F]+)\tunknown\t/m, (_m, exp: string, rev: string, serial: string) => `V\t${exp}\t\t${serial}\t${"u".repeat(7 + rev.length)}\t`);
    expect(undone).not.toBe(text);
    expect(undone.length).toBe(text.length);
    fs.writeFileSync(idx, undone);
    expect(record(ca).index.bytes).toBe(fs.statSync(idx).size);
    const before = snapshot(ca.dir);
    expectRefused(ca.run(["crl"]), before, ca.dir, /drop 1 revoked certificate/);
  });
});
