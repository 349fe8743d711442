/**
 * Threads that create a batch's temporary files, one after the other, with
 * plain synchronous calls: open(O_EXCL) with the final mode, write, close.
 * Bulk issuance hands them each pair's files (and the CA's copies of the
 * records) as soon as the pair is signed, so the files are written while
 * the main thread signs the next pairs.
 *
 * Why not libuv's thread pool (fs.open/fs.write/fs.close): each file then
 * costs three round trips through the pool and the event loop, and the four
 * pool threads create files in one directory at once, which the kernel
 * serialises on the directory's lock (threads spinning on it, measured with
 * perf: 7% of a run in rwsem_spin_on_owner; the main thread's lookups in the
 * same directory waited behind them). 10,000 pairs (40,000 files): ~7.7 s
 * with the pool, ~5.2 s with these threads (medians, interleaved, see the
 * commit).
 *
 * The threads are started on first use, shared by every batch of the process
 * (channels: a channel's files go to one thread, in order), and unref'd:
 * they never keep the process alive. Their source is a string (a worker
 * evaluated from it), so that it needs no file of its own next to the
 * bundle. Files go over as one message of many (names, one buffer handed
 * over, modes and lengths): a message per pair cost the main thread ~0.7 s
 * of a 10,000-pair batch.
 *
 * A file that fails (full disk, no permission) fails its batch: the thread
 * reports the first failure of a channel at once and skips that channel's
 * later files; the caller removes what was staged. On Ctrl-C or SIGTERM,
 * stopAll() makes the threads stop before their next file and waits for the
 * file in hand, so that the caller's clean-up sees every file they made.
 */
import { createRequire } from "node:module";
import type { Worker } from "node:worker_threads";

/** One file for the thread: its temporary path, bytes, mode (and whether the umask leaves the mode whole). */
export interface WriterFile {
  tmp: string;
  data: string | Uint8Array;
  mode: number;
  exact: boolean;
}

