/**
 * Mutated CSRs never get past checkCsr unless their signature still verifies,
 * and every failure is a typed PkiError (never a crash that would print a
 * stack trace or an INTERNAL error).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { checkCsr } from "../../src/ca/csr.js";
import { templateFromCsr } from "../../src/core/csr-policy.js";
import { PkiError } from "../../src/core/errors.js";
import { FIXTURES } from "../helpers.js";
import { builtinProfile } from "./build.js";

/** xorshift32: a fixed sequence, so a failure can be replayed */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

describe("CSR parsing under mutation", () => {
  for (const file of ["p256-san.der"]) {
    it(`${file}: 3000 mutations, only PkiErrors, never an unverified request accepted`, () => {
      const orig = new Uint8Array(fs.readFileSync(path.join(FIXTURES, "csr", file)));
      const rnd = prng(0xc0ffee);
      const profile = builtinProfile("ssl");
      const codes = new Map<string, number>();
      let accepted = 0;
      for (let i = 0; i < 3000; i++) {
        const m = Uint8Array.from(orig);
        const kind = rnd() % 3;
        let data: Uint8Array = m;
        if (kind === 0) m[rnd() % m.length] ^= 1 << rnd() % 8;
        else if (kind === 1) m[rnd() % m.length] = rnd() & 0xff;
        else data = m.subarray(0, rnd() % m.length);
        try {
          const c = checkCsr(data, "fuzz");
          templateFromCsr(c.csr, profile, {}, {});
          accepted++;
          // accepted: the bytes that were signed must be the original ones
          expect(Buffer.from(c.csr.info).equals(Buffer.from(checkCsr(orig, "orig").csr.info))).toBe(true);
        } catch (e) {
          if (!(e instanceof PkiError)) throw new Error(`mutation ${i} (kind ${kind}) escaped as ${(e as Error)?.constructor?.name}: ${(e as Error).message}`);
          expect(e.code).not.toBe("INTERNAL");
          codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
        }
      }
      expect(codes.get("BAD_CSR_SIGNATURE")).toBeGreaterThan(0);
      expect(codes.get("BAD_INPUT")).toBeGreaterThan(0);
      expect(accepted).toBeLessThan(3000);
    });
  }
});
