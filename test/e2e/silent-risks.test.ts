/**
 * Risks that used to pass in silence (issue 16): issuing while crl.pem has
 * expired (nginx refuses the new certificate too), and the README's
 * registration hook, which must name the certificate after the agent's id
 * whatever the CSR asks for.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, json, makeCa, openssl, PASSPHRASE, pki, ROOT, snapshot, tmpdir } from "../helpers.js";
import { opensslCaConfig } from "../hardening-helpers.js";

/** An honestly expired CRL: signed by the CA key with `openssl ca -gencrl` and past dates (no clock tricks). */
function expireCrl(ca: ReturnType<typeof makeCa>): void {
  const cnf = opensslCaConfig(ca.dir, ca.root);
  const g = openssl(["ca", "-config", cnf, "-gencrl", "-passin", `file:${ca.pass}`, "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate", "20200108000000Z", "-out", path.join(ca.dir, "crl.pem")]);
  expect(g.code, g.stderr).toBe(0);
}

function csr(root: string, subj: string, name: string): string {
  const out = path.join(root, `${name}.csr`);
  const r = openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(root, `${name}.key`), "-subj", subj, "-out", out]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

describe("issuing while crl.pem has expired", () => {
  it("issue and sign-csr succeed but warn on stderr (also with --json and --quiet); none with a fresh CRL", () => {
    const ca = makeCa();
    const req = csr(ca.root, "/CN=agent1.example.lan", "agent1");
    const fresh = ca.run(["issue", "client", "before"]);
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).not.toContain("warning");

    expireCrl(ca);
    const WARN = /^pki: warning: .*crl\.pem expired on 2020-01-08T00:00:00\.000Z: nginx refuses every client certificate of this CA, this one too, until `pki crl` re-signs it$/m;
    const issued = ca.run(["issue", "client", "alice"]);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stderr).toMatch(WARN);
    const asJson = ca.run(["issue", "client", "bob", "--json", "--quiet"]);
    expect(asJson.code).toBe(0);
    expect(json(asJson).ok).toBe(true);
    expect(asJson.stderr).toMatch(WARN);
    const signed = ca.run(["sign-csr", req, "--profile", "server", "--out", path.join(ca.root, "agent1.crt")]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toMatch(WARN);
    expect(openssl(["x509", "-in", path.join(ca.root, "agent1.crt"), "-noout", "-subject"]).stdout).toContain("agent1.example.lan");

    // pki status names it as due even with a window of 0 days
    const st = ca.run(["status", "--fail-within", "0", "--json"]);
    expect(st.code).toBe(1);
    expect(json(st).items.filter((i: { due: boolean }) => i.due).map((i: { kind: string }) => i.kind)).toEqual(["crl"]);

    // once re-signed, the warning is gone
    expect(ca.run(["crl"]).code).toBe(0);
    const after = ca.run(["issue", "client", "carol"]);
    expect(after.stderr).not.toContain("warning");
  });

  it("a missing crl.pem warns too", () => {
    const ca = makeCa();
    fs.rmSync(path.join(ca.dir, "crl.pem"));
    const r = ca.run(["issue", "client", "dave"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^pki: warning: there is no .*crl\.pem/m);
  });
});

describe("the README's registration hook", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("### Walkthrough: a registration hook");
  const block = readme.slice(start, readme.indexOf("\n```\n", readme.indexOf("```sh", start)));

  it("signs the agent's id as CN, DNS name and issued name, whatever the CSR asks for; the policy is the second fence", () => {
    const jq = spawnSync("sh", ["-c", "command -v jq"]);
    expect(jq.status, "jq is needed for this test: apt-get install jq (npm run setup installs it)").toBe(0);
    const root = tmpdir("pki-hook-");
    // `pki` in the walkthrough: the one of this clone
    const bin = path.join(root, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "pki"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    // the walkthrough as written, with /tmp/walk moved into this test's directory
    const script = block.slice(block.indexOf("```sh") + 6).replaceAll("/tmp/walk", root);
    const walk = spawnSync("sh", ["-c", `set -e\ncd "${root}"\n${script}`], { encoding: "utf8", env });
    expect(walk.status, walk.stderr + walk.stdout).toBe(0);
    expect(walk.stdout).toContain("exit 0");
    expect(walk.stdout).toMatch(/agent7\.crt: OK/);

    // an agent asks for the admin's DN and another host name: it gets its id
    const greedy = csr(root, "/O=Acme/CN=jane", "greedy");
    const hook = path.join(root, "register-agent");
    const r = spawnSync("sh", [hook, "agent9"], { input: fs.readFileSync(greedy), env });
    expect(r.status, String(r.stderr)).toBe(0);
    fs.writeFileSync(path.join(root, "agent9.crt"), r.stdout);
    const text = openssl(["x509", "-in", path.join(root, "agent9.crt"), "-noout", "-subject", "-ext", "subjectAltName"]).stdout;
    expect(text).toMatch(/CN ?= ?agent9\.agents\.example\.lan/);
    expect(text).not.toContain("jane");
    expect(text).toContain("DNS:agent9.agents.example.lan");
    expect(fs.existsSync(path.join(root, "pki", "issued", "agent9.crt"))).toBe(true);

    // an id that is not a plain label is refused before pki runs
    const bad = spawnSync("sh", [hook, "../x"], { input: fs.readFileSync(greedy), env });
    expect(bad.status).toBe(2);
    expect(String(bad.stdout)).toBe("");
  });
});

describe("a passphrase file others can read", () => {
  it("is refused like a 0644 key (KEY_MODE, exit 1, the path not repeated, nothing changed); 0600 and 0400 work", () => {
    const ca = makeCa();
    const snap = snapshot(ca.dir);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      const loose = path.join(ca.root, `loose-${mode.toString(8)}`);
      fs.writeFileSync(loose, PASSPHRASE + "\n", { mode: 0o600 });
      fs.chmodSync(loose, mode);
      for (const r of [
        pki(["--dir", ca.dir, "--passphrase-file", loose, "issue", "client", "x", "--json"]),
        pki(["--dir", ca.dir, "issue", "client", "x", "--json"], { env: { PKI_PASSPHRASE_FILE: loose } }),
      ]) {
        expect(r.code).toBe(1);
        const d = json(r);
        expect(d.error.code).toBe("KEY_MODE");
        expect(d.error.message).toContain(`mode 0${mode.toString(8)}`);
        expect(d.error.message).toContain("chmod 600");
        expect(d.error.message).not.toContain(loose);
      }
    }
    expect(snapshot(ca.dir)).toEqual(snap);
    // the other secret files too: a PKCS#12 password
    expect(ca.run(["issue", "client", "alice"]).code).toBe(0);
    const p12pass = path.join(ca.root, "p12pass");
    fs.writeFileSync(p12pass, "export secret\n", { mode: 0o644 });
    fs.chmodSync(p12pass, 0o644);
    const p12 = ca.run(["export", "p12", "alice", "--p12-passphrase-file", p12pass, "--out", path.join(ca.root, "a.p12"), "--json"]);
    expect(json(p12).error.code).toBe("KEY_MODE");
    expect(fs.existsSync(path.join(ca.root, "a.p12"))).toBe(false);
    // owner-only modes are fine
    fs.chmodSync(ca.pass, 0o400);
    expect(ca.run(["issue", "client", "bob"]).code).toBe(0);
    fs.chmodSync(ca.pass, 0o600);
    expect(ca.run(["issue", "client", "carol"]).code).toBe(0);
  });
});
