/**
 * Reading a certificate signing request from untrusted bytes: PEM or DER,
 * structure, key strength, self-signature. Every failure is a typed PkiError;
 * nothing reaches the signer unless its signature verified.
 */
import * as crypto from "node:crypto";
import * as der from "../core/der.js";
import { DerError } from "../core/der.js";
import { PkiError } from "../core/errors.js";
import { checkKey } from "../core/csr-policy.js";
import type { KeyKind } from "../core/certificate.js";
import { parseCsr, type ParsedCsr } from "../core/parse.js";
import { looksLikePem, parsePemBlocks } from "../core/pem.js";
import { publicKeyFromSpki, verifySignature } from "../crypto/keys.js";

export interface CheckedCsr {
  csr: ParsedCsr;
  keyKind: KeyKind;
  sha256: string;
}

const CSR_LABELS = new Set(["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);

export function decodeCsrBytes(data: Uint8Array, source: string): Uint8Array {
  if (data.length === 0) throw new PkiError("BAD_INPUT", `${source} is empty: expected a certificate signing request (PEM or DER)`);
  if (looksLikePem(data)) {
    const blocks = parsePemBlocks(Buffer.from(data).toString("latin1"));
    if (blocks.length === 0) throw new PkiError("BAD_INPUT", `${source}: the PEM block is incomplete (no END line); the file was truncated`);
    const csr = blocks.find((b) => CSR_LABELS.has(b.label));
    if (!csr) {
      throw new PkiError("BAD_INPUT", `${source} holds a PEM "${blocks[0]!.label}", not a "CERTIFICATE REQUEST": pass the CSR, not the certificate or key`);
    }
    return csr.der;
  }
  if (data[0] !== 0x30) throw new PkiError("BAD_INPUT", `${source} is neither a PEM nor a DER certificate signing request`);
  return data;
}

const RSA_PKCS1 = new Set(["1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.5"]);

/**
 * The signature AlgorithmIdentifier sits outside the signed part, so nothing
 * else vouches for it: accept only its canonical forms (RSA: NULL or absent
 * parameters, RFC 4055; ECDSA and Ed25519: no parameters, RFC 5758 / 8410),
 * as OpenSSL does, so that we never sign a request OpenSSL calls malformed.
 */
function checkSignatureAlgorithm(raw: Uint8Array, oid: string, source: string): void {
  const bad = () => new PkiError("BAD_INPUT", `${source} is not a valid certificate signing request: malformed signature algorithm parameters`);
  let params: der.Node[];
  try {
    const n = der.read(raw);
    if (n.end !== raw.length) throw bad();
    params = der.children(raw, n).slice(1);
  } catch (e) {
    if (e instanceof PkiError) throw e;
    throw bad();
  }
  if (params.length === 0) return;
  const p = params[0]!;
  if (params.length > 1 || !RSA_PKCS1.has(oid) || p.tag !== der.TAG.NULL || p.end !== p.contentStart) throw bad();
}

/** Parse, check the key and verify the signature. */
export function checkCsr(data: Uint8Array, source: string): CheckedCsr {
  const der = decodeCsrBytes(data, source);
  let csr: ParsedCsr;
  try {
    csr = parseCsr(der);
  } catch (e) {
    if (e instanceof DerError) throw new PkiError("BAD_INPUT", `${source} is not a valid certificate signing request: ${e.message}`);
    throw new PkiError("BAD_INPUT", `${source} is not a valid certificate signing request`);
  }
  checkSignatureAlgorithm(csr.signatureAlgorithmRaw, csr.signatureAlgorithm, source);
  const key = publicKeyFromSpki(csr.spki.raw);
  const d = key.asymmetricKeyDetails ?? {};
  const curve = d.namedCurve === "prime256v1" ? "P-256" : d.namedCurve === "secp384r1" ? "P-384" : d.namedCurve === "secp521r1" ? "P-521" : d.namedCurve;
  const keyKind = checkKey({ type: key.asymmetricKeyType ?? "unknown", curve, bits: d.modulusLength });
  if (keyKind === "rsa" && d.publicExponent !== undefined && (d.publicExponent < 3n || d.publicExponent % 2n === 0n)) {
    throw new PkiError("WEAK_KEY", "RSA public exponent refused: use 65537");
  }
  if (!verifySignature(csr.spki.raw, csr.signatureAlgorithm, csr.info, csr.signature)) {
    throw new PkiError("BAD_CSR_SIGNATURE", `${source}: the request's signature does not verify (it was altered, or not signed by its own key); make a new CSR`);
  }
  return { csr, keyKind, sha256: crypto.createHash("sha256").update(der).digest("hex") };
}
