/**
 * The one rule "the CRL matches the index" (#9). Pure.
 *
 * A CRL matches the index when its revokedCertificates are exactly what a
 * CRL built from the index now would carry (core/crl.ts encodeRevoked over
 * the index's revoked lines): the same serials, in the same order, with the
 * same time, reason, hold instruction and invalidity date. Everything that
 * asks the question uses this one function:
 *
 * - `pki crl --if-expiring-within` re-signs a CRL that does not match
 *   (ca/revocation.ts crlResignReason);
 * - `pki doctor` reports a CRL that does not match as out of step, and
 *   --repair re-signs it (core/diagnosis.ts);
 * - a new CRL must never drop a live revocation of the current one: the
 *   CRL's `extra` serials (listed by the CRL, not revoked in the index) are
 *   the candidates (ca/revocation.ts liveDrops keeps those not yet expired).
 *
 * Serials are compared without leading zeros (a CRL's INTEGER and an index
 * line may pad differently); they are reported as upper-case hex of even
 * length.
 */
import * as der from "./der.js";
import { encodeRevoked, revokedFromIndexText, revokedSerials } from "./crl.js";

export interface CrlIndexDiff {
  /** revoked in the index, absent from the CRL (a revocation not published yet: a crash between index and CRL) */
  missing: string[];
  /** listed by the CRL, not revoked in the index (the index lost a revocation: an older index.txt restored) */
  extra: string[];
  /** on both, but the CRL's entry says something else (time, reason, hold instruction, invalidity date) */
  changed: string[];
  /** the CRL's entries are exactly those of a CRL built from the index */
  matches: boolean;
}

/** How far in the future a CRL's thisUpdate may be before it counts as not yet valid (clock skew between hosts). */
export const CLOCK_SKEW_MS = 5 * 60_000;

const stripZeros = (hex: string): string => hex.replace(/^0+(?=.)/, "");
const even = (hex: string): string => (hex.length % 2 ? "0" + hex : hex);
/** The form a serial is reported in: upper-case hex, even length, no extra leading zero byte. */
export const serialKey = (hex: string): string => (hex.length % 2 === 0 && hex.charCodeAt(0) !== 48 && !/[a-f]/.test(hex) ? hex : even(stripZeros(hex.toUpperCase())));

/**
 * Serials of the revoked ("R") lines of index.txt bytes (serialKey form), in
 * order: a byte scan, no line is parsed (indexes of 10^6 lines).
 */
export function revokedSerialsOfIndex(index: Uint8Array): string[] {
  const out: string[] = [];
  eachRevokedSerial(index, (b, from, to) => out.push(serialKey(b.toString("latin1", from, to))));
  return out;
}

/** Call fn with the bytes [from, to) of each revoked ("R") line's serial field, in order. */
function eachRevokedSerial(index: Uint8Array, fn: (b: Buffer, from: number, to: number) => void): void {
  const b = Buffer.from(index.buffer, index.byteOffset, index.byteLength);
  for (let p = 0; p < b.length; ) {
    let eol = b.indexOf(10, p);
    if (eol < 0) eol = b.length;
    if (b[p] === 82 /* R */) {
      let t = p;
      for (let k = 0; k < 3 && t >= 0 && t < eol; k++) t = b.indexOf(9, t + 1);
      const t4 = t >= 0 ? b.indexOf(9, t + 1) : -1;
      if (t >= 0 && t4 > t && t4 < eol) fn(b, t + 1, t4);
    }
    p = eol + 1;
  }
}

/** Each entry of a revokedCertificates DER by serial (serialKey form): its bytes as hex. */
function entriesBySerial(revokedDer: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  if (revokedDer.length === 0) return out;
  const top = der.read(revokedDer);
  const serials = revokedSerials(revokedDer);
  let i = 0;
  for (let p = top.contentStart; p < top.end; i++) {
    const entry = der.read(revokedDer, p, top.end);
    out.set(serialKey(serials[i]!), der.toHex(der.raw(revokedDer, entry)));
    p = entry.end;
  }
  return out;
}

