/**
 * The checks of `pki verify`, decided from facts the caller gathered (the CA,
 * the certificate, the index line, crl.pem, the parent link). Pure: no store,
 * no clock (now is passed in), no output.
 *
 *   chain       issued by this CA (issuer name and the CA key's signature),
 *               this CA's own copy (a file), the CA certificate in its
 *               validity period, and for an issuing CA the link to the root
 *   validity    now within notBefore..notAfter
 *   revocation  the index and the current crl.pem (signed by the CA, not
 *               expired: nginx refuses every client once its CRL has
 *               expired, so "not listed" means nothing then), and the
 *               parent's CRL about an issuing CA
 *   purpose     the leaf's extendedKeyUsage has it (an absent EKU allows any
 *               purpose, as in OpenSSL), and so does every CA's EKU that has
 *               one (OpenSSL, and so nginx, treats a CA's EKU as a limit on
 *               the chain)
 */
import { revokedSerials } from "./crl.js";
import type { IndexEntry } from "./index-format.js";

export interface Check {
  name: string;
  ok: boolean;
  message: string;
}

export type Purpose = "client" | "server" | "code-signing";
export const PURPOSE_EKU = { client: "clientAuth", server: "serverAuth", "code-signing": "codeSigning" } as const satisfies Record<Purpose, string>;

/** What verifyParentLink (ca/parent.ts) found about an issuing CA; null for a root. */
export interface ParentFacts {
  chainOk: boolean;
  message: string;
  revokedByParent: boolean;
  crl: "revoked" | "not revoked" | "unavailable";
  crlProblem?: string;
}

export interface ChainFacts {
  /** issuer name is the CA's and the CA key's signature verifies */
  signed: boolean;
  /** for a file that is not the CA's own copy: why (provenanceMessage) */
  notRecorded?: string;
  caSubject: string;
  caNotBefore: Date;
  caNotAfter: Date;
  /** the certificate's issuer, formatted */
  issuer: string;
  parent: ParentFacts | null;
}

export function chainCheck(f: ChainFacts, now: Date): Check {
  const caValid = now >= f.caNotBefore && now <= f.caNotAfter;
  const up = f.parent;
  return {
    name: "chain",
    ok: f.signed && f.notRecorded === undefined && caValid && (up?.chainOk ?? true),
    message: !f.signed
      ? `not issued by this CA (${f.caSubject}): issued by ${f.issuer}, or its signature does not verify`
      : f.notRecorded !== undefined
        ? f.notRecorded
        : !caValid
          ? `the CA certificate is outside its validity period (until ${f.caNotAfter.toISOString()})`
          : up && !up.chainOk
            ? up.message
            : `signed by ${f.caSubject}${up ? `; ${up.message}` : ""}`,
  };
}

export function validityCheck(c: { notBefore: Date; notAfter: Date }, now: Date): Check {
  return {
    name: "validity",
    ok: !(now > c.notAfter || now < c.notBefore),
    message: now > c.notAfter ? `expired on ${c.notAfter.toISOString()}` : now < c.notBefore ? `not valid before ${c.notBefore.toISOString()}` : `valid until ${c.notAfter.toISOString()}`,
  };
}

/** crl.pem as read: missing, unreadable (the reader's message), or read and checked against the CA. */
export type CrlFacts = { state: "missing" } | { state: "error"; message: string } | { state: "read"; signedByCa: boolean; nextUpdate?: Date; revokedDer: Uint8Array };

export interface RevocationFacts {
  serial: string;
  /** the certificate's index line; undefined when the index has none */
  entry: IndexEntry | undefined;
  crl: CrlFacts;
  parent: ParentFacts | null;
  caSubject: string;
}

export interface RevocationResult {
  check: Check;
  revoked: boolean;
  /** verify's JSON `revocation`: index, crl, crlNextUpdate, parentCrl */
  revocation: Record<string, unknown>;
}

