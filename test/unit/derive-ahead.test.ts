/**
 * crypto/derive-ahead.ts: the CA key's PBKDF2 started before the modules load
 * (cli/prefetch.ts). Its own small reader of the PBES2 parameters agrees with
 * keys.ts's readPbes2 on the keys pki and OpenSSL write; a derivation started
 * ahead is used once and only for the same passphrase and parameters; a key
 * decrypted with a wrong passphrase fails as before.
 */
import * as crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { deriveAhead, derivedKey, pbkdf2ParamsOf } from "../../src/crypto/derive-ahead.js";
import { encryptPrivateKey, loadPrivateKey, readPbes2 } from "../../src/crypto/keys.js";
import { PkiError } from "../../src/core/errors.js";
import { prefetchCaKey } from "../../src/cli/prefetch.js";
import { tmpdir } from "../helpers.js";

const key = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const ITER = 2048; // the parameters, not the cost, are under test

describe("derive-ahead", () => {
  it("reads the same PBKDF2 parameters as readPbes2 (pki's keys and OpenSSL's, several PRFs and AES sizes)", async () => {
    const pems = [await encryptPrivateKey(key, "pw", ITER)];
    const dir = tmpdir();
    const plain = path.join(dir, "k.pem");
    fs.writeFileSync(plain, key.export({ type: "pkcs8", format: "pem" }));
    for (const [cipher, prf] of [["aes-128-cbc", "hmacWithSHA1"], ["aes-192-cbc", "hmacWithSHA384"], ["aes-256-cbc", "hmacWithSHA512"], ["aes-256-cbc", "hmacWithSHA256"]]) {
      pems.push(execFileSync("openssl", ["pkcs8", "-topk8", "-in", plain, "-v2", cipher!, "-v2prf", prf!, "-iter", "3000", "-passout", "pass:pw"], { encoding: "utf8" }));
    }
    for (const pem of pems) {
      const a = pbkdf2ParamsOf(pem);
      const b = readPbes2(pem)!;
      expect(a).not.toBeNull();
      expect({ salt: a!.salt.toString("hex"), iterations: a!.iterations, keyLength: a!.keyLength, prf: a!.prf }).toEqual({ salt: b.salt.toString("hex"), iterations: b.iterations, keyLength: b.keyLength, prf: b.prf });
    }
    expect(pbkdf2ParamsOf(key.export({ type: "pkcs8", format: "pem" }) as string)).toBeNull();
    expect(pbkdf2ParamsOf("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n")).toBeNull();
  });

  it("a derivation started ahead serves one matching request; others derive anew, with the same result", async () => {
    const pem = await encryptPrivateKey(key, "right", ITER);
    const p = readPbes2(pem)!;
    deriveAhead(pem, "right");
    const first = derivedKey("right", p);
    const second = derivedKey("right", p);
    expect(first).not.toBe(second);
    expect((await first).equals(await second)).toBe(true);
    deriveAhead(pem, "right");
    const other = await derivedKey("wrong", p); // not the one started ahead
    expect(other.equals(await first)).toBe(false);
    expect((await derivedKey("right", p)).equals(await first)).toBe(true); // the one left ahead
  });

  it("loadPrivateKey after a derivation started with the wrong passphrase: BAD_PASSPHRASE; with the right one: the key", async () => {
    const pem = await encryptPrivateKey(key, "right", ITER);
    deriveAhead(pem, "wrong");
    await expect(loadPrivateKey(pem, "the CA key", async () => "wrong")).rejects.toBeInstanceOf(PkiError);
    deriveAhead(pem, "right");
    const k = await loadPrivateKey(pem, "the CA key", async () => "right");
    expect(k.export({ type: "pkcs8", format: "pem" })).toBe(key.export({ type: "pkcs8", format: "pem" }));
  });

  it("prefetchCaKey guesses from argv and never throws, whatever it is given", () => {
    const dir = tmpdir();
    const pass = path.join(dir, "pass");
    fs.writeFileSync(pass, "x\n", { mode: 0o644 }); // readable by others: the command refuses it, the guess skips it
    for (const argv of [[], ["sign-csr"], ["--dir"], ["sign-csr", "--passphrase-file", pass, "--dir", dir], ["--store", "postgres://h/db", "issue", "x"], ["crl", "--passphrase-file=/nonexistent", "-d", dir]]) {
      expect(() => prefetchCaKey(argv, {})).not.toThrow();
    }
  });
});
