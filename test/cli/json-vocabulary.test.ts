/**
 * One JSON vocabulary (issue 16, README "JSON vocabulary"): the same names
 * for the same things in every command, the contract's names kept beside the
 * added ones; and human output without raw JSON; and a plain `pki bundle`
 * that keeps the remembered --include-issued choice.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, tmpdir } from "../helpers.js";

let ca: ReturnType<typeof makeCa>;
let csrPath: string;

const fp = (file: string) => openssl(["x509", "-in", file, "-noout", "-fingerprint", "-sha256"]).stdout.trim().replace(/^.*=/, "").replace(/:/g, "").toLowerCase();

beforeAll(() => {
  ca = makeCa();
  csrPath = path.join(ca.root, "agent.csr");
  const k = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(ca.root, "agent.key"), "-subj", "/CN=agent1.example.lan", "-out", csrPath]);
  expect(k.code, k.stderr).toBe(0);
});

describe("one vocabulary", () => {
  it("init: fingerprint and fingerprints.sha256, cert and path", () => {
    const root = tmpdir();
    const d = json(pki(["init", "--dir", path.join(root, "ca"), "--cn", "V CA", "--no-passphrase", "--json"]));
    const file = path.join(root, "ca", "ca.crt");
    expect(d.fingerprint).toBe(fp(file));
    expect(d.fingerprints.sha256).toBe(d.fingerprint);
    expect(d.cert).toBe(file);
    expect(d.path).toBe(file);
  });

  it("issue: cert/key/chain (contract) and path/certificate; fingerprints", () => {
    const d = json(ca.run(["issue", "server", "web1", "--json"]));
    expect(d.cert).toBe(path.join(ca.dir, "issued", "web1.crt"));
    expect(d.path).toBe(d.cert);
    expect(d.key).toBe(path.join(ca.dir, "private", "web1.key"));
    expect(d.chain).toBe(path.join(ca.dir, "issued", "web1.chain.crt"));
    expect(d.certificate).toBe(fs.readFileSync(d.cert, "utf8"));
    expect(d.fingerprint).toBe(fp(d.cert));
    expect(d.fingerprints.sha256).toBe(d.fingerprint);
  });

  it("sign-csr: path/certificate (contract) and cert/key/chain; fingerprints", () => {
    const toStdout = json(ca.run(["sign-csr", csrPath, "--profile", "server", "--json"]));
    expect(toStdout.path).toBeNull();
    expect(toStdout.cert).toBeNull();
    expect(toStdout.key).toBeNull();
    expect(toStdout.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const f = path.join(ca.root, "stdout.crt");
    fs.writeFileSync(f, toStdout.certificate);
    expect(toStdout.fingerprint).toBe(fp(f));
    expect(toStdout.fingerprints.sha256).toBe(toStdout.fingerprint);

    const out = path.join(ca.root, "agent.crt");
    const toFile = json(ca.run(["sign-csr", csrPath, "--profile", "server", "--out", out, "--json"]));
    expect(toFile.path).toBe(out);
    expect(toFile.cert).toBe(out);
    expect(toFile.key).toBeNull();
    expect(toFile.fingerprint).toBe(fp(out));
  });

  it("renew: path/certificate beside cert/key/chain", () => {
    const d = json(ca.run(["renew", "web1", "--json"]));
    expect(d.path).toBe(d.cert);
    expect(d.certificate).toBe(fs.readFileSync(d.cert, "utf8"));
    expect(d.fingerprint).toBe(fp(d.cert));
  });

  it("crl: revoked (contract, a number) and revokedCount; show <crl>: revokedCount and the revoked entries", () => {
    expect(ca.run(["revoke", "web1"]).code).toBe(0);
    const c = json(ca.run(["crl", "--json"]));
    expect(c.revoked).toBe(2); // web1's renewed-away certificate (superseded) and the revoked one
    expect(c.revokedCount).toBe(c.revoked);
    const s = json(ca.run(["show", path.join(ca.dir, "crl.pem"), "--json"]));
    expect(s.revokedCount).toBe(c.revokedCount);
    expect(s.revoked).toHaveLength(c.revokedCount);
    expect(s.crlNumber).toBe(c.crlNumber);
    expect(s.nextUpdate).toBe(c.nextUpdate);
  });

  it("show <certificate>: fingerprint beside fingerprints.sha256", () => {
    const d = json(ca.run(["show", path.join(ca.dir, "ca.crt"), "--json"]));
    expect(d.fingerprint).toBe(fp(path.join(ca.dir, "ca.crt")));
    expect(d.fingerprints.sha256).toBe(d.fingerprint);
  });
});

describe("human output", () => {
  it("show prints words, never JSON (CA, extensions of a CSR)", () => {
    const leaf = ca.run(["issue", "client", "alice"]);
    expect(leaf.code).toBe(0);
    for (const target of ["alice", path.join(ca.dir, "ca.crt"), csrPath]) {
      const r = ca.run(["show", target]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, target).not.toMatch(/[{}]|"ca"/);
    }
    expect(ca.run(["show", "alice"]).stdout).toMatch(/^CA\s+no$/m);
    expect(ca.run(["show", path.join(ca.dir, "ca.crt")]).stdout).toMatch(/^CA\s+yes/m);
  });
});

describe("pki bundle remembers --include-issued", () => {
  it("a plain `pki bundle` keeps the choice; --no-include-issued goes back to the CA only", () => {
    const c = makeCa();
    expect(c.run(["issue", "client", "a"]).code).toBe(0);
    expect(json(c.run(["bundle", "--include-issued", "client", "--json"])).certificates).toBe(2);
    const plain = json(c.run(["bundle", "--json"]));
    expect(plain.certificates).toBe(2);
    expect(JSON.parse(fs.readFileSync(path.join(c.dir, "pki.json"), "utf8")).bundle).toEqual({ includeIssued: "client" });
    const certs = fs.readFileSync(path.join(c.dir, "ca-clients.crt"), "utf8").match(/BEGIN CERTIFICATE/g);
    expect(certs).toHaveLength(2);
    expect(json(c.run(["bundle", "--no-include-issued", "--json"])).certificates).toBe(1);
    expect(json(c.run(["bundle", "--json"])).certificates).toBe(1);
    expect(JSON.parse(fs.readFileSync(path.join(c.dir, "pki.json"), "utf8")).bundle).toEqual({ includeIssued: false });
  });
});
