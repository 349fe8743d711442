/**
 * Importing an easy-rsa or `openssl ca` directory: reading its index.txt and
 * deciding, certificate by certificate, what pki takes over. Pure: the caller
 * (src/ca/import.ts) reads the files and checks signatures; this module
 * parses, matches and lists every problem it finds.
 *
 * OpenSSL's index.txt (apps/ca.c): six tab-separated fields, status V/R/E,
 * expiry, revocation field, serial, file, subject. The revocation field is
 *   TIME                              revoked, no reason (unspecified)
 *   TIME,REASON                       keyCompromise, CACompromise, ... certificateHold
 *   TIME,holdInstruction,OID          `-crl_reason certificateHold -crl_hold OID`
 *   TIME,keyTime,GENERALIZEDTIME      `-crl_compromise TIME` (keyCompromise + invalidityDate)
 *   TIME,CAkeyTime,GENERALIZEDTIME    `-crl_CA_compromise TIME` (CACompromise + invalidityDate)
 * pki keeps all of them: the reason, the hold instruction and the
 * compromise (invalidity) time reach its index and its CRL.
 */
import { checkIssuedName } from "./issued-name.js";
import { parseRevocationField as parseOpensslRevocation, parseTime, type IndexEntry, type Reason, type Status } from "./index-format.js";
import { commonName } from "./names.js";
import { decodeBasicConstraints, decodeEku, findExtension, type ParsedCertificate } from "./parse.js";
import { normaliseSerial } from "./serial.js";

/** an index line of the source: the fields of pki's own IndexEntry, with the source's line number instead of a file */
export interface SourceEntry extends Omit<IndexEntry, "file"> {
  /** 1-based line number in the source index.txt */
  line: number;
}

export interface Problem {
  /** where: "index.txt line 3", "certs_by_serial/0A.pem", "crl.pem" */
  where: string;
  message: string;
  serial?: string;
}

export const problemText = (p: Problem): string => `${p.where}: ${p.message}`;

/**
 * The revocation field of a revoked line, in every form `openssl ca` writes
 * (index-format.ts parseRevocationField). Returns an error text on failure.
 */
export function parseRevocationField(field: string): { revokedAt: Date; reason?: Reason; holdInstruction?: string; invalidityDate?: Date } | string {
  if (/,removefromcrl$/i.test(field)) return "reason removeFromCRL (only meaningful in delta CRLs): decide whether the certificate is revoked and fix the line";
  const r = parseOpensslRevocation(field);
  if (typeof r === "string") return r;
  const out: { revokedAt: Date; reason?: Reason; holdInstruction?: string; invalidityDate?: Date } = { revokedAt: r.revokedAt };
  if (r.reason) out.reason = r.reason;
  if (r.holdInstruction) out.holdInstruction = r.holdInstruction;
  if (r.invalidityDate) out.invalidityDate = r.invalidityDate;
  return out;
}

/**
 * Every line of a source index.txt: the readable ones as entries, the others
 * as problems. A serial on two lines is a problem on the second (both stay in
 * `entries`; planImport decides).
 */
export function parseSourceIndex(text: string): { entries: SourceEntry[]; problems: Problem[] } {
  const entries: SourceEntry[] = [];
  const problems: Problem[] = [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, i) => {
    const line = i + 1;
    const where = `index.txt line ${line}`;
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (text.trim() === "") return;
    const f = text.split("\t");
    if (f.length !== 6) return problems.push({ where, message: `unparsable line (expected 6 tab-separated fields, found ${f.length})` });
    const [status, exp, rev, serialText, , subject] = f as [string, string, string, string, string, string];
    const serial = normaliseSerial(serialText);
    if (status !== "V" && status !== "R" && status !== "E") return problems.push({ where, message: `unparsable line (unknown status ${JSON.stringify(status)})`, serial: serial ?? undefined });
    const expires = parseTime(exp);
    if (!expires) return problems.push({ where, message: `unparsable line (bad expiry ${JSON.stringify(exp)})`, serial: serial ?? undefined });
    if (!serial || serialText.trim() === "") return problems.push({ where, message: `unparsable line (bad serial ${JSON.stringify(serialText)})` });
    const e: SourceEntry = { line, status, expires, serial, subject };
    if (status === "R") {
      const r = parseRevocationField(rev);
      if (typeof r === "string") return problems.push({ where, message: `unparsable line (${r})`, serial });
      Object.assign(e, r);
    } else if (rev !== "") {
      return problems.push({ where, message: `unparsable line (status ${status} with a revocation field ${JSON.stringify(rev)})`, serial });
    }
    entries.push(e);
  });
  return { entries, problems };
}

// ---------------------------------------------------------------- planning

/** A certificate file found in the source, already read (the caller checks its signature). */
export interface SourceCert {
  /** relative to the source directory */
  path: string;
  cert?: ParsedCertificate;
  /** why it could not be read */
  error?: string;
  /** signed by the source CA (issuer name and signature) */
  signedByCa?: boolean;
  /** easy-rsa issued/<name>.crt: the name */
  name?: string;
  /** the serial the file name claims (certs_by_serial/<SERIAL>.pem, newcerts/<SERIAL>.pem) */
  serialFromName?: string;
}

