/**
 * `pki verify`'s reading half: resolve the target, gather what the checks
 * need (the CA, the index line, crl.pem, the link to a parent CA) and let
 * core/verify-checks.ts decide. Reads only; never needs the CA key.
 */
import { OID } from "../core/certificate.js";
import { formatDn } from "../core/names.js";
import { decodeEku, findExtension, type ParsedCertificate } from "../core/parse.js";
import { chainCheck, purposeCheck, revocationCheck, unknownRevocation, validityCheck, type Check, type CrlFacts, type Purpose, type PurposeResult } from "../core/verify-checks.js";
import type { CaStore } from "../store/store.js";
import { issuedBy, openAuthority, type Authority } from "./authority.js";
import { verifyParentLink } from "./parent.js";
import { inspectElsewhereHint, provenanceMessage } from "./provenance.js";
import { readCurrentCrl } from "./revocation.js";
import { resolveCertificate } from "./target.js";

export interface VerifyReport {
  cert: ParsedCertificate;
  checks: Check[];
  chain: boolean;
  revoked: boolean;
  expired: boolean;
  purpose: PurposeResult["purpose"] | null;
  revocation: Record<string, unknown>;
}

/** EKU names of a certificate, or null when it has no EKU extension (any purpose). */
const ekuOf = (c: ParsedCertificate): string[] | null => {
  const e = findExtension(c.extensions, OID.extKeyUsage);
  return e ? decodeEku(e.value) : null;
};

/** crl.pem as the revocation check sees it. */
async function crlFacts(ca: Authority): Promise<CrlFacts> {
  try {
    const cur = await readCurrentCrl(ca);
    if (cur === null) return { state: "missing" };
    return { state: "read", signedByCa: cur.signedByCa, nextUpdate: cur.info.nextUpdate, revokedDer: cur.info.revokedDer };
  } catch (e) {
    return { state: "error", message: (e as Error).message };
  }
}

/** Every check of one target: a file must be this CA's own certificate, else NOT_ISSUED_HERE (contract: "What every command refuses"). */
export async function verifyTarget(store: CaStore, target: string, now: Date, purpose: Purpose | undefined): Promise<VerifyReport> {
  const ca = await openAuthority(store);
  const t = await resolveCertificate(store, target, now, { recordedOnly: true, hint: inspectElsewhereHint(target) });
  const c = t.cert;
  // a file must also be the CA's own copy (ca/provenance.ts): signed with the key is not enough
  const signed = issuedBy(ca, c);
  const notRecorded = t.provenance === undefined || t.provenance.ok ? undefined : provenanceMessage(t.provenance, c, t.source);
  // an issuing CA: the link up to the root, and the root's CRL about this CA
  const up = await verifyParentLink(ca, now);
  const caSubject = formatDn(ca.cert.subject);
  const chain = chainCheck({ signed, notRecorded, caSubject, caNotBefore: ca.cert.notBefore, caNotAfter: ca.cert.notAfter, issuer: formatDn(c.issuer), parent: up }, now);
  const validity = validityCheck(c, now);
  const rev = signed && notRecorded === undefined ? revocationCheck({ serial: c.serial, entry: t.entry, crl: await crlFacts(ca), parent: up, caSubject }, now) : unknownRevocation();
  const p = purpose ? purposeCheck(purpose, ekuOf(c), ekuOf(ca.cert), up?.parent ? ekuOf(up.parent) : null) : null;
  return {
    cert: c,
    checks: [chain, validity, rev.check, ...(p ? [p.check] : [])],
    chain: chain.ok,
    revoked: rev.revoked,
    expired: !validity.ok,
    purpose: p?.purpose ?? null,
    revocation: rev.revocation,
  };
}
