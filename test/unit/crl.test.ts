import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { assembleSigned, caExtensions, signatureAlgorithmFor, tbsCertificate } from "../../src/core/certificate.js";
import { encodeRevoked, formatCrlNumber, parseCrlNumber, revokedFromEntries, revokedFromIndexText, tbsCertList } from "../../src/core/crl.js";
import { formatIndex, type IndexEntry } from "../../src/core/index-format.js";
import { encodeName, parseDn } from "../../src/core/names.js";
import { toPem } from "../../src/core/pem.js";
import { openssl, tmpdir } from "../helpers.js";
import { keyId, keyPair, spkiOf } from "./build.js";

const entries: IndexEntry[] = [
  { status: "V", expires: new Date("2027-01-01T00:00:00Z"), serial: "4A00000000000000000000000000000001", file: "unknown", subject: "/CN=valid" },
  { status: "R", expires: new Date("2027-01-01T00:00:00Z"), revokedAt: new Date("2026-05-06T07:08:09Z"), serial: "4A00000000000000000000000000000002", file: "unknown", subject: "/CN=a" },
  { status: "R", expires: new Date("2027-01-01T00:00:00Z"), revokedAt: new Date("2026-05-06T07:08:10Z"), reason: "keyCompromise", serial: "5B0102", file: "unknown", subject: "/CN=b" },
  // high bit set: the INTEGER needs a leading 00 octet
  { status: "R", expires: new Date("2027-01-01T00:00:00Z"), revokedAt: new Date("2026-05-06T07:08:11Z"), reason: "caCompromise", serial: "8F", file: "unknown", subject: "/CN=c" },
  // a revocation time from 2050 on: GeneralizedTime
  { status: "R", expires: new Date("2060-01-01T00:00:00Z"), revokedAt: new Date("2051-02-03T04:05:06Z"), reason: "superseded", serial: "0123", file: "unknown", subject: "/CN=d" },
  { status: "R", expires: new Date("2027-01-01T00:00:00Z"), revokedAt: new Date("2026-05-06T07:08:12Z"), reason: "certificateHold", serial: "7F" + "EE".repeat(16), file: "unknown", subject: "/CN=e" },
];

describe("CRL encoder", () => {
  it("the fast index scan and the entry path agree", () => {
    expect(revokedFromIndexText(formatIndex(entries))).toEqual(revokedFromEntries(entries));
    expect(revokedFromEntries(entries)).toHaveLength(5);
  });

  it("encodes no revokedCertificates field at all when there are none", () => {
    expect(encodeRevoked([])).toHaveLength(0);
  });

  it("writes a CRL that openssl parses, verifies and reads back entry by entry", () => {
    const dir = tmpdir();
    const ca = keyPair("ec-p256");
    const spki = spkiOf(ca.publicKey);
    const kid = keyId(spki);
    const alg = signatureAlgorithmFor("ec-p256");
    const name = encodeName(parseDn("CN=CRL Unit CA,O=Acme"));
    const sign = (tbs: Uint8Array) => new Uint8Array(crypto.sign("sha256", tbs, ca.privateKey));
    const certTbs = tbsCertificate({
      serial: Uint8Array.of(0x41, 1),
      signatureAlgorithm: alg.der,
      issuer: name,
      notBefore: new Date("2026-01-01T00:00:00Z"),
      notAfter: new Date("2036-01-01T00:00:00Z"),
      subject: name,
      spki,
      extensions: caExtensions({ codeSigning: false, subjectKeyId: kid }),
    });
    fs.writeFileSync(path.join(dir, "ca.pem"), toPem("CERTIFICATE", assembleSigned(certTbs, alg.der, sign(certTbs))));

    const tbs = tbsCertList({
      signatureAlgorithm: alg.der,
      issuer: name,
      thisUpdate: new Date("2026-11-22T00:00:00Z"),
      nextUpdate: new Date("2026-11-29T00:00:00Z"),
      crlNumber: 0x1234n,
      authorityKeyId: kid,
      revoked: revokedFromIndexText(formatIndex(entries)),
    });
    const crlDer = assembleSigned(tbs, alg.der, sign(tbs));
    fs.writeFileSync(path.join(dir, "crl.der"), crlDer);

    const r = openssl(["crl", "-inform", "DER", "-in", path.join(dir, "crl.der"), "-noout", "-text", "-CAfile", path.join(dir, "ca.pem")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/verify OK/);
    const t = r.stdout;
    expect(t).toMatch(/Version 2 \(0x1\)/);
    expect(t).toMatch(/Issuer: CN = CRL Unit CA, O = Acme/);
    expect(t).toMatch(/Last Update: Nov 22 00:00:00 2026 GMT/);
    expect(t).toMatch(/Next Update: Nov 29 00:00:00 2026 GMT/);
    expect(t).toMatch(/X509v3 CRL Number:\s*\n\s*4660/);
    expect(t).toMatch(/X509v3 Authority Key Identifier:\s*\n\s*(keyid:)?[0-9A-F:]+/);

    // each revoked entry: serial, date and reason as openssl reads them
    const blocks = t.split("Serial Number: ").slice(1);
    expect(blocks).toHaveLength(5);
    const got = blocks.map((b) => ({
      serial: b.split("\n")[0]!.trim(),
      date: /Revocation Date: (.*)/.exec(b)![1]!.trim(),
      reason: /CRL Reason Code:\s*\n\s*(.*)/.exec(b)?.[1]?.trim() ?? null,
    }));
    expect(got).toEqual([
      { serial: "4A00000000000000000000000000000002", date: "May  6 07:08:09 2026 GMT", reason: null },
      { serial: "5B0102", date: "May  6 07:08:10 2026 GMT", reason: "Key Compromise" },
      { serial: "8F", date: "May  6 07:08:11 2026 GMT", reason: "CA Compromise" },
      { serial: "0123", date: "Feb  3 04:05:06 2051 GMT", reason: "Superseded" },
      { serial: "7F" + "EE".repeat(16), date: "May  6 07:08:12 2026 GMT", reason: "Certificate Hold" },
    ]);
  });

  it("crlnumber file: hex as OpenSSL keeps it", () => {
    expect(formatCrlNumber(1n)).toBe("01\n");
    expect(formatCrlNumber(0x1234n)).toBe("1234\n");
    expect(formatCrlNumber(0xabcn)).toBe("0ABC\n");
    expect(parseCrlNumber("0ABC\n")).toBe(0xabcn);
    expect(parseCrlNumber("zz")).toBeNull();
  });
});
