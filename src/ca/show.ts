/**
 * `pki show`'s reading half: a target resolved (ca/target.ts) and decoded
 * into the fields show prints and --json carries; this CA's record (status,
 * profile, name, chain) attached only to its own certificates.
 */
import * as crypto from "node:crypto";
import { OID } from "../core/certificate.js";
import type { ParsedCrl } from "../core/crl-parse.js";
import { PkiError } from "../core/errors.js";
import { parseIndex } from "../core/index-format.js";
import { decodeNameConstraints, formatConstraints, OID_NAME_CONSTRAINTS } from "../core/name-constraints.js";
import { formatDn } from "../core/names.js";
import { describeExtensions, findExtension, type ParsedCertificate, type RawExtension } from "../core/parse.js";
import { statusOf } from "../core/status.js";
import { describeSpki, verifySignature } from "../crypto/keys.js";
import type { CaStore } from "../store/store.js";
import { caPresent, issuedBy, openAuthority, type Authority } from "./authority.js";
import { readParent, verifyParentLink } from "./parent.js";
import { inspectElsewhereHint, provenance, requireIssuedHere } from "./provenance.js";
import { resolveDocument } from "./target.js";

function safe<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}

const hex = (alg: string, der: Uint8Array) => crypto.createHash(alg).update(der).digest("hex");

/** "364 days", "5 hours", "expired 3 days ago" */
export function timeLeft(until: Date, now: Date): string {
  const ms = until.getTime() - now.getTime();
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / 3_600_000);
  const span = d >= 2 ? `${d} days` : d === 1 ? `1 day ${h} h` : h >= 1 ? `${h} hours` : `${Math.max(1, Math.floor(abs / 60_000))} minutes`;
  return ms >= 0 ? span : `expired ${span} ago`;
}

