/**
 * Where the CA's state lives, behind one interface (issue #9). Two
 * implementations: the directory (store/dir-store.ts, the default, readable
 * by `openssl ca`) and PostgreSQL (store/pg-store.ts, `--store postgres://`).
 * src/ca/ is the only caller; commands never see a store's files.
 *
 * The state is three things:
 *
 * - documents: whole blobs named by their path relative to a CA directory
 *   (DocName below): pki.json, ca.crt, private/ca.key (always the encrypted
 *   PEM, or absent when the key is on a token), crlnumber, crl.pem,
 *   ca-clients.crt, nginx-allow.map, parent.crt, parent-crl.pem,
 *   crl-chain.pem, ca-chain.crt, profiles/<name>.json, and the released
 *   outputs of `pki issue`: issued/<name>.crt, issued/<name>.chain.crt,
 *   private/<name>.key. The directory store maps a name to that file; the
 *   database keeps it in a row.
 * - certificate records: one per serial, the `openssl ca` index line
 *   (IndexEntry), its meta (profile, issued name) and the certificate PEM
 *   (certs/<SERIAL>.pem). Records are only ever added or changed in status
 *   (revocation); a serial is unique (the directory checks under its lock,
 *   the database by constraint).
 * - the audit log: append-only JSON records, never a secret.
 *
 * Concurrency is the store's own: every change runs in locked(), which holds
 * the directory lock, or a database transaction that holds an advisory lock,
 * for the whole read-decide-commit. Reads through the StoreTx see the state as
 * of the lock and the transaction's own commits; reads through the CaStore
 * itself are unlocked snapshots (list, show, serve).
 *
 * A commit is all or nothing, and in this order: the CRL number is advanced
 * and the records are committed before any released document or derived
 * document (crl.pem, the bundle) is written; a certificate is recorded before
 * it is released. The directory does this with staged files and one atomic
 * rename of index.txt (see ca/authority.ts' top comment); the database does it
 * in one transaction.
 */
import type { IndexEntry, MetaEntry } from "../core/index-format.js";

/**
 * A document's name: a relative path inside a CA directory, "/"-separated,
 * no "..", no leading "/" (isDocName). The well-known ones are in DOC.
 */
export type DocName = string;

export const DOC = {
  settings: "pki.json",
  caCert: "ca.crt",
  caKey: "private/ca.key",
  crlNumber: "crlnumber",
  crl: "crl.pem",
  /** what crl.pem was built from (core/crl-source.ts): lets the next CRL skip re-reading it */
  crlSource: "crl-source.json",
  bundle: "ca-clients.crt",
  allowMap: "nginx-allow.map",
  parentCert: "parent.crt",
  parentCrl: "parent-crl.pem",
  crlChain: "crl-chain.pem",
  caChain: "ca-chain.crt",
  profile: (name: string) => `profiles/${name}.json`,
  issuedCert: (name: string) => `issued/${name}.crt`,
  issuedChain: (name: string) => `issued/${name}.chain.crt`,
  issuedKey: (name: string) => `private/${name}.key`,
} as const;

/** The only directories a document may live in (besides the top level). */
export const DOC_DIRS = ["private", "profiles", "issued"] as const;

export function isDocName(name: string): boolean {
  const parts = name.split("/");
  if (parts.length > 2) return false;
  if (parts.length === 2 && !(DOC_DIRS as readonly string[]).includes(parts[0]!)) return false;
  const leaf = parts[parts.length - 1]!;
  return leaf !== "" && leaf !== "." && leaf !== ".." && !leaf.startsWith(".") && !/[\0\\]/.test(leaf);
}

/** One document written by a commit; data null removes it. Mode: 0600 for keys, else 0644 (the directory store applies it). */
export interface DocWrite {
  name: DocName;
  data: string | Uint8Array | null;
  mode?: number;
  /** refuse to replace an existing document (a name taken meanwhile) */
  exclusive?: boolean;
}

/** A new certificate record: its index line, its meta, its PEM. entry.file is "unknown" as openssl writes it. */
export interface CertRecord {
  entry: IndexEntry;
  pem: string;
  profile?: string;
  name?: string;
}

