import { describe, expect, it } from "vitest";
import { leafDays } from "../../src/core/profiles.js";
import { PkiError } from "../../src/core/errors.js";

describe("leafDays: the validity of a leaf (issue, sign-csr, renew)", () => {
  const p = { name: "short", days: 30, maxDays: 90 };
  it("--days wins, up to the profile's maxDays", () => {
    expect(leafDays(p, 90, 400)).toBe(90);
    expect(leafDays(p, 1, 400)).toBe(1);
  });
  it("refuses --days above maxDays with POLICY_DENIED naming both", () => {
    let err: unknown;
    try {
      leafDays(p, 91, 400);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PkiError);
    expect((err as PkiError).code).toBe("POLICY_DENIED");
    expect((err as PkiError).message).toBe('profile "short" allows at most 90 days, not 91');
  });
  it("without --days: the profile's days, else the CA's defaultDays, else 365", () => {
    expect(leafDays(p, undefined, 400)).toBe(30);
    expect(leafDays({ name: "x" }, undefined, 400)).toBe(400);
    expect(leafDays({ name: "x" }, undefined, undefined)).toBe(365);
    // no maxDays: any --days the option parser let through
    expect(leafDays({ name: "x" }, 36500, undefined)).toBe(36500);
  });
});
