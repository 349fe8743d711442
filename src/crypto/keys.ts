/**
 * Keys, signatures and key encryption on node:crypto (OpenSSL underneath).
 *
 * Key generation runs on libuv's thread pool (crypto.generateKeyPair), so a
 * batch generates keys on every core while the main thread encodes.
 */
import * as crypto from "node:crypto";
import * as der from "../core/der.js";
import { PkiError } from "../core/errors.js";
import type { KeyKind, Signer, SignatureAlgorithm } from "../core/certificate.js";
import { signatureAlgorithmFor } from "../core/certificate.js";
import { parseSpki, curveName, algorithmName } from "../core/parse.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import { KEY_TYPES, type KeyType } from "../core/key-types.js";
import { derivedKey } from "./derive-ahead.js";
import { readPbes2 } from "./pbes2.js";

export { readPbes2 };
export { KEY_TYPES, type KeyType };

export function parseKeyType(s: string): KeyType {
  const t = s.toLowerCase().replace("p-", "p");
  const alias: Record<string, KeyType> = { ec: "ec-p256", p256: "ec-p256", p384: "ec-p384", rsa: "rsa-2048", "ecdsa-p256": "ec-p256" };
  const k = (KEY_TYPES as readonly string[]).includes(t) ? (t as KeyType) : alias[t];
  if (!k) throw new PkiError("USAGE", `unknown key type ${JSON.stringify(s)}: use one of ${KEY_TYPES.join(", ")}`, { exitCode: 2 });
  return k;
}

export interface KeyPair {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
}

export function generateKeyPair(type: KeyType): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | null, publicKey: crypto.KeyObject, privateKey: crypto.KeyObject) => (err ? reject(err) : resolve({ publicKey, privateKey }));
    switch (type) {
      case "ec-p256":
        return crypto.generateKeyPair("ec", { namedCurve: "P-256" }, cb);
      case "ec-p384":
        return crypto.generateKeyPair("ec", { namedCurve: "P-384" }, cb);
      case "ed25519":
        return crypto.generateKeyPair("ed25519", {}, cb);
      default:
        return crypto.generateKeyPair("rsa", { modulusLength: Number(type.slice(4)), publicExponent: 65537 }, cb);
    }
  });
}

/**
 * P-256 and P-384 pairs for bulk issuance, made with OpenSSL's EC key
 * generation through crypto.createECDH (one random scalar and its point,
 * ~0.03 ms of CPU for P-256) and encoded here from fixed DER templates, the
 * same bytes OpenSSL writes (SPKI; PKCS#8 around an RFC 5915 ECPrivateKey
 * with its public key, no parameters): crypto.generateKeyPair with encodings
 * costs ~0.26 ms of CPU a pair in OpenSSL 3's encoder machinery, which was
 * the largest single cost of a 10,000-pair batch.
 *
 * The work runs on the main thread in slices of a few milliseconds between
 * event-loop turns, so that the CA key's PBKDF2 (thread pool) and the reads
 * of the CA's files go on meanwhile.
 */
const EC_TEMPLATES = {
  "ec-p256": { curve: "prime256v1", oid: "1.2.840.10045.3.1.7", scalar: 32 },
  "ec-p384": { curve: "secp384r1", oid: "1.3.132.0.34", scalar: 48 },
} as const;
type EcType = keyof typeof EC_TEMPLATES;

interface EcEncoder {
  ecdh: crypto.ECDH;
  scalar: number;
  /** SPKI DER before the point */
  spkiHead: Buffer;
  /** PKCS#8 DER before the private scalar, and between it and the point */
  p8Head: Buffer;
  p8Mid: Buffer;
}
const encoders = new Map<EcType, EcEncoder>();

