/**
 * Changes of index lines, on the index text as bytes (issue #9: one copy of
 * "mark this line revoked"). A revocation in a 1,000,000-line index costs a
 * byte search per serial, not a million parses: the serial's line is found
 * by searching "<TAB>SERIAL<TAB>" in the fourth field, only that line is
 * parsed and rewritten, and the rest is copied around it. Large batches take
 * the parse-everything path instead. Pure: no fs.
 */
import { PkiError } from "./errors.js";
import { formatIndex, formatLine, parseIndex, parseLine, type IndexEntry, type Reason } from "./index-format.js";

/** An entry marked revoked at `revokedAt` (whole seconds, as the index keeps it) for `reason`. */
export function markRevoked(e: IndexEntry, revokedAt: Date, reason: Reason): IndexEntry {
  return { ...e, status: "R", revokedAt, reason: reason === "unspecified" ? undefined : reason };
}

/** The revocation time of a change made at `now`: whole seconds (the index and the CRL keep no more). */
export const revocationTime = (now: Date): Date => new Date(Math.floor(now.getTime() / 1000) * 1000);

/**
 * The line of index.txt whose serial field is exactly `serial`: [start, end)
 * without the newline. Null when no line has it.
 */
export function findSerialLine(buf: Buffer, serial: string): { start: number; end: number } | null {
  if (!/^[0-9A-F]+$/.test(serial)) return null;
  const needle = Buffer.from(`\t${serial}\t`, "latin1");
  let from = 0;
  for (;;) {
    const hit = buf.indexOf(needle, from);
    if (hit < 0) return null;
    const start = buf.lastIndexOf(10, hit) + 1;
    // the serial is the fourth field: exactly three tabs from the line start up to and including `hit`
    let tabs = 0;
    for (let i = start; i <= hit; i++) if (buf[i] === 9) tabs++;
    if (tabs === 3) {
      let end = buf.indexOf(10, hit + needle.length);
      if (end < 0) end = buf.length;
      return { start, end };
    }
    from = hit + 1;
  }
}

/** The index entry of one serial, found by a byte search (no parse of the other lines). */
export function findIndexEntry(buf: Buffer, serial: string): IndexEntry | null {
  const at = findSerialLine(buf, serial);
  return at ? parseIndexLineAt(buf, at.start, at.end) : null;
}

/** Parse one line of the index buffer; the line number (for the error message) is counted only when it is bad. */
export function parseIndexLineAt(buf: Buffer, start: number, end: number): IndexEntry {
  const text = buf.toString("utf8", start, end);
  try {
    return parseLine(text, 0);
  } catch {
    let lineNo = 1;
    for (let i = buf.indexOf(10); i >= 0 && i < start; i = buf.indexOf(10, i + 1)) lineNo++;
    return parseLine(text, lineNo);
  }
}

export const notInIndex = (serial: string): PkiError => new PkiError("NOT_FOUND", `no certificate with serial ${serial} in this CA's index: check \`pki list\``);

/** Up to this many changed lines are spliced in place; more are applied by one parse and format of the whole index. */
export const SPLICE_LIMIT = 16;

// the last result per update list: the caller that decided a change (the CRL
// is built from the new index) and the store that commits it compute the
// same bytes from the same buffer; the second asks here and gets them back
const applied = new WeakMap<readonly IndexEntry[], { input: Buffer; output: Buffer }>();

/**
 * The index with each entry of `updates` replacing the line of its serial
 * (unknown serials: NOT_FOUND). Small batches are spliced in place, large
 * ones re-formatted whole; the bytes are the same either way.
 */
export function applyIndexUpdates(buf: Buffer, updates: readonly IndexEntry[]): Buffer {
  const memo = applied.get(updates);
  if (memo && memo.input === buf) return memo.output;
  let out: Buffer;
  if (updates.length <= SPLICE_LIMIT) {
    out = buf;
    for (const u of updates) {
      const at = findSerialLine(out, u.serial);
      if (!at) throw notInIndex(u.serial);
      out = Buffer.concat([out.subarray(0, at.start), Buffer.from(formatLine(u), "utf8"), out.subarray(at.end)]);
    }
  } else {
    const index = parseIndex(buf.toString("utf8"));
    const bySerial = new Map(index.map((e, i) => [e.serial, i]));
    for (const u of updates) {
      const i = bySerial.get(u.serial);
      if (i === undefined) throw notInIndex(u.serial);
      index[i] = u;
    }
    out = Buffer.from(formatIndex(index), "utf8");
  }
  applied.set(updates, { input: buf, output: out });
  return out;
}

/** The index with new lines appended (a missing final newline is added first). */
export function appendIndexLines(buf: Buffer, entries: readonly IndexEntry[]): Buffer {
  if (!entries.length) return buf;
  const lines = Buffer.from(formatIndex(entries), "utf8");
  const sep = buf.length && buf[buf.length - 1] !== 10 ? Buffer.from("\n") : Buffer.alloc(0);
  return Buffer.concat([buf, sep, lines]);
}

/** The entries of a serial list, each found (NOT_FOUND) and not yet revoked (ALREADY_REVOKED). */
export function entriesToRevoke(buf: Buffer, serials: readonly string[], describe = true): IndexEntry[] {
  const out: IndexEntry[] = [];
  if (serials.length <= SPLICE_LIMIT) {
    for (const s of serials) out.push(checkRevocable(findIndexEntry(buf, s), s, describe));
  } else {
    const bySerial = new Map(parseIndex(buf.toString("utf8")).map((e) => [e.serial, e]));
    for (const s of serials) out.push(checkRevocable(bySerial.get(s) ?? null, s, describe));
  }
  return out;
}

function checkRevocable(e: IndexEntry | null, serial: string, describe: boolean): IndexEntry {
  if (!e) throw notInIndex(serial);
  if (e.status === "R") throw new PkiError("ALREADY_REVOKED", `serial ${serial}${describe ? ` (${e.subject})` : ""} was already revoked on ${e.revokedAt?.toISOString()}`);
  return e;
}
