/**
 * A PostgreSQL store over TLS, the server's certificate verified
 * (sslmode=verify-full) against a CA that only NODE_EXTRA_CA_CERTS names.
 * bin/pki.js run as a program starts node without that variable (~40 ms of
 * every start, issue 17) and store/extra-ca.ts gives its certificates back
 * to the one TLS client pki has: the same trust as a plain `node bin/pki.js`.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, cleanEnv, openssl, PASSPHRASE, tmpdir, type Run } from "../helpers.js";
import { PgCluster } from "./pg-lib.js";

let pg: PgCluster;
let root: string;
let pass: string;
let dbCa: string;
let otherCa: string;

function selfSigned(name: string, cn: string): string {
  const crt = path.join(root, `${name}.crt`);
  const r = openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(root, `${name}.key`), "-out", crt, "-subj", `/CN=${cn}`, "-days", "2"]);
  expect(r.code, r.stderr).toBe(0);
  return crt;
}

beforeAll(async () => {
  root = tmpdir("pki-pg-tls-");
  pass = path.join(root, "pass");
  fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
  dbCa = selfSigned("db-ca", "Test DB CA");
  otherCa = selfSigned("other-ca", "Some Other CA");
  const key = path.join(root, "server.key");
  const cert = path.join(root, "server.crt");
  const r = openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-CA", dbCa, "-CAkey", path.join(root, "db-ca.key"), "-days", "2"]);
  expect(r.code, r.stderr).toBe(0);
  pg = await PgCluster.start({ tls: { cert, key } });
});
afterAll(() => pg?.stop());

/** pki on the store at url, run as a program (the launcher) or as `node bin/pki.js`; NODE_EXTRA_CA_CERTS as given (none: unset). */
function run(url: string, args: string[], extraCa: string | undefined, viaNode = false): Run {
  const env = cleanEnv();
  delete env.NODE_EXTRA_CA_CERTS;
  if (extraCa !== undefined) env.NODE_EXTRA_CA_CERTS = extraCa;
  const argv = ["--store", url, "--passphrase-file", pass, ...args];
  const r = spawnSync(viaNode ? process.execPath : BIN, viaNode ? [BIN, ...argv] : argv, { env, encoding: "utf8", timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("a PostgreSQL store over TLS, verified against a CA named by NODE_EXTRA_CA_CERTS", () => {
  it("through the launcher (node started without the variable) as through plain node; without it, refused in one line", async () => {
    const url = `${await pg.createDb()}?sslmode=verify-full`;
    const init = run(url, ["init", "--cn", "TLS Store CA", "--org", "Acme"], dbCa);
    expect(init.code, init.stderr).toBe(0);
    for (const viaNode of [false, true]) {
      const s = run(url, ["status", "--json"], dbCa, viaNode);
      expect(s.code, s.stderr).toBe(0);
      expect((JSON.parse(s.stdout) as { ok: boolean }).ok).toBe(true);
      expect(s.stdout).toContain("CN=TLS Store CA");
    }
    // the server's certificate is really checked: no extra CA, or another one, and it is refused
    for (const extra of [undefined, otherCa]) {
      const r = run(url, ["status"], extra);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/over TLS: .*certificate.*sslrootcert=/);
    }
  });

  it("a NODE_EXTRA_CA_CERTS file that cannot be read is skipped with a warning, as node does at start", async () => {
    const url = `${await pg.createDb()}?sslmode=verify-full`;
    const r = run(url, ["status"], `${root}/no-such-bundle.pem`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`pki: warning: ignoring NODE_EXTRA_CA_CERTS ${root}/no-such-bundle.pem: ENOENT`);
    expect(r.stderr).toMatch(/over TLS: .*certificate.*sslrootcert=/);
    // a connection without TLS trusts nothing: the file is not even read (nor node's roots built, nor node:tls loaded)
    const plainUrl = await pg.createDb();
    const init = run(plainUrl, ["init", "--cn", "Plain Store CA", "--org", "Acme"], `${root}/no-such-bundle.pem`);
    expect(init.code, init.stderr).toBe(0);
    const plain = run(plainUrl, ["status"], `${root}/no-such-bundle.pem`);
    expect(plain.code, plain.stderr).toBe(0);
    expect(init.stderr + plain.stderr).not.toContain("NODE_EXTRA_CA_CERTS");
  });

  it("an sslrootcert= in the URL is what is trusted, NODE_EXTRA_CA_CERTS or not (as with plain node)", async () => {
    const db = await pg.createDb();
    const init = run(`${db}?sslmode=verify-full&sslrootcert=${encodeURIComponent(dbCa)}`, ["init", "--cn", "Rootcert CA", "--org", "Acme"], undefined);
    expect(init.code, init.stderr).toBe(0);
    for (const viaNode of [false, true]) {
      const wrong = run(`${db}?sslmode=verify-full&sslrootcert=${encodeURIComponent(otherCa)}`, ["status"], dbCa, viaNode);
      expect(wrong.code, `${viaNode ? "node bin/pki.js" : "the launcher"}: ${wrong.stderr}`).toBe(1);
      expect(wrong.stderr).toMatch(/certificate/i);
    }
  });
});