/** The source's current CRL, already read. */
export interface SourceCrl {
  path: string;
  crlNumber?: bigint;
  signedByCa: boolean;
  entries: Array<{ serial: string; revokedAt: Date; reason?: Reason; holdInstruction?: string; invalidityDate?: Date }>;
}

export interface PlannedCert {
  entry: SourceEntry;
  /** absent only for a revocation kept without its certificate (--skip-broken) */
  cert?: ParsedCertificate;
  name?: string;
  profile: string;
}

export interface ImportPlan {
  certificates: PlannedCert[];
  /** problems that block the import unless --skip-broken */
  problems: Problem[];
  /** what was left out or changed by --skip-broken, one line each */
  skipped: string[];
  /** harmless findings (files outside the index, names pki cannot use) */
  notes: string[];
  /** the number of pki's first CRL: above the source's crlnumber and the source CRL's number */
  crlNumber: bigint;
}

/** A name pki can use as issued/<name>.crt (authority.checkName) and that is no file of the CA itself. */
export function usableName(name: string): boolean {
  try {
    checkIssuedName(name); // the rules of `pki issue` (core/issued-name.ts): no collision with the CA's files or another name's
  } catch {
    return false;
  }
  return !/^(ca|parent|crl.*|index.*|pki|audit|ca-clients|crlnumber)$/i.test(name);
}

/** The pki profile a certificate corresponds to, from its basicConstraints and extendedKeyUsage. */
export function profileOf(cert: ParsedCertificate): string {
  const bc = findExtension(cert.extensions, "2.5.29.19");
  if (bc && decodeBasicConstraints(bc.value).ca) return "ca";
  const ekuExt = findExtension(cert.extensions, "2.5.29.37");
  const eku = ekuExt ? decodeEku(ekuExt.value) : [];
  if (eku.includes("codeSigning")) return "code-signing";
  const server = eku.includes("serverAuth");
  const client = eku.includes("clientAuth");
  if (server && client) return "ssl";
  if (server) return "server";
  if (client) return "client";
  return "imported";
}

export interface PlanInput {
  entries: SourceEntry[];
  indexProblems: Problem[];
  certs: SourceCert[];
  crl?: SourceCrl;
  /** the source's crlnumber file (next number to use), when present */
  crlNumberFile?: bigint;
  skipBroken: boolean;
}

/**
 * Match every index line with its certificate file and name, and list what
 * is wrong. The rule of --skip-broken: a broken valid entry is left out; a
 * broken revoked entry is kept as a revocation (pki never un-revokes a
 * certificate the source revoked), with its certificate file when a good one
 * exists. Every such decision is listed in `skipped`.
 */
