/**
 * Issue 10, findings 1 and 2: a CA that cannot be turned against its own
 * files. Every output (--out, --out-dir, issued names) is confined
 * (src/store/output.ts, src/core/issued-name.ts): never a CA state file,
 * never anything but a regular file or a new one. Every input is read with a
 * bound (src/store/input.ts): a device is refused and a pipe is cut at 1 MiB.
 *
 * Each case: exit 1, one `pki: error:` line, the CA directory byte-identical
 * (audit.log aside), and the CA still signs (its key and certificate intact).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, PASSPHRASE, pki, snapshot, type Run } from "../helpers.js";
import { opensslCsr } from "../hardening-helpers.js";
import { expectRefused } from "./lib.js";

type Ca = ReturnType<typeof makeCa>;
let ca: Ca;
let csr: string;

beforeAll(() => {
  ca = makeCa();
  expect(ca.run(["issue", "server", "web"]).code).toBe(0);
  expect(ca.run(["issue", "client", "alice"]).code).toBe(0);
  csr = opensslCsr(ca.root, "agent", "/CN=agent1");
});

/** A refusal with this error code, the CA directory unchanged and still able to sign. */
function refused(args: string[], code: string, opts: { input?: string | Buffer; timeout?: number } = {}): Run {
  const before = snapshot(ca.dir);
  const r = ca.run(args, { input: opts.input, timeout: opts.timeout ?? 30_000 });
  expectRefused(r, before, ca.dir);
  const j = ca.run([...args, "--json"], { input: opts.input, timeout: opts.timeout ?? 30_000 });
  expect(j.code, j.stderr).toBe(1);
  expect(json(j).error.code, j.stdout).toBe(code);
  expect(snapshot(ca.dir)).toEqual(before);
  return r;
}

function caStillWorks(): void {
  const k = openssl(["pkey", "-in", path.join(ca.dir, "private", "ca.key"), "-passin", `pass:${PASSPHRASE}`, "-noout"]);
  expect(k.code, k.stderr).toBe(0);
  const r = ca.run(["sign-csr", csr, "--profile", "client"]);
  expect(r.code, r.stderr).toBe(0);
}

function mkfifo(p: string): string {
  const r = spawnSync("mkfifo", [p]);
  expect(r.status, String(r.stderr)).toBe(0);
  return p;
}

