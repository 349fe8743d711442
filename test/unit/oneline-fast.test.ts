// The fast readers of index lines (issue 17: sign-csr on a CA of 100,000
// valid certificates took 3 s, most of it reading every subject) give what
// the plain readers give: parseOnelineDn's fast path, onelineCommonName, and
// parseLine / parseTime without split() and regular expressions.
import { describe, expect, it } from "vitest";
import { onelineCommonName, parseOnelineDn } from "../../src/core/dn-format.js";
import { parseLine, parseTime } from "../../src/core/index-format.js";
import { commonName, onelineDn, type Rdn } from "../../src/core/names.js";
import { commonNameKey, onelineCommonNameKey } from "../../src/core/subject-match.js";

const CN = "2.5.4.3";
const O = "2.5.4.10";

/** parseOnelineDn as it was (a TextEncoder per character): the reference. */
function referenceParse(s: string): Rdn[] {
  const out: Rdn[] = [];
  for (const part of s.split("/")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const key = part.slice(0, eq);
    const bytes: number[] = [];
    const v = part.slice(eq + 1);
    for (let i = 0; i < v.length; i++) {
      const m = /^\\x([0-9A-Fa-f]{2})/.exec(v.slice(i, i + 4));
      if (m) {
        bytes.push(parseInt(m[1]!, 16));
        i += 3;
      } else bytes.push(...new TextEncoder().encode(v[i]!));
    }
    out.push({ type: parseOnelineDn(`/${key}=x`)[0]!.type, value: new TextDecoder().decode(new Uint8Array(bytes)) });
  }
  return out;
}

const subjects = [
  "/O=Acme/CN=web1",
  "/CN=a/O=b/CN=last",
  "/O=no common name",
  "",
  "/",
  "//CN=x//",
  "/=x/CN=y/junk",
  "/2.5.4.3=by oid",
  "/CN=",
  "/CN=a=b",
  "/CN=\\xC3\\xA9t\\xC3\\xA9",
  "/CN=half \\x4 and \\xZZ and \\",
  "/CN=raw é and 日本",
  "/CN=emoji 🔐 raw",
  "/CN=lone \ud83d surrogate",
  "/O=R\\x2FD/CN=a\\x2FCN=admin",
  "/CN=  Spaced   Out  ",
  onelineDn([{ type: O, value: "Société Générale" }, { type: CN, value: "日本語 ✓ 🔐" }]),
  onelineDn([{ type: CN, value: "back\\slash\\x2F" }, { type: O, value: "tab\there" }]),
];

describe("oneline subjects, fast", () => {
  it("parseOnelineDn gives what the per-character reader gave", () => {
    for (const s of subjects) expect(parseOnelineDn(s), s).toEqual(referenceParse(s));
  });

  it("onelineCommonName is the last CN of parseOnelineDn; its key is commonNameKey's", () => {
    for (const s of subjects) {
      expect(onelineCommonName(s), s).toBe(commonName(parseOnelineDn(s)));
      expect(onelineCommonNameKey(s), s).toBe(commonNameKey(parseOnelineDn(s)));
    }
    expect(onelineCommonName("/CN=a/O=b/CN=last")).toBe("last");
    expect(onelineCommonName("/2.5.4.3=by oid")).toBe("by oid");
    expect(onelineCommonNameKey("/CN=  Spaced   Out  ")).toBe("spaced out");
    expect(onelineCommonName("/O=R\\x2FD/CN=a\\x2FCN=admin")).toBe("a/CN=admin");
  });
});

describe("index lines, fast", () => {
  it("parseTime reads both forms by hand, as the regular expressions did", () => {
    expect(parseTime("491231235959Z")?.toISOString()).toBe("2049-12-31T23:59:59.000Z");
    expect(parseTime("500101000000Z")?.toISOString()).toBe("1950-01-01T00:00:00.000Z");
    expect(parseTime("20610708091011Z")?.toISOString()).toBe("2061-07-08T09:10:11.000Z");
    for (const t of ["", "Z", "2601010000Z", "260101000000", "2601010000a0Z", "26010100000\u0660Z", "260101000000z", "2026010100000Z", "202601010000000Z", "+60101000000Z"]) expect(parseTime(t), t).toBeNull();
  });

  it("parseLine: the same entries and the same refusals", () => {
    const ok = "R\t351231235959Z\t250601120000Z,keyCompromise\t0A1B\tunknown\t/O=Bench/CN=a\tb";
    expect(() => parseLine(ok, 3)).toThrow(/line 3: expected 6 tab-separated fields, found 7/);
    expect(() => parseLine("V\t351231235959Z\t\t0A1B\tunknown", 4)).toThrow(/line 4: expected 6 tab-separated fields, found 5/);
    expect(() => parseLine("", 5)).toThrow(/found 1/);
    expect(() => parseLine("X\t351231235959Z\t\t0A\tunknown\t/CN=a")).toThrow(/unknown status "X"/);
    for (const serial of ["", "0", "0a", "0G", "ABC"]) expect(() => parseLine(`V\t351231235959Z\t\t${serial}\tunknown\t/CN=a`), serial).toThrow(/bad serial/);
    expect(() => parseLine("R\t351231235959Z\tnope\t0A\tunknown\t/CN=a")).toThrow(/CA_INVALID|revocation|line/);
    expect(parseLine("V\t351231235959Z\t\t0A1B\tunknown\t/O=Bench/CN=a")).toEqual({ status: "V", expires: new Date("2035-12-31T23:59:59Z"), serial: "0A1B", file: "unknown", subject: "/O=Bench/CN=a" });
    // a V line's third field is not read (OpenSSL leaves it empty)
    expect(parseLine("V\t351231235959Z\tjunk\t0A1B\tunknown\t/CN=a").status).toBe("V");
    expect(parseLine("R\t351231235959Z\t250601120000Z,keyCompromise\t0A1B\tunknown\t/CN=a")).toMatchObject({ status: "R", revokedAt: new Date("2025-06-01T12:00:00Z"), reason: "keyCompromise" });
  });
});
