/**
 * What holds the CA key: the one seam between "sign these bytes" and where
 * the key lives. Certificates, CRLs (the fast CRL-from-index path too) and
 * bulk issuance build their DER by hand up to the to-be-signed bytes and ask
 * a CaSigner for the signature; they never see a KeyObject.
 *
 * Implementations:
 * - the key file (`private/ca.key`, PBES2-encrypted or not): node:crypto's
 *   sign on a decrypted KeyObject, synchronous, so the bulk path stays as
 *   fast as before the seam existed;
 * - a PKCS#11 token (crypto/pkcs11.ts), selected by a `pkcs11:` URI in
 *   `--key` or in pki.json's "key".
 *
 * A new kind of key (a cloud KMS, an agent) is one more implementation of
 * this interface, picked where the authority is opened (openSigningAuthority, ca/open-ca.ts).
 */
import type { KeyObject } from "node:crypto";
import * as crypto from "node:crypto";
import { signatureAlgorithmFor, type SignatureAlgorithm } from "../core/certificate.js";
import { PkiError } from "../core/errors.js";
import { parsePkcs11Uri, type Pkcs11Uri } from "../core/pkcs11-uri.js";
import { signerFor, spkiDer } from "../crypto/keys.js";
import { readInputFile } from "../store/ca-dir.js";

export interface CaSigner {
  /** the CA key's SubjectPublicKeyInfo (DER): must equal ca.crt's */
  readonly publicKey: Uint8Array;
  /** the signature algorithm this key signs with (SHA-256 for RSA and P-256, SHA-384 for P-384, ...) */
  readonly algorithm: SignatureAlgorithm;
  /**
   * The signature over `tbs`, in the form X.509 carries in its BIT STRING
   * (ECDSA: a DER Ecdsa-Sig-Value, RSA: the PKCS#1 v1.5 block). Synchronous
   * where the key allows it (the key file), a promise otherwise.
   */
  sign(tbs: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /** where the key is, for messages: "private/ca.key", "pkcs11:token=...;object=..." (never a PIN) */
  readonly description: string;
  /** release what the signer holds (a token session); idempotent */
  close?(): void;
}

/** A signer over a key in memory (the decrypted key file): node:crypto underneath. */
export interface FileSigner extends CaSigner {
  readonly key: KeyObject;
  sign(tbs: Uint8Array): Uint8Array;
}

export function fileSigner(key: KeyObject, description = "private/ca.key"): FileSigner {
  const { signer, algorithm } = signerFor(key);
  return { key, algorithm, publicKey: spkiDer(crypto.createPublicKey(key)), description, sign: signer };
}

/** Sign and continue without a microtask when the signer is synchronous (the bulk path signs 100,000 times). */
export function thenSign<T>(signer: CaSigner, tbs: Uint8Array, done: (signature: Uint8Array) => T): T | Promise<T> {
  const s = signer.sign(tbs);
  return s instanceof Uint8Array ? done(s) : s.then(done);
}

// ---------------------------------------------------------------- PKCS#11

/** Where the PIN comes from: the URI's pin-source file, else $PKI_PKCS11_PIN; never argv. */
export type PinSource = (u: Pkcs11Uri) => Promise<string>;

/** The first line of the pin-source file, else PKI_PKCS11_PIN; PIN_REQUIRED when neither is there. */
export function pinFromSources(u: Pkcs11Uri, env: NodeJS.ProcessEnv): string | undefined {
  if (u.pinFile) {
    const line = readInputFile(u.pinFile, "PIN file (pin-source)", 4096).toString("utf8").split(/\r?\n/)[0] ?? "";
    if (line === "") throw new PkiError("BAD_INPUT", `PIN file (pin-source) ${u.pinFile} is empty: its first line must hold the PIN`);
    return line;
  }
  const v = env.PKI_PKCS11_PIN;
  return v !== undefined && v !== "" ? v : undefined;
}

export const pinRequired = (u: Pkcs11Uri) =>
  new PkiError("PIN_REQUIRED", `the token of the CA key needs a PIN: add pin-source=file:/path/to/pin to the key URI, or set PKI_PKCS11_PIN${u.token ? ` (token "${u.token}")` : ""}`, { exitCode: 2 });

export const defaultPin = (env: NodeJS.ProcessEnv = process.env): PinSource => async (u) => {
  const p = pinFromSources(u, env);
  if (p === undefined) throw pinRequired(u);
  return p;
};

export interface TokenSignerOptions {
  pin: PinSource;
  /** pki init --key-type: make the key pair on the token (refused when the key exists there) */
  generate?: "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" | "rsa-4096";
}

/**
 * A signer over a key on a PKCS#11 token. crypto/pkcs11.ts (and the optional
 * native binding under it) is loaded only here, when a pkcs11: URI is used.
 */
export async function tokenSigner(uri: string | Pkcs11Uri, o: TokenSignerOptions): Promise<CaSigner & { kind: string }> {
  const u = typeof uri === "string" ? parsePkcs11Uri(uri) : uri;
  const { openTokenKey } = await import("../crypto/pkcs11.js");
  const k = await openTokenKey(u, { pin: () => o.pin(u), generate: o.generate });
  return { kind: k.kind, publicKey: k.spki, algorithm: signatureAlgorithmFor(k.kind), description: k.description, sign: k.sign, close: k.close };
}
