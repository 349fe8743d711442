/**
 * A real, throwaway PostgreSQL cluster for the tests (Debian's `postgresql`
 * package; .ci/run installs it): initdb into a temporary directory as an
 * unprivileged user (initdb refuses root), the server on a free loopback
 * port with its socket in that directory, stopped by its pid afterwards.
 *
 * Roles: `pki`, the superuser, trusted from loopback (the tests' URLs carry
 * no password, as the CLI demands); `secret`, which must log in with a
 * SCRAM password (the wrong-password tests).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import { freePort } from "./nginx-lib.js";

export const SECRET_ROLE = "secret";
export const SECRET_PASSWORD = "Sup3r-Secret-Pa55word";

/** Where Debian keeps the server binaries (not on PATH), newest first; else PATH. */
function pgBin(name: string): string {
  const base = "/usr/lib/postgresql";
  if (fs.existsSync(base)) {
    const versions = fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const p = path.join(base, v, "bin", name);
      if (fs.existsSync(p)) return p;
    }
  }
  return name;
}

/** A missing tool is a failure naming the package, never a skip. */
export function requirePostgres(): void {
  const missing: string[] = [];
  for (const t of ["initdb", "pg_ctl", "postgres"]) if (spawnSync(pgBin(t), ["--version"]).status !== 0) missing.push(t);
  if (spawnSync("setpriv", ["--version"]).status !== 0) missing.push("setpriv (util-linux)");
  if (missing.length) throw new Error(`these tests need PostgreSQL's ${missing.join(", ")}: install the Debian package postgresql (bash .ci/run does)`);
}

/** Run as nobody:nogroup when we are root (initdb and postgres refuse root). */
function asUser(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const root = process.getuid?.() === 0;
  const argv = root ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", cmd, ...args] : [cmd, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", env: { ...process.env, LC_ALL: "C", ...opts.env }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r;
}

export class PgCluster {
  pid = 0;
  private dbs = 0;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get data(): string {
    return path.join(this.dir, "data");
  }

  /**
   * initdb and start; `durable: false` (the default) turns fsync off, as a throwaway cluster may;
   * `tls`: the server's certificate and key files (PEM), and TLS is on
   */
  static async start(opts: { durable?: boolean; tls?: { cert: string; key: string } } = {}): Promise<PgCluster> {
    requirePostgres();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-pg-"));
    fs.chmodSync(dir, 0o755);
    if (process.getuid?.() === 0) fs.chownSync(dir, 65534, 65534);
    const c = new PgCluster(dir, await freePort());
    const pwfile = path.join(dir, "pw");
    fs.writeFileSync(pwfile, "unused-superuser-password\n", { mode: 0o600 });
    if (process.getuid?.() === 0) fs.chownSync(pwfile, 65534, 65534);
    asUser(pgBin("initdb"), ["-D", c.data, "-U", "pki", "-A", "trust", "--pwfile", pwfile, "-E", "UTF8", "--no-sync"]);
    fs.writeFileSync(
      path.join(c.data, "pg_hba.conf"),
      ["local all all trust", `host all ${SECRET_ROLE} 127.0.0.1/32 scram-sha-256`, "host all all 127.0.0.1/32 trust", ""].join("\n"),
    );
    const conf = [
      `port = ${c.port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      "max_connections = 200",
      "password_encryption = 'scram-sha-256'",
      ...(opts.durable ? [] : ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]),
      ...(opts.tls ? ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"] : []),
      "",
    ];
    if (opts.tls) {
      // the server reads them as itself, and refuses a key others can read
      for (const [from, to] of [[opts.tls.cert, "server.crt"], [opts.tls.key, "server.key"]] as const) {
        const dest = path.join(c.data, to);
        fs.copyFileSync(from, dest);
        fs.chmodSync(dest, 0o600);
        if (process.getuid?.() === 0) fs.chownSync(dest, 65534, 65534);
      }
    }
    fs.appendFileSync(path.join(c.data, "postgresql.conf"), conf.join("\n"));
    c.startServer();
    await c.sql(`CREATE ROLE ${SECRET_ROLE} LOGIN PASSWORD '${SECRET_PASSWORD}'`);
    return c;
  }

  /** pg_ctl start (again, after stopServer) */
  startServer(): void {
    asUser(pgBin("pg_ctl"), ["start", "-D", this.data, "-l", path.join(this.dir, "server.log"), "-w", "-t", "60"]);
    this.pid = Number(fs.readFileSync(path.join(this.data, "postmaster.pid"), "utf8").split("\n")[0]);
  }

  /** stop the server (fast: every session is terminated at once) */
  stopServer(): void {
    asUser(pgBin("pg_ctl"), ["stop", "-D", this.data, "-m", "fast", "-w", "-t", "60"]);
    this.pid = 0;
  }

  /** A URL for a database (user `pki`, trusted; no password in it). */
  url(db: string, user = "pki"): string {
    return `postgres://${user}@127.0.0.1:${this.port}/${db}`;
  }

  /** A fresh, empty database; its URL. */
  async createDb(prefix = "ca"): Promise<string> {
    const name = `${prefix}_${++this.dbs}_${process.pid}`;
    await this.sql(`CREATE DATABASE ${name}`);
    await this.sql(`GRANT ALL ON SCHEMA public TO ${SECRET_ROLE}`, name);
    return this.url(name);
  }

  /** Run SQL as the superuser on a database (default: postgres). */
  async sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, db = "postgres", values: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: this.url(db) });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** Stop the server by its pid and remove everything. */
  stop(): void {
    if (this.pid) {
      try {
        process.kill(this.pid, "SIGQUIT"); // immediate shutdown: a throwaway cluster
      } catch {
        /* already gone */
      }
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        try {
          process.kill(this.pid, 0);
        } catch {
          break;
        }
        spawnSync("sleep", ["0.05"]);
      }
      this.pid = 0;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