/**
 * Compare a CRL's revokedCertificates DER (CrlInfo.revokedDer) with index.txt.
 * `serialsOnly`: compare the serials alone (missing and extra; changed stays
 * empty and matches says whether the serials agree): the check of every
 * revocation, which must not encode the whole index a second time.
 */
export function compareCrlWithIndex(index: Uint8Array | string, crlRevokedDer: Uint8Array, o: { serialsOnly?: boolean } = {}): CrlIndexDiff {
  const bytes = typeof index === "string" ? Buffer.from(index, "utf8") : index;
  const { missing, extra } = inOrder(bytes, crlRevokedDer) ?? bySets(revokedSerialsOfIndex(bytes), revokedSerials(crlRevokedDer).map(serialKey));
  if (missing.length || extra.length || o.serialsOnly) return { missing, extra, changed: [], matches: missing.length === 0 && extra.length === 0 };
  const text = typeof index === "string" ? index : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  const expected = encodeRevoked(revokedFromIndexText(text));
  if (Buffer.from(expected).equals(Buffer.from(crlRevokedDer))) return { missing, extra, changed: [], matches: true };
  // the same serials, said differently (or in another order)
  const want = entriesBySerial(expected);
  const have = entriesBySerial(crlRevokedDer);
  const changed = [...want].filter(([s, e]) => have.get(s) !== e).map(([s]) => s);
  return { missing, extra, changed, matches: false };
}

/**
 * A CRL built from this index (or an earlier state of it) lists its serials
 * in the index's order: then one merge pass over the bytes finds what the
 * index revokes that the CRL does not, and the CRL lists nothing else
 * (serials are unique on both sides, so a greedy match is exact). No string
 * is made but for the missing ones: this runs on every revocation, over
 * indexes and CRLs of 10^6 entries. Null when the CRL is not such a
 * subsequence (another order, a serial the index does not revoke).
 */
function inOrder(index: Uint8Array, crl: Uint8Array): { missing: string[]; extra: string[] } | null {
  let p = 0;
  let end = 0;
  if (crl.length) {
    const top = der.read(crl);
    p = top.contentStart;
    end = top.end;
  }
  const nextSerial = (): Uint8Array | null => {
    if (p >= end) return null;
    const entry = der.read(crl, p, end);
    p = entry.end;
    return der.content(crl, der.read(crl, entry.contentStart, entry.end));
  };
  let cur = nextSerial();
  const missing: string[] = [];
  eachRevokedSerial(index, (b, from, to) => {
    if (cur !== null && sameSerial(b, from, to, cur)) cur = nextSerial();
    else missing.push(serialKey(b.toString("latin1", from, to)));
  });
  return cur === null ? { missing, extra: [] } : null;
}

const hexValue = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);

/** Does the hex text b[s, e) (an index line's serial) name the number whose INTEGER content is c? Leading zeros aside. */
export function sameSerial(b: Uint8Array, s: number, e: number, c: Uint8Array): boolean {
  while (s < e - 1 && b[s] === 48) s++;
  let k = 0;
  while (k < c.length - 1 && c[k] === 0) k++;
  const skipHigh = (c[k] ?? 0) >> 4 === 0; // the first byte's high nibble is a leading zero
  const nibbles = (c.length - k) * 2 - (skipHigh ? 1 : 0);
  if (e - s !== nibbles) return false;
  let pos = s;
  for (let i = k; i < c.length; i++) {
    if (!(i === k && skipHigh) && hexValue(b[pos++]!) !== c[i]! >> 4) return false;
    if (hexValue(b[pos++]!) !== (c[i]! & 15)) return false;
  }
  return true;
}

function bySets(inIndex: readonly string[], inCrl: readonly string[]): { missing: string[]; extra: string[] } {
  const indexSet = new Set(inIndex);
  const crlSet = new Set(inCrl);
  return { missing: inIndex.filter((s) => !crlSet.has(s)), extra: inCrl.filter((s) => !indexSet.has(s)) };
}

/** How many revocations differ between a CRL and the index (at least 1 when they do not match). */
export function differingRevocations(d: CrlIndexDiff): number {
  if (d.matches) return 0;
  return Math.max(1, d.missing.length + d.extra.length + d.changed.length);
}
