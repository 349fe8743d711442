/**
 * Two-tier PKI end to end (contract "Two-tier PKI", issue 12): an issuing CA
 * made with `pki init --parent`, recorded in the root's index; chains of
 * leaf + issuing CA (never the root) accepted by OpenSSL (-crl_check_all with
 * crl-chain.pem), GnuTLS certtool and Go's crypto/x509; name constraints
 * refused before signing and enforced by the verifiers; `crl --import-parent`;
 * doctor on the root CRL calendar.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, openssl, pki, snapshot, tmpdir, type Run } from "../helpers.js";
import { makeTwoTier, type TwoTier } from "./two-tier-lib.js";
import { CSR, expectRefused, opensslExtensions } from "./lib.js";

const certsIn = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];

function tool(cmd: string, pkg: string): void {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`${cmd} is missing: install the Debian package ${pkg} (see .ci/run)`);
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Run {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, input: opts.input ?? "", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A tiny Go program: crypto/x509 verifies leaf + intermediates against the root, for a purpose (and a DNS name). */
const GO_VERIFY = `package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func certs(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			panic(err)
		}
		out = append(out, c)
	}
}

func main() {
	roots := x509.NewCertPool()
	for _, c := range certs(os.Args[1]) {
		roots.AddCert(c)
	}
	chain := certs(os.Args[2])
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	usage := x509.ExtKeyUsageClientAuth
	if os.Args[3] == "server" {
		usage = x509.ExtKeyUsageServerAuth
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}
	if len(os.Args) > 4 {
		opts.DNSName = os.Args[4]
	}
	chains, err := chain[0].Verify(opts)
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
	fmt.Println("OK", len(chains[0]))
}
`;

function goVerify(dir: string, rootFile: string, chainFile: string, purpose: "client" | "server", dns?: string): Run {
  const src = path.join(dir, "verify.go");
  if (!fs.existsSync(src)) fs.writeFileSync(src, GO_VERIFY);
  const env: NodeJS.ProcessEnv = { ...process.env, GOCACHE: path.join(dir, "gocache"), GOPATH: path.join(dir, "gopath"), GOPROXY: "off", GOFLAGS: "", GO111MODULE: "off", GOTOOLCHAIN: "local" };
  return run("go", ["run", src, rootFile, chainFile, purpose, ...(dns ? [dns] : [])], { cwd: dir, env });
}

