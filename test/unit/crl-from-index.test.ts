import { describe, expect, it } from "vitest";
import * as der from "../../src/core/der.js";
import { encodeRevoked, prepareCrlFromIndex, revokedFromIndexText, signCrlFromIndex, tbsCertList } from "../../src/core/crl.js";
import { toPem, toPemBytes, toPemInPlace } from "../../src/core/pem.js";

const params = {
  signatureAlgorithm: der.seq(der.oid("1.2.840.10045.4.3.2")),
  issuer: der.seq(der.set(der.seq(der.oid("2.5.4.3"), der.utf8("Test CA")))),
  thisUpdate: new Date("2025-01-02T03:04:05Z"),
  nextUpdate: new Date("2025-01-09T03:04:05Z"),
  crlNumber: 7n,
  authorityKeyId: new Uint8Array(20).fill(0xab),
};
const SIG = Uint8Array.from({ length: 71 }, (_, i) => i);
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));

/** The one-pass builder's TBS and signature wrapper, read back with the DER reader. */
function tbsOf(crl: Uint8Array): Uint8Array {
  const outer = der.read(crl);
  const kids = der.children(crl, outer);
  return crl.subarray(kids[0]!.start, kids[0]!.end);
}

describe("signCrlFromIndex: the one-pass CRL builder", () => {
  const index = [
    "V\t351231235959Z\t\t41AA\tunknown\t/CN=valid",
    "R\t351231235959Z\t250101000000Z\t4100FF\tunknown\t/CN=plain",
    "R\t351231235959Z\t250101000000Z,keyCompromise\t80\tunknown\t/CN=high bit",
    "E\t200101000000Z\t\t42\tunknown\t/CN=expired",
    "R\t20551231235959Z\t20500101000000Z,CACompromise\t7F0102030405060708090A0B0C0D0E0F10\tunknown\t/CN=generalized é",
    "R\t351231235959Z\t250101000000Z,superseded\t0000A1\tunknown\t/CN=leading zeros",
    "R\t351231235959Z\t250101000000Z,certificateHold\t0A\tunknown\t/CN=hold",
    "R\t351231235959Z\t250101000000Z,unspecified\t00\tunknown\t/CN=zero",
    "",
  ].join("\n");

  it("encodes exactly what the object-based encoder encodes, and signs the TBS where it lies", () => {
    let signed: Uint8Array | undefined;
    const { der: crl, count } = signCrlFromIndex({ ...params, index: bytes(index), sign: (tbs) => ((signed = tbs.slice()), SIG) });
    expect(count).toBe(6);
    const expected = tbsCertList({ ...params, revoked: revokedFromIndexText(index) });
    expect(Buffer.from(tbsOf(crl)).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
    expect(Buffer.from(signed!).equals(Buffer.from(expected))).toBe(true);
    const whole = der.seq(expected, params.signatureAlgorithm, der.bitString(SIG));
    expect(Buffer.from(crl).equals(Buffer.from(whole))).toBe(true);
  });

  it("omits revokedCertificates when nothing is revoked", () => {
    const { der: crl, count } = signCrlFromIndex({ ...params, index: bytes("V\t351231235959Z\t\t41\tunknown\t/CN=a\n"), sign: () => SIG });
    expect(count).toBe(0);
    expect(Buffer.from(tbsOf(crl)).equals(Buffer.from(tbsCertList({ ...params, revoked: [] })))).toBe(true);
    expect(signCrlFromIndex({ ...params, index: new Uint8Array(0), sign: () => SIG }).count).toBe(0);
  });

  it("reads the reason up to the next comma (OpenSSL adds a hold instruction after certificateHold)", () => {
    const { der: crl } = signCrlFromIndex({ ...params, index: bytes("R\t351231235959Z\t250101000000Z,certificateHold,holdInstructionNone\t0A\tunknown\t/CN=hold\n"), sign: () => SIG });
    const entry = encodeRevoked([{ serial: "0A", time: "250101000000Z", reasonCode: 6 }]);
    expect(Buffer.from(crl).includes(Buffer.from(entry))).toBe(true);
  });

  it("reads an odd number of serial digits as the integer they spell", () => {
    const { der: crl } = signCrlFromIndex({ ...params, index: bytes("R\t351231235959Z\t250101000000Z\tABC\tunknown\t/CN=odd\n"), sign: () => SIG });
    const expectedEntry = der.seq(der.integer(0xabcn), der.tlv(0x17, der.utf8("250101000000Z")));
    expect(Buffer.from(crl).includes(Buffer.from(expectedEntry))).toBe(true);
  });

  it("refuses a damaged revoked line with the offset of the line", () => {
    const bad = (line: string) => () => signCrlFromIndex({ ...params, index: bytes(`V\t351231235959Z\t\t41\tunknown\t/CN=a\n${line}\n`), sign: () => SIG });
    expect(bad("R\t351231235959Z\t2501010000Z\t42\tunknown\t/CN=b")).toThrow(/revocation time.*byte 34/);
    expect(bad("R\t351231235959Z\t250101000000Z\t4G\tunknown\t/CN=b")).toThrow(/not hex/);
    expect(bad("R\t351231235959Z\t250101000000Z")).toThrow(/fields/);
    // the fields of a short line are not taken from the line after it
    expect(bad("R\t351231235959Z\t250101000000Z\t43\nV\t351231235959Z\t\t44\tunknown\t/CN=c")).toThrow(/fewer than 5 tab-separated fields in the revoked line at byte 34/);
    expect(bad("R\t351231235959Z\nV\t351231235959Z\t\t44\tunknown\t/CN=c")).toThrow(/fewer than 5.*byte 34/);
    expect(bad("R351231235959Z\t250101000000Z\t43\tunknown\t/CN=b")).toThrow(/fewer than 5.*byte 34/);
  });

  it("reads the index from a Buffer or a plain Uint8Array alike, a last line without its newline included", () => {
    const text = "R\t351231235959Z\t250101000000Z,keyCompromise\t0A\tunknown\t/CN=a\nV\t351231235959Z\t\t0B\tunknown\t/CN=b\nR\t351231235959Z\t250101000000Z\t0C\tunknown\t/CN=c";
    const fromBuffer = signCrlFromIndex({ ...params, index: Buffer.from(text), sign: () => SIG });
    const fromPlain = signCrlFromIndex({ ...params, index: new Uint8Array(Buffer.from(text)), sign: () => SIG });
    expect(fromBuffer.count).toBe(2);
    expect(Buffer.from(fromPlain.der).equals(Buffer.from(fromBuffer.der))).toBe(true);
  });

  it("matches encodeRevoked on many generated entries", () => {
    let text = "";
    for (let i = 0; i < 3000; i++) {
      const serial = (i * 2654435761).toString(16).toUpperCase().padStart(i % 5 === 0 ? 40 : 34, i % 7 === 0 ? "F" : "4");
      const reason = ["", ",keyCompromise", ",affiliationChanged", ",cessationOfOperation"][i % 4];
      text += `R\t351231235959Z\t2501010000${String(i % 60).padStart(2, "0")}Z${reason}\t${serial}\tunknown\t/CN=n${i}\n`;
    }
    const { der: crl } = signCrlFromIndex({ ...params, index: bytes(text), sign: () => SIG });
    expect(Buffer.from(crl).includes(Buffer.from(encodeRevoked(revokedFromIndexText(text))))).toBe(true);
  });
});

describe("toPemBytes", () => {
  it("is toPem as bytes for every length remainder", () => {
    for (const n of [0, 1, 2, 3, 47, 48, 49, 50, 96, 1000]) {
      const d = Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
      expect(Buffer.from(toPemBytes("X509 CRL", d)).toString("latin1")).toBe(toPem("X509 CRL", d));
    }
  });
});

describe("toPemInPlace", () => {
  it("writes toPem over the DER it encodes, for every length remainder, and refuses a DER without room in front", () => {
    for (const n of [0, 1, 2, 3, 47, 48, 49, 50, 96, 1000, 4099]) {
      const d = Uint8Array.from({ length: n }, (_, i) => (i * 37 + (i >> 8)) & 0xff);
      const want = toPem("X509 CRL", d);
      const gap = want.length - n;
      const buf = new Uint8Array(gap + n + 5);
      buf.set(d, gap);
      expect(Buffer.from(toPemInPlace("X509 CRL", buf, gap, gap + n)).toString("latin1")).toBe(want);
      if (n > 0) expect(() => toPemInPlace("X509 CRL", new Uint8Array(gap + n), gap - 1, gap - 1 + n)).toThrow(/no room/);
    }
  });
});

describe("PreparedCrl.finishPem", () => {
  it("is the PEM of finish's DER, for entry counts and signature lengths that move the lengths across their boundaries", () => {
    for (const count of [0, 1, 2, 3, 100, 1000]) {
      const text = Array.from({ length: count }, (_, i) => `R\t351231235959Z\t250101000000Z${i % 2 ? ",keyCompromise" : ""}\t${(i + 1).toString(16).toUpperCase().padStart(4, "0")}\tunknown\t/CN=${i}\n`).join("");
      for (const sigLen of [0, 1, 2, 3, 70, 71, 72, 512, 1024]) {
        const sig = Uint8Array.from({ length: sigLen }, (_, i) => 255 - (i & 0xff));
        const derCrl = prepareCrlFromIndex({ ...params, index: bytes(text) }).finish(sig).slice();
        const pem = prepareCrlFromIndex({ ...params, index: bytes(text) }).finishPem(sig);
        expect(Buffer.from(pem).toString("latin1")).toBe(toPem("X509 CRL", derCrl));
      }
    }
  });
});
