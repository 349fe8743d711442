/**
 * index.txt is OpenSSL's `ca` database: `openssl ca -status` and
 * `openssl ca -gencrl` (and even `openssl ca -revoke`) work on a directory
 * made by pki, and pki keeps working on the index openssl wrote.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES, json, makeCa, openssl } from "../helpers.js";

function caConfig(dir: string): string {
  const cfg = path.join(path.dirname(dir), "openssl-ca.cnf");
  fs.writeFileSync(
    cfg,
    [
      "[ ca ]",
      "default_ca = pki",
      "[ pki ]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "new_certs_dir = $dir/certs",
      "serial = $dir/serial",
      "crlnumber = $dir/crlnumber",
      "certificate = $dir/ca.crt",
      "private_key = $dir/private/ca.key",
      "default_md = default",
      "default_crl_days = 7",
      "policy = any",
      "[ any ]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  return cfg;
}

/** `openssl ca -status` exits 1 even when it found the serial: read what it says. */
function status(cfg: string, serial: string): string {
  const r = openssl(["ca", "-config", cfg, "-status", serial]);
  return r.stdout + r.stderr;
}

describe.each(["ec-p256", "ed25519", "rsa-2048"])("openssl ca on a pki directory (%s CA)", (keyType) => {
  it("-status finds every issued serial as Valid, -revoke and -gencrl work, and pki reads the result", () => {
    const ca = makeCa(["--key-type", keyType]);
    const cfg = caConfig(ca.dir);
    const serials: string[] = [];
    for (const [profile, name, extra] of [
      ["server", "web1", ["--san", "dns:web1.example.lan,ip:10.0.0.5"]],
      ["client", "alice", []],
      ["client", "rd", ["--cn", "R&D Team\\, Paris"]],
      ["client", "jp", ["--cn", "日本 チーム"]],
    ] as const) {
      const r = ca.run(["issue", profile, name, ...extra, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      serials.push(json(r).serial);
    }
    const csr = ca.run(["sign-csr", path.join(FIXTURES, "csr", "p384-san.csr"), "--profile", "ssl", "--json"]);
    expect(csr.code, csr.stderr).toBe(0);
    serials.push(json(csr).serial);

    for (const s of serials) expect(status(cfg, s)).toContain(`${s}=Valid (V)`);
    expect(status(cfg, "0123456789ABCDEF")).not.toContain("=Valid");

    // openssl revokes one of ours (writing the index in its own way) ...
    const rv = openssl(["ca", "-config", cfg, "-revoke", path.join(ca.dir, "certs", `${serials[1]}.pem`), "-crl_reason", "keyCompromise", "-passin", `file:${ca.pass}`]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(status(cfg, serials[1]!)).toContain(`${serials[1]}=Revoked (R)`);

    // ... and signs a CRL from it with our encrypted key
    const crlFile = path.join(ca.root, "openssl.crl");
    const g = openssl(["ca", "-config", cfg, "-gencrl", "-passin", `file:${ca.pass}`, "-out", crlFile]);
    expect(g.code, g.stderr).toBe(0);
    const t = openssl(["crl", "-in", crlFile, "-noout", "-text", "-CAfile", path.join(ca.dir, "ca.crt")]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toContain("verify OK");
    const listed = [...t.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]);
    expect(listed).toEqual([serials[1]]);
    expect(t.stdout).toContain("Key Compromise");

    // pki still reads the index openssl wrote: it issues, and refuses the revoked-name rule correctly
    const again = ca.run(["issue", "client", "alice", "--json"]);
    expect(again.code, again.stderr).toBe(0); // alice's old certificate is revoked: the name is free
    expect(status(cfg, json(again).serial)).toContain("=Valid (V)");
    const dup = ca.run(["issue", "server", "web1", "--san", "dns:web1.example.lan"]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already holds a valid certificate/);
  });
});

describe("index.txt line format as openssl writes it", () => {
  it("subjects with a backslash, a comma and UTF-8 stay one tab-separated line that openssl ca reads; '/' is refused", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "slash", "--cn", "a/CN=admin"]).code).toBe(1);
    const r = ca.run(["issue", "client", "odd", "--cn", "a\\b, Zoë", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8").split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    const f = lines[0]!.split("\t");
    expect(f).toHaveLength(6);
    expect(f[0]).toBe("V");
    expect(f[1]).toMatch(/^\d{12}Z$/);
    expect(f[2]).toBe("");
    expect(f[3]).toBe(json(r).serial);
    expect(f[4]).toBe("unknown");
    expect(f[5]).toBe("/CN=a\\x5Cb, Zo\\xC3\\xAB");
    const cfg = caConfig(ca.dir);
    expect(status(cfg, json(r).serial)).toContain("=Valid (V)");
    expect(fs.readFileSync(path.join(ca.dir, "index.txt.attr"), "utf8")).toBe("unique_subject = no\n");
    expect(fs.readFileSync(path.join(ca.dir, "crlnumber"), "utf8")).toMatch(/^[0-9A-F]{2,}\n$/);
  });

  it("a certificate valid beyond 2049 gets a GeneralizedTime expiry that openssl ca reads", () => {
    const ca = makeCa(["--days", "36500"]);
    const r = ca.run(["issue", "client", "longlived", "--days", "12000", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(new Date(d.notAfter).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    const line = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8").trim().split("\t");
    expect(line[1]).toMatch(/^20[5-9]\d{11}Z$/);
    const asn = openssl(["asn1parse", "-in", path.join(ca.dir, "issued", "longlived.crt")]).stdout;
    expect(asn).toMatch(/GENERALIZEDTIME\s+:20[5-9]\d{11}Z/);
    expect(asn).toMatch(/UTCTIME\s+:\d{12}Z/); // notBefore is still UTCTime
    const cfg = caConfig(ca.dir);
    expect(status(cfg, d.serial)).toContain(`${d.serial}=Valid (V)`);
    const rv = openssl(["ca", "-config", cfg, "-revoke", d.cert, "-passin", `file:${ca.pass}`]);
    expect(rv.code, rv.stderr).toBe(0);
    const g = openssl(["ca", "-config", cfg, "-gencrl", "-passin", `file:${ca.pass}`, "-out", path.join(ca.root, "x.crl")]);
    expect(g.code, g.stderr).toBe(0);
    expect(openssl(["crl", "-in", path.join(ca.root, "x.crl"), "-noout", "-text"]).stdout).toContain(`Serial Number: ${d.serial}`);
  });
});
