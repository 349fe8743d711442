/**
 * The files of an issued name: issued/<name>.crt, its chain, the key in
 * private/<name>.key and an optional PKCS#12 in the store, or the same four
 * in an --out-dir the user named. Where they go is decided here once for
 * issue, renew, sign-csr and init --parent.
 */
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import type { IndexEntry } from "../core/index-format.js";
import { checkIssuedName } from "../core/issued-name.js";
import type { FileWrite } from "../store/atomic.js";
import { confineOutputs, requireRegularOrNew } from "../store/output.js";
import { DOC, type CaStore, type DocWrite, type StoreReader } from "../store/store.js";
import { docWhere } from "./authority.js";

export interface IssuedPaths {
  cert: string;
  key: string;
  chain: string;
  p12: string;
}

const p12Doc = (name: string) => `issued/${name}.p12`;

/** Where the files of `name` are (absolute paths in a CA directory or --out-dir; names in a database). */
export function pathsFor(store: CaStore, name: string, outDir?: string): IssuedPaths {
  if (outDir) {
    // path.join(outDir, file), for a name that is one plain path segment
    // (checkIssuedName), without normalising the directory again for each of a batch's 40,000 files
    const d = joinable(outDir);
    return { cert: `${d}${name}.crt`, chain: `${d}${name}.chain.crt`, key: `${d}${name}.key`, p12: `${d}${name}.p12` };
  }
  return { cert: docWhere(store, DOC.issuedCert(name)), chain: docWhere(store, DOC.issuedChain(name)), key: docWhere(store, DOC.issuedKey(name)), p12: docWhere(store, p12Doc(name)) };
}

/** The prefix that path.join(dir, x) puts before a plain file name x ("" for "."), kept for the last directory asked. */
let lastDir: [string, string] | undefined;
function joinable(dir: string): string {
  if (lastDir?.[0] !== dir) {
    const n = path.normalize(dir);
    lastDir = [dir, n === "." || n === "./" ? "" : n.endsWith(path.sep) ? n : n + path.sep];
  }
  return lastDir[1];
}

/**
 * pathsFor, checked before anything is done: the name is an issued name that
 * collides with no other file (core/issued-name.ts); with --out-dir every file
 * is confined (store/output.ts: never a CA file, never a non-regular file);
 * in the CA directory (issued/, private/) each is a regular file or a new one.
 */
export function confinedPathsFor(store: CaStore, name: string, outDir?: string): IssuedPaths {
  return confinedPathsForAll(store, [name], outDir)[0]!;
}

/** confinedPathsFor of a batch: one check of all the files, each directory resolved once (a bulk issue names 10,000). */
export function confinedPathsForAll(store: CaStore, names: readonly string[], outDir?: string): IssuedPaths[] {
  const all = names.map((name) => {
    checkIssuedName(name);
    return pathsFor(store, name, outDir);
  });
  const files = all.flatMap((p) => [p.cert, p.chain, p.key, p.p12]);
  if (outDir) confineOutputs(store, files, { label: `--out-dir file` });
  else if (store.kind === "dir") for (const f of files) requireRegularOrNew(f, `the file`);
  return all;
}

/** What to write for an issued name: documents of the store, or files in an --out-dir (written once the certificate is recorded). */
export interface IssuedWrites {
  docs: DocWrite[];
  outputs: FileWrite[];
}

/**
 * On a PostgreSQL store the documents are always written (so that export p12,
 * renew and nginx-config work from any host: README "Shared store:
 * PostgreSQL"), and the files too when there is an --out-dir (pki issue
 * gives the current directory by default there: see defaultOutDir).
 */
export function issuedWrites(store: CaStore, name: string, outDir: string | undefined, f: { cert: string; chain?: string; key?: string; p12?: Uint8Array }): IssuedWrites {
  const outputs: FileWrite[] = [];
  if (outDir) {
    const p = pathsFor(store, name, outDir);
    if (f.key !== undefined) outputs.push({ path: p.key, data: f.key, mode: 0o600 });
    outputs.push({ path: p.cert, data: f.cert, mode: 0o644 });
    if (f.chain !== undefined) outputs.push({ path: p.chain, data: f.chain, mode: 0o644 });
    if (f.p12 !== undefined) outputs.push({ path: p.p12, data: f.p12, mode: 0o600 });
    if (store.kind === "dir") return { docs: [], outputs };
  }
  const docs: DocWrite[] = [];
  if (f.key !== undefined) docs.push({ name: DOC.issuedKey(name), data: f.key, mode: 0o600 });
  docs.push({ name: DOC.issuedCert(name), data: f.cert });
  if (f.chain !== undefined) docs.push({ name: DOC.issuedChain(name), data: f.chain });
  if (f.p12 !== undefined) docs.push({ name: p12Doc(name), data: f.p12, mode: 0o600 });
  return { docs, outputs };
}

/**
 * Where `pki issue` writes the pair when no --out-dir is given: nowhere
 * outside a CA directory (issued/ and private/ are the files), the current
 * directory for a database store (the pair is also kept in the store).
 */
export function defaultOutDir(store: CaStore, outDir: string | undefined): string | undefined {
  return outDir ?? (store.kind === "postgres" ? path.resolve(".") : undefined);
}

/** Refuse names that already hold a valid (unrevoked, unexpired) certificate. */
export async function refuseTakenNames(reader: StoreReader, names: readonly string[], index: IndexEntry[], now: Date): Promise<void> {
  const meta = await reader.meta();
  const wanted = new Set(names);
  for (const e of index) {
    if (e.status !== "V" || e.expires.getTime() <= now.getTime()) continue;
    const n = meta.get(e.serial)?.name;
    if (n !== undefined && wanted.has(n)) {
      throw new PkiError("NAME_EXISTS", `"${n}" already holds a valid certificate (serial ${e.serial}): use \`pki renew ${n}\`, or \`pki revoke ${n}\` first`);
    }
  }
}