/** The templates, cut out of the two structures built once around a zero scalar and point (their lengths are fixed). */
function ecEncoder(type: EcType): EcEncoder {
  let e = encoders.get(type);
  if (!e) {
    const t = EC_TEMPLATES[type];
    const point = new Uint8Array(1 + 2 * t.scalar);
    const algId = der.seq(der.oid("1.2.840.10045.2.1"), der.oid(t.oid));
    const spki = Buffer.from(der.seq(algId, der.bitString(point)));
    const pub = der.ctx(1, der.bitString(point));
    // PrivateKeyInfo { 0, algId, OCTET STRING ECPrivateKey { 1, OCTET STRING scalar, [1] BIT STRING point } }
    const p8 = Buffer.from(der.seq(der.integer(0), algId, der.octets(der.seq(der.integer(1), der.octets(new Uint8Array(t.scalar)), pub))));
    const mid = pub.length - point.length;
    e = {
      ecdh: crypto.createECDH(t.curve),
      scalar: t.scalar,
      spkiHead: spki.subarray(0, spki.length - point.length),
      p8Head: p8.subarray(0, p8.length - point.length - mid - t.scalar),
      p8Mid: p8.subarray(p8.length - point.length - mid, p8.length - point.length),
    };
    encoders.set(type, e);
  }
  return e;
}

/** One EC pair, encoded: SPKI DER and PKCS#8 PEM (synchronous). */
export function ecPairEncoded(type: EcType): { spki: Uint8Array; pkcs8Pem: string } {
  const e = ecEncoder(type);
  const point = e.ecdh.generateKeys();
  let scalar = e.ecdh.getPrivateKey(); // without leading zero bytes: padded back to the curve's size
  if (scalar.length < e.scalar) scalar = Buffer.concat([Buffer.alloc(e.scalar - scalar.length), scalar]);
  const spki = Buffer.concat([e.spkiHead, point]);
  const p8 = Buffer.concat([e.p8Head, scalar, e.p8Mid, point]);
  scalar.fill(0);
  const pem = toPem("PRIVATE KEY", p8);
  p8.fill(0);
  return { spki: new Uint8Array(spki.buffer, spki.byteOffset, spki.byteLength), pkcs8Pem: pem };
}

/** EC pairs asked for, made in slices between event-loop turns (see ecPairEncoded). */
const ecQueue: Array<{ type: EcType; resolve: (v: { spki: Uint8Array; pkcs8Pem: string }) => void; reject: (e: unknown) => void }> = [];
let ecHead = 0;
let ecScheduled = false;
function ecDrain(): void {
  const until = performance.now() + 8;
  while (ecHead < ecQueue.length && performance.now() < until) {
    const job = ecQueue[ecHead]!;
    ecQueue[ecHead++] = undefined as never;
    try {
      job.resolve(ecPairEncoded(job.type));
    } catch (err) {
      job.reject(err);
    }
  }
  if (ecHead < ecQueue.length) {
    setImmediate(ecDrain);
  } else {
    ecQueue.length = 0;
    ecHead = 0;
    ecScheduled = false;
  }
}

/** A new key pair already encoded: SPKI DER and PKCS#8 PEM, for bulk issuance (EC: ecPairEncoded; others on the thread pool). */
export function generateKeyPairEncoded(type: KeyType): Promise<{ spki: Uint8Array; pkcs8Pem: string }> {
  if (type === "ec-p256" || type === "ec-p384") {
    return new Promise((resolve, reject) => {
      ecQueue.push({ type, resolve, reject });
      if (!ecScheduled) {
        ecScheduled = true;
        setImmediate(ecDrain);
      }
    });
  }
  const enc = { publicKeyEncoding: { type: "spki", format: "der" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } } as const;
  return new Promise((resolve, reject) => {
    const cb = (err: Error | null, spki: Buffer, pkcs8Pem: string) => (err ? reject(err) : resolve({ spki: new Uint8Array(spki.buffer, spki.byteOffset, spki.byteLength), pkcs8Pem }));
    if (type === "ed25519") return crypto.generateKeyPair("ed25519", enc, cb);
    return crypto.generateKeyPair("rsa", { modulusLength: Number(type.slice(4)), publicExponent: 65537, ...enc }, cb);
  });
}

/** The key kind a key type produces. */
export function keyKindOfType(type: KeyType): KeyKind {
  return type.startsWith("rsa") ? "rsa" : (type as KeyKind);
}

