/**
 * pki sign-csr end to end: inputs (path, stdin, DER), outputs (--out,
 * stdout, --chain, --out-dir batches), --dry-run, overrides, the name
 * policy of pki.json, and every hostile fixture refused without a trace.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, snapshot } from "../helpers.js";
import { CSR, expectRefused, opensslExtensions, opensslField, verify } from "./lib.js";

const certsIn = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];

function writeTmp(dir: string, name: string, data: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, data);
  return p;
}

describe("pki sign-csr", () => {
  const ca = makeCa();
  const caCrt = path.join(ca.dir, "ca.crt");

  it("prints the certificate PEM on stdout by default; openssl verifies it", () => {
    const r = ca.run(["sign-csr", CSR("p256-san.csr"), "--profile", "server"]);
    expect(r.code, r.stderr).toBe(0);
    const certs = certsIn(r.stdout);
    expect(certs).toHaveLength(1);
    expect(r.stdout).toBe(certs[0]);
    const f = writeTmp(ca.root, "stdout.crt", r.stdout);
    expect(verify(caCrt, f, "sslserver").stdout).toMatch(/: OK/);
  });

  it("reads the CSR from standard input (-), PEM or DER", () => {
    for (const [input, name] of [[fs.readFileSync(CSR("p384.csr")), "PEM"], [fs.readFileSync(CSR("p256-san.der")), "DER"]] as const) {
      const r = ca.run(["sign-csr", "-", "--profile", "client", "--json"], { input });
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      const d = json(r);
      expect(d.path).toBeNull();
      const f = writeTmp(ca.root, `stdin-${name}.crt`, d.certificate);
      expect(verify(caCrt, f, "sslclient").stdout, name).toMatch(/: OK/);
      expect(opensslField(f, "-serial")).toBe(d.serial);
    }
  });

  it("reads a DER CSR from a file; the certificate carries the CSR's public key", () => {
    const out = path.join(ca.root, "der.crt");
    const r = ca.run(["sign-csr", CSR("p256-san.der"), "--profile", "ssl", "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const csrPub = openssl(["req", "-inform", "DER", "-in", CSR("p256-san.der"), "-noout", "-pubkey"]).stdout;
    expect(openssl(["x509", "-in", out, "-noout", "-pubkey"]).stdout).toBe(csrPub);
    expect(json(r)).toMatchObject({
      ok: true,
      profile: "ssl",
      subject: "O=Acme, CN=p256-san.agents.example.lan",
      san: ["dns:p256-san.agents.example.lan", "dns:p256.agents.example.lan", "ip:10.20.0.5", "ip:fd00::5"],
      path: out,
      ignoredExtensions: [],
    });
    const d = json(r);
    expect(Object.keys(d).sort()).toEqual(expect.arrayContaining(["ok", "serial", "subject", "san", "profile", "notBefore", "notAfter", "path", "ignoredExtensions"]));
    expect(new Date(d.notAfter).getTime() - new Date(d.notBefore).getTime()).toBe(365 * 86_400_000 + 60_000);
  });

  it("--chain in a one-tier CA is the leaf alone: the chain stops below the root (contract, Two-tier PKI)", () => {
    const r = ca.run(["sign-csr", CSR("rsa2048.csr"), "--profile", "client", "--chain"]);
    expect(r.code, r.stderr).toBe(0);
    const certs = certsIn(r.stdout);
    expect(certs).toHaveLength(1);
    expect(certs[0]).not.toBe(fs.readFileSync(caCrt, "utf8"));
    const out = path.join(ca.root, "chain.crt");
    expect(ca.run(["sign-csr", CSR("rsa2048.csr"), "--profile", "client", "--chain", "--out", out]).code).toBe(0);
    const fileCerts = certsIn(fs.readFileSync(out, "utf8"));
    expect(fileCerts).toHaveLength(1);
    // the chain verifies against the trusted root
    expect(verify(caCrt, out, "sslclient").stdout).toMatch(/: OK/);
  });

  it("--dry-run signs nothing, needs no passphrase, and shows requested next to issued", () => {
    const before = snapshot(ca.dir, []);
    const r = ca.run(["sign-csr", CSR("ca-true.csr"), CSR("rsa2048-san.csr"), "--profile", "ssl", "--dry-run"]);
    // ca-true is refused even in a dry run
    expect(r.code).toBe(1);
    // no passphrase source at all: a dry run never touches the key
    const t = pki(["--dir", ca.dir, "sign-csr", CSR("rsa2048-san.csr"), "--profile", "ssl", "--dry-run"]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/requested\s+subject O=Acme, CN=rsa2048-san.agents.example.lan/);
    expect(t.stdout).toMatch(/would issue subject O=Acme, CN=rsa2048-san.agents.example.lan/);
    expect(t.stdout).toMatch(/keyUsage digitalSignature, keyEncipherment; extendedKeyUsage serverAuth, clientAuth/);
    expect(t.stdout).not.toContain("BEGIN CERTIFICATE");
    const j = ca.run(["sign-csr", CSR("rsa2048-san.csr"), "--profile", "ssl", "--dry-run", "--json", "--cn", "renamed.agents.example.lan"]);
    expect(j.code, j.stderr).toBe(0);
    const d = json(j);
    expect(d.dryRun).toBe(true);
    expect(d.requests[0].requested.subject).toBe("O=Acme, CN=rsa2048-san.agents.example.lan");
    expect(d.requests[0].issued.subject).toBe("O=Acme, CN=renamed.agents.example.lan");
    expect(d.requests[0].requested.extensions.subjectAltName).toContain("dns:rsa2048.agents.example.lan");
    // nothing changed, not even audit.log
    expect(snapshot(ca.dir, ["audit.log"])).toEqual(Object.fromEntries(Object.entries(before).filter(([k]) => k !== "audit.log")));
  });

  it("--cn and --san replace the CSR's names", () => {
    const out = path.join(ca.root, "override.crt");
    const r = ca.run(["sign-csr", CSR("p256-san.csr"), "--profile", "ssl", "--cn", "override.example.lan", "--san", "dns:override.example.lan,ip:192.0.2.7,uri:spiffe://example.lan/x", "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(opensslField(out, "-subject")).toBe("CN=override.example.lan,O=Acme");
    expect(opensslExtensions(out)["X509v3 Subject Alternative Name"]?.value).toBe("DNS:override.example.lan, IP Address:192.0.2.7, URI:spiffe://example.lan/x");
    expect(json(r).san).toEqual(["dns:override.example.lan", "ip:192.0.2.7", "uri:spiffe://example.lan/x"]);
  });

  it("ignores and reports requested extensions other than SAN", () => {
    const tmp = fs.mkdtempSync(path.join(ca.root, "req-"));
    const key = path.join(tmp, "k");
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
    const csr = path.join(tmp, "wants-more.csr");
    const g = openssl(["req", "-new", "-key", key, "-subj", "/CN=greedy.example.lan", "-out", csr, "-addext", "keyUsage=critical,digitalSignature,keyCertSign", "-addext", "extendedKeyUsage=codeSigning,OCSPSigning", "-addext", "basicConstraints=CA:FALSE"]);
    expect(g.code, g.stderr).toBe(0);
    const out = path.join(tmp, "greedy.crt");
    const r = ca.run(["sign-csr", csr, "--profile", "client", "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).ignoredExtensions.sort()).toEqual(["basicConstraints", "extKeyUsage", "keyUsage"]);
    const ext = opensslExtensions(out);
    expect(ext["X509v3 Key Usage"]?.value).toBe("Digital Signature");
    expect(ext["X509v3 Extended Key Usage"]?.value).toBe("TLS Web Client Authentication");
    const text = ca.run(["sign-csr", csr, "--profile", "client", "--out", path.join(tmp, "g2.crt")]);
    expect(text.stderr).toMatch(/ignored/);
  });

  it("a P-521 key and an empty subject with a SAN (the SAN is then critical)", () => {
    const tmp = fs.mkdtempSync(path.join(ca.root, "req-"));
    const key = path.join(tmp, "k");
    expect(openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", key]).code).toBe(0);
    const csr = path.join(tmp, "nosubject.csr");
    expect(openssl(["req", "-new", "-key", key, "-subj", "/", "-addext", "subjectAltName=DNS:nosubject.example.lan", "-out", csr]).code).toBe(0);
    const out = path.join(tmp, "nosubject.crt");
    const r = ca.run(["sign-csr", csr, "--profile", "server", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Signed dns:nosubject.example.lan (server)");
    expect(opensslExtensions(out)["X509v3 Subject Alternative Name"]).toEqual({ critical: true, value: "DNS:nosubject.example.lan" });
    expect(openssl(["x509", "-in", out, "-noout", "-text"]).stdout).toContain("NIST CURVE: P-521");
    expect(verify(caCrt, out, "sslserver").stdout).toMatch(/: OK/);
    // neither subject nor SAN: refused
    const bare = path.join(tmp, "bare.csr");
    expect(openssl(["req", "-new", "-key", key, "-subj", "/", "-out", bare]).code).toBe(0);
    const before = snapshot(ca.dir);
    expectRefused(ca.run(["sign-csr", bare, "--profile", "client"]), before, ca.dir, /neither a subject nor subjectAltNames/);
  });

  it("batch: several CSRs with --out-dir, one <csr-name>.crt each, JSON certificates[]", () => {
    const outDir = fs.mkdtempSync(path.join(ca.root, "batch-"));
    const inputs = ["rsa2048-san.csr", "p256-san.csr", "p384-san.csr", "ed25519-san.csr", "p256-san.der"];
    const r = ca.run(["sign-csr", ...inputs.map(CSR), "--profile", "server", "--out-dir", outDir, "--json"]);
    // p256-san.csr and p256-san.der would both be p256-san.crt: a usage error, nothing signed
    expect(r.code).toBe(2);
    const ok = ca.run(["sign-csr", ...inputs.slice(0, 4).map(CSR), "--profile", "server", "--out-dir", outDir, "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const d = json(ok);
    expect(d.certificates).toHaveLength(4);
    expect(fs.readdirSync(outDir).sort()).toEqual(["ed25519-san.crt", "p256-san.crt", "p384-san.crt", "rsa2048-san.crt"]);
    for (const c of d.certificates) {
      expect(fs.existsSync(c.path)).toBe(true);
      expect(verify(caCrt, c.path, "sslserver").stdout).toMatch(/: OK/);
      expect(opensslField(c.path, "-serial")).toBe(c.serial);
      expect(c.profile).toBe("server");
    }
    expect(new Set(d.certificates.map((c: { serial: string }) => c.serial)).size).toBe(4);
  });

  it("batch is all-or-nothing: one hostile CSR and nothing is signed", () => {
    const outDir = fs.mkdtempSync(path.join(ca.root, "batch-"));
    const before = snapshot(ca.dir);
    const r = ca.run(["sign-csr", CSR("p256-san.csr"), CSR("bad-signature-rsa.csr"), "--profile", "ssl", "--out-dir", outDir]);
    expectRefused(r, before, ca.dir, /signature/);
    expect(fs.readdirSync(outDir)).toEqual([]);
  });

  it("several CSRs without --out-dir is a usage error", () => {
    const r = ca.run(["sign-csr", CSR("p256.csr"), CSR("p384.csr"), "--profile", "client"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out-dir/);
  });
});

describe("hostile CSRs: exit 1, one error line, CA directory byte-identical", () => {
  const ca = makeCa();
  const CASES: Array<[string, string, RegExp]> = [
    ["bad-signature.csr", "BAD_CSR_SIGNATURE", /signature does not verify/],
    ["bad-signature-rsa.csr", "BAD_CSR_SIGNATURE", /signature does not verify/],
    ["ca-true.csr", "POLICY_DENIED", /CA:TRUE/],
    ["rsa1024.csr", "WEAK_KEY", /1024/],
    ["garbage.csr", "BAD_INPUT", /neither a PEM nor a DER/],
    ["truncated.csr", "BAD_INPUT", /truncated/],
    ["certificate.csr", "BAD_INPUT", /not a "CERTIFICATE REQUEST"/],
  ];
  for (const [file, code, re] of CASES) {
    it(`${file} -> ${code}`, () => {
      for (const profile of ["ssl", "code-signing"]) {
        const before = snapshot(ca.dir);
        expectRefused(ca.run(["sign-csr", CSR(file), "--profile", profile]), before, ca.dir, re);
        // from stdin too
        expectRefused(ca.run(["sign-csr", "-", "--profile", profile], { input: fs.readFileSync(CSR(file)) }), before, ca.dir);
        // --json: the stable code on stdout, nothing else
        const j = ca.run(["sign-csr", CSR(file), "--profile", profile, "--json"]);
        expect(j.code).toBe(1);
        expect(json(j)).toEqual({ ok: false, error: { code, message: expect.any(String) } });
        expect(snapshot(ca.dir)).toEqual(before);
      }
    });
  }

  it("every refusal is in audit.log", () => {
    const lines = fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const refused = lines.filter((l) => l.outcome === "refused");
    expect(refused.length).toBeGreaterThanOrEqual(CASES.length * 6);
    expect(new Set(refused.map((l) => l.error))).toEqual(new Set(CASES.map((c) => c[1])));
  });

  it("an empty file, a directory, a missing file", () => {
    const before = snapshot(ca.dir);
    const empty = path.join(ca.root, "empty.csr");
    fs.writeFileSync(empty, "");
    expectRefused(ca.run(["sign-csr", empty, "--profile", "ssl"]), before, ca.dir, /empty/);
    expectRefused(ca.run(["sign-csr", ca.root, "--profile", "ssl"]), before, ca.dir, /directory/);
    expectRefused(ca.run(["sign-csr", path.join(ca.root, "nope.csr"), "--profile", "ssl"]), before, ca.dir, /does not exist/);
    expectRefused(ca.run(["sign-csr", "-", "--profile", "ssl"], { input: "" }), before, ca.dir, /empty/);
  });
});

describe("the name policy of pki.json", () => {
  const ca = makeCa();
  const settings = path.join(ca.dir, "pki.json");
  const s = JSON.parse(fs.readFileSync(settings, "utf8"));
  s.policy = {
    ssl: { dns: ["*.agents.example.lan"], ip: ["10.20.0.0/16", "fd00::/8"], email: ["example.lan"] },
    "code-signing": { email: ["example.lan"], cn: ["Alice Admin"] },
  };
  fs.writeFileSync(settings, JSON.stringify(s, null, 2) + "\n");

  it("signs requests whose names are all allowed", () => {
    for (const f of ["p256-san.csr", "rsa2048-san.csr", "ed25519-san.csr"]) {
      const r = ca.run(["sign-csr", CSR(f), "--profile", "ssl", "--json"]);
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
    }
    expect(ca.run(["sign-csr", CSR("p256-email.csr"), "--profile", "code-signing"]).code).toBe(0);
    // a profile without a rule is unrestricted
    expect(ca.run(["sign-csr", CSR("p256.csr"), "--profile", "client", "--san", "dns:anything.example.com"]).code).toBe(0);
  });

  it("refuses anything else with POLICY_DENIED, exit 1, nothing issued", () => {
    const cases: Array<[string[], RegExp]> = [
      [[CSR("p256-san.csr"), "--san", "dns:evil.example.com"], /dns:evil\.example\.com/],
      [[CSR("p256-san.csr"), "--san", "dns:x.y.agents.example.lan"], /dns:x\.y\.agents/],
      [[CSR("p256-san.csr"), "--san", "ip:10.21.0.1"], /ip:10\.21\.0\.1/],
      [[CSR("p256-san.csr"), "--san", "email:mallory@evil.lan"], /email:mallory@evil\.lan/],
      [[CSR("p256-san.csr"), "--cn", "www.bank.example.com", "--san", "dns:a.agents.example.lan"], /CN=www\.bank\.example\.com/],
      [[CSR("p256-san.csr"), "--san", "uri:spiffe://example.lan/a"], /uri:spiffe/],
      [[CSR("p256.csr"), "--cn", "db.servers.example.lan"], /CN=db\.servers\.example\.lan/],
    ];
    for (const [args, re] of cases) {
      const before = snapshot(ca.dir);
      expectRefused(ca.run(["sign-csr", ...args, "--profile", "ssl"]), before, ca.dir, re);
      const j = ca.run(["sign-csr", ...args, "--profile", "ssl", "--json"]);
      expect(j.code).toBe(1);
      expect(json(j).error.code).toBe("POLICY_DENIED");
    }
    const before = snapshot(ca.dir);
    const other = path.join(ca.root, "bob.csr");
    const key = path.join(ca.root, "bob.key");
    openssl(["genpkey", "-algorithm", "ED25519", "-out", key]);
    openssl(["req", "-new", "-key", key, "-subj", "/CN=Bob Builder", "-out", other, "-addext", "subjectAltName=email:bob@example.lan"]);
    expectRefused(ca.run(["sign-csr", other, "--profile", "code-signing"]), before, ca.dir, /CN=Bob Builder/);
  });
});
