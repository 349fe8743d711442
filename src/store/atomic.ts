/**
 * Durable, atomic file writes.
 *
 * Every file pki writes appears whole or not at all: its bytes go to a
 * temporary file in the same directory (created O_EXCL with its final mode, so
 * a key is never readable by others even for an instant), are fsync'd, and the
 * temporary file is renamed over the target; then the directory is fsync'd so
 * the rename itself survives a power cut.
 *
 * Why not write-file-atomic: we need (1) batches, where many files are
 * written and fsync'd first and renamed after, with one fsync per directory
 * instead of one per file (bulk issuance), (2) the mode fixed on the open file
 * descriptor before the file becomes visible, independent of umask, and (3)
 * a directory fsync; it offers none of the three.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { PkiError } from "../core/errors.js";
import { stopAll, writerChannel, type WriterChannel, type WriterFailure, type WriterFile } from "./file-writer.js";

export interface FileWrite {
  path: string;
  data: string | Uint8Array;
  /** file mode, default 0o644 */
  mode?: number;
  /** refuse to replace an existing file */
  exclusive?: boolean;
}

function ioError(op: string, p: string, e: unknown): PkiError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const hint =
    code === "EACCES" || code === "EPERM"
      ? "check the permissions of the CA directory"
      : code === "ENOSPC"
        ? "the disk is full"
        : code === "EMFILE" || code === "ENFILE"
          ? "too many open files: raise the limit (ulimit -n) and run it again"
          : `(${code ?? String(e)})`;
  return new PkiError("IO_ERROR", `cannot ${op} ${p}: ${hint}`, { cause: e });
}

// unique per process without a random draw per file (a batch stages thousands); O_EXCL guards the rest
const tmpPrefix = `${process.pid}.${randomBytes(4).toString("hex")}`;
let tmpCounter = 0;
/** What a temporary file of ours looks like; group 1 is the writer's pid (doctor removes those of dead pids). */
export const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{8}\.[0-9a-z]+\.tmp$/;
const tmpName = (p: string) => path.join(path.dirname(p), `.${path.basename(p)}.${tmpPrefix}.${(tmpCounter++).toString(36)}.tmp`);

/**
 * Remove a temporary (or undone) file, best effort: cleanup after a failure
 * must not replace that failure with its own (a directory made read-only
 * half-way fails the unlink too; the first error is the one to tell).
 */
