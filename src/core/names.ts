/**
 * Distinguished names and subjectAltNames. Pure: no I/O.
 *
 * - DNs are written "CN=web1,O=Acme,C=FR" on the command line (RFC 4514 style,
 *   `\,` escapes a comma) and encoded in the order written, except that
 *   `init`'s separate flags are put in OpenSSL's usual order C, ST, L, O, OU, CN.
 * - String types follow OpenSSL's default `utf8only` mask and RFC 5280 4.1.2.6:
 *   UTF8String, except countryName/serialNumber/dnQualifier (PrintableString)
 *   and emailAddress/domainComponent (IA5String).
 * - SANs are classified before issuing (as mkcert does): `dns:`, `ip:`,
 *   `email:`, `uri:` prefixes, else an IP literal, an e-mail (has @),
 *   a URI (has ://), otherwise a DNS name.
 */
import * as der from "./der.js";
import { PkiError, usage } from "./errors.js";

export interface Rdn {
  /** dotted OID */
  type: string;
  value: string;
  /** DER string tag; chosen from the type when absent */
  tag?: number;
}

const ATTRS: Array<[short: string, oid: string]> = [
  ["C", "2.5.4.6"],
  ["ST", "2.5.4.8"],
  ["L", "2.5.4.7"],
  ["O", "2.5.4.10"],
  ["OU", "2.5.4.11"],
  ["CN", "2.5.4.3"],
  ["emailAddress", "1.2.840.113549.1.9.1"],
  ["serialNumber", "2.5.4.5"],
  ["DC", "0.9.2342.19200300.100.1.25"],
  ["UID", "0.9.2342.19200300.100.1.1"],
  ["street", "2.5.4.9"],
  ["title", "2.5.4.12"],
  ["SN", "2.5.4.4"],
  ["GN", "2.5.4.42"],
  ["postalCode", "2.5.4.17"],
  ["dnQualifier", "2.5.4.46"],
];
const SHORT_TO_OID = new Map(ATTRS.map(([s, o]) => [s.toLowerCase(), o]));
SHORT_TO_OID.set("e", "1.2.840.113549.1.9.1");
SHORT_TO_OID.set("email", "1.2.840.113549.1.9.1");
const OID_TO_SHORT = new Map(ATTRS.map(([s, o]) => [o, s]));
const EXACT_SHORT_TO_OID = new Map(ATTRS);

export const OID_CN = "2.5.4.3";
export const OID_C = "2.5.4.6";
export const OID_EMAIL = "1.2.840.113549.1.9.1";

export const shortName = (oid: string): string => OID_TO_SHORT.get(oid) ?? oid;

/** The OID of a short name spelled exactly as OpenSSL writes it ("CN", "emailAddress"), or undefined. */
export const oidOfShortName = (short: string): string | undefined => EXACT_SHORT_TO_OID.get(short);

/** Upper bounds of RFC 5280 Appendix A (ub-common-name 64, ...). */
const UPPER_BOUND: Record<string, number> = {
  "2.5.4.3": 64,
  "2.5.4.10": 64,
  "2.5.4.11": 64,
  "2.5.4.7": 128,
  "2.5.4.8": 128,
  "2.5.4.6": 2,
  "1.2.840.113549.1.9.1": 255,
};

function tagFor(type: string): number {
  if (type === OID_C || type === "2.5.4.5" || type === "2.5.4.46") return der.TAG.PrintableString;
  if (type === OID_EMAIL || type === "0.9.2342.19200300.100.1.25") return der.TAG.IA5String;
  return der.TAG.UTF8String;
}

/** Parse "CN=a,O=b" (or OpenSSL's "/CN=a/O=b") into RDNs, in the order written. */
export function parseDn(text: string): Rdn[] {
  const s = text.trim();
  if (!s) throw usage("empty subject: pass --cn or --subject \"CN=...,O=...\"");
  const slashForm = s.startsWith("/");
  const sep = slashForm ? "/" : ",";
  const parts: string[] = [];
  let cur = "";
  for (let i = slashForm ? 1 : 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "\\" && i + 1 < s.length) {
      cur += s[++i];
      continue;
    }
    if (ch === sep || (!slashForm && ch === "+")) {
      parts.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => {
    const eq = p.indexOf("=");
    if (eq <= 0) throw usage(`bad subject component ${JSON.stringify(p.trim())}: write it as TYPE=value, e.g. CN=web1,O=Acme`);
    const key = p.slice(0, eq).trim();
    const value = p.slice(eq + 1).trim();
    if (/^[\d.]+$/.test(key) && !der.isValidOid(key)) throw usage(`subject attribute ${JSON.stringify(key)} is not a valid OID (the first arc 0, 1 or 2, the second below 40 unless the first is 2)`);
    const type = /^\d+(\.\d+)+$/.test(key) ? key : SHORT_TO_OID.get(key.toLowerCase());
    if (!type) throw usage(`unknown subject attribute ${JSON.stringify(key)}: use C, ST, L, O, OU, CN, emailAddress, DC, UID or a dotted OID`);
    checkRdn({ type, value });
    return { type, value };
  });
}

