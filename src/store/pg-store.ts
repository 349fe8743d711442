/**
 * The CA's state in PostgreSQL (issue #14, contract "Shared store for many
 * machines"): `--store postgres://...` or `PKI_STORE`. One CA per database
 * (per schema: the tables live in the connection's current schema, so
 * `?options=-c%20search_path%3Dca2` puts a second CA in schema ca2).
 *
 * Tables (schema version 1, applied by pki itself, see MIGRATIONS):
 *   pki_schema        one row per applied migration (version, when, by which pki)
 *   pki_state         one row: the generation, bumped by every commit (pki serve polls it)
 *   pki_documents     name (a DocName) -> bytes and mode: pki.json, ca.crt,
 *                     private/ca.key (always the encrypted PEM the directory
 *                     would hold: the database never sees a decrypted key),
 *                     crlnumber, crl.pem, issued/<name>.crt, ...
 *   pki_certificates  one row per serial (UNIQUE): the `openssl ca` index line
 *                     as written, its fields (status, expiry, revocation field,
 *                     subject) for queries, profile, name; seq keeps issuance
 *                     order
 *   pki_certificate_pems  certs/<SERIAL>.pem, by serial (apart, so that scanning
 *                     the index does not read every certificate)
 *   pki_audit         the audit log: the JSON line as written, and as jsonb
 *
 * Concurrency: every change runs in one transaction that first takes a
 * transaction-scoped advisory lock, pg_advisory_xact_lock(LOCK_CLASS,
 * hashtext(current_schema())), one per CA. We chose the advisory lock over
 * SERIALIZABLE isolation because a change is a read-decide-commit with a
 * signature in the middle: under SERIALIZABLE two issuers would both sign,
 * one would fail at COMMIT with a serialization error, and every caller
 * would need a retry loop that re-signs (and a CRL signed with a number
 * another transaction also used would already exist in memory). With the
 * lock, writers queue exactly as they do on the directory's lock file, the
 * reads after the lock (READ COMMITTED: each statement sees everything
 * committed before it) are the whole current state, so the CRL is built from
 * one consistent state and CRL numbers strictly increase; src/ca/ runs the
 * same logic on both stores. The lock is released by COMMIT or ROLLBACK, and
 * by the server when a client dies (SIGKILL, lost host): a killed process
 * never leaves a stale lock or a half-applied change. Readers (list, show,
 * serve) never take it: each read is one statement, one snapshot.
 *
 * Serials are unique by constraint as well: a duplicate fails the
 * transaction (STORE_CONFLICT, nothing committed; running the command again
 * draws a new serial).
 *
 * Failures of the database (unreachable, wrong password, lost connection,
 * timeout) become one-line PkiErrors (STORE_UNAVAILABLE) within 15 s:
 * connect timeout 10 s, a client-side timeout on every statement, TCP
 * keepalive, and server-side statement and idle-in-transaction timeouts so
 * that a hung client releases the lock. The password is never shown: the
 * location is the URL without it, and messages are scrubbed of it.
 */
import { createRequire } from "node:module";
import { Writable } from "node:stream";
import type * as pg from "pg";
import pgDriver from "./pg-driver.js";
import { trustDeferredRoots } from "./extra-ca.js";
import { copyOutLines } from "./pg-copy.js";
import { formatCrlNumber } from "../core/crl.js";
import { PkiError } from "../core/errors.js";
import { formatLine, parseMeta, type IndexEntry, type MetaEntry } from "../core/index-format.js";
import { DOC, isDocName, type CaStore, type Change, type DocName, type DocWrite, type StoreTx, DOC_DIRS } from "./store.js";

/** Migrations, in order: index i takes the schema from version i to i + 1. Never edit one that has shipped; append. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE pki_state (
     id int PRIMARY KEY CHECK (id = 1),
     generation bigint NOT NULL
   );
   INSERT INTO pki_state (id, generation) VALUES (1, 0);
   CREATE TABLE pki_documents (
     name text PRIMARY KEY,
     data bytea NOT NULL,
     mode int NOT NULL DEFAULT 420
   );
   CREATE TABLE pki_certificates (
     seq bigserial PRIMARY KEY,
     serial text NOT NULL,
     line text NOT NULL,
     status char(1) NOT NULL CHECK (status IN ('V', 'R', 'E')),
     expires timestamptz NOT NULL,
     revoked text NOT NULL DEFAULT '',
     subject text NOT NULL,
     profile text,
     name text,
     CONSTRAINT pki_certificates_serial_unique UNIQUE (serial)
   );
   CREATE INDEX pki_certificates_name ON pki_certificates (name) WHERE name IS NOT NULL;
   CREATE INDEX pki_certificates_revoked ON pki_certificates (seq) WHERE status = 'R';
   -- the PEMs apart: the index lines stay a narrow table that a CRL or pki serve scans in a few ms per 10,000
   CREATE TABLE pki_certificate_pems (
     serial text PRIMARY KEY REFERENCES pki_certificates (serial),
     pem text NOT NULL
   );
   CREATE TABLE pki_audit (
     id bigserial PRIMARY KEY,
     time timestamptz NOT NULL DEFAULT now(),
     line text NOT NULL,
     record jsonb GENERATED ALWAYS AS (line::jsonb) STORED
   );`,
];

/** The schema version this pki writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Advisory lock class ("pki1"); the object id is hashtext(current_schema()), one lock per CA. */
const LOCK_CLASS = 0x706b6931;
const LOCK_SQL = `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(current_schema()))`;
/** The migration lock: another object id in the same class, so that two first runs do not both create the tables. */
const MIGRATE_LOCK_SQL = `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext('migrate:' || current_schema()))`;