export function planImport(p: PlanInput): ImportPlan {
  const problems: Problem[] = [...p.indexProblems];
  const notes: string[] = [];

  // certificate files by the serial inside them
  const bySerial = new Map<string, SourceCert[]>();
  for (const c of p.certs) {
    if (!c.cert) {
      problems.push({ where: c.path, message: `not a readable certificate (${c.error ?? "unknown error"})`, serial: c.serialFromName });
      continue;
    }
    if (c.serialFromName !== undefined && c.serialFromName !== c.cert.serial) {
      problems.push({ where: c.path, message: `the file name says serial ${c.serialFromName}, the certificate in it has ${c.cert.serial}`, serial: c.serialFromName });
      continue;
    }
    const list = bySerial.get(c.cert.serial) ?? [];
    list.push(c);
    bySerial.set(c.cert.serial, list);
  }

  // index lines by serial: duplicates are problems
  const lines = new Map<string, SourceEntry[]>();
  for (const e of p.entries) {
    const list = lines.get(e.serial) ?? [];
    if (list.length) problems.push({ where: `index.txt line ${e.line}`, message: `duplicate serial ${e.serial} (also on line ${list[0]!.line})`, serial: e.serial });
    list.push(e);
    lines.set(e.serial, list);
  }
  // serials whose lines could not be parsed at all
  const unparsed = new Set(p.indexProblems.map((x) => x.serial).filter((s): s is string => s !== undefined));

  const certificates: PlannedCert[] = [];
  const skipped: string[] = [];
  const broken = new Set<string>();
  for (const [serial, list] of lines) {
    // a duplicate resolves to the revoked line if any (revocation wins), else the first
    const entry = { ...(list.find((e) => e.status === "R") ?? list[0]!) };
    if (list.length > 1) broken.add(serial);
    const files = bySerial.get(serial) ?? [];
    const distinct = new Map(files.map((f) => [Buffer.from(f.cert!.der).toString("base64"), f]));
    let cert: ParsedCertificate | undefined;
    const where = `index.txt line ${entry.line}`;
    if (files.length === 0) {
      problems.push({ where, message: `serial ${serial} (${entry.subject}): no certificate file for it`, serial });
      broken.add(serial);
    } else if (distinct.size > 1) {
      problems.push({ where, message: `serial ${serial}: different certificates carry this serial (${files.map((f) => f.path).join(", ")})`, serial });
      broken.add(serial);
    } else {
      const f = files[0]!;
      if (!f.signedByCa) {
        problems.push({ where: f.path, message: `serial ${serial}: not signed by the source CA`, serial });
        broken.add(serial);
      } else if (f.cert!.notAfter.getTime() !== entry.expires.getTime()) {
        problems.push({ where, message: `serial ${serial}: the index says it expires ${entry.expires.toISOString()}, ${f.path} says ${f.cert!.notAfter.toISOString()}`, serial });
        broken.add(serial);
      } else {
        cert = f.cert;
      }
    }
    if (broken.has(serial)) {
      if (!p.skipBroken) continue;
      if (entry.status === "R") {
        // keep the revocation; the certificate only when a good one exists
        const good = [...distinct.values()].filter((f) => f.signedByCa && f.cert!.notAfter.getTime() === entry.expires.getTime());
        cert = good.length === 1 ? good[0]!.cert : undefined;
        skipped.push(`serial ${serial} (${entry.subject}): kept as revoked${cert ? "" : ", without its certificate file"} (a revocation is never dropped)`);
      } else {
        skipped.push(`serial ${serial} (${entry.subject}): left out`);
        continue;
      }
    }
    certificates.push({ entry, cert, profile: cert ? profileOf(cert) : "imported" });
  }
  for (const s of unparsed) {
    if (!lines.has(s) && p.skipBroken) skipped.push(`serial ${s}: its index line is unreadable, left out`);
  }
  for (const [serial, files] of bySerial) {
    if (!lines.has(serial) && !unparsed.has(serial)) notes.push(`${files.map((f) => f.path).join(", ")}: serial ${serial} is not in index.txt; not imported`);
  }

  // the source CRL: every serial it lists must be revoked in the index
  let crlNumber = p.crlNumberFile ?? 1n;
  if (p.crl) {
    if (!p.crl.signedByCa) {
      problems.push({ where: p.crl.path, message: "not signed by the source CA" });
      if (p.skipBroken) skipped.push(`${p.crl.path}: ignored (not signed by the source CA)`);
    } else {
      if (p.crl.crlNumber !== undefined && p.crl.crlNumber + 1n > crlNumber) crlNumber = p.crl.crlNumber + 1n;
      const planned = new Map(certificates.map((c) => [c.entry.serial, c]));
      for (const r of p.crl.entries) {
        const c = planned.get(r.serial);
        if (c && c.entry.status === "R") continue;
        if (c) {
          problems.push({ where: p.crl.path, message: `serial ${r.serial} is revoked in the CRL but "${c.entry.status}" in index.txt`, serial: r.serial });
          if (p.skipBroken) {
            c.entry.status = "R";
            c.entry.revokedAt = r.revokedAt;
            c.entry.reason = r.reason;
            c.entry.holdInstruction = r.holdInstruction;
            c.entry.invalidityDate = r.invalidityDate;
            skipped.push(`serial ${r.serial}: imported as revoked, as the source CRL says (a revocation is never dropped)`);
          }
        } else if (!lines.has(r.serial)) {
          problems.push({ where: p.crl.path, message: `serial ${r.serial} is revoked in the CRL but not in index.txt`, serial: r.serial });
          if (p.skipBroken) skipped.push(`serial ${r.serial}: listed by the source CRL only, left out (no index line, no expiry)`);
        }
      }
    }
  }
  if (crlNumber < 1n) crlNumber = 1n;
  return { certificates, problems, skipped, notes, crlNumber };
}

/**
 * Issued names: easy-rsa's issued/<name>.crt (by the serial of the file), and
 * for certificates it moved to revoked/ or renewed/ (kept by serial only), the
 * CN, which is how easy-rsa names its files. A name pki cannot use is noted,
 * and the certificate imported without a name.
 */
export function assignNames(plan: ImportPlan, certs: SourceCert[], cnForRevoked: boolean): void {
  const byPath = new Map<string, string>();
  for (const c of certs) if (c.name && c.cert) byPath.set(c.cert.serial, byPath.get(c.cert.serial) ?? c.name);
  for (const pc of plan.certificates) {
    if (!pc.cert || pc.profile === "ca") continue;
    const fromTree = byPath.get(pc.entry.serial);
    const name = fromTree ?? (cnForRevoked && pc.entry.status === "R" ? commonName(pc.cert.subject) : undefined);
    if (name === undefined) continue;
    if (!usableName(name)) {
      plan.notes.push(`serial ${pc.entry.serial}: the name ${JSON.stringify(name)} is not usable as a pki name (letters, digits, . - _ @); imported without a name`);
      continue;
    }
    pc.name = name;
  }
}