function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { force: true });
  } catch {
    /* left behind: pki doctor lists temporary files of dead processes */
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on a directory; the rename is still atomic
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write a temporary file for `w`, fsync'd, with its final mode. Returns its path. */
function stage(w: FileWrite, tmp = tmpName(w.path)): string {
  const mode = w.mode ?? 0o644;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode & 0o600);
    fs.fchmodSync(fd, mode); // umask-independent, before the file is visible under its name
    const buf = typeof w.data === "string" ? Buffer.from(w.data, "utf8") : w.data;
    let off = 0;
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
    return tmp;
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw ioError("write", w.path, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Write several files as one step: all staged and fsync'd first, then renamed
 * in the order given, then each directory fsync'd once. If staging fails,
 * nothing is renamed and the temporary files are removed.
 */
export function writeFilesAtomic(writes: readonly FileWrite[]): void {
  checkTargets(writes);
  const staged: string[] = [];
  try {
    for (const w of writes) staged.push(stage(w));
  } catch (e) {
    for (const t of staged) removeQuietly(t);
    throw e;
  }
  commitStaged(writes, staged);
}

/**
 * Move staged (fsync'd) files to their names in the order given, then fsync
 * each directory once. An exclusive write uses link(), which fails if the
 * target exists: no race with a concurrent writer.
 */
function commitStaged(writes: readonly FileWrite[], staged: readonly string[]): void {
  const dirs = new Set<string>();
  writes.forEach((w, i) => {
    try {
      if (w.exclusive) {
        fs.linkSync(staged[i]!, w.path);
        fs.unlinkSync(staged[i]!);
      } else {
        fs.renameSync(staged[i]!, w.path);
      }
    } catch (e) {
      for (const t of staged.slice(i)) removeQuietly(t);
      // the new files already in place go again: a failed step leaves no
      // certificate nobody was told about (replaced files cannot be restored,
      // which is why callers put new files first)
      for (let j = 0; j < i; j++) if (writes[j]!.exclusive) removeQuietly(writes[j]!.path);
      throw ioError("write", w.path, e);
    }
    dirs.add(path.dirname(w.path));
  });
  for (const d of dirs) fsyncDir(d);
}

/**
 * Refuse targets that are not regular files before anything is staged: a
 * directory (rename would fail half-way), a device, FIFO or socket (rename
 * would replace /dev/null or a pipe with a regular file). User-named outputs
 * are checked earlier and more strictly by store/output.ts; this is the
 * backstop for every write.
 */
function checkTargets(writes: readonly FileWrite[]): void {
  for (const w of writes) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(w.path, { throwIfNoEntry: false }); // a new file: undefined, no exception built
    } catch {
      continue;
    }
    if (st === undefined) continue;
    if (w.exclusive) throw new PkiError("IO_ERROR", `${w.path} already exists; pki never overwrites it`);
    if (st.isDirectory()) throw new PkiError("BAD_INPUT", `${w.path} is a directory: give a file name`);
    if (!st.isFile()) throw new PkiError("UNSAFE_PATH", `${w.path} is not a regular file (a device, FIFO or socket): pki writes regular files only`);
  }
}

// ---------------------------------------------------------------- batches

const cb = <T>(f: (done: (e: NodeJS.ErrnoException | null, v?: T) => void) => void): Promise<T> =>
  new Promise((res, rej) => f((e, v) => (e ? rej(e) : res(v as T))));

/** Batches of at least this many files are synced with one syncfs(2) per file system instead of an fsync per file. */
export const SYNCFS_MIN = 64;

/**
 * syncfs(2) on the file system of each directory: `sync -f DIR...`
 * (coreutils; Node has no binding). False when it is missing or reports an
 * error: the caller then fsyncs each file.
 */
export function syncFileSystems(dirs: readonly string[]): boolean {
  if (dirs.length === 0) return true;
  const r = spawnSync("sync", ["-f", ...dirs], { stdio: "ignore", timeout: 120_000 });
  return r.status === 0 && !r.error;
}

/**
 * The process's umask, read without changing it (/proc/self/status; null
 * where that is not available), once per batch: a file created with a mode
 * the umask leaves whole needs no fchmod after its open (one system call
 * less per file of a batch of 40,000).
 */
function currentUmask(): number | null {
  try {
    const m = /^Umask:\s+([0-7]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? parseInt(m[1]!, 8) : null;
  } catch {
    return null;
  }
}

/** Does a file created with `mode` get exactly that mode under this umask (no fchmod needed)? */
const wholeUnder = (mode: number, umask: number | null): boolean => umask !== null && (mode & umask) === 0 && (mode & ~0o777) === 0;

/** stage() on the thread pool: open O_EXCL with the final mode, write, fsync (unless the batch syncs its file systems once), close. */
async function stageAsync(w: FileWrite, tmp: string, fsync: boolean, umask: number | null): Promise<void> {
  const mode = w.mode ?? 0o644;
  const exact = wholeUnder(mode, umask);
  // opened with its final mode when the umask leaves it whole, else owner-only and fchmod'd
  const fd = await cb<number>((d) => fs.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, exact ? mode : mode & 0o600, d));
  try {
    if (!exact) await cb<void>((d) => fs.fchmod(fd, mode, d));
    const buf = typeof w.data === "string" ? Buffer.from(w.data, "utf8") : w.data;
    let off = 0;
    while (off < buf.length) {
      const at = off;
      off += await cb<number>((d) => fs.write(fd, buf, at, buf.length - at, null, d));
    }
    if (fsync) await cb<void>((d) => fs.fsync(fd, d));
  } finally {
    await cb<void>((d) => fs.close(fd, d));
  }
}

