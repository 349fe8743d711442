/** core/suggest.ts: "did you mean" for a mistyped profile name. */
import { describe, expect, it } from "vitest";
import { closest, didYouMean, editDistance } from "../../src/core/suggest.js";

const PROFILES = ["client", "code-signing", "ocsp", "server", "ssl"];

describe("did you mean", () => {
  it("counts insertions, deletions, changes and adjacent swaps as one edit each", () => {
    expect(editDistance("client", "client")).toBe(0);
    expect(editDistance("clint", "client")).toBe(1);
    expect(editDistance("clinet", "client")).toBe(1);
    expect(editDistance("sever", "server")).toBe(1);
    expect(editDistance("", "ssl")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  it("suggests the nearest profile within reach, case aside, and nothing for a word far from all", () => {
    expect(closest("clint", PROFILES)).toBe("client");
    expect(closest("Clinet", PROFILES)).toBe("client");
    expect(closest("serv", PROFILES)).toBeUndefined(); // 2 edits, a 4-letter word allows 1
    expect(closest("servr", PROFILES)).toBe("server");
    expect(closest("codesigning", PROFILES)).toBe("code-signing");
    expect(closest("sl", PROFILES)).toBe("ssl");
    expect(closest("vpn", PROFILES)).toBeUndefined();
    expect(didYouMean("clint", PROFILES)).toBe(' (did you mean "client"?)');
    expect(didYouMean("vpn", PROFILES)).toBe("");
  });
});
