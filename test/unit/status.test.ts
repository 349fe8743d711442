/**
 * core/status.ts alone: what `pki status --fail-within` calls due. This CA's
 * own CRL lives 7 days by default and pki-crl.timer re-signs it 2 days ahead,
 * so it is judged by its own margin (a quarter of its lifetime, at most one
 * day), not by a 14-day window that every healthy CRL falls into.
 */
import { describe, expect, it } from "vitest";
import { assess, crlMarginDays, type StatusItem } from "../../src/core/status.js";

const DAY = 86_400_000;
const now = new Date("2026-06-01T00:00:00Z");
const at = (days: number) => new Date(now.getTime() + days * DAY);
const crl = (name: string, thisDays: number, nextDays: number): StatusItem => ({
  kind: "crl",
  name,
  serial: null,
  subject: null,
  profile: null,
  status: nextDays > 0 ? "valid" : "expired",
  notAfter: at(nextDays),
  ...(name === "crl" ? { marginDays: crlMarginDays(at(thisDays), at(nextDays)) } : {}),
});
const cert = (name: string, days: number): StatusItem => ({ kind: "certificate", name, serial: "01", subject: "CN=x", profile: "client", status: "valid", notAfter: at(days) });
const due = (items: StatusItem[], within: number) => assess(items, now, within).due.map((i) => i.name);

describe("status: what is due", () => {
  it("a healthy 7-day CRL is not due in a 14-day window; a certificate within it is", () => {
    expect(due([crl("crl", -1, 6), cert("alice", 10), cert("bob", 20)], 14)).toEqual(["alice"]);
  });

  it("this CA's CRL is due within a quarter of its lifetime, at most one day, or once expired", () => {
    expect(crlMarginDays(at(0), at(7))).toBe(1);
    expect(crlMarginDays(at(0), at(2))).toBe(0.5);
    expect(due([crl("crl", -6.5, 0.5)], 14)).toEqual(["crl"]);
    expect(due([crl("crl", -5, 2)], 14)).toEqual([]);
    expect(due([crl("crl", -8, -1)], 0)).toEqual(["crl"]);
    // a shorter window still applies
    expect(due([crl("crl", -6.5, 0.5)], 0)).toEqual([]);
  });

  it("the parent's CRL (refreshed by hand from the offline root) is judged by the whole window", () => {
    expect(due([crl("parent-crl", -20, 10)], 14)).toEqual(["parent-crl"]);
    expect(due([crl("parent-crl", -20, 30)], 14)).toEqual([]);
  });
});
