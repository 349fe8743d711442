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
  EncryptedContentInfo,
  EncryptedData,
  PFX,
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
} as const;

/** Modern: PBKDF2 is native (WebCrypto); the MAC KDF of pkijs is pure JS, so its count stays at OpenSSL's 2,048. */
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

/** RFC 7292 appendix B.2 key derivation (SHA-1: u = 20, v = 64). id 1: key, 2: IV, 3: MAC key. */
export function pkcs12Kdf(password: string, salt: Uint8Array, id: 1 | 2 | 3, iterations: number, length: number): Buffer {
  const u = 20;
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
    let A = crypto.createHash("sha1").update(D).update(I).digest();
    for (let j = 1; j < iterations; j++) A = crypto.createHash("sha1").update(A).digest();
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

/** pbeWithSHAAnd3-KeyTripleDES-CBC: the AlgorithmIdentifier and the ciphertext. */
function tripleDes(password: string, data: Uint8Array, iterations: number): { alg: AlgorithmIdentifier; encrypted: Uint8Array } {
  const salt = crypto.randomBytes(8);
  const key = pkcs12Kdf(password, salt, 1, iterations, 24);
  const iv = pkcs12Kdf(password, salt, 2, iterations, 8);
  const c = crypto.createCipheriv("des-ede3-cbc", key, iv);
  const encrypted = Buffer.concat([c.update(data), c.final()]);
  const alg = new AlgorithmIdentifier({
    algorithmId: OID.pbeWithSHAAnd3KeyTripleDESCBC,
    algorithmParams: new asn1js.Sequence({ value: [new asn1js.OctetString({ valueHex: ab(salt) }), new asn1js.Integer({ value: iterations })] }),
  });
  return { alg, encrypted: new Uint8Array(encrypted) };
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

export async function buildPkcs12(p: Pkcs12Params): Promise<Uint8Array> {
  if (!p.password) throw new PkiError("USAGE", "a PKCS#12 file needs a password", { exitCode: 2 });
  const [leaf] = certsOf(p.certPem, "the certificate");
  const cas = certsOf(p.caPem, "the CA certificate");
  const localKeyId = new Uint8Array(crypto.createHash("sha1").update(leaf!).digest());
  const pkcs8 = new Uint8Array(p.key.export({ type: "pkcs8", format: "der" }));
  const pwBuf = ab(new Uint8Array(Buffer.from(p.password, "utf8")));
  const modern = p.format === "modern";
  const iterations = p.iterations ?? (modern ? MODERN_ITERATIONS : COMPAT_ITERATIONS);

  // --- the key bag (PKCS8ShroudedKeyBag)
  let keyBag: PKCS8ShroudedKeyBag;
  if (modern) {
    keyBag = new PKCS8ShroudedKeyBag({ parsedValue: PrivateKeyInfo.fromBER(ab(pkcs8)) });
    await keyBag.makeInternalValues({ password: pwBuf, contentEncryptionAlgorithm: AES_256_CBC, hmacHashAlgorithm: "SHA-256", iterationCount: iterations });
  } else {
    const { alg, encrypted } = tripleDes(p.password, pkcs8, iterations);
    keyBag = new PKCS8ShroudedKeyBag({ encryptionAlgorithm: alg, encryptedData: new asn1js.OctetString({ valueHex: ab(encrypted) }) });
  }
  const keyContents = new SafeContents({
    safeBags: [new SafeBag({ bagId: OID.keyBag, bagValue: keyBag, bagAttributes: attributes(p.friendlyName, localKeyId) })],
  });

  // --- the certificate bags: the leaf first (with the key's id), then the CA
  const certBag = (certDer: Uint8Array) => new CertBag({ certId: OID.x509Certificate, certValue: new asn1js.OctetString({ valueHex: ab(certDer) }) });
  const certContents = new SafeContents({
    safeBags: [
      new SafeBag({ bagId: OID.certBag, bagValue: certBag(leaf!), bagAttributes: attributes(p.friendlyName, localKeyId) }),
      ...cas.map((c) => new SafeBag({ bagId: OID.certBag, bagValue: certBag(c) })),
    ],
  });
  const certPlain = certContents.toSchema().toBER(false);
  let encryptedInfo: EncryptedContentInfo;
  if (modern) {
    const ed = new EncryptedData();
    await ed.encrypt({
      password: pwBuf,
      contentEncryptionAlgorithm: AES_256_CBC,
      hmacHashAlgorithm: "SHA-256",
      iterationCount: iterations,
      contentToEncrypt: certPlain,
    });
    encryptedInfo = ed.encryptedContentInfo;
  } else {
    const { alg, encrypted } = tripleDes(p.password, new Uint8Array(certPlain), iterations);
    encryptedInfo = new EncryptedContentInfo({ contentType: OID.data, contentEncryptionAlgorithm: alg, encryptedContent: new asn1js.OctetString({ valueHex: ab(encrypted) }) });
  }
  const encryptedCerts = new EncryptedData({ version: 0, encryptedContentInfo: encryptedInfo });

  const authSafe = new AuthenticatedSafe({
    safeContents: [
      new ContentInfo({ contentType: OID.data, content: new asn1js.OctetString({ valueHex: keyContents.toSchema().toBER(false) }) }),
      new ContentInfo({ contentType: OID.encryptedData, content: encryptedCerts.toSchema() }),
    ],
  });
  const pfx = new PFX({ parsedValue: { integrityMode: 0, authenticatedSafe: authSafe } });
  await pfx.makeInternalValues({
    password: pwBuf,
    iterations: modern ? MAC_ITERATIONS : Math.min(iterations, MAC_ITERATIONS),
    pbkdf2HashAlgorithm: modern ? "SHA-256" : "SHA-1",
    hmacHashAlgorithm: modern ? "SHA-256" : "SHA-1",
  });
  return new Uint8Array(pfx.toSchema().toBER(false));
}
