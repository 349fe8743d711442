/**
 * ca/target.ts, the one target resolver: its pure parts on a fixed index
 * (which line a name stands for, what `revoke <name>` picks), and the
 * file-or-name rule.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { PkiError } from "../../src/core/errors.js";
import { formatIndex, type IndexEntry, type MetaEntry } from "../../src/core/index-format.js";
import { currentOfName, isFileTarget, namedEntries, revocableOfName } from "../../src/ca/target.js";
import { tmpdir } from "../helpers.js";

const now = new Date("2026-06-01T12:00:00Z");
const day = (d: number) => new Date(Math.floor((now.getTime() + d * 86_400_000) / 1000) * 1000);
const line = (serial: string, status: "V" | "R", expiresIn: number): IndexEntry => ({ status, expires: day(expiresIn), serial, file: "unknown", subject: `/CN=${serial}`, ...(status === "R" ? { revokedAt: day(-1) } : {}) });
const meta = (rows: Array<[string, string]>): Map<string, MetaEntry> => new Map(rows.map(([serial, name]) => [serial, { serial, profile: "client", name }]));

describe("namedEntries", () => {
  it("finds a name's lines in index order, whatever order index.meta lists them in", () => {
    const index = Buffer.from(formatIndex([line("0A", "R", 30), line("0B", "V", 10), line("0C", "V", 20), line("0D", "V", 40)]));
    const named = namedEntries(index, meta([["0C", "web"], ["0D", "db"], ["0A", "web"], ["0E", "web"]]), "web");
    expect(named.entries.map((e) => e.serial)).toEqual(["0A", "0C"]);
    expect(named.serials).toEqual(["0C", "0A", "0E"]);
  });
});

describe("currentOfName (show, verify, renew, export p12)", () => {
  it("the last valid, unexpired certificate; else the last line; else the last serial index.meta names", () => {
    expect(currentOfName({ entries: [line("01", "V", 10), line("02", "V", 20), line("03", "R", 30)], serials: [] }, now)).toBe("02");
    expect(currentOfName({ entries: [line("01", "V", -10), line("02", "R", 20)], serials: [] }, now)).toBe("02");
    expect(currentOfName({ entries: [], serials: ["07", "08"] }, now)).toBe("08");
    expect(currentOfName({ entries: [], serials: [] }, now)).toBeUndefined();
  });
});

describe("revocableOfName (revoke <name>)", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return [(e as PkiError).code, (e as Error).message];
    }
    return null;
  };
  it("the one valid certificate, an unexpired one first", () => {
    expect(revocableOfName("web", [line("01", "R", 10), line("02", "V", 20)], now).serial).toBe("02");
    expect(revocableOfName("web", [line("01", "V", -5), line("02", "V", 20)], now).serial).toBe("02");
    expect(revocableOfName("web", [line("01", "V", -5)], now).serial).toBe("01");
  });
  it("refuses a name with nothing valid, and one with several valid certificates (give the serial)", () => {
    expect(code(() => revocableOfName("web", [line("01", "R", 10)], now))).toEqual(["ALREADY_REVOKED", `"web" holds no valid certificate: serial 01 was already revoked on ${day(-1).toISOString()}`]);
    expect(code(() => revocableOfName("web", [line("01", "V", 10), line("02", "V", 20)], now))).toEqual(["BAD_INPUT", `"web" holds 2 valid certificates (serials 01, 02): revoke one by its serial, or all with --all-of web`]);
  });
});

describe("isFileTarget", () => {
  it("a path with a slash is a file, existing or not; a bare word only when it is a regular file", () => {
    const dir = tmpdir("pki-target-");
    fs.writeFileSync(path.join(dir, "web1"), "x");
    fs.mkdirSync(path.join(dir, "adir"));
    expect(isFileTarget("./no-such-file.pem")).toBe(true);
    expect(isFileTarget("/dev/zero")).toBe(true);
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      expect(isFileTarget("web1")).toBe(true);
      expect(isFileTarget("adir")).toBe(false);
      expect(isFileTarget("web2")).toBe(false);
      expect(isFileTarget("4A1F")).toBe(false);
    } finally {
      process.chdir(cwd);
    }
  });
});
