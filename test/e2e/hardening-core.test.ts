/**
 * Issue 10 ("a CA that cannot be turned against itself"), the core findings:
 * 4 name policy, 5 revocations undone, 6 time, 7 crash ordering, 8 disk full,
 * 10 `openssl ca` interop, 11 configuration, 13 locks; and what `doctor`
 * reports of each. Every test runs the real bin/pki and checks with openssl.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, snapshot } from "../helpers.js";
import { indexLines, opensslCsr } from "../hardening-helpers.js";
import { expectRefused } from "./lib.js";

type Ca = ReturnType<typeof makeCa>;
let n = 0;

function withSettings(ca: Ca, patch: Record<string, unknown>): void {
  const p = path.join(ca.dir, "pki.json");
  fs.writeFileSync(p, JSON.stringify({ ...JSON.parse(fs.readFileSync(p, "utf8")), ...patch }, null, 2));
}

describe("10.4 name policy: every CN, every RDN, whole-label wildcards", () => {
  let ca: Ca;
  beforeAll(() => {
    ca = makeCa();
    withSettings(ca, { policy: { client: { dns: ["*.agents.example.lan"] }, server: { dns: ["*.agents.example.lan"] } } });
  });
  const csr = (subj: string, opts: { san?: string; multi?: boolean } = {}) => {
    const key = path.join(ca.root, `k${n}.key`);
    const file = path.join(ca.root, `r${n++}.csr`);
    const r = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", file, "-subj", subj,
      ...(opts.multi ? ["-multivalue-rdn"] : []), ...(opts.san ? ["-addext", `subjectAltName=${opts.san}`] : [])]);
    expect(r.code, r.stderr).toBe(0);
    return file;
  };
  const refused = (file: string, profile = "client", what?: RegExp) => {
    const before = snapshot(ca.dir);
    const r = ca.run(["sign-csr", file, "--profile", profile]);
    expectRefused(r, before, ca.dir, what ?? /POLICY|policy|CN|RDN/);
  };

  it("signs an agent name (the policy works)", () => {
    const r = ca.run(["sign-csr", csr("/CN=agent0.agents.example.lan"), "--profile", "client", "--json"]);
    expect(r.code, r.stderr).toBe(0);
  });
  it("two CNs: refused whichever comes first", () => {
    refused(csr("/CN=admin.corp.example/CN=agent1.agents.example.lan"), "client", /2 CNs/);
    refused(csr("/CN=agent1.agents.example.lan/CN=admin.corp.example"), "client", /2 CNs/);
  });
  it("a multi-valued RDN is refused (CN+CN and CN+OU)", () => {
    refused(csr("/CN=admin.corp.example+CN=agent1.agents.example.lan", { multi: true }), "client", /multi-valued RDN/);
    refused(csr("/CN=agent1.agents.example.lan+OU=ops", { multi: true }), "client", /multi-valued RDN/);
  });
  it("a partial or double wildcard CN is refused (client: no SAN to catch it)", () => {
    refused(csr("/CN=a*.agents.example.lan"), "client", /CN=a\*\.agents/);
    refused(csr("/CN=**.agents.example.lan"), "client", /CN=\*\*\.agents/);
  });
  it("an emailAddress attribute outside the policy is refused", () => {
    refused(csr("/CN=agent2.agents.example.lan/emailAddress=ceo@corp.example"), "client", /emailAddress=ceo@corp\.example/);
  });
  it("--cn replaces every CN of the request, and the result is checked", () => {
    const r = ca.run(["sign-csr", csr("/CN=admin.corp.example/CN=x.agents.example.lan"), "--profile", "client", "--cn", "agent3.agents.example.lan", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const subj = openssl(["x509", "-noout", "-subject", "-nameopt", "RFC2253"], { input: json(r).certificate }).stdout;
    expect(subj.trim()).toBe("subject=CN=agent3.agents.example.lan");
  });
});

describe("10.11 configuration: profiles, OIDs, URLs, crlnumber", () => {
  let ca: Ca;
  beforeAll(() => {
    ca = makeCa();
  });
  const profileFile = (name: string, data: unknown) => {
    fs.mkdirSync(path.join(ca.dir, "profiles"), { recursive: true });
    fs.writeFileSync(path.join(ca.dir, "profiles", `${name}.json`), JSON.stringify(data));
  };
  const refusedIssue = (profile: string, code: string, what: RegExp) => {
    const before = snapshot(ca.dir);
    const r = ca.run(["issue", profile, `h${n++}`, "--san", "dns:h.example.lan", "--json"]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const d = json(r);
    expect(d.error.code).toBe(code);
    expect(d.error.message).toMatch(what);
    expect(snapshot(ca.dir)).toEqual(before);
  };
  const clean = () => fs.rmSync(path.join(ca.dir, "profiles"), { recursive: true, force: true });

  it("keyUsage constructor / __proto__ is PROFILE_INVALID, not a certificate", () => {
    profileFile("evil", { keyUsage: ["constructor"] });
    refusedIssue("evil", "PROFILE_INVALID", /unknown key usage "constructor"/);
    profileFile("evil", { keyUsage: ["digitalSignature", "__proto__"] });
    refusedIssue("evil", "PROFILE_INVALID", /unknown key usage "__proto__"/);
    clean();
  });
  it("extendedKeyUsage constructor is PROFILE_INVALID, not INTERNAL", () => {
    profileFile("evil", { keyUsage: ["digitalSignature"], extendedKeyUsage: ["constructor"] });
    refusedIssue("evil", "PROFILE_INVALID", /extended key usage "constructor"/);
    clean();
  });
  it("an OID that has no encoding (7.2, 1.40) is PROFILE_INVALID", () => {
    profileFile("evil", { keyUsage: ["digitalSignature"], extendedKeyUsage: ["7.2"] });
    refusedIssue("evil", "PROFILE_INVALID", /"7\.2" is not a valid OID/);
    profileFile("evil", { keyUsage: ["digitalSignature"], extendedKeyUsage: ["1.40.5"] });
    refusedIssue("evil", "PROFILE_INVALID", /not a valid OID/);
    clean();
  });
  it("a URL with a newline or non-ASCII in pki.json is refused, never embedded", () => {
    const orig = fs.readFileSync(path.join(ca.dir, "pki.json"), "utf8");
    withSettings(ca, { crlUrl: "http://pki.example.lan/crl.pem\nX-Evil: 1" });
    refusedIssue("server", "CA_INVALID", /"crlUrl" must be an ASCII URL/);
    withSettings(ca, { crlUrl: undefined, ocspUrl: "http://pkí.example.lan/ocsp" });
    refusedIssue("server", "CA_INVALID", /"ocspUrl" must be an ASCII URL/);
    fs.writeFileSync(path.join(ca.dir, "pki.json"), orig);
  });
  it("a crlnumber over 20 octets is refused (RFC 5280 5.2.3)", () => {
    const p = path.join(ca.dir, "crlnumber");
    const orig = fs.readFileSync(p, "utf8");
    fs.writeFileSync(p, "01" + "00".repeat(20) + "\n");
    const before = snapshot(ca.dir);
    const r = ca.run(["crl"]);
    expectRefused(r, before, ca.dir, /20 octets/);
    fs.writeFileSync(p, "7F" + "FF".repeat(19) + "\n"); // the largest: still accepted
    expect(ca.run(["crl"]).code).toBe(0);
    fs.writeFileSync(p, orig);
  });
});

const crlText = (file: string): string => {
  const r = openssl(["crl", "-in", file, "-noout", "-text"]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
};
const crlSerials = (file: string): string[] => [...crlText(file).matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!).sort();
const serialOf = (ca: Ca, name: string): string => openssl(["x509", "-in", path.join(ca.dir, "issued", `${name}.crt`), "-noout", "-serial"]).stdout.trim().replace("serial=", "");
const auditLines = (ca: Ca): any[] => fs.readFileSync(path.join(ca.dir, "audit.log"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));

describe("10.5 a CRL never silently drops a live revocation", () => {
  it("an older index.txt restored: crl, the timer, revoke and renew refuse (CRL_SHRINK); doctor reports, --repair re-applies", () => {
    const ca = makeCa();
    for (const x of ["a", "b", "c"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    const idx = path.join(ca.dir, "index.txt");
    const old = fs.readFileSync(idx);
    expect(ca.run(["revoke", "a", "--reason", "keyCompromise"]).code).toBe(0);
    const a = serialOf(ca, "a");
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([a]);
    fs.writeFileSync(idx, old); // the backup from before the revocation
    const csr = opensslCsr(ca.root, "c2", "/CN=c");
    const replace = ["sign-csr", csr, "--profile", "client", "--name", "c", "--replace", "--out", path.join(ca.root, "c2.crt")];
    for (const args of [["crl"], ["crl", "--if-expiring-within", "1"], ["crl", "--out", path.join(ca.root, "x.crl")], ["revoke", "b"], ["renew", "c"], replace]) {
      const before = snapshot(ca.dir);
      const r = ca.run(args);
      expectRefused(r, before, ca.dir, /drop 1 revoked certificate.*--allow-shrink/);
      expect(json(ca.run([...args, "--json"])).error.code).toBe("CRL_SHRINK");
    }
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([a]);
    const d = ca.run(["doctor", "--json"]);
    expect(d.code).toBe(1);
    expect(json(d).checks.find((c: any) => c.name === "crl").message).toMatch(/lists 1 revoked certificate.*index\.txt/);
    const rep = ca.run(["doctor", "--repair", "--json"]);
    expect(json(rep).repaired.join("\n")).toMatch(new RegExp(`re-applied the revocation of ${a}`));
    expect(indexLines(ca.dir).find((l) => l[3] === a)![0]).toBe("R");
    expect(indexLines(ca.dir).find((l) => l[3] === a)![2]).toMatch(/,keyCompromise$/);
    expect(ca.run(["crl"]).code).toBe(0);
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([a]);
    expect(crlText(path.join(ca.dir, "crl.pem"))).toMatch(/Key Compromise/);
  });

  it("sign-csr --replace whose CRL cannot be published after the index commit says what was recorded, releases the certificate, and pki crl publishes it", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "agent1"]).code).toBe(0);
    const old = serialOf(ca, "agent1");
    // crlnumber is read only to re-sign the CRL, after the index commit: a directory there makes that step fail
    const crlnumber = path.join(ca.dir, "crlnumber");
    const number = fs.readFileSync(crlnumber);
    fs.rmSync(crlnumber);
    fs.mkdirSync(crlnumber);
    const out = path.join(ca.root, "agent1-new.crt");
    const r = ca.run(["sign-csr", opensslCsr(ca.root, "agent1-new", "/CN=agent1"), "--profile", "client", "--name", "agent1", "--replace", "--out", out]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    const fresh = openssl(["x509", "-in", out, "-noout", "-serial"]).stdout.trim().replace("serial=", "");
    expect(r.stderr.trim()).toMatch(new RegExp(`^pki: error: the index records this change \\(issued ${fresh} and revoked ${old} \\(superseded\\)\\), but publishing it failed: cannot read .*crlnumber.*; fix that, then run \`pki crl\`: until then crl.pem does not list that revocation$`));
    // what the message says is what the index holds, and the released file is that certificate
    expect(indexLines(ca.dir).find((l) => l[3] === old)![0]).toBe("R");
    expect(indexLines(ca.dir).find((l) => l[3] === fresh)![0]).toBe("V");
    expect(openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), out]).code).toBe(0);
    expect(fs.readFileSync(path.join(ca.dir, "issued", "agent1.crt")).equals(fs.readFileSync(out))).toBe(true);
    expect(auditLines(ca).pop()).toMatchObject({ command: "sign-csr", outcome: "partial", committed: { issued: [fresh], revoked: [old] } });
    // fixed, pki crl publishes the revocation
    fs.rmdirSync(crlnumber);
    fs.writeFileSync(crlnumber, number);
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([]);
    expect(ca.run(["crl"]).code).toBe(0);
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([old]);
  });

  it("a file made from the index that cannot be written after its commit (the bundle): issue says what is recorded, releases the pair, audits partial", () => {
    const ca = makeCa();
    expect(ca.run(["bundle", "--include-issued"]).code).toBe(0);
    const bundle = path.join(ca.dir, "ca-clients.crt");
    fs.rmSync(bundle);
    fs.mkdirSync(path.join(bundle, "in-the-way"), { recursive: true });
    const out = path.join(ca.root, "out");
    fs.mkdirSync(out);
    const r = ca.run(["issue", "client", "alice", "--out-dir", out, "--json"]);
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout);
    const serial = err.committed.issued[0];
    expect(err.error.message).toMatch(new RegExp(`^the index records this change \\(issued ${serial}\\), but what follows from it was not all written: .*ca-clients\\.crt.*run \`pki doctor\``));
    expect(indexLines(ca.dir).find((l) => l[3] === serial)![0]).toBe("V");
    // recorded, so released: the pair is there and its certificate verifies
    expect(fs.existsSync(path.join(out, "alice.key"))).toBe(true);
    expect(openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), path.join(out, "alice.crt")]).code).toBe(0);
    expect(auditLines(ca).pop()).toMatchObject({ command: "issue", outcome: "partial", committed: { issued: [serial] } });
  });

  it("a directory where crl.pem belongs is one line (IO_ERROR), not an internal failure, and nothing changes", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    fs.rmSync(path.join(ca.dir, "crl.pem"));
    fs.mkdirSync(path.join(ca.dir, "crl.pem"));
    for (const args of [["crl"], ["revoke", "a"]]) {
      const before = snapshot(ca.dir);
      const r = ca.run(args);
      expectRefused(r, before, ca.dir, /cannot read .*crl\.pem: it is not a regular file: move it out of the CA directory/);
      expect(json(ca.run([...args, "--json"])).error.code).toBe("IO_ERROR");
    }
  });

  it("pki crl --allow-shrink un-revokes on purpose, and says so in audit.log", () => {
    const ca = makeCa();
    for (const x of ["a", "b"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    const idx = path.join(ca.dir, "index.txt");
    const old = fs.readFileSync(idx);
    expect(ca.run(["revoke", "a"]).code).toBe(0);
    fs.writeFileSync(idx, old);
    const r = ca.run(["crl", "--allow-shrink"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/no longer lists 1 revoked/);
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([]);
    expect(auditLines(ca).filter((l) => l.command === "crl").pop()).toMatchObject({ allowShrink: true, dropped: [serialOf(ca, "a")] });
  });

  it("a UTF-8 BOM and CRLF line ends in index.txt hide no revocation", () => {
    const ca = makeCa();
    for (const x of ["a", "b", "c"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    expect(ca.run(["revoke", "a"]).code).toBe(0);
    expect(ca.run(["revoke", "c"]).code).toBe(0);
    const idx = path.join(ca.dir, "index.txt");
    fs.writeFileSync(idx, "\ufeff" + fs.readFileSync(idx, "utf8").replace(/\n/g, "\r\n"));
    const r = ca.run(["crl"]);
    expect(r.code, r.stderr).toBe(0);
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toEqual([serialOf(ca, "a"), serialOf(ca, "c")].sort());
    const l = json(ca.run(["list", "--status", "revoked", "--json"]));
    expect(l.certificates.map((c: any) => c.subject).sort()).toEqual(["CN=a", "CN=c"]);
    expect(ca.run(["revoke", "b"]).code).toBe(0);
    expect(crlSerials(path.join(ca.dir, "crl.pem"))).toHaveLength(3);
  });
});

describe("10.10 interop with openssl ca: hold instructions and compromise times", () => {
  it("list/show/doctor/issue/renew work after openssl ca -revoke -crl_hold / -crl_compromise, and pki crl carries the same entry extensions as openssl ca -gencrl", () => {
    const ca = makeCa();
    for (const x of ["h", "k", "c", "p", "r"]) expect(ca.run(["issue", "client", x]).code).toBe(0);
    const cnf = path.join(ca.root, "ossl.cnf");
    fs.writeFileSync(cnf, ["[ ca ]", "default_ca = C", "[ C ]", `dir = ${ca.dir}`, "database = $dir/index.txt", "new_certs_dir = $dir/certs", "certificate = $dir/ca.crt",
      "private_key = $dir/private/ca.key", "crlnumber = $dir/ossl-crlnumber", "default_md = sha256", "default_crl_days = 7", ""].join("\n"));
    fs.writeFileSync(path.join(ca.dir, "ossl-crlnumber"), "1000\n");
    const revoke = (name: string, extra: string[]) => {
      const r = openssl(["ca", "-config", cnf, "-passin", `file:${ca.pass}`, "-revoke", path.join(ca.dir, "issued", `${name}.crt`), ...extra]);
      expect(r.code, r.stderr).toBe(0);
    };
    revoke("h", ["-crl_reason", "certificateHold", "-crl_hold", "holdInstructionReject"]);
    revoke("k", ["-crl_compromise", "20250102030405Z"]);
    revoke("c", ["-crl_CA_compromise", "20240102030405Z"]);
    revoke("p", ["-crl_reason", "certificateHold"]);
    expect(fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8")).toMatch(/,holdInstruction,holdInstructionReject\t[\s\S]*,keyTime,20250102030405Z\t[\s\S]*,CAkeyTime,20240102030405Z\t/);

    const l = ca.run(["list", "--status", "all", "--json"]);
    expect(l.code, l.stderr).toBe(0);
    const bySubject = Object.fromEntries(json(l).certificates.map((c: any) => [c.subject, c]));
    expect(bySubject["CN=h"].reason).toBe("certificateHold");
    expect(bySubject["CN=k"].reason).toBe("keyCompromise");
    expect(bySubject["CN=c"].reason).toBe("caCompromise");
    expect(ca.run(["show", "h", "--json"]).code).toBe(0);
    expect(ca.run(["issue", "client", "n"]).code).toBe(0);
    expect(ca.run(["renew", "r"]).code).toBe(0); // rewrites the whole index: the compound fields survive
    expect(fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8")).toMatch(/,holdInstruction,holdInstructionReject\t[\s\S]*,keyTime,20250102030405Z\t[\s\S]*,CAkeyTime,20240102030405Z\t/);
    const d = json(ca.run(["doctor", "--json"]));
    expect(d.checks.find((c: any) => c.name === "index").status).toBe("ok");

    expect(ca.run(["crl"]).code).toBe(0);
    const ours = crlText(path.join(ca.dir, "crl.pem"));
    const ossl = path.join(ca.root, "ossl.crl");
    const g = openssl(["ca", "-config", cnf, "-passin", `file:${ca.pass}`, "-gencrl", "-out", ossl]);
    expect(g.code, g.stderr).toBe(0);
    // openssl ca sorts the entries by serial; pki keeps the index order: compare them as a set
    const entries = (t: string) => {
      const from = t.indexOf("Revoked Certificates:");
      return t.slice(from + "Revoked Certificates:".length, t.indexOf("Signature Algorithm", from)).split(/(?=    Serial Number:)/).map((x) => x.trim()).filter(Boolean).sort().join("\n");
    };
    expect(entries(ours)).toMatch(/Hold Instruction Code:\s+Hold Instruction Reject/);
    expect(entries(ours)).toMatch(/Key Compromise\s+Invalidity Date:\s+Jan  2 03:04:05 2025 GMT/);
    expect(entries(ours)).toMatch(/CA Compromise\s+Invalidity Date:\s+Jan  2 03:04:05 2024 GMT/);
    expect(entries(ours)).toBe(entries(crlText(ossl)));
  });
});

/** Replace ca.crt by a certificate for the same key and subject with explicit dates (openssl ca -selfsign). */
function caCertWithDates(ca: Ca, start: string, end: string): void {
  const w = fs.mkdtempSync(path.join(ca.root, "selfsign-"));
  fs.writeFileSync(path.join(w, "index.txt"), "");
  fs.writeFileSync(path.join(w, "serial"), "1000\n");
  const cnf = path.join(w, "cnf");
  fs.writeFileSync(cnf, ["[ ca ]", "default_ca = C", "[ C ]", `database = ${w}/index.txt`, `new_certs_dir = ${w}`, `serial = ${w}/serial`, "default_md = sha256",
    "policy = p", "preserve = yes", "unique_subject = no", "[ p ]", "commonName = supplied", "organizationName = optional", "[ v3 ]", "basicConstraints = critical,CA:TRUE",
    "keyUsage = critical,keyCertSign,cRLSign,digitalSignature", "subjectKeyIdentifier = hash", ""].join("\n"));
  const key = path.join(ca.dir, "private", "ca.key");
  const csr = path.join(w, "ca.csr");
  let r = openssl(["req", "-new", "-key", key, "-passin", `file:${ca.pass}`, "-subj", "/O=Acme/CN=Test Root CA", "-out", csr]);
  expect(r.code, r.stderr).toBe(0);
  const out = path.join(w, "ca.crt");
  r = openssl(["ca", "-batch", "-config", cnf, "-selfsign", "-preserveDN", "-keyfile", key, "-passin", `file:${ca.pass}`, "-in", csr, "-startdate", start, "-enddate", end, "-extensions", "v3", "-extfile", cnf, "-notext", "-out", out]);
  expect(r.code, r.stderr).toBe(0);
  fs.copyFileSync(out, path.join(ca.dir, "ca.crt"));
}

