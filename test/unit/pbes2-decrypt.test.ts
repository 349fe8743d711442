/**
 * The CA key is decrypted with PBKDF2 on the thread pool (readPbes2 +
 * crypto.pbkdf2) for PBES2/AES-CBC files, and by OpenSSL for anything else.
 * Both paths must accept the right passphrase and refuse a wrong one.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { encryptPrivateKey, loadPrivateKey, readPbes2 } from "../../src/crypto/keys.js";
import { openssl, tmpdir } from "../helpers.js";

const same = (a: crypto.KeyObject, b: crypto.KeyObject) =>
  Buffer.from(a.export({ type: "pkcs8", format: "der" })).equals(Buffer.from(b.export({ type: "pkcs8", format: "der" })));

describe("decrypting PBES2 keys", () => {
  it("reads back pki's own key (PBKDF2-HMAC-SHA256, AES-256-CBC) and refuses a wrong passphrase", async () => {
    const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = await encryptPrivateKey(privateKey, "right passphrase", 1000);
    expect(readPbes2(pem)).toMatchObject({ iterations: 1000, prf: "sha256", cipher: "aes-256-cbc", keyLength: 32 });
    expect(same(await loadPrivateKey(pem, "k", async () => "right passphrase"), privateKey)).toBe(true);
    await expect(loadPrivateKey(pem, "k", async () => "wrong passphrase")).rejects.toMatchObject({ code: "BAD_PASSPHRASE" });
  });

  it("reads OpenSSL's PBES2 variants (AES-128, HMAC-SHA1) and falls back to OpenSSL for legacy PEM encryption", async () => {
    const dir = tmpdir();
    const plain = path.join(dir, "k.pem");
    expect(openssl(["genpkey", "-algorithm", "ed25519", "-out", plain]).code).toBe(0);
    const ref = crypto.createPrivateKey(fs.readFileSync(plain));
    const v2 = path.join(dir, "v2.pem");
    expect(openssl(["pkcs8", "-topk8", "-in", plain, "-out", v2, "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1", "-iter", "2000", "-passout", "pass:secret1"]).code).toBe(0);
    const pem = fs.readFileSync(v2, "utf8");
    expect(readPbes2(pem)).toMatchObject({ iterations: 2000, prf: "sha1", cipher: "aes-128-cbc" });
    expect(same(await loadPrivateKey(pem, "k", async () => "secret1"), ref)).toBe(true);
    await expect(loadPrivateKey(pem, "k", async () => "secret2")).rejects.toMatchObject({ code: "BAD_PASSPHRASE" });
    // traditional "Proc-Type: 4,ENCRYPTED" PEM (not PKCS#8): OpenSSL decrypts it
    const rsa = path.join(dir, "rsa.pem");
    expect(openssl(["genrsa", "-traditional", "-aes256", "-passout", "pass:secret3", "-out", rsa, "2048"]).code).toBe(0);
    const legacy = fs.readFileSync(rsa, "utf8");
    expect(readPbes2(legacy)).toBeNull();
    expect((await loadPrivateKey(legacy, "k", async () => "secret3")).asymmetricKeyType).toBe("rsa");
    await expect(loadPrivateKey(legacy, "k", async () => "nope")).rejects.toMatchObject({ code: "BAD_PASSPHRASE" });
  });
});
