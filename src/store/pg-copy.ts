/**
 * Reading one text column in bulk: `COPY (SELECT col ...) TO STDOUT (FORMAT
 * binary)` hands the column's bytes over as they are stored, one CopyData
 * message per row. The whole index of a CA (100,000 lines, ~11 MB) arrives
 * in ~85 ms this way, where the rows of a SELECT cost ~250 ms: the server
 * no longer builds large texts with string_agg (~185 ms of the old query),
 * and the client no longer decodes them from UTF-8 only to encode them back.
 *
 * copyOut() is the I/O (a pg "Submittable": pg calls its handle* methods
 * with the backend's messages); linesOfBinaryCopy() is the pure format.
 */
import type * as pg from "pg";
import { PkiError } from "../core/errors.js";

/** PGCOPY\n\377\r\n\0: the signature that starts every binary COPY stream */
const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

/**
 * The values of a binary COPY stream of one non-null text column, each
 * followed by "\n", written over the stream itself (`buf`, its first `len`
 * bytes; each row shrinks by 5 bytes, so the output never overtakes the
 * input). Throws on anything else: a stream that is cut short, has more
 * than one column, or a NULL.
 */
export function linesOfBinaryCopy(buf: Buffer, len = buf.length): Buffer {
  const bad = (what: string) => new PkiError("INTERNAL", `the database's COPY output ${what}`);
  if (len < SIGNATURE.length + 8 || !buf.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw bad("does not start with the binary COPY signature");
  let r = SIGNATURE.length + 4; // flags (bit 16: OIDs included, never asked for)
  if (buf.readUInt32BE(SIGNATURE.length) & 0x10000) throw bad("carries OIDs");
  r += 4 + buf.readUInt32BE(r); // header extension, skipped
  let w = 0;
  for (;;) {
    if (r + 2 > len) throw bad("ends before its trailer");
    const fields = buf.readInt16BE(r);
    r += 2;
    if (fields === -1) break;
    if (fields !== 1) throw bad(`has ${fields} columns, expected 1`);
    if (r + 4 > len) throw bad("ends inside a row");
    const n = buf.readInt32BE(r);
    r += 4;
    if (n < 0) throw bad("has a NULL line");
    if (r + n > len) throw bad("ends inside a row");
    buf.copy(buf, w, r, r + n);
    w += n;
    r += n;
    buf[w++] = 10;
  }
  if (r !== len) throw bad("goes on after its trailer");
  return buf.subarray(0, w);
}

/**
 * Run `COPY (select) TO STDOUT (FORMAT binary)` for a select of one text
 * column, and resolve with its values, each followed by "\n" (no row: an
 * empty buffer). `db` is a pool or a client; `timeout` is the client-side
 * limit (pg's query_timeout), as for any other statement.
 */
export function copyOutLines(db: pg.Pool | pg.PoolClient, select: string, timeout: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let buf = Buffer.allocUnsafe(1 << 20);
    let len = 0;
    let error: unknown;
    let done = false;
    const settle = (e: unknown) => {
      if (done) return;
      done = true;
      if (e !== undefined) return reject(e);
      try {
        resolve(linesOfBinaryCopy(buf, len));
      } catch (err) {
        reject(err);
      }
    };
    const copy = {
      text: `COPY (${select}) TO STDOUT (FORMAT binary)`,
      query_timeout: timeout,
      callback: undefined as ((err: unknown, res?: unknown) => void) | undefined,
      submit(connection: { query(text: string): void }) {
        connection.query(copy.text);
      },
      // msg.chunk is a view of pg-protocol's read buffer, which it reuses: copied at once
      handleCopyData(msg: { chunk: Buffer }) {
        if (done) return;
        const c = msg.chunk;
        if (len + c.length > buf.length) {
          let size = buf.length * 2;
          while (size < len + c.length) size *= 2;
          const next = Buffer.allocUnsafe(size);
          buf.copy(next, 0, 0, len);
          buf = next;
        }
        len += c.copy(buf, len);
      },
      handleError(e: unknown) {
        error ??= e;
        // a lost connection sends no ReadyForQuery: answer now
        settle(error);
        copy.callback?.(error);
        copy.callback = undefined;
      },
      handleReadyForQuery() {
        settle(error);
        copy.callback?.(error ?? null, undefined);
        copy.callback = undefined;
      },
      handleCommandComplete() {},
      handleRowDescription() {},
      handleDataRow() {},
      handleEmptyQuery() {},
      handlePortalSuspended() {},
      handleCopyInResponse(connection: { sendCopyFail(msg: string): void }) {
        connection.sendCopyFail("pki reads, never writes, with COPY");
      },
    };
    // pg runs anything with a submit() method as is; a pool hands it to a client and releases that client
    // through the callback it sets (given, handleError / handleReadyForQuery call it)
    const pending = (db as unknown as { query(q: typeof copy): unknown }).query(copy);
    // a pool's query() also returns a promise of that callback's outcome, already reported by settle()
    if (pending instanceof Promise) pending.catch(() => undefined);
  });
}
