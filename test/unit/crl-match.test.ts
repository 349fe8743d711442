/**
 * The one rule "the CRL matches the index" (core/crl-match.ts), with fixed
 * index texts: the CRL side is encodeRevoked over another index text, as a
 * CRL built from that index would carry it.
 */
import { describe, expect, it } from "vitest";
import { encodeRevoked, revokedFromIndexText } from "../../src/core/crl.js";
import { compareCrlWithIndex, differingRevocations, revokedSerialsOfIndex, sameSerial, serialKey } from "../../src/core/crl-match.js";

const A = "R\t310101000000Z\t300101000000Z,keyCompromise\t0A\tunknown\t/CN=a\n";
const B = "V\t310101000000Z\t\t0B\tunknown\t/CN=b\n";
const B_REVOKED = "R\t310101000000Z\t300103000000Z\t0B\tunknown\t/CN=b\n";
const C = "R\t310101000000Z\t300102000000Z\tFF01\tunknown\t/CN=c\n";
const crlOf = (index: string) => encodeRevoked(revokedFromIndexText(index));

describe("sameSerial", () => {
  const same = (text: string, bytes: number[]) => sameSerial(Buffer.from(`x${text}y`), 1, 1 + text.length, new Uint8Array(bytes));
  it("reads hex text against INTEGER content, leading zeros and case aside", () => {
    expect(same("0A", [0x0a])).toBe(true);
    expect(same("A", [0x0a])).toBe(true);
    expect(same("000a", [0x0a])).toBe(true);
    expect(same("FF01", [0x00, 0xff, 0x01])).toBe(true);
    expect(same("00FF01", [0xff, 0x01])).toBe(true);
    expect(same("0", [0x00])).toBe(true);
    expect(same("00", [0x00])).toBe(true);
    expect(same("10", [0x10])).toBe(true);
  });
  it("and tells different numbers apart", () => {
    expect(same("0B", [0x0a])).toBe(false);
    expect(same("A0", [0x0a])).toBe(false);
    expect(same("1", [0x10])).toBe(false);
    expect(same("FF0", [0xff, 0x01])).toBe(false);
    expect(same("FF011", [0xff, 0x01])).toBe(false);
    expect(same("0", [0x01])).toBe(false);
    expect(same("G1", [0x01])).toBe(false);
    expect(same("", [0x00])).toBe(false);
  });
});