const CONNECT_TIMEOUT_MS = 10_000;
/** every statement, client side: a server that stops answering is an error after this */
const QUERY_TIMEOUT_MS = 12_000;
/** reading the whole index of a large CA may take longer */
const BULK_QUERY_TIMEOUT_MS = 120_000;
/** rows per INSERT of new records */
const ADD_BATCH = 5_000;

function lockTimeoutMs(): number {
  const s = Number(process.env.PKI_LOCK_TIMEOUT);
  return s > 0 ? s * 1000 : 60_000;
}

import { applySslMode, clearKeyRefused, redactUrl } from "./db-url.js";
export { redactUrl, urlHasPassword } from "./db-url.js";

type Queryable = pg.Pool | pg.PoolClient;

class PgReader {
  constructor(
    protected readonly db: () => Queryable,
    protected readonly fail: (e: unknown, what: string) => PkiError,
  ) {}

  protected async q<R extends pg.QueryResultRow = pg.QueryResultRow>(what: string, text: string, values: unknown[] = [], timeout = QUERY_TIMEOUT_MS): Promise<pg.QueryResult<R>> {
    try {
      return await this.db().query<R>({ text, values, query_timeout: timeout } as pg.QueryConfig);
    } catch (e) {
      throw this.fail(e, what);
    }
  }

  async read(name: DocName): Promise<Buffer | null> {
    const r = await this.q<{ data: Buffer }>(`reading ${name}`, "SELECT data FROM pki_documents WHERE name = $1", [name]);
    return r.rows[0]?.data ?? null;
  }

  async readTail(name: DocName, n: number): Promise<{ size: number; tail: Buffer } | null> {
    const r = await this.q<{ size: number; tail: Buffer }>(`reading ${name}`, "SELECT octet_length(data) AS size, substring(data FROM greatest(octet_length(data) - $2 + 1, 1)) AS tail FROM pki_documents WHERE name = $1", [name, n]);
    const row = r.rows[0];
    return row ? { size: Number(row.size), tail: row.tail } : null;
  }

  async list(dir: (typeof DOC_DIRS)[number]): Promise<DocName[]> {
    const r = await this.q<{ name: string }>(`listing ${dir}/`, `SELECT name FROM pki_documents WHERE starts_with(name, $1) ORDER BY name COLLATE "C"`, [dir + "/"]);
    return r.rows.map((x) => x.name);
  }

  /** The lines in seq order, each with its newline: one binary COPY of the line column (store/pg-copy.ts). */
  async indexText(): Promise<Buffer> {
    try {
      return await copyOutLines(this.db(), "SELECT line FROM pki_certificates ORDER BY seq", BULK_QUERY_TIMEOUT_MS);
    } catch (e) {
      throw e instanceof PkiError ? e : this.fail(e, "reading the certificate index");
    }
  }

  async meta(): Promise<Map<string, MetaEntry>> {
    // one text in index.meta's form, parsed here: far cheaper than a row object per certificate
    const r = await this.q<{ text: string | null }>(
      "reading the certificate index",
      "SELECT string_agg(serial || E'\\t' || profile || E'\\t' || coalesce(name, '-'), E'\\n') AS text FROM pki_certificates WHERE profile IS NOT NULL",
      [],
      BULK_QUERY_TIMEOUT_MS,
    );
    return parseMeta(r.rows[0]?.text ?? "");
  }

  async certPem(serial: string): Promise<string | null> {
    const r = await this.q<{ pem: string }>(`reading certificate ${serial}`, "SELECT pem FROM pki_certificate_pems WHERE serial = $1", [serial]);
    return r.rows[0]?.pem ?? null;
  }
}

/** The fields of an index line kept as columns beside the line itself. */
function lineFields(e: IndexEntry): { line: string; revoked: string } {
  const line = formatLine(e);
  return { line, revoked: line.split("\t")[2]! };
}

