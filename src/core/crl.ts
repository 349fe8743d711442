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
import { PkiError } from "./errors.js";
import { pemLength, toPemInPlace } from "./pem.js";
import { REASONS, type IndexEntry, formatGeneralizedTime, formatTime, parseRevocationField } from "./index-format.js";

export interface RevokedRef {
  /** upper-case hex, even length */
  serial: string;
  /** index-form time: YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ */
  time: string;
  /** reasonCode, absent for unspecified */
  reasonCode?: number;
  /** holdInstructionCode entry extension (dotted OID) */
  holdInstruction?: string;
  /** invalidityDate entry extension, GeneralizedTime text YYYYMMDDHHMMSSZ */
  invalidityDate?: string;
}

const CRL_LABEL = "X509 CRL";
const OID_HOLD_INSTRUCTION = "2.5.29.23";
const OID_INVALIDITY_DATE = "2.5.29.24";

/**
 * crlEntryExtensions of one entry (RFC 5280 5.3), in the order `openssl ca
 * -gencrl` writes them: reasonCode, holdInstructionCode, invalidityDate.
 * Empty when there is nothing to say (unspecified, no extras).
 */
export function entryExtensions(reasonCode: number | undefined, holdInstruction?: string, invalidityDate?: string): Uint8Array {
  const exts: Uint8Array[] = [];
  if (reasonCode !== undefined) exts.push(der.seq(der.oid(OID.reasonCode), der.octets(der.tlv(0x0a, Uint8Array.of(reasonCode)))));
  if (holdInstruction) exts.push(der.seq(der.oid(OID_HOLD_INSTRUCTION), der.octets(der.oid(holdInstruction))));
  if (invalidityDate) exts.push(der.seq(der.oid(OID_INVALIDITY_DATE), der.octets(der.tlv(0x18, der.utf8(invalidityDate)))));
  return exts.length ? der.seq(...exts) : new Uint8Array(0);
}