describe("compareCrlWithIndex", () => {
  it("a CRL built from the index matches it", () => {
    const index = A + B + C;
    const d = compareCrlWithIndex(index, crlOf(index));
    expect(d).toEqual({ missing: [], extra: [], changed: [], matches: true });
    expect(differingRevocations(d)).toBe(0);
  });

  it("serials of odd length or in lower case (a hand-edited index) compare as numbers, and a CRL from the index matches it", () => {
    const odd = "R\t310101000000Z\t300101000000Z,keyCompromise\tabc\tunknown\t/CN=odd\n" + "R\t310101000000Z\t300101000000Z\t1\tunknown\t/CN=one\n";
    const crl = encodeRevoked(revokedFromIndexText(odd));
    expect(revokedFromIndexText(odd).map((r) => r.serial)).toEqual(["0ABC", "01"]);
    expect(compareCrlWithIndex(odd, crl)).toEqual({ missing: [], extra: [], changed: [], matches: true });
    expect(compareCrlWithIndex(odd.replace("keyCompromise", "superseded"), crl).changed).toEqual(["0ABC"]);
  });

  it("an empty index and a CRL without entries match", () => {
    expect(compareCrlWithIndex("", new Uint8Array(0)).matches).toBe(true);
    expect(compareCrlWithIndex(B, new Uint8Array(0)).matches).toBe(true);
  });

  it("a revocation the CRL lacks is missing (a crash between index and CRL)", () => {
    const d = compareCrlWithIndex(A + B_REVOKED + C, crlOf(A + B + C));
    expect(d).toEqual({ missing: ["0B"], extra: [], changed: [], matches: false });
    expect(differingRevocations(d)).toBe(1);
  });

  it("a revocation the index lost is extra (an older index restored)", () => {
    const d = compareCrlWithIndex(Buffer.from(B + C), crlOf(A + B + C));
    expect(d).toEqual({ missing: [], extra: ["0A"], changed: [], matches: false });
  });

  it("both at once count both", () => {
    const d = compareCrlWithIndex(B_REVOKED + C, crlOf(A + B + C));
    expect(d.missing).toEqual(["0B"]);
    expect(d.extra).toEqual(["0A"]);
    expect(differingRevocations(d)).toBe(2);
  });

  it("the same serials with another reason or time do not match", () => {
    const other = A.replace("keyCompromise", "superseded") + B + C.replace("300102000000Z", "300104000000Z");
    const d = compareCrlWithIndex(A + B + C, crlOf(other));
    expect(d.missing).toEqual([]);
    expect(d.extra).toEqual([]);
    expect(d.changed).toEqual(["0A", "FF01"]);
    expect(d.matches).toBe(false);
    expect(differingRevocations(d)).toBe(2);
  });

  it("the merge pass (a CRL in the index's order) and the set pass (any other order) find the same missing and extra", () => {
    const D = "R\t310101000000Z\t300105000000Z\t00D1\tunknown\t/CN=d\n";
    // in order, a new revocation in the middle and at the end: missing only
    expect(compareCrlWithIndex(A + B_REVOKED + C + D, crlOf(A + C), { serialsOnly: true })).toEqual({ missing: ["0B", "D1"], extra: [], changed: [], matches: false });
    // in order but one serial lost from the index: extra, found by the set pass
    expect(compareCrlWithIndex(A + D, crlOf(A + C + D), { serialsOnly: true })).toEqual({ missing: [], extra: ["FF01"], changed: [], matches: false });
    // out of order, nothing lost: no extra
    expect(compareCrlWithIndex(A + C + D, crlOf(D + A), { serialsOnly: true })).toEqual({ missing: ["FF01"], extra: [], changed: [], matches: false });
    // out of order and one lost
    expect(compareCrlWithIndex(C + A, crlOf(A + D + C), { serialsOnly: true })).toEqual({ missing: [], extra: ["D1"], changed: [], matches: false });
  });

  it("the same entries in another order do not match, and count as one difference", () => {
    const d = compareCrlWithIndex(A + C, crlOf(C + A));
    expect(d.changed).toEqual([]);
    expect(d.matches).toBe(false);
    expect(differingRevocations(d)).toBe(1);
  });

  it("serialsOnly compares the serials alone", () => {
    const other = A.replace("keyCompromise", "superseded") + C;
    expect(compareCrlWithIndex(A + C, crlOf(other), { serialsOnly: true })).toEqual({ missing: [], extra: [], changed: [], matches: true });
    expect(compareCrlWithIndex(C, crlOf(other), { serialsOnly: true }).extra).toEqual(["0A"]);
  });

  it("serials compare without leading zeros", () => {
    const padded = "R\t310101000000Z\t300101000000Z\t000A\tunknown\t/CN=a\n";
    expect(compareCrlWithIndex(padded, crlOf("R\t310101000000Z\t300101000000Z\t0A\tunknown\t/CN=a\n"), { serialsOnly: true }).matches).toBe(true);
    expect(serialKey("000a")).toBe("0A");
    expect(serialKey("ABC")).toBe("0ABC");
  });
});

describe("revokedSerialsOfIndex", () => {
  it("lists the revoked lines' serials in order and skips the others", () => {
    expect(revokedSerialsOfIndex(Buffer.from(A + B + C + B_REVOKED))).toEqual(["0A", "FF01", "0B"]);
    expect(revokedSerialsOfIndex(Buffer.from("R\tbroken\n"))).toEqual([]);
  });
});
