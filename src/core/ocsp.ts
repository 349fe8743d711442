/**
 * OCSP (RFC 6960) requests and responses, in the profile of RFC 5019 (the
 * "lightweight" profile that nginx, OpenSSL and browsers speak). Pure: the
 * caller hands in the request bytes, the clock, the status lookup and the
 * signer.
 *
 * Why our own DER instead of pkijs: a response is a dozen TLVs around one
 * signature. Building it directly costs a few microseconds; pkijs' object
 * graph costs far more per response than the ECDSA signature itself, and
 * `pki serve` is measured against `openssl ocsp` (README, "Performance").
 * The tests judge every response with the real `openssl ocsp` verifier.
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *                              requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 *   Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 *   CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
 *                              issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
 */
import * as der from "./der.js";
import { REASONS, type Reason } from "./index-format.js";

export const OCSP_OID = {
  basic: "1.3.6.1.5.5.7.48.1.1",
  nonce: "1.3.6.1.5.5.7.48.1.2",
  noCheck: "1.3.6.1.5.5.7.48.1.5",
} as const;

/** RFC 6960 4.2.1 OCSPResponseStatus. */
export const RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type ResponseStatus = keyof typeof RESPONSE_STATUS;

/** CertID hash algorithms we answer for (OpenSSL and nginx use SHA-1; RFC 6960 allows others). */
export const HASH_OIDS: Record<string, "sha1" | "sha256" | "sha384" | "sha512"> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

/** At most this many certificates per request (RFC 5019 2.1.1 asks for one; OpenSSL may send a few). */
export const MAX_CERT_IDS = 16;

export interface CertId {
  /** the CertID as it came, echoed in the answer (RFC 6960 4.2.1: the same hash algorithm) */
  raw: der.Bytes;
  hash: "sha1" | "sha256" | "sha384" | "sha512" | null;
  hashOid: string;
  nameHash: der.Bytes;
  keyHash: der.Bytes;
  /** upper-case hex as index.txt spells it (no leading 00 octet) */
  serial: string;
}

export interface OcspRequest {
  certIds: CertId[];
  /** the whole nonce Extension (SEQUENCE), echoed as is in the response */
  nonceExtension?: der.Bytes;
}

export class OcspMalformed extends Error {}

const expectTag = (n: der.Node, tag: number, what: string): void => {
  if (n.tag !== tag) throw new OcspMalformed(`${what}: unexpected tag 0x${n.tag.toString(16)}`);
};

/** Serial as index.txt spells it: upper-case hex, even length, no leading 00 octet. */
function serialOf(content: der.Bytes): string {
  if (content.length === 0) throw new OcspMalformed("empty serial number");
  if (content[0]! & 0x80) throw new OcspMalformed("negative serial number");
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return der.toHex(content.subarray(i));
}

function parseCertId(buf: der.Bytes, node: der.Node): CertId {
  expectTag(node, der.TAG.SEQUENCE, "CertID");
  const f = der.children(buf, node);
  if (f.length !== 4) throw new OcspMalformed("CertID must have 4 fields");
  expectTag(f[0]!, der.TAG.SEQUENCE, "hashAlgorithm");
  const alg = der.children(buf, f[0]!);
  if (!alg.length) throw new OcspMalformed("empty hashAlgorithm");
  expectTag(alg[0]!, der.TAG.OID, "hashAlgorithm");
  const hashOid = der.readOid(buf, alg[0]!);
  expectTag(f[1]!, der.TAG.OCTET_STRING, "issuerNameHash");
  expectTag(f[2]!, der.TAG.OCTET_STRING, "issuerKeyHash");
  expectTag(f[3]!, der.TAG.INTEGER, "serialNumber");
  if (f[3]!.end - f[3]!.contentStart > 20 + 1) throw new OcspMalformed("serial number longer than 20 octets");
  return {
    raw: der.raw(buf, node),
    hash: HASH_OIDS[hashOid] ?? null,
    hashOid,
    nameHash: der.content(buf, f[1]!),
    keyHash: der.content(buf, f[2]!),
    serial: serialOf(der.content(buf, f[3]!)),
  };
}

