/**
 * pki bundle (remembered choice, kept current by revoke) and pki doctor
 * (--repair of what an interrupted run leaves behind).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, snapshot } from "../helpers.js";

const certsIn = (file: string) => (fs.readFileSync(file, "utf8").match(/BEGIN CERTIFICATE/g) ?? []).length;
const check = (d: { checks: Array<{ name: string; status: string; message: string }> }, name: string) => d.checks.find((c) => c.name === name)!;

describe("pki bundle", () => {
  it("lists the CA, or with --include-issued the valid certificates of a profile; revoke keeps it current", () => {
    const ca = makeCa();
    const bundle = path.join(ca.dir, "ca-clients.crt");
    for (const n of ["alice", "bob"]) expect(ca.run(["issue", "client", n]).code).toBe(0);
    expect(ca.run(["issue", "server", "web1"]).code).toBe(0);

    const plain = json(ca.run(["bundle", "--json"]));
    expect(plain).toEqual({ ok: true, path: bundle, certificates: 1 });
    expect(fs.readFileSync(bundle, "utf8")).toBe(fs.readFileSync(path.join(ca.dir, "ca.crt"), "utf8"));

    const all = json(ca.run(["bundle", "--include-issued", "--json"]));
    expect(all.certificates).toBe(4);
    expect(JSON.parse(fs.readFileSync(path.join(ca.dir, "pki.json"), "utf8")).bundle).toEqual({ includeIssued: true });

    const clients = json(ca.run(["bundle", "--include-issued", "client", "--json"]));
    expect(clients.certificates).toBe(3);
    expect(JSON.parse(fs.readFileSync(path.join(ca.dir, "pki.json"), "utf8")).bundle).toEqual({ includeIssued: "client" });
    // every certificate in the bundle is one openssl accepts as issued by the CA
    const v = openssl(["verify", "-CAfile", path.join(ca.dir, "ca.crt"), "-untrusted", bundle, path.join(ca.dir, "issued", "bob.crt")]);
    expect(v.code, v.stderr).toBe(0);

    // revoke regenerates it: alice leaves the bundle as she enters the CRL
    expect(ca.run(["revoke", "alice"]).code).toBe(0);
    expect(certsIn(bundle)).toBe(2);
    expect(fs.readFileSync(bundle, "utf8")).not.toContain(fs.readFileSync(path.join(ca.dir, "issued", "alice.crt"), "utf8").trim());
    expect(ca.run(["doctor"]).code).toBe(0);

    // an unknown profile is refused before anything is written
    const snap = snapshot(ca.dir);
    const bad = ca.run(["bundle", "--include-issued", "nosuch", "--json"]);
    expect(bad.code).toBe(1);
    expect(json(bad).error.code).toBe("PROFILE_INVALID");
    expect(snapshot(ca.dir)).toEqual(snap);
  });
});

describe("pki doctor", () => {
  it("is clean on a new CA and reports a bundle that lags a revocation", () => {
    const ca = makeCa();
    const d = json(ca.run(["doctor", "--json"]));
    expect(d.ok).toBe(true);
    expect(d.checks.map((c: { name: string }) => c.name)).toEqual(["ca-certificate", "crl", "key-modes", "index", "bundle", "bundle-size", "temp-files", "lock"]);
    expect(ca.run(["issue", "client", "alice"]).code).toBe(0);
    expect(ca.run(["bundle", "--include-issued"]).code).toBe(0);
    // revoke as another tool would: index and CRL, but not the bundle
    const saved = fs.readFileSync(path.join(ca.dir, "ca-clients.crt"));
    expect(ca.run(["revoke", "alice"]).code).toBe(0);
    fs.writeFileSync(path.join(ca.dir, "ca-clients.crt"), saved);
    fs.utimesSync(path.join(ca.dir, "ca-clients.crt"), new Date(0), new Date(0));
    const r = ca.run(["doctor", "--json"]);
    expect(r.code).toBe(1);
    expect(check(json(r), "bundle").status).toBe("fail");
    const fixed = ca.run(["doctor", "--repair", "--json"]);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(certsIn(path.join(ca.dir, "ca-clients.crt"))).toBe(1);
  });

  it("--repair records a certificate file without its index line, removes temp files and a dead process's lock", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "alice"]).code).toBe(0);
    const bob = json(ca.run(["issue", "client", "bob", "--json"]));
    const idx = path.join(ca.dir, "index.txt");
    const full = fs.readFileSync(idx, "utf8");
    // a run killed between writing certs/<SERIAL>.pem (and index.meta) and committing index.txt
    fs.writeFileSync(idx, full.split("\n").filter((l) => !l.includes(bob.serial)).join("\n"));
    const tmp = path.join(ca.dir, "certs", `.${bob.serial}.pem.999999.0badf00d.0.tmp`);
    fs.writeFileSync(tmp, "partial");
    fs.writeFileSync(path.join(ca.dir, ".lock"), JSON.stringify({ pid: 999999, host: os.hostname(), since: "2020-01-01T00:00:00.000Z" }));

    const before = ca.run(["doctor", "--json"]);
    expect(before.code).toBe(1);
    const b = json(before);
    expect(check(b, "index")).toMatchObject({ status: "fail" });
    expect(check(b, "index").message).toContain(bob.serial);
    expect(check(b, "temp-files").status).toBe("warn");
    expect(check(b, "lock").status).toBe("warn");

    const r = ca.run(["doctor", "--repair", "--json"]);
    expect(r.code, r.stdout).toBe(0);
    const d = json(r);
    expect(d.checks.every((c: { status: string }) => c.status === "ok")).toBe(true);
    expect(d.repaired.join("\n")).toContain(`recorded ${bob.serial}`);
    expect(fs.existsSync(tmp)).toBe(false);
    expect(fs.existsSync(path.join(ca.dir, ".lock"))).toBe(false);
    // the recorded line is the one issue would have written; revoke by name works (index.meta kept the name)
    expect(fs.readFileSync(idx, "utf8")).toBe(full);
    const rv = ca.run(["revoke", "bob", "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(json(rv).serial).toBe(bob.serial);
  });

  it("fails on a key readable by others, and never changes key modes itself", () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "alice"]).code).toBe(0);
    const key = path.join(ca.dir, "private", "alice.key");
    fs.chmodSync(key, 0o644);
    const r = ca.run(["doctor", "--repair", "--json"]);
    expect(r.code).toBe(1);
    expect(check(json(r), "key-modes").message).toContain(key);
    expect(fs.statSync(key).mode & 0o777).toBe(0o644);
  });

  it("--repair re-signs a missing CRL only with a passphrase source", () => {
    const ca = makeCa();
    const crl = path.join(ca.dir, "crl.pem");
    fs.rmSync(crl);
    const noPass = pki(["doctor", "--repair", "--dir", ca.dir, "--json"]);
    expect(noPass.code).toBe(1);
    expect(check(json(noPass), "crl").status).toBe("fail");
    expect(json(noPass).repaired.join("\n")).toContain("no passphrase source");
    expect(fs.existsSync(crl)).toBe(false);
    const withPass = ca.run(["doctor", "--repair", "--json"]);
    expect(withPass.code, withPass.stdout).toBe(0);
    const v = openssl(["crl", "-in", crl, "-CAfile", path.join(ca.dir, "ca.crt"), "-noout"]);
    expect(v.code, v.stderr).toBe(0);
  });
});
