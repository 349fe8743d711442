/**
 * The directory store: a CaStore (store.ts) over a CA directory as
 * `openssl ca` keeps it (README "The CA directory"). Documents are files,
 * the records are index.txt, index.meta and certs/<SERIAL>.pem, the audit
 * log is audit.log; the lock is lock.ts' .lock file, and every write is
 * atomic.ts' staged-and-renamed file.
 *
 * ## The write path (crash safety)
 *
 * StoreTx.commit applies a Change in one order, so that a process killed at
 * any instant leaves a directory the next command can use without manual
 * cleanup:
 *
 *   1. the caller has built and signed everything in memory (nothing on disk yet);
 *   2. stage every new file (certs/<SERIAL>.pem, the released issued/<name>.crt,
 *      <name>.chain.crt, private/<name>.key) in a temporary file, fsync'd
 *      (atomic.ts stageFilesBatch), and put the CA's own copy,
 *      certs/<SERIAL>.pem, in place: nothing is handed out yet (a bulk
 *      issuance has StoreTx.prepare stage the certs/ copies while it signs);
 *   3. append the index.meta lines (profile and name of each serial), whole
 *      or not at all (appendLine truncates back on a short write);
 *   4. replace index.txt (and crlnumber, when the change advances it)
 *      atomically: this rename is the commit point;
 *   5. release: rename issued/<name>.crt, its chain and the key into place.
 *      A certificate is recorded before it is released: a crash never leaves
 *      a certificate (with its key) in issued/ that the index does not know;
 *   6. documents (crl.pem, crl-chain.pem, ca-clients.crt, nginx-allow.map,
 *      pki.json) are written last;
 *   7. after the lock is released, the command appends its audit.log line
 *      (O_APPEND): a crash just before it loses that line, never a record.
 *
 * A step that fails (a full disk) undoes the earlier ones: staged files are
 * removed, certs/<SERIAL>.pem of this change deleted, index.meta cut back.
 *
 * A crash before 4 leaves certificate files without an index line (the
 * certificate was signed but never reported as issued): `pki doctor` reports
 * them and `pki doctor --repair` records them in the index, so that they can
 * be listed and revoked. A crash before 2 completes leaves at most temporary
 * files (.*.tmp), which doctor --repair removes. A crash after 4 but before 6
 * leaves a CRL that is older than the index: doctor reports it, and
 * `pki crl` or `pki doctor --repair` re-signs it. The lock of a killed
 * process is taken over as soon as its pid is gone.
 *
 * test/e2e/crash.test.ts proves this by SIGKILLing `pki issue` at random
 * moments, and at each step boundary named below through PKI_CRASH_AT (a
 * failpoint for tests only: the process kills itself with SIGKILL there).
 *
 * Revocations change index lines in place (core/index-edit.ts): a search for
 * the serial, not a parse of the whole index.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { PkiError } from "../core/errors.js";
import { applyIndexUpdates, appendIndexLines } from "../core/index-edit.js";
import { formatMeta, type MetaEntry } from "../core/index-format.js";
import { formatCrlNumber } from "../core/crl.js";
import { appendLine, ensureDir, ensureParents, joinStaged, stageFilesBatch, startStaging, truncateTo, writeFilesAtomic, type FileWrite, type StagedBatch, type Staging } from "./atomic.js";
import { CaDir, MODE } from "./ca-dir.js";
import { withLock } from "./lock.js";
import { DOC, isDocName, type CaStore, type CertRecord, type Change, type DocName, type DocWrite, type StoreReader, type StoreTx, DOC_DIRS } from "./store.js";

/** The CA's own copy of a record, certs/<SERIAL>.pem: never replaces a file. */
const recordWrite = (d: CaDir) => (r: CertRecord): FileWrite => ({ path: d.certPath(r.entry.serial), data: r.pem, mode: MODE.file, exclusive: true });

/** Failpoint of the write path (see the top comment): PKI_CRASH_AT=<step> kills the process there. Tests only. */
export function crashPoint(step: "built" | "files" | "meta" | "index" | "released" | "crl-number"): void {
  if (process.env.PKI_CRASH_AT === step) process.kill(process.pid, "SIGKILL");
}

class DirReader implements StoreReader {
  constructor(readonly dir: CaDir) {}

  path(name: DocName): string {
    if (!isDocName(name)) throw new PkiError("USAGE", `not a document name: ${name}`, { exitCode: 2 });
    return this.dir.p(...name.split("/"));
  }

