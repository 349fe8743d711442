/**
 * The CA at work: load it (certificate, settings, key decrypted once per
 * process), and commit issuances and revocations to its directory.
 *
 * ## The write path (crash safety)
 *
 * Every change runs under the directory lock (store/lock.ts) and follows one
 * order, so that a process killed at any instant leaves a directory the next
 * command can use without manual cleanup:
 *
 *   1. build and sign everything in memory (nothing on disk yet);
 *   2. stage every new file (certs/<SERIAL>.pem, issued/<name>.crt,
 *      <name>.chain.crt, private/<name>.key) in a temporary file, fsync'd
 *      (store/atomic.ts stageFilesBatch), and put the CA's own copy,
 *      certs/<SERIAL>.pem, in place: nothing is handed out yet;
 *   3. append the index.meta lines (profile and name of each serial), whole
 *      or not at all (appendLine truncates back on a short write);
 *   4. replace index.txt atomically: this rename is the commit point;
 *   5. release: rename issued/<name>.crt, its chain and the key into place.
 *      A certificate is recorded before it is released: a crash never leaves
 *      a certificate (with its key) in issued/ that the index does not know;
 *   6. derived files (crl.pem, ca-clients.crt) are regenerated last;
 *   7. after the lock is released, the command appends its audit.log line
 *      (O_APPEND): a crash just before it loses that line, never a record.
 *
 * A step that fails (a full disk) undoes the earlier ones: staged files are
 * removed, certs/<SERIAL>.pem of this run deleted, index.meta cut back.
 *
 * A crash before 4 leaves certificate files without an index line (the
 * certificate was signed but never reported as issued): `pki doctor` reports
 * them and `pki doctor --repair` records them in the index, so that they can
 * be listed and revoked. A crash before 2 completes leaves at most temporary
 * files (.*.tmp), which doctor --repair removes. A crash after 4 but before 5
 * leaves a CRL that is older than the index: doctor reports it, and
 * `pki crl` or `pki doctor --repair` re-signs it. The lock of a killed process is taken over as
 * soon as its pid is gone.
 *
 * test/e2e/crash.test.ts proves this by SIGKILLing `pki issue` at random
 * moments, and at each step boundary named below through PKI_CRASH_AT (a
 * failpoint for tests only: the process kills itself with SIGKILL there).
 */
