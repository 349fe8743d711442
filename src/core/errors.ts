/**
 * The one error type of pki. Every failure a user can cause is a PkiError
 * with a stable code (scripts match on it, see README "Error codes"), a
 * one-line message that says what is wrong and what to do, and an exit code:
 * 1 for a failed operation, 2 for a usage error. Anything else reaching the
 * top level is a bug and is reported as INTERNAL.
 */
export const ERROR_CODES = {
  USAGE: "bad command line: unknown flag, missing argument or missing input without a TTY",
  NO_CA: "the directory holds no CA (run `pki init`)",
  CA_EXISTS: "`pki init` on a directory that already holds a CA",
  CA_INVALID: "the CA directory is damaged or inconsistent (run `pki doctor`)",
  PASSPHRASE_REQUIRED: "the CA key is encrypted and no passphrase source was given",
  BAD_PASSPHRASE: "the passphrase does not decrypt the key",
  PIN_REQUIRED: "the CA key is on a PKCS#11 token that needs a PIN and no PIN source was given",
  BAD_PIN: "the token refused the PIN (wrong, locked or expired)",
  PKCS11_ERROR: "the PKCS#11 token, module or key could not be used (missing module, token absent, key not found)",
  KEY_MODE: "a private key or passphrase file is readable by group or others; pki refuses to use it",
  BAD_INPUT: "an input file is not what it should be (not a CSR, truncated, garbage)",
  INPUT_TOO_LARGE: "an input file is larger than pki accepts",
  NOT_FOUND: "a file, serial or name does not exist",
  BAD_CSR_SIGNATURE: "the CSR's self-signature does not verify",
  WEAK_KEY: "the key type or size is not accepted",
  POLICY_DENIED: "a name in the request is outside the name policy in pki.json",
  PROFILE_INVALID: "a certificate profile is malformed or unknown",
  NAME_EXISTS: "`pki issue` or `sign-csr --name`: the name already holds a valid certificate (`sign-csr --replace` supersedes it)",
  CRL_NOT_NEWER: "`pki crl --import-parent`: the CRL is not newer than the installed parent CRL",
  ALREADY_REVOKED: "the certificate is already revoked",
  LOCK_TIMEOUT: "another pki process held the CA directory lock for too long",
  STORE_UNAVAILABLE: "the PostgreSQL store could not be used: unreachable, login refused (password), lost connection or timeout; nothing was committed",
  STORE_VERSION: "the PostgreSQL store's schema is newer than this pki knows: upgrade pki",
  STORE_CONFLICT: "a concurrent change conflicted with this one in the PostgreSQL store (a serial recorded meanwhile); nothing was committed, run the command again",
  VERIFY_FAILED: "`pki verify`: the certificate did not pass every check",
  SOURCE_INVALID: "`pki import`: the source directory has problems (each listed on stderr); nothing imported unless --skip-broken",
  EXPIRING: "`pki status --fail-within`: a CA, CRL or valid certificate expires within the window",
  UNSAFE_PATH: "an output path or issued name would land on the CA's own files, or on something that is not a regular file",
  NOT_ISSUED_HERE: "a certificate file given as a target was not signed by this CA's key, or differs from the CA's own copy",
  IO_ERROR: "a file could not be read or written",
  CRL_SHRINK: "the new CRL would drop a revoked certificate that has not expired (index.txt older than crl.pem); `pki crl --allow-shrink` to do it on purpose",
  CA_EXPIRED: "the CA certificate has expired or is not yet valid: it cannot issue",
  INTERNAL: "a bug in pki (run with PKI_DEBUG=1 and report it)",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Marks every PkiError, whichever copy of this module made it (see below). */
const PKI_ERROR = Symbol.for("pki.error");

export class PkiError extends Error {
  /**
   * `instanceof PkiError` holds for an error made by another copy of this
   * class: scripts/bundle.mjs builds each command into one file and the
   * modules it loads late (the PostgreSQL store, the prompts, the token,
   * PKCS#12) into files of their own, each with its copy of this module.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === "object" && x !== null && (x as { [PKI_ERROR]?: unknown })[PKI_ERROR] === true;
  }

  readonly code: ErrorCode;
  readonly exitCode: 1 | 2;
  /** Extra fields to put into the JSON error document (e.g. verify results). */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { exitCode?: 1 | 2; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "PkiError";
    Object.defineProperty(this, PKI_ERROR, { value: true });
    this.code = code;
    this.exitCode = opts.exitCode ?? (code === "USAGE" || code === "PASSPHRASE_REQUIRED" || code === "PIN_REQUIRED" ? 2 : 1);
    this.details = opts.details;
  }
}

/** Usage errors read the same everywhere: what is missing and which flag supplies it. */
export function usage(message: string): PkiError {
  return new PkiError("USAGE", message, { exitCode: 2 });
}

export function missingInput(what: string, flag: string): PkiError {
  return usage(`${what} is required: pass ${flag} (no prompt without a terminal)`);
}

/** "a, b, c and 4 more": the first `max` items of a list named in a message, the rest counted. */
export function listSome(items: readonly string[], max: number): string {
  return items.length > max ? `${items.slice(0, max).join(", ")} and ${items.length - max} more` : items.join(", ");
}

export function isPkiError(e: unknown): e is PkiError {
  return e instanceof PkiError;
}
