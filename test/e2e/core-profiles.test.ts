/**
 * Every built-in profile, through `pki issue` and `pki sign-csr`, under every
 * CA key type, judged by openssl: the extensions as `openssl x509 -text`
 * prints them, and `openssl verify -purpose` for the chain.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl } from "../helpers.js";
import { CSR, opensslExtensions, opensslField, opensslText, verify } from "./lib.js";

const KU: Record<string, { ec: string; rsa: string }> = {
  "code-signing": { ec: "Digital Signature", rsa: "Digital Signature" },
  ssl: { ec: "Digital Signature", rsa: "Digital Signature, Key Encipherment" },
  server: { ec: "Digital Signature", rsa: "Digital Signature, Key Encipherment" },
  client: { ec: "Digital Signature", rsa: "Digital Signature" },
};
const EKU: Record<string, string> = {
  "code-signing": "Code Signing, TLS Web Client Authentication",
  ssl: "TLS Web Server Authentication, TLS Web Client Authentication",
  server: "TLS Web Server Authentication",
  client: "TLS Web Client Authentication",
};
/** what `openssl verify -purpose` must say for each profile */
const PURPOSES: Record<string, { sslserver: boolean; sslclient: boolean }> = {
  "code-signing": { sslserver: false, sslclient: true },
  ssl: { sslserver: true, sslclient: true },
  server: { sslserver: true, sslclient: false },
  client: { sslserver: false, sslclient: true },
};
const SIGALG: Record<string, string> = {
  "ec-p256": "ecdsa-with-SHA256",
  "ec-p384": "ecdsa-with-SHA384",
  "rsa-2048": "sha256WithRSAEncryption",
  "rsa-3072": "sha256WithRSAEncryption",
  "rsa-4096": "sha256WithRSAEncryption",
  ed25519: "ED25519",
};
/** a CSR fixture that fits each profile (code-signing takes no IP SANs) */
const CSR_FOR: Record<string, string> = { "code-signing": "p256-email.csr", ssl: "rsa2048-san.csr", server: "p384-san.csr", client: "ed25519.csr" };

function checkLeaf(ca: { dir: string }, cert: string, profile: string, rsaKey: boolean, caKeyId: string) {
  const ext = opensslExtensions(cert);
  expect(ext["X509v3 Basic Constraints"]).toEqual({ critical: true, value: "CA:FALSE" });
  expect(ext["X509v3 Key Usage"]).toEqual({ critical: true, value: rsaKey ? KU[profile]!.rsa : KU[profile]!.ec });
  expect(ext["X509v3 Extended Key Usage"]).toEqual({ critical: false, value: EKU[profile] });
  if (profile !== "code-signing") expect(ext["X509v3 Extended Key Usage"]!.value).not.toContain("Code Signing");
  expect(ext["X509v3 Subject Key Identifier"]?.value).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
  expect(ext["X509v3 Authority Key Identifier"]?.value.replace(/^keyid:/, "")).toBe(caKeyId);
  const text = opensslText(cert);
  expect(text).toMatch(/Version: 3 \(0x2\)/);
  for (const purpose of ["sslserver", "sslclient"] as const) {
    const v = verify(path.join(ca.dir, "ca.crt"), cert, purpose);
    if (PURPOSES[profile]![purpose]) expect(v.stdout + v.stderr, `${profile} ${purpose}`).toMatch(/: OK/);
    else expect(v.code, `${profile} must not verify for ${purpose}`).not.toBe(0);
  }
  return ext;
}

const caKeyIdOf = (dir: string) => opensslExtensions(path.join(dir, "ca.crt"))["X509v3 Subject Key Identifier"]!.value;

