/**
 * The CA directory lock: an O_EXCL lock file holding the owner's pid.
 *
 * Every change of CA state runs inside withLock(), so parallel pki processes
 * serialise their read-modify-write of index.txt and never lose or duplicate
 * a record (easy-rsa had duplicate serials until it added a lock; `openssl
 * ca` has none at all).
 *
 * Why our own and not proper-lockfile: a waiting process must be able to say
 * *which* pid holds the lock when it gives up, and a lock left by a process
 * that was SIGKILLed must be taken over at once (its pid is gone) instead of
 * after an mtime-based staleness period. Taking over is itself guarded by a
 * second O_EXCL file, so two waiters can never both "break" the same stale
 * lock and then both hold it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PkiError } from "../core/errors.js";

export const LOCK_FILE = ".lock";

interface Holder {
  pid: number;
  host: string;
  since: string;
}

function readHolder(p: string): Holder | null {
  try {
    const h = JSON.parse(fs.readFileSync(p, "utf8")) as Holder;
    return typeof h.pid === "number" ? h : null;
  } catch {
    return null;
  }
}

/** Is a process with this pid running (on this host)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function tryCreate(p: string, content: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new PkiError("IO_ERROR", `cannot create the lock file ${p}: ${(e as NodeJS.ErrnoException).code}; check the permissions of the CA directory`);
  }
  try {
    const buf = Buffer.from(content, "utf8");
    for (let off = 0; off < buf.length; ) {
      const n = fs.writeSync(fd, buf, off, buf.length - off);
      if (n <= 0) throw Object.assign(new Error("short write"), { code: "ENOSPC" });
      off += n;
    }
  } catch (e) {
    // a lock we could not fill in (a full disk) is removed, never left empty for others to wait on
    fs.closeSync(fd);
    fs.rmSync(p, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw new PkiError("IO_ERROR", `cannot write the lock file ${p}: ${code === "ENOSPC" ? "the disk is full" : code}`);
  }
  fs.closeSync(fd);
  return true;
}

export type LockState =
  | { kind: "none" }
  | { kind: "held"; holder: Holder }
  /** held by a pid that is gone, on this host: the next pki command takes it over */
  | { kind: "dead"; holder: Holder }
  /** held by a process on another host: pki cannot tell whether it runs; `pki doctor --break-lock` */
  | { kind: "foreign"; holder: Holder }
  /** not a lock file of pki: a symlink (dangling or not), a directory, unreadable content */
  | { kind: "strange"; what: string };

/** What the .lock of a CA directory is (for doctor and for the waiting loop). */
export function lockState(dir: string): LockState {
  const p = path.join(dir, LOCK_FILE);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return { kind: "none" };
  }
  if (st.isSymbolicLink()) {
    let target = "?";
    try {
      target = fs.readlinkSync(p);
    } catch {
      /* gone */
    }
    return { kind: "strange", what: `a symbolic link to ${target}${fs.existsSync(p) ? "" : " (dangling)"}, not a lock pki made` };
  }
  if (!st.isFile()) return { kind: "strange", what: "not a regular file" };
  const h = readHolder(p);
  if (!h) return { kind: "strange", what: "a lock file without a readable holder (pid, host)" };
  if (h.host !== os.hostname()) return { kind: "foreign", holder: h };
  return alive(h.pid) ? { kind: "held", holder: h } : { kind: "dead", holder: h };
}

/**
 * Remove the .lock whatever holds it (`pki doctor --break-lock`): for a lock
 * of another host, whose process pki cannot see. Guarded like a takeover.
 */
export function breakLock(dir: string): LockState {
  const p = path.join(dir, LOCK_FILE);
  const before = lockState(dir);
  if (before.kind === "none") return before;
  if (before.kind === "held") throw new PkiError("LOCK_TIMEOUT", `the CA directory is locked by running pid ${before.holder.pid} since ${before.holder.since}: let it finish`);
  fs.rmSync(p, { force: true }); // a symlink itself, never its target
  return before;
}

/** Is the lock held by a dead process on this host (or unreadable for long)? Then remove it, guarded. */
function breakStale(lockPath: string): void {
  // a symbolic link is never a lock of ours (we create regular files, O_EXCL): a
  // dangling one would block every write for ever; remove the link itself
  try {
    if (fs.lstatSync(lockPath).isSymbolicLink()) {
      fs.unlinkSync(lockPath);
      return;
    }
  } catch {
    return;
  }
  const holder = readHolder(lockPath);
  let stale: boolean;
  if (holder) {
    stale = holder.host === os.hostname() && !alive(holder.pid);
  } else {
    // unreadable: a holder between create and write, or a crash right there
    let age = 0;
    try {
      age = Date.now() - fs.statSync(lockPath).mtimeMs;
    } catch {
      return;
    }
    stale = age > 2000;
  }
  if (!stale) return;
  const guard = lockPath + ".break";
  if (!tryCreate(guard, String(process.pid))) {
    // another waiter is breaking it; if that waiter died, clean up its guard
    try {
      const age = Date.now() - fs.statSync(guard).mtimeMs;
      if (age > 5000) fs.rmSync(guard, { force: true });
    } catch {
      /* gone */
    }
    return;
  }
  try {
    const again = readHolder(lockPath);
    if ((holder === null && again === null) || (holder && again && again.pid === holder.pid && again.since === holder.since)) {
      fs.rmSync(lockPath, { force: true });
    }
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LockOptions {
  /** how long to wait for another process, default $PKI_LOCK_TIMEOUT seconds or 60 s */
  timeoutMs?: number;
}

export async function withLock<T>(dir: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const lockPath = path.join(dir, LOCK_FILE);
  const timeoutMs = opts.timeoutMs ?? (Number(process.env.PKI_LOCK_TIMEOUT) > 0 ? Number(process.env.PKI_LOCK_TIMEOUT) * 1000 : 60_000);
  const me: Holder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  const content = JSON.stringify(me);
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  while (!tryCreate(lockPath, content)) {
    breakStale(lockPath);
    if (Date.now() > deadline) {
      const h = readHolder(lockPath);
      throw new PkiError(
        "LOCK_TIMEOUT",
        h && h.host !== me.host
          ? `the CA directory is locked by pid ${h.pid} on another host, ${h.host}, since ${h.since}; waited ${Math.round(timeoutMs / 1000)} s. If that process is gone, run \`pki doctor --break-lock\``
          : `the CA directory is locked by pid ${h?.pid ?? "?"} since ${h?.since ?? "?"}; waited ${Math.round(timeoutMs / 1000)} s. If that process is gone, remove ${lockPath}`,
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 100);
  }
  try {
    return await fn();
  } finally {
    const h = readHolder(lockPath);
    if (h && h.pid === me.pid && h.since === me.since) fs.rmSync(lockPath, { force: true });
  }
}
