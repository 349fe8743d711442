/**
 * spliceRevoked (core/crl.ts): a revocation's CRL made from the current
 * CRL's entries must be, byte for byte, the CRL built from the edited index
 * (prepareCrlFromIndex, itself held equal to the object-per-entry encoder),
 * for any mix of lines; and it must decline whenever its premise does not
 * hold, so that the caller builds from the index.
 */
import { describe, expect, it } from "vitest";
import * as der from "../../src/core/der.js";
import { prepareCrlFromEntries, prepareCrlFromIndex, spliceRevoked } from "../../src/core/crl.js";

const params = {
  signatureAlgorithm: der.seq(der.oid("1.2.840.10045.4.3.2")),
  issuer: der.seq(der.set(der.seq(der.oid("2.5.4.3"), der.utf8("Splice CA")))),
  thisUpdate: new Date("2026-12-01T00:00:00Z"),
  nextUpdate: new Date("2026-12-08T00:00:00Z"),
  crlNumber: 7n,
  authorityKeyId: new Uint8Array(20).fill(7),
};

const REVOKED = [
  "250101000000Z",
  "250101000000Z,keyCompromise",
  "20500101000000Z,superseded",
  "250101000000Z,holdInstruction,holdInstructionReject",
  "250101000000Z,keyTime,20241231000000Z",
  "250101000000Z,certificateHold",
];

/** A random index: valid, expired and revoked lines, serials of odd and even length, high bits set. */
function randomIndex(n: number, rnd: () => number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const serial = (rnd() < 0.3 ? "8" : rnd() < 0.5 ? "0" : "1") + (i + 1).toString(16).toUpperCase().padStart(rnd() < 0.5 ? 5 : 6, "0");
    const r = rnd();
    const status = r < 0.45 ? "R" : r < 0.9 ? "V" : "E";
    lines.push(`${status}\t351231235959Z\t${status === "R" ? REVOKED[Math.floor(rnd() * REVOKED.length)] : ""}\t${serial}\tunknown\t/CN=n${i}`);
  }
  return lines;
}

function rng(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

const text = (lines: string[]) => Buffer.from(lines.map((l) => l + "\n").join(""));
const startOf = (lines: string[], i: number) => lines.slice(0, i).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
const revokedDerOf = (index: Buffer): Uint8Array => {
  // the revokedCertificates of the CRL built from index: the TBS's sixth field (absent when empty)
  const tbs = prepareCrlFromIndex({ ...params, index }).tbs;
  const fields = der.children(tbs, der.read(tbs));
  return fields.length === 7 ? der.raw(tbs, fields[5]!) : new Uint8Array(0);
};
const revoke = (line: string, how: string) => line.replace(/^V\t(\d+Z)\t\t/, `R\t$1\t${how}\t`);

describe("spliceRevoked", () => {
  it("gives the CRL of the edited index, byte for byte, over random indexes and revocations", () => {
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = rng(seed);
      const lines = randomIndex(1 + Math.floor(rnd() * 80), rnd);
      // lines appended after the CRL was built (valid ones: issuance)
      const built = text(lines);
      const appended = Math.floor(rnd() * 4);
      for (let i = 0; i < appended; i++) lines.push(`V\t351231235959Z\t\t${(0xf000 + i).toString(16).toUpperCase()}\tunknown\t/CN=new${i}`);
      const index = text(lines);
      const valid = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith("V"));
      if (!valid.length) continue;
      const picks = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => valid[Math.floor(rnd() * valid.length)]![1]))];
      const changes = picks.map((i) => ({ start: startOf(lines, i), line: revoke(lines[i]!, REVOKED[Math.floor(rnd() * REVOKED.length)]!) }));
      const edited = lines.map((l, i) => changes.find((c) => c.start === startOf(lines, i))?.line ?? l);
      const s = spliceRevoked(revokedDerOf(built), index, built.length, changes);
      expect(s, `seed ${seed}`).not.toBeNull();
      const want = prepareCrlFromIndex({ ...params, index: text(edited) });
      const got = prepareCrlFromEntries(params, s!.pieces, s!.count);
      expect(got.count).toBe(want.count);
      expect(Buffer.from(got.tbs).equals(Buffer.from(want.tbs)), `seed ${seed}`).toBe(true);
    }
  });

  it("first entry, last entry, and from a CRL with no entries", () => {
    const lines = ["V\t351231235959Z\t\t01\tunknown\t/CN=a", "R\t351231235959Z\t250101000000Z\t02\tunknown\t/CN=b", "V\t351231235959Z\t\t03\tunknown\t/CN=c"];
    for (const picks of [[0], [2], [0, 2]]) {
      const changes = picks.map((i) => ({ start: startOf(lines, i), line: revoke(lines[i]!, "260101000000Z,keyCompromise") }));
      const edited = lines.map((l, i) => (picks.includes(i) ? revoke(l, "260101000000Z,keyCompromise") : l));
      const s = spliceRevoked(revokedDerOf(text(lines)), text(lines), text(lines).length, changes)!;
      expect(Buffer.from(prepareCrlFromEntries(params, s.pieces, s.count).tbs)).toEqual(Buffer.from(prepareCrlFromIndex({ ...params, index: text(edited) }).tbs));
    }
    const none = [lines[0]!, lines[2]!];
    const s = spliceRevoked(new Uint8Array(0), text(none), text(none).length, [{ start: 0, line: revoke(none[0]!, "260101000000Z") }])!;
    expect(s.count).toBe(1);
    expect(Buffer.from(prepareCrlFromEntries(params, s.pieces, s.count).tbs)).toEqual(Buffer.from(prepareCrlFromIndex({ ...params, index: text([revoke(none[0]!, "260101000000Z"), none[1]!]) }).tbs));
  });

  it("declines when its premise does not hold", () => {
    const lines = ["R\t351231235959Z\t250101000000Z\t01\tunknown\t/CN=a", "V\t351231235959Z\t\t02\tunknown\t/CN=b", "R\t351231235959Z\t250101000000Z\t03\tunknown\t/CN=c"];
    const index = text(lines);
    const prev = revokedDerOf(index);
    const b = { start: startOf(lines, 1), line: revoke(lines[1]!, "260101000000Z") };
    expect(spliceRevoked(prev, index, index.length, [b])).not.toBeNull();
    // a revoked line after what the CRL was built from (an appended revocation)
    expect(spliceRevoked(prev, index, startOf(lines, 2), [b])).toBeNull();
    // a change of a line that is revoked already, not at a line start, twice the same line
    expect(spliceRevoked(prev, index, index.length, [{ start: 0, line: lines[0]! }])).toBeNull();
    expect(spliceRevoked(prev, index, index.length, [{ start: b.start + 1, line: b.line }])).toBeNull();
    expect(spliceRevoked(prev, index, index.length, [b, b])).toBeNull();
    expect(spliceRevoked(prev, index, index.length, [{ start: index.length + 5, line: b.line }])).toBeNull();
    // a CRL with another number of entries than the index has revoked lines, or not DER
    expect(spliceRevoked(revokedDerOf(text([lines[0]!])), index, index.length, [b])).toBeNull();
    expect(spliceRevoked(new Uint8Array(0), index, index.length, [b])).toBeNull();
    expect(spliceRevoked(Uint8Array.of(0x30, 0x05, 0x30, 0x09), index, index.length, [b])).toBeNull();
  });
});
