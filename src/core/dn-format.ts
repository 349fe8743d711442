/**
 * Distinguished names in the two textual forms that the world outside pki
 * compares against. Pure.
 *
 * - nginx's `$ssl_client_s_dn` (and so the `X-Ssl-Client-DN` header an
 *   application behind nginx reads) is OpenSSL's X509_NAME_print_ex with
 *   XN_FLAG_RFC2253 (nginx >= 1.11.6): the RDNs in reverse order, joined by
 *   ",", special characters escaped with "\", bytes outside printable ASCII
 *   written as \XX of their UTF-8 encoding. `pki list --format dn` prints
 *   exactly that, so that an allow-list compares equal byte for byte.
 * - index.txt keeps OpenSSL's oneline form "/C=FR/O=Acme/CN=web1" (see
 *   names.onelineDn); parseOnelineDn reads it back.
 */
import { oidOfShortName, shortName, type Rdn } from "./names.js";

/** "/O=Acme/CN=web1" (with \xHH escapes, as names.onelineDn writes) back into RDNs. */
export function parseOnelineDn(s: string): Rdn[] {
  const out: Rdn[] = [];
  for (const part of s.split("/")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const key = part.slice(0, eq);
    const bytes: number[] = [];
    const v = part.slice(eq + 1);
    for (let i = 0; i < v.length; i++) {
      const m = /^\\x([0-9A-Fa-f]{2})/.exec(v.slice(i, i + 4));
      if (m) {
        bytes.push(parseInt(m[1]!, 16));
        i += 3;
      } else bytes.push(...new TextEncoder().encode(v[i]!));
    }
    out.push({ type: oidOfShortName(key) ?? key, value: new TextDecoder().decode(new Uint8Array(bytes)) });
  }
  return out;
}

function escape2253(value: string): string {
  const bytes = new TextEncoder().encode(value);
  let s = "";
  bytes.forEach((b, i) => {
    const ch = String.fromCharCode(b);
    if (b < 0x20 || b >= 0x7f) s += "\\" + b.toString(16).toUpperCase().padStart(2, "0");
    else if (',+"\\<>;'.includes(ch)) s += "\\" + ch;
    else if ((i === 0 && (ch === "#" || ch === " ")) || (i === bytes.length - 1 && ch === " ")) s += "\\" + ch;
    else s += ch;
  });
  return s;
}

/** OpenSSL's XN_FLAG_RFC2253 form: what nginx puts into $ssl_client_s_dn. */
export function rfc2253Dn(rdns: readonly Rdn[]): string {
  return [...rdns]
    .reverse()
    .map((r) => `${shortName(r.type)}=${escape2253(r.value)}`)
    .join(",");
}
