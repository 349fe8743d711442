/**
 * Building X.509 v3 certificates (RFC 5280) from a profile. Pure: the caller
 * passes the key material, identifiers and the signer in.
 */
import * as der from "./der.js";
import { encodeGeneralName, type San } from "./names.js";
import { KEY_USAGE_BITS, ekuOid, type KeyUsageName, type Profile } from "./profiles.js";

export const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  subjectAltName: "2.5.29.17",
  crlDistributionPoints: "2.5.29.31",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  cRLNumber: "2.5.29.20",
  reasonCode: "2.5.29.21",
  ocsp: "1.3.6.1.5.5.7.48.1",
  caIssuers: "1.3.6.1.5.5.7.48.2",
  ocspNoCheck: "1.3.6.1.5.5.7.48.1.5",
} as const;

export type KeyKind = "rsa" | "ec-p256" | "ec-p384" | "ec-p521" | "ed25519";

export interface Extension {
  oid: string;
  critical: boolean;
  /** DER of the extnValue contents (what goes inside the OCTET STRING) */
  value: der.Bytes;
}

export function encodeExtension(e: Extension): der.Bytes {
  return e.critical ? der.seq(der.oid(e.oid), der.bool(true), der.octets(e.value)) : der.seq(der.oid(e.oid), der.octets(e.value));
}

/** Named-bit BIT STRING, DER: trailing zero bits dropped (X.690 11.2.2). */
export function keyUsageValue(usages: readonly KeyUsageName[]): der.Bytes {
  let bits = 0;
  let highest = -1;
  for (const u of usages) {
    const b = KEY_USAGE_BITS[u];
    bits |= 1 << b;
    highest = Math.max(highest, b);
  }
  const nbytes = highest < 0 ? 0 : Math.floor(highest / 8) + 1;
  const bytes = new Uint8Array(nbytes);
  for (let b = 0; b <= highest; b++) if (bits & (1 << b)) bytes[b >> 3]! |= 0x80 >> (b & 7);
  let unused = 0;
  if (nbytes > 0) {
    const last = bytes[nbytes - 1]!;
    while (unused < 7 && !(last & (1 << unused))) unused++;
  }
  return der.tlv(der.TAG.BIT_STRING, Uint8Array.of(unused), bytes);
}

export const basicConstraints = (ca: boolean, pathLen?: number): Extension => ({
  oid: OID.basicConstraints,
  critical: true,
  value: ca ? der.seq(der.bool(true), ...(pathLen === undefined ? [] : [der.integer(pathLen)])) : der.seq(),
});

export const keyUsage = (usages: readonly KeyUsageName[]): Extension => ({ oid: OID.keyUsage, critical: true, value: keyUsageValue(usages) });

export const extKeyUsage = (ekus: readonly string[]): Extension => ({
  oid: OID.extKeyUsage,
  critical: false,
  value: der.seq(...ekus.map((e) => der.oid(ekuOid(e)))),
});

export const subjectKeyIdentifier = (keyId: der.Bytes): Extension => ({ oid: OID.subjectKeyIdentifier, critical: false, value: der.octets(keyId) });

export const authorityKeyIdentifier = (keyId: der.Bytes): Extension => ({
  oid: OID.authorityKeyIdentifier,
  critical: false,
  value: der.seq(der.ctxPrim(0, keyId)),
});

/** RFC 5280 4.2.1.6: critical when the subject is empty. */
export const subjectAltName = (sans: readonly San[], subjectEmpty = false): Extension => ({
  oid: OID.subjectAltName,
  critical: subjectEmpty,
  value: der.seq(...sans.map(encodeGeneralName)),
});

export const crlDistributionPoints = (urls: readonly string[]): Extension => ({
  oid: OID.crlDistributionPoints,
  critical: false,
  value: der.seq(...urls.map((u) => der.seq(der.ctx(0, der.ctx(0, der.ctxPrim(6, der.utf8(u))))))),
});

export const authorityInfoAccess = (ocsp?: string, caIssuers?: string): Extension => ({
  oid: OID.authorityInfoAccess,
  critical: false,
  value: der.seq(
    ...(ocsp ? [der.seq(der.oid(OID.ocsp), der.ctxPrim(6, der.utf8(ocsp)))] : []),
    ...(caIssuers ? [der.seq(der.oid(OID.caIssuers), der.ctxPrim(6, der.utf8(caIssuers)))] : []),
  ),
});

export interface CaUrls {
  crlUrl?: string;
  ocspUrl?: string;
  caIssuersUrl?: string;
}

export function urlExtensions(urls: CaUrls): Extension[] {
  const out: Extension[] = [];
  if (urls.crlUrl) out.push(crlDistributionPoints([urls.crlUrl]));
  if (urls.ocspUrl || urls.caIssuersUrl) out.push(authorityInfoAccess(urls.ocspUrl, urls.caIssuersUrl));
  return out;
}

export interface LeafExtensionParams {
  profile: Profile;
  keyKind: KeyKind;
  sans: readonly San[];
  subjectEmpty: boolean;
  subjectKeyId: der.Bytes;
  authorityKeyId: der.Bytes;
  urls: CaUrls;
}

