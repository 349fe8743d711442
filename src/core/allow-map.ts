/**
 * The per-client allow-list for nginx, as an nginx `map` include file, and
 * the size of the CA-names list a client bundle makes nginx send. Pure.
 *
 * Why a map and not the bundle: `ssl_client_certificate` is also the list of
 * CA names nginx sends in every CertificateRequest (RFC 8446 4.2.4, RFC 5246
 * 7.4.4). That list has a 16-bit length: each certificate of the bundle adds
 * 2 + the DER length of its subject, and past 65,535 bytes OpenSSL cannot
 * build the message and every handshake fails ("SSL_do_handshake() failed
 * ... internal error"; about 2,000 client certificates of a few dozen bytes
 * of subject each). The map costs nothing per handshake: nginx looks the
 * serial up in a hash after verifying the certificate against the CA and CRL.
 *
 * File format: one `<SERIAL> 1;` line per allowed certificate, SERIAL
 * spelled as nginx's $ssl_client_serial spells it. nginx prints the serial
 * with OpenSSL's i2a_ASN1_INTEGER: the magnitude's octets in upper-case hex,
 * two digits each, no leading 00 octet (so 0x00C3... is "C3..."), "00" for
 * zero. That is the spelling of index.txt too (OpenSSL's BN_bn2hex), and
 * pki's own serials (17 octets, first octet 0x40-0x7F) are always 34 digits;
 * test/e2e/nginx-allow.test.ts compares against what a real nginx prints.
 */
import type { IndexEntry } from "./index-format.js";

/** $ssl_client_serial for a serial written as hex (any case, even or odd length, leading zeros). */
export function nginxSerial(hex: string): string {
  let s = hex.toUpperCase().replace(/^(00)+/, "");
  if (s.length % 2) s = "0" + s;
  if (s === "") s = "00";
  return s;
}

export interface AllowMapOptions {
  /** true: every valid certificate; a profile name: that profile's only */
  include: true | string;
  profileOf: (serial: string) => string | undefined;
  now: Date;
  /** a comment line saying which CA this list belongs to */
  caSubject: string;
}

/** The serials the allow-list lets in: valid (V), not expired, of the profile when one is chosen. */
export function allowedSerials(index: readonly IndexEntry[], o: Omit<AllowMapOptions, "caSubject">): string[] {
  const out: string[] = [];
  for (const e of index) {
    if (e.status !== "V" || e.expires.getTime() <= o.now.getTime()) continue;
    if (typeof o.include === "string" && o.profileOf(e.serial) !== o.include) continue;
    out.push(nginxSerial(e.serial));
  }
  return out;
}

export function allowMapText(index: readonly IndexEntry[], o: AllowMapOptions): string {
  const serials = allowedSerials(index, o);
  const subject = o.caSubject.replace(/[\r\n]/g, " ");
  let s =
    `# nginx map include written by pki: the certificates of ${subject}\n` +
    `# that may connect (${typeof o.include === "string" ? `profile ${o.include}, ` : ""}valid and unexpired): ${serials.length}.\n` +
    `# Rewritten on every issue, sign-csr, renew and revoke; do not edit.\n`;
  for (const serial of serials) s += `${serial} 1;\n`;
  return s;
}

/**
 * The CA-names list nginx sends for a bundle: the sum over its certificates
 * of 2 + the DER length of the subject. Over 65,535 bytes the handshake
 * cannot be built at all.
 */
export const CA_NAMES_LIMIT = 65_535;

export function caNamesListSize(subjectDerLengths: readonly number[]): number {
  return subjectDerLengths.reduce((n, l) => n + 2 + l, 0);
}
