/**
 * crypto/keys.ts generateKeyPairEncoded for EC keys (bulk issuance): the
 * pairs are made with createECDH and encoded from fixed DER templates; they
 * must be exactly what OpenSSL writes for the same key (PKCS#8 PEM), with the
 * matching SPKI, for P-256 and P-384, including the 1 in 256 keys whose
 * scalar starts with a zero byte (ECDH hands it out shorter).
 */
import * as crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { generateKeyPairEncoded } from "../../src/crypto/keys.js";

describe("generateKeyPairEncoded (EC)", () => {
  for (const [type, n, scalarAt] of [["ec-p256", 4000, 36], ["ec-p384", 500, 35]] as const) {
    it(`${type}: ${n} pairs, each byte for byte OpenSSL's own PKCS#8 of that key, with its SPKI`, async () => {
      const pairs = await Promise.all(Array.from({ length: n }, () => generateKeyPairEncoded(type)));
      let leadingZero = 0;
      for (const { spki, pkcs8Pem } of pairs) {
        const key = crypto.createPrivateKey(pkcs8Pem);
        expect(key.asymmetricKeyDetails?.namedCurve).toBe(type === "ec-p256" ? "prime256v1" : "secp384r1");
        expect(key.export({ type: "pkcs8", format: "pem" })).toBe(pkcs8Pem);
        expect(Buffer.from(spki).equals(crypto.createPublicKey(key).export({ type: "spki", format: "der" }))).toBe(true);
        const der = key.export({ type: "pkcs8", format: "der" });
        if (der[scalarAt] === 0) leadingZero++;
      }
      expect(new Set(pairs.map((p) => p.pkcs8Pem)).size).toBe(n);
      if (type === "ec-p256") expect(leadingZero).toBeGreaterThan(0); // the padding was exercised ((255/256)^4000 ~ 1e-7 to miss)
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-keygen-"));
      try {
        fs.writeFileSync(path.join(dir, "k.pem"), pairs[0]!.pkcs8Pem);
        expect(execFileSync("openssl", ["pkey", "-in", path.join(dir, "k.pem"), "-check", "-noout"], { encoding: "utf8" })).toMatch(/Key is valid/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