describe("10.6 time: a CA outside its validity does not issue; a CRL from the future is replaced", () => {
  for (const [what, start, end] of [["expired", "20200101000000Z", "20210101000000Z"], ["not yet valid", "20990101000000Z", "20991231000000Z"]] as const) {
    it(`a CA that is ${what}: issue, sign-csr and renew refuse (CA_EXPIRED), nothing written`, () => {
      const ca = makeCa();
      expect(ca.run(["issue", "client", "early"]).code).toBe(0);
      caCertWithDates(ca, start, end);
      const csr = opensslCsr(ca.root, "agent", "/CN=agent.example.lan");
      for (const args of [["issue", "client", "late"], ["sign-csr", csr, "--profile", "client"], ["renew", "early"]]) {
        const before = snapshot(ca.dir);
        const r = ca.run(args);
        expectRefused(r, before, ca.dir, what === "expired" ? /CA certificate expired on 2021-01-01/ : /not valid before 2099-01-01/);
        expect(json(ca.run([...args, "--json"])).error.code).toBe("CA_EXPIRED");
      }
    });
  }

  it("a CRL whose thisUpdate lies in the future: doctor fails, the timer (crl --if-expiring-within) re-signs it", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    expect(ca.run(["revoke", "a"]).code).toBe(0);
    const cnf = path.join(ca.root, "gencrl.cnf");
    fs.writeFileSync(cnf, ["[ ca ]", "default_ca = C", "[ C ]", `database = ${ca.dir}/index.txt`, `certificate = ${ca.dir}/ca.crt`, `private_key = ${ca.dir}/private/ca.key`, "default_md = sha256", ""].join("\n"));
    const r = openssl(["ca", "-config", cnf, "-passin", `file:${ca.pass}`, "-gencrl", "-crl_lastupdate", "20990101000000Z", "-crl_nextupdate", "20990201000000Z", "-out", path.join(ca.dir, "crl.pem")]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(ca.run(["doctor", "--json"]));
    expect(d.checks.find((c: any) => c.name === "crl")).toMatchObject({ status: "fail" });
    expect(d.checks.find((c: any) => c.name === "crl").message).toMatch(/in the future/);
    const t = ca.run(["crl", "--if-expiring-within", "2", "--json"]);
    expect(t.code, t.stderr).toBe(0);
    expect(json(t).resigned).toBe(true);
    expect(crlText(path.join(ca.dir, "crl.pem"))).not.toMatch(/2099/);
    expect(ca.run(["doctor"]).code).toBe(0);
  });
});

