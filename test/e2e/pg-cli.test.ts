/**
 * pki on a PostgreSQL store (issue #14), from the outside: every command run
 * with `--store postgres://...` against a real, throwaway cluster
 * (pg-lib.ts), judged by openssl; the database failing (unreachable, wrong
 * password, a schema from the future, the connection killed mid-command);
 * `pki store migrate` / `pki store export` round trips checked byte for byte
 * and by `openssl ca`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, PASSPHRASE, pki, tmpdir, type Run } from "../helpers.js";
import { allFiles, opensslCaConfig, opensslCaStatus, opensslCsr, spawnPki } from "../hardening-helpers.js";
import { PgCluster, SECRET_PASSWORD, SECRET_ROLE } from "./pg-lib.js";
import { startServe } from "./serve-lib.js";

let pg: PgCluster;
let root: string;
let pass: string;
beforeAll(async () => {
  pg = await PgCluster.start();
  root = tmpdir("pki-pg-cli-");
  pass = path.join(root, "pass");
  fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
});
afterAll(() => pg?.stop());

const dbOf = (url: string) => new URL(url).pathname.slice(1);

/** A work directory (the cwd of the commands) and a runner on the store at url. */
function on(url: string) {
  const cwd = fs.mkdtempSync(path.join(root, "cwd-"));
  const run = (a: string[], o: Parameters<typeof pki>[1] = {}) => pki(["--store", url, "--passphrase-file", pass, ...a], { cwd, ...o });
  return { cwd, run };
}

async function newPgCa(args: string[] = []): Promise<{ url: string; cwd: string; run: ReturnType<typeof on>["run"]; caFile: string }> {
  const url = await pg.createDb();
  const { cwd, run } = on(url);
  const r = run(["init", "--cn", "PG Root CA", "--org", "Acme", ...args]);
  expect(r.code, r.stderr).toBe(0);
  const caFile = path.join(cwd, "ca-file.crt");
  fs.writeFileSync(caFile, await doc(url, "ca.crt"));
  return { url, cwd, run, caFile };
}

async function doc(url: string, name: string): Promise<Buffer> {
  const rows = await pg.sql<{ data: Buffer }>("SELECT data FROM pki_documents WHERE name = $1", dbOf(url), [name]);
  if (!rows[0]) throw new Error(`no document ${name}`);
  return rows[0].data;
}

/** What the database holds, for "nothing changed" (the audit log aside). */
async function dbState(url: string) {
  const db = dbOf(url);
  const docs = await pg.sql("SELECT name, md5(data) AS h, mode FROM pki_documents ORDER BY name", db);
  const certs = await pg.sql("SELECT c.serial, line, profile, name, md5(pem) AS h FROM pki_certificates c JOIN pki_certificate_pems p USING (serial) ORDER BY seq", db);
  const state = await pg.sql("SELECT generation FROM pki_state", db);
  return { docs, certs, state };
}

const count = async (url: string, where = "true") => Number((await pg.sql<{ n: string }>(`SELECT count(*) AS n FROM pki_certificates WHERE ${where}`, dbOf(url)))[0]!.n);

function expectOneLineError(r: Run | { code: number; stderr: string; stdout: string }, code: string, exit = 1) {
  expect(r.code, r.stderr).toBe(exit);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^pki: error: \S/);
  expect(r.stderr).not.toMatch(/\n\s+at |TypeError|RangeError/);
  expect(r.stderr + r.stdout).not.toContain(SECRET_PASSWORD);
  // the code is in the JSON form of the same error; here the line names what failed
  if (code === "STORE_UNAVAILABLE") expect(lines[0]).toMatch(/PostgreSQL|database|postgres:\/\//i);
  if (code === "STORE_VERSION") expect(lines[0]).toMatch(/schema version/);
}

