/**
 * What a command gets from the CLI layer: the resolved global options, the
 * clock, the streams and a way to obtain secrets. Commands never read
 * process.argv or process.env themselves, so tests can hand in their own.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { readBounded, type InputLabel } from "../store/input.js";
import { isDatabaseUrl, redactUrl, urlHasPassword } from "../store/db-url.js";
import { parsePkcs11Uri } from "../core/pkcs11-uri.js";
// types only: this module is loaded for every command, `pki --help` included
import type { Authority, KeyAccess } from "../ca/authority.js";
import type { CaStore } from "../store/store.js";

export interface GlobalOptions {
  dir?: string;
  /** --store: a postgres:// URL (never with a password) or a directory */
  store?: string;
  json?: boolean;
  passphraseFile?: string;
  yes?: boolean;
  color?: boolean;
  quiet?: boolean;
}

export interface Context {
  /** the CA directory (absolute), or the store URL (without a password) when the CA is in a database: for messages */
  dir: string;
  /** where the CA lives: --store, $PKI_STORE, else the directory (--dir, $PKI_DIR, ./pki) */
  location: string;
  /** the store at `location`, opened on first use (one per command) */
  openStore(): Promise<CaStore>;
  /** close the store if it was opened (run.ts, after the command) */
  closeStore(): Promise<void>;
  json: boolean;
  yes: boolean;
  /** prompts allowed: stdin and stderr are terminals, no --yes, no CI */
  interactive: boolean;
  color: boolean;
  /** --quiet: no chatter on stderr (info, spinners, bars); warnings and errors still appear */
  quiet: boolean;
  env: NodeJS.ProcessEnv;
  now: () => Date;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** the CA key passphrase from --passphrase-file, $PKI_PASSPHRASE_FILE or $PKI_PASSPHRASE; undefined if none given */
  passphraseFromSources(): string | undefined;
  /** facts for the audit line of a refusal (profile, CSR hash, target): filled by commands as they learn them */
  auditInfo: Record<string, unknown>;
  /** human chatter on stderr (kept in --json mode too: stdout stays pure JSON) */
  info(msg: string): void;
  warn(msg: string): void;
}

/**
 * How a secret file is named in errors: by the option that gave it, never by
 * its path. `--passphrase-file hunter2` (the passphrase typed where its file
 * name belongs) is a common slip, and the path would then carry the secret
 * into stderr, the JSON error and audit.log.
 */
export function secretFileOf(option: string): InputLabel {
  return { what: option.startsWith("$") ? `the file named by ${option}` : `the file given to ${option}` };
}

/** First line of a secret file, without its line ending. Errors never repeat the path (see secretFileOf). */
export function readSecretFile(p: string, what: InputLabel): string {
  let buf: Buffer;
  try {
    buf = readBounded(p, 64 * 1024, { what: what.what });
  } catch (e) {
    if (e instanceof PkiError && e.code === "NOT_FOUND") {
      throw new PkiError("NOT_FOUND", `${what.what} does not exist: give the path of a file whose first line is the secret, never the secret itself`);
    }
    throw e;
  }
  // like a private key (CaDir.checkKeyMode): a secret others can read is refused, not used
  let mode = 0;
  try {
    const st = fs.statSync(p);
    if (st.isFile()) mode = st.mode & 0o777;
  } catch {
    /* read above: a pipe or a file that vanished since */
  }
  if (mode & 0o077) {
    throw new PkiError("KEY_MODE", `${what.what} has mode ${mode.toString(8).padStart(4, "0")}: a passphrase file must be readable by its owner only; run chmod 600 on it`);
  }
  const line = buf.toString("utf8").split(/\r?\n/)[0] ?? "";
  if (line === "") throw new PkiError("BAD_INPUT", `${what.what} is empty: its first line must hold the passphrase`);
  return line;
}

/** A database URL as shown to a user: its password (from $PKI_STORE) dropped, also a password= parameter. */
export function withoutPassword(url: string): string {
  return urlHasPassword(url) ? redactUrl(url) : url;
}

/** A --store URL given on the command line must not carry a password (argv is visible to every user of the machine). */
function refusePasswordInArgv(location: string): void {
  if (isDatabaseUrl(location) && urlHasPassword(location)) {
    throw new PkiError("USAGE", "--store: a password in the URL on the command line is visible to every user of this machine: remove it and use PGPASSWORD, ~/.pgpass or the PKI_STORE environment variable", { exitCode: 2 });
  }
}

