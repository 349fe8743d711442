/**
 * pemBlockDer (core/pem.ts): the byte-level PEM reader for large blocks
 * agrees with parsePemBlocks on good input, and gives up (null: the caller
 * then uses parsePemBlocks, which names the damage) on anything else.
 */
import * as crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import { parsePemBlocks, pemBlockDer, pemBlockDerInPlace, toPem } from "../../src/core/pem.js";

describe("pemBlockDer", () => {
  it("decodes what parsePemBlocks decodes: every length, LF and CRLF, text around the block", () => {
    for (const n of [0, 1, 2, 3, 47, 48, 49, 1000, 100_003]) {
      const der = new Uint8Array(crypto.randomBytes(n));
      const pem = "issuer text\n" + toPem("X509 CRL", der) + "trailing\n";
      for (const text of [pem, pem.replace(/\n/g, "\r\n")]) {
        const fast = pemBlockDer(Buffer.from(text), "X509 CRL");
        expect(fast).toEqual(parsePemBlocks(text).find((b) => b.label === "X509 CRL")!.der);
      }
    }
  });

  it("the first block of that label, not another label's", () => {
    const a = new Uint8Array([1, 2, 3]);
    const b = new Uint8Array([4, 5, 6]);
    const text = toPem("CERTIFICATE", a) + toPem("X509 CRL", b) + toPem("X509 CRL", a);
    expect(pemBlockDer(Buffer.from(text), "X509 CRL")).toEqual(b);
  });

  it("null for no block, no end line, a header, a stray character, or data after the padding", () => {
    for (const text of notPlain()) expect(pemBlockDer(Buffer.from(text), "X509 CRL"), text).toBeNull();
  });
});

/** PEM texts pemBlockDer must refuse: no block, no end line, a header, a stray character, data after the padding. */
function notPlain(): string[] {
  const good = toPem("X509 CRL", new Uint8Array(crypto.randomBytes(40)));
  return [
    "",
    toPem("CERTIFICATE", new Uint8Array([1])),
    good.replace("-----END X509 CRL-----", ""),
    good.replace("-----BEGIN X509 CRL-----\n", "-----BEGIN X509 CRL-----\nProc-Type: 4,ENCRYPTED\n\n"),
    // a stray character at the start of the first data line (whatever that line starts with: a random
    // first character of "+" or "/" left the text unchanged, and valid, once in 32 runs)
    good.replace("-----BEGIN X509 CRL-----\n", "-----BEGIN X509 CRL-----\n*"),
    toPem("X509 CRL", new Uint8Array([1, 2, 3, 4])).replace("==\n", "==AA\n"),
  ];
}

describe("pemBlockDerInPlace", () => {
  const inPlace = (text: string) => pemBlockDerInPlace(Buffer.from(text, "latin1"), "X509 CRL");

  it("decodes what pemBlockDer decodes, over the bytes it reads: lengths across its 64 KB slices, LF and CRLF, odd line lengths", () => {
    for (const n of [0, 1, 2, 3, 47, 48, 49, 1000, 49_151, 49_152, 49_153, 100_003, 200_000]) {
      const der = new Uint8Array(crypto.randomBytes(n));
      const pem = "issuer text\n" + toPem("X509 CRL", der) + "trailing\n";
      const b64 = Buffer.from(der).toString("base64");
      const odd = "-----BEGIN X509 CRL-----\n" + (b64.match(/.{1,61}/g) ?? []).join("\n \t") + "\n-----END X509 CRL-----\n";
      for (const text of [pem, pem.replace(/\n/g, "\r\n"), odd]) {
        const b = Buffer.from(text, "latin1");
        const got = pemBlockDerInPlace(b, "X509 CRL");
        expect(got && Buffer.from(got).equals(Buffer.from(der))).toBe(true);
        expect(got!.buffer).toBe(b.buffer);
      }
    }
  });

  it("null where pemBlockDer says null", () => {
    const big = toPem("X509 CRL", new Uint8Array(crypto.randomBytes(100_000)));
    const bad = [
      ...notPlain(),
      big.replace("\n-----END", "*\n-----END"), // damage in a later slice
      big.replace("-----\n", "-----\nAAAA==\n"), // padding in the first slice, data after it
    ];
    for (const text of bad) {
      expect(pemBlockDer(Buffer.from(text, "latin1"), "X509 CRL"), text.slice(0, 80)).toBeNull();
      expect(inPlace(text), text.slice(0, 80)).toBeNull();
    }
  });
});
