/**
 * pki's CRL judged by the real openssl: signature, entries and reasons,
 * CRL number, chain verification with -crl_check, DER output, and parity with
 * `openssl ca -gencrl` run on the same directory (whose index.txt is in
 * OpenSSL's format). Also --if-expiring-within and `pki doctor` on CRL age.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, snapshot } from "../helpers.js";

/** Serial -> reason text ("none" when the entry has no reasonCode), from `openssl crl -text`. */
function entries(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = text.split(/Serial Number: /).slice(1);
  for (const p of parts) {
    const serial = p.split(/\s/)[0]!.toUpperCase();
    const m = /X509v3 CRL Reason Code:\s*\n\s*(.+)/.exec(p.split(/Serial Number: |Signature Algorithm/)[0]!);
    out.set(serial, m ? m[1]!.trim() : "none");
  }
  return out;
}

const crlNumber = (file: string, inform = "PEM") => {
  const r = openssl(["crl", "-in", file, "-inform", inform, "-noout", "-crlnumber"]);
  expect(r.code, r.stderr).toBe(0);
  return parseInt(r.stdout.trim().replace(/^crlNumber=(0x)?/, ""), 16);
};

/** A minimal `openssl ca` configuration for -gencrl on a pki directory. */
function opensslCaConfig(dir: string, file: string): string {
  fs.writeFileSync(
    file,
    `[ ca ]
default_ca = pki
[ pki ]
dir = ${dir}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/private/ca.key
new_certs_dir = $dir/certs
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
`,
  );
  return file;
}

