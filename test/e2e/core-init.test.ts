/**
 * pki init judged by openssl: the encrypted CA key, file modes under any
 * umask, the code-signing CA, adopting a CA made with openssl, and the
 * refusals that must leave the directory as it was.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, cleanEnv, json, makeCa, openssl, pki, PASSPHRASE, snapshot, tmpdir } from "../helpers.js";
import { CSR, expectRefused, opensslExtensions, opensslField, verify } from "./lib.js";

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

/** PBKDF2 parameters of an encrypted PKCS#8 file, as openssl asn1parse reads them. */
function pbes2(keyFile: string): { iterations: number; prf: string; cipher: string } {
  const r = openssl(["asn1parse", "-in", keyFile]);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.split("\n");
  expect(r.stdout).toMatch(/OBJECT\s+:PBES2/);
  const k = lines.findIndex((l) => /OBJECT\s+:PBKDF2/.test(l));
  expect(k).toBeGreaterThan(0);
  const int = lines.slice(k).find((l) => /prim: INTEGER/.test(l))!;
  return {
    iterations: parseInt(/INTEGER\s+:([0-9A-F]+)/.exec(int)![1]!, 16),
    prf: /OBJECT\s+:(hmacWith\S+)/.exec(r.stdout)?.[1] ?? "hmacWithSHA1",
    cipher: /OBJECT\s+:(aes-\d+-cbc)/.exec(r.stdout)?.[1] ?? "?",
  };
}

