/**
 * Issue 10, finding 3: a certificate file is trusted as this CA's only when
 * its signature verifies with the CA's key AND it is byte for byte the CA's
 * own copy, certs/<SERIAL>.pem (src/ca/provenance.ts). Otherwise renew,
 * revoke, export p12, show and verify refuse it (NOT_ISSUED_HERE) and change
 * nothing (contract: "What every command refuses").
 *
 * Two forgeries of one class: (a) a fake CA with the same subject DN signs
 * the attacker's key under a real agent's serial; (b) the CA's own key signs
 * such a certificate outside pki (`openssl x509 -req` with the CA key), which
 * is not what the index recorded under that serial.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, snapshot } from "../helpers.js";
import { indexLines, opensslCsr } from "../hardening-helpers.js";
import { expectRefused } from "./lib.js";

type Ca = ReturnType<typeof makeCa>;
let ca: Ca;
let agent: { serial: string; cert: string };
let csrAgentSerial: string;
let fakeSigned: string; // (a)
let keySigned: string; // (b)

function forge(out: string, serial: string, caCert: string, caKey: string, passin?: string): string {
  const csr = opensslCsr(ca.root, path.basename(out, ".crt") + "-attacker", "/O=Acme/CN=admin.corp.example", { san: "DNS:admin.corp.example,DNS:agent1" });
  const r = openssl(["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, ...(passin ? ["-passin", passin] : []), "-set_serial", `0x${serial}`, "-days", "30", "-copy_extensions", "copy", "-out", out]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

beforeAll(() => {
  ca = makeCa();
  agent = json(ca.run(["issue", "client", "agent1", "--json"]));
  const csr = opensslCsr(ca.root, "agent2", "/CN=agent2");
  csrAgentSerial = json(ca.run(["sign-csr", csr, "--profile", "client", "--json"])).serial;

  // (a) a fake CA whose subject DN is byte for byte the real one
  const fakeKey = path.join(ca.root, "fake.key");
  const fakeCrt = path.join(ca.root, "fake.crt");
  const g = openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", fakeKey, "-out", fakeCrt, "-days", "30", "-subj", "/O=Acme/CN=Test Root CA"]);
  expect(g.code, g.stderr).toBe(0);
  const subj = (f: string, flag: string) => openssl(["x509", "-in", f, "-noout", flag]).stdout.replace(/^\w+=/, "").trim();
  expect(subj(fakeCrt, "-subject")).toBe(subj(path.join(ca.dir, "ca.crt"), "-subject"));
  fakeSigned = forge(path.join(ca.root, "forged-fake-ca.crt"), agent.serial, fakeCrt, fakeKey);

  // (b) the CA's own key, used outside pki
  keySigned = forge(path.join(ca.root, "forged-ca-key.crt"), agent.serial, path.join(ca.dir, "ca.crt"), path.join(ca.dir, "private", "ca.key"), `file:${ca.pass}`);
  expect(openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), keySigned]).code).toBe(0); // openssl accepts it: only the stored copy tells
});

function refusedNotIssuedHere(args: string[]): void {
  const before = snapshot(ca.dir);
  const r = ca.run(args);
  expectRefused(r, before, ca.dir, /not|refused/);
  const j = ca.run([...args, "--json"]);
  expect(j.code).toBe(1);
  expect(json(j).error.code).toBe("NOT_ISSUED_HERE");
  expect(snapshot(ca.dir)).toEqual(before);
}

const statusOf = (serial: string) => indexLines(ca.dir).find((l) => l[3] === serial)![0];

describe("finding 3: forged certificate files are not trusted", () => {
  it("renew of a forged certificate (fake CA, same DN, a real agent's serial) is refused: no certificate for the attacker, the agent not revoked", () => {
    refusedNotIssuedHere(["renew", fakeSigned]);
    refusedNotIssuedHere(["renew", fakeSigned, "--rekey"]);
    expect(statusOf(agent.serial)).toBe("V");
  });

  it("revoke of a forged certificate revokes nobody", () => {
    refusedNotIssuedHere(["revoke", fakeSigned]);
    refusedNotIssuedHere(["revoke", fakeSigned, "--reason", "keyCompromise"]);
    expect(statusOf(agent.serial)).toBe("V");
  });

  it("variant: a certificate signed with the CA's key outside pki, differing from certs/<SERIAL>.pem, is refused too", () => {
    refusedNotIssuedHere(["renew", keySigned]);
    refusedNotIssuedHere(["revoke", keySigned]);
    const p12pass = path.join(ca.root, "p12pass");
    fs.writeFileSync(p12pass, "p12 password\n", { mode: 0o600 });
    refusedNotIssuedHere(["export", "p12", keySigned, "--p12-passphrase-file", p12pass, "--out", path.join(ca.root, "x.p12")]);
    expect(statusOf(agent.serial)).toBe("V");
  });

  it("variant: the forged file with a sign-csr'ed agent's serial", () => {
    const f = forge(path.join(ca.root, "forged-agent2.crt"), csrAgentSerial, path.join(ca.root, "fake.crt"), path.join(ca.root, "fake.key"));
    refusedNotIssuedHere(["renew", f]);
    refusedNotIssuedHere(["revoke", f]);
    expect(statusOf(csrAgentSerial)).toBe("V");
  });

  it("verify and show refuse both forgeries (NOT_ISSUED_HERE, one line saying what to do)", () => {
    for (const f of [fakeSigned, keySigned]) {
      refusedNotIssuedHere(["verify", f]);
      refusedNotIssuedHere(["verify", f, "--purpose", "client"]);
      refusedNotIssuedHere(["show", f]);
      const v = ca.run(["verify", f, "--json"]);
      expect(json(v)).toMatchObject({ ok: false, error: { code: "NOT_ISSUED_HERE" } });
      for (const r of [ca.run(["verify", f]), ca.run(["show", f])]) {
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/^pki: error: .*refused; .*openssl x509 -in .* -noout -text/);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
      }
    }
    expect(ca.run(["verify", keySigned]).stderr).toMatch(/certs\/.*differs/);
    expect(ca.run(["show", fakeSigned]).stderr).toMatch(/signature was not made with this CA.s key/);
  });

  it("show and verify refuse a certificate file from another CA, and show refuses any certificate file where there is no CA", () => {
    const other = makeCa();
    const o = json(other.run(["issue", "client", "outsider", "--json"]));
    refusedNotIssuedHere(["show", o.cert]);
    refusedNotIssuedHere(["verify", o.cert]);
    const empty = fs.mkdtempSync(path.join(ca.root, "no-ca-"));
    const r = pki(["--dir", empty, "show", o.cert, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r).error.code).toBe("NOT_ISSUED_HERE");
    expect(fs.readdirSync(empty)).toEqual([]);
  });

  it("show still reads this CA's own certificate files, CSRs and CRLs", () => {
    expect(json(ca.run(["show", path.join(ca.dir, "ca.crt"), "--json"])).type).toBe("certificate");
    expect(json(ca.run(["show", path.join(ca.dir, "crl.pem"), "--json"])).type).toBe("crl");
    const csr = opensslCsr(ca.root, "shown", "/CN=shown");
    expect(json(ca.run(["show", csr, "--json"])).type).toBe("csr");
  });

  it("the genuine certificate file still works: verify, show, then revoke by file", () => {
    const copy = path.join(ca.root, "agent1-copy.crt");
    fs.copyFileSync(agent.cert, copy);
    expect(ca.run(["verify", copy]).code).toBe(0);
    expect(json(ca.run(["show", copy, "--json"])).name).toBe("agent1");
    const r = ca.run(["renew", copy, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).previousSerial).toBe(agent.serial);
    expect(statusOf(agent.serial)).toBe("R");
  });
});
