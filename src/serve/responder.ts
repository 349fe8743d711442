/**
 * The delegated OCSP responder certificate of `pki serve` (RFC 6960 4.2.2.2).
 *
 * Why delegated and not the CA key: the CA key stays encrypted at rest and is
 * never held by a network server; nginx asks over HTTP/1.0 without a nonce,
 * so responses are signed by a short-lived key that the CA certified for
 * exactly this (extendedKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck).
 *
 * It is an ordinary certificate of the CA: issued under the name
 * `ocsp-responder` with the built-in profile `ocsp` (P-256, 30 days),
 * recorded in index.txt before it is used, listed by `pki list`, revocable
 * with `pki revoke ocsp-responder`. Its key is private/ocsp-responder.key
 * (0600) and never leaves the CA directory. `serve` issues one when there is
 * none, and renews it when fewer than RENEW_DAYS days are left (the old one
 * is revoked as superseded in the same commit, and the CRL re-signed).
 */
import { chainPem } from "../ca/parent.js";
import type { KeyObject } from "node:crypto";
import { docWhere, issuedBy, issue, openSigningAuthority, profileOf, type Authority } from "../ca/authority.js";
import { refreshCrl } from "../ca/revocation.js";
import { PkiError } from "../core/errors.js";
import type { IndexEntry } from "../core/index-format.js";
import { OID_CN, type Rdn } from "../core/names.js";
import { decodeEku, findExtension, parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks } from "../core/pem.js";
import { generateKeyPairEncoded, keyIdentifier, keyMatches, loadPrivateKey, signerFor } from "../crypto/keys.js";
import type { SignatureAlgorithm, Signer } from "../core/certificate.js";
import { DOC, type CaStore } from "../store/store.js";

export const RESPONDER_NAME = "ocsp-responder";
export const RESPONDER_PROFILE = "ocsp";
/** Renew when fewer days than this are left (a third of its 30 days). */
export const RENEW_DAYS = 10;

export interface Responder {
  cert: ParsedCertificate;
  certDer: Uint8Array;
  key: KeyObject;
  signer: Signer;
  algorithm: SignatureAlgorithm;
  /** SHA-1 of the public key bits: ResponderID byKey */
  keyHash: Uint8Array;
}

export const RESPONDER_DOCS = { cert: DOC.issuedCert(RESPONDER_NAME), chain: DOC.issuedChain(RESPONDER_NAME), key: DOC.issuedKey(RESPONDER_NAME) } as const;

/** Where the responder's files are (for messages). */
export const responderPaths = (store: CaStore) => ({
  cert: docWhere(store, RESPONDER_DOCS.cert),
  chain: docWhere(store, RESPONDER_DOCS.chain),
  key: docWhere(store, RESPONDER_DOCS.key),
});

/**
 * The responder on disk, if it is usable at `now`: issued by this CA,
 * recorded valid in the index, within its validity, key matching. Otherwise
 * the reason it is not (for health and the start-up message).
 */