/** Random bytes drawn from one buffer refilled 4 KiB at a time (a batch draws a serial per certificate). */
export function pooledRandom(): (n: number) => Uint8Array {
  let pool = new Uint8Array(0);
  let at = 0;
  return (n) => {
    if (at + n > pool.length) {
      pool = new Uint8Array(crypto.randomBytes(Math.max(4096, n)));
      at = 0;
    }
    at += n;
    return pool.subarray(at - n, at);
  };
}

export function keyKindOf(key: crypto.KeyObject): KeyKind {
  const t = key.asymmetricKeyType;
  if (t === "rsa") return "rsa";
  if (t === "ed25519") return "ed25519";
  if (t === "ec") {
    const c = key.asymmetricKeyDetails?.namedCurve;
    if (c === "prime256v1") return "ec-p256";
    if (c === "secp384r1") return "ec-p384";
    if (c === "secp521r1") return "ec-p521";
  }
  throw new PkiError("WEAK_KEY", `unsupported key type ${t ?? "unknown"}${key.asymmetricKeyDetails?.namedCurve ? " " + key.asymmetricKeyDetails.namedCurve : ""}`);
}

/** The key kind of a certificate's public key (no private key needed). */
export const keyKindOfSpki = (spki: der.Bytes): KeyKind => keyKindOf(publicKeyFromSpki(spki));

/** A human key description: "EC P-256", "RSA 3072", "Ed25519". */
export function describeSpki(spki: der.Bytes): string {
  const info = parseSpki(spki, der.read(spki));
  const alg = algorithmName(info.algorithm);
  if (alg === "ec") return `EC ${curveName(info.curve)}`;
  if (alg === "ed25519") return "Ed25519";
  if (alg === "rsa" || alg === "rsa-pss") {
    try {
      const k = crypto.createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
      return `RSA ${k.asymmetricKeyDetails?.modulusLength ?? "?"}`;
    } catch {
      return "RSA";
    }
  }
  return alg;
}

export const spkiDer = (pub: crypto.KeyObject): Uint8Array => new Uint8Array(pub.export({ type: "spki", format: "der" }));

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: der.Bytes): Uint8Array {
  const info = parseSpki(spki, der.read(spki));
  return new Uint8Array(crypto.createHash("sha1").update(info.keyBits).digest());
}

export function signerFor(key: crypto.KeyObject): { signer: Signer; algorithm: SignatureAlgorithm } {
  const algorithm = signatureAlgorithmFor(keyKindOf(key));
  return { algorithm, signer: (data) => new Uint8Array(crypto.sign(algorithm.digest, data, key)) };
}

// ---------------------------------------------------------------- key files

/**
 * The CA key at rest: PKCS#8 EncryptedPrivateKeyInfo with PBES2 (RFC 8018):
 * PBKDF2-HMAC-SHA256 at 600,000 iterations (OWASP 2023 for SHA-256) and
 * AES-256-CBC. Node's KeyObject.export({cipher, passphrase}) always uses
 * 2,048 iterations, so we build the structure ourselves; `openssl pkey`
 * and Node read it back unchanged.
 */
export const PBKDF2_ITERATIONS = 600_000;

export async function encryptPrivateKey(key: crypto.KeyObject, passphrase: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(16);
  const dk = await new Promise<Buffer>((res, rej) => crypto.pbkdf2(Buffer.from(passphrase, "utf8"), salt, iterations, 32, "sha256", (e, k) => (e ? rej(e) : res(k))));
  const cipher = crypto.createCipheriv("aes-256-cbc", dk, iv);
  const enc = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  const alg = der.seq(
    der.oid("1.2.840.113549.1.5.13"),
    der.seq(
      der.seq(der.oid("1.2.840.113549.1.5.12"), der.seq(der.octets(salt), der.integer(iterations), der.seq(der.oid("1.2.840.113549.2.9"), der.nul()))),
      der.seq(der.oid("2.16.840.1.101.3.4.1.42"), der.octets(iv)),
    ),
  );
  return toPem("ENCRYPTED PRIVATE KEY", der.seq(alg, der.octets(enc)));
}

