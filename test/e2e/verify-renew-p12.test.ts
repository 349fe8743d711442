/**
 * pki verify, pki renew and PKCS#12 output, judged by the real openssl.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl } from "../helpers.js";

let ca: ReturnType<typeof makeCa>;
beforeAll(() => {
  ca = makeCa();
});

const pubOfCert = (pem: string) => openssl(["x509", "-noout", "-pubkey"], { input: pem }).stdout;
const pubOfKey = (pem: string) => openssl(["pkey", "-pubout"], { input: pem }).stdout;

describe("pki verify", () => {
  it("0 for a valid certificate (openssl agrees), 1 for the wrong purpose", () => {
    const d = json(ca.run(["issue", "client", "alice", "--json"]));
    expect(ca.run(["verify", d.cert]).code).toBe(0);
    expect(ca.run(["verify", "alice", "--purpose", "client"]).code).toBe(0);
    expect(openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), "-purpose", "sslclient", d.cert]).code).toBe(0);
    const wrong = ca.run(["verify", "alice", "--purpose", "server"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("no serverAuth");
    expect(openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), "-purpose", "sslserver", d.cert]).code).not.toBe(0);
  });

  it("code-signing vs ssl: only the code-signing certificate passes --purpose code-signing", () => {
    ca.run(["issue", "code-signing", "admin1", "--san", "email:admin1@example.lan"]);
    ca.run(["issue", "ssl", "op1"]);
    expect(ca.run(["verify", "admin1", "--purpose", "code-signing"]).code).toBe(0);
    expect(ca.run(["verify", "admin1", "--purpose", "client"]).code).toBe(0);
    expect(ca.run(["verify", "op1", "--purpose", "code-signing"]).code).toBe(1);
    expect(ca.run(["verify", "op1", "--purpose", "server"]).code).toBe(0);
  });

  it("1 for a revoked certificate: listed in crl.pem and the index", () => {
    const old = json(ca.run(["issue", "client", "bob", "--json"]));
    const oldPem = fs.readFileSync(old.cert, "utf8");
    const oldFile = path.join(ca.root, "bob-old.crt");
    fs.writeFileSync(oldFile, oldPem);
    expect(ca.run(["renew", "bob"]).code).toBe(0);
    const r = ca.run(["verify", oldFile, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r)).toMatchObject({ ok: false, serial: old.serial, chain: true, revoked: true, expired: false, revocation: { index: "revoked", crl: "revoked" } });
    // openssl with the CRL says the same
    const chainAndCrl = path.join(ca.root, "ca+crl.pem");
    fs.writeFileSync(chainAndCrl, fs.readFileSync(path.join(ca.dir, "ca.crt"), "utf8") + fs.readFileSync(path.join(ca.dir, "crl.pem"), "utf8"));
    const o = openssl(["verify", "-crl_check", "-CAfile", chainAndCrl, oldFile]);
    expect(o.code).not.toBe(0);
    expect(o.stdout + o.stderr).toContain("certificate revoked");
    // the renewed name itself verifies
    expect(ca.run(["verify", "bob"]).code).toBe(0);
  });

  it("1 for a certificate from another CA", () => {
    const other = makeCa([], "pki-other-");
    const d = json(other.run(["issue", "client", "mallory", "--json"]));
    const r = ca.run(["verify", d.cert, "--json"]);
    expect(r.code).toBe(1);
    // still exit 1 and ok: false; the contract makes it a refusal (NOT_ISSUED_HERE), not a failed check
    expect(json(r)).toMatchObject({ ok: false, error: { code: "NOT_ISSUED_HERE" } });
  });

  it("1 when the CA's own extendedKeyUsage excludes the purpose (as nginx/OpenSSL judge it)", () => {
    // a CA tagged codeSigning only (the mistake the contract warns about), adopted with --import-*
    const root = ca.root;
    const key = path.join(root, "cs-ca.key");
    const crt = path.join(root, "cs-ca.crt");
    const g = openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=CodeSign Only CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-addext", "extendedKeyUsage=codeSigning"]);
    expect(g.code, g.stderr).toBe(0);
    const cs = makeCa(["--import-cert", crt, "--import-key", key], "pki-csca-");
    const d = json(cs.run(["issue", "client", "dev1", "--json"]));
    const r = cs.run(["verify", "dev1", "--purpose", "client", "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).checks.find((c: any) => c.name === "purpose").message).toContain("CA's extendedKeyUsage");
    expect(openssl(["verify", "-CAfile", crt, "-purpose", "sslclient", d.cert]).code).not.toBe(0);
    expect(cs.run(["verify", "dev1", "--purpose", "code-signing"]).code).toBe(1); // the leaf itself is clientAuth only
  });
});

describe("pki renew", () => {
  it("issues a new serial for the same subject, names, profile and key; the old one is revoked as superseded", () => {
    const old = json(ca.run(["issue", "server", "web1", "--san", "dns:web1.example.lan,ip:10.0.0.5", "--json"]));
    const oldPem = fs.readFileSync(old.cert, "utf8");
    const oldKey = fs.readFileSync(old.key, "utf8");
    const r = ca.run(["renew", "web1", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.serial).not.toBe(old.serial);
    expect(d.previousSerial).toBe(old.serial);
    const newPem = fs.readFileSync(path.join(ca.dir, "issued", "web1.crt"), "utf8");
    expect(newPem).not.toBe(oldPem);
    expect(fs.readFileSync(path.join(ca.dir, "issued", "web1.chain.crt"), "utf8")).toBe(newPem); // one tier: the chain stops below the root
    const text = openssl(["x509", "-noout", "-text", "-serial"], { input: newPem }).stdout;
    expect(text).toContain(`serial=${d.serial}`);
    expect(text).toMatch(/DNS:web1\.example\.lan, IP Address:10\.0\.0\.5/);
    expect(text).toContain("TLS Web Server Authentication");
    expect(pubOfCert(newPem)).toBe(pubOfCert(oldPem));
    expect(fs.readFileSync(old.key, "utf8")).toBe(oldKey);
    const crl = openssl(["crl", "-in", path.join(ca.dir, "crl.pem"), "-noout", "-text"]).stdout;
    const entry = crl.slice(crl.indexOf(`Serial Number: ${old.serial}`));
    expect(crl).toContain(`Serial Number: ${old.serial}`);
    expect(entry.split("Serial Number:")[1]).toContain("Superseded");
    expect(crl).not.toContain(`Serial Number: ${d.serial}`);
    const list = json(ca.run(["list", "--json"])).certificates;
    expect(list.find((c: any) => c.serial === old.serial)).toMatchObject({ status: "revoked", reason: "superseded" });
    expect(list.find((c: any) => c.serial === d.serial)).toMatchObject({ status: "valid", profile: "server" });
  });

  it("--rekey writes a new key that matches the new certificate; --keep-old leaves the old one valid", () => {
    const old = json(ca.run(["issue", "client", "carol", "--json"]));
    const oldKey = fs.readFileSync(old.key, "utf8");
    const d = json(ca.run(["renew", "carol", "--rekey", "--keep-old", "--json"]));
    const key = fs.readFileSync(old.key, "utf8");
    expect(key).not.toBe(oldKey);
    expect(pubOfKey(key)).toBe(pubOfCert(fs.readFileSync(old.cert, "utf8")));
    expect(fs.statSync(old.key).mode & 0o777).toBe(0o600);
    const list = json(ca.run(["list", "--json"])).certificates;
    expect(list.find((c: any) => c.serial === old.serial).status).toBe("valid");
    expect(list.find((c: any) => c.serial === d.serial).status).toBe("valid");
  });

  it("a sign-csr'ed certificate is renewed by serial with the agent's own key (same SPKI)", () => {
    const csr = path.join(ca.root, "agent.csr");
    const key = path.join(ca.root, "agent.key");
    openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", "/O=Acme/CN=agent7", "-addext", "subjectAltName=DNS:agent7.lan", "-out", csr]);
    const s = json(ca.run(["sign-csr", csr, "--profile", "ssl", "--json"]));
    const d = json(ca.run(["renew", s.serial, "--json"]));
    const pem = fs.readFileSync(path.join(ca.dir, "certs", `${d.serial}.pem`), "utf8");
    expect(pubOfCert(pem)).toBe(pubOfKey(fs.readFileSync(key, "utf8")));
    const subj = openssl(["x509", "-noout", "-subject", "-ext", "subjectAltName"], { input: pem }).stdout;
    expect(subj).toContain("subject=O = Acme, CN = agent7");
    expect(subj).toContain("DNS:agent7.lan");
    expect(json(ca.run(["show", d.serial, "--json"])).profile).toBe("ssl");
  });
});

describe("PKCS#12", () => {
  let p12pass: string;
  beforeAll(() => {
    p12pass = path.join(ca.root, "p12.pass");
    fs.writeFileSync(p12pass, "p12 secret\n", { mode: 0o600 });
  });

  /** key, leaf and CA out of a PKCS#12 with openssl; checks that the key belongs to the leaf. */
  function contents(file: string, legacy: boolean) {
    const L = legacy ? ["-legacy"] : [];
    const info = openssl(["pkcs12", "-info", "-nokeys", "-in", file, "-passin", `file:${p12pass}`, ...L]);
    const leaf = openssl(["pkcs12", "-in", file, "-passin", `file:${p12pass}`, "-clcerts", "-nokeys", ...L]);
    const cas = openssl(["pkcs12", "-in", file, "-passin", `file:${p12pass}`, "-cacerts", "-nokeys", ...L]);
    const key = openssl(["pkcs12", "-in", file, "-passin", `file:${p12pass}`, "-nocerts", "-nodes", ...L]);
    return { info, leaf: leaf.stdout, ca: cas.stdout, key: key.stdout, code: info.code };
  }

  it("modern (issue --p12): openssl 3 reads it without -legacy; key, leaf and CA inside, the key matches", () => {
    const d = json(ca.run(["issue", "client", "erin", "--p12", "--p12-passphrase-file", p12pass, "--json"]));
    expect(d.p12).toBe(path.join(ca.dir, "issued", "erin.p12"));
    expect(fs.statSync(d.p12).mode & 0o777).toBe(0o600);
    const c = contents(d.p12, false);
    expect(c.code, c.info.stderr).toBe(0);
    expect(c.info.stderr).toMatch(/MAC: sha256/);
    expect(c.info.stderr).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC/);
    expect(c.info.stderr).toMatch(/PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC/);
    expect(c.info.stdout).toContain("friendlyName: erin");
    expect(pubOfCert(c.leaf)).toBe(pubOfCert(fs.readFileSync(d.cert, "utf8")));
    expect(pubOfKey(c.key)).toBe(pubOfCert(c.leaf));
    expect(openssl(["x509", "-noout", "-fingerprint"], { input: c.ca }).stdout).toBe(openssl(["x509", "-noout", "-fingerprint", "-in", path.join(ca.dir, "ca.crt")]).stdout);
    // the password matters
    expect(openssl(["pkcs12", "-info", "-nokeys", "-in", d.p12, "-passin", "pass:wrong"]).code).not.toBe(0);
  });

  it("compat (export p12, RSA key): 3DES + SHA-1 MAC, read with -legacy; key, leaf and CA inside, the key matches", () => {
    const d = json(ca.run(["issue", "ssl", "winbox", "--key-type", "rsa-2048", "--json"]));
    const out = path.join(ca.root, "winbox.p12");
    const e = ca.run(["export", "p12", "winbox", "--p12-format", "compat", "--p12-passphrase-file", p12pass, "--out", out, "--json"]);
    expect(e.code, e.stderr).toBe(0);
    expect(json(e).path).toBe(out);
    const c = contents(out, true);
    expect(c.code, c.info.stderr).toBe(0);
    expect(c.info.stderr).toMatch(/MAC: sha1/);
    expect(c.info.stderr).toMatch(/Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
    expect(c.info.stderr).toMatch(/PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC/);
    expect(c.info.stdout).toContain("friendlyName: winbox");
    expect(pubOfCert(c.leaf)).toBe(pubOfCert(fs.readFileSync(d.cert, "utf8")));
    expect(pubOfKey(c.key)).toBe(pubOfCert(c.leaf));
    expect(openssl(["x509", "-noout", "-fingerprint"], { input: c.ca }).stdout).toBe(openssl(["x509", "-noout", "-fingerprint", "-in", path.join(ca.dir, "ca.crt")]).stdout);
  });
});
