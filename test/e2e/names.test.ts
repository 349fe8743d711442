/**
 * Names a machine can be revoked by (issue 11, item 1): `sign-csr --name`,
 * `--replace`, `--name-from-cn`; `revoke` with several targets, `--subject`
 * and `--all-of`, all resolved before anything is revoked. Every CRL is read
 * back with `openssl crl`, every certificate with `openssl x509`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl, snapshot } from "../helpers.js";
import { expectRefused, opensslField, verify } from "./lib.js";

/** A key and CSR made by openssl, as an agent makes them. */
function agentCsr(dir: string, file: string, subj: string): string {
  const csr = path.join(dir, `${file}.csr`);
  const r = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, `${file}.key`), "-subj", subj, "-out", csr]);
  expect(r.code, r.stderr).toBe(0);
  return csr;
}

/** serial -> reason ("" for none) of the CRL, as openssl prints it. */
function crlEntries(crlPath: string): Map<string, string> {
  const r = openssl(["crl", "-in", crlPath, "-noout", "-text"]);
  expect(r.code, r.stderr).toBe(0);
  const out = new Map<string, string>();
  const blocks = r.stdout.split(/Serial Number: /).slice(1);
  for (const b of blocks) {
    const serial = b.split("\n")[0]!.trim();
    const reason = /X509v3 CRL Reason Code:\s*\n\s*(.+)/.exec(b)?.[1]?.trim() ?? "";
    out.set(serial, reason);
  }
  return out;
}