describe("pki revoke + pki crl, checked by openssl", () => {
  const ca = makeCa();
  const crl = path.join(ca.dir, "crl.pem");
  const caCrt = path.join(ca.dir, "ca.crt");
  const issued: Record<string, { serial: string; cert: string }> = {};
  const expected = new Map<string, string>();

  beforeAll(() => {
    for (const n of ["a", "b", "c", "d", "e", "valid"]) {
      const r = ca.run(["issue", "client", n, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      issued[n] = json(r);
    }
    // each target form once: name, serial (lower case, colons), certificate file
    const revoke = (target: string, reason: string | null, n: string, text: string) => {
      const r = ca.run(["revoke", target, ...(reason ? ["--reason", reason] : []), "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const d = json(r);
      expect(d).toMatchObject({ ok: true, serial: issued[n]!.serial, subject: `CN=${n}`, reason: reason ?? "unspecified", crl });
      expect(new Date(d.revokedAt).toISOString()).toBe(d.revokedAt);
      expected.set(issued[n]!.serial, text);
    };
    revoke("a", "keyCompromise", "a", "Key Compromise");
    revoke(issued.b!.serial.toLowerCase().replace(/(..)(?!$)/g, "$1:"), null, "b", "none");
    revoke(issued.c!.cert, "caCompromise", "c", "CA Compromise");
    revoke("d", "superseded", "d", "Superseded");
    revoke("e", "certificateHold", "e", "Certificate Hold");
  });

  it("writes OpenSSL's reason spelling into index.txt, and no reason for unspecified", () => {
    const index = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8");
    const line = (n: string) => index.split("\n").find((l) => l.includes(issued[n]!.serial))!.split("\t");
    expect(line("a")[0]).toBe("R");
    expect(line("a")[2]).toMatch(/^\d{12}Z,keyCompromise$/);
    expect(line("b")[2]).toMatch(/^\d{12}Z$/);
    expect(line("c")[2]).toMatch(/,CACompromise$/);
    expect(line("e")[2]).toMatch(/,certificateHold$/);
    expect(line("valid")[0]).toBe("V");
  });

  it("the CRL verifies against ca.crt and lists each revoked serial with its reason", () => {
    const v = openssl(["crl", "-in", crl, "-CAfile", caCrt, "-noout"]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout + v.stderr).toContain("verify OK");
    const t = openssl(["crl", "-in", crl, "-noout", "-text"]);
    expect(t.stdout).toContain("Version 2");
    expect(t.stdout).toContain("X509v3 Authority Key Identifier");
    expect(entries(t.stdout)).toEqual(expected);
  });

  it("the CRL number increases on every pki crl, and crlnumber holds the next one", () => {
    const n0 = crlNumber(crl);
    expect(ca.run(["crl"]).code).toBe(0);
    const n1 = crlNumber(crl);
    const r = ca.run(["crl", "--json"]);
    const d = json(r);
    expect(n1).toBe(n0 + 1);
    expect(d.crlNumber).toBe(n1 + 1);
    expect(crlNumber(crl)).toBe(n1 + 1);
    expect(d).toMatchObject({ ok: true, path: crl, revoked: 5 });
    expect(parseInt(fs.readFileSync(path.join(ca.dir, "crlnumber"), "utf8"), 16)).toBe(n1 + 2);
  });

  it("openssl verify -crl_check refuses a revoked certificate and accepts a valid one", () => {
    const bad = openssl(["verify", "-crl_check", "-CRLfile", crl, "-CAfile", caCrt, issued.a!.cert]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain("certificate revoked");
    const good = openssl(["verify", "-crl_check", "-CRLfile", crl, "-CAfile", caCrt, issued.valid!.cert]);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain(": OK");
  });

  it("--der writes a DER CRL that openssl reads with -inform DER", () => {
    const out = path.join(ca.root, "crl.der");
    const r = ca.run(["crl", "--der", "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).path).toBe(out);
    expect(fs.readFileSync(out)[0]).toBe(0x30);
    const v = openssl(["crl", "-inform", "DER", "-in", out, "-CAfile", caCrt, "-noout", "-text"]);
    expect(v.code, v.stderr).toBe(0);
    expect(entries(v.stdout)).toEqual(expected);
  });

  it("openssl ca -gencrl on the same directory lists the same serials and reasons", () => {
    const cnf = opensslCaConfig(ca.dir, path.join(ca.root, "openssl-ca.cnf"));
    const out = path.join(ca.root, "openssl-crl.pem");
    const before = parseInt(fs.readFileSync(path.join(ca.dir, "crlnumber"), "utf8"), 16);
    const g = openssl(["ca", "-config", cnf, "-gencrl", "-passin", `file:${ca.pass}`, "-out", out]);
    expect(g.code, g.stderr).toBe(0);
    const theirs = entries(openssl(["crl", "-in", out, "-noout", "-text"]).stdout);
    const ours = entries(openssl(["crl", "-in", crl, "-noout", "-text"]).stdout);
    expect(theirs).toEqual(ours);
    expect(theirs.size).toBe(5);
    // openssl took the number pki left in crlnumber; pki goes on after it
    expect(crlNumber(out)).toBe(before);
    expect(json(ca.run(["crl", "--json"])).crlNumber).toBe(before + 1);
  });

  it("refuses to revoke an unknown or already revoked certificate, changing nothing", () => {
    const snap = snapshot(ca.dir);
    for (const target of ["a", issued.a!.serial, "00DEADBEEF", "nobody"]) {
      const r = ca.run(["revoke", target, "--json"]);
      expect(r.code).toBe(1);
      expect(["ALREADY_REVOKED", "NOT_FOUND"]).toContain(json(r).error.code);
    }
    const bad = ca.run(["revoke", "valid", "--reason", "stolen"]);
    expect(bad.code).toBe(2);
    expect(snapshot(ca.dir)).toEqual(snap);
  });
});

describe("pki crl --if-expiring-within and pki doctor on CRL age", () => {
  it("leaves a CRL far from its nextUpdate byte-identical, and re-signs one that is close", () => {
    const ca = makeCa();
    const crl = path.join(ca.dir, "crl.pem");
    expect(ca.run(["crl", "--days", "30"]).code).toBe(0);
    const snap = snapshot(ca.dir);
    const far = ca.run(["crl", "--if-expiring-within", "2", "--json"]);
    expect(far.code, far.stderr).toBe(0);
    expect(json(far).resigned).toBe(false);
    expect(snapshot(ca.dir)).toEqual(snap); // crl.pem and crlnumber untouched

    expect(ca.run(["crl", "--days", "1"]).code).toBe(0);
    const bytes = fs.readFileSync(crl);
    const n = crlNumber(crl);
    const close = ca.run(["crl", "--if-expiring-within", "2", "--json"]);
    expect(close.code, close.stderr).toBe(0);
    expect(json(close).resigned).toBe(true);
    expect(fs.readFileSync(crl).equals(bytes)).toBe(false);
    expect(crlNumber(crl)).toBe(n + 1);
    const next = new Date(json(close).nextUpdate).getTime();
    expect(next - Date.now()).toBeGreaterThan(6 * 86_400_000); // pki.json's crlDays (7)
  });

  it("doctor exits 1 on an expired CRL (written by openssl ca with a past nextUpdate) and 0 on a fresh one", () => {
    const ca = makeCa();
    const fresh = ca.run(["doctor", "--json"]);
    expect(fresh.code, fresh.stdout).toBe(0);
    expect(json(fresh).checks.find((c: { name: string }) => c.name === "crl").status).toBe("ok");

    // An honestly expired CRL, signed by the CA key: openssl ca -gencrl with
    // explicit lastUpdate/nextUpdate in the past (no clock tricks in pki).
    const cnf = opensslCaConfig(ca.dir, path.join(ca.root, "openssl-ca.cnf"));
    const g = openssl(["ca", "-config", cnf, "-gencrl", "-passin", `file:${ca.pass}`, "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate", "20200108000000Z", "-out", path.join(ca.dir, "crl.pem")]);
    expect(g.code, g.stderr).toBe(0);
    const expired = ca.run(["doctor", "--json"]);
    expect(expired.code).toBe(1);
    const d = json(expired);
    expect(d.ok).toBe(false);
    expect(d.checks.find((c: { name: string }) => c.name === "crl")).toMatchObject({ status: "fail" });
    expect(d.checks.find((c: { name: string }) => c.name === "crl").message).toContain("expired");

    // the cron job's command repairs it
    const cron = ca.run(["crl", "--if-expiring-within", "2", "--json"]);
    expect(json(cron).resigned).toBe(true);
    expect(ca.run(["doctor"]).code).toBe(0);
  });
});
