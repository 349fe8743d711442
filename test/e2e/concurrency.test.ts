/**
 * Issue 5.1: many pki processes at once on one CA. The lock (store/lock.ts)
 * serialises every read-modify-write of index.txt; openssl judges the result.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl, snapshot } from "../helpers.js";
import { certSerials, indexLines, opensslCaConfig, opensslCaStatus, opensslCsr, spawnPki } from "../hardening-helpers.js";

describe("parallel pki processes on one CA", () => {
  it("20 sign-csr and 5 issue client at once: all succeed, one index line and one verifying certificate each", async () => {
    const ca = makeCa();
    const csrs = Array.from({ length: 20 }, (_, i) => opensslCsr(ca.root, `agent${i}`, `/CN=agent${i}.example.lan`));
    const common = ["--dir", ca.dir, "--passphrase-file", ca.pass, "--json"];
    const runs = [
      ...csrs.map((c, i) => spawnPki(["sign-csr", c, "--profile", "ssl", "--out", path.join(ca.root, `agent${i}.crt`), ...common])),
      ...Array.from({ length: 5 }, (_, i) => spawnPki(["issue", "client", `user${i}`, ...common])),
    ];
    const results = await Promise.all(runs.map((r) => r.done));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const serials = results.map((r) => json(r).serial as string);

    expect(new Set(serials).size).toBe(25);
    const lines = indexLines(ca.dir);
    expect(lines).toHaveLength(25);
    expect(lines.map((l) => l[3]).sort()).toEqual([...serials].sort());
    expect(certSerials(ca.dir)).toEqual([...serials].sort());
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);

    const files = serials.map((s) => path.join(ca.dir, "certs", `${s}.pem`));
    const v = openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), ...files]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.split("\n").filter((l) => l.endsWith(": OK"))).toHaveLength(25);

    const cnf = opensslCaConfig(ca.dir, ca.root);
    for (const s of serials) expect(opensslCaStatus(cnf, s), `openssl ca -status ${s}`).toBe("Valid");
    // the audit log has one ok line per certificate
    const audit = fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(audit.filter((a) => a.outcome === "ok" && (a.command === "sign-csr" || a.command === "issue")).map((a) => a.serial).sort()).toEqual([...serials].sort());
  });

  it("gives up after PKI_LOCK_TIMEOUT naming the pid that holds the lock, then takes over the lock once that pid is gone", async () => {
    const ca = makeCa();
    const holder = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const lock = path.join(ca.dir, ".lock");
      fs.writeFileSync(lock, JSON.stringify({ pid: holder.pid, host: os.hostname(), since: new Date().toISOString() }));
      const before = snapshot(ca.dir);
      const r = ca.run(["issue", "client", "waiter", "--json"], { env: { PKI_LOCK_TIMEOUT: "1" } });
      expect(r.code).toBe(1);
      const d = json(r);
      expect(d.error.code).toBe("LOCK_TIMEOUT");
      expect(d.error.message).toContain(`pid ${holder.pid}`);
      expect(snapshot(ca.dir)).toEqual(before);
      // without --json: one line on stderr naming the pid
      const t = ca.run(["issue", "client", "waiter"], { env: { PKI_LOCK_TIMEOUT: "0.5" } });
      expect(t.code).toBe(1);
      expect(t.stderr.trim().split("\n")).toHaveLength(1);
      expect(t.stderr).toMatch(new RegExp(`^pki: error: .*locked by pid ${holder.pid}\\b`));
    } finally {
      holder.kill("SIGKILL");
    }
    await new Promise((r) => holder.once("exit", r));
    // the holder died without unlocking: the next command takes the lock over by itself
    const after = ca.run(["issue", "client", "waiter", "--json"], { env: { PKI_LOCK_TIMEOUT: "10" } });
    expect(after.code, after.stderr).toBe(0);
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
    expect(indexLines(ca.dir)).toHaveLength(1);
  });

  it("20 revoke at once (and 3 racing duplicates): each serial revoked exactly once, the CRL lists all, openssl agrees", async () => {
    const ca = makeCa();
    const names = Array.from({ length: 20 }, (_, i) => `dev${i}`);
    fs.writeFileSync(path.join(ca.root, "names"), names.join("\n") + "\n");
    const batch = ca.run(["issue", "client", "--names-from", path.join(ca.root, "names"), "--json"]);
    expect(batch.code, batch.stderr).toBe(0);
    const serials = (json(batch).certificates as Array<{ serial: string }>).map((c) => c.serial);
    const common = ["--dir", ca.dir, "--passphrase-file", ca.pass, "--json"];
    const reasons = ["keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged"];
    const runs = [
      // by serial and by name, alternately
      ...serials.map((s, i) => spawnPki(["revoke", i % 2 ? s : names[i]!, "--reason", reasons[i % 4]!, ...common])),
      ...serials.slice(0, 3).map((s) => spawnPki(["revoke", s, ...common])),
    ];
    const results = await Promise.all(runs.map((r) => r.done));
    const ok = results.filter((r) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    expect(ok).toHaveLength(20);
    expect(refused).toHaveLength(3);
    for (const r of refused) expect(json(r).error.code, r.stdout + r.stderr).toBe("ALREADY_REVOKED");
    expect(ok.map((r) => json(r).serial).sort()).toEqual([...serials].sort());

    const lines = indexLines(ca.dir);
    expect(lines).toHaveLength(20);
    expect(lines.every((l) => l[0] === "R" && l[2] !== "")).toBe(true);
    expect(new Set(lines.map((l) => l[3])).size).toBe(20);
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);

    // the CRL: signed by the CA, lists every serial once, and its number advanced once per revocation
    const crl = path.join(ca.dir, "crl.pem");
    const text = openssl(["crl", "-in", crl, "-CAfile", path.join(ca.dir, "ca.crt"), "-noout", "-text"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr + text.stdout).toMatch(/verify OK/);
    for (const s of serials) expect(text.stdout.split(`Serial Number: ${s}`).length - 1, s).toBe(1);
    const num = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text.stdout);
    expect(Number(num![1])).toBe(1 + 20);
    const cnf = opensslCaConfig(ca.dir, ca.root);
    for (const s of serials) expect(opensslCaStatus(cnf, s)).toBe("Revoked");
    for (const s of serials.slice(0, 4)) {
      const v = openssl(["verify", "-crl_check", "-CRLfile", crl, "-CAfile", path.join(ca.dir, "ca.crt"), path.join(ca.dir, "certs", `${s}.pem`)]);
      expect(v.code).not.toBe(0);
      expect(v.stdout + v.stderr).toMatch(/certificate revoked/);
    }
  });
});
