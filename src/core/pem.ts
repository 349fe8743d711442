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

/**
 * toPem as bytes, for large objects (a 1,000,000-entry CRL): base64 lines of
 * 64 written straight into one buffer, no intermediate strings.
 */
export function toPemBytes(label: string, der: Uint8Array): Uint8Array {
  const head = `-----BEGIN ${label}-----\n`;
  const foot = `-----END ${label}-----\n`;
  const b64Len = Math.ceil(der.length / 3) * 4;
  const lines = Math.ceil(b64Len / 64);
  const out = new Uint8Array(head.length + b64Len + lines + foot.length);
  let o = 0;
  for (let i = 0; i < head.length; i++) out[o++] = head.charCodeAt(i);
  const n = der.length;
  const full = n - (n % 3);
  let col = 0;
  for (let i = 0; i < full; i += 3) {
    const v = (der[i]! << 16) | (der[i + 1]! << 8) | der[i + 2]!;
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
  if (n > full) {
    const v = (der[full]! << 16) | ((n - full === 2 ? der[full + 1]! : 0) << 8);
    out[o++] = B64[v >> 18]!;
    out[o++] = B64[(v >> 12) & 63]!;
    out[o++] = n - full === 2 ? B64[(v >> 6) & 63]! : 61;
    out[o++] = 61;
    col += 4;
  }
  if (col > 0) out[o++] = 10;
  for (let i = 0; i < foot.length; i++) out[o++] = foot.charCodeAt(i);
  if (o !== out.length) throw new Error("PEM encoder length mismatch");
  return out;
}

/**
 * The DER of the first PEM block labelled `label`, decoded straight from the
 * bytes (a 1,000,000-entry CRL is ~50 MB of PEM: parsePemBlocks' regular
 * expressions over it cost a second and more). Null when there is no such
 * block or it is anything but plain base64 lines (headers, stray
 * characters): parsePemBlocks then reads it, and says what is wrong.
 */
export function pemBlockDer(bytes: Uint8Array, label: string): Uint8Array | null {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const begin = `-----BEGIN ${label}-----`;
  const start = b.indexOf(begin, 0, "latin1");
  if (start < 0) return null;
  const from = start + begin.length;
  const end = b.indexOf(`-----END ${label}-----`, from, "latin1");
  if (end < 0) return null;
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
