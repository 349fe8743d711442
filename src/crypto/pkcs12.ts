/**
 * PKCS#12 files (RFC 7292): the private key, its certificate and the CA
 * certificate, for browsers, Windows, macOS keychains and appliances.
 * pkijs is used here and nowhere else.
 *
 * Two formats:
 *
 * - modern (default): key and certificates encrypted with PBES2
 *   (PBKDF2-HMAC-SHA256, AES-256-CBC), MAC HMAC-SHA256. This is what
 *   OpenSSL 3 writes by default and reads without `-legacy`.
 * - compat: key and certificates encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC
 *   (RFC 7292 appendix C), MAC HMAC-SHA1. Windows before 10 1709 (and
 *   Server 2016), older macOS keychains and many appliances reject PBES2 in
 *   PKCS#12 and expect this, OpenSSL 1.1's default. `openssl pkcs12 -legacy`
 *   reads it (3DES is still in OpenSSL 3's default provider, so it also
 *   reads without; RC2-40, which OpenSSL 1.1 used for certificates, is not,
 *   and is not used here). pkijs only implements PBES2, so the 3DES step is
 *   done with node:crypto below, inside pkijs's structures.
 *
 * Both bags carry friendlyName (what Windows shows in the certificate store)
 * and localKeyId (SHA-1 of the leaf certificate, which pairs key and
 * certificate on import).
 */
import * as crypto from "node:crypto";
import * as asn1js from "asn1js";
import {
  AlgorithmIdentifier,
  Attribute,
  AuthenticatedSafe,
  CertBag,
  ContentInfo,
  DigestInfo,
  EncryptedContentInfo,
  EncryptedData,
  MacData,
  PFX,
  PBES2Params,
  PBKDF2Params,
  PKCS8ShroudedKeyBag,
  PrivateKeyInfo,
  SafeBag,
  SafeContents,
  type ContentEncryptionAlgorithm,
} from "pkijs";
import { PkiError } from "../core/errors.js";
import { parsePemBlocks } from "../core/pem.js";

export type Pkcs12Format = "modern" | "compat";

export interface Pkcs12Params {
  key: crypto.KeyObject;
  /** the leaf certificate (PEM; the first CERTIFICATE block is used) */
  certPem: string;
  /** the CA certificate(s) (PEM) */
  caPem: string;
  password: string;
  format: Pkcs12Format;
  /** shown by Windows and keychains; also the name of the bags */
  friendlyName: string;
  /** Default: 600,000 PBKDF2 iterations (modern) or 2,048 (compat, OpenSSL's legacy default). */
  iterations?: number;
}

const OID = {
  keyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  pbeWithSHAAnd3KeyTripleDESCBC: "1.2.840.113549.1.12.1.3",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSHA256: "1.2.840.113549.2.9",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
} as const;

/** Modern: PBKDF2 (native) for the key and the certificates; the MAC key's PKCS#12 KDF keeps OpenSSL's 2,048 iterations. */
const MODERN_ITERATIONS = 600_000;
const MAC_ITERATIONS = 2048;
const COMPAT_ITERATIONS = 2048;

/** pkijs draws the IV itself; its type asks for one anyway. */
const AES_256_CBC = { name: "AES-CBC", length: 256 } as unknown as ContentEncryptionAlgorithm;

const ab = (u: Uint8Array): ArrayBuffer => u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;