/** A channel's first failure: the index of the file (in the order sent; -1: the thread itself died), its errno code. */
export interface WriterFailure {
  index: number;
  code?: string;
  message: string;
}

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const flags = new Int32Array(workerData.flags); // [stop, busy]
const C = fs.constants;
const failed = new Map(); // channel -> first failure
const count = new Map(); // channel -> files seen
parentPort.on("message", (m) => {
  if (m.op === "close") {
    parentPort.postMessage({ op: "closed", ch: m.ch, seq: m.seq, failed: failed.get(m.ch) });
    failed.delete(m.ch);
    count.delete(m.ch);
    return;
  }
  let n = count.get(m.ch) || 0;
  const tmps = m.tmps.split("\\0");
  const data = new Uint8Array(m.data);
  let at = 0;
  for (let k = 0; k < tmps.length; k++) {
    const index = n++;
    const mode = m.meta[2 * k] & 0xffff, exact = m.meta[2 * k] >> 16, len = m.meta[2 * k + 1];
    const bytes = data.subarray(at, (at += len));
    if (failed.has(m.ch)) continue;
    if (Atomics.load(flags, 0)) { failed.set(m.ch, { index, code: "EINTR", message: "interrupted" }); continue; }
    Atomics.store(flags, 1, 1);
    let fd;
    try {
      if (Atomics.load(flags, 0)) throw Object.assign(new Error("interrupted"), { code: "EINTR" });
      fd = fs.openSync(tmps[k], C.O_WRONLY | C.O_CREAT | C.O_EXCL, exact ? mode : mode & 0o600);
      if (!exact) fs.fchmodSync(fd, mode);
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    } catch (e) {
      failed.set(m.ch, { index, code: e && e.code, message: String(e && e.message) });
      parentPort.postMessage({ op: "failed", ch: m.ch, failed: failed.get(m.ch) });
    } finally {
      if (fd !== undefined) try { fs.closeSync(fd); } catch {}
      Atomics.store(flags, 1, 0);
      Atomics.notify(flags, 1);
    }
  }
  count.set(m.ch, n);
});
`;

/** One writer thread, its shared [stop, busy] flags, the closes it owes an answer and why it died, if it did. */
interface Thread {
  w: Worker;
  flags: Int32Array;
  waiting: Map<number, (f: WriterFailure | undefined) => void>;
  dead?: string;
}
/**
 * Two threads: a batch's files in different directories (the out-dir, the
 * CA's certs/) are created at once without waiting on each other's
 * directory lock. Channel n goes to thread n % THREADS.
 */
const THREADS = 2;
const threads: Array<Thread | undefined> = [];
let nextChannel = 0;
let nextSeq = 0;
/** each open channel's listener for its first failure, told as soon as it happens */
const listeners = new Map<number, (f: WriterFailure) => void>();

function thread(i: number): Thread {
  const have = threads[i];
  if (have) return have;
  const flags = new Int32Array(new SharedArrayBuffer(8));
  // node:worker_threads loaded by the large batches that start a thread, not by every command
  const { Worker } = createRequire(import.meta.url)("node:worker_threads") as typeof import("node:worker_threads");
  const w = new Worker(SOURCE, { eval: true, workerData: { flags: flags.buffer }, stdout: false, stderr: false });
  const t: Thread = { w, flags, waiting: new Map() };
  w.on("message", (m: { op: string; ch: number; seq: number; failed?: WriterFailure }) => {
    if (m.op === "failed") return listeners.get(m.ch)?.(m.failed!);
    const done = t.waiting.get(m.seq);
    t.waiting.delete(m.seq);
    if (t.waiting.size === 0) w.unref();
    done?.(m.failed);
  });
  const died = (why: string) => {
    // the thread itself is gone (not a file's failure): every pending and later close fails
    t.dead ??= why;
    for (const [seq, done] of t.waiting) {
      t.waiting.delete(seq);
      done({ index: -1, message: t.dead });
    }
  };
  w.on("error", (e) => died(String((e as Error)?.message ?? e)));
  w.on("exit", (code) => died(`the writer thread exited (${code})`));
  w.unref();
  return (threads[i] = t);
}

/** A channel of a writer thread: files written in the order sent. */
export interface WriterChannel {
  send(files: readonly WriterFile[]): void;
  /** the channel is done: resolves once every file sent is written, with undefined or the channel's first failure */
  close(): Promise<WriterFailure | undefined>;
}

/** A new channel; `onFailed` hears of its first failure as soon as the thread meets it (close reports it too). */
export function writerChannel(onFailed: (f: WriterFailure) => void = () => {}): WriterChannel {
  const ch = nextChannel++;
  const t = thread(ch % THREADS);
  listeners.set(ch, onFailed);
  return {
    send(files) {
      if (files.length === 0) return;
      // one message of several files: their names in one string, their bytes
      // in one buffer handed over (not copied), modes and lengths in one array
      const lens = files.map((f) => (typeof f.data === "string" ? Buffer.byteLength(f.data) : f.data.length));
      const data = Buffer.allocUnsafeSlow(lens.reduce((a, b) => a + b, 0));
      const meta = new Int32Array(2 * files.length);
      let at = 0;
      files.forEach((f, k) => {
        if (typeof f.data === "string") data.write(f.data, at, "utf8");
        else data.set(f.data, at);
        at += lens[k]!;
        meta[2 * k] = (f.mode & 0xffff) | ((f.exact ? 1 : 0) << 16);
        meta[2 * k + 1] = lens[k]!;
      });
      t.w.postMessage({ op: "write", ch, tmps: files.map((f) => f.tmp).join("\0"), meta, data: data.buffer }, [data.buffer, meta.buffer]);
    },
    close() {
      const seq = nextSeq++;
      listeners.delete(ch);
      if (t.dead !== undefined) return Promise.resolve({ index: -1, message: t.dead });
      return new Promise<WriterFailure | undefined>((res) => {
        t.waiting.set(seq, res);
        t.w.ref(); // a close awaited keeps the process alive until the answer
        t.w.postMessage({ op: "close", ch, seq });
      });
    },
  };
}

/**
 * Stop the threads before their next file and wait (blocking, at most a few
 * seconds) for the files they are writing: after this, no file of any
 * channel appears any more. For a signal handler that removes staged files.
 */
export function stopAll(): void {
  for (const t of threads) if (t) Atomics.store(t.flags, 0, 1);
  for (const t of threads) for (let i = 0; t && i < 50 && Atomics.load(t.flags, 1) === 1; i++) Atomics.wait(t.flags, 1, 1, 100);
}
