// The PostgreSQL store (src/store/pg-store.ts) against a real, throwaway
// PostgreSQL cluster: the CaStore contract (documents, records, audit, one
// change whole, locked read-decide-commit), schema versions, and the
// database's failures as one-line errors that never show the password.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatIndex, type IndexEntry } from "../../src/core/index-format.js";
import { PkiError } from "../../src/core/errors.js";
import { openPgStore, redactUrl, SCHEMA_VERSION, urlHasPassword } from "../../src/store/pg-store.js";
import { DOC, type CaStore, type CertRecord } from "../../src/store/store.js";
import { PgCluster, SECRET_PASSWORD, SECRET_ROLE } from "./pg-lib.js";

let pg: PgCluster;
beforeAll(async () => {
  pg = await PgCluster.start();
});
afterAll(() => pg?.stop());

const serialOf = (i: number, tag = 0) => (0x40 + tag).toString(16).toUpperCase() + i.toString(16).toUpperCase().padStart(14, "0");
function record(i: number, opts: { tag?: number; name?: string; profile?: string } = {}): CertRecord {
  const entry: IndexEntry = { status: "V", expires: new Date(Date.UTC(2030, 0, 1, 0, 0, i % 60)), serial: serialOf(i, opts.tag), file: "unknown", subject: `/O=Test/CN=host-${i}.acme.lan` };
  return { entry, pem: `-----BEGIN CERTIFICATE-----\nMII${i}\n-----END CERTIFICATE-----\n`, profile: opts.profile ?? "client", name: opts.name };
}

async function errorOf(p: Promise<unknown>): Promise<PkiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PkiError);
    return e as PkiError;
  }
  throw new Error("expected a failure");
}

function expectOneLine(e: PkiError, code: string, pattern?: RegExp) {
  expect(e.code, e.message).toBe(code);
  expect(e.message).not.toMatch(/\n/);
  expect(e.message).not.toContain(SECRET_PASSWORD);
  if (pattern) expect(e.message).toMatch(pattern);
}

/** Everything a store holds, for "nothing changed" checks. */
async function state(s: CaStore) {
  const docs: Record<string, string> = {};
  for (const n of [DOC.settings, DOC.caCert, DOC.caKey, DOC.crlNumber, DOC.crl]) docs[n] = (await s.read(n))?.toString("base64") ?? "-";
  for (const d of ["private", "profiles", "issued"] as const) for (const n of await s.list(d)) docs[n] = (await s.read(n))!.toString("base64");
  return { docs, index: (await s.indexText()).toString(), meta: [...(await s.meta()).values()], generation: await s.generation() };
}