import * as fs from "node:fs";
import { PkiError } from "../core/errors.js";
import { checkIssuedName } from "../core/issued-name.js";
import { assembleSigned, leafExtensions, type Extension, signatureAlgorithmFor, tbsCertificate, validity, type KeyKind, type SignatureAlgorithm } from "../core/certificate.js";
import { formatIndex, formatMeta, parseIndex, type IndexEntry, type Reason } from "../core/index-format.js";
import { commonName, encodeName, formatDn, formatSan, onelineDn, type Rdn, type San } from "../core/names.js";
import { parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import type { Profile } from "../core/profiles.js";
import { newSerial, serialHex } from "../core/serial.js";
import { sha256Hex, keyIdentifier, keyKindOfSpki, loadPrivateKey, pooledRandom, verifySignature } from "../crypto/keys.js";
import { defaultPin, fileSigner, thenSign, tokenSigner, type CaSigner, type PinSource } from "./signer.js";
import { writeFilesAtomic, stageFilesBatch, appendLine, truncateTo, type FileWrite } from "../store/atomic.js";
import { CaDir, MODE, type Settings } from "../store/ca-dir.js";
import { withLock } from "../store/lock.js";
import { refreshDerived } from "./revocation.js";
import { enforceConstraints } from "./parent.js";

export interface Authority {
  store: CaDir;
  settings: Settings;
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

export function openAuthority(store: CaDir): Authority {
  const settings = store.readSettings();
  const { pem, cert } = readCertificatePem(store.readText(store.caCertPath, "ca.crt"), "ca.crt");
  return { store, settings, certPem: pem, cert, keyId: keyIdentifier(cert.spki.raw), algorithm: signatureAlgorithmFor(keyKindOfSpki(cert.spki.raw)) };
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
export async function openSigningAuthority(store: CaDir, access: KeyAccess | (() => Promise<string>)): Promise<SigningAuthority> {
  const acc: KeyAccess = typeof access === "function" ? { passphrase: access } : access;
  const a = openAuthority(store);
  const uri = caKeyUri(a, acc.keyUri);
  if (uri !== undefined) return signingAuthority(a, await tokenSigner(uri, { pin: acc.pin ?? defaultPin() }));
  const key = await loadPrivateKey(store.readCaKeyPem(), "the CA key", acc.passphrase);
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
  /** extra files to write with the certificate (keys, chain, issued/<name>.crt); `certPem` is filled in by issue() */
  files?: (certPem: string, serial: string) => FileWrite[] | Promise<FileWrite[]>;
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

/** Failpoint of the write path (see the top comment): PKI_CRASH_AT=<step> kills the process there. Tests only. */
function crashPoint(step: "built" | "files" | "meta" | "index" | "released"): void {
  if (process.env.PKI_CRASH_AT === step) process.kill(process.pid, "SIGKILL");
}

export interface IssueHooks {
  /** inside the lock, before anything is built: e.g. refuse a name that holds a valid certificate */
  check?: (index: IndexEntry[]) => void;
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
  supersede?: (index: IndexEntry[]) => ReadonlyArray<{ serial: string; reason: Reason }>;
  /** after the index is committed, still under the lock (CRL, bundle) */
  after?: (index: IndexEntry[]) => void | Promise<void>;
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
  const store = ca.store;
  assertCaValid(ca, (hooks.now ?? (() => new Date()))());
  return withLock(store.dir, async () => {
    let indexText = store.readIndexText();
    const index = parseIndex(indexText);
    hooks.check?.(index);
    const taken = new Set(index.map((e) => e.serial));
    const random = pooledRandom();
    const now = (hooks.now ?? (() => new Date()))();
    const revokes = [...(hooks.revoke ?? []), ...(hooks.supersede?.(index) ?? [])];
    if (revokes.length) {
      const revokedAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
      for (const r of revokes) {
        const i = index.findIndex((e) => e.serial === r.serial);
        if (i < 0) throw new PkiError("NOT_FOUND", `no certificate with serial ${r.serial} in this CA's index: check \`pki list\``);
        if (index[i]!.status === "R") throw new PkiError("ALREADY_REVOKED", `serial ${r.serial} was already revoked on ${index[i]!.revokedAt?.toISOString()}`);
        index[i] = { ...index[i]!, status: "R", revokedAt, reason: r.reason === "unspecified" ? undefined : r.reason };
      }
      indexText = formatIndex(index);
    }
    const issued: Issued[] = [];
    const records: FileWrite[] = [];
    const releases: FileWrite[] = [];
    let meta = "";
    let lines = "";
    for (const req of reqs) {
      const serial = newSerial(random, taken);
      const hex = serialHex(serial);
      taken.add(hex);
      const built = buildCertificate(ca, req, serial, now);
      const c = built instanceof Promise ? await built : built;
      issued.push(c);
      records.push({ path: store.certPath(hex), data: c.pem, mode: MODE.file, exclusive: true });
      if (req.files) releases.push(...(await req.files(c.pem, hex)));
      meta += formatMeta({ serial: hex, profile: req.profile.name, name: req.name });
      lines += formatIndex([{ status: "V", expires: c.notAfter, serial: hex, file: "unknown", subject: onelineDn(req.subject) }]);
      hooks.onProgress?.(issued.length);
    }
    crashPoint("built");
    const staged = await stageFilesBatch([...records, ...releases]); // step 2
    let metaBefore = -1;
    try {
      staged.commit(0, records.length); // the CA's own copies
      crashPoint("files");
      metaBefore = appendLine(store.metaPath, meta, MODE.file); // step 3
      crashPoint("meta");
    } catch (e) {
      staged.abort();
      throw e;
    }
    const newIndex = indexText + (indexText && !indexText.endsWith("\n") ? "\n" : "") + lines;
    try {
      writeFilesAtomic([{ path: store.indexPath, data: newIndex, mode: MODE.file }]); // step 4: the commit point
    } catch (e) {
      truncateTo(store.metaPath, metaBefore);
      staged.abort();
      throw e;
    }
    crashPoint("index");
    staged.keep(0, records.length); // recorded: a failed release below must not take them back
    staged.commit(records.length, records.length + releases.length); // step 5: released
    crashPoint("released");
    // step 6: a bundle that lists issued certificates, and the nginx
    // allow-list, must list the new ones too (and drop superseded ones)
    refreshDerived(ca, newIndex, now);
    if (hooks.after) await hooks.after(parseIndex(newIndex));
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
