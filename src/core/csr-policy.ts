/**
 * What a request may ask for (cfssl-style signing policy). Pure.
 *
 * - Only the subject, the public key and the subjectAltNames are copied from
 *   a CSR into a fresh template; usages and CA-ness come from the profile.
 *   Every other requested extension is ignored and reported.
 * - A CSR that asks for basicConstraints CA:TRUE is refused outright: a
 *   script that feeds us such a request is either confused or hostile, and
 *   "never granted" is easiest to audit when the request fails loudly.
 * - Keys: RSA >= 2048 bits, P-256, P-384, P-521, Ed25519 (NIST SP 800-131A;
 *   no RSA-1024, no exotic curves that TLS stacks reject).
 * - The name policy of pki.json restricts, per profile, which DNS names, IP
 *   addresses and e-mail domains may be certified, so that a script holding
 *   the CA cannot mint certificates for arbitrary names.
 */
import { PkiError, usage } from "./errors.js";
import { OID, type KeyKind } from "./certificate.js";
import { checkDnsName, checkRdn, classifySan, commonName, CONCRETE_LABEL, dedupeSans, hasMultiValuedRdn, ipInCidr, ipToBytes, OID_CN, parseCidr, OID_EMAIL, type Rdn, type San } from "./names.js";
import { decodeBasicConstraints, decodeSans, extensionName, type RawExtension } from "./parse.js";
import type { Profile } from "./profiles.js";

export interface KeyFacts {
  /** "rsa", "ec", "ed25519", ... */
  type: string;
  curve?: string;
  bits?: number;
}

export function checkKey(k: KeyFacts): KeyKind {
  if (k.type === "rsa") {
    if (!k.bits || k.bits < 2048) throw new PkiError("WEAK_KEY", `RSA key of ${k.bits ?? "unknown"} bits refused: use at least 2048 bits (or P-256)`);
    if (k.bits > 16384) throw new PkiError("WEAK_KEY", `RSA key of ${k.bits} bits refused: at most 16384 bits`);
    return "rsa";
  }
  if (k.type === "ec") {
    if (k.curve === "P-256") return "ec-p256";
    if (k.curve === "P-384") return "ec-p384";
    if (k.curve === "P-521") return "ec-p521";
    throw new PkiError("WEAK_KEY", `EC curve ${k.curve ?? "unknown"} refused: use P-256, P-384 or P-521`);
  }
  if (k.type === "ed25519") return "ed25519";
  throw new PkiError("WEAK_KEY", `key type ${k.type} refused: use RSA (>= 2048 bits), P-256, P-384, P-521 or Ed25519`);
}

// ---------------------------------------------------------------- name policy

export interface NameRule {
  /** DNS patterns; "*" stands for exactly one concrete label: "*.agents.example.lan"; "=NAME" exact */
  dns?: string[];
  /** CIDR ranges: "10.20.0.0/16", "fd00::/8" */
  ip?: string[];
  /** e-mail domains: "example.lan" (exactly), ".example.lan" (any subdomain) */
  email?: string[];
  /** URI prefixes: "spiffe://example.lan/" */
  uri?: string[];
  /** CN patterns for CNs that are neither DNS names nor e-mail addresses; "*" any */
  cn?: string[];
}

export type NamePolicy = Record<string, NameRule>;

const RULE_FIELDS = new Set(["dns", "ip", "email", "uri", "cn"]);

/** Validate the "policy" object of pki.json when it is loaded. */
export function validateNamePolicy(data: unknown): NamePolicy {
  if (data === undefined || data === null) return {};
  const bad = (m: string) => new PkiError("CA_INVALID", `pki.json "policy": ${m}`);
  if (typeof data !== "object" || Array.isArray(data)) throw bad("must be an object of profile name -> rules");
  const out: NamePolicy = {};
  for (const [profile, rule] of Object.entries(data as Record<string, unknown>)) {
    if (typeof rule !== "object" || rule === null || Array.isArray(rule)) throw bad(`"${profile}" must be an object`);
    const r: NameRule = {};
    for (const [k, v] of Object.entries(rule as Record<string, unknown>)) {
      if (!RULE_FIELDS.has(k)) throw bad(`"${profile}": unknown field "${k}" (allowed: dns, ip, email, uri, cn)`);
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw bad(`"${profile}.${k}" must be a list of strings`);
      if (k === "ip") for (const c of v as string[]) if (!parseCidr(c)) throw bad(`"${profile}.ip": ${JSON.stringify(c)} is not a CIDR range like 10.0.0.0/8`);
      (r as Record<string, string[]>)[k] = v as string[];
    }
    out[profile] = r;
  }
  return out;
}

// where the tests and callers of the name policy have always found it
export { ipInCidr };