describe("finding 1: a CA state file is never an output", () => {
  it("`issue server ca` cannot replace private/ca.key (the name is one of the CA's own files)", () => {
    const r = refused(["issue", "server", "ca"], "UNSAFE_PATH");
    expect(r.stderr).toMatch(/"ca" is one of the CA's own files/);
    refused(["issue", "client", "CA"], "UNSAFE_PATH"); // the same file on a case-insensitive file system
    caStillWorks();
  });

  it("--names-from with a line `ca` refuses the whole batch before anything is written", () => {
    const list = path.join(ca.root, "names.txt");
    fs.writeFileSync(list, "bob\nca\ncarol\n");
    refused(["issue", "client", "--names-from", list], "UNSAFE_PATH");
    refused(["issue", "client", "--names-from", "-"], "UNSAFE_PATH", { input: "dave\nca\n" });
    expect(fs.existsSync(path.join(ca.dir, "issued", "bob.crt"))).toBe(false);
    caStillWorks();
  });

  it("`issue client web.chain` cannot overwrite web's chain file", () => {
    const chain = path.join(ca.dir, "issued", "web.chain.crt");
    const before = fs.readFileSync(chain);
    refused(["issue", "client", "web.chain"], "UNSAFE_PATH");
    refused(["issue", "client", "WEB.CHAIN"], "UNSAFE_PATH");
    expect(fs.readFileSync(chain).equals(before)).toBe(true);
  });

  it("`renew ca --rekey` of a name recorded by an older release cannot replace private/ca.key", () => {
    // the first release recorded `pki issue server ca`: make such a record by hand
    const d = json(ca.run(["issue", "client", "legacy", "--json"]));
    const meta = path.join(ca.dir, "index.meta");
    fs.writeFileSync(meta, fs.readFileSync(meta, "utf8").replace(`${d.serial}\tclient\tlegacy\n`, `${d.serial}\tclient\tca\n`));
    refused(["renew", "ca", "--rekey"], "UNSAFE_PATH");
    refused(["renew", d.serial], "UNSAFE_PATH");
    caStillWorks();
  });

  it("--out onto a CA file is refused for crl, sign-csr, bundle and export p12, however the path is spelled", () => {
    const link = path.join(ca.root, "link-to-ca");
    fs.symlinkSync(ca.dir, link);
    const spelled = (rel: string) => [path.join(ca.dir, rel), path.join(ca.dir, "issued", "..", rel), path.join(link, rel)];
    for (const p of spelled("private/ca.key")) refused(["crl", "--out", p], "UNSAFE_PATH");
    for (const p of spelled("ca.crt")) refused(["sign-csr", csr, "--profile", "client", "--out", p], "UNSAFE_PATH");
    for (const p of spelled("index.txt")) refused(["bundle", "--out", p], "UNSAFE_PATH");
    refused(["crl", "--out", path.join(ca.dir, "crlnumber")], "UNSAFE_PATH");
    refused(["crl", "--out", path.join(ca.dir, "pki.json")], "UNSAFE_PATH");
    refused(["bundle", "--out", path.join(ca.dir, "crl.pem")], "UNSAFE_PATH");
    refused(["sign-csr", csr, "--profile", "client", "--out", path.join(ca.dir, "certs", "x.pem")], "UNSAFE_PATH");
    refused(["sign-csr", csr, "--profile", "client", "--out", path.join(ca.dir, "issued", "web.crt")], "UNSAFE_PATH");
    const pass = path.join(ca.root, "p12pass");
    fs.writeFileSync(pass, "p12 password\n", { mode: 0o600 });
    refused(["export", "p12", "alice", "--p12-passphrase-file", pass, "--out", path.join(ca.dir, "audit.log")], "UNSAFE_PATH");
    refused(["export", "p12", "alice", "--p12-passphrase-file", pass, "--out", path.join(link, "private", "alice.key")], "UNSAFE_PATH");
    caStillWorks();
  });

  it("status --metrics and serve --ready-file are confined the same way (a symlinked parent does not get around it)", () => {
    const link = path.join(ca.root, "link2-to-ca");
    fs.symlinkSync(ca.dir, link);
    for (const p of [path.join(link, "private", "ca.key"), path.join(link, "index.txt"), path.join(ca.dir, "ca.crt")]) {
      const before = snapshot(ca.dir);
      const r = ca.run(["status", "--metrics", p]);
      expectRefused(r, before, ca.dir, /^pki: error: --metrics /);
    }
    const fifo = mkfifo(path.join(ca.root, "ready.fifo"));
    const before = snapshot(ca.dir);
    const r = ca.run(["serve", "--listen", "127.0.0.1:0", "--ready-file", fifo], { timeout: 20_000 });
    expectRefused(r, before, ca.dir, /--ready-file/);
    caStillWorks();
  });

  it("--out-dir inside the CA's own directories, or one whose file names hit CA files, is refused", () => {
    refused(["issue", "client", "zed", "--out-dir", path.join(ca.dir, "private")], "UNSAFE_PATH");
    refused(["sign-csr", csr, "--profile", "client", "--out-dir", path.join(ca.dir, "certs")], "UNSAFE_PATH");
    // a CSR file named ca.csr, signed into the CA directory itself, would become ca.crt
    const caCsr = path.join(ca.root, "ca.csr");
    fs.copyFileSync(csr, caCsr);
    refused(["sign-csr", caCsr, csr, "--profile", "client", "--out-dir", ca.dir], "UNSAFE_PATH");
  });

  it("store export --to inside the CA directory (private/, issued/, through a symlink) or around it is refused; outside it works", () => {
    const link = path.join(ca.root, "link-to-ca-private");
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(ca.dir, "private"), link);
    // "..export" is a name inside the CA directory, not its parent
    for (const to of [path.join(ca.dir, "private", "copy"), path.join(ca.dir, "issued", "x"), path.join(ca.dir, "new", "deeper"), path.join(link, "copy"), `${ca.dir}/..export`, `${ca.dir}/private/../..x`]) {
      const r = refused(["store", "export", "--to", to], "UNSAFE_PATH");
      expect(r.stderr).toMatch(/is inside the CA directory .*export to a directory outside it/);
      expect(fs.existsSync(to)).toBe(false);
    }
    expect(fs.existsSync(path.join(ca.dir, "new"))).toBe(false);
    refused(["store", "export", "--to", ca.root], "UNSAFE_PATH");
    const out = path.join(ca.root, "exported", "ca");
    const r = ca.run(["store", "export", "--to", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(ca.run(["store", "export", "--to", path.join(ca.root, "exported2")]).code).toBe(0);
    expect(fs.existsSync(path.join(out, "private", "ca.key"))).toBe(true);
    caStillWorks();
  });

  it("an explicit --out onto crl.pem (a CA state file: crl*.pem) is refused, however spelled; plain `pki crl` still writes it", () => {
    const link = path.join(ca.root, "link-to-ca-crl");
    if (!fs.existsSync(link)) fs.symlinkSync(ca.dir, link);
    for (const p of [path.join(ca.dir, "crl.pem"), path.join(ca.dir, "issued", "..", "crl.pem"), path.join(link, "crl.pem"), path.join(ca.dir, "CRL.PEM")]) {
      refused(["crl", "--out", p], "UNSAFE_PATH");
      refused(["crl", "--out", p, "--if-expiring-within", "1"], "UNSAFE_PATH");
    }
    refused(["crl", "--out", path.join(ca.dir, "crl-chain.pem")], "UNSAFE_PATH");
    refused(["crl", "--der", "--out", path.join(ca.dir, "crl.pem")], "UNSAFE_PATH");
    const r = ca.run(["crl", "--out", path.join(ca.dir, "crl.pem")]);
    expect(r.stderr).toMatch(/^pki: error: .*plain `pki crl`/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    const before = fs.readFileSync(path.join(ca.dir, "crl.pem"));
    expect(ca.run(["crl"]).code).toBe(0); // the command's own write of crl.pem is not an output path
    expect(fs.readFileSync(path.join(ca.dir, "crl.pem")).equals(before)).toBe(false);
    expect(openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout"]).code).toBe(0);
  });

  it("the command's own default file stays writable, and outputs elsewhere work", () => {
    expect(ca.run(["crl", "--der", "--out", path.join(ca.dir, "crl.der")]).code).toBe(0);
    expect(ca.run(["bundle", "--out", path.join(ca.dir, "ca-clients.crt")]).code).toBe(0);
    const out = path.join(ca.root, "elsewhere.crl");
    expect(ca.run(["crl", "--out", out]).code).toBe(0);
    expect(openssl(["crl", "-in", out, "-noout"]).code).toBe(0);
    const dir = fs.mkdtempSync(path.join(ca.root, "out-"));
    const r = ca.run(["issue", "client", "ext1", "--out-dir", dir, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(dir, "ext1.key"))).toBe(true);
    caStillWorks();
  });
});

describe("finding 2: outputs are regular files, inputs are read with a bound", () => {
  it("crl --out onto a device node, a FIFO, a symlink or a directory is refused and leaves it as it was", () => {
    // a private device node (as /dev/null is): the test never touches the real /dev
    const dev = path.join(ca.root, "null-device");
    const mk = spawnSync("mknod", [dev, "c", "1", "3"]);
    expect(mk.status, `mknod needs root: ${mk.stderr}`).toBe(0);
    refused(["crl", "--out", dev], "UNSAFE_PATH");
    expect(fs.lstatSync(dev).isCharacterDevice()).toBe(true);

    const fifo = mkfifo(path.join(ca.root, "out.fifo"));
    refused(["crl", "--out", fifo], "UNSAFE_PATH");
    refused(["bundle", "--out", fifo], "UNSAFE_PATH");
    refused(["sign-csr", csr, "--profile", "client", "--out", fifo], "UNSAFE_PATH");
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);

    const target = path.join(ca.root, "target.pem");
    fs.writeFileSync(target, "keep me\n");
    const link = path.join(ca.root, "out-link.pem");
    fs.symlinkSync(target, link);
    refused(["crl", "--out", link], "UNSAFE_PATH");
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(target, "utf8")).toBe("keep me\n");

    const d = path.join(ca.root, "a-directory");
    fs.mkdirSync(d);
    refused(["crl", "--out", d], "UNSAFE_PATH");
  });

  it("a device as input is refused at once, never read (sign-csr, revoke, --names-from, --passphrase-file)", () => {
    const t0 = Date.now();
    refused(["sign-csr", "/dev/zero", "--profile", "client"], "BAD_INPUT", { timeout: 20_000 });
    refused(["revoke", "/dev/zero"], "BAD_INPUT", { timeout: 20_000 });
    refused(["issue", "client", "--names-from", "/dev/zero"], "BAD_INPUT", { timeout: 20_000 });
    refused(["issue", "client", "--names-from", "/dev/urandom"], "BAD_INPUT", { timeout: 20_000 });
    const r = ca.run(["crl", "--passphrase-file", "/dev/zero"], { timeout: 20_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^pki: error: the file given to --passphrase-file is a device/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it("an endless pipe is cut after 1 MiB (sign-csr of a FIFO fed by an endless writer)", async () => {
    const fifo = mkfifo(path.join(ca.root, "endless.fifo"));
    // the writer: endless zeros into the FIFO; it dies of SIGPIPE once pki closes it
    const writer = spawn("sh", ["-c", `exec cat /dev/zero > '${fifo}'`], { stdio: "ignore" });
    try {
      const before = snapshot(ca.dir);
      const r = ca.run(["sign-csr", fifo, "--profile", "client"], { timeout: 20_000 });
      expectRefused(r, before, ca.dir, /at most 1048576 bytes/);
    } finally {
      writer.kill("SIGKILL");
    }
  });

  it("a directory as input is refused", () => {
    refused(["sign-csr", ca.root, "--profile", "client"], "BAD_INPUT");
    refused(["issue", "client", "--names-from", ca.root], "BAD_INPUT");
  });

  it("a passphrase through a pipe still works (bounded, not refused)", async () => {
    const fifo = mkfifo(path.join(ca.root, "pass.fifo"));
    const writer = spawn("sh", ["-c", `printf '%s\\n' '${PASSPHRASE}' > '${fifo}'`], { stdio: "ignore" });
    const r = ca.run(["crl", "--passphrase-file", fifo]);
    writer.kill();
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("finding 9: an error about a secret file never echoes the secret", () => {
  const audit = () => fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8");

  /** Run with a secret typed where its file name belongs: it must not appear in stderr, the JSON error or audit.log. */
  function noEcho(secret: string, args: string[], opts: { env?: Record<string, string>; bare?: boolean } = {}): void {
    const run = (a: string[]) => (opts.bare ? pki(["--dir", ca.dir, ...a], { cwd: ca.root, env: opts.env }) : ca.run(a, { env: opts.env }));
    for (const a of [args, [...args, "--json"]]) {
      const r = run(a);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr + r.stdout).not.toContain(secret);
      expect(r.stderr + r.stdout).toMatch(/the file (given to|named by) \S+ does not exist/);
    }
    expect(audit()).not.toContain(secret);
  }

  it("--passphrase-file 'the passphrase itself' (crl, revoke)", () => {
    noEcho("Tr0ub4dor&3-horse", ["crl", "--passphrase-file", "Tr0ub4dor&3-horse"]);
    noEcho("hunter2-is-my-pass", ["revoke", "alice", "--passphrase-file", "hunter2-is-my-pass"]);
  });

  it("variant: $PKI_PASSPHRASE_FILE, --key-passphrase-file and --p12-passphrase-file", () => {
    noEcho("env-secret-value", ["crl"], { env: { PKI_PASSPHRASE_FILE: "env-secret-value" }, bare: true });
    noEcho("key-secret-value", ["issue", "client", "kp1", "--key-passphrase-file", "key-secret-value"]);
    noEcho("p12-secret-value", ["export", "p12", "alice", "--p12-passphrase-file", "p12-secret-value", "--out", path.join(ca.root, "a.p12")]);
  });
});
