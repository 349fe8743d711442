/**
 * core/status.ts statusOf: the one rule for the status of an index line
 * (list, show, status).
 */
import { describe, expect, it } from "vitest";
import type { IndexEntry } from "../../src/core/index-format.js";
import { statusOf } from "../../src/core/status.js";

const now = new Date("2026-06-01T12:00:00Z");
const entry = (status: IndexEntry["status"], expires: string): IndexEntry => ({ status, expires: new Date(expires), serial: "01", file: "unknown", subject: "/CN=x", ...(status === "R" ? { revokedAt: new Date("2026-05-01T00:00:00Z") } : {}) });

describe("statusOf", () => {
  it("V before notAfter is valid", () => expect(statusOf(entry("V", "2026-06-01T12:00:01Z"), now)).toBe("valid"));
  it("V at or past notAfter is expired (openssl ca -updatedb not run yet)", () => {
    expect(statusOf(entry("V", "2026-06-01T12:00:00Z"), now)).toBe("expired");
    expect(statusOf(entry("V", "2025-01-01T00:00:00Z"), now)).toBe("expired");
  });
  it("E is expired even before its date", () => expect(statusOf(entry("E", "2027-01-01T00:00:00Z"), now)).toBe("expired"));
  it("R is revoked, expired or not", () => {
    expect(statusOf(entry("R", "2027-01-01T00:00:00Z"), now)).toBe("revoked");
    expect(statusOf(entry("R", "2025-01-01T00:00:00Z"), now)).toBe("revoked");
  });
});