/** What crl.pem says about a serial: listed or not, or why it cannot be trusted. */
function crlVerdict(crl: CrlFacts, serial: string, now: Date): { problem?: string; hit?: boolean; nextUpdate?: string | null } {
  if (crl.state === "missing") return { problem: "crl.pem is missing: run `pki crl`" };
  if (crl.state === "error") return { problem: `crl.pem cannot be read (${crl.message}): run \`pki crl\`` };
  if (!crl.signedByCa) return { problem: "crl.pem is not signed by this CA: run `pki crl`" };
  if (crl.nextUpdate && crl.nextUpdate.getTime() <= now.getTime()) {
    return { problem: `crl.pem expired on ${crl.nextUpdate.toISOString()} (nginx now refuses every client): run \`pki crl\`` };
  }
  try {
    return { hit: revokedSerials(crl.revokedDer).includes(serial), nextUpdate: crl.nextUpdate?.toISOString() ?? null };
  } catch (e) {
    return { problem: `crl.pem cannot be read (${(e as Error).message}): run \`pki crl\`` };
  }
}

/** The revocation check of a certificate this CA issued. */
export function revocationCheck(f: RevocationFacts, now: Date): RevocationResult {
  const e = f.entry;
  const up = f.parent;
  const revocation: Record<string, unknown> = { index: e ? (e.status === "R" ? "revoked" : "not revoked") : "not in the index", crl: null };
  const v = crlVerdict(f.crl, f.serial, now);
  if (v.hit !== undefined) {
    revocation.crl = v.hit ? "revoked" : "not revoked";
    revocation.crlNextUpdate = v.nextUpdate;
  }
  let problem = v.problem;
  if (up) {
    revocation.parentCrl = up.crl;
    problem ??= up.crlProblem;
  }
  const revoked = e?.status === "R" || v.hit === true || up?.revokedByParent === true;
  if (problem && revocation.crl !== "revoked") revocation.crl = "unavailable";
  const message = up?.revokedByParent
    ? `the issuing CA ${f.caSubject} is revoked by its parent (parent-crl.pem): every certificate it issued is refused`
    : revoked
      ? `revoked${e?.revokedAt ? ` on ${e.revokedAt.toISOString()}` : ""}${e?.status === "R" ? ` (${e.reason ?? "unspecified"})` : ""}${revocation.crl === "revoked" ? ", listed in crl.pem" : revocation.crl === "not revoked" ? ", but crl.pem does not list it yet: run `pki crl`" : ""}`
      : (problem ?? `not revoked (index and crl.pem${up ? "; the issuing CA not revoked in parent-crl.pem" : ""})`);
  return { check: { name: "revocation", ok: !revoked && !problem, message }, revoked, revocation };
}

/** A certificate that is not this CA's: its revocation cannot be known. */
export const unknownRevocation = (): RevocationResult => ({
  check: { name: "revocation", ok: false, message: "unknown: not a certificate of this CA" },
  revoked: false,
  revocation: { index: null, crl: null },
});

export interface PurposeResult {
  check: Check;
  purpose: { name: Purpose; ok: boolean; extendedKeyUsage: string[] | null };
}

/** EKU names of the leaf, this CA and its parent (null: no EKU extension, any purpose). */
export function purposeCheck(purpose: Purpose, leaf: string[] | null, caEku: string[] | null, rootEku: string[] | null): PurposeResult {
  const want = PURPOSE_EKU[purpose];
  const leafOk = leaf === null || leaf.includes(want);
  const caOk = (caEku === null || caEku.includes(want)) && (rootEku === null || rootEku.includes(want));
  return {
    purpose: { name: purpose, ok: leafOk && caOk, extendedKeyUsage: leaf },
    check: {
      name: "purpose",
      ok: leafOk && caOk,
      message: !leafOk
        ? `not for ${purpose}: its extendedKeyUsage is ${leaf!.join(", ")} (no ${want})`
        : !caOk
          ? `the CA's extendedKeyUsage (${(caEku ?? rootEku)!.join(", ")}) does not allow ${want}: OpenSSL and nginx reject the chain for ${purpose}`
          : `good for ${purpose} (${want})`,
    },
  };
}