/**
 * writeFilesAtomic for large batches (bulk issuance): the same guarantees and
 * order (every file staged and fsync'd before the first rename; renames in
 * the order given; each directory fsync'd once after), but the staging runs
 * on libuv's thread pool with up to `concurrency` files in flight. One
 * fsync costs a journal commit; issued concurrently, the file system folds
 * many of them into one commit instead of paying them one after the other.
 */
export async function writeFilesAtomicBatch(writes: readonly FileWrite[], concurrency = 32): Promise<void> {
  (await stageFilesBatch(writes, concurrency)).commit(0, writes.length);
}

/** Files staged (written and fsync'd under temporary names), to be put in place in parts. */
export interface StagedBatch {
  /** rename writes[from, to) into place, in order; then fsync their directories */
  commit(from: number, to: number): void;
  /**
   * undo: remove every temporary file not yet renamed, and every file an
   * exclusive write already created (a failed issue leaves no certificate or
   * key behind). Replaced (non-exclusive) files cannot be restored.
   */
  abort(): void;
  /** writes[from, to) are committed for good (recorded in the index): abort() leaves them */
  keep(from: number, to: number): void;
}

/**
 * The staging half of writeFilesAtomicBatch: every file written and fsync'd
 * under a temporary name on the thread pool, nothing visible yet. The caller
 * decides when each part is released (issue: the CA's own record first, the
 * index commit, then the files handed out).
 */
export async function stageFilesBatch(writes: readonly FileWrite[], concurrency = 32, opts: { checked?: boolean } = {}): Promise<StagedBatch> {
  const staging = startStaging(concurrency, { ...opts, size: writes.length });
  staging.add(writes);
  return staging.done();
}

/** A batch being staged while its files are still being produced (stageFilesBatch is add() of all, then done()). */
export interface Staging {
  /** start staging these files now (on the thread pool, up to `concurrency` in flight); `checked`: see stageFilesBatch */
  add(writes: readonly FileWrite[], checked?: boolean): void;
  /** every file added is staged and durable: the batch to release (or, if one failed, every staged file removed and the error thrown) */
  done(): Promise<StagedBatch>;
  /** the producer failed: wait for the files in flight, remove every staged one */
  abandon(): Promise<void>;
}

/**
 * The staging of stageFilesBatch, started before the batch is complete: a
 * bulk issuance adds each pair's files as soon as they are signed, so that
 * the thread pool writes them while the main thread signs the next ones
 * (the caller lets the event loop run now and then). Nothing is visible
 * until the StagedBatch's commit, as before.
 */
