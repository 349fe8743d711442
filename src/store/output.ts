/**
 * Outputs the user names (--out, --out-dir, issued names): confined.
 *
 * The CA's own files are never an output. `pki crl --out pki/private/ca.key`
 * or `pki sign-csr --out pki/ca.crt` would otherwise replace the CA key or
 * certificate (atomically and durably: the CA is gone). And an output is a
 * regular file or a new one: renaming over /dev/null, a FIFO or a socket
 * replaces it with a regular file (as root that breaks the system), a
 * symbolic link is replaced rather than followed (the user meant its target),
 * and a directory cannot be replaced at all.
 *
 * The check resolves the parent directory with realpath (so `pki/../pki/ca.crt`,
 * a symlinked parent or a different spelling of the CA directory all land on
 * the same real path) and compares it with the real CA directory. It runs
 * before anything is decrypted, signed or written, so a refusal changes
 * nothing. (A parent swapped for a symlink between the check and the write
 * by someone who can write there is beyond what a CLI can prevent; such a
 * user can replace the files directly anyway.)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { startStaging, writeFilesAtomic, type FileWrite, type Staging } from "./atomic.js";
import type { CaStore } from "./store.js";

/** The CA directory whose files an output must never replace (none for a database store). */
const caDirOf = (store: Pick<CaStore, "kind" | "location">): string | null => (store.kind === "dir" ? store.location : null);

/** Subdirectories of the CA directory whose every file is CA state. */
const STATE_DIRS = new Set(["private", "certs", "issued", "profiles", "newcerts"]);

/**
 * Files at the top of the CA directory that are CA state (case-insensitive:
 * on a case-insensitive file system CA.CRT is ca.crt): ca.crt and ca.key,
 * pki.json, index.* (index.txt, index.meta, index.txt.attr), crlnumber,
 * crl*.pem / crl.der / crl-chain.pem, audit.log, .lock and temporary files
 * (any dot file), parent.crt / parent-crl.pem, serial, ca-clients.crt, ca-chain.crt.
 */
const STATE_FILE = /^(?:\..*|ca\..*|ca-clients\..*|ca-chain\..*|pki\.json.*|index.*|crl.*|audit\.log.*|parent.*|serial.*)$/i;

/**
 * Is a path.relative() result outside its base? ".." or "../x" is; "..x"
 * (a file or directory whose name starts with two dots) is inside it.
 */
export const outsideRel = (rel: string): boolean => rel === ".." || rel.startsWith(".." + path.sep) || path.isAbsolute(rel);

/** What a real path inside the real CA directory is: state (refused) or not. */
export function isCaState(realCaDir: string, real: string): boolean {
  const rel = path.relative(realCaDir, real);
  if (rel === "") return true; // the directory itself
  if (outsideRel(rel)) return false;
  const parts = rel.split(path.sep);
  if (parts.length > 1) return STATE_DIRS.has(parts[0]!.toLowerCase()) || parts[0]!.startsWith(".");
  return STATE_FILE.test(parts[0]!);
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return path.resolve(p);
  }
}

const unsafe = (msg: string) => new PkiError("UNSAFE_PATH", msg);

/**
 * Real paths of directories, resolved once per check of a batch (a bulk
 * issuance confines 40,000 outputs in a handful of directories: realpath and
 * stat of the same parent 40,000 times cost seconds on a slow disk). A cache
 * lives for one call of confineOutputs, never longer.
 */
type DirCache = Map<string, string | PkiError> & { listings?: Map<string, Listing>; outside?: Map<string, boolean> };

/**
 * What a directory held when a batch started looking up many names in it:
 * after LIST_AFTER lookups in one directory, its entries are read once
 * (readdir) and a name that is not among them is known to be new without an
 * lstat of its own (a bulk issuance of 10,000 pairs looked up 70,000 new
 * names one by one, ~1 s of the main thread while the thread pool created
 * files in the same directory). A name that is listed is lstat'ed as before.
 * Names are compared in lower case, so that a case-insensitive file system
 * cannot hide an existing file behind another spelling. The listing is as
 * old as the first lookups, as an lstat's answer is: neither stops another
 * program from creating the file before pki writes it.
 */
interface Listing {
  lookups: number;
  names?: Set<string>;
}
const LIST_AFTER = 32;

