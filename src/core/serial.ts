/**
 * Certificate serial numbers (RFC 5280 4.1.2.2, CA/B Forum BR 7.1).
 *
 * 17 octets: the first is 0x40-0x7F (positive, never a leading zero octet, so
 * the DER INTEGER is always exactly 17 octets and OpenSSL spells it with 34
 * hex digits, the same as our certs/<SERIAL>.pem file name), then 16 random
 * octets: 134 random bits, above the 127 the contract asks for, and within
 * the 20-octet limit.
 */
export const SERIAL_BYTES = 17;

export type RandomSource = (n: number) => Uint8Array;

export function newSerial(random: RandomSource, taken: { has(serial: string): boolean }): Uint8Array {
  for (let attempt = 0; attempt < 8; attempt++) {
    const b = random(SERIAL_BYTES);
    b[0] = (b[0]! & 0x3f) | 0x40;
    if (!taken.has(serialHex(b))) return b;
  }
  throw new Error("could not find a free serial number: the random source is broken");
}

export const serialHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex").toUpperCase();

/**
 * Normalise a serial typed by a user: optional 0x, colons or spaces, any case;
 * returns OpenSSL's spelling (upper case, even length, no leading 00 pair
 * unless needed). Returns null when it is not hex.
 */
export function normaliseSerial(text: string): string | null {
  let s = text.trim().replace(/^0x/i, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]+$/.test(s)) return null;
  s = s.replace(/^0+/, "");
  if (s === "") s = "0";
  if (s.length % 2) s = "0" + s;
  return s;
}
