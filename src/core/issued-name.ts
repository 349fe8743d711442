/**
 * Issued names (`pki issue <profile> <name>`, `--names-from`): a name becomes
 * files, so it is checked to be a file name that can never land on another
 * file:
 *
 *   issued/<name>.crt  issued/<name>.chain.crt  issued/<name>.p12  private/<name>.key
 *
 * - letters, digits, '.', '-', '_', '@'; starts with a letter or digit; no "..";
 *   at most 128 characters (no path separators, no dot files);
 * - not a name of the CA's own files: `ca` would make private/ca.key, the CA
 *   key itself (also `CA`: on a case-insensitive file system it is the same
 *   file), and `parent` (kept for an issuing CA's parent files);
 * - not ending in ".chain": `web.chain` would write issued/web.chain.crt, the
 *   chain file of `web`. With that suffix excluded, the four files of two
 *   different names never coincide.
 *
 * Pure: no fs.
 */
import { PkiError } from "./errors.js";

/** Names whose files are (or are kept free for) the CA's own keys and certificates. */
export const RESERVED_NAMES: readonly string[] = ["ca", "parent"];

/** Throws USAGE (exit 2) for a malformed name, UNSAFE_PATH (exit 1) for one whose files would collide. */
export function checkIssuedName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(name) || name.includes("..")) {
    throw new PkiError("USAGE", `invalid name ${JSON.stringify(name)}: use letters, digits, '.', '-', '_' or '@' (it becomes a file name)`, { exitCode: 2 });
  }
  const lower = name.toLowerCase();
  if (RESERVED_NAMES.includes(lower)) {
    throw new PkiError("UNSAFE_PATH", `the name "${name}" is one of the CA's own files (private/${lower}.key): choose another name`);
  }
  if (lower.endsWith(".chain")) {
    throw new PkiError("UNSAFE_PATH", `the name "${name}" would write issued/${name}.crt, the chain file of "${name.slice(0, -6)}": choose a name that does not end in ".chain"`);
  }
}