/** RFC 7292 B.1: the password as a BMPString with two trailing zero bytes. */
function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** RFC 7292 appendix B.2 key derivation (SHA-1: u = 20, v = 64; SHA-256: u = 32, v = 64). id 1: key, 2: IV, 3: MAC key. */
export function pkcs12Kdf(password: string, salt: Uint8Array, id: 1 | 2 | 3, iterations: number, length: number, hash: "sha1" | "sha256" = "sha1"): Buffer {
  const u = hash === "sha1" ? 20 : 32;
  const v = 64;
  const D = Buffer.alloc(v, id);
  const fill = (src: Buffer): Buffer => {
    const len = src.length === 0 ? 0 : v * Math.ceil(src.length / v);
    const out = Buffer.alloc(len);
    for (let i = 0; i < len; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const I = Buffer.concat([fill(Buffer.from(salt)), fill(bmpPassword(password))]);
  const out: Buffer[] = [];
  for (let got = 0; got < length; got += u) {
    let A = crypto.createHash(hash).update(D).update(I).digest();
    for (let j = 1; j < iterations; j++) A = crypto.createHash(hash).update(A).digest();
    out.push(A);
    const B = fill(A);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const x = I[j + k]! + B[k]! + carry;
        I[j + k] = x & 0xff;
        carry = x >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, length);
}

/**
 * A password-based cipher whose key is derived already (the slow part):
 * encrypting with it is quick. Its AlgorithmIdentifier names the salt and
 * iteration count a reader derives the same key with.
 */
interface DerivedCipher {
  alg: AlgorithmIdentifier;
  encrypt(data: Uint8Array): Uint8Array;
}

function cipherWith(name: string, key: Uint8Array, iv: Uint8Array, alg: AlgorithmIdentifier): DerivedCipher {
  return {
    alg,
    encrypt(data) {
      const c = crypto.createCipheriv(name, key, iv);
      return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
    },
  };
}

/** pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 appendix C): a fresh salt, key and IV from the PKCS#12 KDF. */
function tripleDesCipher(password: string, iterations: number): DerivedCipher {
  const salt = crypto.randomBytes(8);
  const key = pkcs12Kdf(password, salt, 1, iterations, 24);
  const iv = pkcs12Kdf(password, salt, 2, iterations, 8);
  const alg = new AlgorithmIdentifier({
    algorithmId: OID.pbeWithSHAAnd3KeyTripleDESCBC,
    algorithmParams: new asn1js.Sequence({ value: [new asn1js.OctetString({ valueHex: ab(salt) }), new asn1js.Integer({ value: iterations })] }),
  });
  return cipherWith("des-ede3-cbc", key, iv, alg);
}

/**
 * PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018), laid out as
 * pkijs writes it (64-byte salt, 16-byte IV, prf with NULL parameters); the
 * key derived on the thread pool.
 */
async function pbes2Cipher(password: string, iterations: number): Promise<DerivedCipher> {
  const salt = crypto.randomBytes(64);
  const iv = crypto.randomBytes(16);
  const key = await new Promise<Buffer>((resolve, reject) => crypto.pbkdf2(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256", (e, k) => (e ? reject(e) : resolve(k))));
  const kdf = new PBKDF2Params({
    salt: new asn1js.OctetString({ valueHex: ab(salt) }),
    iterationCount: iterations,
    prf: new AlgorithmIdentifier({ algorithmId: OID.hmacWithSHA256, algorithmParams: new asn1js.Null() }),
  });
  const params = new PBES2Params({
    keyDerivationFunc: new AlgorithmIdentifier({ algorithmId: OID.pbkdf2, algorithmParams: kdf.toSchema() }),
    encryptionScheme: new AlgorithmIdentifier({ algorithmId: OID.aes256Cbc, algorithmParams: new asn1js.OctetString({ valueHex: ab(iv) }) }),
  });
  return cipherWith("aes-256-cbc", key, iv, new AlgorithmIdentifier({ algorithmId: OID.pbes2, algorithmParams: params.toSchema() }));
}

function certsOf(pem: string, what: string): Uint8Array[] {
  const blocks = parsePemBlocks(pem).filter((b) => b.label === "CERTIFICATE");
  if (!blocks.length) throw new PkiError("BAD_INPUT", `${what} holds no PEM certificate`);
  return blocks.map((b) => b.der);
}

function attributes(friendlyName: string, localKeyId: Uint8Array): Attribute[] {
  return [
    new Attribute({ type: OID.friendlyName, values: [new asn1js.BmpString({ value: friendlyName })] }),
    new Attribute({ type: OID.localKeyId, values: [new asn1js.OctetString({ valueHex: ab(localKeyId) })] }),
  ];
}

/** A PKCS#12 whose slow parts are done: finish it once the certificate exists. */
export type PreparedPkcs12 = (certPem: string) => Uint8Array;

/**
 * The slow part of a PKCS#12, before its certificate exists: the key bag
 * encrypted and the certificates' cipher key derived (600,000 PBKDF2
 * iterations each in the modern format). `pki issue --p12` does this before
 * the store's lock is taken (#9); what is left for the certificate is an AES
 * (or 3DES) pass over a few KB and the MAC.
 */
export async function preparePkcs12(p: Omit<Pkcs12Params, "certPem">): Promise<PreparedPkcs12> {
  if (!p.password) throw new PkiError("USAGE", "a PKCS#12 file needs a password", { exitCode: 2 });
  const cas = certsOf(p.caPem, "the CA certificate");
  const modern = p.format === "modern";
  const iterations = p.iterations ?? (modern ? MODERN_ITERATIONS : COMPAT_ITERATIONS);
  const [keyBag, certCipher] = await Promise.all([shroudedKey(p, modern, iterations), modern ? pbes2Cipher(p.password, iterations) : tripleDesCipher(p.password, iterations)]);
  const mac = macWith(p.password, modern, modern ? MAC_ITERATIONS : Math.min(iterations, MAC_ITERATIONS));
  return (certPem) => finishPkcs12(p, { keyBag, certCipher, cas, mac }, certPem);
}

/** The key bag (PKCS8ShroudedKeyBag): PBES2 by pkijs, or 3DES. */
async function shroudedKey(p: Omit<Pkcs12Params, "certPem">, modern: boolean, iterations: number): Promise<PKCS8ShroudedKeyBag> {
  const pkcs8 = new Uint8Array(p.key.export({ type: "pkcs8", format: "der" }));
  if (!modern) {
    const { alg, encrypt } = tripleDesCipher(p.password, iterations);
    return new PKCS8ShroudedKeyBag({ encryptionAlgorithm: alg, encryptedData: new asn1js.OctetString({ valueHex: ab(encrypt(pkcs8)) }) });
  }
  const keyBag = new PKCS8ShroudedKeyBag({ parsedValue: PrivateKeyInfo.fromBER(ab(pkcs8)) });
  const pwBuf = ab(new Uint8Array(Buffer.from(p.password, "utf8")));
  await keyBag.makeInternalValues({ password: pwBuf, contentEncryptionAlgorithm: AES_256_CBC, hmacHashAlgorithm: "SHA-256", iterationCount: iterations });
  return keyBag;
}

interface Prepared {
  keyBag: PKCS8ShroudedKeyBag;
  certCipher: DerivedCipher;
  cas: Uint8Array[];
  mac: (authSafe: Uint8Array) => MacData;
}

/**
 * The MAC over the authenticated safe (RFC 7292 section 4, appendix B): its
 * key from the PKCS#12 KDF (id 3) over a fresh 64-byte salt, HMAC-SHA256 in
 * the modern format, HMAC-SHA1 in compat; laid out as pkijs writes it.
 */
function macWith(password: string, modern: boolean, iterations: number): (authSafe: Uint8Array) => MacData {
  const hash = modern ? "sha256" : "sha1";
  const salt = crypto.randomBytes(64);
  const key = pkcs12Kdf(password, salt, 3, iterations, modern ? 32 : 20, hash);
  return (authSafe) =>
    new MacData({
      mac: new DigestInfo({
        digestAlgorithm: new AlgorithmIdentifier({ algorithmId: modern ? OID.sha256 : OID.sha1 }),
        digest: new asn1js.OctetString({ valueHex: ab(crypto.createHmac(hash, key).update(authSafe).digest()) }),
      }),
      macSalt: new asn1js.OctetString({ valueHex: ab(salt) }),
      iterations,
    });
}

function finishPkcs12(p: Omit<Pkcs12Params, "certPem">, pre: Prepared, certPem: string): Uint8Array {
  const [leaf] = certsOf(certPem, "the certificate");
  const localKeyId = new Uint8Array(crypto.createHash("sha1").update(leaf!).digest());
  const keyContents = new SafeContents({
    safeBags: [new SafeBag({ bagId: OID.keyBag, bagValue: pre.keyBag, bagAttributes: attributes(p.friendlyName, localKeyId) })],
  });

  // --- the certificate bags: the leaf first (with the key's id), then the CA
  const certBag = (certDer: Uint8Array) => new CertBag({ certId: OID.x509Certificate, certValue: new asn1js.OctetString({ valueHex: ab(certDer) }) });
  const certContents = new SafeContents({
    safeBags: [
      new SafeBag({ bagId: OID.certBag, bagValue: certBag(leaf!), bagAttributes: attributes(p.friendlyName, localKeyId) }),
      ...pre.cas.map((c) => new SafeBag({ bagId: OID.certBag, bagValue: certBag(c) })),
    ],
  });
  const encrypted = pre.certCipher.encrypt(new Uint8Array(certContents.toSchema().toBER(false)));
  const encryptedInfo = new EncryptedContentInfo({ contentType: OID.data, contentEncryptionAlgorithm: pre.certCipher.alg, encryptedContent: new asn1js.OctetString({ valueHex: ab(encrypted) }) });
  const encryptedCerts = new EncryptedData({ version: 0, encryptedContentInfo: encryptedInfo });

  const authSafe = new AuthenticatedSafe({
    safeContents: [
      new ContentInfo({ contentType: OID.data, content: new asn1js.OctetString({ valueHex: keyContents.toSchema().toBER(false) }) }),
      new ContentInfo({ contentType: OID.encryptedData, content: encryptedCerts.toSchema() }),
    ],
  });
  const safe = new Uint8Array(authSafe.toSchema().toBER(false));
  const pfx = new PFX({ authSafe: new ContentInfo({ contentType: OID.data, content: new asn1js.OctetString({ valueHex: ab(safe) }) }), macData: pre.mac(safe) });
  return new Uint8Array(pfx.toSchema().toBER(false));
}

export async function buildPkcs12(p: Pkcs12Params): Promise<Uint8Array> {
  if (!p.password) throw new PkiError("USAGE", "a PKCS#12 file needs a password", { exitCode: 2 });
  // the certificate checked first, as before: a bad one fails before the slow part
  certsOf(p.certPem, "the certificate");
  return (await preparePkcs12(p))(p.certPem);
}
