/**
 * The machine interface of every command built for scripts and CI (issue 4):
 * --json documents with the contract's fields, JSON error documents, exit
 * codes 0/1/2, and no prompt (nor hang) without a terminal.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, cleanEnv, json, makeCa, openssl, pki, tmpdir } from "../helpers.js";

let ca: ReturnType<typeof makeCa>;
let csrPath: string;
let p12pass: string;

beforeAll(() => {
  ca = makeCa();
  csrPath = path.join(ca.root, "agent.csr");
  const k = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(ca.root, "agent.key"), "-subj", "/CN=agent1", "-out", csrPath]);
  expect(k.code, k.stderr).toBe(0);
  p12pass = path.join(ca.root, "p12pass");
  fs.writeFileSync(p12pass, "export secret\n", { mode: 0o600 });
});

const fields = (d: Record<string, unknown>, keys: string[]) => {
  for (const k of keys) expect(d, `field ${k}`).toHaveProperty(k);
};

function expectJsonError(r: { code: number; stdout: string; stderr: string }, code: string, exit: number) {
  expect(r.code, r.stderr).toBe(exit);
  const d = json(r);
  expect(d.ok).toBe(false);
  expect(d.error.code).toBe(code);
  expect(typeof d.error.message).toBe("string");
}

describe("--json success documents carry the contract's fields", () => {
  it("init", () => {
    const root = tmpdir();
    const r = pki(["init", "--dir", path.join(root, "ca"), "--cn", "J CA", "--no-passphrase", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.ok).toBe(true);
    fields(d, ["dir", "subject", "serial", "notAfter", "keyType", "fingerprint"]);
    expect(d.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it("sign-csr, issue, list, show, verify, renew, export p12, completion", () => {
    const s = ca.run(["sign-csr", csrPath, "--profile", "client", "--json"]);
    expect(s.code, s.stderr).toBe(0);
    const sd = json(s);
    expect(sd.ok).toBe(true);
    fields(sd, ["serial", "subject", "san", "profile", "notBefore", "notAfter", "path", "ignoredExtensions"]);
    expect(sd.serial).toMatch(/^[0-9A-F]+$/);

    const i = ca.run(["issue", "client", "carol", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    const id = json(i);
    fields(id, ["name", "serial", "subject", "san", "profile", "notAfter", "cert", "key", "chain", "p12"]);

    const l = json(ca.run(["list", "--json"]));
    expect(l.ok).toBe(true);
    expect(l.certificates.length).toBeGreaterThanOrEqual(2);
    for (const c of l.certificates) fields(c, ["serial", "subject", "profile", "status", "notAfter", "revokedAt", "reason"]);
    expect(l.certificates.find((c: any) => c.serial === id.serial)).toMatchObject({ profile: "client", status: "valid", revokedAt: null, reason: null });

    const sh = json(ca.run(["show", "carol", "--json"]));
    expect(sh.ok).toBe(true);
    fields(sh, ["subject", "issuer", "serial", "notBefore", "notAfter", "timeLeft", "keyType", "san", "keyUsage", "extendedKeyUsage", "fingerprints", "revocation"]);
    expect(sh.serial).toBe(id.serial);
    expect(sh.keyType).toBe("EC P-256");
    expect(sh.extendedKeyUsage).toEqual(["clientAuth"]);
    const fp = openssl(["x509", "-in", id.cert, "-noout", "-fingerprint", "-sha256"]).stdout.split("=")[1]!.trim().replace(/:/g, "").toLowerCase();
    expect(sh.fingerprints.sha256).toBe(fp);
    expect(sh.revocation.status).toBe("valid");

    const v = json(ca.run(["verify", "carol", "--purpose", "client", "--json"]));
    expect(v).toMatchObject({ ok: true, serial: id.serial, chain: true, revoked: false, expired: false, purpose: { name: "client", ok: true } });

    const rn = ca.run(["renew", "carol", "--json"]);
    expect(rn.code, rn.stderr).toBe(0);
    const rd = json(rn);
    fields(rd, ["serial", "previousSerial", "notAfter"]);
    expect(rd.previousSerial).toBe(id.serial);

    const out = path.join(ca.root, "carol.p12");
    const e = json(ca.run(["export", "p12", "carol", "--out", out, "--p12-passphrase-file", p12pass, "--json"]));
    expect(e).toEqual({ ok: true, path: out, name: "carol", serial: rd.serial, format: "modern" });
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);

    const c = json(ca.run(["completion", "bash", "--json"]));
    expect(c.ok).toBe(true);
    expect(c.script).toContain("complete -o filenames -F _pki pki");
  });
});

describe("failures in --json mode are JSON error documents with a non-zero exit", () => {
  it("each command's failed operation exits 1 with a stable code", () => {
    expectJsonError(ca.run(["show", "no-such-name", "--json"]), "NOT_FOUND", 1);
    expectJsonError(ca.run(["renew", "no-such-name", "--json"]), "NOT_FOUND", 1);
    expectJsonError(ca.run(["verify", "no-such-name", "--json"]), "NOT_FOUND", 1);
    expectJsonError(pki(["list", "--dir", tmpdir(), "--json"]), "NO_CA", 1);
    expectJsonError(pki(["init", "--dir", ca.dir, "--cn", "again", "--no-passphrase", "--json"]), "CA_EXISTS", 1);
    const garbage = path.join(ca.root, "garbage.csr");
    fs.writeFileSync(garbage, "not a csr\n");
    expectJsonError(ca.run(["sign-csr", garbage, "--profile", "client", "--json"]), "BAD_INPUT", 1);
    expect(ca.run(["issue", "client", "dave"]).code).toBe(0);
    expectJsonError(ca.run(["issue", "client", "dave", "--json"]), "NAME_EXISTS", 1);
    // a CSR-signed serial: pki holds no key for it
    const s = json(ca.run(["sign-csr", csrPath, "--profile", "client", "--json"]));
    expectJsonError(ca.run(["export", "p12", s.serial, "--p12-passphrase-file", p12pass, "--json"]), "NOT_FOUND", 1);
    expectJsonError(ca.run(["renew", s.serial, "--rekey", "--json"]), "USAGE", 2);
  });

  it("a negative verify verdict is ok:false with every field, exit 1", () => {
    const i = json(ca.run(["issue", "server", "web9", "--json"]));
    const r = ca.run(["verify", i.cert, "--purpose", "client", "--json"]);
    expect(r.code).toBe(1);
    const d = json(r);
    expect(d).toMatchObject({ ok: false, serial: i.serial, chain: true, revoked: false, expired: false, purpose: { name: "client", ok: false } });
    expect(d.error.code).toBe("VERIFY_FAILED");
  });
});

describe("exit code 2 for usage errors", () => {
  const commands: string[][] = [["init"], ["sign-csr", "x.csr"], ["issue", "client", "x"], ["list"], ["show", "x"], ["verify", "x"], ["renew", "x"], ["export", "p12", "x"], ["completion", "bash"]];
  it.each(commands.map((c) => [c.join(" "), c]))("%s: unknown flag", (_n, c) => {
    const r = ca.run([...(c as string[]), "--no-such-flag", "--json"]);
    expectJsonError(r, "USAGE", 2);
    expect(json(r).error.message).toContain("--no-such-flag");
  });
  it.each([["sign-csr"], ["issue", "client"], ["show"], ["verify"], ["renew"], ["export", "p12"], ["completion"]].map((c) => [c.join(" "), c]))("%s: missing argument", (_n, c) => {
    const r = ca.run([...(c as string[]), "--json"]);
    expectJsonError(r, "USAGE", 2);
  });
  it("bad option values are usage errors too", () => {
    expectJsonError(ca.run(["list", "--status", "bogus", "--json"]), "USAGE", 2);
    expectJsonError(ca.run(["verify", "x", "--purpose", "email", "--json"]), "USAGE", 2);
    expectJsonError(ca.run(["completion", "fish", "--json"]), "USAGE", 2);
    expectJsonError(ca.run(["export", "p12", "carol", "--json"]), "USAGE", 2); // no password source, no terminal
  });
  it("without --json the error is one `pki: error:` line on stderr and stdout stays empty", () => {
    const r = ca.run(["show", "no-such-name"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^pki: error: .+\n$/);
  });
});

describe("no terminal: stdin from /dev/null, encrypted CA, no passphrase source", () => {
  function noTty(args: string[]) {
    const nul = fs.openSync("/dev/null", "r");
    try {
      // the timeout turns a hang (a prompt waiting for input) into a failure
      const r = spawnSync(process.execPath, [BIN, "--dir", ca.dir, ...args], { stdio: [nul, "pipe", "pipe"], env: cleanEnv(), cwd: ca.root, timeout: 10_000 });
      return { code: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
    } finally {
      fs.closeSync(nul);
    }
  }
  it.each([
    ["issue", ["issue", "client", "nopass"]],
    ["sign-csr", ["sign-csr", "agent.csr", "--profile", "client"]],
    ["renew", ["renew", "carol"]],
  ])("%s fails at once naming --passphrase-file / PKI_PASSPHRASE_FILE", (_n, args) => {
    const r = noTty(args as string[]);
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("--passphrase-file");
    expect(r.stderr).toContain("PKI_PASSPHRASE_FILE");
    const j = noTty([...(args as string[]), "--json"]);
    expect(j.code).not.toBe(0);
    expect(JSON.parse(j.stdout).error.code).toBe("PASSPHRASE_REQUIRED");
  });
  it("PKI_PASSPHRASE_FILE is honoured", () => {
    const r = pki(["--dir", ca.dir, "issue", "client", "envpass", "--json"], { env: { PKI_PASSPHRASE_FILE: ca.pass } });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("colours", () => {
  it("never reach a pipe, and NO_COLOR / --no-color are accepted", () => {
    for (const extra of [[], ["--no-color"]]) {
      const r = ca.run(["list", ...extra]);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(/\x1b\[/);
    }
    const r = pki(["--dir", ca.dir, "show", "carol"], { env: { NO_COLOR: "1", FORCE_COLOR: "1" } });
    expect(r.stdout).not.toMatch(/\x1b\[/);
  });
});

describe("--help of every command has Examples and Exit codes", () => {
  it.each([["init"], ["sign-csr"], ["issue"], ["list"], ["show"], ["verify"], ["renew"], ["export", "p12"], ["completion"]].map((c) => [c.join(" "), c]))("%s", (_n, c) => {
    const r = pki([...(c as string[]), "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:\n {2}pki /);
    expect(r.stdout).toMatch(/Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 /);
  });
});
