/**
 * What the CA's crl.pem was built from (issue 17): a small record written
 * with every crl.pem, `crl-source.json`, so that the next CRL or revocation
 * can skip reading and comparing the whole current CRL when nothing can have
 * been lost since. Pure (hashing, no I/O).
 *
 * Every new CRL is checked against the current one: it must not drop a live
 * revocation (an older index.txt restored from a backup, a hand edit;
 * ca/revocation.ts liveDrops). That check reads, decodes and compares the
 * current CRL: ~0.5 s for 1,000,000 entries, ~130 ms for 100,000, on every
 * `pki revoke`. It cannot find anything when the current crl.pem was built
 * by pki from the very index.txt there is now, or from an index the present
 * one only appends lines to (issuance appends; a revocation edits a line and
 * writes a new CRL, and so a new record): a CRL lists the revoked lines of
 * its index, and appended lines remove none of them.
 *
 * The record says so for one crl.pem only: it names that file by its size
 * and its last bytes (the end of the signature, which differs between any
 * two CRLs), and the index by the length and SHA-256 of the text the CRL was
 * built from. Anything else (no record, another crl.pem, an index that was
 * edited, cut or replaced, a record that does not parse) means the full
 * check, as before. It guards against accidents, not against someone who
 * can write the CA's files (they can write the record too, as they can
 * write crl.pem itself).
 */
import { createHash, type Hash } from "node:crypto";

/** How many final bytes of crl.pem name it (with its size). */
export const CRL_TAIL_BYTES = 128;

export interface CrlSource {
  /** the index text the CRL was built from: its length in bytes and SHA-256 */
  index: { bytes: number; sha256: string };
  /** the crl.pem written from it: size and last CRL_TAIL_BYTES, base64 */
  crl: { bytes: number; tail: string };
}

/** The CRL file as the store has it now: its size and last bytes. */
export interface CrlFileEnd {
  size: number;
  tail: Uint8Array;
}

/**
 * SHA-256 of index[0, n), as hex. A command hashes its index twice: to check
 * the record (crlBuiltFrom) and to write the next one (crlSourceRecord), of
 * the same buffer or of it with lines appended: ~100 ms each for a 100 MB
 * index. The hash state is kept per buffer (index buffers are never edited in
 * place: an edit makes a new one), so that each byte is read once.
 */
const prefixHashes = new WeakMap<Uint8Array, { n: number; hash: Hash }>();
function sha256Prefix(index: Uint8Array, n: number): string {
  const seen = prefixHashes.get(index);
  const hash = seen && seen.n <= n ? seen.hash.update(index.subarray(seen.n, n)) : createHash("sha256").update(index.subarray(0, n));
  prefixHashes.set(index, { n, hash });
  return hash.copy().digest("hex");
}

const tailOf = (b: Uint8Array): Uint8Array => b.subarray(Math.max(0, b.length - CRL_TAIL_BYTES));

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");

/** The record for a crl.pem (its bytes as written) built from `index`. */
export function crlSourceRecord(index: Uint8Array, crlPem: Uint8Array): Buffer {
  const rec: CrlSource = { index: { bytes: index.length, sha256: sha256Prefix(index, index.length) }, crl: { bytes: crlPem.length, tail: b64(tailOf(crlPem)) } };
  return Buffer.from(JSON.stringify(rec) + "\n", "utf8");
}

/** A record as read back, or null when there is none or it is not one. */
export function parseCrlSource(bytes: Uint8Array | null): CrlSource | null {
  if (bytes === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    return null;
  }
  const r = v as Partial<CrlSource> | null;
  const count = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (!r || typeof r !== "object" || !r.index || !r.crl) return null;
  if (!count(r.index.bytes) || typeof r.index.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.index.sha256)) return null;
  if (!count(r.crl.bytes) || typeof r.crl.tail !== "string") return null;
  return r as CrlSource;
}

/** Is the CRL file (its size and last bytes, or all of it) the one the record names? */
export function isRecordedCrl(rec: CrlSource, crl: CrlFileEnd): boolean {
  return crl.size === rec.crl.bytes && b64(tailOf(crl.tail)) === rec.crl.tail;
}

/**
 * Is the CRL file `crl` the one the record describes, and `index` the text
 * it was built from, or that text with lines appended? Then the CRL lists
 * nothing `index` does not revoke. False whenever that is not certain.
 */
export function crlBuiltFrom(rec: CrlSource | null, crl: CrlFileEnd | null, index: Uint8Array): boolean {
  if (rec === null || crl === null || !isRecordedCrl(rec, crl)) return false;
  const n = rec.index.bytes;
  if (index.length < n) return false;
  // lines appended to it: the recorded text ends a line, or a line of it could have grown
  if (n > 0 && n < index.length && index[n - 1] !== 10) return false;
  return sha256Prefix(index, n) === rec.index.sha256;
}