describe.each(["ec-p256", "ec-p384", "rsa-2048", "ed25519"])("a %s CA", (caKeyType) => {
  const ca = makeCa(["--key-type", caKeyType]);
  const caKeyId = caKeyIdOf(ca.dir);

  it("has the CA extensions of the contract and the right signature algorithm", () => {
    const crt = path.join(ca.dir, "ca.crt");
    const ext = opensslExtensions(crt);
    expect(ext["X509v3 Basic Constraints"]).toEqual({ critical: true, value: "CA:TRUE" });
    expect(ext["X509v3 Key Usage"]).toEqual({ critical: true, value: "Digital Signature, Certificate Sign, CRL Sign" });
    expect(ext["X509v3 Extended Key Usage"]).toBeUndefined();
    expect(ext["X509v3 Subject Key Identifier"]).toBeDefined();
    expect(opensslText(crt)).toContain(`Signature Algorithm: ${SIGALG[caKeyType]}`);
    expect(openssl(["verify", "-CAfile", crt, crt]).code).toBe(0);
  });

  for (const profile of Object.keys(EKU)) {
    it(`issue ${profile}: extensions and purposes as openssl sees them (EC and RSA keys)`, () => {
      for (const keyType of ["ec-p256", "rsa-2048"]) {
        const name = `${profile}-${keyType}`;
        const r = ca.run(["issue", profile, name, "--key-type", keyType, "--san", profile === "code-signing" ? "email:ops@example.lan" : `dns:${name}.example.lan`, "--json"]);
        expect(r.code, r.stderr).toBe(0);
        const d = json(r);
        expect(d).toMatchObject({ ok: true, name, profile });
        const ext = checkLeaf(ca, d.cert, profile, keyType === "rsa-2048", caKeyId);
        expect(ext["X509v3 Subject Alternative Name"]?.value).toBe(profile === "code-signing" ? "email:ops@example.lan" : `DNS:${name}.example.lan`);
        expect(opensslText(d.cert)).toContain(`Signature Algorithm: ${SIGALG[caKeyType]}`);
        // the serial in the file name, the JSON and the index is openssl's spelling
        expect(opensslField(d.cert, "-serial")).toBe(d.serial);
        expect(fs.readFileSync(path.join(ca.dir, "certs", `${d.serial}.pem`), "utf8")).toBe(fs.readFileSync(d.cert, "utf8"));
        // the chain file: the leaf and every CA below the root, so the leaf alone in a one-tier CA
        // (contract, Two-tier PKI); the key matches the certificate
        const chain = fs.readFileSync(d.chain, "utf8");
        expect(chain).toBe(fs.readFileSync(d.cert, "utf8"));
        const pub1 = openssl(["pkey", "-in", d.key, "-pubout"]).stdout;
        const pub2 = openssl(["x509", "-in", d.cert, "-noout", "-pubkey"]).stdout;
        expect(pub1).toBe(pub2);
        expect(pub1).toContain("PUBLIC KEY");
      }
    });

    it(`sign-csr --profile ${profile}: extensions from the profile, names from the CSR`, () => {
      const out = path.join(ca.root, `${profile}-signed.crt`);
      const r = ca.run(["sign-csr", CSR(CSR_FOR[profile]!), "--profile", profile, "--out", out, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const d = json(r);
      expect(d).toMatchObject({ ok: true, profile, path: out });
      const rsa = CSR_FOR[profile]!.startsWith("rsa");
      const ext = checkLeaf(ca, out, profile, rsa, caKeyId);
      const csrSubject = openssl(["req", "-in", CSR(CSR_FOR[profile]!), "-noout", "-subject", "-nameopt", "RFC2253"]).stdout.trim().replace(/^subject=/, "");
      expect(opensslField(out, "-subject")).toBe(csrSubject);
      // the same through `openssl x509 -ext`
      const e = openssl(["x509", "-in", out, "-noout", "-ext", "basicConstraints,keyUsage,extendedKeyUsage"]);
      expect(e.code, e.stderr).toBe(0);
      expect(e.stdout).toContain("X509v3 Basic Constraints: critical\n    CA:FALSE");
      expect(e.stdout).toContain(`X509v3 Key Usage: critical\n    ${rsa ? KU[profile]!.rsa : KU[profile]!.ec}`);
      expect(e.stdout).toMatch(new RegExp(`X509v3 Extended Key Usage: ?\\n    ${EKU[profile]}`));
      const sans = ext["X509v3 Subject Alternative Name"]?.value;
      if (profile === "code-signing") expect(sans).toBe("email:alice@example.lan");
      if (profile === "ssl") expect(sans).toBe("DNS:rsa2048-san.agents.example.lan, DNS:rsa2048.agents.example.lan, IP Address:10.20.0.5, IP Address:FD00:0:0:0:0:0:0:5");
      if (profile === "server") expect(sans).toBe("DNS:p384-san.agents.example.lan, DNS:p384.agents.example.lan, IP Address:10.20.0.5, IP Address:FD00:0:0:0:0:0:0:5");
      if (profile === "client") expect(sans).toBeUndefined();
    });
  }

  it("server without --san: the CN becomes the DNS name", () => {
    const r = ca.run(["issue", "server", "web9.example.lan", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(opensslExtensions(json(r).cert)["X509v3 Subject Alternative Name"]?.value).toBe("DNS:web9.example.lan");
  });
});

describe("large RSA CA keys (slow, once)", () => {
  for (const kt of ["rsa-3072", "rsa-4096"]) {
    it(`a ${kt} CA issues a server certificate openssl verifies`, () => {
      const ca = makeCa(["--key-type", kt]);
      const crt = path.join(ca.dir, "ca.crt");
      expect(opensslText(crt)).toContain(`Public-Key: (${kt.slice(4)} bit)`);
      const r = ca.run(["issue", "server", "web1", "--san", "dns:web1.example.lan", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(verify(crt, json(r).cert, "sslserver").stdout).toMatch(/: OK/);
      expect(opensslText(json(r).cert)).toContain("Signature Algorithm: sha256WithRSAEncryption");
    });
  }
});

describe("URLs from pki.json", () => {
  it("CRL distribution point and AIA go into every certificate issued", () => {
    const ca = makeCa(["--crl-url", "http://pki.example.lan/crl.pem", "--ocsp-url", "http://ocsp.example.lan/", "--ca-issuers-url", "http://pki.example.lan/ca.crt"]);
    const r = ca.run(["issue", "client", "alice", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const ext = opensslExtensions(json(r).cert);
    expect(ext["X509v3 CRL Distribution Points"]?.value).toBe("Full Name:\nURI:http://pki.example.lan/crl.pem");
    expect(ext["Authority Information Access"]?.value).toBe("OCSP - URI:http://ocsp.example.lan/\nCA Issuers - URI:http://pki.example.lan/ca.crt");
  });
});