/**
 * One change of CA state, applied whole by StoreTx.commit (see the order in
 * the top comment).
 */
export interface Change {
  /** the next CRL number to store (written with the records, before any CRL that used the previous one is published) */
  crlNumber?: bigint;
  /** new certificate records */
  add?: readonly CertRecord[];
  /** existing records in their new state (a revocation; doctor's repair): matched by serial, which must exist */
  update?: readonly IndexEntry[];
  /** documents of the CA's own state (pki.json, crl.pem, ca-clients.crt, nginx-allow.map, parent-crl.pem, crl-chain.pem, ...) */
  docs?: readonly DocWrite[];
  /** released outputs (issued/<name>.crt, its chain, private/<name>.key): written only once the records are committed */
  release?: readonly DocWrite[];
}

export interface StoreReader {
  /** a document's bytes, or null when it does not exist */
  read(name: DocName): Promise<Buffer | null>;
  /** a document's size and its last `n` bytes (crl.pem's identity: core/crl-source.ts), or null when it does not exist */
  readTail(name: DocName, n: number): Promise<{ size: number; tail: Buffer } | null>;
  /** the documents under one of DOC_DIRS ("profiles"), as full DocNames, sorted */
  list(dir: (typeof DOC_DIRS)[number]): Promise<DocName[]>;
  /**
   * Every record's index line as `openssl ca` writes index.txt (LF, no BOM),
   * in issuance order; an empty buffer when there is none. The CRL builder and
   * pki serve scan this text without parsing it into objects.
   */
  indexText(): Promise<Buffer>;
  /** profile and name of each serial (index.meta) */
  meta(): Promise<Map<string, MetaEntry>>;
  /** certs/<SERIAL>.pem, or null */
  certPem(serial: string): Promise<string | null>;
}

export interface StoreTx extends StoreReader {
  /** Apply one change (may be called more than once; each call is whole). */
  commit(change: Change): Promise<void>;
  /**
   * Start writing the store's own copies of records that the next commit()
   * of this transaction adds first, in this order (a bulk issuance calls it
   * as each certificate is signed, so that the copies are written while the
   * next ones are signed). Nothing is recorded before that commit; copies no
   * commit takes are removed when the transaction ends. A store with
   * nothing to write ahead leaves it out.
   */
  prepare?(records: readonly CertRecord[]): void;
}

export interface CaStore extends StoreReader {
  readonly kind: "dir" | "postgres";
  /** what to show a user: the directory's path, or the database URL without its password */
  readonly location: string;
  /** is there a CA here at all (pki.json and ca.crt)? */
  exists(): Promise<boolean>;
  /**
   * Run fn holding the store's write lock, for one read-decide-commit. The
   * database store commits its transaction when fn returns and rolls it back
   * when fn throws; the directory store's commits are already durable.
   */
  locked<T>(command: string, fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Make a new CA from nothing (init, import, store migrate): refused when one exists; all or nothing. */
  create(change: Change): Promise<void>;
  /** Append audit records (after the change they describe; a failure here never fails the command). */
  audit(records: readonly Record<string, unknown>[]): Promise<void>;
  /** A value that changes whenever records, the CRL or the CA change (pki serve polls it). */
  generation(): Promise<string>;
  close(): Promise<void>;
}

/**
 * A reader that also sees records not committed yet (an issuance about to
 * commit): what is derived from the index as the commit will leave it (the
 * bundle, the nginx allow-list) must list the new certificates too.
 */
export function withRecords(reader: StoreReader, add: readonly CertRecord[]): StoreReader {
  if (add.length === 0) return reader;
  const pems = new Map(add.map((r) => [r.entry.serial, r.pem]));
  return {
    read: (name) => reader.read(name),
    readTail: (name, n) => reader.readTail(name, n),
    list: (dir) => reader.list(dir),
    indexText: () => reader.indexText(),
    async meta() {
      const m = new Map(await reader.meta());
      for (const r of add) if (r.profile !== undefined) m.set(r.entry.serial, { serial: r.entry.serial, profile: r.profile, ...(r.name !== undefined ? { name: r.name } : {}) });
      return m;
    },
    async certPem(serial) {
      return pems.get(serial) ?? reader.certPem(serial);
    },
  };
}
