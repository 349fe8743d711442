/**
 * A person at a terminal: `pki init` driven through a pseudo-terminal
 * (util-linux `script`), answering inquirer's prompts as they appear; and
 * colours that appear on a terminal only.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, cleanEnv, openssl, PASSPHRASE, tmpdir } from "../helpers.js";

const sh = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** Run a command in a pty; whenever the output so far matches the next step's pattern, type its answer. */
function inPty(cmd: string, steps: Array<[RegExp, string]>, env: Record<string, string> = {}): Promise<{ code: number | null; output: string; answered: number }> {
  return new Promise((resolve, reject) => {
    // a pty made by script has no size; inquirer's select needs rows and columns
    const p = spawn("script", ["-qfec", `stty rows 40 cols 120; ${cmd}`, "/dev/null"], { env: cleanEnv({ TERM: "xterm", ...env }), stdio: ["pipe", "pipe", "pipe"] });
    let pending = "";
    let all = "";
    let i = 0;
    const killer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.stdout.on("data", (d: Buffer) => {
      pending += d.toString();
      all += d.toString();
      while (i < steps.length && steps[i]![0].test(pending)) {
        p.stdin.write(steps[i]![1]);
        pending = "";
        i++;
      }
    });
    p.on("error", reject);
    p.on("exit", (code) => {
      clearTimeout(killer);
      p.stdin.end();
      resolve({ code, output: all, answered: i });
    });
  });
}