describe("10.7 crash ordering: the number before the CRL, the record before the release", () => {
  it("a kill between crlnumber and crl.pem skips a number and never publishes two CRLs under one", async () => {
    const { spawnPki } = await import("../hardening-helpers.js");
    const ca = makeCa();
    const num = () => BigInt("0x" + fs.readFileSync(path.join(ca.dir, "crlnumber"), "utf8").trim());
    const crlNum = () => /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(crlText(path.join(ca.dir, "crl.pem")))![1]!;
    const n0 = num();
    const published0 = crlNum();
    const k = await spawnPki(["crl", "--dir", ca.dir, "--passphrase-file", ca.pass], { env: { PKI_CRASH_AT: "crl-number" } }).done;
    expect(k.signal).toBe("SIGKILL");
    expect(num()).toBe(n0 + 1n); // advanced first
    expect(crlNum()).toBe(published0); // the old CRL is still the published one
    expect(ca.run(["crl"], { env: { PKI_LOCK_TIMEOUT: "20" } }).code).toBe(0);
    // the number the killed run used is skipped: the two published CRLs carry different numbers
    expect(BigInt(crlNum())).toBe(n0 + 1n);
    expect(crlNum()).not.toBe(published0);
    expect(ca.run(["doctor"]).code).toBe(0);
  });

  it("doctor reports a crlnumber at or behind crl.pem's number (what the old order left) and --repair advances it", () => {
    const ca = makeCa();
    const p = path.join(ca.dir, "crlnumber");
    expect(ca.run(["crl"]).code).toBe(0);
    const published = BigInt("0x" + fs.readFileSync(p, "utf8").trim()) - 1n;
    fs.writeFileSync(p, published.toString(16).toUpperCase().padStart(2, "0") + "\n");
    const d = ca.run(["doctor", "--json"]);
    expect(d.code).toBe(1);
    expect(json(d).checks.find((c: any) => c.name === "crl-number")).toMatchObject({ status: "fail" });
    const rep = ca.run(["doctor", "--repair", "--json"]);
    expect(rep.code, rep.stdout).toBe(0);
    expect(BigInt("0x" + fs.readFileSync(p, "utf8").trim())).toBe(published + 1n);
  });

  it("issue killed before its index commit: nothing handed out (no issued/<name>.crt, no key), nothing recorded", async () => {
    const { spawnPki } = await import("../hardening-helpers.js");
    const ca = makeCa();
    const k = await spawnPki(["issue", "server", "web", "--dir", ca.dir, "--passphrase-file", ca.pass], { env: { PKI_CRASH_AT: "meta" } }).done;
    expect(k.signal).toBe("SIGKILL");
    expect(fs.existsSync(path.join(ca.dir, "issued", "web.crt"))).toBe(false);
    expect(fs.existsSync(path.join(ca.dir, "private", "web.key"))).toBe(false);
    expect(indexLines(ca.dir)).toHaveLength(0);
  });
});

