/**
 * Issue 5.5 and 5.6: the audit log (one JSON line per change or refusal) and
 * secrets (the CA passphrase and key never leave their place).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki, tmpdir, type Run } from "../helpers.js";
import { allFiles, handmadeCsr, hasCommand, OIDS, opensslCsr, pemOf } from "../hardening-helpers.js";

const readAudit = (dir: string): Array<Record<string, any>> =>
  fs.readFileSync(path.join(dir, "audit.log"), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));

const sha256 = (p: string) => crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");

describe("audit.log", () => {
  it("one JSON line per change or refusal, with time, command, profile, serial, subject, CSR SHA-256, outcome, error code", () => {
    const ca = makeCa();
    const log = () => readAudit(ca.dir);
    expect(log()).toHaveLength(1); // init
    expect(log()[0]).toMatchObject({ command: "init", outcome: "ok" });
    expect((fs.statSync(path.join(ca.dir, "audit.log")).mode & 0o777).toString(8)).toBe("600");

    // issue: ok
    const iss = json(ca.run(["issue", "client", "alice", "--json"]));
    let last = log().at(-1)!;
    expect(last).toMatchObject({ command: "issue", profile: "client", serial: iss.serial, subject: "CN=alice", name: "alice", outcome: "ok" });
    expect(new Date(last.time).toISOString()).toBe(last.time);
    expect(Math.abs(Date.now() - Date.parse(last.time))).toBeLessThan(10 * 60_000);

    // issue: refused (the name holds a valid certificate)
    const again = ca.run(["issue", "client", "alice", "--json"]);
    expect(again.code).toBe(1);
    last = log().at(-1)!;
    expect(last).toMatchObject({ command: "issue", profile: "client", name: "alice", outcome: "refused", error: "NAME_EXISTS" });
    expect(last.serial).toBeUndefined();

    // sign-csr: ok; the CSR hash is that of the file as given (sha256sum agent.csr)
    const csr = opensslCsr(ca.root, "agent", "/O=Acme/CN=agent.example.lan");
    const ok = json(ca.run(["sign-csr", csr, "--profile", "ssl", "--json"]));
    last = log().at(-1)!;
    expect(last).toMatchObject({ command: "sign-csr", profile: "ssl", serial: ok.serial, subject: "O=Acme, CN=agent.example.lan", csrSha256: sha256(csr), outcome: "ok" });

    // sign-csr: refused, bad signature (one byte of the signed part changed)
    const der = handmadeCsr([[OIDS.cn, "tampered.example.lan"]]);
    der[der.indexOf(Buffer.from("tampered"))] = "T".charCodeAt(0);
    const bad = path.join(ca.root, "tampered.csr");
    fs.writeFileSync(bad, pemOf("CERTIFICATE REQUEST", der));
    expect(ca.run(["sign-csr", bad, "--profile", "ssl"]).code).toBe(1);
    last = log().at(-1)!;
    expect(last).toMatchObject({ command: "sign-csr", profile: "ssl", csrSha256: sha256(bad), outcome: "refused", error: "BAD_CSR_SIGNATURE" });
    expect(last.serial).toBeUndefined();

    // sign-csr: refused by the profile (a CSR that asks to be a CA); the verified subject is logged
    const caReq = path.join(ca.root, "ca-req.csr");
    expect(openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(ca.root, "ca-req.key"), "-out", caReq, "-subj", "/CN=sub-ca", "-addext", "basicConstraints=critical,CA:TRUE"]).code).toBe(0);
    expect(ca.run(["sign-csr", caReq, "--profile", "client"]).code).toBe(1);
    expect(log().at(-1)).toMatchObject({ command: "sign-csr", profile: "client", subject: "CN=sub-ca", csrSha256: sha256(caReq), outcome: "refused", error: "POLICY_DENIED" });

    // a batch refusal lists every CSR's hash
    const csr2 = opensslCsr(ca.root, "agent2", "/CN=agent2.example.lan");
    fs.mkdirSync(path.join(ca.root, "out"));
    expect(ca.run(["sign-csr", csr2, bad, "--profile", "ssl", "--out-dir", path.join(ca.root, "out")]).code).toBe(1);
    expect(log().at(-1)).toMatchObject({ command: "sign-csr", csrSha256: [sha256(csr2), sha256(bad)], outcome: "refused", error: "BAD_CSR_SIGNATURE" });

    // usage errors change nothing and are not state changes: no line; a dry run neither
    const n = log().length;
    expect(ca.run(["sign-csr", csr]).code).toBe(2);
    expect(ca.run(["sign-csr", csr, "--profile", "ssl", "--dry-run"]).code).toBe(0);
    expect(log()).toHaveLength(n);
    // every line is one JSON object on one line: 1 init + 2 ok + 1 refused issue + 1 ok + 3 refused sign-csr
    expect(log().map((l) => `${l.command}:${l.outcome}`)).toEqual([
      "init:ok", "issue:ok", "issue:refused", "sign-csr:ok", "sign-csr:refused", "sign-csr:refused", "sign-csr:refused",
    ]);
  });

  it("is appended to (O_APPEND), never rewritten: earlier lines survive byte for byte", () => {
    const ca = makeCa();
    const p = path.join(ca.dir, "audit.log");
    const before = fs.readFileSync(p);
    ca.run(["issue", "client", "bob"]);
    ca.run(["issue", "client", "bob"]);
    const after = fs.readFileSync(p);
    expect(after.subarray(0, before.length).equals(before)).toBe(true);
    expect(after.toString().trim().split("\n")).toHaveLength(3);
  });
});

describe("secrets", () => {
  const SECRET = "Zq7-distinctive-CA-passphrase-4b1e";

  it("a whole session never shows the passphrase or the CA's unencrypted key anywhere but in memory", () => {
    const root = tmpdir("pki-secrets-");
    const dir = path.join(root, "pki");
    const passFile = path.join(root, "ca.pass");
    fs.writeFileSync(passFile, SECRET + "\n", { mode: 0o600 });
    const wrongFile = path.join(root, "wrong.pass");
    fs.writeFileSync(wrongFile, "not-the-passphrase-at-all\n", { mode: 0o600 });
    const runs: Run[] = [];
    const run = (args: string[], env: Record<string, string> = {}, want?: number): Run => {
      const r = pki(["--dir", dir, ...args], { env, cwd: root });
      runs.push(r);
      if (want !== undefined) expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(want);
      return r;
    };

    run(["init", "--cn", "Secret CA", "--passphrase-file", passFile], {}, 0);
    run(["issue", "client", "alice", "--json"], { PKI_PASSPHRASE: SECRET }, 0);
    run(["issue", "server", "web1", "--san", "dns:web1.example.lan"], { PKI_PASSPHRASE_FILE: passFile }, 0);
    const csr = opensslCsr(root, "agent", "/CN=agent.example.lan");
    run(["sign-csr", csr, "--profile", "ssl", "--passphrase-file", passFile], {}, 0);
    run(["sign-csr", csr, "--profile", "ssl", "--json"], { PKI_PASSPHRASE: SECRET }, 0);
    // failures: a wrong passphrase by file and by environment, no passphrase at all, a bad request
    for (const [args, env] of [
      [["issue", "client", "bob", "--passphrase-file", wrongFile], {}],
      [["issue", "client", "bob", "--json"], { PKI_PASSPHRASE: "wrong-" + SECRET.slice(6) }],
      [["sign-csr", csr, "--profile", "ssl", "--json"], { PKI_PASSPHRASE_FILE: wrongFile }],
    ] as const) {
      const r = run([...args], { ...env });
      expect(r.code).toBe(1);
      expect(r.stderr + r.stdout).toMatch(/BAD_PASSPHRASE|passphrase does not decrypt/);
    }
    expect(run(["issue", "client", "bob"], {}).code).toBe(2); // PASSPHRASE_REQUIRED without a TTY
    // there is no flag that takes the passphrase as an argv value
    for (const flag of ["--passphrase", "--pass", "--password"]) {
      const r = run(["issue", "client", "carol", flag, SECRET], {});
      expect(r.code, `${flag} must not exist`).toBe(2);
      expect(r.stderr).toMatch(/^pki: error: unknown option/);
    }
    if (hasCommand("revoke")) {
      run(["revoke", "alice", "--reason", "keyCompromise", "--passphrase-file", passFile], {}, 0);
      run(["revoke", "web1", "--json"], { PKI_PASSPHRASE: "wrong" }, 1);
    } else {
      console.warn("secrets session: `pki revoke` is not in this build, the session runs without it");
    }

    // what the session printed: nothing secret
    const printed = runs.map((r) => r.stdout + r.stderr).join("\n");
    expect(printed).not.toContain(SECRET);
    expect(printed).not.toContain(SECRET.slice(0, 12));
    expect(printed).not.toMatch(/PRIVATE KEY/);

    // the CA key at rest: encrypted PKCS#8, that the passphrase opens, and that belongs to ca.crt
    const keyPath = path.join(dir, "private", "ca.key");
    expect(fs.readFileSync(keyPath, "utf8")).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n[^]*-----END ENCRYPTED PRIVATE KEY-----\n$/);
    const caPub = openssl(["pkey", "-in", keyPath, "-passin", `file:${passFile}`, "-pubout"]).stdout;
    expect(caPub).toMatch(/BEGIN PUBLIC KEY/);
    expect(openssl(["x509", "-in", path.join(dir, "ca.crt"), "-noout", "-pubkey"]).stdout).toBe(caPub);

    // every other file: no passphrase, and any private key in it is not the CA's
    const hex = Buffer.from(SECRET).toString("hex");
    const b64 = Buffer.from(SECRET).toString("base64").slice(0, 16);
    for (const f of allFiles(root)) {
      if (f === path.join("pki", "private", "ca.key") || f === "ca.pass") continue;
      const data = fs.readFileSync(path.join(root, f));
      const text = data.toString("latin1");
      expect(text.includes(SECRET), `${f} holds the passphrase`).toBe(false);
      expect(text.toLowerCase().includes(hex), `${f} holds the passphrase in hex`).toBe(false);
      expect(text.includes(b64), `${f} holds the passphrase in base64`).toBe(false);
      for (const m of text.matchAll(/-----BEGIN ((?:ENCRYPTED )?PRIVATE KEY)-----[^]*?-----END \1-----\n?/g)) {
        const pub = openssl(["pkey", "-pubout", "-passin", "pass:x"], { input: m[0] }).stdout;
        expect(pub !== "" && pub === caPub, `${f} holds the CA's private key`).toBe(false);
      }
    }
    const audit = fs.readFileSync(path.join(dir, "audit.log"), "utf8");
    expect(audit).not.toContain(SECRET);
    expect(audit).not.toMatch(/PRIVATE KEY|passphrase"\s*:/);
    expect(audit.trim().split("\n").map((l) => JSON.parse(l).error)).toContain("BAD_PASSPHRASE");
  });

  it("init --no-passphrase warns loudly on stderr (also with --json, whose stdout stays pure JSON)", () => {
    const root = tmpdir("pki-nopass-");
    const r = pki(["init", "--dir", path.join(root, "a"), "--cn", "Plain CA", "--no-passphrase"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^pki: warning: the CA key is stored UNENCRYPTED/m);
    const j = pki(["init", "--dir", path.join(root, "b"), "--cn", "Plain CA", "--no-passphrase", "--json"]);
    expect(j.code).toBe(0);
    expect(json(j).ok).toBe(true);
    expect(j.stderr).toMatch(/UNENCRYPTED/);
    expect(fs.readFileSync(path.join(root, "b", "private", "ca.key"), "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect((fs.statSync(path.join(root, "b", "private", "ca.key")).mode & 0o777).toString(8)).toBe("600");
    // and it is the one way to get there: an encrypted CA needs a passphrase source
    const n = pki(["init", "--dir", path.join(root, "c"), "--cn", "X"]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/--passphrase-file/);
  });
});