/**
 * A pattern's "*" stands for exactly one concrete label, never for a "*":
 * a script cannot obtain a wildcard certificate through a policy meant for
 * individual agents. A pattern written "=NAME" matches NAME exactly, which is
 * how an admin allows a wildcard certificate: "=*.apps.example.lan".
 */
export function dnsMatches(name: string, pattern: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/\.$/, "");
  if (pattern.startsWith("=")) return norm(name) === norm(pattern.slice(1));
  const n = norm(name).split(".");
  const p = norm(pattern).split(".");
  if (n.length !== p.length) return false;
  // a wildcard only as a whole leftmost label: "a*.x", "**.x" or "*" elsewhere is no DNS name
  return p.every((label, i) => (label === "*" ? CONCRETE_LABEL.test(n[i]!) : label === n[i] && !label.includes("*")));
}

function emailMatches(email: string, domain: string): boolean {
  const d = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
  const want = domain.toLowerCase();
  return want.startsWith(".") ? d.endsWith(want) : d === want;
}

const looksLikeDns = (s: string) => /^[A-Za-z0-9*_-]+(\.[A-Za-z0-9_-]+)+\.?$/.test(s);

/** The rule for a profile: its own entry, else the "*" entry, else none. */
export function ruleFor(policy: NamePolicy, profile: string): NameRule | undefined {
  return policy[profile] ?? policy["*"];
}

/**
 * Check every name of a request against the rule: each SAN, each CN (a
 * subject may carry several; OpenSSL's hostname check reads the first, most
 * applications the last) and each emailAddress attribute of the subject
 * (OpenSSL's e-mail check reads it when there is no e-mail SAN).
 * A CN with a "." or "*" in it is a host name to every TLS library: it must
 * be a valid DNS name (a wildcard only as the whole leftmost label) that the
 * dns patterns allow, whatever the "cn" list says.
 */
export function checkNamePolicy(rule: NameRule | undefined, profile: string, cn: string | readonly string[] | undefined, sans: readonly San[], subjectEmails: readonly string[] = []): void {
  if (!rule) return;
  const deny = (what: string) =>
    new PkiError("POLICY_DENIED", `${what} is outside the name policy for profile "${profile}" in pki.json; ask the CA admin to allow it`);
  for (const s of sans) {
    const ok =
      s.type === "dns" ? (rule.dns ?? []).some((p) => dnsMatches(s.value, p))
      : s.type === "ip" ? (rule.ip ?? []).some((c) => ipInCidr(s.value, c))
      : s.type === "email" ? (rule.email ?? []).some((d) => emailMatches(s.value, d))
      : (rule.uri ?? []).some((u) => s.value.startsWith(u));
    if (!ok) throw deny(`${s.type}:${s.value}`);
  }
  for (const e of subjectEmails) {
    if (!(rule.email ?? []).some((d) => emailMatches(e, d))) throw deny(`emailAddress=${e}`);
  }
  const cns = cn === undefined ? [] : typeof cn === "string" ? [cn] : cn;
  for (const c of cns) {
    if (c.includes("@")) {
      if (!(rule.email ?? []).some((d) => emailMatches(c, d))) throw deny(`CN=${c}`);
    } else if (ipToBytes(c)) {
      if (!(rule.ip ?? []).some((r) => ipInCidr(c, r))) throw deny(`CN=${c}`);
    } else if (looksLikeDns(c) || c.includes(".") || c.includes("*")) {
      if (!isDnsName(c) || !(rule.dns ?? []).some((p) => dnsMatches(c, p))) throw deny(`CN=${c}`);
    } else if (rule.cn && !rule.cn.some((p) => p === "*" || p === c)) {
      throw deny(`CN=${c}`);
    }
  }
}

