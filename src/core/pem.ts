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
