import * as crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { newSerial, normaliseSerial, serialHex, SERIAL_BYTES } from "../../src/core/serial.js";
import * as der from "../../src/core/der.js";

const random = (n: number) => new Uint8Array(crypto.randomBytes(n));

describe("serial numbers", () => {
  it("are 17 octets, positive, first octet 0x40-0x7F, a 17-octet DER INTEGER, 34 upper-case hex digits", () => {
    expect(SERIAL_BYTES).toBe(17);
    for (let i = 0; i < 500; i++) {
      const s = newSerial(random, new Set());
      expect(s).toHaveLength(17);
      expect(s[0]).toBeGreaterThanOrEqual(0x40);
      expect(s[0]).toBeLessThanOrEqual(0x7f);
      const enc = der.integer(s);
      // tag, length 17, then the octets themselves: no leading 00 (positive without padding), never negative
      expect(enc[0]).toBe(0x02);
      expect(enc[1]).toBe(17);
      expect(enc[2]! & 0x80).toBe(0);
      expect(Buffer.from(enc.subarray(2)).equals(Buffer.from(s))).toBe(true);
      const hex = serialHex(s);
      expect(hex).toMatch(/^[4-7][0-9A-F]{33}$/);
      // OpenSSL's spelling: what `openssl x509 -serial` prints and our certs/<SERIAL>.pem name
      expect(normaliseSerial(hex)).toBe(hex);
    }
  });

  it("carry at least 127 random bits: every one of the 134 free bit positions takes both values", () => {
    const ones = new Array(SERIAL_BYTES * 8).fill(0);
    const N = 2000;
    for (let i = 0; i < N; i++) {
      const s = newSerial(random, new Set());
      for (let b = 0; b < SERIAL_BYTES * 8; b++) if (s[b >> 3]! & (0x80 >> (b & 7))) ones[b]++;
    }
    // bit 0 (sign) is always 0, bit 1 always 1: the 0x40-0x7F rule
    expect(ones[0]).toBe(0);
    expect(ones[1]).toBe(N);
    const free = ones.slice(2);
    expect(free).toHaveLength(134);
    // a fair bit is 1 in 2000 draws between 800 and 1200 times with overwhelming probability
    for (const c of free) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1200);
    }
  });

  it("are unique against the serials already taken", () => {
    const first = Uint8Array.from({ length: 17 }, (_, i) => i + 0x41);
    const second = Uint8Array.from({ length: 17 }, (_, i) => i + 0x42);
    const queue = [first, first, second];
    const src = (n: number) => {
      expect(n).toBe(17);
      return Uint8Array.from(queue.shift()!);
    };
    const taken = new Set([serialHex(first)]);
    expect(serialHex(newSerial(src, taken))).toBe(serialHex(second));
    expect(queue).toHaveLength(0);
  });

  it("fail loudly when the random source keeps returning taken serials", () => {
    const stuck = () => Uint8Array.from({ length: 17 }, () => 0x55);
    expect(() => newSerial(stuck, new Set([serialHex(newSerial(stuck, new Set()))]))).toThrow(/random source/);
  });

  it("normaliseSerial: the spellings users type become OpenSSL's", () => {
    expect(normaliseSerial("0x4a:1b:2c")).toBe("4A1B2C");
    expect(normaliseSerial("4a 1b 2c")).toBe("4A1B2C");
    expect(normaliseSerial("abc")).toBe("0ABC");
    expect(normaliseSerial("0001")).toBe("01");
    expect(normaliseSerial("00")).toBe("00");
    expect(normaliseSerial("4G")).toBeNull();
    expect(normaliseSerial("")).toBeNull();
  });
});