function isDnsName(s: string): boolean {
  try {
    checkDnsName(s.toLowerCase());
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- the template

export interface RequestOverrides {
  cn?: string;
  sans?: San[];
}

export interface IssuanceTemplate {
  subject: Rdn[];
  /** the CSR's own subject DER when it is used unchanged (keeps its encoding) */
  subjectRaw?: Uint8Array;
  sans: San[];
  ignoredExtensions: string[];
  /** SAN entries of the request we could not honour (other GeneralName types) */
  droppedSans: string[];
}

/** Replace (or add) the CN of a subject. */
export function withCn(subject: readonly Rdn[], cn: string): Rdn[] {
  const r = { type: OID_CN, value: cn };
  checkRdn(r);
  const out = subject.filter((x) => x.type !== OID_CN);
  out.push(r);
  return out;
}

/** Apply the profile's SAN rules: server adds its CN as a DNS name. */
export function applySanRules(profile: Profile, subject: readonly Rdn[], sansIn: readonly San[]): San[] {
  let sans = dedupeSans(sansIn);
  const cn = commonName(subject);
  if (profile.cnAsSan && sans.length === 0 && cn) {
    // the contract: "the CN is added as a DNS name when none is given"
    try {
      sans = [classifySan(`dns:${cn}`)];
    } catch {
      /* a CN that is no DNS name: the "required" check below explains */
    }
  }
  if (profile.san === "required" && sans.length === 0) {
    throw usage(`profile "${profile.name}" needs a subjectAltName: pass --san dns:NAME (or a CN that is a DNS name)`);
  }
  if (profile.san === "forbidden" && sans.length > 0) {
    throw new PkiError("POLICY_DENIED", `profile "${profile.name}" does not allow subjectAltNames`);
  }
  for (const s of sans) {
    if (!profile.sanTypes.includes(s.type)) {
      throw new PkiError("POLICY_DENIED", `profile "${profile.name}" does not allow ${s.type} subjectAltNames (allowed: ${profile.sanTypes.join(", ")})`);
    }
  }
  return sans;
}

/** An extension of the request decoded, or the one-line error that it is malformed. */
function decodeRequested<T>(decode: (v: Uint8Array) => T, value: Uint8Array, name: string): T {
  try {
    return decode(value);
  } catch {
    throw new PkiError("BAD_INPUT", `the CSR's ${name} extension is malformed`);
  }
}

/**
 * Turn a (signature-verified) request into the names to certify. The caller
 * has checked the CSR signature and key before calling this.
 */
export function templateFromCsr(
  req: { subject: Rdn[]; subjectRaw: Uint8Array; extensions: RawExtension[] },
  profile: Profile,
  overrides: RequestOverrides,
  policy: NamePolicy,
): IssuanceTemplate {
  const ignored: string[] = [];
  let requestedSans: San[] = [];
  const droppedSans: string[] = [];
  for (const e of req.extensions) {
    if (e.oid === OID.subjectAltName) {
      for (const s of decodeRequested(decodeSans, e.value, "subjectAltName")) {
        if (s.type === "other") droppedSans.push(`[${s.tag & 0x1f}]`);
        else requestedSans.push(classifySan(`${s.type}:${s.value}`));
      }
      continue;
    }
    if (e.oid === OID.basicConstraints) {
      if (decodeRequested(decodeBasicConstraints, e.value, "basicConstraints").ca) {
        throw new PkiError("POLICY_DENIED", "the CSR asks to be a CA (basicConstraints CA:TRUE); pki never signs a CA certificate from a request");
      }
    }
    ignored.push(extensionName(e.oid));
  }
  if (droppedSans.length) {
    throw new PkiError("POLICY_DENIED", `the CSR names subjectAltName types pki does not certify (${droppedSans.join(", ")}); only dns, ip, email and uri`);
  }
  for (const r of req.subject) {
    try {
      checkRdn(r);
    } catch (e) {
      // a bad subject in a CSR is bad input (exit 1), not a command-line mistake
      if (e instanceof PkiError && e.code === "USAGE") throw new PkiError("BAD_INPUT", `the CSR's subject: ${e.message}`);
      throw e;
    }
  }
  // one name per attribute: a multi-valued RDN ("CN=a+CN=b") or a second CN
  // lets the requester choose which name a relying party reads
  if (hasMultiValuedRdn(req.subjectRaw)) {
    throw new PkiError("POLICY_DENIED", "the CSR's subject has a multi-valued RDN (two attributes joined by '+'); pki certifies one attribute per RDN: make a new request");
  }
  const cnCount = req.subject.filter((r) => r.type === OID_CN).length;
  if (cnCount > 1 && overrides.cn === undefined) {
    throw new PkiError("POLICY_DENIED", `the CSR's subject has ${cnCount} CNs; pki certifies at most one (OpenSSL's hostname check reads the first, most applications the last): make a new request or pass --cn NAME`);
  }
  let subject = req.subject;
  let subjectRaw: Uint8Array | undefined = req.subjectRaw;
  if (overrides.cn !== undefined) {
    subject = withCn(subject, overrides.cn);
    subjectRaw = undefined;
  }
  if (subject.length === 0 && (overrides.sans ?? requestedSans).length === 0) {
    throw new PkiError("BAD_INPUT", "the CSR has neither a subject nor subjectAltNames: pass --cn NAME");
  }
  const sans = applySanRules(profile, subject, overrides.sans ?? requestedSans);
  checkNamePolicy(
    ruleFor(policy, profile.name),
    profile.name,
    subject.filter((r) => r.type === OID_CN).map((r) => r.value),
    sans,
    subject.filter((r) => r.type === OID_EMAIL).map((r) => r.value),
  );
  return { subject, subjectRaw, sans, ignoredExtensions: ignored, droppedSans };
}