async function newCa(): Promise<{ url: string; s: CaStore }> {
  const url = await pg.createDb();
  const s = await openPgStore(url);
  await s.create({ crlNumber: 1n, docs: [{ name: DOC.settings, data: '{"subject":"CN=Test"}\n' }, { name: DOC.caCert, data: "CA CERT\n" }, { name: DOC.caKey, data: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIG...\n-----END ENCRYPTED PRIVATE KEY-----\n", mode: 0o600 }] });
  return { url, s };
}

/** A new CA and two stores open on it, `a` (the reader under test) and `b`; both closed after fn. */
async function twoStores(fn: (a: CaStore, b: CaStore) => Promise<void>): Promise<void> {
  const { url, s } = await newCa();
  await s.close();
  const a = await openPgStore(url);
  const b = await openPgStore(url);
  try {
    await fn(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

describe("PostgreSQL store: the CaStore contract", () => {
  it("creates a CA once, keeps documents, records and meta, and reads them back as the directory would", async () => {
    const url = await pg.createDb();
    const s = await openPgStore(url);
    try {
      expect(s.kind).toBe("postgres");
      expect(await s.exists()).toBe(false);
      expect((await s.indexText()).length).toBe(0);
      const g0 = await s.generation();
      await s.create({ crlNumber: 1n, docs: [{ name: DOC.settings, data: "{}\n" }, { name: DOC.caCert, data: "CA\n" }, { name: "profiles/web.json", data: "{}" }], add: [record(1), record(2, { name: "alpha" })] });
      expect(await s.exists()).toBe(true);
      expect(await s.generation()).not.toBe(g0);
      expect((await s.read(DOC.crlNumber))!.toString()).toBe("01\n");
      expect((await s.read("pki.json"))!.toString()).toBe("{}\n");
      expect(await s.read("nothing.here")).toBeNull();
      expect(await s.list("profiles")).toEqual(["profiles/web.json"]);
      expect((await s.indexText()).toString()).toBe(formatIndex([record(1).entry, record(2).entry]));
      expect(await s.certPem(serialOf(2))).toBe(record(2).pem);
      expect(await s.certPem("00")).toBeNull();
      const meta = await s.meta();
      expect(meta.get(serialOf(2))).toEqual({ serial: serialOf(2), profile: "client", name: "alpha" });
      expect(meta.get(serialOf(1))?.name).toBeUndefined();

      // a second create on the same database: refused, nothing changed
      const before = await state(s);
      const e = await errorOf(s.create({ docs: [{ name: DOC.settings, data: "other" }], add: [record(9)] }));
      expectOneLine(e, "CA_EXISTS");
      expect(await state(s)).toEqual(before);
    } finally {
      await s.close();
    }
  });

  it("commits a change whole: records, revocation, documents and released outputs together; a throw after a commit rolls the transaction back", async () => {
    const { s } = await newCa();
    try {
      await s.locked("issue", async (tx) => {
        await tx.commit({ add: [record(1, { name: "web" })], release: [{ name: DOC.issuedCert("web"), data: "LEAF\n", exclusive: true }, { name: DOC.issuedKey("web"), data: "KEY\n", mode: 0o600, exclusive: true }] });
        // the transaction's own commits are visible to its reads
        expect((await tx.indexText()).toString()).toContain(serialOf(1));
        expect((await tx.read(DOC.issuedCert("web")))!.toString()).toBe("LEAF\n");
      });
      expect(await s.list("issued")).toEqual(["issued/web.crt"]);
      expect(await s.list("private")).toEqual(["private/ca.key", "private/web.key"]);

      const revoked: IndexEntry = { ...record(1).entry, status: "R", revokedAt: new Date(Date.UTC(2026, 11, 2, 3, 4, 5)), reason: "keyCompromise" };
      await s.locked("revoke", async (tx) => {
        await tx.commit({ update: [revoked], crlNumber: 2n, docs: [{ name: DOC.crl, data: "CRL 1\n" }] });
      });
      expect((await s.indexText()).toString()).toBe(formatIndex([revoked]));
      expect((await s.read(DOC.crlNumber))!.toString()).toBe("02\n");

      // fn throws after its commit: the database store rolls the whole transaction back
      const before = await state(s);
      const e = await errorOf(
        s.locked("issue", async (tx) => {
          await tx.commit({ add: [record(2)], crlNumber: 3n, docs: [{ name: DOC.crl, data: "CRL 2\n" }] });
          throw new PkiError("BAD_INPUT", "refused after the commit");
        }),
      );
      expect(e.code).toBe("BAD_INPUT");
      expect(await state(s)).toEqual(before);

      // a change refused part-way (an exclusive name taken) applies none of itself and leaves the transaction usable
      await s.locked("issue", async (tx) => {
        const e2 = await errorOf(tx.commit({ add: [record(3)], release: [{ name: DOC.issuedCert("web"), data: "OTHER\n", exclusive: true }] }));
        expectOneLine(e2, "NAME_EXISTS", /issued\/web\.crt/);
        expect((await tx.indexText()).toString()).not.toContain(serialOf(3));
        await tx.commit({ add: [record(4)] });
      });
      expect((await s.indexText()).toString()).toBe(formatIndex([revoked, record(4).entry]));
      expect((await s.read(DOC.issuedCert("web")))!.toString()).toBe("LEAF\n");

      // an update of a serial that does not exist: refused, nothing changed
      const b2 = await state(s);
      const e3 = await errorOf(s.locked("revoke", (tx) => tx.commit({ update: [{ ...revoked, serial: "0BAD" }] })));
      expectOneLine(e3, "NOT_FOUND", /0BAD/);
      expect(await state(s)).toEqual(b2);

      // removing a document
      await s.locked("x", (tx) => tx.commit({ docs: [{ name: DOC.crl, data: null }] }));
      expect(await s.read(DOC.crl)).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("never takes an unencrypted CA key: refused, nothing created", async () => {
    const url = await pg.createDb();
    const s = await openPgStore(url);
    try {
      const e = await errorOf(s.create({ docs: [{ name: DOC.settings, data: "{}" }, { name: DOC.caCert, data: "CA" }, { name: DOC.caKey, data: "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n" }] }));
      expectOneLine(e, "USAGE", /must be encrypted/);
      expect(await s.exists()).toBe(false);
      expect(await s.read(DOC.settings)).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("keeps the audit log in order, as JSON lines and as jsonb", async () => {
    const { url, s } = await newCa();
    try {
      await s.audit([{ time: "2026-12-02T00:00:00.000Z", command: "issue", serial: "01", outcome: "ok" }]);
      await s.audit([{ time: "2026-12-02T00:00:01.000Z", command: "revoke", serial: "01", outcome: "ok" }]);
      const text = await (s as unknown as { auditText(): Promise<string> }).auditText();
      expect(text.split("\n").filter(Boolean).map((l) => JSON.parse(l).command)).toEqual(["issue", "revoke"]);
      const rows = await pg.sql<{ c: string }>("SELECT record->>'command' AS c FROM pki_audit ORDER BY id", new URL(url).pathname.slice(1));
      expect(rows.map((r) => r.c)).toEqual(["issue", "revoke"]);
    } finally {
      await s.close();
    }
  });

  it("serializes read-decide-commit across connections: 4 stores x 15 increments of the CRL number, each number used once", async () => {
    const { url, s } = await newCa();
    const stores = await Promise.all([1, 2, 3, 4].map(() => openPgStore(url)));
    try {
      const used: bigint[] = [];
      await Promise.all(
        stores.map(async (st, k) => {
          for (let i = 0; i < 15; i++) {
            await st.locked("crl", async (tx) => {
              const n = BigInt("0x" + (await tx.read(DOC.crlNumber))!.toString().trim());
              await new Promise((r) => setTimeout(r, 1));
              used.push(n);
              await tx.commit({ crlNumber: n + 1n, add: [record(i, { tag: k + 1 })] });
            });
          }
        }),
      );
      expect(used).toHaveLength(60);
      expect(new Set(used).size).toBe(60);
      expect(used).toEqual([...used].sort((a, b) => (a < b ? -1 : 1)));
      expect((await s.read(DOC.crlNumber))!.toString()).toBe("3D\n");
      expect((await s.indexText()).toString().split("\n").filter(Boolean)).toHaveLength(60);
    } finally {
      await Promise.all(stores.map((x) => x.close()));
      await s.close();
    }
  });

  it("refuses a serial that is already recorded (by constraint), nothing committed", async () => {
    const { s } = await newCa();
    try {
      await s.locked("issue", (tx) => tx.commit({ add: [record(1)] }));
      const before = await state(s);
      const e = await errorOf(s.locked("issue", (tx) => tx.commit({ add: [record(2), record(1)], docs: [{ name: DOC.crl, data: "X" }] })));
      expectOneLine(e, "STORE_CONFLICT", new RegExp(`serial ${serialOf(1)} is already recorded.*run the command again`));
      expect(await state(s)).toEqual(before);
    } finally {
      await s.close();
    }
  });

  it("reads ahead when it opens what a command reads before its lock, each once: the next read asks the database again", async () => {
    await twoStores(async (a, b) => {
      await b.locked("test", (tx) => tx.commit({ docs: [{ name: DOC.settings, data: '{"v":2}\n' }, { name: "profiles/x.json", data: "{}" }] }));
      // the first reads: the snapshot of the moment a opened (unlocked reads, as they always were)
      expect((await a.read(DOC.settings))!.toString()).toBe('{"subject":"CN=Test"}\n');
      expect(await a.list("profiles")).toEqual([]);
      expect(await a.read(DOC.parentCert)).toBeNull();
      // then the database again: a long-lived reader (pki serve) never keeps an old document
      expect((await a.read(DOC.settings))!.toString()).toBe('{"v":2}\n');
      expect(await a.list("profiles")).toEqual(["profiles/x.json"]);
      // a transaction never reads from what was read ahead
      await a.locked("test", async (tx) => expect((await tx.read(DOC.caCert))!.toString()).toBe("CA CERT\n"));
    });
    // pg loaded with a navigator stand-in (store/pg-navigator.ts) that is gone once it is loaded
    expect("navigator" in globalThis).toBe(Number(process.versions.node.split(".")[0]) >= 21);
  });

  it("what it read ahead answers only a command's start: a first read seconds later (pki serve renewing its responder) asks the database", async () => {
    await twoStores(async (a, b) => {
      const key = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nNEW\n-----END ENCRYPTED PRIVATE KEY-----\n";
      await b.locked("test", (tx) => tx.commit({ docs: [{ name: DOC.caKey, data: key, mode: 0o600 }, { name: "profiles/y.json", data: "{}" }] }));
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await a.read(DOC.caKey))!.toString()).toBe(key);
      expect(await a.list("profiles")).toEqual(["profiles/y.json"]);
    });
  });

  it("reads and writes a large index (20,000 records, UTF-8 subjects) as index.txt bytes, in issuance order", async () => {
    const { s } = await newCa();
    try {
      const recs = Array.from({ length: 20_000 }, (_, i) => record(i + 1, { name: i % 2 ? `n${i}` : undefined }));
      // multi-byte subjects (index.txt is UTF-8): the bytes come back as stored, not re-encoded
      for (const r of recs.filter((_, i) => i % 7 === 0)) r.entry.subject = `/O=Zoë Ångström/CN=服务器-${r.entry.serial}`;
      // issuance order, not serial order: the last records have the smallest serials
      for (const r of recs.slice(-3)) r.entry.serial = "0" + r.entry.serial.slice(1);
      await s.locked("bulk", (tx) => tx.commit({ add: recs }));
      const bytes = await s.indexText();
      expect(bytes.equals(Buffer.from(formatIndex(recs.map((r) => r.entry)), "utf8"))).toBe(true);
      expect((await s.meta()).size).toBe(20_000);
    } finally {
      await s.close();
    }
  });
});

describe("PostgreSQL store: schema versions", () => {
  it("applies its migrations on first use and records the version", async () => {
    const url = await pg.createDb();
    const s = await openPgStore(url);
    await s.close();
    const rows = await pg.sql<{ version: number }>("SELECT version FROM pki_schema ORDER BY version", new URL(url).pathname.slice(1));
    expect(rows.map((r) => r.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    // opening again changes nothing
    const s2 = await openPgStore(url);
    await s2.close();
    expect(await pg.sql("SELECT version FROM pki_schema", new URL(url).pathname.slice(1))).toHaveLength(SCHEMA_VERSION);
  });

  it("refuses a schema from the future with one line naming both versions, and changes nothing", async () => {
    const { url, s } = await newCa();
    await s.close();
    const db = new URL(url).pathname.slice(1);
    await pg.sql("INSERT INTO pki_schema (version, pki) VALUES (99, 'pki from the future')", db);
    const e = await errorOf(openPgStore(url));
    expectOneLine(e, "STORE_VERSION", new RegExp(`schema version 99.*this pki knows \\(${SCHEMA_VERSION}\\)`));
    expect(await pg.sql("SELECT max(version) AS v FROM pki_schema", db)).toEqual([{ v: 99 }]);
  });
});

describe("PostgreSQL store: the database failing", () => {
  const withEnv = async <T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> => {
    const old: Record<string, string | undefined> = {};
    for (const k of Object.keys(env)) {
      old[k] = process.env[k];
      if (env[k] === undefined) delete process.env[k];
      else process.env[k] = env[k];
    }
    try {
      return await fn();
    } finally {
      for (const k of Object.keys(old)) {
        if (old[k] === undefined) delete process.env[k];
        else process.env[k] = old[k];
      }
    }
  };

  it("never shows the password of a URL: location and urlHasPassword", () => {
    const u = `postgres://${SECRET_ROLE}:${SECRET_PASSWORD}@db.acme.lan:5432/pki?sslmode=require`;
    expect(urlHasPassword(u)).toBe(true);
    expect(redactUrl(u)).toBe("postgres://secret@db.acme.lan:5432/pki?sslmode=require");
    expect(urlHasPassword("postgres://pki@db/pki?password=x")).toBe(true);
    expect(redactUrl("postgres://pki@db/pki?password=x")).not.toContain("=x");
    expect(urlHasPassword("postgres://pki@db/pki")).toBe(false);
  });

  it("a wrong password: one line within 15 s, without the password; the right one (PGPASSWORD) works", async () => {
    const url = (await pg.createDb()).replace("//pki@", `//${SECRET_ROLE}@`);
    const t0 = Date.now();
    const e = await withEnv({ PGPASSWORD: "wrong-" + SECRET_PASSWORD }, () => errorOf(openPgStore(url)));
    expect(Date.now() - t0).toBeLessThan(15_000);
    expectOneLine(e, "STORE_UNAVAILABLE", /refused the login.*PGPASSWORD/);
    expect(e.message).not.toContain("wrong-");
    const e2 = await withEnv({ PGPASSWORD: undefined, PGPASSFILE: "/nonexistent" }, () => errorOf(openPgStore(url)));
    expectOneLine(e2, "STORE_UNAVAILABLE", /password/);
    // a password inside the URL (PKI_STORE may carry one): wrong, and not echoed
    const e3 = await errorOf(openPgStore(url.replace(`//${SECRET_ROLE}@`, `//${SECRET_ROLE}:${SECRET_PASSWORD}x@`)));
    expectOneLine(e3, "STORE_UNAVAILABLE");
    expect(e3.message).not.toContain(SECRET_PASSWORD);
    const s = await withEnv({ PGPASSWORD: SECRET_PASSWORD }, () => openPgStore(url));
    expect(s.location).not.toContain(SECRET_PASSWORD);
    await s.close();
  });

  it("an unreachable database (nothing listening; a missing database): one line within 15 s", async () => {
    const t0 = Date.now();
    const e = await errorOf(openPgStore(`postgres://pki@127.0.0.1:1/none`));
    expect(Date.now() - t0).toBeLessThan(15_000);
    expectOneLine(e, "STORE_UNAVAILABLE", /127\.0\.0\.1:1/);
    const e2 = await errorOf(openPgStore(pg.url("no_such_db")));
    expectOneLine(e2, "STORE_UNAVAILABLE", /no_such_db.*createdb/);
  });

  it("a server that stops answering in the middle of a change: one line within 15 s, nothing half-written", async () => {
    const { url, s } = await newCa();
    const db = new URL(url).pathname.slice(1);
    let stopped = 0;
    try {
      const before = await state(s);
      const t0 = Date.now();
      const e = await errorOf(
        s.locked("issue", async (tx) => {
          await tx.commit({ add: [record(1)] });
          const [{ pid }] = await pg.sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", "postgres", [db]);
          stopped = pid;
          process.kill(pid, "SIGSTOP"); // the backend hangs: no answer, no closed socket
          await tx.commit({ crlNumber: 9n });
        }),
      );
      expect(Date.now() - t0).toBeLessThan(15_000);
      expectOneLine(e, "STORE_UNAVAILABLE", /nothing was committed/);
      process.kill(stopped, "SIGCONT");
      stopped = 0;
      // the server rolls the abandoned transaction back once it notices the closed connection
      const t1 = Date.now();
      while (Date.now() - t1 < 10_000 && (await pg.sql("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", "postgres", [db])).length) await new Promise((r) => setTimeout(r, 50));
      expect(await state(s)).toEqual(before);
    } finally {
      if (stopped) process.kill(stopped, "SIGCONT");
      await s.close();
    }
  });

  it("a connection killed while the index is read (binary COPY): one line, nothing half-written, the lock released", async () => {
    const { url, s } = await newCa();
    const db = new URL(url).pathname.slice(1);
    try {
      await s.locked("bulk", (tx) => tx.commit({ add: Array.from({ length: 5_000 }, (_, i) => record(i + 1)) }));
      const before = await state(s);
      const e = await errorOf(
        s.locked("crl", async (tx) => {
          await tx.commit({ crlNumber: 5n });
          const [{ pid }] = await pg.sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", "postgres", [db]);
          await pg.sql("SELECT pg_terminate_backend($1)", "postgres", [pid]);
          await tx.indexText();
        }),
      );
      expectOneLine(e, "STORE_UNAVAILABLE", /reading the certificate index/);
      expect(await state(s)).toEqual(before);
      await s.locked("crl", (tx) => tx.commit({ crlNumber: 6n }));
      expect((await s.indexText()).toString()).toBe(before.index);
    } finally {
      await s.close();
    }
  });

  it("a connection killed in the middle of a change: one line, nothing half-written, the lock released", async () => {
    const { url, s } = await newCa();
    const db = new URL(url).pathname.slice(1);
    try {
      const before = await state(s);
      const t0 = Date.now();
      const e = await errorOf(
        s.locked("issue", async (tx) => {
          await tx.commit({ add: [record(1)], crlNumber: 5n });
          const [{ pid }] = await pg.sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", "postgres", [db]);
          await pg.sql("SELECT pg_terminate_backend($1)", "postgres", [pid]);
          await tx.commit({ release: [{ name: DOC.issuedCert("x"), data: "LEAF" }] });
        }),
      );
      expect(Date.now() - t0).toBeLessThan(15_000);
      expectOneLine(e, "STORE_UNAVAILABLE", /nothing was committed/);
      expect(await state(s)).toEqual(before);
      // the lock died with the connection: the next change goes through at once
      await s.locked("issue", (tx) => tx.commit({ add: [record(2)] }));
      expect((await s.indexText()).toString()).toBe(formatIndex([record(2).entry]));
    } finally {
      await s.close();
    }
  });
});
