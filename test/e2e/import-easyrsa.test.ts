/**
 * pki import easyrsa, on PKIs made by Debian's easy-rsa 3.1 as an OpenVPN
 * admin makes them: build-ca (with a passphrase: 3DES, 2,048 PBKDF2
 * iterations; and nopass), build-client-full, build-server-full, revoke with
 * a reason, gen-crl. Checked with OpenSSL: the index sets match, old
 * certificates verify against the imported CA with its CRL, the revoked stay
 * revoked, new issuance and revocation work; the source tree is byte for
 * byte (and mtime for mtime) as it was.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, openssl, pki, tmpdir } from "../helpers.js";
import { crlEntries, crlNumber, freePort, indexSet, makeEasyRsa, MtlsNginx, opensslCaStatus, secretFile, treeHash, verifyWithCrl, type EasyRsa } from "./import-lib.js";

const NEW_PASS = "a new and longer passphrase";

describe("pki import easyrsa: an encrypted easy-rsa CA with clients, a server and a revocation", () => {
  let src: EasyRsa;
  let before: string;
  let work: string;
  let newPass: string;
  let dir: string;
  let report: any;
  const run = (args: string[]) => pki(["--dir", dir, "--passphrase-file", newPass, ...args]);

  beforeAll(() => {
    src = makeEasyRsa({ passphrase: "old easy-rsa secret" });
    for (const n of ["alice", "bob", "carol"]) src.run(["build-client-full", n, "nopass"]);
    src.run(["build-server-full", "vpn.example.lan", "nopass"]);
    src.run(["revoke", "bob", "keyCompromise"]);
    src.run(["gen-crl"]);
    // bob gets a new certificate under the same name, as easy-rsa admins do
    src.run(["build-client-full", "bob", "nopass"]);
    before = treeHash(src.pki);
    work = tmpdir("pki-import-");
    newPass = secretFile(work, "new.pass", NEW_PASS);
    dir = path.join(work, "ca");
    const r = pki(["import", "easyrsa", src.pki, "--dir", dir, "--source-passphrase-file", src.pass!, "--passphrase-file", newPass, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    report = json(r);
  }, 120_000);

  it("reports what it imported (contract JSON fields)", () => {
    expect(report).toMatchObject({ ok: true, dir, certificates: 5, revoked: 1, crlNumber: 1 });
    expect(report.names).toEqual(["alice", "bob", "carol", "vpn.example.lan"]);
  });

  it("leaves the source directory exactly as it was", () => {
    expect(treeHash(src.pki)).toBe(before);
  });

  it("keeps every certificate with its serial, status, revocation time and reason (OpenSSL index sets match)", () => {
    const theirs = indexSet(path.join(src.pki, "index.txt"));
    const ours = indexSet(path.join(dir, "index.txt"));
    expect(ours).toEqual(theirs);
    expect(ours.filter((l) => l.status === "R")).toHaveLength(1);
    expect(ours.find((l) => l.status === "R")!.revoked).toMatch(/^\d{12}Z,keyCompromise$/);
    // openssl ca reads the imported index
    for (const l of theirs) {
      expect(opensslCaStatus(dir, l.serial)).toContain(`${l.serial}=${l.status === "R" ? "Revoked" : "Valid"}`);
      expect(fs.existsSync(path.join(dir, "certs", `${l.serial}.pem`))).toBe(true);
    }
  });

  it("writes a first CRL that lists exactly the source's revoked set, with the same times and reasons", () => {
    const theirs = crlEntries(path.join(src.pki, "crl.pem"));
    const ours = crlEntries(path.join(dir, "crl.pem"));
    expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [serial, text] of theirs) expect(ours.get(serial)).toBe(text);
    // easy-rsa's CRLs carry no number: pki starts at 1 and counts up
    expect(crlNumber(path.join(src.pki, "crl.pem"))).toBeUndefined();
    expect(crlNumber(path.join(dir, "crl.pem"))).toBe(1);
    expect(fs.readFileSync(path.join(dir, "crlnumber"), "utf8")).toBe("02\n");
  });

  it("old certificates verify against the imported CA and its CRL; the revoked one stays revoked", () => {
    for (const n of ["alice", "bob", "carol", "vpn.example.lan"]) {
      const r = verifyWithCrl(dir, path.join(src.pki, "issued", `${n}.crt`));
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const [revokedFile] = fs.readdirSync(path.join(src.pki, "revoked", "certs_by_serial")).filter((f) => f.endsWith(".crt"));
    const r = verifyWithCrl(dir, path.join(src.pki, "revoked", "certs_by_serial", revokedFile!));
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("certificate revoked");
    const v = pki(["--dir", dir, "verify", path.join(src.pki, "revoked", "certs_by_serial", revokedFile!), "--json"]);
    expect(v.code).toBe(1);
    expect(json(v)).toMatchObject({ revoked: true, revocation: { index: "revoked", crl: "revoked" } });
    expect(json(v).error.message).toContain("keyCompromise");
  });

  it("re-encrypts the CA key with pki's scheme under the new passphrase (the source had 3DES, 2,048 iterations)", () => {
    const old = openssl(["asn1parse", "-in", path.join(src.pki, "private", "ca.key")]).stdout;
    expect(old).toContain("des-ede3-cbc");
    const key = path.join(dir, "private", "ca.key");
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, "private")).mode & 0o777).toBe(0o700);
    const text = openssl(["asn1parse", "-in", key]).stdout;
    expect(text).toContain("PBES2");
    expect(text).toContain("hmacWithSHA256");
    expect(text).toContain("aes-256-cbc");
    expect(text).toMatch(/INTEGER\s+:0927C0\b/); // 600,000 iterations
    expect(openssl(["pkey", "-in", key, "-passin", `file:${newPass}`, "-noout"]).code).toBe(0);
    expect(openssl(["pkey", "-in", key, "-passin", `file:${src.pass}`, "-noout"]).code).not.toBe(0);
  });

  it("takes easy-rsa's names from issued/ and revoked/, and the keys of valid issued names", () => {
    const list = json(run(["list", "--json"])).certificates as Array<{ serial: string; status: string; profile: string }>;
    expect(list.map((c) => c.profile).sort()).toEqual(["client", "client", "client", "client", "server"]);
    for (const n of ["alice", "carol", "vpn.example.lan"]) {
      expect(fs.readFileSync(path.join(dir, "issued", `${n}.crt`), "utf8")).toBe(fs.readFileSync(path.join(src.pki, "issued", `${n}.crt`), "utf8").replace(/^[\s\S]*?(?=-----BEGIN CERTIFICATE-----)/, ""));
      expect(fs.readFileSync(path.join(dir, "private", `${n}.key`))).toEqual(fs.readFileSync(path.join(src.pki, "private", `${n}.key`)));
      expect(fs.statSync(path.join(dir, "private", `${n}.key`)).mode & 0o777).toBe(0o600);
    }
    // bob: the new certificate is the name's, the revoked one is recorded under the name too
    const bobNew = openssl(["x509", "-in", path.join(src.pki, "issued", "bob.crt"), "-noout", "-serial"]).stdout.trim().split("=")[1];
    expect(json(run(["show", "bob", "--json"])).serial).toBe(bobNew);
    const revokedBob = fs.readdirSync(path.join(src.pki, "revoked", "certs_by_serial"))[0]!.replace(".crt", "");
    const meta = fs.readFileSync(path.join(dir, "index.meta"), "utf8");
    expect(meta).toContain(`${revokedBob}\tclient\tbob\n`);
    // the revoked certificate's key is not copied
    expect(fs.readdirSync(path.join(dir, "private")).sort()).toEqual(["alice.key", "bob.key", "ca.key", "carol.key", "vpn.example.lan.key"]);
  });

  it("pki doctor finds the imported CA healthy", () => {
    const r = run(["doctor"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  });

  it("issues and revokes after the import; old revocations stay in every later CRL; the CRL number keeps counting", () => {
    const dave = json(run(["issue", "client", "dave", "--json"]));
    expect(verifyWithCrl(dir, dave.cert).code).toBe(0);
    const r = run(["revoke", "alice", "--reason", "superseded", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(verifyWithCrl(dir, path.join(src.pki, "issued", "alice.crt")).stdout + verifyWithCrl(dir, path.join(src.pki, "issued", "alice.crt")).stderr).toContain("certificate revoked");
    expect(crlNumber(path.join(dir, "crl.pem"))).toBe(2);
    const entries = crlEntries(path.join(dir, "crl.pem"));
    expect(entries.size).toBe(2);
    const theirs = crlEntries(path.join(src.pki, "crl.pem"));
    for (const [serial, text] of theirs) expect(entries.get(serial)).toBe(text);
    expect(verifyWithCrl(dir, path.join(src.pki, "issued", "carol.crt")).code).toBe(0);
    expect(treeHash(src.pki)).toBe(before);
  });
});

describe("pki import easyrsa: a nopass CA, --dry-run, --no-keys", () => {
  let src: EasyRsa;
  let work: string;

  beforeAll(() => {
    src = makeEasyRsa({ algo: "ec", cn: "Nopass CA" });
    src.run(["build-client-full", "x", "nopass"]);
    src.run(["build-client-full", "y", "nopass"]);
    src.run(["revoke", "y"]);
    // easy-rsa 3.1's renew: the old certificate moves to renewed/issued/ and stays valid
    src.run(["build-client-full", "z", "nopass"]);
    src.run(["renew", "z", "nopass"], { EASYRSA_CERT_RENEW: "1000" });
    src.run(["gen-crl"]);
    work = tmpdir("pki-import-");
  }, 120_000);

  it("--dry-run reports what would be imported and creates nothing", () => {
    const before = treeHash(src.pki);
    const dir = path.join(work, "dry");
    const r = pki(["import", "easyrsa", src.pki, "--dir", dir, "--dry-run", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ ok: true, dryRun: true, certificates: 4, revoked: 1, names: ["x", "y", "z"], crlNumber: 1 });
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readdirSync(work)).toEqual([]);
    expect(treeHash(src.pki)).toBe(before);
  });

  it("imports without a source passphrase, and --no-keys copies no client key", () => {
    const before = treeHash(src.pki);
    const dir = path.join(work, "ca");
    const pass = secretFile(tmpdir(), "p", NEW_PASS);
    const r = pki(["import", "easyrsa", src.pki, "--dir", dir, "--no-keys", "--passphrase-file", pass, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ certificates: 4, revoked: 1, keys: 0 });
    // z: the renewed certificate is the name's; the old one (easy-rsa 3.1 keeps it as renewed/issued/z.crt) is imported, valid, without a name
    const old = path.join(src.pki, "renewed", "issued", "z.crt");
    const oldSerial = openssl(["x509", "-in", old, "-noout", "-serial"]).stdout.trim().split("=")[1]!;
    expect(fs.existsSync(path.join(dir, "certs", `${oldSerial}.pem`))).toBe(true);
    expect(fs.readFileSync(path.join(dir, "index.meta"), "utf8")).toContain(`${oldSerial}\tclient\t-\n`);
    expect(fs.readFileSync(path.join(dir, "issued", "z.crt"), "utf8")).toBe(fs.readFileSync(path.join(src.pki, "issued", "z.crt"), "utf8").replace(/^[\s\S]*?(?=-----BEGIN CERTIFICATE-----)/, ""));
    expect(verifyWithCrl(dir, old).code).toBe(0);
    expect(fs.readdirSync(path.join(dir, "private"))).toEqual(["ca.key"]);
    expect(indexSet(path.join(dir, "index.txt"))).toEqual(indexSet(path.join(src.pki, "index.txt")));
    // revoked without a reason: no reasonCode, as in the source CRL
    expect([...crlEntries(path.join(dir, "crl.pem")).values()]).toEqual([...crlEntries(path.join(src.pki, "crl.pem")).values()]);
    expect(verifyWithCrl(dir, path.join(src.pki, "issued", "x.crt")).code).toBe(0);
    expect(treeHash(src.pki)).toBe(before);
  });
});

describe("pki import easyrsa, through a real nginx: an old client gets 200, a revoked one is refused", () => {
  let src: EasyRsa;
  let dir: string;
  let nginx: MtlsNginx | undefined;

  beforeAll(async () => {
    src = makeEasyRsa({ algo: "ec", cn: "Old Web CA" });
    for (const n of ["alice", "bob"]) src.run(["build-client-full", n, "nopass"]);
    src.run(["revoke", "bob", "keyCompromise"]);
    src.run(["gen-crl"]);
    const work = tmpdir("pki-import-nginx-");
    const pass = secretFile(work, "pass", NEW_PASS);
    dir = path.join(work, "ca");
    const r = pki(["import", "easyrsa", src.pki, "--dir", dir, "--passphrase-file", pass]);
    expect(r.code, r.stderr).toBe(0);
    const s = pki(["--dir", dir, "--passphrase-file", pass, "issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]);
    expect(s.code, s.stderr).toBe(0);
    nginx = new MtlsNginx(path.join(work, "nginx"), await freePort(), dir);
    nginx.start();
  }, 120_000);
  afterAll(() => nginx?.stop());

  it("alice's easy-rsa certificate and key: 200", () => {
    const r = nginx!.get(path.join(src.pki, "issued", "alice.crt"), path.join(src.pki, "private", "alice.key"));
    expect(r.status, r.body).toBe(200);
    expect(r.body).toContain("hello CN=alice");
  });

  it("bob's revoked easy-rsa certificate: refused (400, certificate revoked)", () => {
    const [serialFile] = fs.readdirSync(path.join(src.pki, "revoked", "certs_by_serial"));
    const serial = serialFile!.replace(".crt", "");
    const r = nginx!.get(path.join(src.pki, "revoked", "certs_by_serial", `${serial}.crt`), path.join(src.pki, "revoked", "private_by_serial", `${serial}.key`));
    expect(r.status, r.body).toBe(400);
    expect(r.body).not.toContain("hello");
    expect(fs.readFileSync(path.join(nginx!.prefix, "logs", "error.log"), "utf8")).toContain("certificate revoked");
  });
});