export function checkRdn(r: Rdn): void {
  if (!r.value) throw usage(`empty value for ${shortName(r.type)} in the subject`);
  const ub = UPPER_BOUND[r.type];
  if (ub !== undefined && [...r.value].length > ub) {
    throw new PkiError("BAD_INPUT", `${shortName(r.type)} is ${[...r.value].length} characters long; RFC 5280 allows at most ${ub}`);
  }
  if (/[\u0000-\u001f\u007f]/.test(r.value)) {
    throw new PkiError("BAD_INPUT", `${shortName(r.type)} contains control characters; remove them from the subject`);
  }
  // "CN=web/CN=admin" reads as two CNs in OpenSSL's /-separated form (index.txt,
  // nginx's $ssl_client_s_dn_legacy, many apps): refuse it rather than let a
  // requester smuggle a second name past an application that parses that form.
  if (r.value.includes("/")) {
    throw new PkiError("BAD_INPUT", `${shortName(r.type)} ${JSON.stringify(r.value.slice(0, 64))} contains '/', which OpenSSL's /C=../CN=.. form cannot tell from a separator; remove it from the subject`);
  }
  if (r.type === OID_C && !/^[A-Z]{2}$/.test(r.value)) {
    throw usage(`country must be a two-letter ISO 3166 code such as FR or US, not ${JSON.stringify(r.value)}`);
  }
}

/** Order of `init`'s separate flags, as OpenSSL's default config prints them. */
export function dnFromParts(p: { country?: string; state?: string; locality?: string; org?: string; ou?: string; cn: string }): Rdn[] {
  const out: Rdn[] = [];
  const add = (type: string, v?: string) => {
    if (v !== undefined && v !== "") {
      const r = { type, value: v };
      checkRdn(r);
      out.push(r);
    }
  };
  add(OID_C, p.country);
  add("2.5.4.8", p.state);
  add("2.5.4.7", p.locality);
  add("2.5.4.10", p.org);
  add("2.5.4.11", p.ou);
  add(OID_CN, p.cn);
  return out;
}

export function encodeName(rdns: readonly Rdn[]): der.Bytes {
  return der.seq(
    ...rdns.map((r) => {
      const tag = r.tag ?? tagFor(r.type);
      if (tag === der.TAG.PrintableString && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(r.value)) {
        return der.set(der.seq(der.oid(r.type), der.tlv(der.TAG.UTF8String, der.utf8(r.value))));
      }
      return der.set(der.seq(der.oid(r.type), der.tlv(tag, der.utf8(r.value))));
    }),
  );
}