const auditLines = (dir: string) =>
  fs
    .readFileSync(path.join(dir, "audit.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("sign-csr --name", () => {
  const ca = makeCa();
  const crl = path.join(ca.dir, "crl.pem");
  const a2 = agentCsr(ca.root, "agent2", "/O=Acme/CN=agent2.agents.example.lan");

  it("records the certificate under the name: issued/<name>.crt and .chain.crt, list, show, revoke by name", () => {
    const r = ca.run(["sign-csr", a2, "--profile", "ssl", "--name", "agent2", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    const crt = path.join(ca.dir, "issued", "agent2.crt");
    expect(d).toMatchObject({ ok: true, name: "agent2", path: crt, cert: crt, chain: path.join(ca.dir, "issued", "agent2.chain.crt"), replaced: [] });
    expect(fs.readFileSync(crt, "utf8")).toBe(d.certificate); // and still printed for the hook
    expect(opensslField(crt, "-serial")).toBe(d.serial);
    expect(verify(path.join(ca.dir, "ca.crt"), crt, "sslclient").stdout).toMatch(/: OK/);
    // one tier: the chain stops below the root, so it is the leaf alone (contract, Two-tier PKI)
    expect(fs.readFileSync(path.join(ca.dir, "issued", "agent2.chain.crt"), "utf8")).toBe(d.certificate);
    expect(fs.existsSync(path.join(ca.dir, "private", "agent2.key"))).toBe(false); // the agent keeps its key

    const list = json(ca.run(["list", "--json"]));
    expect(list.certificates.find((c: { serial: string }) => c.serial === d.serial)).toMatchObject({ name: "agent2", status: "valid" });
    const table = ca.run(["list"]);
    expect(table.stdout).toMatch(new RegExp(`${d.serial}\\s+valid\\s+ssl\\s+agent2\\s`));
    expect(json(ca.run(["show", "agent2", "--json"])).serial).toBe(d.serial);

    const rv = ca.run(["revoke", "agent2", "--reason", "keyCompromise", "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(json(rv)).toMatchObject({ serial: d.serial, revoked: [{ serial: d.serial, name: "agent2", reason: "keyCompromise" }] });
    expect(crlEntries(crl).get(d.serial)).toBe("Key Compromise");
  });

  it("a name that holds a valid certificate is refused (NAME_EXISTS), nothing changed; a revoked name can be reused", () => {
    // agent2 was revoked above: the name is free again
    const first = ca.run(["sign-csr", a2, "--profile", "ssl", "--name", "agent2", "--json"]);
    expect(first.code, first.stderr).toBe(0);
    const before = snapshot(ca.dir);
    const r = ca.run(["sign-csr", a2, "--profile", "ssl", "--name", "agent2"]);
    expectRefused(r, before, ca.dir, /"agent2" already holds a valid certificate .*--replace/);
    const rj = ca.run(["sign-csr", a2, "--profile", "ssl", "--name", "agent2", "--json"]);
    expect(rj.code).toBe(1);
    expect(json(rj).error.code).toBe("NAME_EXISTS");
    expect(snapshot(ca.dir)).toEqual(before);
  });

  it("--replace revokes the old certificate as superseded in the same step and gives the name to the new one", () => {
    const old = json(ca.run(["show", "agent2", "--json"])).serial as string;
    const r = ca.run(["sign-csr", a2, "--profile", "ssl", "--name", "agent2", "--replace", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/); // the only other certificate of that CN was just superseded
    const d = json(r);
    expect(d.replaced).toEqual([old]);
    expect(crlEntries(crl).get(old)).toBe("Superseded");
    expect(crlEntries(crl).has(d.serial)).toBe(false);
    expect(opensslField(path.join(ca.dir, "issued", "agent2.crt"), "-serial")).toBe(d.serial);
    expect(json(ca.run(["show", "agent2", "--json"])).serial).toBe(d.serial);
    const idx = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8");
    expect(idx).toMatch(new RegExp(`^R\\t\\d+Z\\t\\d+Z,superseded\\t${old}\\t`, "m"));
    const audit = auditLines(ca.dir).slice(-2);
    expect(audit).toEqual([
      expect.objectContaining({ command: "sign-csr", serial: d.serial, name: "agent2", outcome: "ok" }),
      expect.objectContaining({ command: "sign-csr", serial: old, name: "agent2", reason: "superseded", outcome: "revoked" }),
    ]);
  });

  it("a second valid certificate for the same CN is signed with a warning on stderr (also with --json)", () => {
    const r = ca.run(["sign-csr", a2, "--profile", "ssl", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const current = json(ca.run(["show", "agent2", "--json"])).serial;
    expect(r.stderr).toMatch(new RegExp(`^pki: warning: CN=agent2\\.agents\\.example\\.lan already holds valid certificate ${current} \\(name "agent2"\\).*--name agent2 --replace`));
    json(r); // stdout stays one JSON document
  });

  it("the warning for an unnamed certificate of the same CN says to revoke it: --replace supersedes only what a name holds", () => {
    const first = agentCsr(ca.root, "u1", "/CN=unnamed.agents.example.lan");
    const r1 = ca.run(["sign-csr", first, "--profile", "ssl", "--json"]);
    expect(r1.code, r1.stderr).toBe(0);
    const serial = json(r1).certificates?.[0]?.serial ?? json(r1).serial;
    const r2 = ca.run(["sign-csr", agentCsr(ca.root, "u2", "/CN=unnamed.agents.example.lan"), "--profile", "ssl", "--name", "unnamed", "--replace", "--json"]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr.trim()).toBe(`pki: warning: CN=unnamed.agents.example.lan already holds valid certificate ${serial}, which stays valid: if the new one replaces it, run \`pki revoke ${serial}\` (it has no name for --replace to supersede)`);
    // and so it is: still valid, until revoked as the warning says
    expect(json(ca.run(["show", serial, "--json"])).revocation.status).toBe("valid");
    expect(ca.run(["revoke", serial]).code).toBe(0);
  });

  it("name rules of `pki issue`: '..', '/', spaces refused as usage errors; --name with several CSRs, --replace alone refused", () => {
    const before = snapshot(ca.dir);
    for (const bad of ["../evil", "a/b", "a..b", "has space", ""]) {
      const r = ca.run(["sign-csr", a2, "--profile", "ssl", "--name", bad]);
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^pki: error: /);
    }
    const b = agentCsr(ca.root, "b", "/CN=b.agents.example.lan");
    expect(ca.run(["sign-csr", a2, b, "--profile", "ssl", "--name", "x", "--out-dir", ca.root]).code).toBe(2);
    expect(ca.run(["sign-csr", a2, "--profile", "ssl", "--replace"]).code).toBe(2);
    expect(ca.run(["sign-csr", a2, "--profile", "ssl", "--name", "x", "--name-from-cn"]).code).toBe(2);
    expect(snapshot(ca.dir)).toEqual(before);
  });

  it("renew <name> certifies the agent's key again; --rekey is refused (pki never held that key)", () => {
    const old = json(ca.run(["show", "agent2", "--json"])).serial;
    const before = snapshot(ca.dir);
    const rk = ca.run(["renew", "agent2", "--rekey"]);
    expect(rk.code, rk.stderr).toBe(2);
    expect(rk.stderr).toMatch(/signed from a CSR/);
    expect(snapshot(ca.dir)).toEqual(before);
    const r = ca.run(["renew", "agent2", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ previousSerial: old, name: "agent2" });
    const crt = path.join(ca.dir, "issued", "agent2.crt");
    expect(opensslField(crt, "-serial")).toBe(json(r).serial);
    expect(openssl(["x509", "-in", crt, "-noout", "-pubkey"]).stdout).toBe(openssl(["req", "-in", a2, "-noout", "-pubkey"]).stdout);
  });
});

describe("sign-csr --name-from-cn (batches)", () => {
  it("names each certificate after its CSR's CN; no --out-dir needed; refuses a CN that cannot be a name", () => {
    const ca = makeCa();
    const csrs = ["agent10", "agent11", "agent12"].map((n) => agentCsr(ca.root, n, `/O=Acme/CN=${n}.agents.example.lan`));
    const r = ca.run(["sign-csr", ...csrs, "--profile", "client", "--name-from-cn", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.certificates.map((c: { name: string }) => c.name)).toEqual(["agent10.agents.example.lan", "agent11.agents.example.lan", "agent12.agents.example.lan"]);
    for (const c of d.certificates) expect(opensslField(path.join(ca.dir, "issued", `${c.name}.crt`), "-serial")).toBe(c.serial);

    // again without --replace: NAME_EXISTS for the whole batch
    const before = snapshot(ca.dir);
    expectRefused(ca.run(["sign-csr", ...csrs, "--profile", "client", "--name-from-cn"]), before, ca.dir, /agent1\d\.agents\.example\.lan" already holds/);
    // a CN with a space is not a file name
    const spaced = agentCsr(ca.root, "spaced", "/CN=Agent Smith");
    expectRefused(ca.run(["sign-csr", csrs[0]!, spaced, "--profile", "client", "--name-from-cn", "--replace"]), before, ca.dir, /CN "Agent Smith" .* cannot be an issued name/);
    // two CSRs with the same CN: refused before signing
    const dup = agentCsr(ca.root, "dup", "/CN=agent10.agents.example.lan");
    const r2 = ca.run(["sign-csr", csrs[0]!, dup, "--profile", "client", "--name-from-cn", "--replace"]);
    expect(r2.code).toBe(2);
    expect(snapshot(ca.dir)).toEqual(before);

    // --replace supersedes every one of them in one commit
    const r3 = ca.run(["sign-csr", ...csrs, "--profile", "client", "--name-from-cn", "--replace", "--json"]);
    expect(r3.code, r3.stderr).toBe(0);
    const entries = crlEntries(path.join(ca.dir, "crl.pem"));
    for (const c of d.certificates) expect(entries.get(c.serial)).toBe("Superseded");
    expect(json(r3).certificates.map((c: { replaced: string[] }) => c.replaced)).toEqual(d.certificates.map((c: { serial: string }) => [c.serial]));
  });
});

describe("revoke: several targets, --subject, --all-of", () => {
  const ca = makeCa();
  const crl = path.join(ca.dir, "crl.pem");
  const sign = (csr: string, extra: string[]) => {
    const r = ca.run(["sign-csr", csr, "--profile", "client", "--json", ...extra]);
    expect(r.code, r.stderr).toBe(0);
    return json(r).serial as string;
  };
  const c1 = agentCsr(ca.root, "m1", "/O=Acme/OU=Agents/CN=m1.agents.example.lan");
  const c2 = agentCsr(ca.root, "m2", "/O=Acme/CN=m2.agents.example.lan");
  const c3 = agentCsr(ca.root, "m3", "/O=Other/CN=m3.agents.example.lan");

  it("several targets: all resolved first, one unknown or revoked target revokes nothing", () => {
    const s1 = sign(c1, ["--name", "m1"]);
    const s2 = sign(c2, ["--name", "m2"]);
    const before = snapshot(ca.dir);
    expectRefused(ca.run(["revoke", "m1", s2, "no-such-machine"]), before, ca.dir, /"no-such-machine"/);
    expectRefused(ca.run(["revoke", "m1", "DEADBEEF"]), before, ca.dir);
    const r = ca.run(["revoke", "m1", s2, s1.toLowerCase(), "--reason", "cessationOfOperation", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d.revoked).toEqual([
      expect.objectContaining({ serial: s1, name: "m1", reason: "cessationOfOperation", subject: "O=Acme, OU=Agents, CN=m1.agents.example.lan" }),
      expect.objectContaining({ serial: s2, name: "m2", reason: "cessationOfOperation" }),
    ]);
    expect(d.serial).toBeUndefined(); // the one-certificate fields only for one certificate
    const entries = crlEntries(crl);
    expect(entries.get(s1)).toBe("Cessation Of Operation");
    expect(entries.get(s2)).toBe("Cessation Of Operation");
    const audit = auditLines(ca.dir).filter((l) => l.command === "revoke" && l.outcome === "ok");
    expect(audit.map((l) => l.serial)).toEqual([s1, s2]);
    // a revoked target among others: nothing revoked
    const s3 = sign(c3, ["--name", "m3"]);
    const before2 = snapshot(ca.dir);
    const again = ca.run(["revoke", "m3", s1, "--json"]);
    expect(again.code).toBe(1);
    expect(json(again).error.code).toBe("ALREADY_REVOKED");
    expect(snapshot(ca.dir)).toEqual(before2);
    expect(crlEntries(crl).has(s3)).toBe(false);
  });

  it("--subject: the CN alone, or the whole DN in any order; only valid certificates; nothing matching is NOT_FOUND", () => {
    const a = sign(c2, ["--name", "m2"]);
    const b = sign(c2, []); // a second valid one for the same machine (warned)
    const other = sign(agentCsr(ca.root, "m2b", "/O=Other/CN=m2.agents.example.lan"), []);
    const before = snapshot(ca.dir);
    // a DN that matches nothing exactly (O differs / an attribute missing)
    expectRefused(ca.run(["revoke", "--subject", "CN=m2.agents.example.lan,O=Nobody"]), before, ca.dir, /no valid certificate has the subject/);
    expectRefused(ca.run(["revoke", "--subject", "CN=m2.agents.example.lan,O=Acme,OU=Agents"]), before, ca.dir);
    expectRefused(ca.run(["revoke", "--subject", "CN=nobody.example.lan"]), before, ca.dir, /no valid certificate has the CN/);
    // nginx's $ssl_client_s_dn order (RFC 2253), case-insensitive: exactly the O=Acme ones
    const r = ca.run(["revoke", "--subject", "CN=M2.agents.example.lan,O=Acme", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).revoked.map((x: { serial: string }) => x.serial).sort()).toEqual([a, b].sort());
    expect(crlEntries(crl).has(other)).toBe(false);
    // the CN alone, bare: the remaining one
    const r2 = ca.run(["revoke", "--subject", "m2.agents.example.lan", "--json"]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(json(r2).revoked.map((x: { serial: string }) => x.serial)).toEqual([other]);
    expect(ca.run(["revoke", "--subject", "CN=,O=x"]).code).toBe(2);
  });

  it("--all-of: every valid certificate ever recorded under the name; a second run has nothing left", () => {
    const c4 = agentCsr(ca.root, "m4", "/CN=m4.agents.example.lan");
    const first = sign(c4, ["--name", "m4"]);
    const renewed = ca.run(["renew", "m4", "--keep-old", "--json"]);
    expect(renewed.code, renewed.stderr).toBe(0);
    const second = json(renewed).serial;
    const before = snapshot(ca.dir);
    expectRefused(ca.run(["revoke", "m4"]), before, ca.dir, /holds 2 valid certificates.*--all-of m4/);
    expectRefused(ca.run(["revoke", "--all-of", "never-issued"]), before, ca.dir, /no certificate was ever issued under the name/);
    const r = ca.run(["revoke", "--all-of", "m4", "--reason", "keyCompromise", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).revoked.map((x: { serial: string }) => x.serial).sort()).toEqual([first, second].sort());
    const entries = crlEntries(crl);
    expect(entries.get(first)).toBe("Key Compromise");
    expect(entries.get(second)).toBe("Key Compromise");
    const before2 = snapshot(ca.dir);
    expectRefused(ca.run(["revoke", "--all-of", "m4"]), before2, ca.dir, /"m4" holds no valid certificate \(2 revoked/);
    // the history stays listed under the name
    const hist = json(ca.run(["list", "--name", "m4", "--json"])).certificates;
    expect(hist.map((c: { serial: string; status: string }) => [c.serial, c.status])).toEqual([
      [first, "revoked"],
      [second, "revoked"],
    ]);
  });

  it("targets, --subject and --all-of combine; the same certificate named twice is revoked once", () => {
    const c5 = agentCsr(ca.root, "m5", "/CN=m5.agents.example.lan");
    const c6 = agentCsr(ca.root, "m6", "/CN=m6.agents.example.lan");
    const s5 = sign(c5, ["--name", "m5"]);
    const s6 = sign(c6, ["--name", "m6"]);
    const r = ca.run(["revoke", "m5", s5, "--subject", "CN=m6.agents.example.lan", "--all-of", "m6", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).revoked.map((x: { serial: string }) => x.serial)).toEqual([s5, s6]);
    expect(ca.run(["revoke"]).code).toBe(2);
  });
});
