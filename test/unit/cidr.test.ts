/** One CIDR parser (core/names.ts) for the name policy and name constraints: the strict one. */
import { describe, expect, it } from "vitest";
import { ipInCidr, parseCidr } from "../../src/core/names.js";
import { validateNamePolicy } from "../../src/core/csr-policy.js";

describe("parseCidr", () => {
  it("reads a range or a bare address, host bits cleared", () => {
    expect(parseCidr("10.1.2.3/8")).toEqual({ net: Uint8Array.from([10, 0, 0, 0]), bits: 8 });
    expect(parseCidr("192.168.1.7")).toEqual({ net: Uint8Array.from([192, 168, 1, 7]), bits: 32 });
    expect(parseCidr("fd00::/8")?.bits).toBe(8);
  });

  it.each(["10.0.0.0/", "10.0.0.0/8/9", "10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/0x8", "10.0.0.0/33", "::/129", "x/8"])("refuses %s", (v) => {
    expect(parseCidr(v)).toBeNull();
    expect(ipInCidr("10.0.0.1", v)).toBe(false);
  });

  it("a name policy refuses an empty prefix length instead of reading it as /0 (everything)", () => {
    expect(() => validateNamePolicy({ client: { ip: ["10.0.0.0/"] } })).toThrow(/not a CIDR range/);
  });
});
