/**
 * What argv names before anything is loaded: shared by bin/pki.js (through
 * dist/bundle/prefetch.cjs: which command's file to load, whose CA key to
 * start deriving) and cli/run.ts (which one command to define).
 */

/** Global options that take a value (program.ts GLOBAL_OPTIONS). */
export const VALUED = new Set(["-d", "--dir", "--passphrase-file", "--store"]);

/**
 * The command word of argv (its first argument that is neither an option nor
 * a global option's value), when argv asks for no help or version: else
 * undefined. Whether it is a command at all is the caller's to check.
 */
export function soleCommandWord(argv: readonly string[]): string | undefined {
  let name: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (a === "-h" || a === "--help" || a === "-V" || a === "--version") return undefined;
    if (VALUED.has(a)) i++;
    else if (name === undefined && !a.startsWith("-")) name = a;
  }
  return name;
}
