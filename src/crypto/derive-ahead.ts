/**
 * PBKDF2 derivations started ahead of their use: cli/prefetch.ts starts the
 * CA key's (600,000 iterations, ~150 ms of a core) as soon as the command
 * line names the key and the passphrase, before the command's modules load;
 * loadPrivateKey (crypto/keys.ts) takes it when it decrypts that key.
 *
 * This module loads first: it reads the PBES2 parameters with
 * crypto/pbes2.ts, the same reader keys.ts decrypts with. A derivation is used only by a request
 * for the very same passphrase, salt, iteration count, key length and PRF,
 * and only once; anything else derives anew, so a guess that was wrong
 * costs CPU, never correctness.
 */
import * as crypto from "node:crypto";
import { readPbes2 } from "./pbes2.js";

export interface Pbkdf2Params {
  salt: Buffer;
  iterations: number;
  keyLength: number;
  prf: string;
}

type Ahead = Array<{ passphrase: string; p: Pbkdf2Params; dk: Promise<Buffer> }>;
/**
 * The derivations started ahead, kept on globalThis: bin/pki.js starts them
 * from dist/bundle/prefetch.cjs, a copy of this module apart from the one the
 * command's ES module bundle takes them from (scripts/bundle.mjs).
 */
const AHEAD = Symbol.for("pki.derive-ahead");
const ahead: Ahead = ((globalThis as { [AHEAD]?: Ahead })[AHEAD] ??= []);

export function pbkdf2(passphrase: string, p: Pbkdf2Params): Promise<Buffer> {
  return new Promise<Buffer>((res, rej) => crypto.pbkdf2(Buffer.from(passphrase, "utf8"), p.salt, p.iterations, p.keyLength, p.prf, (e, k) => (e ? rej(e) : res(k))));
}

/** Is a derivation started ahead still waiting for its user? (the CA key file's, from argv: cli/prefetch.ts) */
export function derivingAhead(): boolean {
  return ahead.length > 0;
}

/** The derivation of these parameters: the one started ahead when it matches, else a new one. */
export function derivedKey(passphrase: string, p: Pbkdf2Params): Promise<Buffer> {
  const i = ahead.findIndex((d) => d.passphrase === passphrase && d.p.iterations === p.iterations && d.p.keyLength === p.keyLength && d.p.prf === p.prf && d.p.salt.equals(p.salt));
  if (i < 0) return pbkdf2(passphrase, p);
  return ahead.splice(i, 1)[0]!.dk;
}

/** The PBKDF2 parameters of a PBES2 (PBKDF2 + AES-CBC) ENCRYPTED PRIVATE KEY PEM, or null (crypto/pbes2.ts). */
export function pbkdf2ParamsOf(pem: string): Pbkdf2Params | null {
  const p = readPbes2(pem);
  return p && { salt: p.salt, iterations: p.iterations, keyLength: p.keyLength, prf: p.prf };
}

/** Start the PBKDF2 of an encrypted key file's PEM now, for a loadPrivateKey to come (nothing for other PEMs). */
export function deriveAhead(pem: string, passphrase: string): void {
  const p = pbkdf2ParamsOf(pem);
  if (!p) return;
  const dk = pbkdf2(passphrase, p);
  dk.catch(() => {}); // its user sees the error, if any
  ahead.push({ passphrase, p, dk });
}
