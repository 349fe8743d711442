import { describe, expect, it } from "vitest";
import { commonNameKey, entriesOfName, liveMatching, parseSubjectQuery, subjectMatches } from "../../src/core/subject-match.js";
import { parseOnelineDn } from "../../src/core/dn-format.js";
import { parseDn } from "../../src/core/names.js";
import type { IndexEntry } from "../../src/core/index-format.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const LATER = new Date("2027-06-01T00:00:00Z");
const EARLIER = new Date("2026-01-01T00:00:00Z");
const entry = (serial: string, subject: string, over: Partial<IndexEntry> = {}): IndexEntry => ({ status: "V", expires: LATER, serial, file: "unknown", subject, ...over });

describe("parseSubjectQuery", () => {
  it("a CN alone: CN=x, a bare value, the slash form", () => {
    expect(parseSubjectQuery("CN=agent2.example.lan")).toMatchObject({ kind: "cn", cn: "agent2.example.lan" });
    expect(parseSubjectQuery("agent2.example.lan")).toMatchObject({ kind: "cn", cn: "agent2.example.lan" });
    expect(parseSubjectQuery("/CN=agent2")).toMatchObject({ kind: "cn", cn: "agent2" });
    expect(parseSubjectQuery("cn = agent2")).toMatchObject({ kind: "cn", cn: "agent2" });
  });
  it("a DN: several attributes in any written form", () => {
    expect(parseSubjectQuery("CN=a,O=Acme").kind).toBe("dn");
    expect(parseSubjectQuery("/O=Acme/CN=a").kind).toBe("dn");
    expect(() => parseSubjectQuery("CN=a,Bogus=1")).toThrow(/unknown subject attribute/);
    expect(() => parseSubjectQuery("CN=")).toThrow();
  });
});

describe("subjectMatches", () => {
  const subject = parseDn("O=Acme,OU=Agents,CN=agent2.example.lan");
  it("DN: same attributes in any order, case-insensitive values; an extra or missing attribute is no match", () => {
    expect(subjectMatches(parseSubjectQuery("CN=agent2.example.lan,OU=Agents,O=Acme"), subject)).toBe(true);
    expect(subjectMatches(parseSubjectQuery("O=ACME, OU=agents, CN=Agent2.example.lan"), subject)).toBe(true);
    expect(subjectMatches(parseSubjectQuery("CN=agent2.example.lan,O=Acme"), subject)).toBe(false);
    expect(subjectMatches(parseSubjectQuery("CN=agent2.example.lan,OU=Agents,O=Acme,C=FR"), subject)).toBe(false);
    expect(subjectMatches(parseSubjectQuery("CN=agent3.example.lan,OU=Agents,O=Acme"), subject)).toBe(false);
  });
  it("CN: the last CN only, whatever else", () => {
    expect(subjectMatches(parseSubjectQuery("CN=AGENT2.example.lan"), subject)).toBe(true);
    expect(subjectMatches(parseSubjectQuery("agent2.example"), subject)).toBe(false);
    expect(subjectMatches(parseSubjectQuery("CN=x"), parseDn("O=Acme"))).toBe(false);
  });
  it("commonNameKey: the same CN compares equal, no CN is no key", () => {
    expect(commonNameKey(parseDn("CN=a,O=x"))).toBe(commonNameKey(parseDn("O=y,CN=A")));
    expect(commonNameKey(parseDn("CN=a,O=x"))).not.toBe(commonNameKey(parseDn("CN=b,O=x")));
    expect(commonNameKey(parseDn("O=x"))).toBeUndefined();
  });
});

describe("liveMatching and entriesOfName", () => {
  const idx = [
    entry("01", "/O=Acme/CN=a"),
    entry("02", "/O=Acme/CN=a", { status: "R", revokedAt: EARLIER }),
    entry("03", "/O=Acme/CN=a", { expires: EARLIER }),
    entry("04", "/O=Other/CN=a"),
    entry("05", "/O=Acme/CN=b"),
  ];
  it("only valid, unexpired entries match", () => {
    const of = (q: string) => liveMatching(idx, parseSubjectQuery(q), NOW, (e) => parseOnelineDn(e.subject)).map((e) => e.serial);
    expect(of("CN=a")).toEqual(["01", "04"]);
    expect(of("CN=a,O=Acme")).toEqual(["01"]);
    expect(of("CN=c")).toEqual([]);
  });
  it("splits a name's history into live, revoked, expired", () => {
    const names: Record<string, string> = { "01": "a", "02": "a", "03": "a", "05": "b" };
    const r = entriesOfName(idx, (s) => names[s], "a", NOW);
    expect([r.live, r.revoked, r.expired].map((l) => l.map((e) => e.serial))).toEqual([["01"], ["02"], ["03"]]);
    expect(entriesOfName(idx, (s) => names[s], "zz", NOW).live).toEqual([]);
  });
});
