import { describe, expect, it } from "vitest";
import * as der from "../../src/core/der.js";

const ascii = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("DER time (RFC 5280 4.1.2.5)", () => {
  it.each([
    ["2026-11-22T15:04:05.999Z", der.TAG.UTCTime, "261122150405Z"],
    ["2049-12-31T23:59:59Z", der.TAG.UTCTime, "491231235959Z"],
    ["2050-01-01T00:00:00Z", der.TAG.GeneralizedTime, "20500101000000Z"],
    ["1950-01-01T00:00:00Z", der.TAG.UTCTime, "500101000000Z"],
    ["1949-12-31T23:59:59Z", der.TAG.GeneralizedTime, "19491231235959Z"],
    ["9999-12-31T23:59:59Z", der.TAG.GeneralizedTime, "99991231235959Z"],
  ])("%s -> tag %i %s, and read back (seconds precision)", (iso, tag, text) => {
    const enc = der.time(new Date(iso));
    expect(enc[0]).toBe(tag);
    expect(enc[1]).toBe(text.length);
    expect(ascii(enc.subarray(2))).toBe(text);
    const back = der.readTime(enc, der.read(enc));
    expect(back.getTime()).toBe(Math.floor(new Date(iso).getTime() / 1000) * 1000);
  });

  it("refuses times with fractions or offsets when reading", () => {
    for (const [tag, s] of [[0x17, "2611221504Z"], [0x17, "261122150405+0100"], [0x18, "20261122150405.5Z"], [0x18, "261122150405Z"]] as const) {
      const enc = der.tlv(tag, der.utf8(s));
      expect(() => der.readTime(enc, der.read(enc))).toThrow(der.DerError);
    }
  });
});

describe("DER basics", () => {
  it("INTEGER: minimal, positive", () => {
    expect(der.toHex(der.integer(0))).toBe("020100");
    expect(der.toHex(der.integer(127))).toBe("02017F");
    expect(der.toHex(der.integer(128))).toBe("02020080");
    expect(der.toHex(der.integer(600000))).toBe("02030927C0");
    expect(der.toHex(der.integer(Uint8Array.of(0, 0, 0x80)))).toBe("02020080");
    expect(der.toHex(der.integer(Uint8Array.of(0, 0, 1)))).toBe("020101");
  });
  it("lengths: short and long form", () => {
    expect(der.toHex(der.lengthBytes(127))).toBe("7F");
    expect(der.toHex(der.lengthBytes(128))).toBe("8180");
    expect(der.toHex(der.lengthBytes(65536))).toBe("83010000");
    const big = der.octets(new Uint8Array(300));
    const n = der.read(big);
    expect(n.end - n.contentStart).toBe(300);
  });
  it("OIDs encode and read back", () => {
    for (const o of ["2.5.29.19", "1.2.840.113549.1.1.11", "1.3.6.1.4.1.311.10.3.12", "2.999.3"]) {
      const enc = der.oid(o);
      expect(der.readOid(enc, der.read(enc))).toBe(o);
    }
    expect(der.toHex(der.oid("1.2.840.10045.4.3.2"))).toBe("06082A8648CE3D040302");
  });
  it("the reader refuses truncated input", () => {
    const s = der.seq(der.integer(5), der.utf8(""));
    expect(() => der.read(s.subarray(0, s.length - 1))).toThrow(der.DerError);
    expect(() => der.read(Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff))).toThrow(der.DerError);
    expect(() => der.read(Uint8Array.of(0x30))).toThrow(der.DerError);
  });
});