export function startStaging(concurrency = 32, opts: { checked?: boolean; size?: number; expect?: number } = {}): Staging {
  const writes: FileWrite[] = [];
  const staged: string[] = [];
  const umask = currentUmask();
  let failure: { w: FileWrite; e: unknown } | undefined;
  // a large batch is made durable by one syncfs(2) per file system after
  // staging (`sync -f`, coreutils) instead of one fsync per file: the same
  // guarantee (every staged file on disk before the first rename) at the
  // cost of one journal commit; where `sync -f` is missing or fails, each
  // file is fsync'd as before. A batch of unknown size (opts.size) stages
  // without fsync; once it is closed, a small one fsyncs each file.
  const fsyncInline = opts.size !== undefined && opts.size < SYNCFS_MIN;
  // a large batch (or one of unknown size: bulk issuance) is written by the
  // writer thread (file-writer.ts), a small one on libuv's pool (starting a
  // thread costs a single sign-csr ~70 ms); `expect`: how many files a batch
  // of unknown size expects. On the pool too where no thread can be started.
  const small = fsyncInline || (opts.size === undefined && opts.expect !== undefined && opts.expect < SYNCFS_MIN);
  // one or two files (a single certificate's copy in the store, a sign-csr --out): written and
  // fsync'd right here, without the thread pool's round trips (open, write, fsync, close: ~2 ms)
  const count = opts.size ?? opts.expect;
  const tiny = count !== undefined && count <= TINY_MAX;
  const batch: WriterBatch = { writes, staged, fail: (i, e) => (failure ??= { w: writes[i] ?? writes[0]!, e }), failed: () => failure !== undefined };
  const writer = tiny ? syncWriter(batch) : ((small ? null : threadWriter(batch, umask)) ?? poolWriter(batch, concurrency, umask, fsyncInline));
  const settled = (): Promise<void> => writer.settled();
  const removeStaged = (): void => {
    writer.stop();
    for (const t of staged) removeQuietly(t);
  };
  // Ctrl-C or a SIGTERM while the batch is staged (a bulk issue stages for
  // seconds, while it signs): its temporaries are removed, then the signal
  // does what it does by default. Until the batch is released or removed.
  const interrupted = onInterrupt(removeStaged);
  return {
    add(ws, checked = opts.checked) {
      // a file that could not be staged fails the batch now: the producer stops and abandons it
      if (failure) throw failedWith(failure);
      if (!checked) checkTargets(ws);
      const from = writes.length;
      for (const w of ws) {
        writes.push(w);
        staged.push(tmpName(w.path));
      }
      writer.add(from);
    },
    async abandon() {
      failure ??= { w: writes[0]!, e: new Error("abandoned") };
      await settled();
      removeStaged();
      interrupted.off();
    },
    async done() {
      await settled();
      if (!failure && writes.length) {
        const durable = fsyncInline || tiny || (writes.length >= SYNCFS_MIN && syncFileSystems([...new Set(staged.map((t) => path.dirname(t)))]));
        if (!durable) await fsyncEach(staged, writes, concurrency).catch((f: { w: FileWrite; e: unknown }) => (failure ??= f));
      }
      if (failure) {
        removeStaged();
        interrupted.off();
        throw failedWith(failure);
      }
      return stagedBatch(writes, staged, interrupted.off);
    },
  };
}

/** A Staging's files as its writer sees them: staged[i] is writes[i]'s temporary name; fail(i, e) records the first failure. */
interface WriterBatch {
  writes: readonly FileWrite[];
  staged: readonly string[];
  fail(i: number, e: unknown): void;
  /** a file failed or the batch was abandoned: start no more */
  failed(): boolean;
}

/** How a Staging's files get written. */
interface StageWriter {
  /** writes[from..] were just added */
  add(from: number): void;
  /** no more files will come: resolves once every file added is written, or failed */
  settled(): Promise<void>;
  /** no file appears any more (before a signal handler removes the staged ones) */
  stop(): void;
}

/** Batches expected this small are staged by syncWriter. */
const TINY_MAX = 2;

/** Each file staged (written, fsync'd) as it is added, on the main thread. */
function syncWriter(b: WriterBatch): StageWriter {
  return {
    add(from) {
      for (let i = from; i < b.writes.length && !b.failed(); i++) {
        try {
          stage(b.writes[i]!, b.staged[i]!);
        } catch (e) {
          b.fail(i, e);
        }
      }
    },
    settled: async () => {},
    stop() {},
  };
}

