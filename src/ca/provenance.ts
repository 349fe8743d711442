/**
 * Provenance of a certificate file given as a target (renew, revoke, export
 * p12, show, verify: all refuse any other file): is this the certificate this CA issued?
 *
 * A certificate file proves nothing by its issuer name and serial: anyone can
 * make a CA with the same subject DN and sign a certificate that carries a
 * real agent's serial. Trusting it, `renew forged.crt` certified the
 * attacker's key with the attacker's names (policy and proof of possession
 * bypassed) and revoked the agent. So a file is trusted only when both hold:
 *
 *   1. its signature verifies with this CA's key (and its issuer is the CA);
 *   2. it is byte for byte the CA's own copy, certs/<SERIAL>.pem: a
 *      certificate signed with the CA key outside pki (`openssl ca` with the
 *      same key, a re-signed copy with other names) is not what the index
 *      records under that serial.
 *
 * Otherwise NOT_ISSUED_HERE; the target is then best given by name or serial,
 * which pki resolves through its own copy.
 */
import { PkiError } from "../core/errors.js";
import { formatDn } from "../core/names.js";
import type { ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks } from "../core/pem.js";
import { issuedBy, type Authority } from "./authority.js";

export type Provenance =
  /** signed by this CA and identical to certs/<SERIAL>.pem */
  | { ok: true }
  | { ok: false; why: "foreign" | "signature" | "unrecorded" | "differs" };

/** The DER of the CA's own copy of a serial, or null when there is none. */
export async function storedCopy(ca: Authority, serial: string): Promise<Uint8Array | null> {
  const text = await ca.store.certPem(serial);
  if (text === null) return null;
  return parsePemBlocks(text).find((b) => b.label === "CERTIFICATE")?.der ?? null;
}

export async function provenance(ca: Authority, cert: ParsedCertificate, der: Uint8Array): Promise<Provenance> {
  if (!Buffer.from(cert.issuerRaw).equals(Buffer.from(ca.cert.subjectRaw))) return { ok: false, why: "foreign" };
  if (!issuedBy(ca, cert)) return { ok: false, why: "signature" };
  const stored = await storedCopy(ca, cert.serial);
  if (stored === null) return { ok: false, why: "unrecorded" };
  if (!Buffer.from(stored).equals(Buffer.from(der))) return { ok: false, why: "differs" };
  return { ok: true };
}

/** What a failed provenance means, for an error message or a verify check. */
export function provenanceMessage(p: Provenance, cert: ParsedCertificate, source: string): string {
  if (p.ok) return `${source} is serial ${cert.serial} of this CA`;
  switch (p.why) {
    case "foreign":
      return `${source} was not issued by this CA (issuer ${formatDn(cert.issuer)})`;
    case "signature":
      return `${source} names this CA as issuer, but its signature was not made with this CA's key (a forged or altered certificate)`;
    case "unrecorded":
      return `${source} is signed with this CA's key but serial ${cert.serial} is not a certificate this CA recorded (certs/${cert.serial}.pem)`;
    case "differs":
      return `${source} is signed with this CA's key but is not the certificate this CA recorded as serial ${cert.serial} (certs/${cert.serial}.pem differs)`;
  }
}

/** Refuse (NOT_ISSUED_HERE) a certificate file that is not this CA's own certificate. */
export async function requireIssuedHere(ca: Authority, cert: ParsedCertificate, der: Uint8Array, source: string, hint = "give the issued name or the serial instead"): Promise<void> {
  const p = await provenance(ca, cert, der);
  if (!p.ok) throw new PkiError("NOT_ISSUED_HERE", `${provenanceMessage(p, cert, source)}: refused; ${hint}`);
}

/** What to do instead, for show and verify given a certificate file that is not this CA's own. */
export function inspectElsewhereHint(file: string): string {
  return `give the issued name or the serial of this CA's certificate; to inspect a certificate from elsewhere use \`openssl x509 -in ${file} -noout -text\` (and \`openssl verify -CAfile <its CA> ${file}\`)`;
}