/** True when `real` (a path realTarget returned through `cache`) is surely a new name: its directory was listed and the name is not in it. */
function knownNew(real: string, cache: DirCache | undefined): boolean {
  if (!cache) return false;
  const dir = path.dirname(real);
  const listings = (cache.listings ??= new Map());
  let l = listings.get(dir);
  if (!l) listings.set(dir, (l = { lookups: 0 }));
  if (!l.names && ++l.lookups > LIST_AFTER) {
    try {
      l.names = new Set(fs.readdirSync(dir).map((n) => n.toLowerCase()));
    } catch {
      l.lookups = -Infinity; // unreadable (write-only directory): lstat each name, as before
    }
  }
  return l.names !== undefined && !l.names.has(path.basename(real).toLowerCase());
}

/** The real path `p` would be written to: realpath of its parent, plus its own name (not followed). */
function realTarget(p: string, label: string, cache?: DirCache): string {
  const abs = path.resolve(p);
  const parent = path.dirname(abs);
  let realParent = cache?.get(parent);
  if (realParent === undefined) {
    try {
      realParent = fs.realpathSync.native(parent);
      if (!fs.statSync(realParent).isDirectory()) realParent = new PkiError("NOT_FOUND", `${parent} is not a directory`);
    } catch {
      realParent = new PkiError("NOT_FOUND", `the directory of ${label} ${p} does not exist: create it first`);
    }
    cache?.set(parent, realParent);
  }
  if (realParent instanceof PkiError) throw realParent;
  // a real path is already normal: no path.join (40,000 of them in a bulk issuance)
  return realParent === path.sep ? realParent + path.basename(abs) : realParent + path.sep + path.basename(abs);
}

/** Refuse an existing target that is not a regular file (symlink, device, FIFO, socket, directory). */
export function requireRegularOrNew(p: string, label = "output"): void {
  let st: fs.Stats | undefined;
  try {
    // no exception for the usual case, a new file (building one costs more than the lstat in a batch of 40,000)
    st = fs.lstatSync(p, { throwIfNoEntry: false });
  } catch {
    return; // a new file
  }
  if (st === undefined || st.isFile()) return;
  const kind = st.isSymbolicLink()
    ? "a symbolic link (it would be replaced, not followed): give the real path"
    : st.isDirectory()
      ? "a directory: give a file name"
      : st.isFIFO()
        ? "a FIFO: pki writes regular files only"
        : st.isSocket()
          ? "a socket: pki writes regular files only"
          : "a device: pki writes regular files only (use stdout, or --json, to pipe)";
  throw unsafe(`${label} ${p} is ${kind}`);
}

export interface ConfineOptions {
  /** the command's own default file(s), which it may write although they are CA state (crl.pem for `pki crl`) */
  own?: readonly string[];
  /** how to name the path in errors ("--out") */
  label?: string;
  /** what to do instead, added to the refusal of a CA state file */
  hint?: string;
}

/**
 * Check an output path before anything is done: returns its absolute path.
 * UNSAFE_PATH when it resolves to a file of the CA's own state (other than
 * the command's own default) or to anything but a regular file or a new one.
 */
export function confineOutput(store: Pick<CaStore, "kind" | "location">, p: string, opts: ConfineOptions = {}): string {
  return confineOne(store, p, opts);
}

/** confineOutput for several paths at once (one realpath of each directory): their absolute paths. */
export function confineOutputs(store: Pick<CaStore, "kind" | "location">, paths: readonly string[], opts: ConfineOptions = {}): string[] {
  return outputConfiner(store, opts)(paths);
}

/** confineOutputs for a batch checked in parts: each directory resolved once for all the parts. */
function outputConfiner(store: Pick<CaStore, "kind" | "location">, opts: ConfineOptions): (paths: readonly string[]) => string[] {
  const cache: DirCache = new Map();
  const dir = caDirOf(store);
  const caDir = dir === null ? null : realOrResolved(dir);
  return (paths) => paths.map((p) => confineOne(store, p, opts, cache, caDir));
}

function confineOne(store: Pick<CaStore, "kind" | "location">, p: string, opts: ConfineOptions, cache?: DirCache, realCaDir?: string | null): string {
  const label = opts.label ?? "output";
  if (p.trim() === "") throw new PkiError("USAGE", `${label} needs a file name`, { exitCode: 2 });
  const abs = path.resolve(p);
  const real = realTarget(abs, label, cache);
  if (!knownNew(real, cache)) requireRegularOrNew(real, label);
  const dir = caDirOf(store);
  const caDir = realCaDir !== undefined ? realCaDir : dir === null ? null : realOrResolved(dir);
  if (caDir !== null && !outsideCa(caDir, real, cache) && isCaState(caDir, real)) {
    const own = (opts.own ?? []).some((o) => {
      try {
        return realTarget(o, label) === real;
      } catch {
        return false;
      }
    });
    if (!own) {
      throw unsafe(`${label} ${p} is ${path.relative(caDir, real) || "the CA directory itself"} of the CA in ${dir}: pki never writes an output over the CA's own files; ${opts.hint ?? "choose a path outside them"}`);
    }
  }
  return abs;
}