function decodeString(tag: number, b: der.Bytes): string {
  if (tag === der.TAG.BMPString) {
    let s = "";
    for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode((b[i]! << 8) | b[i + 1]!);
    return s;
  }
  if (tag === der.TAG.UniversalString) {
    let s = "";
    for (let i = 0; i + 3 < b.length; i += 4) s += String.fromCodePoint(((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0);
    return s;
  }
  if (tag === der.TAG.T61String) return String.fromCharCode(...b);
  return new TextDecoder("utf-8", { fatal: false }).decode(b);
}

/** Decode a DER Name (as found in a certificate or CSR) into RDNs. */
export function decodeName(buf: der.Bytes, node: der.Node = der.read(buf)): Rdn[] {
  const out: Rdn[] = [];
  for (const setNode of der.children(buf, node)) {
    for (const atv of der.children(buf, setNode)) {
      const [t, v] = der.children(buf, atv);
      if (!t || !v) throw new der.DerError("bad AttributeTypeAndValue");
      out.push({ type: der.readOid(buf, t), value: decodeString(v.tag, der.content(buf, v)), tag: v.tag });
    }
  }
  return out;
}

/**
 * Does a DER Name hold a multi-valued RDN (a SET with more than one
 * attribute, "CN=a+CN=b")? decodeName flattens them; the name policy refuses
 * them, because which member a relying party reads as "the" CN is up to it.
 */
export function hasMultiValuedRdn(buf: der.Bytes, node: der.Node = der.read(buf)): boolean {
  return der.children(buf, node).some((set) => der.children(buf, set).length > 1);
}

/** RFC 4514-ish display form, in encoded order: "CN=web1, O=Acme". */
export function formatDn(rdns: readonly Rdn[]): string {
  return rdns.map((r) => `${shortName(r.type)}=${r.value.replace(/([,+\\])/g, "\\$1")}`).join(", ");
}

/**
 * OpenSSL's X509_NAME_oneline form used in index.txt: "/C=FR/O=Acme/CN=web1".
 * Bytes outside printable ASCII are written \xHH (UTF-8 bytes), as OpenSSL
 * does; we also escape '/' and '\' so that the text stays unambiguous and a
 * tab or newline can never break the tab-separated line format.
 */
export function onelineDn(rdns: readonly Rdn[]): string {
  let s = "";
  for (const r of rdns) {
    s += "/" + shortName(r.type) + "=";
    for (const byte of new TextEncoder().encode(r.value)) {
      if (byte < 0x20 || byte > 0x7e || byte === 0x2f || byte === 0x5c) s += "\\x" + byte.toString(16).toUpperCase().padStart(2, "0");
      else s += String.fromCharCode(byte);
    }
  }
  return s;
}

export function commonName(rdns: readonly Rdn[]): string | undefined {
  for (let i = rdns.length - 1; i >= 0; i--) if (rdns[i]!.type === OID_CN) return rdns[i]!.value;
  return undefined;
}

// ---------------------------------------------------------------- SANs

export type SanType = "dns" | "ip" | "email" | "uri";
export interface San {
  type: SanType;
  value: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function ipToBytes(ip: string): Uint8Array | null {
  if (IPV4.test(ip)) return Uint8Array.from(ip.split(".").map(Number));
  if (!ip.includes(":") || !/^[0-9a-fA-F:.]+$/.test(ip)) return null;
  let head = ip;
  let tail4: number[] = [];
  const lastColon = ip.lastIndexOf(":");
  const maybe4 = ip.slice(lastColon + 1);
  if (maybe4.includes(".")) {
    if (!IPV4.test(maybe4)) return null;
    tail4 = maybe4.split(".").map(Number);
    head = ip.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === "" ? [] : s.split(":"));
  const a = parse(halves[0]!);
  const b = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - a.length - b.length;
  if (halves.length === 1 ? a.length !== 8 : fill < 1) return null;
  const groups = [...a, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...b];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail4.length) out.set(tail4, 12);
  return out;
}

/**
 * "10.0.0.0/8", "fd00::/8" or a bare address (all its bits): the network with
 * its host bits cleared, and the prefix length; null for anything else.
 */
export function parseCidr(v: string): { net: Uint8Array; bits: number } | null {
  const [addr, len, extra] = v.split("/");
  if (extra !== undefined) return null;
  const net = ipToBytes(addr ?? "");
  if (!net) return null;
  const bits = len === undefined ? net.length * 8 : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!Number.isInteger(bits) || bits < 0 || bits > net.length * 8) return null;
  const out = Uint8Array.from(net);
  for (let i = bits; i < out.length * 8; i++) out[i >> 3]! &= ~(0x80 >> (i & 7));
  return { net: out, bits };
}

/** Is the address in the range? An IPv4 address is never in an IPv6 range (nor the reverse, mapped addresses included). */
export function ipInCidr(ip: string, range: string): boolean {
  const a = ipToBytes(ip);
  const r = parseCidr(range);
  if (!a || !r || a.length !== r.net.length) return false;
  for (let i = 0; i < r.bits; i++) {
    const m = 0x80 >> (i & 7);
    if ((a[i >> 3]! & m) !== (r.net[i >> 3]! & m)) return false;
  }
  return true;
}

export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return [...b].join(".");
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    // compress the longest run of zeros (RFC 5952)
    let best = -1, bestLen = 0;
    for (let i = 0; i < 8; ) {
      if (groups[i] !== "0") { i++; continue; }
      let j = i;
      while (j < 8 && groups[j] === "0") j++;
      if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
      i = j;
    }
    if (best < 0) return groups.join(":");
    return groups.slice(0, best).join(":") + "::" + groups.slice(best + bestLen).join(":");
  }
  return Buffer.from(b).toString("hex");
}