function docBytes(d: DocWrite): Buffer | null {
  if (d.data === null) return null;
  return typeof d.data === "string" ? Buffer.from(d.data, "utf8") : Buffer.from(d.data.buffer, d.data.byteOffset, d.data.byteLength);
}

class PgTx extends PgReader implements StoreTx {
  private n = 0;
  /** the savepoint of the last change, released (merged into the transaction) by the next change's first statement */
  private open: string | undefined;
  constructor(
    private readonly client: pg.PoolClient,
    fail: (e: unknown, what: string) => PkiError,
    private readonly location: string,
  ) {
    super(() => client, fail);
  }

  /**
   * One change, whole: inside a savepoint, so that a refused change (an exclusive name taken) leaves the
   * transaction usable. The savepoint, the generation bump and the release of the previous change's savepoint
   * go as one round trip (the bump is inside the savepoint: a refused change un-bumps it); the last savepoint
   * is committed with the transaction, no statement of its own.
   */
  async commit(change: Change): Promise<void> {
    const sp = `pki_commit_${++this.n}`;
    const release = this.open ? `RELEASE SAVEPOINT ${this.open}; ` : "";
    this.open = undefined;
    await this.q("starting a change", `${release}SAVEPOINT ${sp}; UPDATE pki_state SET generation = generation + 1 WHERE id = 1`);
    this.open = sp;
    try {
      await this.apply(change);
    } catch (e) {
      await this.client.query(`ROLLBACK TO SAVEPOINT ${sp}`).catch(() => undefined);
      throw e;
    }
  }

  private async apply(change: Change): Promise<void> {
    const docs: DocWrite[] = [];
    if (change.crlNumber !== undefined) docs.push({ name: DOC.crlNumber, data: formatCrlNumber(change.crlNumber) });
    docs.push(...(change.docs ?? []));
    if (change.add?.length) await this.add(change.add);
    if (change.update?.length) await this.update(change.update);
    // one transaction: the released outputs become visible with the records, never before them
    docs.push(...(change.release ?? []));
    if (docs.length) await this.writeDocs(docs);
  }

  /** New records, ADD_BATCH rows per statement (a bulk issuance of 10,000 is a few round trips, not 10,000). */
  private async add(records: NonNullable<Change["add"]>): Promise<void> {
    for (let at = 0; at < records.length; at += ADD_BATCH) {
      const chunk = records.slice(at, at + ADD_BATCH);
      const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
      for (const r of chunk) {
        const { line, revoked } = lineFields(r.entry);
        const v = [r.entry.serial, line, r.entry.status, r.entry.expires.toISOString(), revoked, r.entry.subject, r.profile ?? null, r.name ?? null, r.pem];
        v.forEach((x, i) => cols[i]!.push(x));
      }
      // one statement for both tables: the records and their PEMs
      await this.q(
        `recording ${records.length === 1 ? "certificate " + records[0]!.entry.serial : records.length + " certificates"}`,
        `WITH n AS (
           INSERT INTO pki_certificates (serial, line, status, expires, revoked, subject, profile, name)
           SELECT * FROM unnest($1::text[], $2::text[], $3::char(1)[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[])
           RETURNING serial
         )
         INSERT INTO pki_certificate_pems (serial, pem) SELECT * FROM unnest($1::text[], $9::text[])`,
        cols,
        BULK_QUERY_TIMEOUT_MS,
      );
    }
  }

  private async update(entries: readonly IndexEntry[]): Promise<void> {
    const cols: unknown[][] = [[], [], [], [], []];
    for (const e of entries) {
      const { line, revoked } = lineFields(e);
      [e.serial, line, e.status, e.expires.toISOString(), revoked].forEach((x, i) => cols[i]!.push(x));
    }
    const r = await this.q(
      "updating certificate records",
      `UPDATE pki_certificates c SET line = u.line, status = u.status, expires = u.expires, revoked = u.revoked
       FROM unnest($1::text[], $2::text[], $3::char(1)[], $4::timestamptz[], $5::text[]) AS u(serial, line, status, expires, revoked)
       WHERE c.serial = u.serial`,
      cols,
      BULK_QUERY_TIMEOUT_MS,
    );
    if (r.rowCount !== new Set(entries.map((e) => e.serial)).size) {
      const have = await this.q<{ serial: string }>("updating certificate records", "SELECT serial FROM pki_certificates WHERE serial = ANY($1::text[])", [entries.map((e) => e.serial)]);
      const known = new Set(have.rows.map((x) => x.serial));
      const missing = entries.find((e) => !known.has(e.serial));
      throw new PkiError("NOT_FOUND", `serial ${missing?.serial ?? "?"} is not recorded in ${this.location}; nothing changed`);
    }
  }

