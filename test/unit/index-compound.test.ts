/**
 * Issue 10.10: the revocation field in every form `openssl ca` writes
 * (holdInstruction,<OID>; keyTime,<time>; CAkeyTime,<time>) parses, formats
 * back unchanged, and reaches the CRL as entry extensions, the same in the
 * one-pass builder and in the object-based reference; 10.5: BOM and CRLF.
 */
import { describe, expect, it } from "vitest";
import * as der from "../../src/core/der.js";
import { revokedFromEntries, revokedFromIndexText, signCrlFromIndex, tbsCertList } from "../../src/core/crl.js";
import { formatLine, normalizeIndex, parseIndex, parseLine } from "../../src/core/index-format.js";

const LINES = [
  "R\t351231235959Z\t250101000000Z,holdInstruction,holdInstructionReject\t0A\tunknown\t/CN=hold",
  "R\t351231235959Z\t250101000000Z,holdInstruction,1.2.840.10040.2.2\t0B\tunknown\t/CN=call",
  "R\t351231235959Z\t250101000000Z,keyTime,20241231000000Z\t0C\tunknown\t/CN=key",
  "R\t351231235959Z\t250101000000Z,CAkeyTime,20241130000000Z\t8D\tunknown\t/CN=ca",
  "R\t351231235959Z\t250101000000Z,certificateHold\t0E\tunknown\t/CN=plain hold",
  "V\t351231235959Z\t\t0F\tunknown\t/CN=valid",
];

describe("compound revocation fields", () => {
  it("parse into reason + hold instruction / invalidity date and format back byte for byte", () => {
    const e = LINES.map((l) => parseLine(l));
    expect(e[0]).toMatchObject({ reason: "certificateHold", holdInstruction: "1.2.840.10040.2.3" });
    expect(e[1]).toMatchObject({ reason: "certificateHold", holdInstruction: "1.2.840.10040.2.2" });
    expect(e[2]).toMatchObject({ reason: "keyCompromise", invalidityDate: new Date("2024-12-31T00:00:00Z") });
    expect(e[3]).toMatchObject({ reason: "caCompromise", invalidityDate: new Date("2024-11-30T00:00:00Z") });
    expect(formatLine(e[0]!)).toBe(LINES[0]);
    expect(formatLine(e[1]!)).toBe(LINES[1]!.replace("1.2.840.10040.2.2", "holdInstructionCallIssuer"));
    for (const i of [2, 3, 4, 5]) expect(formatLine(e[i]!)).toBe(LINES[i]);
  });
  it("malformed ones are CA_INVALID, not a crash", () => {
    for (const rev of ["250101000000Z,keyTime,yesterday", "250101000000Z,holdInstruction,nonsense", "250101000000Z,keyCompromise,extra"]) {
      expect(() => parseLine(`R\t351231235959Z\t${rev}\t0A\tunknown\t/CN=x`)).toThrow(/index\.txt line/);
    }
  });
  it("the one-pass CRL builder and the reference encoder agree, entry extensions included", () => {
    const index = LINES.join("\n") + "\n";
    const params = {
      signatureAlgorithm: der.seq(der.oid("1.2.840.10045.4.3.2")),
      issuer: der.seq(der.set(der.seq(der.oid("2.5.4.3"), der.utf8("Test CA")))),
      thisUpdate: new Date("2025-01-02T03:04:05Z"),
      nextUpdate: new Date("2025-01-09T03:04:05Z"),
      crlNumber: 7n,
      authorityKeyId: new Uint8Array(20).fill(0xab),
    };
    let signed: Uint8Array | undefined;
    signCrlFromIndex({ ...params, index: new Uint8Array(Buffer.from(index)), sign: (t) => ((signed = t.slice()), new Uint8Array(64)) });
    const fromText = tbsCertList({ ...params, revoked: revokedFromIndexText(index) });
    const fromEntries = tbsCertList({ ...params, revoked: revokedFromEntries(parseIndex(index)) });
    expect(Buffer.from(signed!).toString("hex")).toBe(Buffer.from(fromText).toString("hex"));
    expect(Buffer.from(fromEntries).toString("hex")).toBe(Buffer.from(fromText).toString("hex"));
    // holdInstructionCode 2.5.29.23 with holdInstructionReject; invalidityDate 2.5.29.24 GeneralizedTime
    expect(Buffer.from(signed!).toString("hex")).toContain(Buffer.from(der.seq(der.oid("2.5.29.23"), der.octets(der.oid("1.2.840.10040.2.3")))).toString("hex"));
    expect(Buffer.from(signed!).toString("hex")).toContain(Buffer.from("20241231000000Z").toString("hex"));
  });
  it("normalizeIndex drops a BOM and CRLF, and nothing else", () => {
    const t = LINES.join("\n") + "\n";
    expect(normalizeIndex(Buffer.from("\ufeff" + t.replace(/\n/g, "\r\n"))).toString()).toBe(t);
    expect(normalizeIndex(Buffer.from(t)).toString()).toBe(t);
  });
});