/**
 * True when `real`'s directory is outside the real CA directory (so no file
 * in it is CA state), decided once per directory of a batch: path.relative
 * of 40,000 paths was a tenth of a second of a bulk issuance.
 */
function outsideCa(realCaDir: string, real: string, cache: DirCache | undefined): boolean {
  if (!cache) return false;
  const dir = path.dirname(real);
  const outside = (cache.outside ??= new Map());
  let o = outside.get(dir);
  if (o === undefined) {
    const rel = path.relative(realCaDir, dir);
    outside.set(dir, (o = outsideRel(rel)));
  }
  return o;
}

/** An --out-dir: an existing directory, not one of the CA's state directories. Returns its absolute path. */
export function confineOutDir(store: Pick<CaStore, "kind" | "location">, dir: string, label = "--out-dir"): string {
  let real: string;
  try {
    real = fs.realpathSync.native(dir);
  } catch {
    throw new PkiError("NOT_FOUND", `output directory ${dir} does not exist: create it first`);
  }
  if (!fs.statSync(real).isDirectory()) throw new PkiError("NOT_FOUND", `output directory ${dir} is not a directory`);
  const own = caDirOf(store);
  if (own === null) return path.resolve(dir);
  const caDir = realOrResolved(own);
  const rel = path.relative(caDir, real);
  if (rel !== "" && !outsideRel(rel) && isCaState(caDir, real)) {
    throw unsafe(`${label} ${dir} is ${rel}/ of the CA in ${own}: pki keeps its own files there; choose another directory`);
  }
  return path.resolve(dir);
}

/** Confine every write, then write them all atomically: the one writer of outputs a user asked for. */
export function writeOutputs(store: Pick<CaStore, "kind" | "location">, writes: readonly FileWrite[], opts: ConfineOptions = {}): void {
  for (const w of writes) confineOutput(store, w.path, opts);
  writeFilesAtomic(writes);
}

/**
 * Outputs of a batch (bulk issuance into --out-dir), confined and staged on
 * the thread pool as they are added (while the next ones are signed); the
 * caller renames them into place once its records are committed.
 */
export function stageOutputs(store: Pick<CaStore, "kind" | "location">, opts: ConfineOptions = {}, expect?: number): Staging {
  const confine = outputConfiner(store, opts);
  const staging = startStaging(undefined, { expect });
  return {
    add(writes) {
      confine(writes.map((w) => w.path));
      // every target was just checked (lstat: a regular file or a new one), more
      // strictly than the staging's own backstop; an exclusive write still gets it
      staging.add(writes, !writes.some((w) => w.exclusive));
    },
    done: () => staging.done(),
    abandon: () => staging.abandon(),
  };
}

/** The real path `p` names: realpath of the longest part of it that exists, the rest as written. */
function realOfNew(p: string): string {
  let head = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(head), ...tail.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return path.resolve(p);
      tail.push(path.basename(head));
      head = up;
    }
  }
}

const inside = (parent: string, child: string): string | null => {
  const rel = path.relative(parent, child);
  return outsideRel(rel) ? null : rel;
};

/**
 * A copy of a CA directory goes outside it: inside, it would be among the
 * CA's own files (private/, issued/: the next export reads it as a key or
 * a certificate), and around it, the CA would be inside its own copy.
 * Symbolic links are followed on both sides.
 */
export function refuseOverlap(caDir: string, dest: string, asGiven: string): void {
  const src = realOfNew(caDir);
  const to = realOfNew(dest);
  const rel = inside(src, to);
  if (rel === "") throw new PkiError("USAGE", "--to is the CA directory itself", { exitCode: 2 });
  if (rel !== null) throw new PkiError("UNSAFE_PATH", `--to ${asGiven} is inside the CA directory ${caDir} (${rel}): pki keeps its own files there; export to a directory outside it`);
  if (inside(to, src) !== null) throw new PkiError("UNSAFE_PATH", `--to ${asGiven} holds the CA directory ${caDir}: export to a new directory outside it`);
}