/** Small batches: stageAsync on libuv's pool, up to `concurrency` files in flight. */
function poolWriter(b: WriterBatch, concurrency: number, umask: number | null, fsync: boolean): StageWriter {
  let next = 0;
  let inFlight = 0;
  let closed = false;
  let idle: (() => void) | undefined;
  const pump = (): void => {
    while (!b.failed() && inFlight < concurrency && next < b.writes.length) {
      const i = next++;
      inFlight++;
      stageAsync(b.writes[i]!, b.staged[i]!, fsync, umask).then(
        () => {},
        (e) => b.fail(i, e),
      ).finally(() => {
        inFlight--;
        pump();
      });
    }
    if (inFlight === 0 && (closed || b.failed())) idle?.();
  };
  return {
    add: pump,
    settled() {
      closed = true;
      return new Promise<void>((res) => {
        idle = res;
        pump();
      });
    },
    stop() {},
  };
}

/** Large batches: the writer thread (file-writer.ts), in order, no fsync (the batch syncs its file systems once). */
function threadWriter(b: WriterBatch, umask: number | null): StageWriter | null {
  const failed = (f: WriterFailure) => b.fail(Math.max(0, f.index), Object.assign(new Error(f.message), { code: f.code }));
  let ch: WriterChannel;
  try {
    // started now: the thread boots while the first pairs are signed
    ch = writerChannel(failed);
  } catch {
    return null; // no thread to be had (a limit on threads): the pool writes the batch
  }
  // files go to the thread SEND_EVERY at a time (see file-writer.ts)
  let pending: WriterFile[] = [];
  const send = () => {
    if (pending.length) ch.send(pending);
    pending = [];
  };
  return {
    add(from) {
      for (let i = from; i < b.writes.length; i++) {
        const w = b.writes[i]!;
        const mode = w.mode ?? 0o644;
        pending.push({ tmp: b.staged[i]!, data: w.data, mode, exact: wholeUnder(mode, umask) });
      }
      if (pending.length >= SEND_EVERY) send();
    },
    async settled() {
      send();
      const f = await ch.close();
      if (f) failed(f);
    },
    stop: stopAll,
  };
}
const SEND_EVERY = 96;

/** Two StagedBatches as one: writes [0, aLen) are a's, the rest b's. */
export function joinStaged(a: StagedBatch, aLen: number, b: StagedBatch): StagedBatch {
  const parts = (from: number, to: number, f: (x: StagedBatch, from: number, to: number) => void) => {
    if (from < aLen) f(a, from, Math.min(to, aLen));
    if (to > aLen) f(b, Math.max(from, aLen) - aLen, to - aLen);
  };
  const joined: StagedBatch = {
    commit(from, to) {
      try {
        parts(from, to, (x, f, t) => x.commit(f, t));
      } catch (e) {
        joined.abort(); // commit() already undid its own batch; abort() of a batch once undone does nothing
        throw e;
      }
    },
    abort() {
      a.abort();
      b.abort();
    },
    keep(from, to) {
      parts(from, to, (x, f, t) => x.keep(f, t));
    },
  };
  return joined;
}

