/**
 * CRL and client bundle generation on a CA directory. Callers hold the lock.
 */
import * as fs from "node:fs";
import { assembleSigned } from "../core/certificate.js";
import { encodeRevoked, formatCrlNumber, readCrlInfo, revokedFromIndexText, tbsCertList, type CrlInfo } from "../core/crl.js";
import { formatIndex, parseIndex, type IndexEntry, type Reason } from "../core/index-format.js";
import { PkiError } from "../core/errors.js";
import { withLock } from "../store/lock.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import { verifySignature } from "../crypto/keys.js";
import { writeFilesAtomic, type FileWrite } from "../store/atomic.js";
import { MODE } from "../store/ca-dir.js";
import type { Authority, SigningAuthority } from "./authority.js";

export interface CrlResult {
  path: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: number;
  der: Uint8Array;
  pem: string;
}

/**
 * Sign a CRL over every revoked line of the index (one pass, no per-entry
 * objects: see core/crl.ts). thisUpdate is now; nextUpdate is now + days.
 * The number comes from `crlnumber` (the next number to use, as OpenSSL
 * keeps it), which is advanced in the same atomic step as the CRL is written.
 */
export function buildCrl(ca: SigningAuthority, indexText: string, days: number, now: Date): Omit<CrlResult, "path"> {
  const crlNumber = ca.store.readCrlNumber();
  const revoked = revokedFromIndexText(indexText);
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + days * 86_400_000);
  const tbs = tbsCertList({
    signatureAlgorithm: ca.algorithm.der,
    issuer: ca.cert.subjectRaw,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyId: ca.keyId,
    revoked,
  });
  const der = assembleSigned(tbs, ca.algorithm.der, ca.signer(tbs));
  return { crlNumber, thisUpdate, nextUpdate, revoked: revoked.length, der, pem: toPem("X509 CRL", der) };
}

export function crlWrites(ca: SigningAuthority, crl: Omit<CrlResult, "path">, out: string, asDer: boolean): FileWrite[] {
  return [
    { path: out, data: asDer ? crl.der : crl.pem, mode: MODE.file },
    { path: ca.store.crlNumberPath, data: formatCrlNumber(crl.crlNumber + 1n), mode: MODE.file },
  ];
}

/** Re-sign <dir>/crl.pem from the index (after a revocation). */
export function refreshCrl(ca: SigningAuthority, indexText: string, now: Date, days = ca.settings.crlDays): CrlResult {
  const crl = buildCrl(ca, indexText, days, now);
  writeFilesAtomic(crlWrites(ca, crl, ca.store.crlPath, false));
  return { ...crl, path: ca.store.crlPath };
}

// ---------------------------------------------------------------- reading the current CRL

export interface CurrentCrl {
  info: CrlInfo;
  /** the raw bytes of the file (PEM or DER) */
  bytes: Buffer;
  /** the signature verifies with the CA's key and the issuer is the CA */
  signedByCa: boolean;
}

/**
 * The CRL at `p` (PEM or DER), or null when there is no file. A file that is
 * not a readable CRL is an error the caller reports (doctor) or replaces (crl).
 */
export function readCurrentCrl(ca: Authority, p: string): CurrentCrl | null {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new PkiError("IO_ERROR", `cannot read ${p}: ${(e as NodeJS.ErrnoException).code}`);
  }
  let derBytes: Uint8Array = bytes;
  if (bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN")) {
    const block = parsePemBlocks(bytes.toString("utf8")).find((b) => b.label === "X509 CRL");
    if (!block) throw new PkiError("CA_INVALID", `${p} holds no PEM CRL ("X509 CRL" block)`);
    derBytes = block.der;
  }
  let info: CrlInfo;
  try {
    info = readCrlInfo(derBytes);
  } catch (e) {
    throw new PkiError("CA_INVALID", `${p} is not a readable CRL: ${(e as Error).message}`);
  }
  const sameIssuer = Buffer.from(info.issuerRaw).equals(Buffer.from(ca.cert.subjectRaw));
  let signedByCa = false;
  try {
    signedByCa = sameIssuer && verifySignature(ca.cert.spki.raw, info.signatureAlgorithm, info.tbs, info.signature);
  } catch {
    signedByCa = false;
  }
  return { info, bytes, signedByCa };
}

/** Why a CRL must be re-signed now (null: it is fine as it is). */
export function crlResignReason(cur: CurrentCrl | null, indexText: string, now: Date, withinDays: number): string | null {
  if (!cur) return "there is no CRL yet";
  if (!cur.signedByCa) return "the CRL is not signed by this CA";
  const next = cur.info.nextUpdate;
  if (!next) return "the CRL has no nextUpdate";
  if (next.getTime() - now.getTime() <= withinDays * 86_400_000) {
    return next.getTime() <= now.getTime() ? `the CRL expired on ${next.toISOString()}` : `the CRL expires on ${next.toISOString()}, within ${withinDays} day(s)`;
  }
  // a revocation the CRL does not carry yet (e.g. a crash between index and CRL)
  const expected = encodeRevoked(revokedFromIndexText(indexText));
  if (!Buffer.from(expected).equals(Buffer.from(cur.info.revokedDer))) return "the CRL does not list exactly the revoked certificates of the index";
  return null;
}

