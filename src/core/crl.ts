/**
 * CRL v2 building (RFC 5280 section 5). Pure.
 *
 * Built for size: a long-lived CA has 10^5..10^6 revoked entries. The entries
 * are encoded straight from the index fields into one preallocated buffer in
 * two passes (measure, then write): no per-entry object graph, no per-entry
 * allocation, memory ~ the CRL itself. The revocation time of an index line is
 * already the content of a UTCTime (13 chars) or GeneralizedTime (15 chars),
 * so it is copied as is.
 */
import * as der from "./der.js";
import { OID } from "./certificate.js";
import { REASONS, type IndexEntry, formatTime } from "./index-format.js";

export interface RevokedRef {
  /** upper-case hex, even length */
  serial: string;
  /** index-form time: YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ */
  time: string;
  /** reasonCode, absent for unspecified */
  reasonCode?: number;
}

export function revokedFromEntries(entries: Iterable<IndexEntry>): RevokedRef[] {
  const out: RevokedRef[] = [];
  for (const e of entries) {
    if (e.status !== "R" || !e.revokedAt) continue;
    out.push({ serial: e.serial, time: formatTime(e.revokedAt), reasonCode: e.reason ? REASONS[e.reason].code : undefined });
  }
  return out;
}

/**
 * Scan index.txt text for revoked lines without building IndexEntry objects
 * (the fast path for huge CRLs). Lines are validated as far as the CRL needs.
 */
export function revokedFromIndexText(text: string): RevokedRef[] {
  const out: RevokedRef[] = [];
  let p = 0;
  const n = text.length;
  while (p < n) {
    let eol = text.indexOf("\n", p);
    if (eol < 0) eol = n;
    if (text.charCodeAt(p) === 82 /* R */) {
      const t1 = text.indexOf("\t", p);
      const t2 = text.indexOf("\t", t1 + 1);
      const t3 = text.indexOf("\t", t2 + 1);
      const t4 = text.indexOf("\t", t3 + 1);
      if (t1 < 0 || t4 < 0 || t4 > eol) throw new Error(`index.txt: malformed revoked line at offset ${p}`);
      const rev = text.slice(t2 + 1, t3);
      const comma = rev.indexOf(",");
      const time = comma < 0 ? rev : rev.slice(0, comma);
      if (time.length !== 13 && time.length !== 15) throw new Error(`index.txt: bad revocation time ${JSON.stringify(time)}`);
      let reasonCode: number | undefined;
      if (comma >= 0) {
        const r = rev.slice(comma + 1).toLowerCase();
        for (const v of Object.values(REASONS)) if (v.openssl.toLowerCase() === r) reasonCode = v.code;
        if (reasonCode === 0) reasonCode = undefined;
      }
      out.push({ serial: text.slice(t3 + 1, t4), time, reasonCode });
    }
    p = eol + 1;
  }
  return out;
}

function lenOfLen(len: number): number {
  return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : len < 0x1000000 ? 4 : 5;
}

function writeLen(buf: Uint8Array, p: number, len: number): number {
  if (len < 0x80) {
    buf[p] = len;
    return p + 1;
  }
  const n = lenOfLen(len) - 1;
  buf[p++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) buf[p++] = Math.floor(len / 2 ** (8 * i)) & 0xff;
  return p;
}

const hexVal = (c: number): number => (c <= 57 ? c - 48 : (c | 0x20) - 87);

/** INTEGER content length for an upper-case even-length hex serial (leading 00 when high bit set). */
function serialContentLen(hex: string): number {
  let start = 0;
  while (start + 2 < hex.length && hex.charCodeAt(start) === 48 && hex.charCodeAt(start + 1) === 48) start += 2;
  const bytes = (hex.length - start) / 2;
  return bytes + (hexVal(hex.charCodeAt(start)) >= 8 ? 1 : 0);
}

// crlEntryExtensions: SEQ { SEQ { OID reasonCode (55 1d 15), OCTET STRING { ENUMERATED code } } }, 14 bytes
const REASON_EXT = (code: number) => Uint8Array.from([0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, code]);

function entryContentLen(r: RevokedRef): number {
  const sl = serialContentLen(r.serial);
  return 1 + lenOfLen(sl) + sl + 2 + r.time.length + (r.reasonCode === undefined ? 0 : 14);
}

/** The DER of `revokedCertificates` (SEQUENCE OF), or an empty array when there are none. */
export function encodeRevoked(list: readonly RevokedRef[]): Uint8Array {
  if (list.length === 0) return new Uint8Array(0);
  let total = 0;
  for (const r of list) {
    const cl = entryContentLen(r);
    total += 1 + lenOfLen(cl) + cl;
  }
  const buf = new Uint8Array(1 + lenOfLen(total) + total);
  buf[0] = 0x30;
  let p = writeLen(buf, 1, total);
  for (const r of list) {
    const cl = entryContentLen(r);
    buf[p++] = 0x30;
    p = writeLen(buf, p, cl);
    // userCertificate INTEGER
    const hex = r.serial;
    let start = 0;
    while (start + 2 < hex.length && hex.charCodeAt(start) === 48 && hex.charCodeAt(start + 1) === 48) start += 2;
    const sl = serialContentLen(hex);
    buf[p++] = 0x02;
    p = writeLen(buf, p, sl);
    if (hexVal(hex.charCodeAt(start)) >= 8) buf[p++] = 0;
    for (let i = start; i < hex.length; i += 2) buf[p++] = (hexVal(hex.charCodeAt(i)) << 4) | hexVal(hex.charCodeAt(i + 1));
    // revocationDate
    buf[p++] = r.time.length === 13 ? 0x17 : 0x18;
    buf[p++] = r.time.length;
    for (let i = 0; i < r.time.length; i++) buf[p++] = r.time.charCodeAt(i);
    if (r.reasonCode !== undefined) {
      buf.set(REASON_EXT(r.reasonCode), p);
      p += 14;
    }
  }
  if (p !== buf.length) throw new Error("CRL encoder length mismatch");
  return buf;
}