export function revokedFromEntries(entries: Iterable<IndexEntry>): RevokedRef[] {
  const out: RevokedRef[] = [];
  for (const e of entries) {
    if (e.status !== "R" || !e.revokedAt) continue;
    const r: RevokedRef = { serial: e.serial, time: formatTime(e.revokedAt), reasonCode: e.reason ? REASONS[e.reason].code : undefined };
    if (e.holdInstruction) r.holdInstruction = e.holdInstruction;
    if (e.invalidityDate) r.invalidityDate = formatGeneralizedTime(e.invalidityDate);
    out.push(r);
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
      // RevokedRef's form: upper case, even length (an index may spell "1" or "0a")
      const hex = text.slice(t3 + 1, t4).toUpperCase();
      const ref: RevokedRef = { serial: hex.length % 2 ? "0" + hex : hex, time };
      if (comma >= 0) {
        const parsed = parseRevocationField(rev);
        if (typeof parsed !== "string" && (parsed.holdInstruction || parsed.invalidityTime)) {
          reasonCode = REASONS[parsed.reason!].code;
          if (parsed.holdInstruction) ref.holdInstruction = parsed.holdInstruction;
          if (parsed.invalidityTime) ref.invalidityDate = parsed.invalidityTime;
        } else {
          const r = rev.slice(comma + 1).toLowerCase();
          for (const v of Object.values(REASONS)) if (v.openssl.toLowerCase() === r) reasonCode = v.code;
          if (reasonCode === 0) reasonCode = undefined;
        }
      }
      ref.reasonCode = reasonCode;
      out.push(ref);
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

const REASON_EXT_HEAD = REASON_EXT(0).subarray(0, 13);

const hasExtras = (r: RevokedRef): boolean => r.holdInstruction !== undefined || r.invalidityDate !== undefined;

function entryContentLen(r: RevokedRef): number {
  const sl = serialContentLen(r.serial);
  const ext = hasExtras(r) ? entryExtensions(r.reasonCode, r.holdInstruction, r.invalidityDate).length : r.reasonCode === undefined ? 0 : 14;
  return 1 + lenOfLen(sl) + sl + 2 + r.time.length + ext;
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
    if (hasExtras(r)) {
      const x = entryExtensions(r.reasonCode, r.holdInstruction, r.invalidityDate);
      buf.set(x, p);
      p += x.length;
    } else if (r.reasonCode !== undefined) {
      buf.set(REASON_EXT(r.reasonCode), p);
      p += 14;
    }
  }
  if (p !== buf.length) throw new Error("CRL encoder length mismatch");
  return buf;
}

// ---------------------------------------------------------------- straight from index.txt bytes

const TAB = 9;
const NL = 10;

/** OpenSSL's reason spellings, lower case, with their codes (unspecified: no reasonCode). */
const REASON_BYTES: Array<[Uint8Array, number | undefined]> = [
  ...Object.values(REASONS).map((v): [Uint8Array, number | undefined] => [asciiBytes(v.openssl.toLowerCase()), v.code === 0 ? undefined : v.code]),
  [asciiBytes("removefromcrl"), 8],
];

function asciiBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** reasonCode of the bytes idx[from, to) (case-insensitive), undefined for none/unspecified/unknown. */
function reasonAt(idx: Uint8Array, from: number, to: number): number | undefined {
  const len = to - from;
  for (const [name, code] of REASON_BYTES) {
    if (name.length !== len) continue;
    let i = 0;
    while (i < len && (idx[from + i]! | 0x20) === name[i]) i++;
    if (i === len) return code;
  }
  return undefined;
}

const isHex = (c: number): boolean => (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);

class IndexError extends Error {}

/** Position of the next tab or newline from `from`, or idx.length. (A plain loop: the fields are short, a native call per field costs more.) */
function tabAt(idx: Uint8Array, from: number): number {
  const n = idx.length;
  for (; from < n; from++) {
    const c = idx[from]!;
    if (c === TAB || c === NL) break;
  }
  return from;
}

/**
 * Position of the next newline from `from`, or idx.length. Native (memchr):
 * the rest of a line (file name, subject) is long enough for it, ~4x a loop.
 */
function eolAt(idx: Buffer, from: number): number {
  const e = idx.indexOf(NL, from);
  return e < 0 ? idx.length : e;
}

/**
 * The fields of one revoked line that the CRL needs, found by offsets only.
 * `rev` is the start of the third field; returns -1 when the line is not
 * well-formed enough to be encoded.
 */
interface Fields {
  /** time: [timeStart, timeEnd) */
  timeStart: number;
  timeEnd: number;
  /** serial hex digits without leading zero pairs: [serStart, serEnd) */
  serStart: number;
  serEnd: number;
  /** INTEGER content octets */
  serLen: number;
  reason: number | undefined;
  /** crlEntryExtensions of a compound revocation field (hold instruction, compromise time), else undefined */
  extras: Uint8Array | undefined;
}

const COMPOUND = [asciiBytes("holdinstruction"), asciiBytes("keytime"), asciiBytes("cakeytime")];

/**
 * Read the revoked line at `lineStart` into `f`; returns the position of its
 * newline (or idx.length). Each byte of the line is looked at once: the four
 * tabs, then the newline from the fifth field on.
 */
function fieldsOf(idx: Buffer, lineStart: number, f: Fields): number {
  const bad = (why: string) => new IndexError(`index.txt: ${why} in the revoked line at byte ${lineStart}; run \`pki doctor\``);
  const few = () => bad("fewer than 5 tab-separated fields");
  // R \t expiry \t revoked[,reason[,...]] \t serial \t file \t subject
  const t1 = tabAt(idx, lineStart);
  if (t1 !== lineStart + 1 || idx[t1] !== TAB) throw few();
  const t2 = tabAt(idx, t1 + 1);
  if (idx[t2] !== TAB) throw few();
  const t3 = tabAt(idx, t2 + 1);
  if (idx[t3] !== TAB) throw few();
  const t4 = tabAt(idx, t3 + 1);
  if (idx[t4] !== TAB) throw few();
  let comma = t2 + 1;
  while (comma < t3 && idx[comma] !== 44) comma++;
  const tl = comma - (t2 + 1);
  if ((tl !== 13 && tl !== 15) || idx[comma - 1] !== 90 /* Z */) throw bad("bad revocation time");
  f.timeStart = t2 + 1;
  f.timeEnd = comma;
  f.reason = undefined;
  f.extras = undefined;
  if (comma < t3) {
    let end = comma + 1;
    while (end < t3 && idx[end] !== 44) end++;
    const len = end - (comma + 1);
    if (end < t3 && COMPOUND.some((w) => w.length === len && w.every((c, i) => (idx[comma + 1 + i]! | 0x20) === c))) {
      // `openssl ca -crl_hold` / `-crl_compromise`: rare, parsed as text
      const parsed = parseRevocationField(Buffer.from(idx.buffer, idx.byteOffset + t2 + 1, t3 - t2 - 1).toString("latin1"));
      if (typeof parsed === "string") throw bad(parsed);
      f.reason = REASONS[parsed.reason!].code;
      f.extras = entryExtensions(f.reason, parsed.holdInstruction, parsed.invalidityTime);
    } else {
      f.reason = reasonAt(idx, comma + 1, end);
    }
  }
  let s = t3 + 1;
  const e = t4;
  if (s === e) throw bad("empty serial");
  for (let i = s; i < e; i++) if (!isHex(idx[i]!)) throw bad("serial is not hex");
  // drop leading zero digits, keep at least one
  while (s < e - 1 && idx[s] === 48) s++;
  const digits = e - s;
  if (digits > 0xffff) throw bad("serial too long");
  const octets = (digits + 1) >> 1;
  // odd digit count: the first octet is one nibble, never >= 8
  const high = digits % 2 === 0 && hexVal(idx[s]!) >= 8;
  f.serStart = s;
  f.serEnd = e;
  f.serLen = octets + (high ? 1 : 0);
  return eolAt(idx, t4 + 1);
}

/**
 * What pass 2 needs of each revoked line, in three 32-bit words (12 bytes
 * per entry, no objects): where the time starts, where the serial's
 * significant digits start, and packed: digit count, time length, reason.
 */
class Entries {
  a = new Uint32Array(3 * 1024);
  n = 0;
  /** crlEntryExtensions of the few compound entries, by entry number */
  extras = new Map<number, Uint8Array>();
  push(f: Fields): void {
    if (f.extras) this.extras.set(this.n, f.extras);
    if (3 * this.n === this.a.length) {
      const b = new Uint32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    const i = 3 * this.n++;
    this.a[i] = f.timeStart;
    this.a[i + 1] = f.serStart;
    // digits (< 2^16) | time length 15 (bit 16) | reason + 1 (bits 20-23; 0 = none)
    this.a[i + 2] = (f.serEnd - f.serStart) | (f.timeEnd - f.timeStart === 15 ? 1 << 16 : 0) | ((f.reason === undefined ? 0 : f.reason + 1) << 20);
  }
}

/** What every CRL carries besides its entries. */
export interface CrlHeader {
  signatureAlgorithm: Uint8Array;
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
  authorityKeyId: Uint8Array;
}

export interface CrlFromIndexParams extends CrlHeader {
  /** index.txt bytes (OpenSSL ca format); only the revoked ("R") lines are read */
  index: Uint8Array;
  /** signs the TBSCertList bytes */
  sign: (tbs: Uint8Array) => Uint8Array;
  /** upper bound on the signature length, for the preallocated buffer (default 1024: RSA up to 8192 bits) */
  maxSignature?: number;
}

/**
 * Build and sign a CRL straight from index.txt bytes, in one buffer.
 *
 * Pass 1 finds the revoked lines, keeps 12 bytes of offsets per entry and
 * sums their encoded sizes; pass 2 writes each entry's DER at its place in
 * a buffer that already has room for the outer SEQUENCE header in front of
 * the TBSCertList and for the signature after it. The TBS is signed where it
 * lies and the final CRL is a view of the same buffer: memory is the index
 * plus the CRL, nothing per entry (a 1,000,000-entry CRL is ~45 MB of DER).
 */
export function signCrlFromIndex(p: CrlFromIndexParams): { der: Uint8Array; count: number } {
  const prepared = prepareCrlFromIndex(p);
  return { der: prepared.finish(p.sign(prepared.tbs)), count: prepared.count };
}

export interface PreparedCrl {
  /** the TBSCertList bytes to sign */
  tbs: Uint8Array;
  count: number;
  /** place the signature after the TBS and return the whole CRL (a view of the same buffer) */
  finish(signature: Uint8Array): Uint8Array;
  /**
   * finish, then the CRL's PEM ("X509 CRL") written over its DER in the same
   * buffer (core/pem.ts toPemInPlace): the DER is gone afterwards. One
   * buffer of the PEM's size for both, not a second one (a 1,000,000-entry
   * CRL: ~60 MB, not ~45 + ~60).
   */
  finishPem(signature: Uint8Array): Uint8Array;
}

/**
 * Everything of signCrlFromIndex but the signature: the caller may sign later
 * (e.g. once the CA key has been decrypted on another thread).
 */
export function prepareCrlFromIndex(p: Omit<CrlFromIndexParams, "sign">): PreparedCrl {
  const e = indexEntries(p.index);
  return layoutCrl(p, e.count, e.len, e.write);
}

/**
 * The CRL entries of an index's revoked lines: pass 1 here (find the lines,
 * keep 12 bytes of offsets per entry, sum the sizes); pass 2 is `write`,
 * which encodes them at `o` of a buffer with `len` bytes of room.
 */
function indexEntries(bytes: Uint8Array): { count: number; len: number; write: (buf: Uint8Array, o: number) => number } {
  const idx = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = idx.length;
  const entries = new Entries();
  const f: Fields = { timeStart: 0, timeEnd: 0, serStart: 0, serEnd: 0, serLen: 0, reason: undefined, extras: undefined };
  let entriesLen = 0;
  let pos = 0;
  try {
    while (pos < n) {
      let eol: number;
      if (idx[pos] === 82 /* R */) {
        eol = fieldsOf(idx, pos, f);
        const cl = 1 + lenOfLen(f.serLen) + f.serLen + 2 + (f.timeEnd - f.timeStart) + (f.extras ? f.extras.length : f.reason === undefined ? 0 : 14);
        entriesLen += 1 + lenOfLen(cl) + cl;
        entries.push(f);
      } else {
        eol = eolAt(idx, pos);
      }
      pos = eol + 1;
    }
  } catch (e) {
    if (e instanceof IndexError) throw new PkiError("CA_INVALID", e.message);
    throw e;
  }

  const write = (buf: Uint8Array, o: number): number => {
    const a = entries.a;
    for (let k = 0; k < entries.n; k++) {
      const timeStart = a[3 * k]!;
      let s = a[3 * k + 1]!;
      const packed = a[3 * k + 2]!;
      const digits = packed & 0xffff;
      const tl = packed & (1 << 16) ? 15 : 13;
      const reason = (packed >>> 20) - 1;
      const serLen = ((digits + 1) >> 1) + (digits % 2 === 0 && hexVal(idx[s]!) >= 8 ? 1 : 0);
      const extras = entries.extras.size ? entries.extras.get(k) : undefined;
      const cl = 1 + lenOfLen(serLen) + serLen + 2 + tl + (extras ? extras.length : reason < 0 ? 0 : 14);
      buf[o++] = 0x30;
      o = writeLen(buf, o, cl);
      // userCertificate INTEGER
      buf[o++] = 0x02;
      o = writeLen(buf, o, serLen);
      const serEnd = s + digits;
      if (digits % 2) {
        buf[o++] = hexVal(idx[s]!);
        s++;
      } else if (hexVal(idx[s]!) >= 8) {
        buf[o++] = 0;
      }
      for (; s < serEnd; s += 2) buf[o++] = (hexVal(idx[s]!) << 4) | hexVal(idx[s + 1]!);
      // revocationDate: the index time is already the UTCTime / GeneralizedTime content
      buf[o++] = tl === 13 ? 0x17 : 0x18;
      buf[o++] = tl;
      for (let i = timeStart; i < timeStart + tl; i++) buf[o++] = idx[i]!;
      if (extras) {
        buf.set(extras, o);
        o += extras.length;
      } else if (reason >= 0) {
        for (let i = 0; i < 13; i++) buf[o++] = REASON_EXT_HEAD[i]!;
        buf[o++] = reason;
      }
    }
    return o;
  };
  return { count: entries.n, len: entriesLen, write };
}

/**
 * A TBSCertList around entries already encoded (each a whole CRL entry,
 * in order): a revocation's CRL made from the current one's entries
 * (spliceRevoked). The same layout, buffer and finishing as from the index.
 */
export function prepareCrlFromEntries(p: Omit<CrlFromIndexParams, "sign" | "index">, pieces: readonly Uint8Array[], count: number): PreparedCrl {
  let len = 0;
  for (const x of pieces) len += x.length;
  return layoutCrl(p, count, len, (buf, o) => {
    for (const x of pieces) {
      buf.set(x, o);
      o += x.length;
    }
    return o;
  });
}

/**
 * A revocation's CRL entries made from the current CRL's, not from the
 * whole index (issue 17: ~100 ms of a revocation in a 100,000-line index).
 * `prevRevoked` is the revokedCertificates of a CRL built from the first
 * `builtUpTo` bytes of `index` (crl-source.json says so, and the caller
 * checked the CRL's signature); `changes` are lines of `index` that are
 * not revoked, by offset, with the revoked line each becomes. The CRL of
 * the edited index lists the same entries with theirs inserted, in index
 * order: the pieces of that list, for prepareCrlFromEntries. Null when the
 * premise cannot be seen to hold (a revoked line after builtUpTo, a change
 * that is not a line start or is revoked already, entry and line counts
 * that differ): then the caller builds from the index.
 */
export function spliceRevoked(prevRevoked: Uint8Array, index: Uint8Array, builtUpTo: number, changes: readonly { start: number; line: string }[]): { pieces: Uint8Array[]; count: number } | null {
  const at = [...changes].sort((x, y) => x.start - y.start);
  if (at.some((x, i) => i > 0 && x.start === at[i - 1]!.start)) return null;
  const b = Buffer.from(index.buffer, index.byteOffset, index.byteLength);
  // how many revoked lines come before each change, and in all
  const before: number[] = [];
  let revoked = 0;
  let c = 0;
  for (let pos = 0; pos < b.length; ) {
    for (; c < at.length && at[c]!.start === pos; c++) {
      if (b[pos] === 82 /* R */) return null;
      before.push(revoked);
    }
    if (c < at.length && at[c]!.start < pos) return null;
    if (b[pos] === 82) {
      if (pos >= builtUpTo) return null;
      revoked++;
    }
    const eol = b.indexOf(10, pos);
    pos = eol < 0 ? b.length : eol + 1;
  }
  if (c !== at.length) return null;
  let p = 0;
  let end = 0;
  try {
    if (prevRevoked.length) {
      const top = der.read(prevRevoked);
      p = top.contentStart;
      end = top.end;
    }
    const pieces: Uint8Array[] = [];
    let from = p;
    let k = 0;
    for (let i = 0; i < at.length; i++) {
      for (; k < before[i]!; k++) {
        if (p >= end) return null;
        p = der.read(prevRevoked, p, end).end;
      }
      if (p > from) pieces.push(prevRevoked.subarray(from, p));
      from = p;
      // the line's entry, encoded by the same code as a CRL built from the index
      const e = indexEntries(Buffer.from(at[i]!.line + "\n", "utf8"));
      if (e.count !== 1) return null;
      const one = new Uint8Array(e.len);
      e.write(one, 0);
      pieces.push(one);
    }
    for (; p < end; k++) p = der.read(prevRevoked, p, end).end;
    if (k !== revoked) return null;
    if (end > from) pieces.push(prevRevoked.subarray(from, end));
    return { pieces, count: revoked + at.length };
  } catch (e) {
    if (e instanceof der.DerError) return null;
    throw e;
  }
}

/**
 * The CRL's buffer: room for the PEM of the longest CRL this can be, the
 * TBSCertList written near its end with `write` putting the `count` entries
 * (`entriesLen` bytes) in place, then the signature and the PEM over it.
 */
function layoutCrl(p: Omit<CrlFromIndexParams, "sign" | "index">, count: number, entriesLen: number, write: (buf: Uint8Array, o: number) => number): PreparedCrl {
  const version = der.integer(1);
  const times = der.concat([der.time(p.thisUpdate), der.time(p.nextUpdate)]);
  const exts = crlExtensions(p.authorityKeyId, p.crlNumber);
  const revHdr = count === 0 ? 0 : 1 + lenOfLen(entriesLen);
  const tbsContent = version.length + p.signatureAlgorithm.length + p.issuer.length + times.length + revHdr + (count ? entriesLen : 0) + exts.length;
  const tbsLen = 1 + lenOfLen(tbsContent) + tbsContent;
  const maxSig = p.maxSignature ?? 1024;
  const HEAD = 6; // outer SEQUENCE tag + up to 5 length octets
  const tail = p.signatureAlgorithm.length + 6 + 1 + maxSig;
  // room for the PEM of the longest CRL this can be, the DER at its end
  // (finishPem writes the PEM over it from the front: toPemInPlace)
  const derMax = HEAD + tbsLen + tail;
  const buf = new Uint8Array(pemLength(CRL_LABEL, derMax) + 8);
  const base = buf.length - derMax;

  let o = base + HEAD;
  const tbsStart = o;
  buf[o++] = 0x30;
  o = writeLen(buf, o, tbsContent);
  for (const part of [version, p.signatureAlgorithm, p.issuer, times]) {
    buf.set(part, o);
    o += part.length;
  }
  if (count) {
    buf[o++] = 0x30;
    o = writeLen(buf, o, entriesLen);
    o = write(buf, o);
  }
  buf.set(exts, o);
  o += exts.length;
  if (o !== tbsStart + tbsLen) throw new Error("CRL encoder length mismatch");

  const tbsEnd = o;
  let pem = false;
  const finish = (sig: Uint8Array): Uint8Array => {
    if (pem) throw new Error("the CRL buffer holds its PEM now");
    if (sig.length > maxSig) throw new Error("signature longer than the space reserved for it");
    let q = tbsEnd;
    buf.set(p.signatureAlgorithm, q);
    q += p.signatureAlgorithm.length;
    buf[q++] = 0x03;
    q = writeLen(buf, q, sig.length + 1);
    buf[q++] = 0;
    buf.set(sig, q);
    q += sig.length;
    const content = q - tbsStart;
    const start = tbsStart - (1 + lenOfLen(content));
    buf[start] = 0x30;
    writeLen(buf, start + 1, content);
    return buf.subarray(start, q);
  };
  return {
    tbs: buf.subarray(tbsStart, tbsEnd),
    count,
    finish,
    finishPem(sig: Uint8Array): Uint8Array {
      // the DER starts at base or later and pemLength(n) - n <= pemLength(derMax) - derMax + 4
      // for n <= derMax: the PEM fits in front (toPemInPlace checks it)
      const d = finish(sig);
      pem = true;
      return toPemInPlace(CRL_LABEL, buf, d.byteOffset - buf.byteOffset, d.byteOffset - buf.byteOffset + d.length);
    },
  };
}


function crlExtensions(authorityKeyId: Uint8Array, crlNumber: bigint): Uint8Array {
  return der.ctx(
    0,
    der.seq(
      der.seq(der.oid(OID.authorityKeyIdentifier), der.octets(der.seq(der.ctxPrim(0, authorityKeyId)))),
      der.seq(der.oid(OID.cRLNumber), der.octets(der.integer(crlNumber))),
    ),
  );
}

export interface CrlParams extends CrlHeader {
  revoked: readonly RevokedRef[];
}

/**
 * The plain, object-per-entry TBSCertList builder: the reference model the
 * tests hold byte-equal to prepareCrlFromIndex, which is what pki runs.
 */
export function tbsCertList(p: CrlParams): Uint8Array {
  const exts = crlExtensions(p.authorityKeyId, p.crlNumber);
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
  /** upper-case hex key id of the authorityKeyIdentifier extension */
  authorityKeyId?: string;
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
  const { tbs: tbsN, alg: algN, sig: sigN, fields: t } = der.signedParts(buf, "CRL");
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
  let authorityKeyId: string | undefined;
  const extWrap = t[j];
  if (extWrap?.tag === 0xa0) {
    const inner = der.children(buf, extWrap)[0];
    for (const ext of inner ? der.children(buf, inner) : []) {
      const parts = der.children(buf, ext);
      if (!parts[0]) continue;
      const oid = der.readOid(buf, parts[0]);
      const value = der.content(buf, parts[parts.length - 1]!);
      if (oid === OID.cRLNumber) {
        const c = der.content(value, der.read(value));
        crlNumber = c.length ? BigInt("0x" + der.toHex(c)) : 0n;
      } else if (oid === OID.authorityKeyIdentifier) {
        const k = der.children(value, der.read(value)).find((n) => n.tag === 0x80);
        if (k) authorityKeyId = der.toHex(der.content(value, k));
      }
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
    authorityKeyId,
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
