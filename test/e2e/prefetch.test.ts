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

/**
 * A preload that holds back the CA key's derivation (its callback) until the
 * command has taken the CA's lock and read index.txt: a command that waited
 * for the key before its locked work would never get there (it exits 3 after
 * 20 s). Prints the order of the events on exit.
 */
function holdingPreload(dir: string, caDir: string): string {
  const f = path.join(dir, "hold-pbkdf2.cjs");
  fs.writeFileSync(
    f,
    `const c = require("node:crypto"); const fs = require("node:fs"); const events = [];
const lock = ${JSON.stringify(path.join(caDir, ".lock"))}, index = ${JSON.stringify(path.join(caDir, "index.txt"))};
let indexRead = false;
for (const name of ["openSync", "readFileSync"]) { const o = fs[name]; fs[name] = function (p, ...a) { if (p === index && !indexRead) { indexRead = true; events.push("index read" + (fs.existsSync(lock) ? " under the lock" : "")); } return o.call(this, p, ...a); }; }
const orig = c.pbkdf2;
c.pbkdf2 = function (...a) {
  if (a[2] < 100000) return orig.apply(this, a);
  const cb = a.pop();
  return orig.call(this, ...a, (e, k) => {
    const t0 = Date.now();
    const wait = () => (indexRead ? (events.push("key derived"), cb(e, k)) : Date.now() - t0 > 20000 ? process.exit(3) : setTimeout(wait, 5));
    wait();
  });
};
process.on("exit", () => process.stderr.write("events=" + events.join(",") + "\\n"));\n`,
  );
  return f;
}

describe("sign-csr: the locked work while the CA key opens", () => {
  it("takes the lock and reads the index before the key's derivation is done, then signs with it", () => {
    const ca = makeCa();
    const preload = holdingPreload(ca.root, ca.dir);
    const out = path.join(ca.root, "held.crt");
    const r = spawnSync(process.execPath, ["--require", preload, BIN, "--dir", ca.dir, "--passphrase-file", ca.pass, "sign-csr", CSR("p256.csr"), "--profile", "client", "--out", out], { env: cleanEnv({}), encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(/events=(.*)/.exec(r.stderr)?.[1]).toBe("index read under the lock,key derived");
    expect(fs.readFileSync(out, "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8").split("\n").filter(Boolean)).toHaveLength(1);
  });

  it("a key file that is not ca.crt's is refused when it opens, under the lock: nothing written, the lock released", () => {
    const ca = makeCa();
    const other = makeCa();
    fs.copyFileSync(path.join(other.dir, "private", "ca.key"), path.join(ca.dir, "private", "ca.key"));
    const before = snapshot(ca.dir);
    const out = path.join(ca.root, "x.crt");
    const r = pki(["--dir", ca.dir, "--passphrase-file", ca.pass, "sign-csr", CSR("p256.csr"), "--profile", "client", "--out", out]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/does not belong to ca\.crt/);
    expect(fs.existsSync(out)).toBe(false);
    expect(snapshot(ca.dir)).toEqual(before);
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
  });
});
