/**
 * Structural parsing of certificates and PKCS#10 requests with our DER reader.
 * Pure: no crypto here (signatures are checked in src/crypto/), no I/O.
 *
 * Every malformation becomes a DerError, which callers turn into a typed
 * BAD_INPUT error; nothing here trusts a length or a count from the input.
 */
import * as der from "./der.js";
import { decodeGeneralNames, decodeName, type Rdn, type San } from "./names.js";
import { OID } from "./certificate.js";
import { ekuName, KEY_USAGE_BITS } from "./profiles.js";
import { serialHex } from "./serial.js";

export interface RawExtension {
  oid: string;
  critical: boolean;
  value: der.Bytes;
}

export interface SpkiInfo {
  algorithm: string;
  /** named curve OID for EC keys */
  curve?: string;
  raw: der.Bytes;
  /** contents of the subjectPublicKey BIT STRING (after the unused-bits octet) */
  keyBits: der.Bytes;
}

const ALG_NAMES: Record<string, string> = {
  "1.2.840.113549.1.1.1": "rsa",
  "1.2.840.10045.2.1": "ec",
  "1.3.101.112": "ed25519",
  "1.3.101.113": "ed448",
  "1.2.840.113549.1.1.10": "rsa-pss",
};
const CURVES: Record<string, string> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
};
export const algorithmName = (oid: string): string => ALG_NAMES[oid] ?? oid;
export const curveName = (oid: string | undefined): string | undefined => (oid ? (CURVES[oid] ?? oid) : undefined);

export function parseSpki(buf: der.Bytes, node: der.Node): SpkiInfo {
  const [alg, bits] = der.children(buf, node);
  if (!alg || !bits || alg.tag !== der.TAG.SEQUENCE || bits.tag !== der.TAG.BIT_STRING) throw new der.DerError("bad SubjectPublicKeyInfo");
  const algParts = der.children(buf, alg);
  if (!algParts[0] || algParts[0].tag !== der.TAG.OID) throw new der.DerError("bad key algorithm");
  const algorithm = der.readOid(buf, algParts[0]);
  const curve = algParts[1]?.tag === der.TAG.OID ? der.readOid(buf, algParts[1]) : undefined;
  const bc = der.content(buf, bits);
  if (bc.length < 1 || bc[0] !== 0) throw new der.DerError("bad public key bit string");
  return { algorithm, curve, raw: der.raw(buf, node), keyBits: bc.subarray(1) };
}

function parseExtensions(buf: der.Bytes, node: der.Node): RawExtension[] {
  return der.children(buf, node).map((e) => {
    const parts = der.children(buf, e);
    if (!parts[0] || parts[0].tag !== der.TAG.OID) throw new der.DerError("bad extension");
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === der.TAG.BOOLEAN) {
      critical = der.content(buf, parts[i]!)[0] !== 0;
      i++;
    }
    const v = parts[i];
    if (!v || v.tag !== der.TAG.OCTET_STRING) throw new der.DerError("bad extension value");
    return { oid: der.readOid(buf, parts[0]), critical, value: der.content(buf, v) };
  });
}

export interface ParsedCertificate {
  der: der.Bytes;
  tbs: der.Bytes;
  serial: string;
  signatureAlgorithm: string;
  signature: der.Bytes;
  issuerRaw: der.Bytes;
  issuer: Rdn[];
  notBefore: Date;
  notAfter: Date;
  subjectRaw: der.Bytes;
  subject: Rdn[];
  spki: SpkiInfo;
  extensions: RawExtension[];
}