  async read(name: DocName): Promise<Buffer | null> {
    const p = this.path(name);
    // a private key that group or others can read is refused, not used (as ssh does)
    if (name.startsWith("private/") && fs.existsSync(p)) this.dir.checkKeyMode(p);
    try {
      return fs.readFileSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return null;
      throw new PkiError("IO_ERROR", `cannot read ${p}: ${code}`);
    }
  }

  async readTail(name: DocName, n: number): Promise<{ size: number; tail: Buffer } | null> {
    const p = this.path(name);
    let fd: number;
    try {
      fd = fs.openSync(p, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return null;
      throw new PkiError("IO_ERROR", `cannot read ${p}: ${code}`);
    }
    try {
      const st = fs.fstatSync(fd);
      // a directory (or a device) where a document belongs: said as such, not read
      if (!st.isFile()) throw new PkiError("IO_ERROR", `cannot read ${p}: it is not a regular file: move it out of the CA directory`);
      const size = st.size;
      const tail = Buffer.alloc(Math.min(n, size));
      const got = fs.readSync(fd, tail, 0, tail.length, size - tail.length);
      return { size, tail: tail.subarray(0, got) };
    } catch (e) {
      if (e instanceof PkiError) throw e;
      throw new PkiError("IO_ERROR", `cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    } finally {
      fs.closeSync(fd);
    }
  }

  async list(dir: (typeof DOC_DIRS)[number]): Promise<DocName[]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir.p(dir));
    } catch {
      return [];
    }
    return names.filter((n) => isDocName(`${dir}/${n}`)).sort().map((n) => `${dir}/${n}`);
  }

  async indexText(): Promise<Buffer> {
    return this.dir.readIndexBuffer();
  }

  async meta(): Promise<Map<string, MetaEntry>> {
    return this.dir.readMeta();
  }

  async certPem(serial: string): Promise<string | null> {
    if (!/^[0-9A-F]+$/.test(serial)) return null;
    try {
      return fs.readFileSync(this.dir.certPath(serial), "utf8");
    } catch {
      return null;
    }
  }
}

class DirTx extends DirReader implements StoreTx {
  /** index.txt as of the lock and this transaction's own commits */
  private index: Buffer | undefined;

  override async indexText(): Promise<Buffer> {
    return (this.index ??= this.dir.readIndexBuffer());
  }

  async commit(change: Change): Promise<void> {
    const d = this.dir;
    const adds = change.add ?? [];
    const updates = change.update ?? [];
    let index = await this.indexText();
    if (updates.length) index = applyIndexUpdates(index, updates);
    if (adds.length) index = appendIndexLines(index, adds.map((a) => a.entry));
    const records: FileWrite[] = adds.map(recordWrite(d));
    const releases = (change.release ?? []).map((w) => this.fileWrite(w));
    const meta = adds.map((r) => formatMeta({ serial: r.entry.serial, profile: r.profile ?? "unknown", name: r.name })).join("");
    // the records prepare() began to stage: the first of this change's
    const early = this.early;
    this.early = undefined;
    let staged: StagedBatch | undefined;
    if (early) {
      if (early.serials.length > adds.length || early.serials.some((s, i) => adds[i]!.entry.serial !== s)) {
        await early.staging.abandon();
        throw new PkiError("INTERNAL", "the records prepared are not the first of the change committed");
      }
      staged = await early.staging.done();
    }
    if (adds.length) crashPoint("built");
    const n = early?.serials.length ?? 0;
    if (n < records.length + releases.length) {
      // step 2 (for what prepare() did not stage yet)
      let rest: StagedBatch;
      try {
        rest = await stageFilesBatch([...records.slice(n), ...releases]);
      } catch (e) {
        staged?.abort();
        throw e;
      }
      staged = staged ? joinStaged(staged, n, rest) : rest;
    }
    let metaBefore = -1;
    if (staged) {
      try {
        staged.commit(0, records.length); // the CA's own copies
        crashPoint("files");
        metaBefore = appendLine(d.metaPath, meta, MODE.file); // step 3
        crashPoint("meta");
      } catch (e) {
        staged.abort();
        throw e;
      }
    }
    const point: FileWrite[] = [];
    if (updates.length || adds.length) point.push({ path: d.indexPath, data: index, mode: MODE.file });
    if (change.crlNumber !== undefined) point.push({ path: d.crlNumberPath, data: formatCrlNumber(change.crlNumber), mode: MODE.file });
    try {
      if (point.length) writeFilesAtomic(point); // step 4: the commit point
    } catch (e) {
      truncateTo(d.metaPath, metaBefore);
      staged?.abort();
      throw e;
    }
    if (updates.length || adds.length) {
      this.index = index;
      d.forgetIndex();
    }
    if (adds.length) crashPoint("index");
    try {
      if (staged) {
        staged.keep(0, records.length); // recorded: a failed release below must not take them back
        if (releases.length) staged.commit(records.length, records.length + releases.length); // step 5: released
        if (adds.length) crashPoint("released");
      }
      if (change.crlNumber !== undefined) crashPoint("crl-number");
      if (change.docs?.length) this.writeDocs(change.docs); // step 6
    } catch (e) {
      throw pastCommitPoint(e);
    }
  }

  /** records staged by prepare() ahead of the commit that adds them (their serials, in order) */
  private early: { staging: Staging; serials: string[] } | undefined;

  prepare(records: readonly CertRecord[]): void {
    // staged on the writer thread while the caller signs the next ones;
    // not checked one by one: the link() of the commit refuses an existing file
    const e = (this.early ??= { staging: startStaging(), serials: [] });
    e.staging.add(records.map(recordWrite(this.dir)), true);
    for (const r of records) e.serials.push(r.entry.serial);
  }

  /** the transaction is over: records prepared but never committed are removed */
  async end(): Promise<void> {
    const e = this.early;
    this.early = undefined;
    await e?.staging.abandon();
  }

  fileWrite(w: DocWrite): FileWrite {
    return { path: this.path(w.name), data: w.data ?? "", mode: w.mode ?? defaultMode(w.name), exclusive: w.exclusive };
  }

  writeDocs(docs: readonly DocWrite[]): void {
    const writes = docs.filter((w) => w.data !== null).map((w) => this.fileWrite(w));
    if (writes.length) writeFilesAtomic(writes);
    for (const w of docs) if (w.data === null) fs.rmSync(this.path(w.name), { force: true });
  }
}

/** Write a new CA's files into `d` (see create); on failure remove what was made here. */
async function populate(d: CaDir, change: Change, created: string[]): Promise<void> {
  const dirExisted = fs.existsSync(d.dir);
  const tx = new DirTx(d);
  try {
    for (const [p, mode] of [[d.dir, MODE.dir], [d.p("private"), MODE.privateDir], [d.p("certs"), MODE.dir], [d.p("issued"), MODE.dir]] as const) {
      if (!fs.existsSync(p)) {
        ensureDir(p, mode);
        created.push(p);
      }
    }
    const docs = [...(change.docs ?? []), ...(change.release ?? [])].filter((w) => w.data !== null);
    const settings = docs.find((w) => w.name === DOC.settings);
    const adds = change.add ?? [];
    for (const w of docs) if (w.name.includes("/") && !fs.existsSync(d.p(w.name.split("/")[0]!))) {
      ensureDir(d.p(w.name.split("/")[0]!), MODE.dir);
      created.push(d.p(w.name.split("/")[0]!));
    }
    const files: FileWrite[] = [
      ...docs.filter((w) => w !== settings).map((w) => ({ ...tx.fileWrite(w), exclusive: true })),
      { path: d.indexPath, data: appendIndexLines(Buffer.alloc(0), adds.map((a) => a.entry)), mode: MODE.file, exclusive: true },
      { path: d.p("index.txt.attr"), data: "unique_subject = no\n", mode: MODE.file, exclusive: true },
      ...(adds.length ? [{ path: d.metaPath, data: adds.map((r) => formatMeta({ serial: r.entry.serial, profile: r.profile ?? "unknown", name: r.name })).join(""), mode: MODE.file, exclusive: true }] : []),
      { path: d.crlNumberPath, data: formatCrlNumber(change.crlNumber ?? 1n), mode: MODE.file, exclusive: true },
      ...adds.filter((r) => r.pem !== "").map((r) => ({ path: d.certPath(r.entry.serial), data: r.pem, mode: MODE.file, exclusive: true })),
    ];
    if (files.length > 64) (await stageFilesBatch(files)).commit(0, files.length);
    else writeFilesAtomic(files);
    created.push(...files.map((f) => f.path));
    if (settings) {
      writeFilesAtomic([{ ...tx.fileWrite(settings), exclusive: true }]);
      created.push(d.settingsPath);
    }
  } catch (e) {
    for (const p of created.reverse()) fs.rmSync(p, { force: true, recursive: p !== d.dir || !dirExisted });
    throw e;
  }
}

const defaultMode = (name: DocName): number => (name.startsWith("private/") ? MODE.key : MODE.file);

/**
 * A failure after the commit point (index.txt written): the change stands.
 * Said so, with what to run; details.committedIndex is what failed and what
 * to run, for a caller that knows more (issue(): the serials) to say it in
 * its own words.
 */
function pastCommitPoint(e: unknown): PkiError {
  const why = e instanceof PkiError ? e.message : String((e as Error)?.message ?? e);
  const rest = `what follows from it was not all written: ${why}; fix that, then run \`pki doctor\`: it says what is out of step and what --repair rewrites`;
  return new PkiError(e instanceof PkiError ? e.code : "IO_ERROR", `the change is recorded (index.txt was written), but ${rest}`, {
    cause: e,
    details: { committedIndex: rest },
  });
}

export class DirStore extends DirReader implements CaStore {
  readonly kind = "dir" as const;
  readonly location: string;

  /**
   * The directory itself, for directory-only diagnostics (doctor: temporary
   * files, the lock, modes, --break-lock), reached through src/ca/ only.
   */
  constructor(dir: string) {
    super(new CaDir(path.resolve(dir)));
    this.location = this.dir.dir;
  }

  async exists(): Promise<boolean> {
    return fs.existsSync(this.dir.settingsPath) && fs.existsSync(this.dir.caCertPath);
  }

  /** Anything of a CA here (pki.json, ca.crt or the key): init and import refuse to touch it. */
  hasAnyCa(): boolean {
    return this.dir.hasCa();
  }

  async locked<T>(_command: string, fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return withLock(this.dir.dir, async () => {
      const tx = new DirTx(this.dir);
      try {
        return await fn(tx);
      } finally {
        await tx.end();
      }
    });
  }

  /**
   * Refuse a target that holds a CA or anything else (pki import makes a new
   * CA directory; `command` names the refusing command).
   */
  checkNewOrEmpty(command: string): void {
    const target = this.dir.dir;
    if (this.dir.hasCa()) throw new PkiError("CA_EXISTS", `${target} already holds a CA; ${command} never touches an existing CA (use another --dir)`);
    let entries: string[] = [];
    try {
      if (!fs.statSync(target).isDirectory()) throw new PkiError("BAD_INPUT", `${target} exists and is not a directory: give a new or empty directory with --dir`);
      entries = fs.readdirSync(target);
    } catch (e) {
      if (e instanceof PkiError) throw e;
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new PkiError("IO_ERROR", `cannot read ${target}: ${(e as NodeJS.ErrnoException).code}`);
    }
    if (entries.length) throw new PkiError("BAD_INPUT", `${target} is not empty: ${command} creates a new CA directory; give a new or empty directory with --dir`);
  }

  /**
   * A new CA, all or nothing. A missing or empty directory is built complete
   * in a staging directory beside it and renamed into place (a crash leaves
   * nothing at the target, at most a `.<name>.create-*` directory beside
   * it); missing parents are made like `mkdir -p` and removed again on
   * failure. In a directory that holds other files, every file is created
   * exclusively, pki.json last (its presence is what makes the directory a
   * CA), and removed again on failure.
   */
  async create(change: Change): Promise<void> {
    const d = this.dir;
    if (d.hasCa()) throw new PkiError("CA_EXISTS", `${d.dir} already holds a CA; pki never touches an existing CA (use another --dir)`);
    let entries: string[] | null = null;
    try {
      entries = fs.readdirSync(d.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new PkiError("IO_ERROR", `cannot read ${d.dir}: ${(e as NodeJS.ErrnoException).code}`);
    }
    if (entries !== null && entries.length) return populate(d, change, []);
    const staging = path.join(path.dirname(d.dir), `.${path.basename(d.dir)}.create-${process.pid}-${randomBytes(4).toString("hex")}`);
    const parents = ensureParents(d.dir);
    try {
      await populate(new CaDir(staging), change, []);
      try {
        fs.renameSync(staging, d.dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") throw new PkiError("CA_EXISTS", `${d.dir} was filled by another process meanwhile; nothing written`);
        throw new PkiError("IO_ERROR", `cannot move the new CA into ${d.dir}: ${code}`);
      }
    } catch (e) {
      fs.rmSync(parents ?? staging, { recursive: true, force: true });
      throw e;
    }
  }

  async audit(records: readonly Record<string, unknown>[]): Promise<void> {
    this.dir.auditMany(records);
  }

  async generation(): Promise<string> {
    const sig = (p: string) => {
      try {
        const st = fs.statSync(p);
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return "-";
      }
    };
    return [this.dir.indexPath, this.dir.crlPath, this.dir.caCertPath].map(sig).join("/");
  }

  async close(): Promise<void> {}
}

/** The directory store, when the store is one (doctor's directory checks). */
export const dirOf = (store: CaStore): DirStore | null => (store instanceof DirStore ? store : null);
