/**
 * pki import openssl-ca, on a directory run by `openssl ca` with a minimal
 * config, as admins have run CAs for decades: an encrypted CA key, three
 * certificates issued, one put on hold (`-crl_reason certificateHold
 * -crl_hold holdInstructionReject`), one revoked with a compromise time
 * (`-crl_compromise`), one revoked as superseded, a CRL (number 0x1000).
 * Checked with OpenSSL: the index sets match field for field, the first pki
 * CRL lists the same entries (reason, hold instruction, invalidity date) with
 * a higher number, old certificates verify and the revoked stay revoked, and
 * `openssl ca` itself keeps working on the imported directory.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, openssl, pki, tmpdir } from "../helpers.js";
import { crlEntries, crlNumber, freePort, indexSet, MtlsNginx, opensslCaStatus, requireTools, secretFile, treeHash, verifyWithCrl } from "./import-lib.js";

const CONFIG = `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ./ca
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/cacert.pem
private_key = $dir/private/cakey.pem
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 30
policy = pol
unique_subject = no
copy_extensions = none
x509_extensions = usr
[ pol ]
commonName = supplied
[ usr ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = Legacy OpenSSL CA
O = Acme
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

interface Legacy {
  root: string;
  ca: string;
  pass: string;
  ossl(args: string[]): string;
  serial(name: string): string;
}

function makeOpensslCa(): Legacy {
  requireTools();
  const root = tmpdir("pki-opensslca-");
  const ca = path.join(root, "ca");
  for (const d of ["private", "newcerts"]) fs.mkdirSync(path.join(ca, d), { recursive: true });
  fs.writeFileSync(path.join(ca, "index.txt"), "");
  fs.writeFileSync(path.join(ca, "serial"), "1000\n");
  fs.writeFileSync(path.join(ca, "crlnumber"), "1000\n");
  fs.writeFileSync(path.join(root, "ca.cnf"), CONFIG);
  const pass = secretFile(root, "ca.pass", "legacy ca passphrase");
  const ossl = (args: string[]) => {
    const r = openssl(args, { cwd: root });
    if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${r.stderr}`);
    return r.stdout + r.stderr;
  };
  ossl(["req", "-new", "-x509", "-config", "ca.cnf", "-extensions", "v3_ca", "-newkey", "rsa:2048", "-keyout", "ca/private/cakey.pem", "-passout", `file:${pass}`, "-out", "ca/cacert.pem", "-days", "3650"]);
  const serials: Record<string, string> = {};
  for (const n of ["u1", "u2", "u3", "u4"]) {
    ossl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${n}.key`, "-subj", `/CN=${n}`, "-out", `${n}.csr`]);
    ossl(["ca", "-batch", "-config", "ca.cnf", "-passin", `file:${pass}`, "-in", `${n}.csr`, "-out", `${n}.crt`]);
    serials[n] = ossl(["x509", "-in", `${n}.crt`, "-noout", "-serial"]).trim().split("=")[1]!;
  }
  ossl(["ca", "-config", "ca.cnf", "-passin", `file:${pass}`, "-revoke", "u2.crt", "-crl_reason", "certificateHold", "-crl_hold", "holdInstructionReject"]);
  ossl(["ca", "-config", "ca.cnf", "-passin", `file:${pass}`, "-revoke", "u3.crt", "-crl_compromise", "20260101120000Z"]);
  ossl(["ca", "-config", "ca.cnf", "-passin", `file:${pass}`, "-revoke", "u4.crt", "-crl_reason", "superseded"]);
  ossl(["ca", "-config", "ca.cnf", "-passin", `file:${pass}`, "-gencrl", "-out", "ca/crl.pem"]);
  return { root, ca, pass, ossl, serial: (n) => serials[n]! };
}

describe("pki import openssl-ca: holds, compromise times, CRL numbers", () => {
  let src: Legacy;
  let before: string;
  let dir: string;
  let newPass: string;
  let report: any;
  const run = (args: string[]) => pki(["--dir", dir, "--passphrase-file", newPass, ...args]);

  beforeAll(() => {
    src = makeOpensslCa();
    before = treeHash(src.ca);
    const work = tmpdir("pki-import-");
    newPass = secretFile(work, "new.pass", "a new and longer passphrase");
    dir = path.join(work, "ca");
    const r = pki(["import", "openssl-ca", src.ca, "--dir", dir, "--source-passphrase-file", src.pass, "--passphrase-file", newPass, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    report = json(r);
  }, 120_000);

  it("reports what it imported; the source is untouched", () => {
    expect(report).toMatchObject({ ok: true, dir, certificates: 4, revoked: 3, names: [], crlNumber: 0x1001 });
    expect(treeHash(src.ca)).toBe(before);
  });

  it("keeps every index line field for field, including the hold instruction and the compromise time", () => {
    expect(indexSet(path.join(dir, "index.txt"))).toEqual(indexSet(path.join(src.ca, "index.txt")));
    const text = fs.readFileSync(path.join(dir, "index.txt"), "utf8");
    expect(text).toMatch(new RegExp(`^R\\t\\d{12}Z\\t\\d{12}Z,holdInstruction,holdInstructionReject\\t${src.serial("u2")}\\t`, "m"));
    expect(text).toMatch(new RegExp(`^R\\t\\d{12}Z\\t\\d{12}Z,keyTime,20260101120000Z\\t${src.serial("u3")}\\t`, "m"));
    for (const n of ["u1", "u2", "u3", "u4"]) {
      expect(fs.readFileSync(path.join(dir, "certs", `${src.serial(n)}.pem`), "utf8")).toContain("-----BEGIN CERTIFICATE-----");
      expect(opensslCaStatus(dir, src.serial(n))).toContain(`${src.serial(n)}=${n === "u1" ? "Valid" : "Revoked"}`);
    }
    const list = json(run(["list", "--json"])).certificates as Array<{ serial: string; status: string; reason?: string; profile: string }>;
    expect(list.map((c) => [c.status, c.reason ?? null, c.profile])).toEqual([
      ["valid", null, "client"],
      ["revoked", "certificateHold", "client"],
      ["revoked", "keyCompromise", "client"],
      ["revoked", "superseded", "client"],
    ]);
  });

  it("the first CRL lists the source's entries as `openssl crl` prints them, numbered above the source's CRL", () => {
    const theirs = crlEntries(path.join(src.ca, "crl.pem"));
    const ours = crlEntries(path.join(dir, "crl.pem"));
    expect(ours).toEqual(theirs);
    expect(ours.get(src.serial("u2"))).toContain("Hold Instruction Reject");
    expect(ours.get(src.serial("u3"))).toMatch(/Invalidity Date:\s*\n?Jan  1 12:00:00 2026 GMT/);
    expect(crlNumber(path.join(src.ca, "crl.pem"))).toBe(0x1000);
    expect(crlNumber(path.join(dir, "crl.pem"))).toBe(0x1001);
    expect(fs.readFileSync(path.join(dir, "crlnumber"), "utf8")).toBe("1002\n");
  });

  it("old certificates verify against the imported CA; held and revoked ones stay refused", () => {
    expect(verifyWithCrl(dir, path.join(src.root, "u1.crt")).code).toBe(0);
    for (const n of ["u2", "u3", "u4"]) {
      const r = verifyWithCrl(dir, path.join(src.root, `${n}.crt`));
      expect(r.code, n).not.toBe(0);
      expect(r.stdout + r.stderr).toContain("certificate revoked");
    }
  });

  it("re-encrypts the CA key with pki's scheme", () => {
    const text = openssl(["asn1parse", "-in", path.join(dir, "private", "ca.key")]).stdout;
    expect(text).toMatch(/INTEGER\s+:0927C0\b/);
    expect(text).toContain("aes-256-cbc");
    expect(openssl(["pkey", "-in", path.join(dir, "private", "ca.key"), "-passin", `file:${newPass}`, "-noout"]).code).toBe(0);
  });

  it("through a real nginx: an old client gets 200, the held one and the compromised one are refused", async () => {
    const s = run(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]);
    expect(s.code, s.stderr).toBe(0);
    const nginx = new MtlsNginx(path.join(path.dirname(dir), "nginx"), await freePort(), dir);
    nginx.start();
    try {
      const ok = nginx.get(path.join(src.root, "u1.crt"), path.join(src.root, "u1.key"));
      expect(ok.status, ok.body).toBe(200);
      expect(ok.body).toContain("hello CN=u1");
      for (const n of ["u2", "u3"]) {
        const r = nginx.get(path.join(src.root, `${n}.crt`), path.join(src.root, `${n}.key`));
        expect(r.status, `${n}: ${r.body}`).toBe(400);
      }
    } finally {
      nginx.stop();
    }
  });

  it("issues and revokes after the import; the hold and the compromise time survive every later CRL; openssl ca still works on the directory", () => {
    const n = json(run(["issue", "client", "newbie", "--json"]));
    expect(verifyWithCrl(dir, n.cert).code).toBe(0);
    const r = run(["revoke", src.serial("u1"), "--reason", "keyCompromise", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(verifyWithCrl(dir, path.join(src.root, "u1.crt")).stdout + verifyWithCrl(dir, path.join(src.root, "u1.crt")).stderr).toContain("certificate revoked");
    expect(crlNumber(path.join(dir, "crl.pem"))).toBe(0x1002);
    const ours = crlEntries(path.join(dir, "crl.pem"));
    const theirs = crlEntries(path.join(src.ca, "crl.pem"));
    for (const [serial, text] of theirs) expect(ours.get(serial)).toBe(text);
    expect(ours.size).toBe(4); // u2, u3, u4 from the source, u1 now
    // `openssl ca -gencrl` on the imported directory, with the new key, lists the same entries
    const cnf = path.join(path.dirname(dir), "imported.cnf");
    fs.writeFileSync(cnf, CONFIG.replace("dir = ./ca", `dir = ${dir}`).replace("$dir/newcerts", "$dir/certs").replace("$dir/cacert.pem", "$dir/ca.crt").replace("$dir/private/cakey.pem", "$dir/private/ca.key"));
    const out = path.join(path.dirname(dir), "openssl.crl");
    const g = openssl(["ca", "-config", cnf, "-passin", `file:${newPass}`, "-gencrl", "-out", out]);
    expect(g.code, g.stderr).toBe(0);
    expect(crlEntries(out)).toEqual(ours);
    expect(treeHash(src.ca)).toBe(before);
  });
});
