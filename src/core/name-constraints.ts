/**
 * X.509 name constraints (RFC 5280 4.2.1.10): the permitted subtrees a CA
 * certificate carries, so that every verifier (OpenSSL and so nginx, GnuTLS,
 * Go, browsers) rejects a certificate below it that names anything else. Pure.
 *
 * `pki init --name-constraints dns:acme.lan,ip:10.0.0.0/8,email:acme.lan,uri:acme.lan`
 *
 * - dns:acme.lan   acme.lan and every name below it (RFC 5280: "host.acme.lan" matches)
 * - ip:10.0.0.0/8  addresses in the range (address + mask, as the RFC encodes it)
 * - email:acme.lan every mailbox at acme.lan; email:.acme.lan any mailbox below it;
 *                  email:ops@acme.lan that one mailbox
 * - uri:acme.lan   URIs whose host is acme.lan; uri:.acme.lan hosts below it
 *
 * The extension is marked critical, as RFC 5280 requires of a conforming CA.
 *
 * What pki refuses before signing is stricter than what a verifier rejects:
 * RFC 5280 leaves a name *type* without a permitted subtree unconstrained (a
 * CA constrained to dns:acme.lan may still certify ip:8.8.8.8 as far as the
 * RFC goes), but pki refuses a name of a type the list does not name, so the
 * CA never issues anything outside what the admin wrote. A CN that looks like
 * a host name is checked as a DNS name when DNS subtrees exist, as OpenSSL
 * does for a certificate without DNS subjectAltNames.
 */
import * as der from "./der.js";
import { PkiError, usage } from "./errors.js";
import { bytesToIp, checkDnsName, ipInCidr, ipToBytes, parseCidr, type San, type SanType } from "./names.js";
import type { Extension } from "./certificate.js";

export const OID_NAME_CONSTRAINTS = "2.5.29.30";

export interface NameConstraints {
  dns: string[];
  /** CIDR strings, "10.0.0.0/8" */
  ip: string[];
  email: string[];
  uri: string[];
}

export const emptyConstraints = (): NameConstraints => ({ dns: [], ip: [], email: [], uri: [] });

export const hasConstraints = (c: NameConstraints): boolean => c.dns.length + c.ip.length + c.email.length + c.uri.length > 0;

export function formatConstraints(c: NameConstraints): string[] {
  return [...c.dns.map((v) => `dns:${v}`), ...c.ip.map((v) => `ip:${v}`), ...c.email.map((v) => `email:${v}`), ...c.uri.map((v) => `uri:${v}`)];
}

const hostLike = (v: string): boolean => /^\.?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(v) && !v.includes("..");

/** Parse `--name-constraints`: a comma-separated list of dns:, ip:, email:, uri: subtrees. */
export function parseConstraintList(list: string): NameConstraints {
  const out = emptyConstraints();
  const items = list.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw usage("--name-constraints needs at least one subtree, e.g. dns:acme.lan,ip:10.0.0.0/8");
  for (const item of items) {
    const m = /^(dns|ip|email|uri):(.+)$/i.exec(item);
    if (!m) throw usage(`--name-constraints: ${JSON.stringify(item)} is not dns:DOMAIN, ip:CIDR, email:DOMAIN or uri:HOST`);
    const type = m[1]!.toLowerCase() as SanType;
    const v = m[2]!.trim();
    const bad = (what: string) => usage(`--name-constraints: ${JSON.stringify(item)}: ${what}`);
    switch (type) {
      case "dns": {
        const d = v.toLowerCase().replace(/\.$/, "").replace(/^\./, "");
        try {
          checkDnsName(d);
        } catch {
          throw bad("not a DNS domain");
        }
        if (d.startsWith("*")) throw bad("a subtree is a domain, not a wildcard (dns:acme.lan covers every name below it)");
        out.dns.push(d);
        break;
      }
      case "ip": {
        const c = parseCidr(v);
        if (!c || !v.includes("/")) throw bad("not a CIDR range such as 10.0.0.0/8 or fd00::/8");
        out.ip.push(`${bytesToIp(c.net)}/${c.bits}`);
        break;
      }
      case "email": {
        const at = v.indexOf("@");
        const host = at >= 0 ? v.slice(at + 1) : v;
        if ((at >= 0 && (at === 0 || v.indexOf("@", at + 1) >= 0 || !/^[\x21-\x7e]+$/.test(v))) || !hostLike(host)) throw bad("not a mail domain (acme.lan, .acme.lan) or a mailbox");
        out.email.push(v.toLowerCase());
        break;
      }
      case "uri":
        if (!hostLike(v) || v.includes("@")) throw bad("not a host (acme.lan) or a domain (.acme.lan): URI subtrees name hosts, not URLs");
        out.uri.push(v.toLowerCase());
        break;
    }
  }
  for (const k of ["dns", "ip", "email", "uri"] as const) out[k] = [...new Set(out[k])];
  return out;
}

/** NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees } ; GeneralSubtree ::= SEQUENCE { base GeneralName } */
export function nameConstraintsExtension(c: NameConstraints): Extension {
  const subtree = (gn: der.Bytes) => der.seq(gn);
  const trees: der.Bytes[] = [
    ...c.email.map((v) => subtree(der.ctxPrim(1, der.utf8(v)))),
    ...c.dns.map((v) => subtree(der.ctxPrim(2, der.utf8(v)))),
    ...c.uri.map((v) => subtree(der.ctxPrim(6, der.utf8(v)))),
    ...c.ip.map((v) => {
      const r = parseCidr(v)!;
      const mask = new Uint8Array(r.net.length);
      for (let i = 0; i < r.bits; i++) mask[i >> 3]! |= 0x80 >> (i & 7);
      const both = new Uint8Array(r.net.length * 2);
      both.set(r.net, 0);
      both.set(mask, r.net.length);
      return subtree(der.ctxPrim(7, both));
    }),
  ];
  return { oid: OID_NAME_CONSTRAINTS, critical: true, value: der.seq(der.ctx(0, ...trees)) };
}

/** Decode the permitted subtrees of a NameConstraints extension value (excluded subtrees are not used by pki and are ignored). */
export function decodeNameConstraints(value: der.Bytes): NameConstraints {
  const out = emptyConstraints();
  const top = der.read(value);
  for (const part of der.children(value, top)) {
    if (part.tag !== 0xa0) continue;
    for (const st of der.children(value, part)) {
      const gn = der.children(value, st)[0];
      if (!gn) continue;
      const c = der.content(value, gn);
      const text = () => new TextDecoder().decode(c).toLowerCase();
      switch (gn.tag) {
        case 0x81: out.email.push(text()); break;
        case 0x82: out.dns.push(text()); break;
        case 0x86: out.uri.push(text()); break;
        case 0x87: {
          const half = c.length / 2;
          const mask = c.subarray(half);
          let bits = 0;
          for (const b of mask) for (let i = 7; i >= 0; i--) if (b & (1 << i)) bits++;
          out.ip.push(`${bytesToIp(c.subarray(0, half))}/${bits}`);
          break;
        }
      }
    }
  }
  return out;
}

const norm = (s: string) => s.toLowerCase().replace(/\.$/, "");

/** RFC 5280: a DNS name is within "acme.lan" when it is acme.lan or ends with ".acme.lan". */
export function dnsWithin(name: string, base: string): boolean {
  const n = norm(name);
  const b = norm(base).replace(/^\./, "");
  if (b === "") return true;
  return n === b || n.endsWith("." + b);
}

function hostWithin(host: string, base: string): boolean {
  const h = norm(host);
  const b = norm(base);
  return b.startsWith(".") ? h.endsWith(b) : h === b;
}

export function emailWithin(email: string, base: string): boolean {
  const e = email.toLowerCase();
  const b = base.toLowerCase();
  if (b.includes("@")) return e === b;
  return hostWithin(e.slice(e.lastIndexOf("@") + 1), b);
}

export function uriWithin(uri: string, base: string): boolean {
  let host: string;
  try {
    host = new URL(uri).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return false;
  }
  if (!host) return false;
  return hostWithin(host, base);
}

const looksLikeHost = (s: string) => /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\.?$/.test(s);

/**
 * Refuse (POLICY_DENIED) a certificate whose names fall outside the permitted
 * subtrees of `c`. `whose` names the CA the constraints belong to, for the message.
 */
export function checkNameConstraints(c: NameConstraints, cn: string | undefined, sans: readonly San[], whose: string): void {
  if (!hasConstraints(c)) return;
  const deny = (what: string, why: string) =>
    new PkiError("POLICY_DENIED", `${what} is outside the name constraints of ${whose} (${why}): certify names within ${formatConstraints(c).join(", ")}`);
  for (const s of sans) {
    const list = c[s.type];
    if (list.length === 0) throw deny(`${s.type}:${s.value}`, `no ${s.type} subtree is permitted`);
    const ok =
      s.type === "dns" ? list.some((b) => dnsWithin(s.value, b))
      : s.type === "ip" ? list.some((b) => ipInCidr(s.value, b))
      : s.type === "email" ? list.some((b) => emailWithin(s.value, b))
      : list.some((b) => uriWithin(s.value, b));
    if (!ok) throw deny(`${s.type}:${s.value}`, `not within ${list.join(", ")}`);
  }
  if (cn !== undefined) {
    if (cn.includes("@") && /^[^@\s]+@[^@\s]+$/.test(cn) && c.email.length && !c.email.some((b) => emailWithin(cn, b))) throw deny(`CN=${cn}`, `not within ${c.email.join(", ")}`);
    if (!cn.includes("@") && looksLikeHost(cn) && !ipToBytes(cn) && c.dns.length && !c.dns.some((b) => dnsWithin(cn, b))) {
      // OpenSSL checks a host-like CN against DNS subtrees (certificates without DNS SANs); nginx would reject it
      throw deny(`CN=${cn}`, `not within ${c.dns.join(", ")}`);
    }
  }
}