const DNS_LABEL = /^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)$/;
/** One concrete DNS label: what a policy's "*" may stand for (never "*", "a*", "**"). */
export const CONCRETE_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;

export function checkDnsName(name: string): void {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  if (!n || n.length > 253) throw new PkiError("BAD_INPUT", `invalid DNS name ${JSON.stringify(name)}`);
  if (!/^[\x21-\x7e]+$/.test(n)) {
    throw new PkiError("BAD_INPUT", `DNS name ${JSON.stringify(name)} is not ASCII: give its IDNA (xn--) form`);
  }
  const labels = n.split(".");
  labels.forEach((l, i) => {
    if (!DNS_LABEL.test(l) || (l === "*" && i !== 0)) throw new PkiError("BAD_INPUT", `invalid DNS name ${JSON.stringify(name)}`);
  });
  if (labels[0] === "*" && labels.length < 3) {
    throw new PkiError("BAD_INPUT", `wildcard ${JSON.stringify(name)} is too broad: a wildcard needs at least two labels after it`);
  }
}

/** Classify one SAN entry: explicit prefix, else IP, e-mail, URI, DNS. */
export function classifySan(entry: string): San {
  const e = entry.trim();
  const m = e.match(/^(dns|ip|email|uri):(.*)$/i);
  let type: SanType;
  let value: string;
  if (m) {
    type = m[1]!.toLowerCase() as SanType;
    value = m[2]!.trim();
  } else if (ipToBytes(e)) {
    type = "ip";
    value = e;
  } else if (e.includes("://")) {
    type = "uri";
    value = e;
  } else if (e.includes("@")) {
    type = "email";
    value = e;
  } else {
    type = "dns";
    value = e;
  }
  if (!value) throw usage(`empty subjectAltName entry ${JSON.stringify(entry)}`);
  switch (type) {
    case "ip": {
      const b = ipToBytes(value);
      if (!b) throw new PkiError("BAD_INPUT", `invalid IP address ${JSON.stringify(value)} in subjectAltName`);
      value = bytesToIp(b);
      break;
    }
    case "email":
      if (!/^[^@\s]+@[^@\s]+$/.test(value) || !/^[\x21-\x7e]+$/.test(value)) throw new PkiError("BAD_INPUT", `invalid e-mail address ${JSON.stringify(value)} in subjectAltName`);
      break;
    case "uri":
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+$/.test(value)) throw new PkiError("BAD_INPUT", `invalid URI ${JSON.stringify(value)} in subjectAltName`);
      break;
    case "dns":
      // the absolute form "host.example.lan." is the same name; certificates carry it without the dot
      value = value.toLowerCase().replace(/\.$/, "");
      checkDnsName(value);
      break;
  }
  return { type, value };
}

export function parseSanList(list: string | undefined): San[] {
  if (!list) return [];
  return dedupeSans(list.split(",").filter((s) => s.trim() !== "").map(classifySan));
}

export function dedupeSans(sans: readonly San[]): San[] {
  const seen = new Set<string>();
  return sans.filter((s) => {
    const k = `${s.type}:${s.value}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export const formatSan = (s: San): string => `${s.type}:${s.value}`;

export function encodeGeneralName(s: San): der.Bytes {
  switch (s.type) {
    case "email":
      return der.ctxPrim(1, der.utf8(s.value));
    case "dns":
      return der.ctxPrim(2, der.utf8(s.value));
    case "uri":
      return der.ctxPrim(6, der.utf8(s.value));
    case "ip":
      return der.ctxPrim(7, ipToBytes(s.value)!);
  }
}

/** Decode GeneralNames; unknown choices are returned as null (reported, not issued). */
export function decodeGeneralNames(buf: der.Bytes, node: der.Node): Array<San | { type: "other"; tag: number }> {
  return der.children(buf, node).map((n) => {
    const c = der.content(buf, n);
    switch (n.tag) {
      case 0x81:
        return { type: "email" as const, value: new TextDecoder().decode(c) };
      case 0x82:
        return { type: "dns" as const, value: new TextDecoder().decode(c) };
      case 0x86:
        return { type: "uri" as const, value: new TextDecoder().decode(c) };
      case 0x87:
        return { type: "ip" as const, value: bytesToIp(c) };
      default:
        return { type: "other" as const, tag: n.tag };
    }
  });
}