  /** Documents in three statements at most: removals, exclusive creations (refused when one exists), replacements. */
  private async writeDocs(writes: readonly DocWrite[]): Promise<void> {
    const last = new Map<string, DocWrite>();
    for (const d of writes) {
      if (!isDocName(d.name)) throw new PkiError("INTERNAL", `not a document name: ${JSON.stringify(d.name)}`);
      const prev = last.get(d.name);
      last.delete(d.name);
      last.set(d.name, prev?.exclusive && !d.exclusive ? { ...d, exclusive: true } : d);
    }
    const gone: string[] = [];
    const excl: [string[], Buffer[], number[]] = [[], [], []];
    const put: [string[], Buffer[], number[]] = [[], [], []];
    for (const d of last.values()) {
      const data = docBytes(d);
      if (data === null) {
        gone.push(d.name);
        continue;
      }
      if (d.name === DOC.caKey && !data.toString("latin1").includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
        throw clearKeyRefused(this.location);
      }
      const to = d.exclusive ? excl : put;
      to[0].push(d.name);
      to[1].push(data);
      to[2].push(d.mode ?? (d.name.startsWith("private/") ? 0o600 : 0o644));
    }
    if (gone.length) await this.q(`removing ${gone.join(", ")}`, "DELETE FROM pki_documents WHERE name = ANY($1::text[])", [gone]);
    if (excl[0].length) {
      const r = await this.insertDocs(excl, "ON CONFLICT (name) DO NOTHING RETURNING name");
      if (r.rowCount !== excl[0].length) {
        const made = new Set(r.rows.map((x) => x.name));
        const taken = excl[0].find((n) => !made.has(n));
        throw new PkiError("NAME_EXISTS", `${taken} exists already in ${this.location}; nothing changed`);
      }
    }
    if (put[0].length) {
      await this.insertDocs(put, "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, mode = EXCLUDED.mode");
    }
  }

  /**
   * One INSERT of documents. When every one is ASCII (PEMs, JSON: nearly always) their bytes go as a text[]
   * and convert_to() turns them back into the same bytes: a bulk issuance's 3,000 documents cost a fraction of
   * what a bytea[] (every byte as two hex digits, parsed again by the server) costs; anything else goes as bytea[].
   */
  private async insertDocs(rows: [string[], Buffer[], number[]], conflict: string): Promise<pg.QueryResult<{ name: string }>> {
    const what = `writing ${rows[0].length === 1 ? rows[0][0] : rows[0].length + " documents"}`;
    const ascii = rows[1].map((b) => b.toString("latin1"));
    if (ascii.every((t) => ASCII.test(t))) {
      return this.q(what, `INSERT INTO pki_documents (name, data, mode) SELECT n, convert_to(d, 'UTF8'), m FROM unnest($1::text[], $2::text[], $3::int[]) AS u(n, d, m) ${conflict}`, [rows[0], ascii, rows[2]], BULK_QUERY_TIMEOUT_MS);
    }
    return this.q(what, `INSERT INTO pki_documents (name, data, mode) SELECT * FROM unnest($1::text[], $2::bytea[], $3::int[]) ${conflict}`, rows, BULK_QUERY_TIMEOUT_MS);
  }
}

/** Bytes that are the same as text in every server encoding: ASCII without NUL (which text cannot hold). */
const ASCII = /^[\x01-\x7f]*$/;

/** A file the URL names (sslrootcert, sslcert, sslkey) that cannot be read: said as such (not "is the server running?"). */
function urlFileError(e: unknown, location: string): PkiError | null {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.path !== "string" || err.syscall !== "open" || !/^E[A-Z]+$/.test(err.code ?? "")) return null;
  const why = err.code === "ENOENT" ? "it does not exist" : err.code === "EACCES" ? "permission denied" : err.code!;
  return new PkiError("STORE_UNAVAILABLE", `cannot read ${err.path}, which the store URL names (sslrootcert, sslcert or sslkey): ${why}; fix the path in ${location}; nothing was committed`);
}

/** require() as pg's own modules have it: its dependencies (pgpass, pg-connection-string), not pki's. */
const driverRequire = (): NodeJS.Require => createRequire(createRequire(import.meta.url).resolve("pg"));

/**
 * Why ~/.pgpass gave no password, when pgpass said (a file group or others
 * can read is ignored, as libpq does): named in the login error instead of
 * printed on stderr as a line of its own.
 */
let pgpassWarning: string | undefined;