export async function loadResponder(ca: Authority, index: ReadonlyMap<string, { status: string }>, now: Date): Promise<{ responder?: Responder; problem?: string; foreign?: boolean }> {
  const paths = responderPaths(ca.store);
  let certBytes: Buffer | null;
  let keyBytes: Buffer | null;
  try {
    certBytes = await ca.store.read(RESPONDER_DOCS.cert);
    keyBytes = await ca.store.read(RESPONDER_DOCS.key);
  } catch (e) {
    // a key readable by others (KEY_MODE) or an unreadable file
    return { problem: (e as Error).message };
  }
  if (certBytes === null || keyBytes === null) return { problem: "no responder certificate yet" };
  let cert: ParsedCertificate;
  let certDer: Uint8Array;
  try {
    const block = parsePemBlocks(certBytes.toString("utf8")).find((b) => b.label === "CERTIFICATE");
    if (!block) return { problem: `${paths.cert} holds no certificate` };
    certDer = block.der;
    cert = parseCertificate(certDer);
  } catch (e) {
    return { problem: `${paths.cert} is not readable: ${(e as Error).message}` };
  }
  if (!issuedBy(ca, cert)) return { problem: `${paths.cert} was not issued by this CA` };
  // the name may hold someone else's certificate (`pki issue client ocsp-responder`): never sign with it, never overwrite it
  const eku = findExtension(cert.extensions, "2.5.29.37");
  if (!eku || !decodeEku(eku.value).includes("OCSPSigning")) {
    return { problem: `${paths.cert} is not an OCSP responder certificate (no OCSPSigning): the issued name ${RESPONDER_NAME} belongs to pki serve; revoke that certificate and move its files away`, foreign: true };
  }
  const entry = index.get(cert.serial);
  if (!entry) return { problem: `responder certificate ${cert.serial} is not in index.txt` };
  if (entry.status === "R") return { problem: `responder certificate ${cert.serial} is revoked` };
  if (cert.notAfter.getTime() <= now.getTime() || cert.notBefore.getTime() > now.getTime()) return { problem: `responder certificate ${cert.serial} is outside its validity` };
  let key: KeyObject;
  try {
    key = await loadPrivateKey(keyBytes.toString("utf8"), "the responder key", async () => {
      throw new PkiError("CA_INVALID", `${paths.key} is encrypted: pki serve needs it unencrypted (0600)`);
    });
  } catch (e) {
    return { problem: (e as Error).message };
  }
  if (!keyMatches(key, cert.spki.raw)) return { problem: `${paths.key} does not belong to ${paths.cert}` };
  const { signer, algorithm } = signerFor(key);
  return { responder: { cert, certDer, key, signer, algorithm, keyHash: keyIdentifier(cert.spki.raw) } };
}

export const needsRenewal = (r: Responder | undefined, now: Date): boolean => !r || r.cert.notAfter.getTime() - now.getTime() < RENEW_DAYS * 86_400_000;

/**
 * Issue a new responder certificate (and key) through the CA's one issuance
 * path, revoking `previous` (superseded) in the same commit.
 */
export async function issueResponder(ca: Authority, getPassphrase: () => Promise<string>, previous: string | undefined, now: () => Date): Promise<string> {
  const store = ca.store;
  const signing = await openSigningAuthority(ca, getPassphrase);
  const profile = await profileOf(store, RESPONDER_PROFILE);
  const pair = await generateKeyPairEncoded("ec-p256");
  const caCn = signing.cert.subject.find((r) => r.type === OID_CN)?.value ?? "CA";
  const subject: Rdn[] = [{ type: OID_CN, value: `${caCn} OCSP Responder`.slice(0, 64) }];
  const revoke: Array<{ serial: string; reason: "superseded" }> = [];
  const [c] = await issue(
    signing,
    [
      {
        profile,
        subject,
        sans: [],
        spki: pair.spki,
        keyKind: "ec-p256",
        days: profile.days ?? 30,
        name: RESPONDER_NAME,
        files: (certPem) => ({
          docs: [
            { name: RESPONDER_DOCS.key, data: pair.pkcs8Pem, mode: 0o600 },
            { name: RESPONDER_DOCS.cert, data: certPem },
            { name: RESPONDER_DOCS.chain, data: chainPem(signing, certPem) },
          ],
          outputs: [],
        }),
      },
    ],
    {
      now,
      check: (index: () => IndexEntry[]) => {
        // revoke the previous one only if it is still valid in the index
        if (previous && index().some((e) => e.serial === previous && e.status === "V")) revoke.push({ serial: previous, reason: "superseded" });
      },
      get revoke() {
        return revoke;
      },
      after: async (tx) => {
        if (revoke.length) await refreshCrl(signing, tx, now());
      },
    },
  );
  await store.audit([{ command: "serve", name: RESPONDER_NAME, profile: RESPONDER_PROFILE, serial: c!.serial, subject: c!.subject, previousSerial: revoke[0]?.serial, outcome: "ok" }]);
  return c!.serial;
}