export function parseCertificate(buf: der.Bytes): ParsedCertificate {
  const { tbs: tbsN, alg: algN, sig: sigN, fields: t } = der.signedParts(buf, "certificate");
  let i = 0;
  if (t[0]?.tag === 0xa0) i++; // version
  const [serialN, , issuerN, validityN, subjectN, spkiN] = t.slice(i);
  if (!serialN || serialN.tag !== der.TAG.INTEGER || !issuerN || !validityN || !subjectN || !spkiN) throw new der.DerError("not a certificate");
  const [nb, na] = der.children(buf, validityN);
  if (!nb || !na) throw new der.DerError("bad validity");
  const extWrap = t.slice(i + 6).find((n) => n.tag === 0xa3);
  let extensions: RawExtension[] = [];
  if (extWrap) {
    const inner = der.children(buf, extWrap)[0];
    if (!inner) throw new der.DerError("bad extensions");
    extensions = parseExtensions(buf, inner);
  }
  const algOid = der.children(buf, algN)[0];
  let serialBytes = der.content(buf, serialN);
  if (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes = serialBytes.subarray(1);
  const sigContent = der.content(buf, sigN);
  return {
    der: buf,
    tbs: der.raw(buf, tbsN),
    serial: serialHex(serialBytes),
    signatureAlgorithm: algOid ? der.readOid(buf, algOid) : "",
    signature: sigContent.subarray(1),
    issuerRaw: der.raw(buf, issuerN),
    issuer: decodeName(buf, issuerN),
    notBefore: der.readTime(buf, nb),
    notAfter: der.readTime(buf, na),
    subjectRaw: der.raw(buf, subjectN),
    subject: decodeName(buf, subjectN),
    spki: parseSpki(buf, spkiN),
    extensions,
  };
}

export interface ParsedCsr {
  der: der.Bytes;
  /** the signed part, certificationRequestInfo */
  info: der.Bytes;
  subjectRaw: der.Bytes;
  subject: Rdn[];
  spki: SpkiInfo;
  /** requested extensions (PKCS#9 extensionRequest), all of them */
  extensions: RawExtension[];
  signatureAlgorithm: string;
  /** DER of the signature AlgorithmIdentifier (parameters matter for RSA-PSS) */
  signatureAlgorithmRaw: der.Bytes;
  signature: der.Bytes;
}

const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

export function parseCsr(buf: der.Bytes): ParsedCsr {
  const top = der.read(buf);
  if (top.tag !== der.TAG.SEQUENCE || top.end !== buf.length) throw new der.DerError("not a DER structure");
  const [infoN, algN, sigN] = der.children(buf, top);
  if (!infoN || !algN || !sigN || infoN.tag !== der.TAG.SEQUENCE || algN.tag !== der.TAG.SEQUENCE || sigN.tag !== der.TAG.BIT_STRING) {
    throw new der.DerError("not a PKCS#10 request");
  }
  const parts = der.children(buf, infoN);
  const [verN, subjectN, spkiN, attrsN] = parts;
  if (!verN || verN.tag !== der.TAG.INTEGER || !subjectN || subjectN.tag !== der.TAG.SEQUENCE || !spkiN || spkiN.tag !== der.TAG.SEQUENCE) {
    // A certificate has [0] version, then INTEGER serial: say so, it is a common mistake.
    if (verN?.tag === 0xa0) throw new der.DerError("this is a certificate, not a certificate signing request");
    throw new der.DerError("not a PKCS#10 request");
  }
  const ver = der.content(buf, verN);
  if (ver.length !== 1 || ver[0] !== 0) throw new der.DerError("unsupported PKCS#10 version");
  let extensions: RawExtension[] = [];
  if (attrsN) {
    if (attrsN.tag !== 0xa0) throw new der.DerError("bad PKCS#10 attributes");
    for (const attr of der.children(buf, attrsN)) {
      const [typeN, valuesN] = der.children(buf, attr);
      if (!typeN || typeN.tag !== der.TAG.OID || !valuesN || valuesN.tag !== der.TAG.SET) throw new der.DerError("bad PKCS#10 attribute");
      if (der.readOid(buf, typeN) !== OID_EXTENSION_REQUEST) continue;
      for (const v of der.children(buf, valuesN)) extensions.push(...parseExtensions(buf, v));
    }
  }
  const algOidN = der.children(buf, algN)[0];
  if (!algOidN || algOidN.tag !== der.TAG.OID) throw new der.DerError("bad signature algorithm");
  const sig = der.content(buf, sigN);
  if (sig.length < 1 || sig[0] !== 0) throw new der.DerError("bad signature bit string");
  return {
    der: buf,
    info: der.raw(buf, infoN),
    subjectRaw: der.raw(buf, subjectN),
    subject: decodeName(buf, subjectN),
    spki: parseSpki(buf, spkiN),
    extensions,
    signatureAlgorithm: der.readOid(buf, algOidN),
    signatureAlgorithmRaw: der.raw(buf, algN),
    signature: sig.subarray(1),
  };
}

// ---------------------------------------------------------------- extension decoders

export function findExtension(exts: readonly RawExtension[], oid: string): RawExtension | undefined {
  return exts.find((e) => e.oid === oid);
}

export function decodeSans(value: der.Bytes): Array<San | { type: "other"; tag: number }> {
  return decodeGeneralNames(value, der.read(value));
}

export function decodeBasicConstraints(value: der.Bytes): { ca: boolean; pathLen?: number } {
  const n = der.read(value);
  const c = der.children(value, n);
  let ca = false;
  let pathLen: number | undefined;
  for (const x of c) {
    if (x.tag === der.TAG.BOOLEAN) ca = der.content(value, x)[0] !== 0;
    if (x.tag === der.TAG.INTEGER) pathLen = der.content(value, x).reduce((a, b) => a * 256 + b, 0);
  }
  return { ca, pathLen };
}

export function decodeKeyUsage(value: der.Bytes): string[] {
  const n = der.read(value);
  const c = der.content(value, n).subarray(1);
  const out: string[] = [];
  for (const [name, bit] of Object.entries(KEY_USAGE_BITS)) {
    if (name === "contentCommitment") continue;
    if (c[bit >> 3] !== undefined && c[bit >> 3]! & (0x80 >> (bit & 7))) out.push(name);
  }
  return out;
}

export function decodeEku(value: der.Bytes): string[] {
  const n = der.read(value);
  return der.children(value, n).map((o) => ekuName(der.readOid(value, o)));
}

export function decodeKeyId(value: der.Bytes): der.Bytes {
  return der.content(value, der.read(value));
}

export function decodeAkiKeyId(value: der.Bytes): der.Bytes | undefined {
  const n = der.read(value);
  const k = der.children(value, n).find((x) => x.tag === 0x80);
  return k ? der.content(value, k) : undefined;
}

/** Human summary of the extensions we know, for show/--dry-run. */
export function describeExtensions(exts: readonly RawExtension[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of exts) {
    try {
      switch (e.oid) {
        case OID.basicConstraints:
          out.basicConstraints = decodeBasicConstraints(e.value);
          break;
        case OID.keyUsage:
          out.keyUsage = decodeKeyUsage(e.value);
          break;
        case OID.extKeyUsage:
          out.extendedKeyUsage = decodeEku(e.value);
          break;
        case OID.subjectAltName:
          out.subjectAltName = decodeSans(e.value).map((s) => (s.type === "other" ? `other:[${s.tag & 0x1f}]` : `${s.type}:${s.value}`));
          break;
        case OID.subjectKeyIdentifier:
          out.subjectKeyIdentifier = der.toHex(decodeKeyId(e.value));
          break;
        case OID.authorityKeyIdentifier: {
          const k = decodeAkiKeyId(e.value);
          if (k) out.authorityKeyIdentifier = der.toHex(k);
          break;
        }
        default:
          (out.other ??= [] as string[]) as string[];
          (out.other as string[]).push(e.oid);
      }
    } catch {
      ((out.malformed ??= [] as string[]) as string[]).push(e.oid);
    }
  }
  return out;
}

export function extensionName(oid: string): string {
  const found = Object.entries(OID).find(([, o]) => o === oid);
  return found ? found[0] : oid;
}