describe("two-tier PKI: init --parent, chains, name constraints", () => {
  let t: TwoTier;
  beforeAll(() => {
    tool("openssl", "openssl");
    tool("certtool", "gnutls-bin");
    tool("go", "golang-go");
    t = makeTwoTier();
  });

  it("init --parent: the root signs and records the issuing CA (profile ca, pathLen 0), parent.crt and parent-crl.pem copied in", () => {
    for (const f of ["ca.crt", "parent.crt", "parent-crl.pem", "crl.pem", "crl-chain.pem", "ca-chain.crt", "private/ca.key"]) expect(fs.existsSync(path.join(t.issuing, f)), f).toBe(true);
    expect(fs.readFileSync(path.join(t.issuing, "parent.crt"), "utf8")).toBe(fs.readFileSync(path.join(t.rootDir, "ca.crt"), "utf8"));
    expect(fs.readFileSync(path.join(t.issuing, "parent-crl.pem"), "utf8")).toBe(fs.readFileSync(path.join(t.rootDir, "crl.pem"), "utf8"));
    const caCrt = path.join(t.issuing, "ca.crt");
    // signed by the root: openssl verifies ca.crt against the root alone
    expect(openssl(["verify", "-CAfile", path.join(t.rootDir, "ca.crt"), caCrt]).stdout).toMatch(/: OK/);
    const ext = opensslExtensions(caCrt);
    expect(ext["X509v3 Basic Constraints"]).toEqual({ critical: true, value: "CA:TRUE, pathlen:0" });
    expect(ext["X509v3 Key Usage"]?.critical).toBe(true);
    // recorded in the root's index under its name, profile ca
    const list = json(t.r(["list", "--json"]));
    const serial = openssl(["x509", "-in", caCrt, "-noout", "-serial"]).stdout.trim().replace("serial=", "");
    expect(list.certificates).toEqual([expect.objectContaining({ serial, profile: "ca", status: "valid", subject: "O=Acme, CN=Acme Issuing CA issuing1" })]);
    expect(fs.readFileSync(path.join(t.rootDir, "index.meta"), "utf8")).toContain(`${serial}\tca\tissuing1`);
    // ca-chain.crt: the issuing CA, then the root
    expect(fs.readFileSync(path.join(t.issuing, "ca-chain.crt"), "utf8")).toBe(fs.readFileSync(caCrt, "utf8") + fs.readFileSync(path.join(t.rootDir, "ca.crt"), "utf8"));
    // crl-chain.pem: this CA's CRL, then the root's
    expect(fs.readFileSync(path.join(t.issuing, "crl-chain.pem"), "utf8")).toBe(fs.readFileSync(path.join(t.issuing, "crl.pem"), "utf8") + fs.readFileSync(path.join(t.rootDir, "crl.pem"), "utf8"));
    // both audit logs carry the event; neither passphrase appears anywhere
    for (const d of [t.issuing, t.rootDir]) {
      const log = fs.readFileSync(path.join(d, "audit.log"), "utf8");
      expect(log).toContain(serial);
      expect(log).not.toContain("passphrase");
    }
    expect(json(t.i(["doctor", "--json"])).ok).toBe(true);
  });

  it("refuses a wrong parent passphrase, a parent that is itself an issuing CA, and a taken name: nothing written", () => {
    const bad = path.join(t.root, "wrong.pass");
    fs.writeFileSync(bad, "not the root passphrase\n", { mode: 0o600 });
    const before = snapshot(t.rootDir);
    const d1 = path.join(t.root, "x1");
    let r = pki(["init", "-d", d1, "--cn", "X1", "--parent", t.rootDir, "--parent-passphrase-file", bad, "--passphrase-file", t.issuingPass]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pki: error: /);
    expect(fs.existsSync(path.join(d1, "pki.json"))).toBe(false);
    expect(snapshot(t.rootDir)).toEqual(before);
    // a third tier is refused (pki builds root -> issuing CAs)
    r = pki(["init", "-d", d1, "--cn", "X1", "--parent", t.issuing, "--parent-passphrase-file", t.issuingPass, "--passphrase-file", t.issuingPass]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/two tiers/);
    // the name the root records it under is taken by a valid CA
    r = pki(["init", "-d", d1, "--cn", "X1", "--parent", t.rootDir, "--parent-name", "issuing1", "--parent-passphrase-file", t.rootPass, "--passphrase-file", t.issuingPass, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).error.code).toBe("NAME_EXISTS");
    expect(snapshot(t.rootDir)).toEqual(before);
    // an issuing CA is not renewed like a leaf: the refusal says how to make its successor
    r = t.r(["renew", "issuing1", "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).error.message).toMatch(/init --parent/);
    expect(snapshot(t.rootDir)).toEqual(before);
    // no passphrase for the new CA's own key: refused before the root signs anything
    r = pki(["init", "-d", d1, "--cn", "X1", "--parent", t.rootDir, "--parent-passphrase-file", t.rootPass]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--passphrase-file/);
    expect(snapshot(t.rootDir)).toEqual(before);
    // no passphrase source for the parent, no terminal: a usage error naming the flag
    r = pki(["init", "-d", d1, "--cn", "X1", "--parent", t.rootDir, "--passphrase-file", t.issuingPass]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--parent-passphrase-file/);
  });

  it("issue: chain.crt and PKCS#12 carry the leaf and the issuing CA, never the root; OpenSSL, GnuTLS and Go accept the chain", () => {
    const r = t.i(["issue", "server", "web1", "--san", "dns:web1.acme.lan,ip:127.0.0.1", "--p12", "--p12-passphrase-file", t.issuingPass, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    const chain = certsIn(fs.readFileSync(d.chain, "utf8"));
    expect(chain).toEqual([fs.readFileSync(d.cert, "utf8"), fs.readFileSync(path.join(t.issuing, "ca.crt"), "utf8")]);
    const rootCrt = path.join(t.rootDir, "ca.crt");
    expect(chain).not.toContain(fs.readFileSync(rootCrt, "utf8"));
    // PKCS#12: the leaf and the issuing CA
    const p12 = openssl(["pkcs12", "-in", d.p12, "-passin", `file:${t.issuingPass}`, "-nokeys"]);
    expect(p12.code, p12.stderr).toBe(0);
    expect(p12.stdout.match(/^subject=.*$/gm)).toEqual(["subject=CN = web1", "subject=O = Acme, CN = Acme Issuing CA issuing1"]);
    // OpenSSL with a CRL for every CA in the chain (what nginx does)
    const o = openssl(["verify", "-crl_check_all", "-CAfile", rootCrt, "-untrusted", d.chain, "-CRLfile", path.join(t.issuing, "crl-chain.pem"), "-purpose", "sslserver", d.cert]);
    expect(o.stdout + o.stderr).toMatch(/: OK/);
    // GnuTLS: the chain plus the root, as certtool --verify-chain wants it (self-signed last)
    const full = path.join(t.root, "web1-full.pem");
    fs.writeFileSync(full, fs.readFileSync(d.chain, "utf8") + fs.readFileSync(rootCrt, "utf8"));
    const g = run("certtool", ["--verify-chain", "--infile", full]);
    expect(g.code, g.stdout + g.stderr).toBe(0);
    expect(g.stdout).toMatch(/Chain verification output: Verified/);
    const g2 = run("certtool", ["--verify", "--load-ca-certificate", rootCrt, "--load-crl", path.join(t.issuing, "crl.pem"), "--infile", d.chain, "--verify-profile", "low"]);
    expect(g2.code, g2.stdout + g2.stderr).toBe(0);
    // Go's crypto/x509 (name constraints included)
    const go = goVerify(t.root, rootCrt, d.chain, "server", "web1.acme.lan");
    expect(go.stdout + go.stderr).toMatch(/^OK 3/);
    // a one-tier-style chain file (leaf alone) does not verify without the issuing CA
    expect(openssl(["verify", "-CAfile", rootCrt, d.cert]).code).not.toBe(0);
    // pki verify follows the chain to the root
    const v = t.i(["verify", "web1", "--purpose", "server", "--json"]);
    expect(v.code, v.stderr).toBe(0);
    expect(json(v)).toMatchObject({ ok: true, chain: true, revoked: false, revocation: { parentCrl: "not revoked" } });
    // show names the chain
    expect(json(t.i(["show", "web1", "--json"])).chain).toEqual(["O=Acme, CN=Acme Issuing CA issuing1", "O=Acme, CN=Acme Root CA"]);
  });

  it("sign-csr --chain: the leaf and the issuing CA; a client chain OpenSSL and Go accept for client auth", () => {
    const out = path.join(t.root, "agent.crt");
    const r = t.i(["sign-csr", CSR("p256.csr"), "--profile", "client", "--chain", "--out", out, "--cn", "agent7"]);
    expect(r.code, r.stderr).toBe(0);
    const certs = certsIn(fs.readFileSync(out, "utf8"));
    expect(certs).toHaveLength(2);
    expect(certs[1]).toBe(fs.readFileSync(path.join(t.issuing, "ca.crt"), "utf8"));
    const rootCrt = path.join(t.rootDir, "ca.crt");
    expect(goVerify(t.root, rootCrt, out, "client").stdout).toMatch(/^OK 3/);
    const o = openssl(["verify", "-crl_check_all", "-CAfile", rootCrt, "-untrusted", out, "-CRLfile", path.join(t.issuing, "crl-chain.pem"), "-purpose", "sslclient", out]);
    expect(o.stdout + o.stderr).toMatch(/: OK/);
  });

  it("name constraints: critical in the root; names outside them refused before signing (POLICY_DENIED), nothing changed", () => {
    const ext = opensslExtensions(path.join(t.rootDir, "ca.crt"));
    expect(ext["X509v3 Name Constraints"]?.critical).toBe(true);
    expect(ext["X509v3 Name Constraints"]?.value).toContain("DNS:acme.lan");
    expect(ext["X509v3 Name Constraints"]?.value).toContain("IP:10.0.0.0/255.0.0.0");
    const before = snapshot(t.issuing);
    for (const san of ["dns:evil.example.com", "ip:192.168.1.1", "uri:https://acme.lan/x", "email:bob@evil.com"]) {
      const r = t.i(["issue", "server", "bad", "--san", san, "--json"]);
      expect(r.code, san).toBe(1);
      expect(json(r).error.code, san).toBe("POLICY_DENIED");
    }
    // a CSR naming evil.example.com: refused too, with no CA key needed
    const r = pki(["-d", t.issuing, "sign-csr", CSR("p256-san.csr"), "--profile", "server", "--san", "dns:www.evil.example.com"]);
    expectRefused(r, before, t.issuing, /outside the name constraints/);
    expect(snapshot(t.issuing)).toEqual(before);
    // within: a subdomain, an address in 10/8, a mailbox at acme.lan
    const ok = t.i(["issue", "ssl", "inside", "--san", "dns:a.b.acme.lan,ip:10.1.2.3,email:ops@acme.lan"]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("an issuing CA with its own name constraints; verifiers refuse a certificate outside them that pki would never issue", () => {
    const x = makeTwoTier({ base: t.root, issuingName: "lab", issuingArgs: ["--name-constraints", "dns:lab.acme.lan"] });
    expect(x.i(["issue", "server", "w", "--san", "dns:w.lab.acme.lan"]).code).toBe(0);
    const r = x.i(["issue", "server", "v", "--san", "dns:w.prod.acme.lan", "--json"]);
    expect(json(r).error.code).toBe("POLICY_DENIED");
    expect(json(r).error.message).toMatch(/this CA/);
    // a forged leaf outside the constraints, signed with the issuing key by openssl: the verifiers refuse it
    const key = path.join(x.root, "lab-ca.key");
    expect(openssl(["pkey", "-in", path.join(x.issuing, "private", "ca.key"), "-passin", `file:${x.issuingPass}`, "-out", key]).code).toBe(0);
    const leafKey = path.join(x.root, "forged.key");
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", leafKey]);
    const csr = path.join(x.root, "forged.csr");
    openssl(["req", "-new", "-key", leafKey, "-subj", "/CN=forged", "-out", csr]);
    const ext = path.join(x.root, "forged.ext");
    fs.writeFileSync(ext, "subjectAltName=DNS:www.evil.com\nextendedKeyUsage=serverAuth\n");
    const forged = path.join(x.root, "forged.crt");
    expect(openssl(["x509", "-req", "-in", csr, "-CA", path.join(x.issuing, "ca.crt"), "-CAkey", key, "-set_serial", "7", "-extfile", ext, "-out", forged]).code).toBe(0);
    fs.appendFileSync(forged, fs.readFileSync(path.join(x.issuing, "ca.crt")));
    const rootCrt = path.join(x.rootDir, "ca.crt");
    expect(openssl(["verify", "-CAfile", rootCrt, "-untrusted", forged, forged]).stdout + "").not.toMatch(/: OK/);
    expect(goVerify(x.root, rootCrt, forged, "server").stdout).toMatch(/^FAIL/);
  });
});

describe("two-tier PKI: the parent's CRL", () => {
  it("crl --import-parent: signature checked, older numbers refused, crl-chain.pem follows; the root revoking the issuing CA makes every chain fail", () => {
    const t = makeTwoTier();
    expect(t.i(["issue", "client", "alice"]).code).toBe(0);
    const old = path.join(t.root, "root-crl-1.pem");
    fs.copyFileSync(path.join(t.rootDir, "crl.pem"), old);
    // the same CRL again: nothing to do, exit 0
    let r = t.i(["crl", "--import-parent", old, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ ok: true, imported: false });
    // a CRL of another CA (the issuing CA's own) is refused
    let before = snapshot(t.issuing);
    r = pki(["-d", t.issuing, "crl", "--import-parent", path.join(t.issuing, "crl.pem")]);
    expectRefused(r, before, t.issuing, /not signed by the parent/);
    // the root re-signs; the import installs it and rewrites crl-chain.pem
    expect(t.r(["crl"]).code).toBe(0);
    r = t.i(["crl", "--import-parent", path.join(t.rootDir, "crl.pem"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ ok: true, imported: true, crlNumber: 2, caRevoked: false });
    expect(fs.readFileSync(path.join(t.issuing, "crl-chain.pem"), "utf8")).toBe(fs.readFileSync(path.join(t.issuing, "crl.pem"), "utf8") + fs.readFileSync(path.join(t.rootDir, "crl.pem"), "utf8"));
    // the older one now: refused, CRL_NOT_NEWER, nothing changed
    before = snapshot(t.issuing);
    r = pki(["-d", t.issuing, "crl", "--import-parent", old, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).error.code).toBe("CRL_NOT_NEWER");
    expect(snapshot(t.issuing)).toEqual(before);
    // every CRL write of the issuing CA rewrites crl-chain.pem with the parent's CRL
    expect(t.i(["revoke", "alice"]).code).toBe(0);
    expect(fs.readFileSync(path.join(t.issuing, "crl-chain.pem"), "utf8")).toBe(fs.readFileSync(path.join(t.issuing, "crl.pem"), "utf8") + fs.readFileSync(path.join(t.rootDir, "crl.pem"), "utf8"));
    const alice = path.join(t.issuing, "issued", "alice.chain.crt");
    const rootCrt = path.join(t.rootDir, "ca.crt");
    const vfy = (leaf: string) => openssl(["verify", "-crl_check_all", "-CAfile", rootCrt, "-untrusted", leaf, "-CRLfile", path.join(t.issuing, "crl-chain.pem"), leaf]);
    expect(vfy(alice).stdout + vfy(alice).stderr).toMatch(/certificate revoked/);
    // bob is fine until the root revokes the issuing CA
    expect(t.i(["issue", "client", "bob"]).code).toBe(0);
    const bob = path.join(t.issuing, "issued", "bob.chain.crt");
    expect(vfy(bob).stdout).toMatch(/: OK/);
    expect(t.r(["revoke", "issuing1", "--reason", "keyCompromise"]).code).toBe(0);
    r = t.i(["crl", "--import-parent", path.join(t.rootDir, "crl.pem"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ imported: true, caRevoked: true });
    const out = vfy(bob);
    expect(out.stdout + out.stderr).toMatch(/error 23 at 1 depth lookup: certificate revoked/);
    // pki itself agrees: verify fails, list shows nothing valid, doctor fails
    const v = t.i(["verify", "bob", "--json"]);
    expect(v.code).toBe(1);
    expect(json(v)).toMatchObject({ ok: false, revoked: true, revocation: { parentCrl: "revoked" } });
    expect(t.i(["list", "--status", "valid", "--format", "serial"]).stdout).toBe("");
    const doc = t.i(["doctor", "--json"]);
    expect(doc.code).toBe(1);
    expect(json(doc).checks).toContainEqual(expect.objectContaining({ name: "parent-crl", status: "fail" }));
  });

  it("doctor fails when the parent's CRL is near its nextUpdate and names the command to run on the root; --repair rewrites a stale crl-chain.pem", () => {
    const base = tmpdir("pki-2tier-cal-");
    const t = makeTwoTier({ base, rootArgs: ["--crl-days", "1"] });
    const d = t.i(["doctor", "--json"]);
    expect(d.code).toBe(1);
    const c = json(d).checks.find((x: { name: string }) => x.name === "parent-crl");
    expect(c.status).toBe("fail");
    expect(c.message).toContain(`pki -d <root dir> crl`);
    expect(c.message).toContain(`pki -d ${t.issuing} crl --import-parent crl.pem`);
    // status too, as a check: exit 1 and the same advice
    const st = t.i(["status", "--fail-within", "3"]);
    expect(st.code).toBe(1);
    expect(st.stderr).toContain("parent-crl");
    expect(st.stderr).toContain(`pki -d ${t.issuing} crl --import-parent crl.pem`);
    // a fresh root CRL valid 90 days fixes it
    expect(t.r(["crl", "--days", "90"]).code).toBe(0);
    expect(t.i(["crl", "--import-parent", path.join(t.rootDir, "crl.pem")]).code).toBe(0);
    expect(t.i(["doctor"]).code).toBe(0);
    // crl-chain.pem out of step (edited by hand): doctor fails, --repair rewrites it without the key
    fs.writeFileSync(path.join(t.issuing, "crl-chain.pem"), fs.readFileSync(path.join(t.issuing, "crl.pem")));
    const bad = json(pki(["-d", t.issuing, "doctor", "--json"]));
    expect(bad.checks).toContainEqual(expect.objectContaining({ name: "crl-chain", status: "fail" }));
    const fix = pki(["-d", t.issuing, "doctor", "--repair"]);
    expect(fix.code, fix.stderr + fix.stdout).toBe(0);
  });
});