describe("every command on a PostgreSQL store", () => {
  it("init, sign-csr, issue, list, show, verify, export p12, renew, revoke, crl, bundle, status, doctor, serve: same commands, no CA directory anywhere", async () => {
    const { url, cwd, run, caFile } = await newPgCa();
    // the CA key is in the database, encrypted; nothing was written to the working directory
    expect((await doc(url, "private/ca.key")).toString()).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(fs.readdirSync(cwd).filter((f) => f !== "ca-file.crt")).toEqual([]);
    const rows = await pg.sql<{ version: number }>("SELECT max(version) AS version FROM pki_schema", dbOf(url));
    expect(rows[0]!.version).toBeGreaterThan(0);

    // a second init on the same database: refused
    const again = run(["init", "--cn", "Other", "--json"]);
    expect(again.code).toBe(1);
    expect(json(again).error.code).toBe("CA_EXISTS");

    // sign-csr with a name
    const csr = opensslCsr(cwd, "agent1", "/CN=agent1.acme.lan");
    const s = run(["sign-csr", csr, "--profile", "client", "--name", "agent1", "--out", "agent1.crt", "--json"]);
    expect(s.code, s.stderr).toBe(0);
    const agent1 = json(s).serial as string;
    expect(openssl(["verify", "-CAfile", caFile, "-purpose", "sslclient", path.join(cwd, "agent1.crt")]).code).toBe(0);

    // issue: the pair in the store (export p12, renew from any host) and in the working directory
    const i = run(["issue", "client", "alice", "--json"]);
    expect(i.code, i.stderr).toBe(0);
    const alice = json(i);
    expect(fs.existsSync(path.join(cwd, "alice.crt"))).toBe(true);
    expect(fs.existsSync(path.join(cwd, "alice.key"))).toBe(true);
    expect((await doc(url, "issued/alice.crt")).toString()).toBe(fs.readFileSync(path.join(cwd, "alice.crt"), "utf8"));
    expect((await doc(url, "private/alice.key")).toString()).toBe(fs.readFileSync(path.join(cwd, "alice.key"), "utf8"));
    expect(openssl(["verify", "-CAfile", caFile, path.join(cwd, "alice.crt")]).code).toBe(0);
    // --out-dir: there instead of the working directory
    const outDir = path.join(cwd, "out");
    fs.mkdirSync(outDir);
    const i2 = run(["issue", "server", "web1", "--san", "dns:web1.acme.lan", "--out-dir", outDir, "--json"]);
    expect(i2.code, i2.stderr).toBe(0);
    expect(fs.existsSync(path.join(outDir, "web1.key"))).toBe(true);
    // a taken name is refused, nothing changed
    const before = await dbState(url);
    const taken = run(["issue", "client", "alice", "--json"]);
    expect(taken.code).toBe(1);
    expect(json(taken).error.code).toBe("NAME_EXISTS");
    expect(await dbState(url)).toEqual(before);

    // list, show, verify
    const l = json(run(["list", "--json"]));
    expect(l.certificates.map((c: { serial: string }) => c.serial).sort()).toEqual([agent1, alice.serial, json(i2).serial].sort());
    const sh = run(["show", "alice", "--json"]);
    expect(sh.code, sh.stderr).toBe(0);
    expect(JSON.stringify(json(sh))).toContain(alice.serial);
    const v = run(["verify", path.join(cwd, "alice.crt"), "--purpose", "client", "--json"]);
    expect(v.code, v.stderr).toBe(0);

    // export p12 from the key kept in the store (from another working directory: any host)
    const other = on(url);
    const p12pass = path.join(other.cwd, "p12.pass");
    fs.writeFileSync(p12pass, "p12 secret\n", { mode: 0o600 });
    const p = other.run(["export", "p12", "alice", "--out", "alice.p12", "--p12-passphrase-file", p12pass, "--json"]);
    expect(p.code, p.stderr).toBe(0);
    const p12 = openssl(["pkcs12", "-in", path.join(other.cwd, "alice.p12"), "-passin", `file:${p12pass}`, "-nodes", "-nokeys", "-clcerts"]);
    expect(p12.code, p12.stderr).toBe(0);
    expect(p12.stdout).toContain("-----BEGIN CERTIFICATE-----");

    // renew (another host): the old one superseded
    const rn = other.run(["renew", "alice", "--json"]);
    expect(rn.code, rn.stderr).toBe(0);
    const renewed = json(rn);
    expect(renewed.previousSerial).toBe(alice.serial);
    // names no file of this host (it named issued/alice.crt in the working directory, never written)
    expect([renewed.path, renewed.cert, renewed.chain, renewed.key]).toEqual([null, null, null, null]);
    expect(renewed.certificate).toContain("-----BEGIN CERTIFICATE-----");
    expect(fs.existsSync(path.join(other.cwd, "issued"))).toBe(false);

    // revoke (a name), then the CRL lists both revocations
    const rv = run(["revoke", "agent1", "--reason", "keyCompromise", "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    const c = run(["crl", "--out", "crl.pem", "--json"]);
    expect(c.code, c.stderr).toBe(0);
    const crlText = openssl(["crl", "-in", path.join(cwd, "crl.pem"), "-CAfile", caFile, "-noout", "-text"]);
    expect(crlText.stdout + crlText.stderr).toMatch(/verify OK/);
    const listed = [...crlText.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]).sort();
    expect(listed).toEqual([agent1, alice.serial].sort());
    // the CRL is kept in the store as well (serve publishes it)
    expect((await doc(url, "crl.pem")).toString()).toMatch(/BEGIN X509 CRL/);
    // openssl verify -crl_check: the revoked one fails, the renewed one passes
    const newCrt = path.join(cwd, "alice-renewed.crt");
    fs.writeFileSync(newCrt, await doc(url, "issued/alice.crt"));
    expect(openssl(["verify", "-crl_check", "-CAfile", caFile, "-CRLfile", path.join(cwd, "crl.pem"), newCrt]).code).toBe(0);
    const bad = openssl(["verify", "-crl_check", "-CAfile", caFile, "-CRLfile", path.join(cwd, "crl.pem"), path.join(cwd, "agent1.crt")]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/revoked/);

    // bundle
    const b = run(["bundle", "--out", "bundle.crt", "--json"]);
    expect(b.code, b.stderr).toBe(0);
    expect(fs.readFileSync(path.join(cwd, "bundle.crt"), "utf8")).toContain(fs.readFileSync(caFile, "utf8").trim());

    // status, doctor
    const st = run(["status", "--json"]);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.stringify(json(st))).toContain(renewed.serial);
    // doctor checks files, modes and the lock of a directory: on a database it says so, on one line, and what to use instead
    const d = run(["doctor"]);
    expectOneLineError(d, "USAGE", 2);
    expect(d.stderr).toMatch(/pki status.*store export/);

    // serve: OCSP answers from the database
    const serve = await startServe(path.join(cwd, "serve"), ["--store", url, "--passphrase-file", pass]);
    try {
      const ocsp = (cert: string) =>
        openssl(["ocsp", "-issuer", caFile, "-cert", cert, "-url", serve.url + "/ocsp", "-CAfile", caFile, "-timeout", "5"]);
      expect(ocsp(newCrt).stdout).toMatch(/: good/);
      expect(ocsp(path.join(cwd, "agent1.crt")).stdout).toMatch(/: revoked/);
      // the database restarted: /healthz says so while it is down, and is 200 again once it is back
      // (it stayed 503 until the next change of the CA)
      const health = async () => (await fetch(serve.url + "/healthz")).status;
      const until = async (want: number) => {
        const t0 = Date.now();
        while ((await health()) !== want) {
          if (Date.now() - t0 > 15_000) throw new Error(`/healthz never answered ${want}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      expect(await health()).toBe(200);
      pg.stopServer();
      try {
        await until(503);
      } finally {
        pg.startServer();
      }
      await until(200);
      expect(ocsp(newCrt).stdout).toMatch(/: good/);
    } finally {
      expect(await serve.stop()).toBe(0);
    }

    // the audit log is in the database, and holds no secret
    const audit = await pg.sql<{ c: string }>("SELECT record->>'command' AS c FROM pki_audit ORDER BY id", dbOf(url));
    expect(audit.map((a) => a.c)).toEqual(expect.arrayContaining(["init", "sign-csr", "issue", "revoke", "crl", "renew"]));
    const auditText = (await pg.sql<{ line: string }>("SELECT line FROM pki_audit", dbOf(url))).map((r) => r.line).join("\n");
    expect(auditText).not.toContain(PASSPHRASE);
    expect(fs.existsSync(path.join(cwd, "pki"))).toBe(false);
  });
});

describe("what a database store says differently", () => {
  it("init and import --no-passphrase are refused in one line before anything is made; revoke and crl say how nginx gets the CRL file", async () => {
    const url = await pg.createDb();
    const { cwd, run } = on(url);
    const r = run(["init", "--cn", "Clear Key CA", "--no-passphrase"]);
    expectOneLineError(r, "USAGE", 2);
    expect(r.stderr).toMatch(/must be encrypted in a PostgreSQL store/);
    expect(r.stderr).not.toMatch(/UNENCRYPTED/);
    // the schema may be there (applied when the store is opened), no CA in it
    expect(await pg.sql("SELECT name FROM pki_documents", dbOf(url))).toEqual([]);
    const ca = makeCa();
    const imp = run(["import", "openssl-ca", ca.dir, "--no-passphrase"]);
    expectOneLineError(imp, "USAGE", 2);
    expect(imp.stderr).not.toMatch(/UNENCRYPTED/);

    const db = await newPgCa();
    expect(db.run(["issue", "client", "leaver"]).code).toBe(0);
    const rv = db.run(["revoke", "leaver"]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(rv.stderr + rv.stdout).toMatch(/pki crl --out <file>/);
    expect(rv.stderr + rv.stdout).not.toMatch(/nginx -s reload/);
    const crl = db.run(["crl"]);
    expect(crl.code, crl.stderr).toBe(0);
    expect(crl.stderr + crl.stdout).toMatch(/pki crl --out <file>/);
    expect(fs.existsSync(path.join(cwd, "pki"))).toBe(false);
  });
});

describe("one connection per command", () => {
  it("sign-csr, revoke and crl each open one connection (a server process each): no read beside the locked transaction", async () => {
    const { url, cwd, run } = await newPgCa();
    const db = dbOf(url);
    // ended sessions, as the server counts them once they are gone
    const sessions = async () => Number((await pg.sql<{ n: string }>("SELECT sessions AS n FROM pg_stat_database WHERE datname = $1", "postgres", [db]))[0]!.n);
    const settled = async (before: number) => {
      let n = await sessions();
      for (let i = 0; i < 50 && n === before; i++) {
        await new Promise((r) => setTimeout(r, 100));
        n = await sessions();
      }
      await new Promise((r) => setTimeout(r, 300));
      return (await sessions()) - before;
    };
    for (const args of [
      ["sign-csr", opensslCsr(cwd, "agent-1", "/CN=agent-1"), "--profile", "client", "--name", "agent-1"],
      ["revoke", "agent-1"],
      ["crl", "--out", path.join(cwd, "crl.pem")],
    ]) {
      const before = await sessions();
      const r = run(args);
      expect(r.code, r.stderr).toBe(0);
      expect(await settled(before), `pki ${args[0]}`).toBe(1);
    }
  });
});

describe("sign-csr --name on a PostgreSQL store", () => {
  it("the certificate is kept in the database, and --json names no file that is not there (it named issued/<name>.crt in the working directory)", async () => {
    const { url, cwd, run } = await newPgCa();
    const csr = opensslCsr(cwd, "agent2", "/CN=agent2.acme.lan");
    const before = new Set(fs.readdirSync(cwd));
    const s = run(["sign-csr", csr, "--profile", "client", "--name", "agent2", "--json"]);
    expect(s.code, s.stderr).toBe(0);
    const j = json(s);
    expect(j).toMatchObject({ name: "agent2", path: null, cert: null, chain: null, key: null });
    expect(j.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect((await doc(url, "issued/agent2.crt")).toString()).toBe(j.certificate);
    expect(fs.readdirSync(cwd).filter((f) => !before.has(f))).toEqual([]);
    // without --json: the PEM on stdout, and where it is recorded
    const csr3 = opensslCsr(cwd, "agent3", "/CN=agent3.acme.lan");
    const t = run(["sign-csr", csr3, "--profile", "client", "--name", "agent3"]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(t.stderr).toMatch(/^Recorded as "agent3" in postgres:\/\/.*: `pki revoke agent3` locks it out$/m);
    // with --out: that file, and it exists
    const csr4 = opensslCsr(cwd, "agent4", "/CN=agent4.acme.lan");
    const u = json(run(["sign-csr", csr4, "--profile", "client", "--name", "agent4", "--out", "agent4.crt", "--json"]));
    expect(u).toMatchObject({ path: path.join(cwd, "agent4.crt"), cert: path.join(cwd, "agent4.crt"), chain: null });
    expect(fs.existsSync(u.path)).toBe(true);
  });
});

describe("a certificate is recorded before it is released, on a PostgreSQL store", () => {
  it("pki issue --out-dir: when the COMMIT fails, no file of the pair is released and nothing is recorded", async () => {
    const { url, cwd, run } = await newPgCa();
    const before = await dbState(url);
    // a check the server makes only at COMMIT (a deferred constraint trigger): everything before it succeeds
    await pg.sql("CREATE FUNCTION pki_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$", dbOf(url));
    await pg.sql("CREATE CONSTRAINT TRIGGER pki_test_refuse AFTER INSERT ON pki_certificates DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pki_test_refuse()", dbOf(url));
    const out = fs.mkdtempSync(path.join(cwd, "out-"));
    const r = run(["issue", "client", "late", "--out-dir", out]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    // the files were staged (and renamed into place before this fix) while the transaction was still open
    expect(fs.readdirSync(out)).toEqual([]);
    expect(await dbState(url)).toEqual(before);
    // the same command once the check is gone: the pair is released
    await pg.sql("DROP TRIGGER pki_test_refuse ON pki_certificates", dbOf(url));
    const ok = run(["issue", "client", "late", "--out-dir", out]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(["late.chain.crt", "late.crt", "late.key"]);
  });
});

describe("the database failing: one line within 15 s, nothing half-written, no password printed", () => {
  it("a password in a --store URL on the command line is refused before anything is done", async () => {
    const url = (await pg.createDb()).replace("//pki@", `//${SECRET_ROLE}:${SECRET_PASSWORD}@`);
    const r = pki(["--store", url, "list"], { cwd: root });
    expectOneLineError(r, "USAGE", 2);
    expect(r.stderr).toMatch(/PGPASSWORD/);
    // libpq's other spelling: a password= parameter
    const param = `${await pg.createDb()}?password=${SECRET_PASSWORD}`;
    const q = pki(["--store", param, "list"], { cwd: root });
    expectOneLineError(q, "USAGE", 2);
    expect(q.stderr + q.stdout).not.toContain(SECRET_PASSWORD);
  });

  it("unreachable, missing database, wrong password, no password: STORE_UNAVAILABLE", async () => {
    for (const [url, env] of [
      ["postgres://pki@127.0.0.1:1/nothing", {}],
      [pg.url("no_such_database"), {}],
      [pg.url("postgres", SECRET_ROLE), { PGPASSWORD: "not-" + SECRET_PASSWORD }],
      [pg.url("postgres", SECRET_ROLE), { PGPASSFILE: "/nonexistent" }],
    ] as const) {
      const t0 = Date.now();
      const r = pki(["--store", url, "list", "--json"], { cwd: root, env: env as Record<string, string> });
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(r.code, r.stderr).toBe(1);
      const e = json(r).error;
      expect(e.code, e.message).toBe("STORE_UNAVAILABLE");
      expect(e.message).not.toMatch(/\n/);
      expect(r.stdout + r.stderr).not.toContain(SECRET_PASSWORD);
      const t = pki(["--store", url, "list"], { cwd: root, env: env as Record<string, string> });
      expectOneLineError(t, "STORE_UNAVAILABLE");
      // a refused connection says what to check
      if (url.includes(":1/")) expect(t.stderr).toMatch(/is the server running/);
    }
    // the password in PKI_STORE (the environment, not argv) works, and is never shown
    const url = await pg.createDb();
    const withPw = url.replace("//pki@", `//${SECRET_ROLE}:${SECRET_PASSWORD}@`);
    const ok = pki(["init", "--cn", "Secret CA", "--passphrase-file", pass, "--json"], { cwd: root, env: { PKI_STORE: withPw } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout + ok.stderr).not.toContain(SECRET_PASSWORD);
    const wrong = pki(["list", "--json"], { cwd: root, env: { PKI_STORE: url.replace("//pki@", `//${SECRET_ROLE}:wrong-${SECRET_PASSWORD}@`) } });
    expect(json(wrong).error.code).toBe("STORE_UNAVAILABLE");
    expect(wrong.stdout + wrong.stderr).not.toContain(SECRET_PASSWORD);
    // --dir on the command line beats PKI_STORE in the environment
    const ca = makeCa();
    expect(ca.run(["issue", "client", "dir-only"]).code).toBe(0);
    const viaDir = pki(["--dir", ca.dir, "list", "--json"], { cwd: root, env: { PKI_STORE: withPw } });
    expect(viaDir.code, viaDir.stderr).toBe(0);
    expect(json(viaDir).certificates.map((c: { name: string }) => c.name)).toEqual(["dir-only"]);
    expect(json(pki(["list", "--json"], { cwd: root, env: { PKI_STORE: withPw } })).certificates).toEqual([]);
  });

  it("a schema from the future is refused naming both versions, and nothing is changed", async () => {
    const { url, run } = await newPgCa();
    await pg.sql("INSERT INTO pki_schema (version, pki) VALUES (42, 'a newer pki')", dbOf(url));
    const before = await dbState(url);
    const r = run(["issue", "client", "late"]);
    expectOneLineError(r, "STORE_VERSION");
    expect(r.stderr).toMatch(/schema version 42.*knows \(\d+\)/);
    expect(await dbState(url)).toEqual(before);
  });

  it("the connection killed in the middle of a bulk issuance, then the server stopped mid-command: one line, nothing recorded, the next command works", async () => {
    const { url, cwd, run } = await newPgCa();
    const names = path.join(cwd, "names.txt");
    fs.writeFileSync(names, Array.from({ length: 4000 }, (_, i) => `bulk-${i}`).join("\n") + "\n");
    const before = await dbState(url);
    for (const how of ["terminate", "stop"] as const) {
      const out = fs.mkdtempSync(path.join(cwd, "out-"));
      const p = spawnPki(["--store", url, "--passphrase-file", pass, "issue", "client", "--names-from", names, "--out-dir", out], { cwd });
      // wait until the command has a session in the database, then cut it
      let pid: number | undefined;
      const t0 = Date.now();
      while (pid === undefined && Date.now() - t0 < 30_000) {
        const rows = await pg.sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pki'", "postgres", [dbOf(url)]);
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      expect(pid, "the command connected").toBeDefined();
      // held still while its session is cut: however fast issuance gets, the
      // cut comes before the commit (the pairs alone take longer than this poll)
      process.kill(p.child.pid!, "SIGSTOP");
      const cut = Date.now();
      try {
        if (how === "terminate") await pg.sql("SELECT pg_terminate_backend($1)", "postgres", [pid]);
        else pg.stopServer();
      } finally {
        process.kill(p.child.pid!, "SIGCONT");
      }
      const r = await p.done;
      expect(Date.now() - cut).toBeLessThan(15_000);
      if (how === "stop") pg.startServer();
      // 4,000 pairs take seconds; the session is cut long before they are committed
      expectOneLineError(r, "STORE_UNAVAILABLE");
      expect(await dbState(url)).toEqual(before);
      expect(fs.readdirSync(out)).toEqual([]);
    }
    const after = run(["issue", "client", "after-the-cut", "--json"]);
    expect(after.code, after.stderr).toBe(0);
  });
});

describe("the URL forms an admin uses: the socket, sslmode, ~/.pgpass", () => {
  it("the Unix socket, with or without a host in the URL; a URL without a user says to give one", async () => {
    const url = await pg.createDb();
    const db = dbOf(url);
    const init = pki(["--store", url, "--passphrase-file", pass, "init", "--cn", "Socket CA", "--json"], { cwd: root });
    expect(init.code, init.stderr).toBe(0);
    const sock = encodeURIComponent(pg.dir);
    for (const u of [`postgres://pki@${sock}:${pg.port}/${db}`, `postgres://pki@/${db}?host=${sock}&port=${pg.port}`, `postgres:///${db}?host=${sock}&port=${pg.port}&user=pki`]) {
      const r = pki(["--store", u, "list", "--json"], { cwd: root });
      expect(r.code, `${u}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toBe("");
    }
    const noUser = pki(["--store", `postgres:///${db}?host=${sock}&port=${pg.port}`, "list"], { cwd: root, env: { PGUSER: "", USER: "", LOGNAME: "" } });
    expectOneLineError(noUser, "STORE_UNAVAILABLE");
    expect(noUser.stderr).toMatch(/give the database user in the URL \(postgres:\/\/USER@host\/database\) or in PGUSER$/m);
  });

  it("a socket URL's password (with @ or / in it) is never shown; a missing sslrootcert is named as such", async () => {
    const url = await pg.createDb();
    const db = dbOf(url);
    // the driver reads the first; the second is no URL to it either (a usage error): neither shows the password
    for (const [pw, code, exit] of [["hun@ter2", "STORE_UNAVAILABLE", 1], ["hun/ter2", "USAGE", 2]] as const) {
      const r = pki(["list"], { cwd: root, env: { PKI_STORE: `postgres://pki:${pw}@/${db}?host=${encodeURIComponent(path.join(root, "no-such-socket-dir"))}&port=${pg.port}` } });
      expectOneLineError(r, code, exit);
      expect(r.stderr).toContain(`postgres://pki@/${db}?host=`);
      expect(r.stderr + r.stdout).not.toMatch(/hun|ter2/);
    }
    for (const u of [`${url}?sslmode=verify-full&sslrootcert=${encodeURIComponent("/nonexistent/db-ca.crt")}`, `postgres://pki@/${db}?host=${encodeURIComponent(pg.dir)}&port=${pg.port}&sslmode=verify-full&sslrootcert=%2Fnonexistent%2Fdb-ca.crt`]) {
      const r = pki(["--store", u, "list"], { cwd: root });
      expectOneLineError(r, "STORE_UNAVAILABLE");
      expect(r.stderr).toMatch(/cannot read \/nonexistent\/db-ca\.crt, which the store URL names \(sslrootcert, sslcert or sslkey\): it does not exist/);
    }
  });

  it("sslmode: require against a server without TLS is one line that says what to do, without the driver's warning; prefer, allow and unknown modes are usage errors", async () => {
    const url = await pg.createDb();
    for (const mode of ["require", "verify-ca", "verify-full"]) {
      const r = pki(["--store", `${url}?sslmode=${mode}`, "list"], { cwd: root });
      expectOneLineError(r, "STORE_UNAVAILABLE");
      expect(r.stderr).toMatch(/does not offer TLS .*turn ssl on in its postgresql\.conf, or connect with sslmode=disable/);
      expect(r.stderr).not.toMatch(/SECURITY WARNING|uselibpqcompat/);
    }
    for (const mode of ["prefer", "allow", "bogus"]) {
      const r = pki(["--store", `${url}?sslmode=${mode}`, "list"], { cwd: root });
      expectOneLineError(r, "USAGE", 2);
      expect(r.stderr).toMatch(/sslmode=verify-full \(or require\) for a verified TLS connection, or sslmode=disable for none/);
    }
    const plain = pki(["--store", `${url}?sslmode=disable`, "init", "--cn", "Plain CA", "--passphrase-file", pass, "--json"], { cwd: root });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toBe("");
  });

  it("a ~/.pgpass that others can read is named as the reason the login failed, in the one error line", async () => {
    const url = (await pg.createDb()).replace("//pki@", `//${SECRET_ROLE}@`);
    const home = tmpdir("pki-pgpass-home-");
    const file = path.join(home, ".pgpass");
    fs.writeFileSync(file, `127.0.0.1:${pg.port}:*:${SECRET_ROLE}:${SECRET_PASSWORD}\n`, { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    for (const env of [{ HOME: home }, { PGPASSFILE: file }]) {
      const r = pki(["--store", url, "list"], { cwd: root, env });
      expectOneLineError(r, "STORE_UNAVAILABLE");
      expect(r.stderr).toContain(`password file "${file}" has group or world access`);
      expect(r.stderr).toMatch(/so it was ignored \(as libpq does\): chmod 600 it$/m);
    }
    fs.chmodSync(file, 0o600);
    const ok = pki(["--store", url, "--passphrase-file", pass, "init", "--cn", "Pgpass Home CA", "--json"], { cwd: root, env: { HOME: home } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toBe("");
  });
});

describe("pki store migrate and pki store export", () => {
  it("a directory into PostgreSQL and back out: byte for byte on the certificate set, and `openssl ca` reads the export", async () => {
    const ca = makeCa();
    expect(ca.run(["issue", "client", "alice"]).code).toBe(0);
    expect(ca.run(["issue", "server", "web1", "--san", "dns:web1.acme.lan"]).code).toBe(0);
    const csr = opensslCsr(ca.root, "agent", "/CN=agent.acme.lan");
    const sc = ca.run(["sign-csr", csr, "--profile", "client", "--name", "agent", "--out", path.join(ca.root, "agent.crt"), "--json"]);
    expect(sc.code, sc.stderr).toBe(0);
    const agent = json(sc).serial as string;
    const rv = ca.run(["revoke", "web1", "--reason", "keyCompromise", "--json"]);
    expect(rv.code, rv.stderr).toBe(0);
    const web1 = json(rv).revoked?.[0]?.serial ?? json(rv).serial;
    expect(ca.run(["crl"]).code).toBe(0);
    const srcBefore = allFiles(ca.dir).map((f) => [f, fs.readFileSync(path.join(ca.dir, f)).toString("base64")]);

    const url = await pg.createDb();
    const m = pki(["store", "migrate", "--from", ca.dir, "--to", url, "--json"], { cwd: ca.root });
    expect(m.code, m.stderr).toBe(0);
    expect(json(m)).toMatchObject({ ok: true, certificates: 3, revoked: 1 });
    // the source is left as it was (audit.log aside)
    expect(allFiles(ca.dir).filter((f) => f !== "audit.log").map((f) => [f, fs.readFileSync(path.join(ca.dir, f)).toString("base64")])).toEqual(srcBefore.filter(([f]) => f !== "audit.log"));
    // a second migrate into the same database: refused, nothing changed
    const before = await dbState(url);
    const again = pki(["store", "migrate", "--from", ca.dir, "--to", url, "--json"], { cwd: ca.root });
    expect(again.code).toBe(1);
    expect(json(again).error.code).toBe("CA_EXISTS");
    expect(await dbState(url)).toEqual(before);

    // the database serves the same index, and works
    const l = pki(["--store", url, "list", "--json"], { cwd: ca.root });
    expect(json(l).certificates).toHaveLength(3);

    const out = path.join(ca.root, "exported");
    const e = pki(["--store", url, "store", "export", "--to", out, "--json"], { cwd: ca.root });
    expect(e.code, e.stderr).toBe(0);
    expect(json(e)).toMatchObject({ ok: true, certificates: 3, revoked: 1 });
    for (const f of allFiles(ca.dir)) {
      if (f === "audit.log" || f === ".lock") continue;
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
      expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(ca.dir, f))), f).toBe(true);
    }
    expect(fs.statSync(path.join(out, "private", "ca.key")).mode & 0o777).toBe(0o600);
    // the audit log came along, and records the copies
    const audit = fs.readFileSync(path.join(out, "audit.log"), "utf8").trim().split("\n").map((x) => JSON.parse(x));
    expect(audit.map((a) => a.command)).toEqual(expect.arrayContaining(["init", "issue", "revoke", "store migrate"]));

    // openssl ca reads the exported directory
    const cnf = opensslCaConfig(out, ca.root);
    expect(opensslCaStatus(cnf, agent)).toBe("Valid");
    expect(opensslCaStatus(cnf, web1)).toBe("Revoked");
    const gen = openssl(["ca", "-config", cnf, "-gencrl", "-passin", `file:${ca.pass}`, "-out", path.join(ca.root, "openssl-crl.pem"), "-crldays", "1"]);
    expect(gen.code, gen.stderr).toBe(0);
    const oc = openssl(["crl", "-in", path.join(ca.root, "openssl-crl.pem"), "-noout", "-text"]);
    expect([...oc.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((x) => x[1])).toEqual([web1]);
    const vf = openssl(["verify", "-crl_check", "-CAfile", path.join(out, "ca.crt"), "-CRLfile", path.join(out, "crl.pem"), path.join(out, "issued", "alice.crt")]);
    expect(vf.code, vf.stdout + vf.stderr).toBe(0);
    // and pki uses it as it is
    const more = pki(["--dir", out, "--passphrase-file", ca.pass, "issue", "client", "carol", "--json"], { cwd: ca.root });
    expect(more.code, more.stderr).toBe(0);

    // refusals: a target that holds a CA, a password in --to, a directory that holds no CA
    const into = pki(["--store", url, "store", "export", "--to", ca.dir, "--json"], { cwd: ca.root });
    expect(into.code).toBe(1);
    expect(json(into).error.code).toBe("CA_EXISTS");
    const pw = pki(["store", "migrate", "--from", ca.dir, "--to", url.replace("//pki@", `//pki:${SECRET_PASSWORD}@`)], { cwd: ca.root });
    expectOneLineError(pw, "USAGE", 2);
    const none = pki(["store", "migrate", "--from", path.join(ca.root, "nothing-here"), "--to", await pg.createDb(), "--json"], { cwd: ca.root });
    expect(none.code).toBe(1);
    expect(json(none).error.code).toBe("NO_CA");
  });
});