// ---------------------------------------------------------------- bundle

export interface BundleSettings {
  /** false: the CA only; true: every issued certificate; a name: that profile's */
  includeIssued: boolean | string;
}

export function readBundleSettings(ca: Authority): BundleSettings {
  try {
    const raw = JSON.parse(fs.readFileSync(ca.store.settingsPath, "utf8")) as { bundle?: { includeIssued?: unknown } };
    const v = raw.bundle?.includeIssued;
    return { includeIssued: typeof v === "string" || typeof v === "boolean" ? v : false };
  } catch {
    return { includeIssued: false };
  }
}

/**
 * ca-clients.crt: the CA certificate, then (when asked) every issued
 * certificate that is neither revoked nor expired, of one profile or all.
 * Returns the text and the number of certificates in it.
 */
export function buildBundle(ca: Authority, index: IndexEntry[], include: boolean | string, now: Date): { text: string; count: number } {
  let text = ca.certPem;
  let count = 1;
  if (include === false) return { text, count };
  const meta = ca.store.readMeta();
  for (const e of index) {
    if (e.status !== "V" || e.expires.getTime() <= now.getTime()) continue;
    if (typeof include === "string" && meta.get(e.serial)?.profile !== include) continue;
    let pem: string;
    try {
      pem = fs.readFileSync(ca.store.certPath(e.serial), "utf8");
    } catch {
      continue; // doctor reports index lines without files
    }
    text += pem;
    count++;
  }
  return { text, count };
}

/**
 * Remember the bundle choice in pki.json ("bundle": {"includeIssued": ...}) so
 * that `pki revoke` keeps ca-clients.crt current. Callers hold the lock; the
 * other settings are kept as they are, and the file is replaced atomically.
 */
export function writeBundleSettings(ca: Authority, s: BundleSettings): void {
  const raw = JSON.parse(ca.store.readText(ca.store.settingsPath, "pki.json")) as Record<string, unknown>;
  const prev = typeof raw.bundle === "object" && raw.bundle !== null ? (raw.bundle as Record<string, unknown>) : {};
  raw.bundle = { ...prev, includeIssued: s.includeIssued };
  writeFilesAtomic([{ path: ca.store.settingsPath, data: JSON.stringify(raw, null, 2) + "\n", mode: MODE.file }]);
}

/** Regenerate ca-clients.crt when it lists issued certificates (after a revocation). */
export function refreshBundleIfListing(ca: Authority, indexText: string, now: Date): boolean {
  const s = readBundleSettings(ca);
  if (s.includeIssued === false) return false;
  const b = buildBundle(ca, parseIndex(indexText), s.includeIssued, now);
  writeFilesAtomic([{ path: ca.store.bundlePath, data: b.text, mode: MODE.file }]);
  return true;
}

// ---------------------------------------------------------------- revoking

export interface RevokeRequest {
  serial: string;
  reason: Reason;
}

export interface Revoked {
  serial: string;
  subject: string;
  reason: Reason;
  revokedAt: Date;
}

/**
 * Mark serials revoked in the index and re-sign the CRL (and the bundle when
 * it lists issued certificates), all under one lock. Unknown or already
 * revoked serials fail the whole call before anything is written.
 */
export async function revokeSerials(ca: SigningAuthority, reqs: readonly RevokeRequest[], now: Date): Promise<{ revoked: Revoked[]; crl: CrlResult }> {
  return withLock(ca.store.dir, () => {
    const indexText = ca.store.readIndexText();
    const index = parseIndex(indexText);
    const bySerial = new Map(index.map((e, i) => [e.serial, i]));
    const revokedAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const out: Revoked[] = [];
    for (const r of reqs) {
      const i = bySerial.get(r.serial);
      if (i === undefined) throw new PkiError("NOT_FOUND", `no certificate with serial ${r.serial} in this CA's index: check \`pki list\``);
      const e = index[i]!;
      if (e.status === "R") throw new PkiError("ALREADY_REVOKED", `serial ${r.serial} (${e.subject}) was already revoked on ${e.revokedAt?.toISOString()}`);
      index[i] = { ...e, status: "R", revokedAt, reason: r.reason === "unspecified" ? undefined : r.reason };
      out.push({ serial: e.serial, subject: e.subject, reason: r.reason, revokedAt });
    }
    const newText = formatIndex(index);
    writeFilesAtomic([{ path: ca.store.indexPath, data: newText, mode: MODE.file }]);
    const crl = refreshCrl(ca, newText, now);
    refreshBundleIfListing(ca, newText, now);
    return { revoked: out, crl };
  });
}
