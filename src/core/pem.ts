/** PEM (RFC 7468) encoding and decoding. Pure. */
import { PkiError } from "./errors.js";

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return out + `-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/** All PEM blocks in a text, in order. Text outside blocks is ignored (OpenSSL does the same). */
export function parsePemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== m[3]) throw new PkiError("BAD_INPUT", `PEM block "${m[1]}" ends with "${m[3]}": the file is damaged`);
    const body = m[2]!.replace(/^[A-Za-z-]+:.*$/gm, "").replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new PkiError("BAD_INPUT", `PEM block "${m[1]}" holds characters that are not base64: the file is damaged`);
    out.push({ label: m[1]!, der: new Uint8Array(Buffer.from(body, "base64")) });
  }
  return out;
}

export const looksLikePem = (data: Uint8Array): boolean => {
  const head = Buffer.from(data.subarray(0, Math.min(data.length, 4096))).toString("latin1");
  return head.includes("-----BEGIN ");
};

const B64 = Uint8Array.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", (c) => c.charCodeAt(0));

/** The length of toPem(label, der) for a DER of n bytes. */
export function pemLength(label: string, n: number): number {
  const b64Len = Math.ceil(n / 3) * 4;
  return `-----BEGIN ${label}-----\n`.length + b64Len + Math.ceil(b64Len / 64) + `-----END ${label}-----\n`.length;
}

/**
 * toPem as bytes, for large objects (a 1,000,000-entry CRL): base64 lines of
 * 64 written straight into one buffer, no intermediate strings.
 */
export function toPemBytes(label: string, der: Uint8Array): Uint8Array {
  const out = new Uint8Array(pemLength(label, der.length));
  writePem(label, out, der, 0, der.length);
  return out;
}

/**
 * toPemBytes in the buffer that holds the DER, buf[derStart, derEnd): the PEM
 * is written from buf[0] over it, with no second buffer (a 1,000,000-entry
 * CRL is ~45 MB of DER and ~60 MB of PEM). Needs derStart >= the PEM's
 * length - the DER's length: then the writer never reaches a DER byte it has
 * not read yet (it advances 4/3 as fast as the reader, and both end by
 * the end of the DER). The DER is gone afterwards. Returns buf[0, PEM length).
 */
export function toPemInPlace(label: string, buf: Uint8Array, derStart: number, derEnd: number): Uint8Array {
  const len = pemLength(label, derEnd - derStart);
  if (derStart < 0 || derEnd > buf.length || derStart < len - (derEnd - derStart)) throw new Error("toPemInPlace: no room in front of the DER");
  writePem(label, buf, buf, derStart, derEnd);
  return buf.subarray(0, len);
}

/** Write the PEM of src[from, to) at out[0]; out may be src (toPemInPlace: each group of 3 is read before its 4 characters are written). */
function writePem(label: string, out: Uint8Array, src: Uint8Array, from: number, to: number): void {
  const head = `-----BEGIN ${label}-----\n`;
  const foot = `-----END ${label}-----\n`;
  let o = 0;
  for (let i = 0; i < head.length; i++) out[o++] = head.charCodeAt(i);
  const n = to - from;
  const full = from + (n - (n % 3));
  let col = 0;
  for (let i = from; i < full; i += 3) {
    const v = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
    out[o] = B64[v >> 18]!;
    out[o + 1] = B64[(v >> 12) & 63]!;
    out[o + 2] = B64[(v >> 6) & 63]!;
    out[o + 3] = B64[v & 63]!;
    o += 4;
    col += 4;
    if (col === 64) {
      out[o++] = 10;
      col = 0;
    }
  }
  if (to > full) {
    const two = to - full === 2;
    const v = (src[full]! << 16) | ((two ? src[full + 1]! : 0) << 8);
    out[o++] = B64[v >> 18]!;
    out[o++] = B64[(v >> 12) & 63]!;
    out[o++] = two ? B64[(v >> 6) & 63]! : 61;
    out[o++] = 61;
    col += 4;
  }
  if (col > 0) out[o++] = 10;
  for (let i = 0; i < foot.length; i++) out[o++] = foot.charCodeAt(i);
  if (o !== pemLength(label, n)) throw new Error("PEM encoder length mismatch");
}

/** Where the base64 of the first PEM block labelled `label` lies in the bytes: [from, end), or null. */
function blockOf(bytes: Uint8Array, label: string): { b: Buffer; from: number; end: number } | null {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const begin = `-----BEGIN ${label}-----`;
  const start = b.indexOf(begin, 0, "latin1");
  if (start < 0) return null;
  const from = start + begin.length;
  const end = b.indexOf(`-----END ${label}-----`, from, "latin1");
  return end < 0 ? null : { b, from, end };
}

/**
 * The DER of the first PEM block labelled `label`, decoded straight from the
 * bytes (a 1,000,000-entry CRL is ~50 MB of PEM: parsePemBlocks' regular
 * expressions over it cost a second and more). Null when there is no such
 * block or it is anything but plain base64 lines (headers, stray
 * characters): parsePemBlocks then reads it, and says what is wrong.
 */
export function pemBlockDer(bytes: Uint8Array, label: string): Uint8Array | null {
  const block = blockOf(bytes, label);
  if (!block) return null;
  const { b, from, end } = block;
  const text = b.toString("latin1", from, end);
  // base64 characters and line breaks only, at most two "=" and only at the
  // end: one regular expression over the string the decoder reads anyway
  // (native code; a loop over the bytes of a 6 MB CRL ran in the
  // interpreter first and cost ~100 ms of CPU in a fresh process)
  if (!PLAIN_BASE64.test(text)) return null;
  const out = Buffer.from(text, "base64");
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

const PLAIN_BASE64 = /^[A-Za-z0-9+/\r\n \t]*(?:=[\r\n \t]*){0,2}$/;

const WS = /[\r\n \t]+/g;
const B64_CHARS = /^[A-Za-z0-9+/]*(={0,2})$/;

/**
 * pemBlockDer decoding over the bytes it is given: the DER is written from
 * bytes[0] on, over the PEM it comes from (base64 is 3/4 of its text: the
 * writer stays behind the reader), a 64 KB slice at a time, so that a
 * 60 MB crl.pem costs its own buffer and nothing else: no 60 MB string, no
 * second 45 MB buffer. Returns a view of `bytes`, whose PEM is gone; null
 * when pemBlockDer would say null (the bytes may then be overwritten in
 * part: read them again for parsePemBlocks).
 */
export function pemBlockDerInPlace(bytes: Uint8Array, label: string): Uint8Array | null {
  const block = blockOf(bytes, label);
  if (!block) return null;
  const { b, from, end } = block;
  let o = 0;
  let carry = "";
  let padded = false;
  for (let p = from; p < end; ) {
    const q = Math.min(end, p + 65536);
    // the slice is copied into a string before anything is written: o <= 3/4 of what was read before p
    const t = carry + b.toString("latin1", p, q).replace(WS, "");
    p = q;
    if (padded) {
      if (t.length) return null; // data after the padding (or "=" split across slices: the slow path decides)
      continue;
    }
    const m = B64_CHARS.exec(t);
    if (!m) return null;
    if (m[1]!.length || p === end) {
      padded = m[1]!.length > 0;
      o += b.write(t, o, "base64");
      carry = "";
    } else {
      const k = t.length - (t.length % 4);
      o += b.write(t.slice(0, k), o, "base64");
      carry = t.slice(k);
    }
  }
  if (carry) o += b.write(carry, o, "base64");
  return new Uint8Array(b.buffer, b.byteOffset, o);
}
