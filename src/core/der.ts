/**
 * A minimal DER (ITU-T X.690) encoder and reader.
 *
 * Why our own: certificates and CRLs are built by concatenating a few dozen
 * TLVs. Doing that directly costs microseconds; the generic ASN.1 object
 * graph of @peculiar/x509 costs milliseconds per certificate, which makes
 * bulk issuance and 1,000,000-entry CRLs impossible (see README,
 * "Performance"). Parsing of untrusted input (CSRs) still goes through
 * @peculiar/x509; this reader is used for our own, already trusted files
 * (the CA certificate, issued certificates) and for small structural reads.
 *
 * Pure: no I/O.
 */

export type Bytes = Uint8Array;

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  T61String: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  BMPString: 0x1e,
  UniversalString: 0x1c,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function lengthBytes(len: number): Bytes {
  if (len < 0x80) return Uint8Array.of(len);
  const out: number[] = [];
  let n = len;
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Uint8Array.of(0x80 | out.length, ...out);
}

export function concat(parts: readonly Bytes[]): Bytes {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One TLV with the given tag byte around the concatenated contents. */
export function tlv(tag: number, ...contents: Bytes[]): Bytes {
  const body = contents.length === 1 ? contents[0]! : concat(contents);
  const len = lengthBytes(body.length);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

export const seq = (...items: Bytes[]): Bytes => tlv(TAG.SEQUENCE, ...items);
export const set = (...items: Bytes[]): Bytes => tlv(TAG.SET, ...items);
export const octets = (b: Bytes): Bytes => tlv(TAG.OCTET_STRING, b);
export const nul = (): Bytes => Uint8Array.of(TAG.NULL, 0);
export const bool = (v: boolean): Bytes => Uint8Array.of(TAG.BOOLEAN, 1, v ? 0xff : 0);
/** Context-specific constructed tag [n] (EXPLICIT, or IMPLICIT of a constructed type). */
export const ctx = (n: number, ...items: Bytes[]): Bytes => tlv(0xa0 | n, ...items);
/** Context-specific primitive tag [n] (IMPLICIT of a primitive type). */
export const ctxPrim = (n: number, content: Bytes): Bytes => tlv(0x80 | n, content);

const enc = new TextEncoder();
export const utf8 = (s: string): Bytes => enc.encode(s);

/** BIT STRING with zero unused bits around whole bytes (keys, signatures). */
export const bitString = (b: Bytes): Bytes => tlv(TAG.BIT_STRING, Uint8Array.of(0), b);

/** INTEGER from a non-negative bigint or from unsigned big-endian bytes. */
export function integer(v: bigint | number | Bytes): Bytes {
  let bytes: Bytes;
  if (typeof v === "number" || typeof v === "bigint") {
    let n = BigInt(v);
    if (n < 0n) throw new RangeError("negative INTEGER not supported");
    const out: number[] = [];
    do {
      out.unshift(Number(n & 0xffn));
      n >>= 8n;
    } while (n > 0n);
    bytes = Uint8Array.from(out);
  } else {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    bytes = v.subarray(i);
  }
  if (bytes.length === 0) bytes = Uint8Array.of(0);
  if (bytes[0]! & 0x80) bytes = concat([Uint8Array.of(0), bytes]);
  return tlv(TAG.INTEGER, bytes);
}

const oidCache = new Map<string, Bytes>();
/**
 * Is this a dotted OID that has a DER encoding (X.660): at least two arcs of
 * decimal digits without leading zeros, the first 0, 1 or 2, the second below
 * 40 when the first is 0 or 1 ("7.2" would silently encode as 2.202).
 */
export function isValidOid(dotted: string): boolean {
  if (!/^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/.test(dotted) || dotted.length > 200) return false;
  const [a, b] = dotted.split(".");
  const first = Number(a);
  if (first > 2) return false;
  return first === 2 || BigInt(b!) < 40n;
}

export function oid(dotted: string): Bytes {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  if (!isValidOid(dotted)) throw new RangeError(`bad OID ${dotted}`);
  const parts = dotted.split(".").map((p) => BigInt(p));
  const out: number[] = [];
  const first = parts[0]! * 40n + parts[1]!;
  const push = (n: bigint) => {
    const tmp: number[] = [Number(n & 0x7fn)];
    n >>= 7n;
    while (n > 0n) {
      tmp.unshift(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(...tmp);
  };
  push(first);
  for (const p of parts.slice(2)) push(p);
  const res = tlv(TAG.OID, Uint8Array.from(out));
  oidCache.set(dotted, res);
  return res;
}

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, Z. */
export function time(d: Date): Bytes {
  const y = d.getUTCFullYear();
  const rest =
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    "Z";
  if (y >= 1950 && y < 2050) return tlv(TAG.UTCTime, utf8(pad2(y % 100) + rest));
  return tlv(TAG.GeneralizedTime, utf8(String(y).padStart(4, "0") + rest));
}

// ---------------------------------------------------------------- reading

export interface Node {
  tag: number;
  /** offset of the tag byte */
  start: number;
  /** offset of the first content byte */
  contentStart: number;
  /** offset just past the content */
  end: number;
}

export class DerError extends Error {}

export function read(buf: Bytes, offset = 0, limit = buf.length): Node {
  if (offset + 2 > limit) throw new DerError("truncated DER");
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags not supported");
  let len = buf[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError("unsupported DER length");
    if (p + n > limit) throw new DerError("truncated DER");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > limit) throw new DerError("truncated DER");
  return { tag, start: offset, contentStart: p, end: p + len };
}

export function children(buf: Bytes, node: Node): Node[] {
  const out: Node[] = [];
  let p = node.contentStart;
  while (p < node.end) {
    const c = read(buf, p, node.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

/**
 * The three parts of a signed X.509 structure (certificate, CRL, PKCS#10
 * request): SEQUENCE { tbs SEQUENCE, algorithm, signature BIT STRING }
 * spanning all of buf, and the children of tbs. `what` names it in errors.
 */
export function signedParts(buf: Bytes, what: string): { tbs: Node; alg: Node; sig: Node; fields: Node[] } {
  const top = read(buf);
  if (top.tag !== TAG.SEQUENCE || top.end !== buf.length) throw new DerError(`not a DER ${what}`);
  const [tbs, alg, sig] = children(buf, top);
  if (!tbs || !alg || !sig || tbs.tag !== TAG.SEQUENCE || sig.tag !== TAG.BIT_STRING) throw new DerError(`not a ${what}`);
  return { tbs, alg, sig, fields: children(buf, tbs) };
}

export const raw = (buf: Bytes, n: Node): Bytes => buf.subarray(n.start, n.end);
export const content = (buf: Bytes, n: Node): Bytes => buf.subarray(n.contentStart, n.end);

export function readOid(buf: Bytes, n: Node): string {
  const c = content(buf, n);
  const parts: bigint[] = [];
  let v = 0n;
  let fresh = true;
  for (const b of c) {
    // X.690 8.19.2: an arc never starts with 0x80 (non-minimal), and the last octet ends an arc
    if (fresh && b === 0x80) throw new DerError("bad OID encoding");
    fresh = !(b & 0x80);
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0n;
    }
  }
  if (!fresh) throw new DerError("truncated OID");
  if (parts.length === 0) throw new DerError("empty OID");
  const first = parts[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...parts.slice(1)].map(String).join(".");
}

export function readTime(buf: Bytes, n: Node): Date {
  const s = new TextDecoder().decode(content(buf, n));
  let m: RegExpMatchArray | null;
  if (n.tag === TAG.UTCTime && (m = s.match(/^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/))) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  if (n.tag === TAG.GeneralizedTime && (m = s.match(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/))) {
    return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  throw new DerError(`unsupported time value ${JSON.stringify(s)}`);
}

export function toHex(b: Bytes): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex").toUpperCase();
}
