// The CA key on a PKCS#11 token (issue 15): a real SoftHSM2 token, made per
// run in a temporary SOFTHSM2_CONF, keys made by OpenSC's pkcs11-tool or by
// `pki init --key-type`; every certificate and CRL checked by openssl; no CA
// key file in the directory; the PIN in no output, no file, no audit line.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openssl, pki, ROOT, snapshot, tmpdir, type Run } from "../helpers.js";
import { expectRefused } from "./lib.js";

const MODULE = "/usr/lib/softhsm/libsofthsm2.so";
const PIN = "pin-4711-never-shown";
const SO_PIN = "so-pin-0815-never-shown";
const TOKEN = "pki-test";

let root: string;
let env: Record<string, string>;
let pinFile: string;
/** every stdout and stderr of every pki run of this file: the PIN must be in none */
const seen: string[] = [];

const uri = (object: string, query = `&pin-source=file:${pinFile}`) => `pkcs11:token=${TOKEN};object=${object}?module-path=${MODULE}${query}`;

function run(args: string[], extra: Record<string, string> = {}): Run {
  const r = pki(args, { cwd: root, env: { ...env, ...extra } });
  seen.push(r.stdout, r.stderr);
  return r;
}

function tool(cmd: string, args: string[], pkg: string): string {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: "utf8" });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${cmd} is not installed: apt-get install ${pkg}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
  return r.stdout + r.stderr;
}

/** Every file under dir, recursively. */
function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

/** No CA key file: no private/ca.key, and no private key anywhere in the directory whose public half is ca.crt's. */
function expectNoKeyFile(dir: string): void {
  expect(fs.existsSync(path.join(dir, "private", "ca.key"))).toBe(false);
  const caPub = openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-pubkey"]).stdout;
  for (const f of files(dir)) {
    if (!/PRIVATE KEY/.test(fs.readFileSync(f, "latin1"))) continue;
    // only the keys of issued names, each the key of its own certificate
    expect(f).toMatch(/\/private\/[^/]+\.key$/);
    const pub = openssl(["pkey", "-in", f, "-pubout"]);
    expect(pub.code, pub.stderr).toBe(0);
    expect(pub.stdout).not.toBe(caPub);
  }
}