describe("pki init", () => {
  it("writes a CA key that openssl pkey decrypts with the passphrase (PBES2, PBKDF2-SHA256 >= 600000, AES-256-CBC)", () => {
    const ca = makeCa();
    const key = path.join(ca.dir, "private", "ca.key");
    expect(fs.readFileSync(key, "utf8")).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    const ok = openssl(["pkey", "-in", key, "-passin", `file:${ca.pass}`, "-noout"]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = tmpdir();
    fs.writeFileSync(path.join(bad, "p"), "not the passphrase\n", { mode: 0o600 });
    expect(openssl(["pkey", "-in", key, "-passin", `file:${path.join(bad, "p")}`, "-noout"]).code).not.toBe(0);
    const p = pbes2(key);
    expect(p.iterations).toBeGreaterThanOrEqual(600_000);
    expect(p.prf).toBe("hmacWithSHA256");
    expect(p.cipher).toBe("aes-256-cbc");
    // the key is the CA certificate's
    const pub = openssl(["pkey", "-in", key, "-passin", `file:${ca.pass}`, "-pubout"]).stdout;
    expect(pub).toBe(openssl(["x509", "-in", path.join(ca.dir, "ca.crt"), "-noout", "-pubkey"]).stdout);
  });

  it("writes the OpenSSL ca files, a first CRL openssl verifies, and the nginx bundle", () => {
    const ca = makeCa();
    const crt = path.join(ca.dir, "ca.crt");
    const crl = openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-text", "-CAfile", crt]);
    expect(crl.code, crl.stderr).toBe(0);
    expect(crl.stderr).toContain("verify OK");
    expect(crl.stdout).toMatch(/X509v3 CRL Number: ?\n\s+1\n/);
    expect(crl.stdout).toContain("No Revoked Certificates.");
    expect(fs.readFileSync(path.join(ca.dir, "crlnumber"), "utf8")).toBe("02\n");
    expect(fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8")).toBe("");
    expect(fs.readFileSync(path.join(ca.dir, "index.txt.attr"), "utf8")).toBe("unique_subject = no\n");
    expect(fs.readFileSync(path.join(ca.dir, "ca-clients.crt"), "utf8")).toBe(fs.readFileSync(crt, "utf8"));
    for (const d of ["certs", "issued", "private"]) expect(fs.statSync(path.join(ca.dir, d)).isDirectory()).toBe(true);
    const settings = JSON.parse(fs.readFileSync(path.join(ca.dir, "pki.json"), "utf8"));
    expect(settings).toMatchObject({ version: 1, subject: "O=Acme, CN=Test Root CA", keyType: "ec-p256", crlDays: 7, codeSigning: false, encrypted: true });
  });

  it("--json reports dir, subject, serial, notAfter, keyType and the SHA-256 fingerprint openssl computes", () => {
    const root = tmpdir();
    fs.writeFileSync(path.join(root, "pass"), PASSPHRASE + "\n", { mode: 0o600 });
    const dir = path.join(root, "pki");
    const r = pki(["init", "--dir", dir, "--subject", "CN=Json CA,O=Acme,C=FR", "--key-type", "ec-p384", "--passphrase-file", path.join(root, "pass"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    const crt = path.join(dir, "ca.crt");
    const fp = openssl(["x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]).stdout.trim().split("=")[1]!.replace(/:/g, "").toLowerCase();
    expect(d).toEqual({ ok: true, dir, subject: "CN=Json CA, O=Acme, C=FR", serial: opensslField(crt, "-serial"), notAfter: expect.any(String), keyType: "ec-p384", fingerprint: fp, fingerprints: { sha256: fp }, cert: crt, path: crt });
    expect(opensslField(crt, "-subject")).toBe("C=FR,O=Acme,CN=Json CA");
    const end = new Date(openssl(["x509", "-in", crt, "-noout", "-enddate"]).stdout.trim().split("=")[1]!);
    expect(new Date(d.notAfter).getTime()).toBe(end.getTime());
    // default validity 3650 days
    expect(Math.round((end.getTime() - Date.now()) / 86_400_000)).toBe(3650);
  });

  it("creates key files 0600 and private/ 0700 even with umask 000", () => {
    const root = tmpdir();
    fs.writeFileSync(path.join(root, "pass"), PASSPHRASE + "\n", { mode: 0o600 });
    const dir = path.join(root, "pki");
    const sh = (args: string[]) => {
      const q = args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
      const r = spawnSync("sh", ["-c", `umask 000 && exec '${process.execPath}' '${BIN}' ${q}`], { env: cleanEnv(), encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return r;
    };
    sh(["init", "--dir", dir, "--cn", "Umask CA", "--passphrase-file", path.join(root, "pass")]);
    expect(mode(path.join(dir, "private"))).toBe("700");
    expect(mode(path.join(dir, "private", "ca.key"))).toBe("600");
    expect(mode(path.join(dir, "ca.crt"))).toBe("644");
    expect(mode(path.join(dir, "index.txt"))).toBe("644");
    sh(["--dir", dir, "--passphrase-file", path.join(root, "pass"), "issue", "client", "alice"]);
    expect(mode(path.join(dir, "private", "alice.key"))).toBe("600");
    expect(mode(path.join(dir, "issued", "alice.crt"))).toBe("644");
    for (const f of fs.readdirSync(path.join(dir, "certs"))) expect(mode(path.join(dir, "certs", f))).toBe("644");
    const out = path.join(root, "out");
    fs.mkdirSync(out);
    sh(["--dir", dir, "--passphrase-file", path.join(root, "pass"), "issue", "server", "web1", "--san", "dns:web1.example.lan", "--out-dir", out]);
    expect(mode(path.join(out, "web1.key"))).toBe("600");
    expect(mode(path.join(out, "web1.crt"))).toBe("644");
    // no file anywhere in the CA directory is writable by group or others
    const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [path.join(d, e.name), ...walk(path.join(d, e.name))] : [path.join(d, e.name)]));
    for (const p of walk(dir)) expect(fs.statSync(p).mode & 0o022, p).toBe(0);
  });

  it("makes missing parent directories (--dir /etc/pki/acme where /etc/pki does not exist), like mkdir -p, and nothing when it fails", () => {
    const root = tmpdir();
    const dir = path.join(root, "etc", "pki", "acme");
    const pass = path.join(root, "pass");
    const failed = pki(["init", "--dir", dir, "--cn", "Deep CA", "--passphrase-file", pass]);
    expect(failed.code).toBe(1);
    expect(fs.existsSync(path.join(root, "etc"))).toBe(false);
    fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
    const r = pki(["init", "--dir", dir, "--cn", "Deep CA", "--passphrase-file", pass]);
    expect(r.code, r.stderr).toBe(0);
    expect(openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-subject"]).stdout).toContain("Deep CA");
    expect(mode(path.join(root, "etc", "pki"))).toBe("755");
  });

  it("--no-passphrase stores the key unencrypted, still 0600, with a warning", () => {
    const root = tmpdir();
    const dir = path.join(root, "pki");
    const r = pki(["init", "--dir", dir, "--cn", "Plain CA", "--no-passphrase"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning/i);
    const key = path.join(dir, "private", "ca.key");
    expect(fs.readFileSync(key, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(mode(key)).toBe("600");
    expect(openssl(["pkey", "-in", key, "-noout"]).code).toBe(0);
    const i = pki(["--dir", dir, "issue", "client", "bob", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    // revoke and crl sign too, and need no passphrase either (they used to demand one)
    const rv = pki(["--dir", dir, "revoke", "bob", "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    const c = pki(["--dir", dir, "crl", "--json"]);
    expect(c.code, c.stderr).toBe(0);
    const text = openssl(["crl", "-in", path.join(dir, "crl.pem"), "-noout", "-text"]).stdout;
    expect(text).toContain(`Serial Number: ${json(i).serial}`);
  });

  it("--code-signing: the CA's EKU carries codeSigning + clientAuth + serverAuth, so nginx still accepts its client certificates", () => {
    const ca = makeCa(["--code-signing"]);
    const crt = path.join(ca.dir, "ca.crt");
    const eku = opensslExtensions(crt)["X509v3 Extended Key Usage"];
    expect(eku?.value.split(", ").sort()).toEqual(["Code Signing", "TLS Web Client Authentication", "TLS Web Server Authentication"]);
    for (const [profile, purpose] of [["client", "sslclient"], ["code-signing", "sslclient"], ["server", "sslserver"]] as const) {
      const r = ca.run(["issue", profile, `${profile}1`, "--san", profile === "code-signing" ? "email:a@example.lan" : "dns:h.example.lan", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const v = verify(crt, json(r).cert, purpose);
      expect(v.stdout + v.stderr, `${profile} ${purpose}`).toMatch(/: OK/);
    }
  });

  it("why: a CA whose EKU is codeSigning alone makes openssl refuse its client certificates", () => {
    // the counter-example, made with openssl itself
    const d = tmpdir();
    const f = (n: string) => path.join(d, n);
    const run = (args: string[]) => {
      const r = openssl(args);
      expect(r.code, r.stderr).toBe(0);
    };
    run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("ca.key"), "-subj", "/CN=CS only CA", "-days", "30", "-out", f("ca.crt"),
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "extendedKeyUsage=codeSigning"]);
    run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("c.key"), "-subj", "/CN=client", "-out", f("c.csr")]);
    fs.writeFileSync(f("ext"), "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
    run(["x509", "-req", "-in", f("c.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-days", "10", "-extfile", f("ext"), "-out", f("c.crt")]);
    const v = verify(f("ca.crt"), f("c.crt"), "sslclient");
    expect(v.code).not.toBe(0);
    expect(v.stdout + v.stderr).toMatch(/unsuitable certificate purpose|unsupported certificate purpose/);
  });

  it("refuses a directory that already holds a CA: exit 1, nothing changed", () => {
    const ca = makeCa();
    const full = snapshot(ca.dir, []);
    const r = pki(["init", "--dir", ca.dir, "--cn", "Second CA", "--passphrase-file", ca.pass]);
    expectRefused(r, snapshot(ca.dir), ca.dir, /already holds a CA/);
    expect(snapshot(ca.dir, [])).toEqual(full); // not even audit.log
    const j = pki(["init", "--dir", ca.dir, "--cn", "Second CA", "--passphrase-file", ca.pass, "--json"]);
    expect(j.code).toBe(1);
    expect(json(j).error.code).toBe("CA_EXISTS");
  });

  it("a wrong passphrase: exit 1, one error line, nothing changed", () => {
    const ca = makeCa();
    ca.run(["issue", "client", "first"]);
    const wrong = path.join(ca.root, "wrong");
    fs.writeFileSync(wrong, "this is not it\n", { mode: 0o600 });
    const before = snapshot(ca.dir);
    const r = pki(["--dir", ca.dir, "--passphrase-file", wrong, "issue", "client", "second"]);
    expectRefused(r, before, ca.dir, /passphrase/);
    const s = pki(["--dir", ca.dir, "sign-csr", CSR("p256-san.csr"), "--profile", "ssl"], { env: { PKI_PASSPHRASE: "wrong wrong" } });
    expectRefused(s, before, ca.dir, /passphrase/);
    const j = pki(["--dir", ca.dir, "--json", "issue", "client", "third"], { env: { PKI_PASSPHRASE: "wrong wrong" } });
    expect(j.code).toBe(1);
    expect(json(j).error.code).toBe("BAD_PASSPHRASE");
    expect(snapshot(ca.dir)).toEqual(before);
  });
});

describe("pki init --import-cert/--import-key", () => {
  function legacyCa(encrypted: boolean, extra: string[] = []) {
    const d = tmpdir();
    const pass = path.join(d, "legacy.pass");
    fs.writeFileSync(pass, "legacy passphrase 123\n", { mode: 0o600 });
    const r = openssl([
      "req", "-x509", "-newkey", "rsa:2048", "-keyout", path.join(d, "ca.key"), ...(encrypted ? ["-passout", `file:${pass}`] : ["-nodes"]),
      "-subj", "/C=FR/O=Acme/CN=Legacy Deploy CA", "-days", "3650", "-out", path.join(d, "ca.crt"),
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-addext", "subjectKeyIdentifier=hash", ...extra,
    ]);
    expect(r.code, r.stderr).toBe(0);
    return { d, pass, crt: path.join(d, "ca.crt"), key: path.join(d, "ca.key") };
  }

  it("adopts an openssl CA with an encrypted key; the stored key is re-encrypted at >= 600000 iterations", () => {
    const l = legacyCa(true);
    expect(pbes2(l.key).iterations).toBeLessThan(600_000); // openssl's default, 2048
    const dir = path.join(l.d, "pki");
    const r = pki(["init", "--dir", dir, "--import-cert", l.crt, "--import-key", l.key, "--passphrase-file", l.pass, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.subject).toBe("C=FR, O=Acme, CN=Legacy Deploy CA");
    expect(d.keyType).toBe("rsa-2048");
    expect(fs.readFileSync(path.join(dir, "ca.crt"), "utf8")).toBe(fs.readFileSync(l.crt, "utf8"));
    const stored = path.join(dir, "private", "ca.key");
    expect(mode(stored)).toBe("600");
    expect(pbes2(stored).iterations).toBeGreaterThanOrEqual(600_000);
    expect(openssl(["pkey", "-in", stored, "-passin", `file:${l.pass}`, "-noout"]).code).toBe(0);
    // it issues under the adopted CA: the original ca.crt verifies the chain
    const i = pki(["--dir", dir, "--passphrase-file", l.pass, "issue", "client", "deploy-agent", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    expect(verify(l.crt, json(i).cert, "sslclient").stdout).toMatch(/: OK/);
    expect(opensslField(json(i).cert, "-issuer")).toBe("CN=Legacy Deploy CA,O=Acme,C=FR");
  });

  it("adopts a code-signing-tagged openssl CA and an unencrypted key", () => {
    const l = legacyCa(false, ["-addext", "extendedKeyUsage=codeSigning,clientAuth,serverAuth"]);
    const dir = path.join(l.d, "pki");
    const r = pki(["init", "--dir", dir, "--import-cert", l.crt, "--import-key", l.key, "--passphrase-file", l.pass]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "pki.json"), "utf8")).codeSigning).toBe(true);
    expect(fs.readFileSync(path.join(dir, "private", "ca.key"), "utf8")).toMatch(/ENCRYPTED PRIVATE KEY/);
  });

  it("refuses a wrong passphrase, a key of another CA, a leaf certificate: exit 1, no CA directory", () => {
    const l = legacyCa(true);
    const other = legacyCa(false);
    const wrong = path.join(l.d, "wrong");
    fs.writeFileSync(wrong, "not the passphrase\n", { mode: 0o600 });
    const leafDir = tmpdir();
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(leafDir, "k"), "-subj", "/CN=leaf", "-days", "3", "-out", path.join(leafDir, "c"), "-addext", "basicConstraints=critical,CA:FALSE"]);
    const cases: Array<[string[], RegExp]> = [
      [["--import-cert", l.crt, "--import-key", l.key, "--passphrase-file", wrong], /passphrase/],
      [["--import-cert", l.crt, "--import-key", other.key, "--passphrase-file", l.pass], /not the key/],
      [["--import-cert", path.join(leafDir, "c"), "--import-key", path.join(leafDir, "k"), "--passphrase-file", l.pass], /not a CA certificate/],
    ];
    for (const [args, re] of cases) {
      const dir = path.join(tmpdir(), "pki");
      const r = pki(["init", "--dir", dir, ...args]);
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^pki: error: /);
      expect(lines[0]).toMatch(re);
      expect(fs.existsSync(dir)).toBe(false);
    }
  });
});
