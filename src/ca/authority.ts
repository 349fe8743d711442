/**
 * The CA at work: load it (certificate, settings, key decrypted once per
 * process), and commit issuances and revocations to its directory.
 *
 * Every change runs in the store's locked() (one read-decide-commit) and is
 * committed as one Change (store/store.ts): the store records a certificate
 * before it releases it, and advances the CRL number before a CRL that used
 * it is published. The directory store's write order, its crash safety and
 * the PKI_CRASH_AT failpoints are described in store/dir-store.ts.
 */
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { checkIssuedName } from "../core/issued-name.js";
import { assembleSigned, leafExtensions, type Extension, signatureAlgorithmFor, tbsCertificate, validity, type KeyKind, type SignatureAlgorithm } from "../core/certificate.js";
import { parseIndex, type IndexEntry, type Reason } from "../core/index-format.js";
import { applyIndexUpdates, appendIndexLines, entriesToRevoke, markRevoked, revocationTime } from "../core/index-edit.js";
import { commonName, encodeName, formatDn, formatSan, onelineDn, type Rdn, type San } from "../core/names.js";
import { parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import type { Profile } from "../core/profiles.js";
import { newSerial, serialHex } from "../core/serial.js";
import { sha256Hex, keyIdentifier, keyKindOfSpki, loadPrivateKey, pooledRandom, verifySignature } from "../crypto/keys.js";
import { defaultPin, fileSigner, thenSign, tokenSigner, type CaSigner, type PinSource } from "./signer.js";
import { builtinProfiles, parseSettings, profileFromText, type Settings } from "../store/ca-dir.js";
import type { FileWrite } from "../store/atomic.js";
import { stageOutputs } from "../store/output.js";
import { DOC, withRecords, type CaStore, type CertRecord, type DocName, type DocWrite, type StoreReader, type StoreTx } from "../store/store.js";
import { derivedDocs } from "./revocation.js";
import { enforceConstraints } from "./parent.js";

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
  if (!p) throw new PkiError("PROFILE_INVALID", `unknown profile "${name}": use one of ${[...all.keys()].join(", ")} (or add ${docWhere(store, DOC.profile(name))})`);
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
  const key = await loadPrivateKey(await readCaKeyPem(a.store), "the CA key", acc.passphrase);
  return signingAuthority(a, fileSigner(key));
}

/** An authority with its signer, once the signer's key is known to be ca.crt's. */
export function signingAuthority(a: Authority, caSigner: CaSigner): SigningAuthority {
  if (!Buffer.from(caSigner.publicKey).equals(Buffer.from(a.cert.spki.raw))) {
    caSigner.close?.();
    throw new PkiError("CA_INVALID", `${caSigner.description} does not belong to ca.crt`);
  }
  return { ...a, caSigner, algorithm: caSigner.algorithm };
}

// ---------------------------------------------------------------- issuance

export interface IssueRequest {
  profile: Profile;
  subject: Rdn[];
  /** keep the request's own subject encoding when unchanged */
  subjectRaw?: Uint8Array;
  sans: San[];
  spki: Uint8Array;
  keyKind: KeyKind;
  days: number;
  /** `pki issue` name */
  name?: string;
  /**
   * the certificate's extensions, when they do not come from a leaf profile
   * (an issuing CA signed by this one: `pki init --parent`)
   */
  extensions?: Extension[];
  /**
   * what is released with the certificate (ca/issued.ts): documents of the
   * store (issued/<name>.crt, its chain, the key) and files in an --out-dir,
   * both written only once the certificate is recorded; `certPem` is filled
   * in by issue()
   */
  files?: (certPem: string, serial: string) => { docs: DocWrite[]; outputs: FileWrite[] } | Promise<{ docs: DocWrite[]; outputs: FileWrite[] }>;
}

export interface Issued {
  serial: string;
  pem: string;
  der: Uint8Array;
  subject: string;
  sans: string[];
  profile: string;
  notBefore: Date;
  notAfter: Date;
  capped: boolean;
  name?: string;
}

/**
 * A CA outside its validity does not issue (CA_EXPIRED): an expired CA would
 * otherwise sign leaves whose notAfter (capped at the CA's) lies before their
 * notBefore, and a CA that is not yet valid (a clock that jumped back) leaves
 * no relying party accepts.
 */
export function assertCaValid(ca: Authority, now: Date): void {
  const t = now.getTime();
  if (t >= ca.cert.notAfter.getTime()) {
    throw new PkiError("CA_EXPIRED", `the CA certificate expired on ${ca.cert.notAfter.toISOString()}: it cannot issue; make a new CA (pki init) and move the clients to it`);
  }
  if (t < ca.cert.notBefore.getTime()) {
    throw new PkiError("CA_EXPIRED", `the CA certificate is not valid before ${ca.cert.notBefore.toISOString()} (now ${now.toISOString()}): check the system clock`);
  }
}