/** Run `cleanup` on SIGINT or SIGTERM, then let the signal end the process as it would have; off() undoes it. */
function onInterrupt(cleanup: () => void): { off: () => void } {
  const handler = (sig: NodeJS.Signals) => {
    off();
    try {
      cleanup();
    } finally {
      process.kill(process.pid, sig);
    }
  };
  const off = () => {
    process.removeListener("SIGINT", handler);
    process.removeListener("SIGTERM", handler);
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return { off };
}

const failedWith = (f: { w: FileWrite; e: unknown }): Error => (f.e instanceof PkiError ? f.e : ioError("write", f.w.path, f.e));

/** fsync each staged file (where one syncfs could not be had), up to `concurrency` at a time; rejects with the first failure. */
async function fsyncEach(staged: readonly string[], writes: readonly FileWrite[], concurrency: number): Promise<void> {
  let next = 0;
  let failure: { w: FileWrite; e: unknown } | undefined;
  const one = async () => {
    while (failure === undefined && next < staged.length) {
      const i = next++;
      try {
        const fd = await cb<number>((d) => fs.open(staged[i]!, "r", d));
        try {
          await cb<void>((d) => fs.fsync(fd, d));
        } finally {
          await cb<void>((d) => fs.close(fd, d));
        }
      } catch (e) {
        failure ??= { w: writes[i]!, e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, staged.length) }, one));
  if (failure) throw failure;
}

/** The release half: rename (or link, for exclusive files) what was staged, in parts, or remove it. */
function stagedBatch(writes: readonly FileWrite[], staged: readonly string[], settled: () => void = () => {}): StagedBatch {
  // 0: staged, 1: in place, 2: already cleaned up by commitStaged
  const state = new Array<0 | 1 | 2>(writes.length).fill(0);
  const batch: StagedBatch = {
    commit(from, to) {
      try {
        commitStaged(writes.slice(from, to), staged.slice(from, to));
      } catch (e) {
        // commitStaged cleaned up its own part (and never touches a file it did not create)
        for (let i = from; i < to; i++) state[i] = 2;
        batch.abort();
        throw e;
      }
      for (let i = from; i < to; i++) state[i] = 1;
      if (!state.includes(0)) settled();
    },
    abort() {
      writes.forEach((w, i) => {
        if (state[i] === 0) removeQuietly(staged[i]!);
        else if (state[i] === 1 && w.exclusive) removeQuietly(w.path);
        state[i] = 2;
      });
      settled();
    },
    keep(from, to) {
      for (let i = from; i < to; i++) state[i] = 2;
      if (!state.includes(0)) settled();
    },
  };
  return batch;
}


/**
 * The missing parent directories of a new CA directory (`pki init --dir
 * /etc/pki/acme` on a machine without /etc/pki), made 0755 like `mkdir -p`.
 * Returns the topmost one it made (for the caller to remove on failure), or
 * undefined when they all existed.
 */
export function ensureParents(p: string): string | undefined {
  try {
    return fs.mkdirSync(path.dirname(path.resolve(p)), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw ioError("create directory", path.dirname(p), e);
  }
}

/** mkdir with an exact mode (umask-independent); existing directories are left as they are. */
export function ensureDir(p: string, mode = 0o755): void {
  try {
    fs.mkdirSync(p, { mode });
    fs.chmodSync(p, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError("create directory", p, e);
  }
}

/**
 * Append whole lines with O_APPEND, all or nothing: a short write (a full
 * disk) is continued, and any error truncates the file back to its previous
 * length, so that no half line is left for the next append to glue onto. A
 * file whose last line lacks its newline (a crash of an older version, a hand
 * edit) gets one first: the new lines always start on a line of their own.
 * Returns the previous length, for truncateTo() when a later step fails.
 */
export function appendLine(p: string, line: string, mode = 0o600): number {
  let fd: number | undefined;
  let before = -1;
  try {
    fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, mode);
    before = fs.fstatSync(fd).size;
    let text = line.endsWith("\n") ? line : line + "\n";
    if (before > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, before - 1);
      if (last[0] !== 10) text = "\n" + text;
    }
    const buf = Buffer.from(text, "utf8");
    let off = 0;
    while (off < buf.length) {
      const n = fs.writeSync(fd, buf, off, buf.length - off);
      if (n <= 0) throw Object.assign(new Error("short write"), { code: "ENOSPC" });
      off += n;
    }
    fs.fsyncSync(fd);
    return before;
  } catch (e) {
    if (fd !== undefined && before >= 0) {
      try {
        fs.ftruncateSync(fd, before);
        fs.fsyncSync(fd);
      } catch {
        /* the caller reports the first error */
      }
    }
    throw e instanceof PkiError ? e : ioError("append to", p, e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Undo an appendLine(): cut the file back to `length` (a later step of the same change failed). */
export function truncateTo(p: string, length: number): void {
  if (length < 0) return;
  try {
    if (length === 0) fs.rmSync(p, { force: true });
    else fs.truncateSync(p, length);
  } catch {
    /* best effort: doctor reports lines without an index entry */
  }
}