describe("10.13 locks: a stray symlink, a lock of another host", () => {
  it("a dangling .lock symlink: doctor says so (not 'not locked'), the next command removes the link, not its target", () => {
    const ca = makeCa();
    const target = path.join(ca.root, "elsewhere", "gone");
    fs.symlinkSync(target, path.join(ca.dir, ".lock"));
    const d = json(ca.run(["doctor", "--json"]));
    expect(d.checks.find((c: any) => c.name === "lock")).toMatchObject({ status: "warn" });
    expect(d.checks.find((c: any) => c.name === "lock").message).toMatch(/symbolic link.*dangling/);
    const r = ca.run(["issue", "client", "a"], { env: { PKI_LOCK_TIMEOUT: "5" } });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
    expect(fs.existsSync(target)).toBe(false);
  });

  it("a lock of another host: waits and names --break-lock; doctor --repair leaves it; doctor --break-lock clears it", () => {
    const ca = makeCa();
    const lock = path.join(ca.dir, ".lock");
    fs.writeFileSync(lock, JSON.stringify({ pid: 4242, host: "build-host-7.example.lan", since: "2026-01-01T00:00:00.000Z" }), { mode: 0o600 });
    const r = ca.run(["issue", "client", "a"], { env: { PKI_LOCK_TIMEOUT: "2" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/locked by pid 4242 on another host, build-host-7\.example\.lan.*pki doctor --break-lock/);
    const d = json(ca.run(["doctor", "--json"]));
    expect(d.checks.find((c: any) => c.name === "lock")).toMatchObject({ status: "warn" });
    expect(d.checks.find((c: any) => c.name === "lock").message).toMatch(/build-host-7\.example\.lan.*--break-lock/);
    const rep = json(ca.run(["doctor", "--repair", "--json"], { env: { PKI_LOCK_TIMEOUT: "2" } }));
    expect(rep.repaired.join("\n")).toMatch(/nothing repaired.*--break-lock/);
    expect(fs.existsSync(lock)).toBe(true);
    const b = ca.run(["doctor", "--break-lock", "--json"]);
    expect(json(b).repaired[0]).toMatch(/removed the lock \(pid 4242 on build-host-7/);
    expect(fs.existsSync(lock)).toBe(false);
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    expect(auditLines(ca).some((l) => l.action === "break-lock" && l.host === "build-host-7.example.lan")).toBe(true);
  });
});

describe("10.8 disk full (a small tmpfs): whole lines or none, no leftovers, no empty lock", () => {
  it("issue on a full disk fails cleanly at every amount of free space; doctor finds nothing to repair", () => {
    expect(process.getuid?.(), "mounting a tmpfs needs root").toBe(0);
    const root = fs.mkdtempSync(path.join("/tmp", "pki-enospc-"));
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", root]);
    expect(m.status, String(m.stderr)).toBe(0);
    try {
      const dir = path.join(root, "pki");
      const pass = path.join("/tmp", `pki-enospc-pass-${process.pid}`);
      fs.writeFileSync(pass, "correct horse battery staple\n", { mode: 0o600 });
      const run = (a: string[]) => pki(["--dir", dir, "--passphrase-file", pass, ...a], { env: { PKI_LOCK_TIMEOUT: "3" } });
      expect(pki(["init", "--dir", dir, "--cn", "Full Disk CA", "--passphrase-file", pass]).code).toBe(0);
      expect(run(["issue", "client", "first"]).code).toBe(0);
      // index.meta ends just before a page boundary: the next append needs a new page
      const meta = path.join(dir, "index.meta");
      const cur = fs.readFileSync(meta, "utf8");
      const pad = 4096 - 12 - cur.length;
      const filler = (k: number) => `${"0A".repeat(4)}\tclient\t${"p".repeat(Math.max(1, k))}\n`;
      let extra = "";
      while (cur.length + extra.length + filler(60).length < 4096 - 80) extra += filler(60);
      extra += filler(4096 - 12 - cur.length - extra.length - filler(1).length + 1);
      fs.writeFileSync(meta, cur + extra);
      expect(fs.statSync(meta).size).toBeGreaterThan(4000);
      void pad;
      const fill = path.join(root, "fill");
      let failures = 0;
      for (let pages = 0; pages <= 8; pages++) {
        // fill the disk, then free exactly `pages` pages
        spawnSync("sh", ["-c", `cat /dev/zero > ${fill} 2>/dev/null; true`]);
        const size = fs.statSync(fill).size;
        fs.truncateSync(fill, Math.max(0, size - pages * 4096));
        const before = snapshot(dir);
        const r = run(["issue", "client", `n${pages}`, "--json"]);
        fs.rmSync(fill);
        if (r.code === 0) continue;
        failures++;
        expect(json(r).error.code, r.stdout).toBe("IO_ERROR");
        expect(json(r).error.message).toMatch(/disk is full/);
        expect(snapshot(dir), `free pages: ${pages}`).toEqual(before);
        expect(fs.existsSync(path.join(dir, ".lock"))).toBe(false);
      }
      expect(failures).toBeGreaterThan(0);
      const d = json(run(["doctor", "--json"]));
      expect(d.checks.find((c: any) => c.name === "index")).toMatchObject({ status: "ok" });
      const l = json(run(["list", "--json"]));
      for (const c of l.certificates) expect(c.name === null || /^(first|n\d)$/.test(c.name), JSON.stringify(c)).toBe(true);
      expect(run(["issue", "client", "after"]).code).toBe(0);
      expect(json(run(["list", "--json"])).certificates.some((c: any) => c.name === "after")).toBe(true);
    } finally {
      spawnSync("umount", [root]);
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("a half line left in index.meta by an older version: doctor reports it, --repair removes it, the next issue starts a new line", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    const meta = path.join(ca.dir, "index.meta");
    fs.appendFileSync(meta, "0123AB\tcli"); // a short write
    const d = json(ca.run(["doctor", "--json"]));
    expect(d.checks.find((c: any) => c.name === "index").message).toMatch(/index\.meta has 1 line/);
    expect(ca.run(["issue", "client", "b"]).code).toBe(0);
    expect(json(ca.run(["issue", "client", "b", "--json"])).error.code).toBe("NAME_EXISTS"); // the name of b was not glued onto the half line
    expect(ca.run(["doctor", "--repair"]).code).toBe(0);
    expect(fs.readFileSync(meta, "utf8")).not.toMatch(/0123AB/);
    expect(ca.run(["doctor"]).code).toBe(0);
  });

  it("a half line at the end of index.txt: doctor reports it, --repair removes it and records the certificate", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    expect(ca.run(["issue", "client", "b"]).code).toBe(0);
    const idx = path.join(ca.dir, "index.txt");
    const t = fs.readFileSync(idx, "utf8");
    const lines = t.split("\n").filter(Boolean);
    fs.writeFileSync(idx, lines[0] + "\n" + lines[1]!.slice(0, 20)); // b's line cut short
    const d = ca.run(["doctor", "--json"]);
    expect(d.code).toBe(1);
    expect(json(d).checks.find((c: any) => c.name === "index").message).toMatch(/half line/);
    const rep = ca.run(["doctor", "--repair", "--json"]);
    expect(rep.code, rep.stdout).toBe(0);
    expect(indexLines(ca.dir)).toHaveLength(2);
    expect(indexLines(ca.dir)[1]![3]).toBe(lines[1]!.split("\t")[3]);
  });

  it("doctor reports duplicate serials in index.txt", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "a"]).code).toBe(0);
    const idx = path.join(ca.dir, "index.txt");
    const line = fs.readFileSync(idx, "utf8").split("\n")[0]!;
    fs.appendFileSync(idx, line.replace("/CN=a", "/CN=evil") + "\n");
    const d = ca.run(["doctor", "--json"]);
    expect(d.code).toBe(1);
    expect(json(d).checks.find((c: any) => c.name === "index").message).toMatch(/1 serial\(s\) on more than one index line/);
  });
});
