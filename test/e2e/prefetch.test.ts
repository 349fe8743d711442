/**
 * The CA key's PBKDF2 is started from argv before the modules load
 * (cli/prefetch.ts): the commands behave exactly as before whatever the
 * passphrase source: right passphrase (file, $PKI_PASSPHRASE_FILE,
 * $PKI_PASSPHRASE, options after the command) signs; a wrong one is the same
 * one-line BAD_PASSPHRASE with nothing changed; a passphrase file others can
 * read is still refused.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CSR } from "./lib.js";
import { BIN, PASSPHRASE, cleanEnv, makeCa, pki, snapshot } from "../helpers.js";

/**
 * node's own crypto.pbkdf2, counted: a preload (node --require) wraps it
 * before bin/pki.js runs and prints the count of 600,000-iteration calls on
 * exit. The derivation still happens for real.
 */
function countingPreload(dir: string): string {
  const f = path.join(dir, "count-pbkdf2.cjs");
  fs.writeFileSync(
    f,
    `const c = require("node:crypto"); const orig = c.pbkdf2; let n = 0;
c.pbkdf2 = function (...a) { if (a[2] >= 100000) n++; return orig.apply(this, a); };
process.on("exit", () => process.stderr.write("pbkdf2-calls=" + n + "\\n"));\n`,
  );
  return f;
}

describe("start-up: the CA key derived ahead", () => {
  it("signs with the passphrase from a file, the environment, or options after the command; refuses a wrong one, changing nothing", () => {
    const ca = makeCa();
    const csr = CSR("p256.csr");
    const out = (n: string) => path.join(ca.root, `${n}.crt`);
    expect(pki(["sign-csr", csr, "--profile", "client", "--out", out("a"), "--dir", ca.dir, "--passphrase-file", ca.pass]).code).toBe(0);
    expect(pki(["--dir", ca.dir, "sign-csr", csr, "--profile", "client", "--out", out("b")], { env: { PKI_PASSPHRASE_FILE: ca.pass } }).code).toBe(0);
    expect(pki(["sign-csr", csr, "--profile", "client", "--out", out("c")], { cwd: ca.root, env: { PKI_DIR: ca.dir, PKI_PASSPHRASE: PASSPHRASE } }).code).toBe(0);

    const wrong = path.join(ca.root, "wrong");
    fs.writeFileSync(wrong, "not the passphrase\n", { mode: 0o600 });
    const before = snapshot(ca.dir);
    const r = pki(["--dir", ca.dir, "--passphrase-file", wrong, "sign-csr", csr, "--profile", "client", "--out", out("d")]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^pki: error: the passphrase does not decrypt/);
    expect(r.stderr).not.toContain("not the passphrase");
    expect(fs.existsSync(out("d"))).toBe(false);
    expect(snapshot(ca.dir)).toEqual(before);

    const open = path.join(ca.root, "open");
    fs.writeFileSync(open, PASSPHRASE + "\n", { mode: 0o644 });
    const m = pki(["--dir", ca.dir, "--passphrase-file", open, "sign-csr", csr, "--profile", "client", "--out", out("e")]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/mode 0644/);
    expect(snapshot(ca.dir)).toEqual(before);
  });

  it("derives the CA key once: the derivation bin/pki.js starts before the modules load is the one the command decrypts with", () => {
    const ca = makeCa();
    const preload = countingPreload(ca.root);
    const run = (args: string[]) => {
      const r = spawnSync(process.execPath, ["--require", preload, BIN, ...args], { env: cleanEnv({}), encoding: "utf8" });
      return { code: r.status, calls: Number(/pbkdf2-calls=(\d+)/.exec(r.stderr)?.[1]), stderr: r.stderr };
    };
    const signed = run(["--dir", ca.dir, "--passphrase-file", ca.pass, "sign-csr", CSR("p256.csr"), "--profile", "client", "--out", path.join(ca.root, "a.crt")]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.calls).toBe(1);
    // a command that does not use the CA key derives nothing
    const listed = run(["--dir", ca.dir, "--passphrase-file", ca.pass, "list"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.calls).toBe(0);
  });
});