/** Build and sign one certificate; synchronous when the signer is (the key file). */
export function buildCertificate(ca: SigningAuthority, req: IssueRequest, serial: Uint8Array, now: Date): Issued | Promise<Issued> {
  assertCaValid(ca, now);
  // a name outside the CA's name constraints is refused before anything is signed
  if (!req.extensions) enforceConstraints(ca, commonName(req.subject), req.sans);
  const v = validity({ now, days: req.days, caNotAfter: ca.cert.notAfter });
  const subject = req.subjectRaw ?? encodeName(req.subject);
  const tbs = tbsCertificate({
    serial,
    signatureAlgorithm: ca.algorithm.der,
    issuer: ca.cert.subjectRaw,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    subject,
    spki: req.spki,
    extensions: req.extensions ?? leafExtensions({
      profile: req.profile,
      keyKind: req.keyKind,
      sans: req.sans,
      subjectEmpty: req.subject.length === 0,
      subjectKeyId: keyIdentifier(req.spki),
      authorityKeyId: ca.keyId,
      urls: ca.settings,
    }),
  });
  return thenSign(ca.caSigner, tbs, (signature) => {
    const certDer = assembleSigned(tbs, ca.algorithm.der, signature);
    return {
      serial: serialHex(serial),
      pem: toPem("CERTIFICATE", certDer),
      der: certDer,
      subject: formatDn(req.subject),
      sans: req.sans.map(formatSan),
      profile: req.profile.name,
      notBefore: v.notBefore,
      notAfter: v.notAfter,
      capped: v.capped,
      name: req.name,
    };
  });
}

export interface IssueHooks {
  /** inside the lock, before anything is built: e.g. refuse a name that holds a valid certificate */
  check?: (index: IndexEntry[], tx: StoreTx) => void | Promise<void>;
  /**
   * serials to mark revoked in the same index commit as the new certificates
   * (renew: the superseded one), so that a crash never leaves both or
   * neither; unknown or already revoked serials fail before anything is
   * written. The caller re-signs the CRL in `after`.
   */
  revoke?: ReadonlyArray<{ serial: string; reason: Reason }>;
  /**
   * like `revoke`, but decided under the lock from the index as it is then
   * (sign-csr --replace: the live certificates of a name), so that a
   * concurrent issuance under the same name is not missed
   */
  supersede?: (index: IndexEntry[], tx: StoreTx) => ReadonlyArray<{ serial: string; reason: Reason }> | Promise<ReadonlyArray<{ serial: string; reason: Reason }>>;
  /** after the index is committed, still under the lock (CRL, bundle): commits through tx */
  after?: (index: IndexEntry[], tx: StoreTx) => void | Promise<void>;
  now?: () => Date;
  onProgress?: (done: number) => void;
}

/**
 * Issue a batch under one lock: build and sign everything, write all files
 * (each atomic; all staged and fsync'd, on the thread pool, before the first
 * rename), then commit the index once.
 * All-or-nothing: a request that fails to build fails the whole batch before
 * anything is written.
 */
export async function issue(ca: SigningAuthority, reqs: IssueRequest[], hooks: IssueHooks = {}): Promise<Issued[]> {
  assertCaValid(ca, (hooks.now ?? (() => new Date()))());
  return ca.store.locked("issue", async (tx) => {
    const buf = await tx.indexText();
    const index = parseIndex(buf.toString("utf8"));
    await hooks.check?.(index, tx);
    const taken = new Set(index.map((e) => e.serial));
    const random = pooledRandom();
    const now = (hooks.now ?? (() => new Date()))();
    const revokes = [...(hooks.revoke ?? []), ...((await hooks.supersede?.(index, tx)) ?? [])];
    let update: IndexEntry[] = [];
    if (revokes.length) {
      const revokedAt = revocationTime(now);
      const olds = entriesToRevoke(buf, revokes.map((r) => r.serial), false);
      update = olds.map((e, i) => markRevoked(e, revokedAt, revokes[i]!.reason));
    }
    const issued: Issued[] = [];
    const add: CertRecord[] = [];
    const release: DocWrite[] = [];
    const outputs: FileWrite[] = [];
    for (const req of reqs) {
      const serial = newSerial(random, taken);
      const hex = serialHex(serial);
      taken.add(hex);
      const built = buildCertificate(ca, req, serial, now);
      const c = built instanceof Promise ? await built : built;
      issued.push(c);
      add.push({ entry: { status: "V", expires: c.notAfter, serial: hex, file: "unknown", subject: onelineDn(req.subject) }, pem: c.pem, profile: req.profile.name, name: req.name });
      if (req.files) {
        const f = await req.files(c.pem, hex);
        release.push(...f.docs);
        outputs.push(...f.outputs);
      }
      hooks.onProgress?.(issued.length);
    }
    // a bundle that lists issued certificates, and the nginx allow-list,
    // must list the new ones too (and drop superseded ones): derived from
    // the index as this commit leaves it, written after the release
    let next: Buffer | undefined;
    const newIndex = () => (next ??= appendIndexLines(update.length ? applyIndexUpdates(buf, update) : buf, add.map((a) => a.entry)));
    const docs = await derivedDocs(ca, withRecords(tx, add), newIndex, now);
    // files in an --out-dir the user named: staged before the commit (a
    // directory that cannot take them fails the batch before anything is
    // recorded), released like the store's own once the records are committed
    const staged = outputs.length ? await stageOutputs(ca.store, outputs) : undefined;
    try {
      await tx.commit({ add, update, release, docs });
    } catch (e) {
      staged?.abort();
      throw e;
    }
    staged?.commit(0, outputs.length);
    if (hooks.after) await hooks.after(parseIndex(newIndex().toString("utf8")), tx);
    return issued;
  });
}

export function issuedJson(c: Issued): Record<string, unknown> {
  return {
    serial: c.serial,
    subject: c.subject,
    san: c.sans,
    profile: c.profile,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    // one vocabulary (README "JSON vocabulary"): init says fingerprint, show fingerprints.sha256
    fingerprint: sha256Hex(c.der),
    fingerprints: { sha256: sha256Hex(c.der) },
  };
}

/** A name for files: see core/issued-name.ts. */
export const checkName = checkIssuedName;