export function makeContext(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Context {
  const json = g.json === true;
  const yes = g.yes === true;
  const stderr = process.stderr;
  const ci = env.CI !== undefined && env.CI !== "" && env.CI !== "false" && env.CI !== "0";
  const interactive = !yes && !ci && process.stdin.isTTY === true && stderr.isTTY === true;
  const color = g.color !== false && !("NO_COLOR" in env && env.NO_COLOR !== "") && stderr.isTTY === true && env.TERM !== "dumb";
  // a password in argv is visible to every user of the machine (ps, /proc): refused before anything else
  if (g.store !== undefined) refusePasswordInArgv(g.store);
  // the command line beats the environment: --dir names a directory even when PKI_STORE is set
  const chosen = g.store ?? (g.dir === undefined ? env.PKI_STORE || undefined : undefined);
  const location = chosen !== undefined && isDatabaseUrl(chosen) ? chosen : path.resolve(chosen ?? g.dir ?? (env.PKI_DIR || "pki"));
  const dir = isDatabaseUrl(location) ? withoutPassword(location) : location;
  let opened: Promise<CaStore> | undefined;
  const ctx: Context = {
    dir,
    location,
    openStore() {
      return (opened ??= (async () => (await import("../store/open.js")).openStore(location))());
    },
    async closeStore() {
      if (!opened) return;
      const o = opened;
      opened = undefined;
      try {
        await (await o).close();
      } catch {
        /* never opened, or already gone */
      }
    },
    json,
    yes,
    interactive,
    color,
    quiet: g.quiet === true,
    env,
    now: () => new Date(),
    auditInfo: {},
    stdout: process.stdout,
    stderr,
    passphraseFromSources() {
      if (g.passphraseFile) return readSecretFile(g.passphraseFile, secretFileOf("--passphrase-file"));
      if (env.PKI_PASSPHRASE_FILE) return readSecretFile(env.PKI_PASSPHRASE_FILE, secretFileOf("$PKI_PASSPHRASE_FILE"));
      if (env.PKI_PASSPHRASE !== undefined && env.PKI_PASSPHRASE !== "") return env.PKI_PASSPHRASE;
      return undefined;
    },
    info(msg) {
      if (g.quiet === true) return;
      stderr.write(msg + "\n");
    },
    warn(msg) {
      stderr.write(`pki: warning: ${msg}\n`);
    },
  };
  return ctx;
}

/** The CA passphrase of this process was typed at a prompt (errors then say so, not "check --passphrase-file"). */
export let passphraseTyped = false;

/** The CA passphrase: a source, else a hidden prompt on a terminal, else a usage error naming the flags. */
export async function caPassphrase(ctx: Context): Promise<string> {
  const p = ctx.passphraseFromSources();
  if (p !== undefined) return p;
  if (!ctx.interactive) {
    throw new PkiError(
      "PASSPHRASE_REQUIRED",
      "the CA key is encrypted and no passphrase was given: pass --passphrase-file FILE or set PKI_PASSPHRASE_FILE (or PKI_PASSPHRASE)",
      { exitCode: 2 },
    );
  }
  const { askSecret } = await import("../ui/prompt.js");
  const typed = await askSecret("CA key passphrase");
  passphraseTyped = true;
  return typed;
}

/**
 * How a command reaches the CA key: the passphrase (asked for only if the
 * key file is encrypted), or, with `--key <pkcs11: URI>` or pki.json's
 * "key", a token whose PIN comes from the URI's pin-source file or
 * $PKI_PKCS11_PIN (else a hidden prompt on a terminal; never argv).
 */
export function keyAccess(ctx: Context, keyUri: string | undefined, opts: { prompt?: boolean } = {}): KeyAccess {
  if (keyUri !== undefined) parsePkcs11Uri(keyUri); // a bad --key is a usage error before any work
  const prompt = opts.prompt !== false && ctx.interactive;
  return {
    passphrase: () => caPassphrase(ctx),
    keyUri,
    pin: async (u) => {
      const { pinFromSources, pinRequired } = await import("../ca/signer.js");
      const p = pinFromSources(u, ctx.env);
      if (p !== undefined) return p;
      if (!prompt) throw pinRequired(u);
      const { askSecret } = await import("../ui/prompt.js");
      return askSecret(`PIN of token ${u.token ? `"${u.token}"` : "(CA key)"}`);
    },
  };
}

/**
 * The same, with the secret asked for now (before a command takes the lock:
 * a prompt must never run under it): the passphrase for a key file, the
 * PIN for a token.
 */
export async function keyAccessNow(ctx: Context, ca: Authority, keyUri: string | undefined): Promise<KeyAccess> {
  const access = keyAccess(ctx, keyUri);
  const uri = keyUri ?? ca.settings.key;
  if (uri === undefined) {
    // a key stored with --no-passphrase needs none (reading it here also
    // surfaces a missing key or a too-open mode before any prompt)
    const { isEncryptedPem } = await import("../crypto/keys.js");
    const { readCaKeyPem } = await import("../ca/authority.js");
    const keyPem = await readCaKeyPem(ca.store);
    if (!isEncryptedPem(keyPem)) return { ...access, keyPem };
    const pass = await caPassphrase(ctx);
    return { ...access, keyPem, passphrase: async () => pass };
  }
  // the PIN now if there is one to be had; a token that needs none (a PIN pad) still works
  const { pinFromSources, pinRequired } = await import("../ca/signer.js");
  const u = parsePkcs11Uri(uri);
  let pin = pinFromSources(u, ctx.env);
  if (pin === undefined && ctx.interactive) pin = await access.pin!(u);
  return {
    ...access,
    pin: async () => {
      if (pin === undefined) throw pinRequired(u);
      return pin;
    },
  };
}
