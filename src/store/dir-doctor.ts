/**
 * What only a CA directory has, for `pki doctor` (#9): file modes, the
 * certs/ files, index.meta as it is on disk, the bundle's mtime, temporary
 * files of killed processes and the lock; and the repairs of those that do
 * not fit a store Change (a half line of index.txt or index.meta, a
 * certificate file without its index line, temporary files, a lock). The
 * directory store offers them; ca/doctor.ts is the only caller, and runs the
 * repairs inside the store's locked().
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TEMP_FILE, writeFilesAtomic } from "./atomic.js";
import { MODE, type CaDir } from "./ca-dir.js";
import type { DirStore } from "./dir-store.js";
import { alive, breakLock, LOCK_FILE, lockState, type LockState } from "./lock.js";

export interface DirFacts {
  /** private/ (shown as "private/"), its .key files and issued/*.p12, with their permission bits */
  modes: Array<{ path: string; mode: number }>;
  /** serials that have a certs/<SERIAL>.pem */
  certFiles: string[];
  /** index.meta ("" when there is none) */
  metaText: string;
  /** ca-clients.crt's mtime (0 when it cannot be read) */
  bundleMtimeMs: number;
  /** temporary files of processes that are gone, relative to the directory */
  tmpFiles: string[];
  lock: LockState;
  lockPath: string;
}

function listDir(d: string): string[] {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}

function modeOf(p: string): number | null {
  try {
    return fs.statSync(p).mode & 0o777;
  } catch {
    return null;
  }
}

function modes(d: CaDir): Array<{ path: string; mode: number }> {
  const out: Array<{ path: string; mode: number }> = [];
  const add = (p: string, shown = p) => {
    const m = modeOf(p);
    if (m !== null) out.push({ path: shown, mode: m });
  };
  const priv = d.p("private");
  add(priv, `${priv}/`);
  for (const n of listDir(priv)) if (n.endsWith(".key")) add(path.join(priv, n));
  for (const n of listDir(d.p("issued"))) if (n.endsWith(".p12")) add(d.p("issued", n));
  return out;
}

/** Temporary files (atomic.ts' .<name>.<pid>.<random>.<kind>.tmp) whose process is gone, relative to the directory. */
function deadTempFiles(d: CaDir): string[] {
  const out: string[] = [];
  for (const sub of ["", "certs", "issued", "private"]) {
    for (const n of listDir(sub ? d.p(sub) : d.dir)) {
      const m = TEMP_FILE.exec(n);
      if (m && !(Number(m[1]) !== process.pid && alive(Number(m[1])))) out.push(sub ? path.join(sub, n) : n);
    }
  }
  return out;
}

export function dirFacts(store: DirStore): DirFacts {
  const d = store.dir;
  let metaText = "";
  try {
    metaText = fs.readFileSync(d.metaPath, "utf8");
  } catch {
    metaText = "";
  }
  let bundleMtimeMs = 0;
  try {
    bundleMtimeMs = fs.statSync(d.bundlePath).mtimeMs;
  } catch {
    bundleMtimeMs = 0;
  }
  return {
    modes: modes(d),
    certFiles: listDir(d.p("certs")).filter((n) => /^[0-9A-F]+\.pem$/.test(n)).map((n) => n.slice(0, -4)),
    metaText,
    bundleMtimeMs,
    tmpFiles: deadTempFiles(d),
    lock: lockState(d.dir),
    lockPath: path.join(d.dir, LOCK_FILE),
  };
}

/** certs/<SERIAL>.pem's path (for messages). */
export const certFile = (store: DirStore, serial: string): string => store.dir.certPath(serial);

/**
 * Repairs of the directory itself, run under the store's lock before any
 * commit of the same run (the commit then reads the repaired index.txt):
 * temporary files removed, index.txt and index.meta rewritten by `index`
 * and `meta` (each given the text as it is now, returning the new text or
 * null to leave it).
 */
export function repairDirectory(store: DirStore, r: { tmpFiles: readonly string[]; index?: (text: string) => string | null; meta?: (text: string) => string | null }): void {
  const d = store.dir;
  for (const t of r.tmpFiles) fs.rmSync(path.join(d.dir, t), { force: true });
  const index = r.index?.(d.readIndexText());
  if (index != null) writeFilesAtomic([{ path: d.indexPath, data: index, mode: MODE.file }]);
  if (r.meta) {
    let text = "";
    try {
      text = fs.readFileSync(d.metaPath, "utf8");
    } catch {
      text = "";
    }
    const meta = r.meta(text);
    if (meta != null) writeFilesAtomic([{ path: d.metaPath, data: meta, mode: MODE.file }]);
  }
}

/** `pki doctor --break-lock`: remove the lock whatever holds it (store/lock.ts breakLock); what it was. */
export const breakDirLock = (store: DirStore): LockState => breakLock(store.dir.dir);
