/**
 * crl-source.json (core/crl-source.ts): when may a new CRL skip reading the
 * current one? Only when that very crl.pem was built from the index as it
 * is, or from a text the index only appends whole lines to.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CRL_TAIL_BYTES, crlBuiltFrom, crlSourceRecord, parseCrlSource } from "../../src/core/crl-source.js";

const A = "R\t310101000000Z\t300101000000Z,keyCompromise\t0A\tunknown\t/CN=a\n";
const B = "V\t310101000000Z\t\t0B\tunknown\t/CN=b\n";
const C = "V\t310101000000Z\t\t0C\tunknown\t/CN=c\n";
const crlPem = Buffer.from("-----BEGIN X509 CRL-----\n" + "QUJD".repeat(100) + "\n" + "c2lnbmF0dXJl".repeat(12) + "\n-----END X509 CRL-----\n");
const end = (b: Buffer) => ({ size: b.length, tail: b.subarray(b.length - CRL_TAIL_BYTES) });
const rec = (index: string, crl = crlPem) => parseCrlSource(crlSourceRecord(Buffer.from(index), crl));
const built = (index: string, crl = crlPem, from = A + B) => crlBuiltFrom(rec(from), end(crl), Buffer.from(index));

describe("crl-source.json", () => {
  it("records the index's length and SHA-256 and the CRL file's size and last bytes", () => {
    const r = rec(A + B)!;
    expect(r.index).toEqual({ bytes: Buffer.byteLength(A + B), sha256: createHash("sha256").update(A + B).digest("hex") });
    expect(r.crl).toEqual({ bytes: crlPem.length, tail: crlPem.subarray(crlPem.length - CRL_TAIL_BYTES).toString("base64") });
  });

  it("says yes for the same index, and for whole lines appended to it", () => {
    expect(built(A + B)).toBe(true);
    expect(built(A + B + C)).toBe(true);
    expect(built(A + B + A.replace("0A", "0D"))).toBe(true); // an appended revocation adds to the CRL, drops nothing
    expect(crlBuiltFrom(rec(""), end(crlPem), Buffer.from(A))).toBe(true); // built from an empty index
  });

  it("says no for an index edited, cut, replaced or grown inside its last line", () => {
    expect(built(A.replace("R", "V") + B)).toBe(false); // a revocation undone in place
    expect(built(A)).toBe(false); // cut
    expect(built(B + A)).toBe(false); // the same lines, rewritten
    expect(built("")).toBe(false);
    const unterminated = (A + B).slice(0, -1);
    expect(crlBuiltFrom(rec(unterminated), end(crlPem), Buffer.from(unterminated + "X\n"))).toBe(false);
  });

  it("says no for another CRL file: other size, other last bytes, none", () => {
    const other = Buffer.from(crlPem);
    other[other.length - 40] ^= 1;
    expect(built(A + B, other)).toBe(false);
    expect(built(A + B, Buffer.concat([crlPem, Buffer.from("\n")]))).toBe(false);
    expect(crlBuiltFrom(rec(A + B), null, Buffer.from(A + B))).toBe(false);
    // a CRL shorter than the tail is named by all of it
    const tiny = Buffer.from("tiny");
    expect(crlBuiltFrom(rec(A, tiny), { size: 4, tail: tiny }, Buffer.from(A))).toBe(true);
  });

  it("takes no record, or one that does not parse, as no record", () => {
    expect(crlBuiltFrom(null, end(crlPem), Buffer.from(A + B))).toBe(false);
    for (const bad of ["", "{", "null", "[]", '{"index":{}}', '{"index":{"bytes":-1,"sha256":"' + "0".repeat(64) + '"},"crl":{"bytes":1,"tail":""}}', '{"index":{"bytes":1,"sha256":"xyz"},"crl":{"bytes":1,"tail":""}}']) {
      expect(parseCrlSource(Buffer.from(bad))).toBeNull();
    }
    expect(parseCrlSource(null)).toBeNull();
  });

  it("keeps the hash state per buffer (the check and the next record share it): every order of calls gives the true SHA-256", () => {
    const sha = (s: string) => createHash("sha256").update(s).digest("hex");
    const r = rec(A + B)!;
    // the check on a buffer with a line appended, then the record of the same buffer: both from one pass
    const grown = Buffer.from(A + B + C);
    expect(crlBuiltFrom(r, end(crlPem), grown)).toBe(true);
    expect(parseCrlSource(crlSourceRecord(grown, crlPem))!.index.sha256).toBe(sha(A + B + C));
    // asked again, shorter after longer (the state kept is past it): computed afresh, not from the kept state
    expect(crlBuiltFrom(r, end(crlPem), grown)).toBe(true);
    expect(crlBuiltFrom(rec(A), end(crlPem), grown)).toBe(true); // a shorter prefix than the one kept
    expect(crlBuiltFrom(rec(B), end(crlPem), grown)).toBe(false); // same length as A, other bytes
    expect(parseCrlSource(crlSourceRecord(grown, crlPem))!.index.sha256).toBe(sha(A + B + C));
    // the same bytes in another buffer: its own hash
    const other = Buffer.from(A + B);
    expect(parseCrlSource(crlSourceRecord(other, crlPem))!.index.sha256).toBe(sha(A + B));
    expect(crlBuiltFrom(r, end(crlPem), other)).toBe(true);
  });
});
