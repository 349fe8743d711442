/**
 * The certificate database in OpenSSL `ca` index format (index.txt), so that
 * `openssl ca -status`, `-revoke` and `-gencrl` work on a pki directory.
 *
 * One line per certificate, six tab-separated fields:
 *   status   V (valid), R (revoked), E (expired; OpenSSL's -updatedb)
 *   expiry   YYMMDDHHMMSSZ (UTCTime) before 2050, YYYYMMDDHHMMSSZ after
 *   revoked  empty, or the revocation time in the same form, then
 *            ",reason" in OpenSSL's spelling (CACompromise, ...); no reason
 *            means unspecified (RFC 5280 5.3.1: omit reasonCode rather than
 *            write unspecified)
 *   serial   upper-case hex, even length
 *   file     "unknown" (OpenSSL's placeholder)
 *   subject  /C=../O=../CN=.. (see names.onelineDn: escapes keep tabs,
 *            newlines and '/' out of the field)
 *
 * Our own per-certificate facts that OpenSSL has no column for (profile,
 * issued name) live in index.meta, one "SERIAL<TAB>profile<TAB>name" line per
 * certificate. Pure: parse and format only.
 */
import { PkiError } from "./errors.js";

export const REASONS = {
  unspecified: { code: 0, openssl: "unspecified" },
  keyCompromise: { code: 1, openssl: "keyCompromise" },
  caCompromise: { code: 2, openssl: "CACompromise" },
  affiliationChanged: { code: 3, openssl: "affiliationChanged" },
  superseded: { code: 4, openssl: "superseded" },
  cessationOfOperation: { code: 5, openssl: "cessationOfOperation" },
  certificateHold: { code: 6, openssl: "certificateHold" },
} as const;
export type Reason = keyof typeof REASONS;
export const REASON_NAMES = Object.keys(REASONS) as Reason[];

export function parseReason(text: string): Reason | null {
  const t = text.trim().toLowerCase();
  return REASON_NAMES.find((r) => r.toLowerCase() === t || REASONS[r].openssl.toLowerCase() === t) ?? null;
}

export const reasonFromCode = (code: number): Reason | undefined => REASON_NAMES.find((r) => REASONS[r].code === code);

export type Status = "V" | "R" | "E";

export interface IndexEntry {
  status: Status;
  expires: Date;
  revokedAt?: Date;
  /** absent: unspecified (no reasonCode in the CRL) */
  reason?: Reason;
  serial: string;
  file: string;
  subject: string;
}

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;

export function formatTime(d: Date): string {
  const y = d.getUTCFullYear();
  const rest = pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + "Z";
  return (y >= 1950 && y < 2050 ? pad2(y % 100) : String(y)) + rest;
}

export function parseTime(s: string): Date | null {
  let m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
  if (m) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
  if (m) return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return null;
}

export function formatLine(e: IndexEntry): string {
  if (/[\t\r\n]/.test(e.subject) || /[\t\r\n]/.test(e.file)) throw new Error("index field contains a tab or newline");
  let revoked = "";
  if (e.status === "R") {
    if (!e.revokedAt) throw new Error("revoked entry without a revocation time");
    revoked = formatTime(e.revokedAt) + (e.reason && e.reason !== "unspecified" ? "," + REASONS[e.reason].openssl : "");
  }
  return `${e.status}\t${formatTime(e.expires)}\t${revoked}\t${e.serial}\t${e.file}\t${e.subject}`;
}

export function parseLine(line: string, lineNo = 0): IndexEntry {
  const f = line.split("\t");
  const bad = (why: string) => new PkiError("CA_INVALID", `index.txt line ${lineNo}: ${why}; run \`pki doctor\``);
  if (f.length !== 6) throw bad(`expected 6 tab-separated fields, found ${f.length}`);
  const [status, exp, rev, serial, file, subject] = f as [string, string, string, string, string, string];
  if (status !== "V" && status !== "R" && status !== "E") throw bad(`unknown status ${JSON.stringify(status)}`);
  const expires = parseTime(exp);
  if (!expires) throw bad(`bad expiry time ${JSON.stringify(exp)}`);
  if (!/^[0-9A-F]+$/.test(serial) || serial.length % 2) throw bad(`bad serial ${JSON.stringify(serial)}`);
  const e: IndexEntry = { status, expires, serial, file, subject };
  if (status === "R") {
    const [t, r] = rev.split(",", 2);
    const at = parseTime(t ?? "");
    if (!at) throw bad(`bad revocation time ${JSON.stringify(rev)}`);
    e.revokedAt = at;
    if (r !== undefined && r !== "") {
      const reason = parseReason(r);
      if (!reason) throw bad(`unknown revocation reason ${JSON.stringify(r)}`);
      if (reason !== "unspecified") e.reason = reason;
    }
  }
  return e;
}

export function parseIndex(text: string): IndexEntry[] {
  const out: IndexEntry[] = [];
  let lineNo = 0;
  for (const line of text.split("\n")) {
    lineNo++;
    if (line === "") continue;
    out.push(parseLine(line, lineNo));
  }
  return out;
}

export function formatIndex(entries: readonly IndexEntry[]): string {
  let s = "";
  for (const e of entries) s += formatLine(e) + "\n";
  return s;
}

// ---------------------------------------------------------------- index.meta

export interface MetaEntry {
  serial: string;
  profile: string;
  /** the `pki issue` name, if any */
  name?: string;
}

export function formatMeta(m: MetaEntry): string {
  const name = m.name ?? "-";
  if (/[\t\r\n]/.test(m.profile + name)) throw new Error("meta field contains a tab or newline");
  return `${m.serial}\t${m.profile}\t${name}\n`;
}

export function parseMeta(text: string): Map<string, MetaEntry> {
  const out = new Map<string, MetaEntry>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [serial, profile, name] = line.split("\t");
    if (!serial || !profile) continue;
    out.set(serial, { serial, profile, name: name && name !== "-" ? name : undefined });
  }
  return out;
}
