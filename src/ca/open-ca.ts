/**
 * The CA as stored: open it (certificate, settings, profiles) and its signer
 * (the key file or a token, checked against ca.crt). What issuance
 * (ca/authority.ts), revocation (ca/revocation.ts) and the parent link
 * (ca/parent.ts) all need lives here, so that none of them imports another
 * for it and the import graph of src/ stays acyclic (#9).
 */
import * as path from "node:path";
import { signatureAlgorithmFor, type SignatureAlgorithm } from "../core/certificate.js";
import { PkiError } from "../core/errors.js";
import { parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import type { Profile } from "../core/profiles.js";
import { keyIdentifier, keyKindOfSpki, loadPrivateKey, verifySignature } from "../crypto/keys.js";
import { builtinProfiles, parseSettings, profileFromText, type Settings } from "../store/ca-dir.js";
import { DOC, type CaStore, type DocName, type StoreReader } from "../store/store.js";
import { defaultPin, fileSigner, tokenSigner, type CaSigner, type PinSource } from "./signer.js";
import { didYouMean } from "../core/suggest.js";

export interface Authority {
  store: CaStore;
  settings: Settings;
  /** pki.json as stored (its other keys: bundle, allowList, importedFrom, ...) */
  settingsDoc: Record<string, unknown>;
  /** parent.crt in an issuing CA (ca/parent.ts), else null */
  parentPem: string | null;
  certPem: string;
  cert: ParsedCertificate;
  keyId: Uint8Array;
  /** the signature algorithm of this CA's key, known from its certificate */
  algorithm: SignatureAlgorithm;
}

export interface SigningAuthority extends Authority {
  /** what signs for this CA (the key file or a token): see ca/signer.ts */
  caSigner: CaSigner;
}

export function readCertificatePem(text: string, what: string): { pem: string; cert: ParsedCertificate } {
  const blocks = parsePemBlocks(text).filter((b) => b.label === "CERTIFICATE");
  if (!blocks.length) throw new PkiError("CA_INVALID", `${what} holds no PEM certificate`);
  try {
    return { pem: toPem("CERTIFICATE", blocks[0]!.der), cert: parseCertificate(blocks[0]!.der) };
  } catch (e) {
    throw new PkiError("CA_INVALID", `${what} is not a readable certificate: ${(e as Error).message}`);
  }
}

/** Was this certificate (or CRL) signed by this CA: same issuer name and a signature its key verifies? */
export function issuedBy(ca: Authority, doc: { issuerRaw: Uint8Array; signatureAlgorithm: string; tbs: Uint8Array; signature: Uint8Array }): boolean {
  if (!Buffer.from(doc.issuerRaw).equals(Buffer.from(ca.cert.subjectRaw))) return false;
  try {
    return verifySignature(ca.cert.spki.raw, doc.signatureAlgorithm, doc.tbs, doc.signature);
  } catch {
    return false;
  }
}

/** Where a document is, for messages and --json: its path in a CA directory, else its name in the store. */
export function docWhere(store: CaStore, name: DocName): string {
  return store.kind === "dir" ? path.join(store.location, ...name.split("/")) : name;
}

export const noCa = (store: CaStore): PkiError =>
  new PkiError("NO_CA", `no CA in ${store.location}: run \`pki init\` there, or pass --dir / set PKI_DIR`);

/** A document as text; CA_INVALID naming it when it is missing. */
export async function readDocText(store: StoreReader & { location?: string }, name: DocName, what: string = name): Promise<string> {
  const b = await store.read(name);
  if (b === null) throw new PkiError("CA_INVALID", `${what} is missing; run \`pki doctor\``);
  return b.toString("utf8");
}

/** pki.json as a JSON object (for the keys Settings does not carry). */
export function settingsObject(text: string): Record<string, unknown> {
  try {
    const o = JSON.parse(text) as unknown;
    return typeof o === "object" && o !== null ? (o as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The authority from its documents in memory (init and import build one before the store holds them). */
export function authorityOf(store: CaStore, settingsText: string, caCertText: string, parentPem: string | null): Authority {
  const settings = parseSettings(settingsText);
  const { pem, cert } = readCertificatePem(caCertText, "ca.crt");
  return { store, settings, settingsDoc: settingsObject(settingsText), parentPem, certPem: pem, cert, keyId: keyIdentifier(cert.spki.raw), algorithm: signatureAlgorithmFor(keyKindOfSpki(cert.spki.raw)) };
}

export async function openAuthority(store: CaStore): Promise<Authority> {
  const [settings, caCert, parent] = await Promise.all([store.read(DOC.settings), store.read(DOC.caCert), store.read(DOC.parentCert)]);
  if (settings === null || caCert === null) throw noCa(store);
  return authorityOf(store, settings.toString("utf8"), caCert.toString("utf8"), parent === null ? null : parent.toString("utf8"));
}

/** Is there anything of a CA in this store (pki.json, ca.crt or the key)? init and import never touch one. */
export async function caPresent(store: CaStore): Promise<boolean> {
  for (const name of [DOC.settings, DOC.caCert, DOC.caKey]) {
    try {
      if ((await store.read(name)) !== null) return true;
    } catch {
      return true; // there, but unreadable (a key readable by others)
    }
  }
  return false;
}

/** The encrypted (or plain) PEM of the CA key file; CA_INVALID when there is none. */
export async function readCaKeyPem(store: CaStore): Promise<string> {
  const b = await store.read(DOC.caKey);
  if (b === null) throw new PkiError("CA_INVALID", `the key ${docWhere(store, DOC.caKey)} is missing`);
  return b.toString("utf8");
}

/** The built-in profiles, then the CA's own (profiles/<name>.json: they override). */
export async function loadProfiles(store: StoreReader): Promise<Map<string, Profile>> {
  const out = new Map(builtinProfiles());
  for (const name of await store.list("profiles")) {
    if (!name.endsWith(".json")) continue;
    const b = await store.read(name);
    if (b === null) continue;
    const file = name.slice("profiles/".length);
    out.set(file.slice(0, -5), profileFromText(file, b.toString("utf8"), "location" in store ? docWhere(store as CaStore, name) : name));
  }
  return out;
}

export async function profileOf(store: CaStore, name: string): Promise<Profile> {
  const all = await loadProfiles(store);
  const p = all.get(name);
  if (!p) throw new PkiError("PROFILE_INVALID", `unknown profile "${name}"${didYouMean(name, all.keys())}: use one of ${[...all.keys()].join(", ")} (or add ${docWhere(store, DOC.profile(name))})`);
  return p;
}

/** How to reach the CA key: the passphrase of the key file, or a token (its URI and PIN). */
export interface KeyAccess {
  /** the key file's passphrase, asked for only when the file is encrypted */
  passphrase: () => Promise<string>;
  /** `--key <pkcs11: URI>`: overrides pki.json's "key" (the same token reached another way) */
  keyUri?: string;
  /** the token PIN; default: the URI's pin-source file, else $PKI_PKCS11_PIN */
  pin?: PinSource;
  /**
   * the key file's PEM when it was already read (cli/context.ts keyAccessNow):
   * not read again, so that on a database the read cannot run beside a locked
   * transaction and open a second connection (a server process of its own)
   */
  keyPem?: string;
}

/** The key URI in use: --key, else pki.json's "key"; undefined for the key file. */
export function caKeyUri(a: Authority, keyUri?: string): string | undefined {
  return keyUri ?? a.settings.key;
}

/**
 * Open the CA's signer (once per process): the token when a pkcs11: URI is
 * given or configured, else private/ca.key (decrypted); either way checked
 * against ca.crt.
 */
export async function openSigningAuthority(store: CaStore | Authority, access: KeyAccess | (() => Promise<string>)): Promise<SigningAuthority> {
  const acc: KeyAccess = typeof access === "function" ? { passphrase: access } : access;
  const a = "cert" in store ? store : await openAuthority(store);
  const uri = caKeyUri(a, acc.keyUri);
  if (uri !== undefined) return signingAuthority(a, await tokenSigner(uri, { pin: acc.pin ?? defaultPin() }));
  const key = await loadPrivateKey(acc.keyPem ?? (await readCaKeyPem(a.store)), "the CA key", acc.passphrase);
  return signingAuthority(a, fileSigner(key));
}

/**
 * The signing authority now, its key still opening (`opened`, from
 * openSigningAuthority): the signer waits for the key at its first signature
 * and is synchronous once it is there. A command takes its lock, reads the
 * index and builds what it signs while the key file's PBKDF2 (600,000
 * iterations, the longest part of a one-certificate run) finishes on the
 * thread pool. Nothing is committed before a signature, so a wrong
 * passphrase, or a key that is not ca.crt's (checked by `opened`), still
 * changes nothing. The secret must already be known (cli/context.ts
 * keyAccessNow): no prompt may run under the lock.
 */
export function signingAuthorityAhead(a: Authority, opened: Promise<SigningAuthority>): SigningAuthority {
  let ready: CaSigner | undefined;
  const signer = opened.then((s) => (ready = s.caSigner));
  signer.catch(() => {}); // a key that does not open fails the first signature
  return signingAuthority(a, {
    publicKey: a.cert.spki.raw,
    algorithm: a.algorithm,
    description: "the CA key",
    sign: (tbs) => (ready ? ready.sign(tbs) : signer.then((s) => s.sign(tbs))),
    close: () => void signer.then((s) => s.close?.(), () => {}),
  });
}

/** An authority with its signer, once the signer's key is known to be ca.crt's. */
export function signingAuthority(a: Authority, caSigner: CaSigner): SigningAuthority {
  if (!Buffer.from(caSigner.publicKey).equals(Buffer.from(a.cert.spki.raw))) {
    caSigner.close?.();
    throw new PkiError("CA_INVALID", `${caSigner.description} does not belong to ca.crt`);
  }
  return { ...a, caSigner, algorithm: caSigner.algorithm };
}
