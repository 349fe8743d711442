/**
 * Issue 10 ("a CA that cannot be turned against itself"), the core findings:
 * 4 name policy, 5 revocations undone, 6 time, 7 crash ordering, 8 disk full,
 * 10 `openssl ca` interop, 11 configuration, 13 locks; and what `doctor`
 * reports of each. Every test runs the real bin/pki and checks with openssl.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, snapshot } from "../helpers.js";
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