function csr(name: string, curve = "P-256"): string {
  const file = path.join(root, `${name}.csr`);
  const r = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${curve}`, "-nodes", "-keyout", path.join(root, `${name}.key`), "-subj", `/CN=${name}`, "-out", file]);
  expect(r.code, r.stderr).toBe(0);
  return file;
}

function verifyCert(ca: string, cert: string, crl?: string): Run {
  return openssl(["verify", "-CAfile", path.join(ca, "ca.crt"), ...(crl ? ["-crl_check", "-CRLfile", crl] : []), cert]);
}

function expectCrlVerifies(ca: string): void {
  const r = openssl(["crl", "-in", path.join(ca, "crl.pem"), "-noout", "-CAfile", path.join(ca, "ca.crt")]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout + r.stderr).toContain("verify OK");
}

beforeAll(() => {
  root = tmpdir("pki-p11-");
  if (!fs.existsSync(MODULE)) throw new Error(`${MODULE} is missing: apt-get install softhsm2`);
  // the optional native binding pki loads for pkcs11: URIs
  if (!fs.existsSync(path.join(ROOT, "node_modules", "pkcs11js", "build", "Release", "pkcs11.node"))) {
    throw new Error("pkcs11js (an optional dependency) is not built: install g++, make and python3, then npm ci");
  }
  const tokens = path.join(root, "tokens");
  fs.mkdirSync(tokens);
  const conf = path.join(root, "softhsm2.conf");
  fs.writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  env = { SOFTHSM2_CONF: conf };
  pinFile = path.join(root, "token.pin");
  fs.writeFileSync(pinFile, PIN + "\n", { mode: 0o600 });
  tool("softhsm2-util", ["--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN, "--pin", PIN], "softhsm2");
  for (const [label, id, type] of [["ec-ca", "01", "EC:prime256v1"], ["rsa-ca", "02", "rsa:2048"]]) {
    tool("pkcs11-tool", ["--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN, "--keypairgen", "--key-type", type!, "--label", label!, "--id", id!], "opensc");
  }
}, 120_000);

describe("a CA whose key is on a SoftHSM2 token", () => {
  it("init on an existing P-256 key: no key file, pki.json names the token, ca.crt and the first CRL verify", () => {
    const dir = path.join(root, "ec");
    const r = run(["init", "--dir", dir, "--cn", "Token CA", "--key", uri("ec-ca"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.keyType).toBe("ec-p256");
    expect(out.key).toBe(`pkcs11:token=${TOKEN};object=ec-ca`);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "pki.json"), "utf8")).key).toBe(uri("ec-ca"));
    expectNoKeyFile(dir);
    // the certificate's key is the token's key
    const pub = tool("pkcs11-tool", ["--module", MODULE, "--token-label", TOKEN, "--read-object", "--type", "pubkey", "--label", "ec-ca", "--output-file", path.join(root, "ec-ca.pub.der")], "opensc");
    expect(pub).toBeDefined();
    const tokenPub = openssl(["pkey", "-pubin", "-inform", "DER", "-in", path.join(root, "ec-ca.pub.der"), "-outform", "PEM"]).stdout;
    const certPub = openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-pubkey"]).stdout;
    expect(certPub).toBe(tokenPub);
    const self = openssl(["verify", "-CAfile", path.join(dir, "ca.crt"), path.join(dir, "ca.crt")]);
    expect(self.code, self.stderr + self.stdout).toBe(0);
    expectCrlVerifies(dir);
  });

  it("signs CSRs, issues pairs, revokes, renews and writes CRLs on the token; openssl verifies all of it", () => {
    const dir = path.join(root, "ec");
    const g = ["--dir", dir];
    const s = run([...g, "sign-csr", csr("agent1"), csr("agent2"), "--profile", "client", "--out-dir", root, "--json"]);
    expect(s.code, s.stderr).toBe(0);
    for (const n of ["agent1", "agent2"]) {
      const v = verifyCert(dir, path.join(root, `${n}.crt`));
      expect(v.code, v.stderr + v.stdout).toBe(0);
    }
    const i = run([...g, "issue", "server", "web1", "--san", "dns:web1.example.lan", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    const web1 = JSON.parse(i.stdout);
    expect(verifyCert(dir, web1.cert).code).toBe(0);
    expect(openssl(["x509", "-in", web1.cert, "-noout", "-text"]).stdout).toContain("ecdsa-with-SHA256");

    const rv = run([...g, "revoke", "web1", "--reason", "keyCompromise", "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    expectCrlVerifies(dir);
    const revoked = verifyCert(dir, web1.cert, path.join(dir, "crl.pem"));
    expect(revoked.code).not.toBe(0);
    expect(revoked.stdout + revoked.stderr).toMatch(/certificate revoked/);
    expect(verifyCert(dir, path.join(root, "agent1.crt"), path.join(dir, "crl.pem")).code).toBe(0);

    const c = run([...g, "crl", "--json"]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).revoked).toBe(1);
    expectCrlVerifies(dir);

    const i2 = run([...g, "issue", "client", "alice", "--json"]);
    expect(i2.code, i2.stderr).toBe(0);
    const rn = run([...g, "renew", "alice", "--json"]);
    expect(rn.code, rn.stderr).toBe(0);
    expect(verifyCert(dir, path.join(dir, "issued", "alice.crt"), path.join(dir, "crl.pem")).code).toBe(0);
    expectCrlVerifies(dir);

    const d = run([...g, "doctor", "--json"]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).checks).toContainEqual(expect.objectContaining({ name: "ca-key", status: "ok" }));
    expectNoKeyFile(dir);
  });

  it("an RSA key made by pkcs11-tool, the PIN from PKI_PKCS11_PIN: sha256WithRSAEncryption that openssl verifies", () => {
    const dir = path.join(root, "rsa");
    const key = uri("rsa-ca", "");
    const r = run(["init", "--dir", dir, "--cn", "RSA Token CA", "--key", key, "--json"], { PKI_PKCS11_PIN: PIN });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).keyType).toBe("rsa-2048");
    expect(openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-text"]).stdout).toMatch(/Signature Algorithm: sha256WithRSAEncryption[\s\S]*Public-Key: \(2048 bit\)/);
    const s = run(["--dir", dir, "sign-csr", csr("rsa-agent"), "--profile", "client", "--out", path.join(root, "rsa-agent.crt")], { PKI_PKCS11_PIN: PIN });
    expect(s.code, s.stderr).toBe(0);
    expect(verifyCert(dir, path.join(root, "rsa-agent.crt")).code).toBe(0);
    const rv = run(["--dir", dir, "revoke", path.join(root, "rsa-agent.crt")], { PKI_PKCS11_PIN: PIN });
    expect(rv.code, rv.stderr).toBe(0);
    expectCrlVerifies(dir);
    expectNoKeyFile(dir);
  });

  it("init --key-type ec-p384 makes the key pair on the token (not extractable) and signs with ECDSA SHA-384", () => {
    const dir = path.join(root, "p384");
    const r = run(["init", "--dir", dir, "--cn", "P-384 Token CA", "--key", uri("made-by-pki"), "--key-type", "ec-p384", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).keyType).toBe("ec-p384");
    const objects = tool("pkcs11-tool", ["--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN, "--list-objects", "--type", "privkey"], "opensc");
    const made = objects.split(/\n(?=\S)/).find((b) => b.includes("made-by-pki"));
    expect(made, objects).toBeDefined();
    expect(made).toMatch(/Access:\s+sensitive, always sensitive, never extractable/);
    expect(openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-text"]).stdout).toMatch(/ecdsa-with-SHA384[\s\S]*NIST CURVE: P-384/);
    const i = run(["--dir", dir, "issue", "client", "bob", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    expect(verifyCert(dir, JSON.parse(i.stdout).cert, path.join(dir, "crl.pem")).code).toBe(0);
    expectNoKeyFile(dir);
    // a second --key-type on the same object is refused: the token keeps the first key
    const again = run(["init", "--dir", path.join(root, "p384-again"), "--cn", "X", "--key", uri("made-by-pki"), "--key-type", "ec-p384"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^pki: error: .*already holds a private key/);
    expect(fs.existsSync(path.join(root, "p384-again"))).toBe(false);
  });

  it("a wrong PIN, a missing token, a missing module, no PIN: one line, nothing written", () => {
    const dir = path.join(root, "ec");
    const before = snapshot(dir);
    const badPin = path.join(root, "bad.pin");
    fs.writeFileSync(badPin, "not-the-pin\n", { mode: 0o600 });
    const cases: Array<[string[], Record<string, string>, RegExp, number]> = [
      [["issue", "client", "x1", "--key", uri("ec-ca", `&pin-source=file:${badPin}`)], {}, /PIN was refused/, 1],
      [["revoke", path.join(root, "agent1.crt"), "--key", uri("ec-ca", "")], { PKI_PKCS11_PIN: "not-the-pin" }, /PIN was refused/, 1],
      [["crl", "--key", `pkcs11:token=absent;object=ec-ca?module-path=${MODULE}&pin-source=file:${pinFile}`], {}, /token labelled "absent" is not present/, 1],
      [["sign-csr", csr("agent3"), "--profile", "client", "--key", `pkcs11:token=${TOKEN};object=ec-ca?module-path=/usr/lib/no-such-pkcs11.so&pin-source=file:${pinFile}`], {}, /module \/usr\/lib\/no-such-pkcs11.so does not exist/, 1],
      [["issue", "client", "x2", "--key", uri("no-such-key")], {}, /no private key matching/, 1],
    ];
    for (const [args, extra, pattern] of cases) {
      const r = run(["--dir", dir, ...args], extra);
      expectRefused(r, before, dir, pattern);
    }
    // a key that is not ca.crt's (the RSA one) is refused before signing
    expectRefused(run(["--dir", dir, "crl", "--key", uri("rsa-ca")]), before, dir, /does not belong to ca\.crt/);

    // no PIN anywhere: PIN_REQUIRED, exit 2
    const noPin = run(["--dir", dir, "crl", "--key", uri("ec-ca", ""), "--json"]);
    expect(noPin.code).toBe(2);
    expect(JSON.parse(noPin.stdout).error.code).toBe("PIN_REQUIRED");
    // a PIN in the URI is refused without echoing it
    const pinValue = run(["--dir", dir, "crl", "--key", uri("ec-ca", `&pin-value=${PIN}`)]);
    expect(pinValue.code).toBe(2);
    expect(pinValue.stderr).toMatch(/^pki: error: invalid pkcs11: URI: pin-value/);
    expect(snapshot(dir)).toEqual(before);

    // init refuses the same way and creates no directory
    const dir2 = path.join(root, "never");
    const bad = run(["init", "--dir", dir2, "--cn", "X", "--key", uri("ec-ca", `&pin-source=file:${badPin}`)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(/^pki: error: the PIN was refused/);
    expect(fs.existsSync(dir2)).toBe(false);

    // doctor reports a token it cannot log in to
    const d = run(["--dir", dir, "doctor", "--json", "--key", uri("ec-ca", `&pin-source=file:${badPin}`)]);
    expect(d.code).toBe(1);
    expect(JSON.parse(d.stdout).checks).toContainEqual(expect.objectContaining({ name: "ca-key", status: "fail" }));
  });

  it("init --parent: an issuing CA with its key made on the token, signed by the root's key on the token", () => {
    const dir = path.join(root, "issuing");
    const r = run(["init", "--dir", dir, "--cn", "Token Issuing CA", "--parent", path.join(root, "ec"), "--key", uri("issuing"), "--key-type", "ec-p256", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expectNoKeyFile(dir);
    const i = run(["--dir", dir, "issue", "client", "carol", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    const v = openssl(["verify", "-CAfile", path.join(root, "ec", "ca.crt"), "-untrusted", path.join(dir, "ca.crt"), JSON.parse(i.stdout).cert]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it("the PIN appears in no output, no JSON, no audit line and no file of any CA directory", () => {
    expect(seen.length).toBeGreaterThan(20);
    for (const s of seen) {
      expect(s).not.toContain(PIN);
      expect(s).not.toContain(SO_PIN);
    }
    for (const ca of ["ec", "rsa", "p384"]) {
      const dir = path.join(root, ca);
      const audit = fs.readFileSync(path.join(dir, "audit.log"), "utf8");
      expect(audit.length).toBeGreaterThan(0);
      for (const f of files(dir)) expect(fs.readFileSync(f, "latin1"), f).not.toContain(PIN);
    }
  });
});