/** The extensions of a leaf, entirely from the profile and the CA settings. */
export function leafExtensions(p: LeafExtensionParams): Extension[] {
  const usages = [...p.profile.keyUsage, ...(p.keyKind === "rsa" ? p.profile.rsaKeyUsage : [])];
  const out: Extension[] = [basicConstraints(false), keyUsage([...new Set(usages)])];
  if (p.profile.extendedKeyUsage.length) out.push(extKeyUsage(p.profile.extendedKeyUsage));
  // RFC 6960 4.2.2.2.1: a delegated responder certificate carries
  // id-pkix-ocsp-nocheck (NULL), so that clients do not ask the responder
  // about its own certificate (nginx refuses a loop of that kind)
  if (p.profile.extendedKeyUsage.some((e) => e === "OCSPSigning" || e === "1.3.6.1.5.5.7.3.9")) out.push({ oid: OID.ocspNoCheck, critical: false, value: der.nul() });
  out.push(subjectKeyIdentifier(p.subjectKeyId), authorityKeyIdentifier(p.authorityKeyId));
  if (p.sans.length) out.push(subjectAltName(p.sans, p.subjectEmpty));
  out.push(...urlExtensions(p.urls));
  return out;
}

export interface CaExtensionParams {
  pathLen?: number;
  /** A CA "tagged as code signing": see README. */
  codeSigning: boolean;
  subjectKeyId: der.Bytes;
}

/**
 * CA extensions. With codeSigning, the EKU lists codeSigning *and* clientAuth
 * + serverAuth: OpenSSL (and so nginx) treats a CA's extendedKeyUsage as a
 * limit on the whole chain, and a CA marked codeSigning alone makes nginx
 * reject every client certificate it issued ("unsuitable certificate purpose").
 */
export function caExtensions(p: CaExtensionParams): Extension[] {
  const out: Extension[] = [
    basicConstraints(true, p.pathLen),
    keyUsage(["digitalSignature", "keyCertSign", "cRLSign"]),
    subjectKeyIdentifier(p.subjectKeyId),
  ];
  if (p.codeSigning) out.push(extKeyUsage(["codeSigning", "clientAuth", "serverAuth"]));
  return out;
}

// ---------------------------------------------------------------- signature algorithms

export interface SignatureAlgorithm {
  /** DER AlgorithmIdentifier */
  der: der.Bytes;
  /** digest for node:crypto.sign, null for Ed25519 */
  digest: "sha256" | "sha384" | "sha512" | null;
  name: string;
}

/** SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521, pure Ed25519. */
export function signatureAlgorithmFor(kind: KeyKind): SignatureAlgorithm {
  switch (kind) {
    case "rsa":
      return { der: der.seq(der.oid("1.2.840.113549.1.1.11"), der.nul()), digest: "sha256", name: "sha256WithRSAEncryption" };
    case "ec-p256":
      return { der: der.seq(der.oid("1.2.840.10045.4.3.2")), digest: "sha256", name: "ecdsa-with-SHA256" };
    case "ec-p384":
      return { der: der.seq(der.oid("1.2.840.10045.4.3.3")), digest: "sha384", name: "ecdsa-with-SHA384" };
    case "ec-p521":
      return { der: der.seq(der.oid("1.2.840.10045.4.3.4")), digest: "sha512", name: "ecdsa-with-SHA512" };
    case "ed25519":
      return { der: der.seq(der.oid("1.3.101.112")), digest: null, name: "ED25519" };
  }
}

// ---------------------------------------------------------------- TBSCertificate

export interface TbsParams {
  /** unsigned big-endian serial */
  serial: der.Bytes;
  signatureAlgorithm: der.Bytes;
  issuer: der.Bytes;
  notBefore: Date;
  notAfter: Date;
  subject: der.Bytes;
  spki: der.Bytes;
  extensions: readonly Extension[];
}

export function tbsCertificate(p: TbsParams): der.Bytes {
  return der.seq(
    der.ctx(0, der.integer(2)),
    der.integer(p.serial),
    p.signatureAlgorithm,
    p.issuer,
    der.seq(der.time(p.notBefore), der.time(p.notAfter)),
    p.subject,
    p.spki,
    der.ctx(3, der.seq(...p.extensions.map(encodeExtension))),
  );
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } */
export function assembleSigned(tbs: der.Bytes, sigAlg: der.Bytes, signature: der.Bytes): der.Bytes {
  return der.seq(tbs, sigAlg, der.bitString(signature));
}

export type Signer = (data: der.Bytes) => der.Bytes;

export interface ValidityParams {
  now: Date;
  days: number;
  caNotAfter: Date;
}

/**
 * notBefore is one minute in the past (clients with a slightly slow clock
 * would otherwise reject a fresh certificate); notAfter is capped at the CA's
 * notAfter (a chain is only as valid as its CA; RFC 5280 6.1.3).
 */
export function validity(p: ValidityParams): { notBefore: Date; notAfter: Date; capped: boolean } {
  const notBefore = new Date(Math.floor(p.now.getTime() / 1000) * 1000 - 60_000);
  const wanted = new Date(Math.floor(p.now.getTime() / 1000) * 1000 + p.days * 86_400_000);
  if (wanted.getTime() > p.caNotAfter.getTime()) return { notBefore, notAfter: new Date(p.caNotAfter.getTime()), capped: true };
  return { notBefore, notAfter: wanted, capped: false };
}
