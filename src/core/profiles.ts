/**
 * Certificate profiles as validated data (cfssl style). A profile decides
 * key usages, extended key usages and SAN rules; the request never does.
 *
 * The built-in profiles live in templates/profiles/<name>.json; a CA may add
 * or override profiles in <dir>/profiles/<name>.json. Every profile is
 * validated when loaded: an unknown field or usage name is an error naming
 * the file and the field, never silently dropped.
 *
 * Pure: the caller reads the files and hands us parsed JSON.
 */
import { isValidOid } from "./der.js";
import { PkiError } from "./errors.js";
import type { SanType } from "./names.js";

export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  contentCommitment: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

export const EKU_OIDS = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  codeSigning: "1.3.6.1.5.5.7.3.3",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  timeStamping: "1.3.6.1.5.5.7.3.8",
  OCSPSigning: "1.3.6.1.5.5.7.3.9",
} as const;
export type EkuName = keyof typeof EKU_OIDS;
export const ekuName = (oid: string): string => (Object.entries(EKU_OIDS).find(([, o]) => o === oid)?.[0] ?? oid);

export type SanRule = "required" | "optional" | "forbidden";

export interface Profile {
  name: string;
  description: string;
  keyUsage: KeyUsageName[];
  /** Added when the subject key is RSA (TLS <= 1.2 RSA key transport). Default none. */
  rsaKeyUsage: KeyUsageName[];
  /** EKU names or dotted OIDs, in order. */
  extendedKeyUsage: string[];
  /** Default "optional". */
  san: SanRule;
  /** Allowed SAN types. Default all four. */
  sanTypes: SanType[];
  /** server: the CN becomes a DNS name when no SAN is given. Default false. */
  cnAsSan: boolean;
  /** Validity in days when --days is not given. Default: pki.json "defaultDays", else 365. */
  days?: number;
  /** Upper bound for --days. Default none (the CA's notAfter still caps it). */
  maxDays?: number;
  /** Where the profile came from (for error messages). */
  source: string;
}

const ALLOWED_FIELDS = new Set(["description", "keyUsage", "rsaKeyUsage", "extendedKeyUsage", "san", "sanTypes", "cnAsSan", "days", "maxDays"]);
const SAN_TYPES: readonly SanType[] = ["dns", "ip", "email", "uri"];

export const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function bad(source: string, msg: string): PkiError {
  return new PkiError("PROFILE_INVALID", `profile ${source}: ${msg}`);
}

function stringList(source: string, field: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw bad(source, `"${field}" must be a list of strings`);
  return v as string[];
}

export function validateProfile(name: string, data: unknown, source: string): Profile {
  if (!PROFILE_NAME.test(name)) throw bad(source, `name ${JSON.stringify(name)} must be lower-case letters, digits, - or _`);
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw bad(source, "must be a JSON object");
  const d = data as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!ALLOWED_FIELDS.has(k)) throw bad(source, `unknown field "${k}" (allowed: ${[...ALLOWED_FIELDS].join(", ")})`);

  const usages = (field: string): KeyUsageName[] => {
    const list = d[field] === undefined ? [] : stringList(source, field, d[field]);
    // own properties only: "constructor" or "__proto__" are in every object
    for (const u of list) if (!Object.hasOwn(KEY_USAGE_BITS, u)) throw bad(source, `unknown key usage "${u}" in "${field}" (known: ${Object.keys(KEY_USAGE_BITS).join(", ")})`);
    for (const u of list) if (u === "keyCertSign" || u === "cRLSign") throw bad(source, `"${u}" is for CA certificates only; a leaf profile cannot grant it`);
    return list as KeyUsageName[];
  };
  const keyUsage = usages("keyUsage");
  if (keyUsage.length === 0) throw bad(source, `"keyUsage" must list at least one usage`);
  const rsaKeyUsage = usages("rsaKeyUsage");

  const eku = d.extendedKeyUsage === undefined ? [] : stringList(source, "extendedKeyUsage", d.extendedKeyUsage);
  for (const e of eku) {
    if (Object.hasOwn(EKU_OIDS, e)) continue;
    if (/^[\d.]+$/.test(e)) {
      if (!isValidOid(e)) throw bad(source, `extended key usage "${e}" is not a valid OID (at least two arcs, the first 0, 1 or 2, the second below 40 unless the first is 2)`);
      continue;
    }
    throw bad(source, `unknown extended key usage "${e}" (known: ${Object.keys(EKU_OIDS).join(", ")}, or a dotted OID)`);
  }

  const san = d.san === undefined ? "optional" : d.san;
  if (san !== "required" && san !== "optional" && san !== "forbidden") throw bad(source, `"san" must be "required", "optional" or "forbidden"`);
  const sanTypes = d.sanTypes === undefined ? [...SAN_TYPES] : stringList(source, "sanTypes", d.sanTypes);
  for (const t of sanTypes) if (!SAN_TYPES.includes(t as SanType)) throw bad(source, `unknown SAN type "${t}" in "sanTypes" (known: ${SAN_TYPES.join(", ")})`);

  const posInt = (field: string): number | undefined => {
    const v = d[field];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 36500) throw bad(source, `"${field}" must be a whole number of days from 1 to 36500`);
    return v;
  };
  if (d.cnAsSan !== undefined && typeof d.cnAsSan !== "boolean") throw bad(source, `"cnAsSan" must be true or false`);
  if (d.description !== undefined && typeof d.description !== "string") throw bad(source, `"description" must be a string`);

  return {
    name,
    description: (d.description as string | undefined) ?? "",
    keyUsage,
    rsaKeyUsage,
    extendedKeyUsage: eku,
    san,
    sanTypes: sanTypes as SanType[],
    cnAsSan: (d.cnAsSan as boolean | undefined) ?? false,
    days: posInt("days"),
    maxDays: posInt("maxDays"),
    source,
  };
}

export const ekuOid = (e: string): string => (Object.hasOwn(EKU_OIDS, e) ? (EKU_OIDS as Record<string, string>)[e]! : e);

/**
 * The validity of a leaf, in days: --days when given (refused above the
 * profile's maxDays: POLICY_DENIED), else the profile's days, else pki.json's
 * defaultDays, else 365 (CONTRACT "Built-in profiles"). The CA's notAfter
 * still caps the result when the certificate is built (core/certificate.ts
 * validity). One rule for issue, sign-csr and renew (#9).
 */
export function leafDays(profile: Pick<Profile, "name" | "days" | "maxDays">, days: number | undefined, caDefaultDays: number | undefined): number {
  if (days !== undefined && profile.maxDays !== undefined && days > profile.maxDays) {
    throw new PkiError("POLICY_DENIED", `profile "${profile.name}" allows at most ${profile.maxDays} days, not ${days}`);
  }
  return days ?? profile.days ?? caDefaultDays ?? 365;
}