/** Parse an OCSPRequest (DER). Anything else, or trailing bytes, is OcspMalformed. */
export function parseOcspRequest(buf: der.Bytes): OcspRequest {
  try {
    const top = der.read(buf, 0);
    if (top.end !== buf.length) throw new OcspMalformed("trailing bytes after the request");
    expectTag(top, der.TAG.SEQUENCE, "OCSPRequest");
    const parts = der.children(buf, top);
    if (parts.length < 1 || parts.length > 2) throw new OcspMalformed("OCSPRequest must have 1 or 2 fields");
    expectTag(parts[0]!, der.TAG.SEQUENCE, "TBSRequest");
    let f = der.children(buf, parts[0]!);
    if (f[0]?.tag === 0xa0) {
      const v = der.children(buf, f[0]);
      if (v.length !== 1 || v[0]!.tag !== der.TAG.INTEGER || der.content(buf, v[0]!).some((b) => b !== 0)) throw new OcspMalformed("unsupported request version");
      f = f.slice(1);
    }
    if (f[0]?.tag === 0xa1) f = f.slice(1); // requestorName: not used (unsigned requests)
    const list = f[0];
    if (!list) throw new OcspMalformed("no requestList");
    expectTag(list, der.TAG.SEQUENCE, "requestList");
    const reqs = der.children(buf, list);
    if (reqs.length === 0) throw new OcspMalformed("empty requestList");
    if (reqs.length > MAX_CERT_IDS) throw new OcspMalformed(`more than ${MAX_CERT_IDS} certificates in one request`);
    const certIds = reqs.map((r) => {
      expectTag(r, der.TAG.SEQUENCE, "Request");
      const rf = der.children(buf, r);
      if (rf.length < 1 || rf.length > 2 || (rf[1] && rf[1].tag !== 0xa0)) throw new OcspMalformed("bad Request");
      return parseCertId(buf, rf[0]!);
    });
    let nonceExtension: der.Bytes | undefined;
    const rest = f.slice(1);
    if (rest.length > 1 || (rest[0] && rest[0].tag !== 0xa2)) throw new OcspMalformed("unexpected field after requestList");
    if (rest[0]) {
      const exts = der.children(buf, rest[0]);
      if (exts.length !== 1) throw new OcspMalformed("bad requestExtensions");
      for (const e of der.children(buf, exts[0]!)) {
        expectTag(e, der.TAG.SEQUENCE, "Extension");
        const ef = der.children(buf, e);
        if (!ef.length || ef[0]!.tag !== der.TAG.OID) throw new OcspMalformed("bad Extension");
        const id = der.readOid(buf, ef[0]!);
        const critical = ef.length === 3 && ef[1]!.tag === der.TAG.BOOLEAN && buf[ef[1]!.contentStart] !== 0;
        if (id === OCSP_OID.nonce) {
          // RFC 8954 2.1: a responder may answer without the nonce when it is
          // over 32 octets; we do (it would only grow every response)
          const value = ef[ef.length - 1]!;
          if (value.tag !== der.TAG.OCTET_STRING) throw new OcspMalformed("bad nonce extension");
          if (value.end - value.contentStart <= 32 + 2) nonceExtension = der.raw(buf, e);
        } else if (critical) throw new OcspMalformed(`unsupported critical extension ${id}`);
      }
    }
    return { certIds, nonceExtension };
  } catch (e) {
    if (e instanceof OcspMalformed) throw e;
    if (e instanceof der.DerError) throw new OcspMalformed(e.message);
    throw new OcspMalformed(`not an OCSP request: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------- responses

/** OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } : an error answer carries no responseBytes. */
export function errorResponse(status: Exclude<ResponseStatus, "successful">): der.Bytes {
  return der.seq(der.tlv(der.TAG.ENUMERATED, Uint8Array.of(RESPONSE_STATUS[status])));
}

/** OCSP times are GeneralizedTime always (RFC 6960 4.2.1), whole seconds, Z. */
export function generalizedTime(d: Date): der.Bytes {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return der.tlv(
    der.TAG.GeneralizedTime,
    der.utf8(`${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`),
  );
}

export type CertStatus = { status: "good" } | { status: "unknown" } | { status: "revoked"; revokedAt: Date; reason?: Reason };

export interface SingleAnswer {
  certId: CertId;
  status: CertStatus;
}

/**
 * CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
 * RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
 * The reason is written whenever the index has one (unspecified is omitted, as in the CRL: RFC 5280 5.3.1).
 */
export function encodeCertStatus(s: CertStatus): der.Bytes {
  if (s.status === "good") return Uint8Array.of(0x80, 0);
  if (s.status === "unknown") return Uint8Array.of(0x82, 0);
  const reason = s.reason && s.reason !== "unspecified" ? [der.ctx(0, der.tlv(der.TAG.ENUMERATED, Uint8Array.of(REASONS[s.reason].code)))] : [];
  return der.ctx(1, generalizedTime(s.revokedAt), ...reason);
}

export interface ResponseParams {
  answers: readonly SingleAnswer[];
  producedAt: Date;
  thisUpdate: Date;
  nextUpdate: Date;
  /** SHA-1 of the responder's public key bits (ResponderID byKey, RFC 6960 4.2.1) */
  responderKeyHash: der.Bytes;
  nonceExtension?: der.Bytes;
  /** DER AlgorithmIdentifier of the responder key's signature (SHA-256 for P-256) */
  signatureAlgorithm: der.Bytes;
  /** the responder certificate, sent along so that clients can check the delegation (RFC 6960 4.2.2.2) */
  responderCert: der.Bytes;
  sign: (tbs: der.Bytes) => der.Bytes;
}

/** ResponseData up to its signature: the part a cache can keep per certificate status. */
export function responseData(p: Omit<ResponseParams, "signatureAlgorithm" | "responderCert" | "sign">): der.Bytes {
  const single = p.answers.map((a) => der.seq(a.certId.raw, encodeCertStatus(a.status), generalizedTime(p.thisUpdate), der.ctx(0, generalizedTime(p.nextUpdate))));
  return der.seq(
    der.ctx(2, der.octets(p.responderKeyHash)), // ResponderID byKey [2] EXPLICIT KeyHash
    generalizedTime(p.producedAt),
    der.seq(...single),
    ...(p.nonceExtension ? [der.ctx(1, der.seq(p.nonceExtension))] : []),
  );
}

/** A successful OCSPResponse around a signed BasicOCSPResponse. */
export function buildOcspResponse(p: ResponseParams): der.Bytes {
  const tbs = responseData(p);
  const basic = der.seq(tbs, p.signatureAlgorithm, der.bitString(p.sign(tbs)), der.ctx(0, der.seq(p.responderCert)));
  return der.seq(der.tlv(der.TAG.ENUMERATED, Uint8Array.of(0)), der.ctx(0, der.seq(der.oid(OCSP_OID.basic), der.octets(basic))));
}

/** The id-pkix-ocsp-nocheck extension value (RFC 6960 4.2.2.2.1): NULL. */
export const NO_CHECK_VALUE = der.nul();

// ---------------------------------------------------------------- reading responses (tests, health)

export interface ParsedResponse {
  status: ResponseStatus;
  answers: Array<{ serial: string; status: CertStatus["status"]; revokedAt?: Date; reasonCode?: number }>;
  hasNonce: boolean;
}

/** A small reader of our own responses: the status and each answer's serial and status. */
export function readOcspResponse(buf: der.Bytes): ParsedResponse {
  const top = der.read(buf, 0);
  const f = der.children(buf, top);
  const code = der.content(buf, f[0]!)[0]!;
  const status = (Object.keys(RESPONSE_STATUS) as ResponseStatus[]).find((k) => RESPONSE_STATUS[k] === code) ?? "internalError";
  if (!f[1]) return { status, answers: [], hasNonce: false };
  const rb = der.children(buf, der.children(buf, f[1])[0]!);
  const basicBuf = der.content(buf, rb[1]!);
  const basic = der.read(basicBuf, 0);
  const tbs = der.children(basicBuf, der.children(basicBuf, basic)[0]!);
  let i = tbs[0]!.tag === 0xa0 ? 1 : 0;
  i += 2; // responderID, producedAt
  const answers = der.children(basicBuf, tbs[i]!).map((sr) => {
    const sf = der.children(basicBuf, sr);
    const cid = der.children(basicBuf, sf[0]!);
    const serial = serialOf(der.content(basicBuf, cid[3]!));
    const cs = sf[1]!;
    if (cs.tag === 0x80) return { serial, status: "good" as const };
    if (cs.tag === 0x82) return { serial, status: "unknown" as const };
    const ri = der.children(basicBuf, cs);
    const revokedAt = der.readTime(basicBuf, ri[0]!);
    const reasonCode = ri[1] ? der.content(basicBuf, der.children(basicBuf, ri[1])[0]!)[0] : undefined;
    return { serial, status: "revoked" as const, revokedAt, reasonCode };
  });
  return { status, answers, hasNonce: tbs.length > i + 1 };
}
