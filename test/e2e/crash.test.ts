/**
 * Issue 5.2: `pki issue` killed with SIGKILL at random moments and at each
 * step boundary of the write path (src/ca/authority.ts, top comment). What
 * must hold afterwards, with no manual cleanup: the next command runs, no
 * file that should be PEM is partial, every index line has its certificate.
 * `pki doctor` reports what a crash can leave (a certificate file without
 * its index line, temporary files, the lock of a dead pid) and
 * `pki doctor --repair` fixes it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl } from "../helpers.js";
import { allFiles, certSerials, indexLines, opensslCaConfig, opensslCaStatus, prng, spawnPki } from "../hardening-helpers.js";

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----\r?\n?/g;

/** Does this file consist of whole PEM blocks only, each of which openssl parses? Returns the problem or null. */
export function pemProblem(file: string, caPass: string): string | null {
  const text = fs.readFileSync(file, "utf8");
  if (text.length === 0) return "empty";
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0 || blocks.map((b) => b[0]).join("") !== text) return "not whole PEM blocks";
  for (const b of blocks) {
    const label = b[1]!;
    const args =
      label === "CERTIFICATE" ? ["x509", "-noout"]
      : label === "X509 CRL" ? ["crl", "-noout"]
      : label === "ENCRYPTED PRIVATE KEY" ? ["pkey", "-noout", "-passin", `file:${caPass}`]
      : label === "PRIVATE KEY" ? ["pkey", "-noout"]
      : null;
    if (!args) return `unexpected PEM label ${label}`;
    const r = openssl(args, { input: b[0] });
    if (r.code !== 0) return `openssl ${args[0]}: ${r.stderr.trim().split("\n")[0]}`;
  }
  return null;
}

/** The invariants after any crash: returns the temporary files left (doctor --repair's business). */
export function checkAfterCrash(dir: string, pass: string): { temps: string[]; orphans: string[] } {
  const files = allFiles(dir);
  const temps = files.filter((f) => path.basename(f).startsWith(".") && f.endsWith(".tmp"));
  for (const f of files) {
    if (temps.includes(f) || !/\.(pem|crt|key)$/.test(f)) continue;
    expect(pemProblem(path.join(dir, f), pass), f).toBeNull();
  }
  const lines = indexLines(dir);
  for (const l of lines) {
    expect(l, "index line fields").toHaveLength(6);
    expect(fs.existsSync(path.join(dir, "certs", `${l[3]}.pem`)), `certs/${l[3]}.pem of an index line`).toBe(true);
  }
  const indexed = new Set(lines.map((l) => l[3]));
  expect(new Set(lines.map((l) => l[3])).size).toBe(lines.length);
  return { temps, orphans: certSerials(dir).filter((s) => !indexed.has(s)) };
}

