/**
 * Start the CA key's PBKDF2 (600,000 iterations, ~150 ms of a core) as soon
 * as the command line says which key and which passphrase, before the
 * command's modules load (bin/pki.js calls this first): the derivation runs
 * on the thread pool while the main thread loads and parses ~50 modules, and
 * loadPrivateKey (crypto/keys.ts) picks the result up.
 *
 * Only a guess, never a decision: it reads what the command itself will read
 * (the passphrase file's first line, private/ca.key of the CA directory) the
 * way it will read them, and does nothing at all when anything is unusual
 * (a database store, a token, a passphrase file others can read, a key that
 * is not PBES2, an unreadable file). The command then checks everything as
 * before: a wrong passphrase is the same one-line error, and a derivation
 * that does not match what the command finally uses (other passphrase, other
 * key) is simply not used. Nothing is written, printed or logged here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { deriveAhead } from "../crypto/derive-ahead.js";
import { VALUED } from "./argv.js";

export { soleCommandWord } from "./argv.js";

/** Commands that decrypt the CA key file (with a passphrase source given). */
const KEY_COMMANDS = new Set(["sign-csr", "issue", "revoke", "crl", "renew", "serve"]);

function firstLineOfSecret(file: string): string | undefined {
  // a FIFO or /dev/fd/N (`--passphrase-file <(...)`) is not even opened: its
  // one reading belongs to the command, and opening a FIFO blocks
  if (!fs.statSync(file).isFile()) return undefined;
  const fd = fs.openSync(file, "r");
  try {
    const st = fs.fstatSync(fd);
    // the command refuses a passphrase file others can read: so does the guess
    if (!st.isFile() || st.mode & 0o077 || st.size > 64 * 1024) return undefined;
    const line = fs.readFileSync(fd, "utf8").split(/\r?\n/)[0] ?? "";
    return line === "" ? undefined : line;
  } finally {
    fs.closeSync(fd);
  }
}

export function prefetchCaKey(argv: readonly string[], env: NodeJS.ProcessEnv): void {
  try {
    const o: Record<string, string> = {};
    let command: string | undefined;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const eq = a.indexOf("=");
      if (a.startsWith("--") && eq > 0 && VALUED.has(a.slice(0, eq))) o[a.slice(0, eq)] = a.slice(eq + 1);
      else if (VALUED.has(a)) o[a] = argv[++i] ?? "";
      else if (a === "--") break;
      else if (command === undefined && !a.startsWith("-")) command = a;
    }
    if (command === undefined || !KEY_COMMANDS.has(command)) return;
    const store = o["--store"] ?? (env.PKI_STORE || undefined);
    if (store !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(store)) return; // a database: the key is not a file here
    const dir = path.resolve(store ?? o["-d"] ?? o["--dir"] ?? (env.PKI_DIR || "pki"));
    const passFile = o["--passphrase-file"] ?? (env.PKI_PASSPHRASE_FILE || undefined);
    const passphrase = passFile !== undefined ? firstLineOfSecret(passFile) : env.PKI_PASSPHRASE || undefined;
    if (passphrase === undefined) return;
    const pem = fs.readFileSync(path.join(dir, "private", "ca.key"), "utf8");
    if (!pem.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) return;
    deriveAhead(pem, passphrase);
  } catch {
    // a guess that cannot be made is no error: the command reports what is wrong
  }
}
