/**
 * The parameters of a PBES2 (PBKDF2 + AES-CBC) encrypted key file, read with
 * the project's DER reader: crypto/keys.ts decrypts with them, and
 * crypto/derive-ahead.ts starts their PBKDF2 before the command's modules
 * load. Small on purpose (core/der.ts and core/pem.ts, which the command
 * loads anyway): it is on the start-up path.
 */
import * as der from "../core/der.js";
import { parsePemBlocks } from "../core/pem.js";

const PRF: Record<string, string> = {
  "1.2.840.113549.2.7": "sha1",
  "1.2.840.113549.2.8": "sha224",
  "1.2.840.113549.2.9": "sha256",
  "1.2.840.113549.2.10": "sha384",
  "1.2.840.113549.2.11": "sha512",
};
const AES_CBC: Record<string, { cipher: string; keyLength: number }> = {
  "2.16.840.1.101.3.4.1.2": { cipher: "aes-128-cbc", keyLength: 16 },
  "2.16.840.1.101.3.4.1.22": { cipher: "aes-192-cbc", keyLength: 24 },
  "2.16.840.1.101.3.4.1.42": { cipher: "aes-256-cbc", keyLength: 32 },
};

/**
 * The parameters of a PKCS#8 EncryptedPrivateKeyInfo with PBES2 = PBKDF2 +
 * AES-CBC (what pki writes, and what OpenSSL 3 writes by default), or null
 * for anything else (then OpenSSL decrypts it, synchronously).
 */
export function readPbes2(pem: string): { salt: Buffer; iterations: number; keyLength: number; prf: string; cipher: string; iv: Buffer; data: Buffer } | null {
  try {
    const block = parsePemBlocks(pem).find((x) => x.label === "ENCRYPTED PRIVATE KEY");
    if (!block) return null;
    const b = block.der;
    const [alg, data] = der.children(b, der.read(b));
    const [algOid, params] = der.children(b, alg!);
    if (der.readOid(b, algOid!) !== "1.2.840.113549.1.5.13") return null;
    const [kdf, enc] = der.children(b, params!);
    const [kdfOid, kdfParams] = der.children(b, kdf!);
    if (der.readOid(b, kdfOid!) !== "1.2.840.113549.1.5.12") return null;
    const kp = der.children(b, kdfParams!);
    const salt = kp[0]!;
    const iter = kp[1]!;
    if (salt.tag !== der.TAG.OCTET_STRING || iter.tag !== der.TAG.INTEGER) return null;
    let prf = "sha1";
    for (const x of kp.slice(2)) {
      if (x.tag === der.TAG.SEQUENCE) {
        const name = PRF[der.readOid(b, der.children(b, x)[0]!)];
        if (!name) return null;
        prf = name;
      }
    }
    const [encOid, iv] = der.children(b, enc!);
    const aes = AES_CBC[der.readOid(b, encOid!)];
    if (!aes || iv!.tag !== der.TAG.OCTET_STRING || data!.tag !== der.TAG.OCTET_STRING) return null;
    const iterations = der.content(b, iter).reduce((a, x) => a * 256 + x, 0);
    if (iterations < 1 || iterations > 100_000_000) return null;
    return {
      salt: Buffer.from(der.content(b, salt)),
      iterations,
      keyLength: aes.keyLength,
      prf,
      cipher: aes.cipher,
      iv: Buffer.from(der.content(b, iv!)),
      data: Buffer.from(der.content(b, data!)),
    };
  } catch {
    return null;
  }
}
