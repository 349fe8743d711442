/**
 * pki issue end to end: files, JSON, validity, refusals.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl, snapshot } from "../helpers.js";
import { expectRefused, opensslField, verify } from "./lib.js";

const enddate = (f: string) => new Date(openssl(["x509", "-in", f, "-noout", "-enddate"]).stdout.trim().split("=")[1]!);
const startdate = (f: string) => new Date(openssl(["x509", "-in", f, "-noout", "-startdate"]).stdout.trim().split("=")[1]!);

describe("pki issue", () => {
  const ca = makeCa(["--days", "200"]);

  it("writes issued/<name>.crt, .chain.crt and private/<name>.key; JSON has the contract's fields", () => {
    const r = ca.run(["issue", "server", "web1", "--san", "dns:web1.example.lan,ip:10.0.0.5", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const d = json(r);
    expect(d).toMatchObject({
      ok: true,
      name: "web1",
      subject: "CN=web1",
      san: ["dns:web1.example.lan", "ip:10.0.0.5"],
      profile: "server",
      cert: path.join(ca.dir, "issued", "web1.crt"),
      key: path.join(ca.dir, "private", "web1.key"),
      chain: path.join(ca.dir, "issued", "web1.chain.crt"),
      p12: null,
    });
    expect(d.serial).toBe(opensslField(d.cert, "-serial"));
    expect(fs.readFileSync(d.key, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/); // nginx reads it: unencrypted
    expect(verify(path.join(ca.dir, "ca.crt"), d.cert, "sslserver").stdout).toMatch(/: OK/);
    const meta = fs.readFileSync(path.join(ca.dir, "index.meta"), "utf8");
    expect(meta).toContain(`${d.serial}\tserver\tweb1\n`);
  });

  it("notBefore a minute in the past, 365 days by default, --days honoured", () => {
    const t0 = Date.now();
    const r = ca.run(["issue", "client", "timing", "--days", "30", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const t1 = Date.now();
    const d = json(r);
    // notBefore = (signing time, whole seconds) - 60 s, and t0 <= signing time <= t1
    const nb = startdate(d.cert).getTime();
    expect(nb).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000 - 60_000);
    expect(nb).toBeLessThanOrEqual(t1 - 60_000);
    expect(enddate(d.cert).getTime() - nb).toBe(30 * 86_400_000 + 60_000);
    expect(new Date(d.notAfter).getTime()).toBe(enddate(d.cert).getTime());
  });

  it("caps the validity at the CA's notAfter, with a warning", () => {
    const r = ca.run(["issue", "client", "capped"]); // 365 days > the CA's 200
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: validity capped/);
    expect(enddate(path.join(ca.dir, "issued", "capped.crt")).getTime()).toBe(enddate(path.join(ca.dir, "ca.crt")).getTime());
  });

  it("refuses a name that already holds a valid certificate: exit 1, nothing changed", () => {
    expect(ca.run(["issue", "client", "bob"]).code).toBe(0);
    const before = snapshot(ca.dir);
    expectRefused(ca.run(["issue", "client", "bob"]), before, ca.dir, /already holds a valid certificate/);
    expectRefused(ca.run(["issue", "server", "bob", "--san", "dns:bob.example.lan"]), before, ca.dir, /already holds/);
    const j = ca.run(["issue", "client", "bob", "--json"]);
    expect(json(j).error.code).toBe("NAME_EXISTS");
  });

  it("--out-dir puts the three files there; the CA's issued/ is untouched", () => {
    const out = fs.mkdtempSync(path.join(ca.root, "out-"));
    const r = ca.run(["issue", "ssl", "agent7", "--out-dir", out, "--key-type", "ed25519", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(["agent7.chain.crt", "agent7.crt", "agent7.key"]);
    expect(fs.existsSync(path.join(ca.dir, "issued", "agent7.crt"))).toBe(false);
    expect(openssl(["pkey", "-in", path.join(out, "agent7.key"), "-noout", "-text"]).stdout).toMatch(/ED25519/);
    // the certificate is still recorded in the CA
    expect(fs.existsSync(path.join(ca.dir, "certs", `${json(r).serial}.pem`))).toBe(true);
  });

  it("refuses bad input without changing anything", () => {
    const before = snapshot(ca.dir);
    const usage = (args: string[], re: RegExp) => {
      const r = ca.run(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    };
    usage(["issue", "client", "../evil"], /invalid name/);
    usage(["issue", "client", "x", "--key-type", "rsa-1024"], /unknown key type/);
    usage(["issue", "client", "x", "--days", "0"], /--days/);
    usage(["issue", "client"], /missing name/);
    usage(["issue", "server", "Web Server"], /invalid name/);
    const failed = (args: string[], re: RegExp) => expectRefused(ca.run(args), before, ca.dir, re);
    failed(["issue", "nosuchprofile", "x"], /unknown profile "nosuchprofile": use one of/);
    failed(["issue", "clint", "x"], /^pki: error: unknown profile "clint" \(did you mean "client"\?\): use one of client, code-signing, ocsp, server, ssl/);
    failed(["issue", "client", "x", "--san", "ip:999.0.0.1"], /invalid IP/);
    failed(["issue", "code-signing", "x", "--san", "ip:10.0.0.1"], /does not allow ip/);
    expect(snapshot(ca.dir)).toEqual(before);
  });
});
