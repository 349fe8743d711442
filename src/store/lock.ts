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
  try {
    const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.writeSync(fd, content);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new PkiError("IO_ERROR", `cannot create the lock file ${p}: ${(e as NodeJS.ErrnoException).code}; check the permissions of the CA directory`);
  }
}

/** Is the lock held by a dead process on this host (or unreadable for long)? Then remove it, guarded. */
function breakStale(lockPath: string): void {
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
        `the CA directory is locked by pid ${h?.pid ?? "?"}${h && h.host !== me.host ? ` on ${h.host}` : ""} since ${h?.since ?? "?"}; waited ${Math.round(timeoutMs / 1000)} s. If that process is gone, remove ${lockPath}`,
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