describe("crash safety of pki issue", () => {
  it("30 SIGKILLs at random moments: the next command runs without cleanup, nothing partial, every index line has its file", async () => {
    const ca = makeCa();
    const args = (name: string) => ["issue", "client", name, "--dir", ca.dir, "--passphrase-file", ca.pass, "--json"];
    // how long one run takes here, so the kills spread over all of it (write phase included)
    const t0 = Date.now();
    const first = await spawnPki(args("warmup")).done;
    expect(first.code, first.stderr).toBe(0);

    const rnd = prng(0x5eed);
    let killed = 0;
    let completed = 1;
    let span = Math.max(400, Math.round((Date.now() - t0) * 1.2));
    let maxDelay = 0;
    // 30 kills: a run that finished before its kill does not count (and tells how long a run takes now)
    for (let i = 0; killed < 30 && i < 120; i++) {
      const delay = Math.floor(rnd() * span);
      maxDelay = Math.max(maxDelay, delay);
      const started = Date.now();
      const { child, done } = spawnPki(args(`victim${i}`));
      const timer = setTimeout(() => child.kill("SIGKILL"), delay);
      const r = await done;
      clearTimeout(timer);
      if (r.signal === "SIGKILL") killed++;
      else {
        // it finished before the kill: then it must have succeeded (waiting, if need be, for the lock of a killed run)
        expect(r.code, r.stderr).toBe(0);
        completed++;
        span = Math.max(200, Math.round((Date.now() - started) * 1.2));
      }
    }
    expect(killed).toBe(30);

    const { orphans } = checkAfterCrash(ca.dir, ca.pass);
    // no manual cleanup: a lock left by a killed run belongs to a dead pid and is taken over
    const next = spawnPki(args("after"), { env: { PKI_LOCK_TIMEOUT: "20" } });
    const n = await next.done;
    expect(n.code, n.stderr).toBe(0);
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
    checkAfterCrash(ca.dir, ca.pass);

    // what the index holds is sound to openssl
    const lines = indexLines(ca.dir);
    expect(lines.length).toBeGreaterThanOrEqual(completed + 1);
    const cnf = opensslCaConfig(ca.dir, ca.root);
    const v = openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), ...lines.map((l) => path.join(ca.dir, "certs", `${l[3]}.pem`))]);
    expect(v.code, v.stderr).toBe(0);
    for (const l of lines) expect(opensslCaStatus(cnf, l[3]!)).toBe("Valid");
    // a certificate file without an index line is possible (killed between steps 2 and 4): doctor's business
    expect(orphans.length).toBeLessThanOrEqual(killed);
    // doctor --repair leaves certs/ and the index in step, and no temporary file
    const rep = await spawnPki(["doctor", "--repair", "--json", "--dir", ca.dir, "--passphrase-file", ca.pass]).done;
    expect(rep.code, rep.stdout + rep.stderr).toBe(0);
    const after = checkAfterCrash(ca.dir, ca.pass);
    expect(after).toEqual({ temps: [], orphans: [] });
    console.log(`crash test: ${killed} runs killed (delays up to ${maxDelay} ms), ${completed} completed, ${orphans.length} orphan certificate files`);
  });

  for (const step of ["built", "files", "meta", "index", "released"] as const) {
    it(`a kill at step boundary "${step}" leaves a directory the next command uses as is`, async () => {
      const ca = makeCa();
      const args = (name: string) => ["issue", "client", name, "--dir", ca.dir, "--passphrase-file", ca.pass, "--json"];
      expect((await spawnPki(args("before")).done).code).toBe(0);
      const r = await spawnPki(args("victim"), { env: { PKI_CRASH_AT: step } }).done;
      expect(r.signal).toBe("SIGKILL");
      // the killed process held the lock: it is still there, with a dead pid
      expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(true);
      const { orphans } = checkAfterCrash(ca.dir, ca.pass);
      const lines = indexLines(ca.dir);
      if (step === "built") {
        expect(orphans).toEqual([]);
        expect(lines).toHaveLength(1);
        expect(fs.existsSync(path.join(ca.dir, "issued", "victim.crt"))).toBe(false);
      } else if (step === "files" || step === "meta") {
        // signed, the CA's copy written, never committed: one certificate file without its index line,
        // and nothing handed out (issue 10.7: recorded before released)
        expect(orphans).toHaveLength(1);
        expect(lines).toHaveLength(1);
        expect(fs.existsSync(path.join(ca.dir, "issued", "victim.crt"))).toBe(false);
        expect(fs.existsSync(path.join(ca.dir, "private", "victim.key"))).toBe(false);
      } else {
        expect(orphans).toEqual([]);
        expect(lines).toHaveLength(2);
        // "index": committed, not yet released; "released": both
        expect(fs.existsSync(path.join(ca.dir, "issued", "victim.crt"))).toBe(step === "released");
      }
      const next = await spawnPki(args("after"), { env: { PKI_LOCK_TIMEOUT: "20" } }).done;
      expect(next.code, next.stderr).toBe(0);
      expect(json(next).serial).toMatch(/^[0-9A-F]+$/);
      expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
      checkAfterCrash(ca.dir, ca.pass);
      // the name of a run killed before its commit is free again; after the commit it is taken
      const again = await spawnPki(args("victim")).done;
      if (step === "index" || step === "released") {
        expect(again.code).toBe(1);
        expect(json(again).error.code).toBe("NAME_EXISTS");
      } else expect(again.code, again.stderr).toBe(0);
      checkAfterCrash(ca.dir, ca.pass);
    });
  }

  it("pki doctor reports what crashes left (orphan certificates, temporary files, a dead lock) and --repair fixes it", async () => {
    const ca = makeCa();
    const args = (name: string) => ["issue", "client", name, "--dir", ca.dir, "--passphrase-file", ca.pass, "--json"];
    const doctor = (extra: string[] = []) => spawnPki(["doctor", "--json", "--dir", ca.dir, ...extra]).done;
    expect((await spawnPki(args("before")).done).code).toBe(0);
    expect((await doctor()).code).toBe(0);

    const k1 = await spawnPki(args("victim1"), { env: { PKI_CRASH_AT: "files" } }).done;
    const k2 = await spawnPki(args("victim2"), { env: { PKI_CRASH_AT: "meta" } }).done;
    expect([k1.signal, k2.signal]).toEqual(["SIGKILL", "SIGKILL"]);
    // what a kill during staging leaves: a partial temporary file of a dead pid
    const tmp = path.join(ca.dir, "certs", `.0A1B2C3D.pem.${k2.pid}.0123abcd.0.tmp`);
    fs.writeFileSync(tmp, "-----BEGIN CERTIFICATE-----\nMIIB");
    const { orphans } = checkAfterCrash(ca.dir, ca.pass);
    expect(orphans).toHaveLength(2);

    const d = await doctor();
    expect(d.code).toBe(1);
    const checks = json(d).checks as Array<{ name: string; status: string; message: string }>;
    const index = checks.find((c) => c.name === "index")!;
    expect(index.status).toBe("fail");
    for (const s of orphans) expect(index.message).toContain(s);
    expect(checks.find((c) => c.name === "temp-files")).toMatchObject({ status: "warn" });
    expect(checks.find((c) => c.name === "lock")).toMatchObject({ status: "warn" });

    const r = await doctor(["--repair", "--passphrase-file", ca.pass]);
    expect(r.code, r.stdout).toBe(0);
    expect(json(r).checks.every((c: { status: string }) => c.status === "ok")).toBe(true);
    expect(checkAfterCrash(ca.dir, ca.pass)).toEqual({ temps: [], orphans: [] });
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
    // the recorded certificates are now known to openssl and can be revoked
    const cnf = opensslCaConfig(ca.dir, ca.root);
    for (const s of orphans) expect(opensslCaStatus(cnf, s)).toBe("Valid");
    const rv = await spawnPki(["revoke", orphans[0]!, "--dir", ca.dir, "--passphrase-file", ca.pass, "--json"]).done;
    expect(rv.code, rv.stdout + rv.stderr).toBe(0);
    expect(opensslCaStatus(cnf, orphans[0]!)).toBe("Revoked");
    expect((await doctor()).code).toBe(0);
  });
});
