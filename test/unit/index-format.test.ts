import { describe, expect, it } from "vitest";
import { formatIndex, formatLine, formatMeta, formatTime, parseIndex, parseLine, parseMeta, parseTime, type IndexEntry } from "../../src/core/index-format.js";
import { onelineDn, parseDn, type Rdn } from "../../src/core/names.js";
import { PkiError } from "../../src/core/errors.js";

const CN = "2.5.4.3";
const O = "2.5.4.10";
const entry = (subject: string, over: Partial<IndexEntry> = {}): IndexEntry => ({
  status: "V",
  expires: new Date("2027-03-04T05:06:07Z"),
  serial: "4A1B2C3D4E5F60718293A4B5C6D7E8F901",
  file: "unknown",
  subject,
  ...over,
});

describe("index.txt line format", () => {
  it("is OpenSSL's: six tab-separated fields", () => {
    expect(formatLine(entry("/O=Acme/CN=web1"))).toBe("V\t270304050607Z\t\t4A1B2C3D4E5F60718293A4B5C6D7E8F901\tunknown\t/O=Acme/CN=web1");
    expect(
      formatLine(entry("/CN=x", { status: "R", revokedAt: new Date("2026-11-22T10:00:00Z"), reason: "keyCompromise" })),
    ).toBe("R\t270304050607Z\t261122100000Z,keyCompromise\t4A1B2C3D4E5F60718293A4B5C6D7E8F901\tunknown\t/CN=x");
    // unspecified: no reason written (RFC 5280 5.3.1), and read back as absent
    const l = formatLine(entry("/CN=x", { status: "R", revokedAt: new Date("2026-11-22T10:00:00Z"), reason: "unspecified" }));
    expect(l.split("\t")[2]).toBe("261122100000Z");
    expect(parseLine(l).reason).toBeUndefined();
    // OpenSSL's spelling of caCompromise
    expect(formatLine(entry("/CN=x", { status: "R", revokedAt: new Date("2026-11-22T10:00:00Z"), reason: "caCompromise" })).split("\t")[2]).toBe("261122100000Z,CACompromise");
  });

  const awkward: Array<[string, Rdn[]]> = [
    ["a slash", [{ type: O, value: "R/D" }, { type: CN, value: "a/CN=admin" }]],
    ["a tab", [{ type: CN, value: "tab\there" }]],
    ["a newline", [{ type: CN, value: "line\nV\t491231235959Z\t\t01\tunknown\t/CN=forged" }]],
    ["a carriage return", [{ type: CN, value: "cr\rhere" }]],
    ["a backslash", [{ type: CN, value: "back\\slash\\x2F" }]],
    ["UTF-8", [{ type: O, value: "Société Générale" }, { type: CN, value: "日本語 ✓ 🔐" }]],
    ["a comma and a plus", [{ type: CN, value: "Doe, John + Jane" }]],
    ["an equals sign", [{ type: CN, value: "a=b" }]],
  ];
  for (const [what, rdns] of awkward) {
    it(`keeps a subject with ${what} on one line and round-trips it`, () => {
      const subject = onelineDn(rdns);
      expect(subject).not.toMatch(/[\t\r\n]/);
      expect(subject).toMatch(/^[\x20-\x7e]+$/); // printable ASCII only, as OpenSSL writes it
      const e = entry(subject);
      const line = formatLine(e);
      expect(line.split("\t")).toHaveLength(6);
      expect(parseLine(line)).toEqual(e);
      const two = formatIndex([e, entry("/CN=next", { serial: "01" })]);
      expect(two.split("\n")).toHaveLength(3);
      expect(parseIndex(two)).toEqual([e, entry("/CN=next", { serial: "01" })]);
    });
  }

  it("onelineDn: OpenSSL's \\xHH escapes, and distinct subjects stay distinct", () => {
    expect(onelineDn([{ type: "2.5.4.6", value: "FR" }, { type: O, value: "Acme" }, { type: CN, value: "web1" }])).toBe("/C=FR/O=Acme/CN=web1");
    expect(onelineDn([{ type: CN, value: "é" }])).toBe("/CN=\\xC3\\xA9");
    expect(onelineDn([{ type: CN, value: "a/b" }])).toBe("/CN=a\\x2Fb");
    expect(onelineDn([{ type: CN, value: "a\\b" }])).toBe("/CN=a\\x5Cb");
    const one = onelineDn([{ type: CN, value: "a/CN=b" }]);
    const two = onelineDn([{ type: CN, value: "a" }, { type: CN, value: "b" }]);
    expect(one).not.toBe(two);
    expect(onelineDn([{ type: CN, value: "\\x2F" }])).not.toBe(onelineDn([{ type: CN, value: "/" }]));
    expect(onelineDn(parseDn("CN=x,1.2.3.4=y"))).toBe("/CN=x/1.2.3.4=y");
  });

  it("refuses to write a field that would break the line", () => {
    expect(() => formatLine(entry("/CN=a\tb"))).toThrow();
    expect(() => formatLine(entry("/CN=a\nb"))).toThrow();
    expect(() => formatLine(entry("/CN=x", { status: "R" }))).toThrow(/revocation time/);
  });

  it("rejects malformed lines with CA_INVALID, naming the line", () => {
    const bad = [
      "V\t270304050607Z\t\t01\tunknown",
      "X\t270304050607Z\t\t01\tunknown\t/CN=a",
      "V\t2703040506Z\t\t01\tunknown\t/CN=a",
      "V\t270304050607Z\t\t1\tunknown\t/CN=a",
      "V\t270304050607Z\t\t0g\tunknown\t/CN=a",
      "R\t270304050607Z\t\t01\tunknown\t/CN=a",
      "R\t270304050607Z\t261122100000Z,becauseISaidSo\t01\tunknown\t/CN=a",
    ];
    for (const l of bad) {
      let err: unknown;
      try {
        parseLine(l, 7);
      } catch (e) {
        err = e;
      }
      expect(err, l).toBeInstanceOf(PkiError);
      expect((err as PkiError).code).toBe("CA_INVALID");
      expect((err as PkiError).message).toContain("line 7");
    }
  });

  it("reads every reason spelling OpenSSL writes", () => {
    for (const r of ["keyCompromise", "CACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "unspecified"]) {
      const e = parseLine(`R\t270304050607Z\t261122100000Z,${r}\t01\tunknown\t/CN=a`);
      expect(e.status).toBe("R");
      expect(e.revokedAt?.toISOString()).toBe("2026-11-22T10:00:00.000Z");
    }
  });
});

describe("index times: UTCTime before 2050, GeneralizedTime from 2050", () => {
  it.each([
    ["2049-12-31T23:59:59Z", "491231235959Z"],
    ["2050-01-01T00:00:00Z", "20500101000000Z"],
    ["2026-02-03T04:05:06Z", "260203040506Z"],
    ["1950-01-01T00:00:00Z", "500101000000Z"],
    ["1949-12-31T23:59:59Z", "19491231235959Z"],
    ["9999-12-31T23:59:59Z", "99991231235959Z"],
  ])("%s -> %s and back", (iso, text) => {
    expect(formatTime(new Date(iso))).toBe(text);
    expect(parseTime(text)?.toISOString()).toBe(new Date(iso).toISOString());
  });

  it("a certificate expiring after 2049 round-trips through a line", () => {
    const e = entry("/CN=long", { expires: new Date("2061-07-08T09:10:11Z") });
    const line = formatLine(e);
    expect(line.split("\t")[1]).toBe("20610708091011Z");
    expect(parseLine(line)).toEqual(e);
  });

  it("rejects times that are neither form", () => {
    for (const t of ["", "2601010000Z", "260101000000", "260101000000+0100", "2026010100000Z"]) expect(parseTime(t)).toBeNull();
  });
});

describe("index.meta", () => {
  it("round-trips profile and name; '-' means no name", () => {
    const text = formatMeta({ serial: "4A01", profile: "server", name: "web1" }) + formatMeta({ serial: "4A02", profile: "ssl" });
    expect(text).toBe("4A01\tserver\tweb1\n4A02\tssl\t-\n");
    const m = parseMeta(text);
    expect(m.get("4A01")).toEqual({ serial: "4A01", profile: "server", name: "web1" });
    expect(m.get("4A02")).toEqual({ serial: "4A02", profile: "ssl", name: undefined });
    expect(() => formatMeta({ serial: "01", profile: "a\tb" })).toThrow();
  });
});