export const privateKeyPem = (key: crypto.KeyObject): string => key.export({ type: "pkcs8", format: "pem" }) as string;

export const isEncryptedPem = (pem: string): boolean => /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);

/** Load a private key (PKCS#8 or PKCS#1/SEC1, encrypted or not). The passphrase is asked for only when needed. */
export async function loadPrivateKey(pem: string, what: string, getPassphrase: () => Promise<string>): Promise<crypto.KeyObject> {
  if (!isEncryptedPem(pem)) {
    try {
      return crypto.createPrivateKey({ key: pem, format: "pem" });
    } catch {
      throw new PkiError("BAD_INPUT", `${what} is not a readable private key (PEM)`);
    }
  }
  const passphrase = await getPassphrase();
  const bad = () => new PkiError("BAD_PASSPHRASE", `the passphrase does not decrypt ${what}: check --passphrase-file / PKI_PASSPHRASE_FILE`);
  const pbes2 = readPbes2(pem);
  if (pbes2) {
    // PBKDF2 on the thread pool: the 600,000 iterations (~150 ms) run while
    // the main thread reads the index or builds a CRL (see ca/revocation.ts),
    // or were started before the modules loaded (cli/prefetch.ts)
    const dk = await derivedKey(passphrase, pbes2);
    let pkcs8: Buffer;
    try {
      const d = crypto.createDecipheriv(pbes2.cipher, dk, pbes2.iv);
      pkcs8 = Buffer.concat([d.update(pbes2.data), d.final()]);
    } catch {
      throw bad();
    }
    try {
      return crypto.createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    } catch {
      throw bad(); // a wrong key can pass the padding check by chance (1 in 256)
    }
  }
  try {
    return crypto.createPrivateKey({ key: pem, format: "pem", passphrase });
  } catch {
    throw bad();
  }
}


/** Does this private key belong to this SPKI? */
export function keyMatches(key: crypto.KeyObject, spki: der.Bytes): boolean {
  const mine = spkiDer(crypto.createPublicKey(key));
  return Buffer.from(mine).equals(Buffer.from(spki));
}

// ---------------------------------------------------------------- verifying signatures

const SIG_ALGS: Record<string, { digest: string | null; key: string[] }> = {
  "1.2.840.113549.1.1.11": { digest: "sha256", key: ["rsa"] },
  "1.2.840.113549.1.1.12": { digest: "sha384", key: ["rsa"] },
  "1.2.840.113549.1.1.13": { digest: "sha512", key: ["rsa"] },
  "1.2.840.10045.4.3.2": { digest: "sha256", key: ["ec"] },
  "1.2.840.10045.4.3.3": { digest: "sha384", key: ["ec"] },
  "1.2.840.10045.4.3.4": { digest: "sha512", key: ["ec"] },
  "1.3.101.112": { digest: null, key: ["ed25519"] },
};

export function publicKeyFromSpki(spki: der.Bytes): crypto.KeyObject {
  try {
    return crypto.createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    throw new PkiError("BAD_INPUT", "the public key in the request cannot be read");
  }
}

/** Verify a signature made with the key of `spki`. Returns false on any mismatch; throws for unsupported algorithms. */
export function verifySignature(spki: der.Bytes, algOid: string, data: der.Bytes, signature: der.Bytes): boolean {
  const alg = SIG_ALGS[algOid];
  if (!alg) {
    if (algOid === "1.2.840.113549.1.1.5" || algOid === "1.2.840.10045.4.1") {
      throw new PkiError("WEAK_KEY", "the request is signed with SHA-1; make it again with SHA-256 (openssl req -sha256)");
    }
    throw new PkiError("BAD_INPUT", `unsupported signature algorithm ${algOid} in the request; use RSA/ECDSA with SHA-256 or Ed25519`);
  }
  const key = publicKeyFromSpki(spki);
  if (!alg.key.includes(key.asymmetricKeyType ?? "")) return false;
  try {
    return crypto.verify(alg.digest, data, key, signature);
  } catch {
    return false;
  }
}

export const sha256Hex = (data: der.Bytes): string => crypto.createHash("sha256").update(data).digest("hex");

export const randomBytes = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n));