/** The password for a connection from ~/.pgpass or $PGPASSFILE (pg's own dependency, pgpass, as pg would use it), or none. */
async function passwordFromPgpass(params: unknown): Promise<string | undefined> {
  const pgpass = driverRequire()("pgpass") as ((conn: unknown, cb: (pass: string | undefined) => void) => void) & { warnTo(stream: NodeJS.WritableStream): unknown };
  pgpass.warnTo(
    new Writable({
      write(chunk: Buffer, _enc, done) {
        pgpassWarning ??= chunk.toString("utf8").replace(/^WARNING: /, "").trim();
        done();
      },
    }),
  );
  return new Promise((resolve) => pgpass(params, resolve));
}

/**
 * The documents a command reads before it takes the lock (ca/open-ca.ts: the settings, the CA certificate, its
 * parent's, the key, the profiles): read with the schema version, in the store's first round trip, instead of one
 * round trip each (and instead of the extra connections the pool opened for the ones read side by side).
 */
const READ_AHEAD: readonly DocName[] = [DOC.settings, DOC.caCert, DOC.parentCert, DOC.caKey];
/** How long after the store is opened the documents read ahead may answer a first read (a command's start). */
const AHEAD_MS = 2_000;
const PROFILES_DIR = "profiles";

/** The PostgreSQL CaStore; open it with openPgStore. */
export class PgStore extends PgReader implements CaStore {
  readonly kind = "postgres" as const;
  readonly location: string;
  private closed = false;
  /**
   * What the first round trip read (READ_AHEAD: bytes, or null for a document that does not exist; the
   * profiles' names): each answers the first read of it, once, then later reads ask the database again.
   * The same unlocked snapshot reads outside the lock always were, taken a few ms sooner and all at once.
   * Only for AHEAD_MS after the store is opened (a command's own start): a long-lived reader (pki serve
   * reads the key and the profiles again when it renews its responder, hours later) then asks the
   * database. Reads in a transaction (PgTx) never come from here.
   */
  private readonly ahead = new Map<DocName, Buffer | null>();
  private profilesAhead: DocName[] | undefined;
  private aheadUntil = 0;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly password: string | undefined,
    location: string,
    /** every connection made, to cut what is left when the store closes */
    private readonly clients: Set<pg.Client>,
    /** an idle connection the server closed, not reported yet (see open) */
    private readonly lostIdle: { error?: unknown } = {},
  ) {
    let self: PgStore | undefined;
    super(
      () => {
        self!.reportLostIdle();
        return pool;
      },
      (e, what) => self!.translate(e, what),
    );
    self = this;
    this.location = location;
  }

  static async open(given: string): Promise<PgStore> {
    const location = redactUrl(given);
    const url = applySslMode(given);
    let password: string | undefined;
    try {
      password = decodeURIComponent(new URL(url).password) || undefined;
    } catch {
      // a socket URL without a host (postgres://pki@/db?host=/run/postgresql) is no WHATWG URL; the driver's parser reads it
      try {
        password = driverRequire()("pg-connection-string").parse(url).password || undefined;
      } catch (e) {
        const unreadable = urlFileError(e, location);
        if (unreadable) throw unreadable;
        throw new PkiError("USAGE", `not a PostgreSQL URL: ${location} (expected postgres://user@host:port/database, or postgres://user@/database?host=/run/postgresql for the socket)`, { exitCode: 2 });
      }
    }
    const config: pg.PoolConfig = {
      connectionString: url,
      max: 4,
      allowExitOnIdle: true,
      idleTimeoutMillis: 5_000,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5_000,
      lock_timeout: lockTimeoutMs(),
      statement_timeout: BULK_QUERY_TIMEOUT_MS,
      idle_in_transaction_session_timeout: 60_000,
      application_name: "pki",
    };
    // every connection made, also one whose login failed half-way (pg leaves the socket of a refused
    // SCRAM exchange open, which would keep the process alive): close() cuts them all
    const clients = new Set<pg.Client>();
    config.Client = class extends pgDriver.Client {
      constructor(c?: string | pg.ClientConfig) {
        super(c);
        clients.add(this);
        // NODE_EXTRA_CA_CERTS, when bin/pki.js started node without it (store/extra-ca.ts)
        trustDeferredRoots(this);
        // no password in the URL nor $PGPASSWORD: ~/.pgpass (or $PGPASSFILE), read here rather than by pg,
        // which prints a deprecation warning on stderr whenever it finds the password there (pg calls the
        // function with the connection's parameters and takes undefined as "no password"; its types say neither)
        const self = this as unknown as { password: unknown };
        if (self.password === null || self.password === undefined) self.password = passwordFromPgpass;
      }
    };
    const pool = new pgDriver.Pool(config);
    // an idle connection that the server closes (restart, pg_terminate_backend): the next query reports it
    // (the pool would otherwise replace it unseen, and a command cut off mid-run would carry on as if nothing happened)
    const lostIdle: { error?: unknown } = {};
    pool.on("error", (e) => {
      lostIdle.error ??= e;
    });
    const store = new PgStore(pool, password, location, clients, lostIdle);
    try {
      await store.migrate();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /** Forget what was read ahead once the command's start is over (AHEAD_MS). */
  private aheadExpired(): void {
    if (Date.now() <= this.aheadUntil) return;
    this.ahead.clear();
    this.profilesAhead = undefined;
  }

  override async read(name: DocName): Promise<Buffer | null> {
    this.aheadExpired();
    if (this.ahead.has(name)) {
      const b = this.ahead.get(name)!;
      this.ahead.delete(name);
      return b;
    }
    return super.read(name);
  }

  override async list(dir: (typeof DOC_DIRS)[number]): Promise<DocName[]> {
    this.aheadExpired();
    if (dir === PROFILES_DIR && this.profilesAhead) {
      const names = this.profilesAhead;
      this.profilesAhead = undefined;
      return names;
    }
    return super.list(dir);
  }

  /**
   * The schema version and the READ_AHEAD documents in one round trip (two statements of one simple query).
   * A database without pki's tables (a new one) answers undefined_table: the version is then read the
   * careful way, as a migration does.
   */
  private async openingRead(): Promise<number> {
    const docs = READ_AHEAD.map((n) => `'${n}'`).join(", ");
    let results: Array<pg.QueryResult<Record<string, unknown>>>;
    try {
      this.reportLostIdle();
      const r = await this.pool.query({
        text: `SELECT max(version) AS v FROM pki_schema; SELECT name, data FROM pki_documents WHERE name IN (${docs}) OR starts_with(name, '${PROFILES_DIR}/') ORDER BY name COLLATE "C"`,
        query_timeout: QUERY_TIMEOUT_MS,
      } as pg.QueryConfig);
      results = r as unknown as typeof results;
    } catch (e) {
      if ((e as { code?: string }).code === "42P01") return this.schemaVersion();
      throw this.translate(e, "reading the schema version");
    }
    const n = Number(results[0]?.rows[0]?.v ?? 0);
    if (n > SCHEMA_VERSION) throw this.newerSchema(n);
    if (n === SCHEMA_VERSION && results[1]) {
      for (const name of READ_AHEAD) this.ahead.set(name, null);
      const profiles: DocName[] = [];
      for (const row of results[1].rows as Array<{ name: string; data: Buffer }>) {
        this.ahead.set(row.name, row.data);
        if (row.name.startsWith(PROFILES_DIR + "/")) profiles.push(row.name);
      }
      this.profilesAhead = profiles;
      this.aheadUntil = Date.now() + AHEAD_MS;
    }
    return n;
  }

  private newerSchema(n: number): PkiError {
    return new PkiError("STORE_VERSION", `the database at ${this.location} has schema version ${n}, newer than this pki knows (${SCHEMA_VERSION}): upgrade pki on this host; nothing changed`);
  }

  /** Apply the migrations this database lacks; refuse a schema newer than this pki. */
  private async migrate(): Promise<void> {
    const version = await this.openingRead();
    if (version === SCHEMA_VERSION) return;
    await this.transaction("updating the database schema", MIGRATE_LOCK_SQL, async (client) => {
      const now = await this.schemaVersion(client);
      for (let v = now; v < SCHEMA_VERSION; v++) {
        await client.query({ text: MIGRATIONS[v]!, query_timeout: BULK_QUERY_TIMEOUT_MS } as pg.QueryConfig);
        await client.query("INSERT INTO pki_schema (version, pki) VALUES ($1, $2)", [v + 1, "pki"]);
      }
    });
  }

  private async schemaVersion(client?: pg.PoolClient): Promise<number> {
    const db = client ?? this.pool;
    try {
      const r = await db.query<{ reg: string | null }>({ text: "SELECT to_regclass('pki_schema')::text AS reg", query_timeout: QUERY_TIMEOUT_MS } as pg.QueryConfig);
      if (!r.rows[0]?.reg) {
        if (!client) return 0;
        await client.query("CREATE TABLE pki_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), pki text NOT NULL)");
        return 0;
      }
      const v = await db.query<{ v: number | null }>({ text: "SELECT max(version) AS v FROM pki_schema", query_timeout: QUERY_TIMEOUT_MS } as pg.QueryConfig);
      const n = v.rows[0]?.v ?? 0;
      if (n > SCHEMA_VERSION) throw this.newerSchema(n);
      return n;
    } catch (e) {
      throw this.translate(e, "reading the schema version");
    }
  }

  /** Throw, once, the loss of an idle connection that the server closed since the last query. */
  private reportLostIdle(): void {
    const e = this.lostIdle.error;
    if (e === undefined) return;
    this.lostIdle.error = undefined;
    throw e;
  }

  /** BEGIN; the lock; fn; COMMIT — ROLLBACK when anything throws. */
  private async transaction<T>(what: string, lockSql: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      this.reportLostIdle();
      client = await this.pool.connect();
    } catch (e) {
      throw this.translate(e, what);
    }
    let lost: unknown;
    const onError = (e: unknown) => {
      lost = e;
    };
    client.on("error", onError);
    let broken = false;
    try {
      try {
        // one round trip: the lock is the transaction's first statement either way
        await client.query({ text: `BEGIN; ${lockSql}`, query_timeout: lockTimeoutMs() + QUERY_TIMEOUT_MS } as pg.QueryConfig);
      } catch (e) {
        broken = true;
        throw this.translate(e, what);
      }
      const out = await fn(client);
      try {
        await client.query({ text: "COMMIT", query_timeout: QUERY_TIMEOUT_MS } as pg.QueryConfig);
      } catch (e) {
        broken = true;
        throw this.translate(e, `${what} (committing)`);
      }
      return out;
    } catch (e) {
      // a connection that failed or stopped answering is not asked to roll back (that would wait again):
      // it is closed, and the server rolls the transaction back and releases the lock
      if (e instanceof PkiError && e.code === "STORE_UNAVAILABLE") broken = true;
      if (!broken) await client.query({ text: "ROLLBACK", query_timeout: 5_000 } as pg.QueryConfig).catch(() => (broken = true));
      throw lost !== undefined && !(e instanceof PkiError) ? this.translate(lost, what) : e;
    } finally {
      client.off("error", onError);
      // a connection in an unknown state is closed, not returned to the pool
      client.release(broken || lost !== undefined ? true : undefined);
    }
  }

  async exists(): Promise<boolean> {
    const r = await this.q<{ n: string }>("looking for the CA", "SELECT count(*) AS n FROM pki_documents WHERE name IN ($1, $2)", [DOC.settings, DOC.caCert]);
    return Number(r.rows[0]?.n) === 2;
  }

  async locked<T>(command: string, fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.transaction(command, LOCK_SQL, (client) => fn(new PgTx(client, (e, what) => this.translate(e, what), this.location)));
  }

  async create(change: Change): Promise<void> {
    await this.transaction("creating the CA", LOCK_SQL, async (client) => {
      const tx = new PgTx(client, (e, what) => this.translate(e, what), this.location);
      const r = await client.query<{ docs: string; certs: string }>("SELECT (SELECT count(*) FROM pki_documents) AS docs, (SELECT count(*) FROM pki_certificates) AS certs");
      const row = r.rows[0]!;
      if (Number(row.docs) || Number(row.certs)) {
        throw new PkiError("CA_EXISTS", `${this.location} already holds a CA (${row.docs} documents, ${row.certs} certificates); nothing changed`);
      }
      await tx.commit(change);
    });
  }

  async audit(records: readonly Record<string, unknown>[]): Promise<void> {
    if (!records.length || this.closed) return;
    try {
      // each line carries its time, as audit.log's lines do (a record's own time wins): an exported audit.log reads the same
      const time = new Date().toISOString();
      await this.pool.query({ text: "INSERT INTO pki_audit (line) SELECT unnest($1::text[])", values: [records.map((r) => JSON.stringify({ time, ...r }))], query_timeout: QUERY_TIMEOUT_MS } as pg.QueryConfig);
    } catch {
      // the audit log never fails a command whose change is committed (the directory store: same)
    }
  }

  /** The audit log as audit.log holds it: one JSON line per record, in order (pki store export). */
  async auditText(): Promise<string> {
    const r = await this.q<{ text: string | null }>("reading the audit log", "SELECT string_agg(line, E'\\n' ORDER BY id) || E'\\n' AS text FROM pki_audit", [], BULK_QUERY_TIMEOUT_MS);
    return r.rows[0]?.text ?? "";
  }

  async generation(): Promise<string> {
    const r = await this.q<{ g: string }>("reading the generation", "SELECT generation::text AS g FROM pki_state WHERE id = 1");
    return r.rows[0]?.g ?? "0";
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // a server that stopped answering never acknowledges the goodbye: after 2 s the sockets are cut
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      this.pool.end().then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), 2_000);
      }),
    ]);
    clearTimeout(timer);
    void ended;
    for (const c of this.clients) (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }

  /** Any failure of the database as one line, without the password. */
  translate(e: unknown, what: string): PkiError {
    if (e instanceof PkiError) return e;
    const err = e as { code?: string; message?: string; constraint?: string; detail?: string };
    const raw = String(err?.message ?? e).split("\n")[0]!;
    const msg = this.scrub(raw);
    const at = this.location;
    const code = err?.code ?? "";
    let out: PkiError;
    const unreadable = urlFileError(e, at);
    if (unreadable) {
      out = unreadable;
    } else if (code === "23505") {
      const serial = /\(serial\)=\(([0-9A-F]+)\)/.exec(err.detail ?? "")?.[1];
      const isSerial = err.constraint === "pki_certificates_serial_unique" || err.constraint === "pki_certificate_pems_pkey";
      out = new PkiError("STORE_CONFLICT", `${what}: ${isSerial ? `serial ${serial ?? "?"} is already recorded (a concurrent issuance drew it)` : msg}; nothing was committed, run the command again`);
    } else if (code === "55P03") {
      out = new PkiError("LOCK_TIMEOUT", `${what}: another pki process held the CA's lock in ${at} for more than ${Math.round(lockTimeoutMs() / 1000)} s (PKI_LOCK_TIMEOUT); nothing changed`);
    } else if (code === "28000" && /user name/i.test(raw)) {
      out = new PkiError("STORE_UNAVAILABLE", `${at} refused the login (${msg}): give the database user in the URL (postgres://USER@host/database) or in PGUSER`);
    } else if (code === "28P01" || code === "28000") {
      out = new PkiError("STORE_UNAVAILABLE", `${at} refused the login (${msg}): ${pgpassWarning ? `${pgpassWarning} (libpq ignores it too); ` : ""}set the password in PGPASSWORD, ~/.pgpass (mode 0600) or PKI_STORE, never on the command line`);
    } else if (/client password must be a string|SASL|password authentication/i.test(raw)) {
      out = new PkiError("STORE_UNAVAILABLE", pgpassWarning ? `${at} asks for a password and none was used: ${pgpassWarning}, so it was ignored (as libpq does): chmod 600 it` : `${at} asks for a password and none was given: set it in PGPASSWORD, ~/.pgpass (mode 0600) or PKI_STORE`);
    } else if (/does not support SSL/i.test(raw)) {
      out = new PkiError("STORE_UNAVAILABLE", `${what}: ${at} does not offer TLS (${msg}): turn ssl on in its postgresql.conf, or connect with sslmode=disable on a network you trust; nothing was committed`);
    } else if (code === "3D000") {
      out = new PkiError("STORE_UNAVAILABLE", `${msg} at ${at}: create it first (createdb)`);
    } else if (code === "3F000") {
      out = new PkiError("STORE_UNAVAILABLE", `${what}: ${msg} at ${at}: the schema named by search_path must exist (CREATE SCHEMA ... AUTHORIZATION <user>)`);
    } else if (code === "42501") {
      out = new PkiError("STORE_UNAVAILABLE", `${what}: the database user may not do this (${msg}); grant it the rights on ${at}`);
    } else if (code === "57014") {
      out = new PkiError("STORE_UNAVAILABLE", `${what}: ${at} did not finish in time (${msg}); nothing was committed`);
    } else if (code !== "" && !/^[0-9A-Z]{5}$/.test(code) && /CERT|SIGNATURE|ISSUER|TLS|SSL/.test(code)) {
      // node's TLS verdict on the server's certificate (not a SQLSTATE)
      const hint = /CERT|SIGNATURE|ISSUER/.test(code) ? ": trust the server's CA with sslrootcert=/path/ca.crt in the URL (or NODE_EXTRA_CA_CERTS)" : "";
      out = new PkiError("STORE_UNAVAILABLE", `${what}: cannot use the PostgreSQL store at ${at} over TLS: ${msg} (${code})${hint}; nothing was committed`);
    } else if (code.startsWith("08") || code.startsWith("57P") || code === "53300" || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE|timeout|terminated|Connection|closed|ENOENT/i.test(raw)) {
      const hint = /ECONNREFUSED|ENOENT/.test(raw) ? ": is the server running, on that host and port?" : /ENOTFOUND|EAI_AGAIN/.test(raw) ? ": check the host name in the URL" : "";
      out = new PkiError("STORE_UNAVAILABLE", `${what}: cannot use the PostgreSQL store at ${at}: ${msg}${hint}; nothing was committed`);
    } else {
      out = new PkiError("STORE_UNAVAILABLE", `${what}: the PostgreSQL store at ${at} failed: ${msg}${code ? ` (SQLSTATE ${code})` : ""}; nothing was committed`);
    }
    return out;
  }

  private scrub(s: string): string {
    let out = s.replace(/[\r\n]+/g, " ");
    if (this.password) out = out.split(this.password).join("***");
    return out;
  }
}

/** Open (and bring its schema up to date) the CA store in the PostgreSQL database at url. */
export async function openPgStore(url: string): Promise<CaStore> {
  return PgStore.open(url);
}
