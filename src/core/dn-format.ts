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
import { OID_CN, oidOfShortName, shortName, type Rdn } from "./names.js";

/** "/O=Acme/CN=web1" (with \xHH escapes, as names.onelineDn writes) back into RDNs. */
export function parseOnelineDn(s: string): Rdn[] {
  const out: Rdn[] = [];
  for (const part of s.split("/")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const key = part.slice(0, eq);
    const v = part.slice(eq + 1);
    // the common case (no escape, no surrogate) is the value itself (onelineValue): what unescapeOneline gives for it.
    // list, status, revoke --subject and sign-csr's duplicate check read every line of the index:
    // 100,000 subjects cost ~3 s when each character went through a TextEncoder of its own
    out.push({ type: oidOfShortName(key) ?? key, value: onelineValue(v) });
  }
  return out;
}

/**
 * The value of the last CN of an oneline subject, as parseOnelineDn and
 * names.commonName would give it, without building the other RDNs: sign-csr
 * looks for its CN among every valid certificate of the index.
 */
export function onelineCommonName(s: string): string | undefined {
  let end = s.length;
  while (end > 0) {
    const start = s.lastIndexOf("/", end - 1);
    const part = s.slice(start + 1, end);
    end = start < 0 ? 0 : start;
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const key = part.slice(0, eq);
    if ((oidOfShortName(key) ?? key) !== OID_CN) continue;
    return onelineValue(part.slice(eq + 1));
  }
  return undefined;
}

/** a backslash (an \xHH escape, perhaps) or half of a surrogate pair (encoded alone, as U+FFFD) */
const NEEDS_DECODING = /[\\\ud800-\udfff]/;
const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder();
const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

const onelineValue = (v: string): string => (NEEDS_DECODING.test(v) ? unescapeOneline(v) : v);

/** An oneline value's bytes: \xHH as that byte, every other UTF-16 unit as its UTF-8; then decoded as UTF-8. */
function unescapeOneline(v: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) === 0x5c && v.charCodeAt(i + 1) === 0x78 && isHex(v.charCodeAt(i + 2)) && isHex(v.charCodeAt(i + 3))) {
      bytes.push(parseInt(v.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      for (const b of UTF8_ENCODER.encode(v[i]!)) bytes.push(b);
    }
  }
  return UTF8_DECODER.decode(new Uint8Array(bytes));
}

/** Is the value its own RFC 2253 form: printable ASCII, none of ,+"\<>; and no leading # or space, no trailing space? */
function plain2253(value: string): boolean {
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    // control, DEL and non-ASCII; , + " \ < > ;
    if (c < 0x20 || c >= 0x7f || c === 44 || c === 43 || c === 34 || c === 92 || c === 60 || c === 62 || c === 59) return false;
  }
  return n === 0 || (value[0] !== "#" && value[0] !== " " && value[n - 1] !== " ");
}

function escape2253(value: string): string {
  // most values (agent-42, Example Org): as they are, without a byte array each (pki list of 1,000,000: ~1.5 s)
  if (plain2253(value)) return value;
  const bytes = UTF8_ENCODER.encode(value);
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