describe("interactive pki init through a pseudo-terminal", () => {
  it("asks for name, organisation, key type, validity, code signing and a passphrase (twice), then creates the CA", async () => {
    const root = tmpdir();
    const dir = path.join(root, "pki");
    const r = await inPty(`${sh(process.execPath)} ${sh(BIN)} init --dir ${sh(dir)}`, [
      [/CA name \(CN\)/, "\x15Acme/CA\r"], // checked at the prompt: '/' is refused there, the answer asked again
      [/contains '\/'/, "\x15Acme Interactive CA\r"],
      [/Organisation/, "Acme\r"],
      [/Key type/, "\x1b[B\r"], // arrow down: ec-p384
      [/Validity of the CA certificate/, "\x15" + "abc\r"], // ctrl-U clears the default
      [/whole number from 1 to 36500, not "abc"/, "\x15" + "1825\r"],
      [/Validity of each CRL/, "\x15" + "3\r"],
      [/code signing/, "y\r"],
      [/New CA key passphrase/, PASSPHRASE + "\r"],
      [/Repeat it/, PASSPHRASE + "\r"],
    ]);
    expect(r.answered, r.output).toBe(10);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain("Created the CA");
    expect(r.output).toContain("pki-crl.timer");
    const crl = openssl(["crl", "-in", path.join(dir, "crl.pem"), "-noout", "-lastupdate", "-nextupdate"]).stdout;
    const [last, next] = crl.trim().split("\n").map((l) => new Date(l.replace(/^[a-zA-Z]+=/, "")).getTime());
    expect(Math.round((next! - last!) / 86_400_000)).toBe(3);
    const text = openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-text"]).stdout;
    expect(text).toMatch(/Subject: O ?= ?Acme, CN ?= ?Acme Interactive CA/);
    expect(text).toContain("NIST CURVE: P-384");
    expect(text).toContain("Code Signing");
    const notAfter = new Date(openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-enddate"]).stdout.trim().replace("notAfter=", ""));
    expect(Math.round((notAfter.getTime() - Date.now()) / 86_400_000)).toBe(1825);
    // the key is encrypted with the passphrase typed at the prompt
    const pass = path.join(root, "pass");
    fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
    expect(openssl(["pkey", "-in", path.join(dir, "private", "ca.key"), "-passin", `file:${pass}`, "-noout"]).code).toBe(0);
    expect(openssl(["pkey", "-in", path.join(dir, "private", "ca.key"), "-passin", "pass:wrong", "-noout"]).code).not.toBe(0);
  });

  it("a wrong CA passphrase typed at the prompt says so (not \"check --passphrase-file\"), and nothing is issued", async () => {
    const root = tmpdir();
    const dir = path.join(root, "pki");
    const pass = path.join(root, "pass");
    fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
    expect(spawnSync(process.execPath, [BIN, "init", "--dir", dir, "--cn", "P", "--passphrase-file", pass], { env: cleanEnv() }).status).toBe(0);
    const r = await inPty(`${sh(process.execPath)} ${sh(BIN)} --dir ${sh(dir)} issue client alice`, [[/CA key passphrase/, "wrong passphrase\r"]]);
    expect(r.answered).toBe(1);
    expect(r.code).toBe(1);
    expect(r.output).toContain("the passphrase typed at the prompt does not decrypt");
    expect(r.output).not.toContain("--passphrase-file");
    expect(fs.existsSync(path.join(dir, "issued", "alice.crt"))).toBe(false);
  });

  it("Ctrl-C during a slow key generation clears the spinner and changes nothing", async () => {
    const root = tmpdir();
    const dir = path.join(root, "pki");
    expect(spawnSync(process.execPath, [BIN, "init", "--dir", dir, "--cn", "C", "--no-passphrase"], { env: cleanEnv() }).status).toBe(0);
    const r = await inPty(`${sh(process.execPath)} ${sh(BIN)} --dir ${sh(dir)} issue client big --key-type rsa-4096`, [[/Generating a rsa-4096 key/, "\x03"]]);
    expect(r.answered).toBe(1);
    expect(r.output).toContain("cancelled, nothing was changed");
    expect(r.output).toContain("\x1b[?25h"); // the cursor is shown again
    expect(fs.existsSync(path.join(dir, "issued", "big.crt"))).toBe(false);
  });

  it("colours on a terminal, none with NO_COLOR or --no-color", async () => {
    const root = tmpdir();
    const dir = path.join(root, "pki");
    const init = spawnSync(process.execPath, [BIN, "init", "--dir", dir, "--cn", "C", "--no-passphrase"], { env: cleanEnv() });
    expect(init.status).toBe(0);
    spawnSync(process.execPath, [BIN, "--dir", dir, "issue", "client", "alice"], { env: cleanEnv() });
    const cmd = `${sh(process.execPath)} ${sh(BIN)} --dir ${sh(dir)} list`;
    const tty = await inPty(cmd, []);
    expect(tty.code).toBe(0);
    expect(tty.output).toContain("alice");
    expect(tty.output).toMatch(/\x1b\[32mvalid/);
    const noColor = await inPty(cmd, [], { NO_COLOR: "1" });
    expect(noColor.output).toContain("alice");
    expect(noColor.output).not.toMatch(/\x1b\[3\dm/);
    const flag = await inPty(cmd + " --no-color", []);
    expect(flag.output).toContain("alice");
    expect(flag.output).not.toMatch(/\x1b\[3\dm/);
  });

  it("shows a spinner for a slow RSA-3072 key on a terminal, and nothing of it in a pipe", async () => {
    const root = tmpdir();
    const dir = path.join(root, "pki");
    expect(spawnSync(process.execPath, [BIN, "init", "--dir", dir, "--cn", "C", "--no-passphrase"], { env: cleanEnv() }).status).toBe(0);
    const tty = await inPty(`${sh(process.execPath)} ${sh(BIN)} --dir ${sh(dir)} issue client big --key-type rsa-3072`, []);
    expect(tty.code).toBe(0);
    expect(tty.output).toContain("Generating a rsa-3072 key");
    const piped = spawnSync(process.execPath, [BIN, "--dir", dir, "issue", "client", "big2", "--key-type", "rsa-3072"], { env: cleanEnv(), encoding: "utf8" });
    expect(piped.status).toBe(0);
    expect(piped.stderr).not.toContain("Generating");
  });
});