async function tryAuthority(store: CaStore): Promise<Authority | undefined> {
  try {
    return (await caPresent(store)) ? await openAuthority(store) : undefined;
  } catch {
    return undefined;
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** A CSR's self-signature (an unsupported algorithm counts as not verified). */
function csrSignatureOk(spki: Uint8Array, alg: string, info: Uint8Array, sig: Uint8Array): boolean {
  try {
    return verifySignature(spki, alg, info, sig);
  } catch {
    return false;
  }
}

async function certificateData(c: ParsedCertificate, der: Uint8Array, store: CaStore, ca: Authority | undefined, now: Date): Promise<Record<string, unknown>> {
  const ext = describeExtensions(c.extensions);
  const isCa = ca !== undefined && sameBytes(c.der, ca.cert.der);
  // this CA's record is attached only to its own certificate: signed with its key and identical to
  // certs/<SERIAL>.pem (ca/provenance.ts), never to a file that merely carries one of its serials
  const fromThisCa = ca !== undefined && (isCa || (await provenance(ca, c, der)).ok);
  let revocation: Record<string, unknown> = { status: "unknown", revokedAt: null, reason: null };
  let profile: string | null = null;
  let name: string | null = null;
  if (fromThisCa) {
    const entry = parseIndex((await store.indexText()).toString("utf8")).find((e) => e.serial === c.serial);
    const m = (await store.meta()).get(c.serial);
    profile = m?.profile ?? null;
    name = m?.name ?? null;
    if (entry) {
      revocation = {
        status: statusOf(entry, now),
        revokedAt: entry.revokedAt?.toISOString() ?? null,
        reason: entry.status === "R" ? (entry.reason ?? "unspecified") : null,
      };
    } else revocation = { status: "not in the index", revokedAt: null, reason: null };
  }
  if (isCa) revocation = { status: "CA certificate", revokedAt: null, reason: null };
  // the CAs above it, up to the root (an issuing CA has parent.crt)
  const parent = ca ? safe(() => readParent(ca)) : null;
  const chain = fromThisCa ? [formatDn(ca!.cert.subject), ...(parent ? [formatDn(parent.cert.subject)] : [])] : isCa && parent ? [formatDn(parent.cert.subject)] : [];
  if (isCa && parent) {
    const up = await verifyParentLink(ca!, now);
    if (up?.revokedByParent) revocation = { status: "revoked by the parent CA", revokedAt: null, reason: null };
  }
  const ncExt = findExtension(c.extensions, OID_NAME_CONSTRAINTS);
  const nameConstraints = ncExt ? formatConstraints(decodeNameConstraints(ncExt.value)) : null;
  const state = now < c.notBefore ? "not yet valid" : now > c.notAfter ? "expired" : "valid";
  return {
    type: "certificate",
    subject: formatDn(c.subject),
    issuer: formatDn(c.issuer),
    serial: c.serial,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    validity: state,
    timeLeft: timeLeft(c.notAfter, now),
    keyType: describeSpki(c.spki.raw),
    san: (ext.subjectAltName as string[] | undefined) ?? [],
    keyUsage: (ext.keyUsage as string[] | undefined) ?? [],
    extendedKeyUsage: (ext.extendedKeyUsage as string[] | undefined) ?? [],
    basicConstraints: ext.basicConstraints ?? null,
    subjectKeyIdentifier: ext.subjectKeyIdentifier ?? null,
    authorityKeyIdentifier: ext.authorityKeyIdentifier ?? null,
    crlDistributionPoints: urlsOf(c.extensions),
    fingerprint: hex("sha256", der),
    fingerprints: { sha256: hex("sha256", der), sha1: hex("sha1", der) },
    issuedByThisCa: fromThisCa,
    chain,
    nameConstraints,
    profile,
    name,
    revocation,
  };
}

function urlsOf(exts: readonly RawExtension[]): string[] {
  const e = exts.find((x) => x.oid === OID.crlDistributionPoints);
  if (!e) return [];
  // the URIs are IA5 strings under [6]: pick them out without a full decoder
  const out: string[] = [];
  const b = e.value;
  for (let i = 0; i + 1 < b.length; i++) {
    if (b[i] === 0x86 && b[i + 1]! < 0x80 && i + 2 + b[i + 1]! <= b.length) {
      out.push(Buffer.from(b.subarray(i + 2, i + 2 + b[i + 1]!)).toString("latin1"));
      i += 1 + b[i + 1]!;
    }
  }
  return out;
}

function crlData(c: ParsedCrl, ca: Authority | undefined, now: Date): Record<string, unknown> {
  const fromThisCa = ca !== undefined && sameBytes(c.issuerRaw, ca.cert.subjectRaw);
  // an issuing CA also shows its parent's CRL (parent-crl.pem) with the signature checked
  const parent = ca && !fromThisCa ? safe(() => readParent(ca)) : null;
  const fromParent = parent !== null && sameBytes(c.issuerRaw, parent.cert.subjectRaw);
  return {
    issuerRole: fromThisCa ? "this CA" : fromParent ? "parent CA" : null,
    type: "crl",
    issuer: formatDn(c.issuer),
    crlNumber: c.crlNumber !== undefined ? Number(c.crlNumber) : null,
    thisUpdate: c.thisUpdate.toISOString(),
    nextUpdate: c.nextUpdate?.toISOString() ?? null,
    timeLeft: c.nextUpdate ? timeLeft(c.nextUpdate, now) : null,
    stale: c.nextUpdate !== undefined && c.nextUpdate.getTime() <= now.getTime(),
    signatureValid: fromThisCa ? issuedBy(ca!, c) : fromParent ? safe(() => verifySignature(parent!.cert.spki.raw, c.signatureAlgorithm, c.tbs, c.signature)) === true : null,
    authorityKeyIdentifier: c.authorityKeyId ?? null,
    revokedCount: c.revoked.length,
    revoked: c.revoked.map((r) => ({ serial: r.serial, revokedAt: r.revokedAt.toISOString(), reason: r.reason ?? "unspecified" })),
    fingerprint: hex("sha256", c.der),
    fingerprints: { sha256: hex("sha256", c.der), sha1: hex("sha1", c.der) },
  };
}

/**
 * A certificate file is shown only when it is this CA's: its own certificate
 * (ca.crt, or parent.crt of an issuing CA) or one it issued, signed with its
 * key and identical to certs/<SERIAL>.pem (ca/provenance.ts). Anything else
 * is NOT_ISSUED_HERE (contract: "What every command refuses"); openssl x509
 * inspects a certificate from elsewhere. CSRs and CRLs are shown as before.
 */
async function requireOwnCertificate(store: CaStore, ca: Authority | undefined, cert: ParsedCertificate, der: Uint8Array, file: string): Promise<void> {
  const hint = inspectElsewhereHint(file);
  if (!(await caPresent(store))) throw new PkiError("NOT_ISSUED_HERE", `${file}: there is no CA in ${store.location} to check it against: refused; ${hint}`);
  if (!ca) await openAuthority(store); // a damaged CA directory: its own error says what to repair
  if (sameBytes(der, ca!.cert.der)) return;
  const parent = safe(() => readParent(ca!));
  if (parent && sameBytes(der, parent.cert.der)) return;
  await requireIssuedHere(ca!, cert, der, file, hint);
}

/**
 * A target (file, serial or issued name) as show's decoded fields: a
 * certificate, a CSR or a CRL.
 */
export async function describeTarget(store: CaStore, target: string, now: Date): Promise<Record<string, unknown>> {
  const { doc, serial } = await resolveDocument(store, target, now);
  const ca = await tryAuthority(store);
  if (doc.kind === "certificate" && serial === undefined) await requireOwnCertificate(store, ca, doc.cert, doc.der, target);
  if (doc.kind === "certificate") return certificateData(doc.cert, doc.der, store, ca, now);
  if (doc.kind === "crl") return crlData(doc.crl, ca, now);
  const c = doc.csr;
  const ext = describeExtensions(c.extensions);
  return {
    type: "csr",
    subject: formatDn(c.subject),
    keyType: describeSpki(c.spki.raw),
    san: (ext.subjectAltName as string[] | undefined) ?? [],
    extensions: ext,
    signatureValid: csrSignatureOk(c.spki.raw, c.signatureAlgorithm, c.info, c.signature),
    fingerprint: hex("sha256", c.der),
    fingerprints: { sha256: hex("sha256", c.der), sha1: hex("sha1", c.der) },
  };
}