export interface CrlParams {
  signatureAlgorithm: Uint8Array;
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
  authorityKeyId: Uint8Array;
  revoked: readonly RevokedRef[];
}

export function tbsCertList(p: CrlParams): Uint8Array {
  const exts = der.ctx(
    0,
    der.seq(
      der.seq(der.oid(OID.authorityKeyIdentifier), der.octets(der.seq(der.ctxPrim(0, p.authorityKeyId)))),
      der.seq(der.oid(OID.cRLNumber), der.octets(der.integer(p.crlNumber))),
    ),
  );
  return der.seq(der.integer(1), p.signatureAlgorithm, p.issuer, der.time(p.thisUpdate), der.time(p.nextUpdate), encodeRevoked(p.revoked), exts);
}

/** crlnumber file: hex, as OpenSSL keeps it ("01" for a new CA). */
export function parseCrlNumber(text: string): bigint | null {
  const t = text.trim();
  if (!/^[0-9A-Fa-f]+$/.test(t)) return null;
  return BigInt("0x" + t);
}

export function formatCrlNumber(n: bigint): string {
  let s = n.toString(16).toUpperCase();
  if (s.length % 2) s = "0" + s;
  return s + "\n";
}

// ---------------------------------------------------------------- reading

export interface CrlInfo {
  /** the signed part (for signature checks) */
  tbs: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  issuerRaw: Uint8Array;
  thisUpdate: Date;
  /** absent when the CRL has none (RFC 5280 requires it; OpenSSL tolerates it) */
  nextUpdate?: Date;
  crlNumber?: bigint;
  /** number of entries in revokedCertificates */
  revoked: number;
  /** the DER of revokedCertificates (empty when there are none): compare with encodeRevoked() */
  revokedDer: Uint8Array;
}

/**
 * Read what `pki crl --if-expiring-within` and `pki doctor` need from a DER
 * CRL: its times, number, issuer and entry count. The entries themselves are
 * only counted (no per-entry objects), so a CRL of 10^5 entries reads fast.
 */
export function readCrlInfo(buf: Uint8Array): CrlInfo {
  const top = der.read(buf);
  if (top.tag !== der.TAG.SEQUENCE || top.end !== buf.length) throw new der.DerError("not a DER CRL");
  const [tbsN, algN, sigN] = der.children(buf, top);
  if (!tbsN || !algN || !sigN || tbsN.tag !== der.TAG.SEQUENCE || sigN.tag !== der.TAG.BIT_STRING) throw new der.DerError("not a CRL");
  const t = der.children(buf, tbsN);
  let i = 0;
  if (t[0]?.tag === der.TAG.INTEGER) i++; // version
  const issuerN = t[i + 1];
  const thisN = t[i + 2];
  if (!issuerN || issuerN.tag !== der.TAG.SEQUENCE || !thisN) throw new der.DerError("not a CRL");
  let j = i + 3;
  let nextUpdate: Date | undefined;
  const isTime = (n: der.Node | undefined) => n !== undefined && (n.tag === der.TAG.UTCTime || n.tag === der.TAG.GeneralizedTime);
  if (isTime(t[j])) nextUpdate = der.readTime(buf, t[j++]!);
  let revoked = 0;
  let revokedDer: Uint8Array = new Uint8Array(0);
  if (t[j]?.tag === der.TAG.SEQUENCE) {
    const r = t[j++]!;
    revokedDer = der.raw(buf, r);
    for (let p = r.contentStart; p < r.end; p = der.read(buf, p, r.end).end) revoked++;
  }
  let crlNumber: bigint | undefined;
  const extWrap = t[j];
  if (extWrap?.tag === 0xa0) {
    const inner = der.children(buf, extWrap)[0];
    for (const ext of inner ? der.children(buf, inner) : []) {
      const parts = der.children(buf, ext);
      if (!parts[0] || der.readOid(buf, parts[0]) !== OID.cRLNumber) continue;
      const v = parts[parts.length - 1]!;
      const n = der.read(der.content(buf, v));
      const c = der.content(der.content(buf, v), n);
      crlNumber = c.length ? BigInt("0x" + der.toHex(c)) : 0n;
    }
  }
  const algOid = der.children(buf, algN)[0];
  return {
    tbs: der.raw(buf, tbsN),
    signatureAlgorithm: algOid ? der.readOid(buf, algOid) : "",
    signature: der.content(buf, sigN).subarray(1),
    issuerRaw: der.raw(buf, issuerN),
    thisUpdate: der.readTime(buf, thisN),
    nextUpdate,
    crlNumber,
    revoked,
    revokedDer,
  };
}

/** The serials listed in a CRL's revokedCertificates DER (upper-case hex, even length), in order. */
export function revokedSerials(revokedDer: Uint8Array): string[] {
  const out: string[] = [];
  if (revokedDer.length === 0) return out;
  const top = der.read(revokedDer);
  for (let p = top.contentStart; p < top.end; ) {
    const entry = der.read(revokedDer, p, top.end);
    const s = der.read(revokedDer, entry.contentStart, entry.end);
    let c = der.content(revokedDer, s);
    if (c.length > 1 && c[0] === 0) c = c.subarray(1);
    out.push(der.toHex(c));
    p = entry.end;
  }
  return out;
}
