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
import { isValidOid } from "./der.js";
import { PkiError } from "./errors.js";
import { REASONS, REASON_NAMES, type Reason } from "./reasons.js";
export { REASONS, REASON_NAMES, type Reason };

export function parseReason(text: string): Reason | null {
  const t = text.trim().toLowerCase();
  return REASON_NAMES.find((r) => r.toLowerCase() === t || REASONS[r].openssl.toLowerCase() === t) ?? null;
}

export const reasonFromCode = (code: number): Reason | undefined => REASON_NAMES.find((r) => REASONS[r].code === code);

/**
 * Hold instruction codes (RFC 5280 5.3.2, ITU-T X.509), by OpenSSL's short
 * names: `openssl ca -revoke -crl_hold <name or OID>` writes the text given.
 */
export const HOLD_INSTRUCTIONS = {
  holdInstructionNone: "1.2.840.10040.2.1",
  holdInstructionCallIssuer: "1.2.840.10040.2.2",
  holdInstructionReject: "1.2.840.10040.2.3",
} as const;
const HOLD_LONG: Record<string, string> = {
  "hold instruction none": "1.2.840.10040.2.1",
  "hold instruction call issuer": "1.2.840.10040.2.2",
  "hold instruction reject": "1.2.840.10040.2.3",
};

/** The dotted OID of a hold instruction as `openssl ca` writes it (short name, long name or OID), or null. */
export function holdInstructionOid(text: string): string | null {
  const t = text.trim();
  for (const [n, o] of Object.entries(HOLD_INSTRUCTIONS)) if (n.toLowerCase() === t.toLowerCase()) return o;
  const long = HOLD_LONG[t.toLowerCase()];
  if (long) return long;
  return isValidOid(t) ? t : null;
}

/** OpenSSL's short name of a hold instruction OID, else the OID itself. */
export const holdInstructionName = (oid: string): string => Object.entries(HOLD_INSTRUCTIONS).find(([, o]) => o === oid)?.[0] ?? oid;

export interface Revocation {
  /** the revocation time as written (YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ) */
  time: string;
  revokedAt: Date;
  /** absent: unspecified */
  reason?: Reason;
  /** certificateHold: the hold instruction (dotted OID) */
  holdInstruction?: string;
  /** keyCompromise / CACompromise: when the key is known or suspected to have been compromised */
  invalidityDate?: Date;
  /** invalidityDate as written, a GeneralizedTime YYYYMMDDHHMMSSZ */
  invalidityTime?: string;
}

/**
 * The third field of a revoked line, in every form `openssl ca` writes
 * (apps/ca.c make_revocation_str / unpack_revinfo):
 *   TIME                                  unspecified
 *   TIME,REASON                           e.g. keyCompromise, certificateHold
 *   TIME,holdInstruction,<name or OID>    certificateHold with a hold instruction
 *   TIME,keyTime,<GeneralizedTime>        keyCompromise with an invalidity date
 *   TIME,CAkeyTime,<GeneralizedTime>      CACompromise with an invalidity date
 * Returns a string saying what is wrong when the field is malformed.
 */
export function parseRevocationField(rev: string): Revocation | string {
  const parts = rev.split(",");
  const time = parts[0] ?? "";
  const at = parseTime(time);
  if (!at) return `bad revocation time ${JSON.stringify(rev)}`;
  const out: Revocation = { time, revokedAt: at };
  const r = parts[1];
  if (r === undefined || r === "") {
    if (parts.length > 2) return `bad revocation field ${JSON.stringify(rev)}`;
    return out;
  }
  const kind = r.toLowerCase();
  if (kind === "holdinstruction" || kind === "keytime" || kind === "cakeytime") {
    const arg = parts.slice(2).join(",");
    if (kind === "holdinstruction") {
      const oid = holdInstructionOid(arg);
      if (!oid) return `unknown hold instruction ${JSON.stringify(arg)}`;
      return { ...out, reason: "certificateHold", holdInstruction: oid };
    }
    if (!/^\d{14}Z$/.test(arg) || !parseTime(arg)) return `bad compromise time ${JSON.stringify(arg)} (expected YYYYMMDDHHMMSSZ)`;
    return { ...out, reason: kind === "keytime" ? "keyCompromise" : "caCompromise", invalidityDate: parseTime(arg)!, invalidityTime: arg };
  }
  if (parts.length > 2) return `bad revocation field ${JSON.stringify(rev)}`;
  const reason = parseReason(r);
  if (!reason) return `unknown revocation reason ${JSON.stringify(r)}`;
  if (reason !== "unspecified") out.reason = reason;
  return out;
}

/** The third field of a revoked line, as `openssl ca` writes it (see parseRevocationField). */
export function formatRevocationField(e: { revokedAt: Date; reason?: Reason; holdInstruction?: string; invalidityDate?: Date }): string {
  const t = formatTime(e.revokedAt);
  if (e.reason === "certificateHold" && e.holdInstruction) return `${t},holdInstruction,${holdInstructionName(e.holdInstruction)}`;
  if ((e.reason === "keyCompromise" || e.reason === "caCompromise") && e.invalidityDate) {
    return `${t},${e.reason === "keyCompromise" ? "keyTime" : "CAkeyTime"},${formatGeneralizedTime(e.invalidityDate)}`;
  }
  return t + (e.reason && e.reason !== "unspecified" ? "," + REASONS[e.reason].openssl : "");
}

/** YYYYMMDDHHMMSSZ, always four digits of year (OpenSSL's compromise time). */
export function formatGeneralizedTime(d: Date): string {
  const t = formatTime(d);
  return t.length === 15 ? t : String(d.getUTCFullYear()) + t.slice(2);
}

/**
 * index.txt as read: a UTF-8 byte order mark and CRLF line ends (an editor on
 * Windows, a copy through a tool that "fixes" line ends) are dropped, so that
 * the first line and every subject read as they were written; a BOM in front
 * of "R" would otherwise hide the first revocation from the CRL.
 */
export function normalizeIndex(buf: Buffer): Buffer {
  let b = buf;
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
  if (b.includes(13)) {
    const out = Buffer.allocUnsafe(b.length);
    let o = 0;
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 13 && (i + 1 === b.length || b[i + 1] === 10)) continue;
      out[o++] = b[i]!;
    }
    b = out.subarray(0, o);
  }
  return b;
}

export type Status = "V" | "R" | "E";

export interface IndexEntry {
  status: Status;
  expires: Date;
  revokedAt?: Date;
  /** absent: unspecified (no reasonCode in the CRL) */
  reason?: Reason;
  /** certificateHold with a hold instruction (dotted OID), from `openssl ca -crl_hold` */
  holdInstruction?: string;
  /** keyCompromise / CACompromise with a compromise time, from `openssl ca -crl_compromise` */
  invalidityDate?: Date;
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

/**
 * d.toISOString(), remembering recent answers: the certificates of a bulk
 * issuance share their expiry second, revocations often their time, and
 * toISOString costs ~0.5 us (pki list of 1,000,000 called it twice a row).
 * At most 64 remembered, then forgotten all at once.
 */
export function isoTime(d: Date): string {
  const ms = d.getTime();
  let text = recentIso.get(ms);
  if (text === undefined) {
    if (recentIso.size >= 64) recentIso.clear();
    text = d.toISOString();
    recentIso.set(ms, text);
  }
  return text;
}
const recentIso = new Map<number, string>();

export function parseTime(s: string): Date | null {
  // YYMMDDHHMMSSZ (UTCTime, 50-99 are 19xx) or YYYYMMDDHHMMSSZ; digits read by hand: every line of a
  // large index has one or two of these, and a regex per time cost ~1 us of the ~3 us a line took
  const n = s.length;
  if ((n !== 13 && n !== 15) || s.charCodeAt(n - 1) !== 0x5a) return null;
  for (let i = 0; i < n - 1; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  const two = (i: number): number => (s.charCodeAt(i) - 0x30) * 10 + s.charCodeAt(i + 1) - 0x30;
  let year: number;
  let at: number;
  if (n === 13) {
    const yy = two(0);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
    at = 2;
  } else {
    year = two(0) * 100 + two(2);
    at = 4;
  }
  return new Date(Date.UTC(year, two(at) - 1, two(at + 2), two(at + 4), two(at + 6), two(at + 8)));
}

export function formatLine(e: IndexEntry): string {
  if (/[\t\r\n]/.test(e.subject) || /[\t\r\n]/.test(e.file)) throw new Error("index field contains a tab or newline");
  let revoked = "";
  if (e.status === "R") {
    if (!e.revokedAt) throw new Error("revoked entry without a revocation time");
    revoked = formatRevocationField({ revokedAt: e.revokedAt, reason: e.reason, holdInstruction: e.holdInstruction, invalidityDate: e.invalidityDate });
  }
  return `${e.status}\t${formatTime(e.expires)}\t${revoked}\t${e.serial}\t${e.file}\t${e.subject}`;
}

/** upper-case hex digits, an even number of them (at least two) */
function isSerialHex(s: string): boolean {
  if (s.length === 0 || s.length % 2) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

export function parseLine(line: string, lineNo = 0): IndexEntry {
  const bad = (why: string) => new PkiError("CA_INVALID", `index.txt line ${lineNo}: ${why}; run \`pki doctor\``);
  // the five tabs found by hand rather than split(): every line of a large index comes through here
  const t1 = line.indexOf("\t");
  const t2 = t1 < 0 ? -1 : line.indexOf("\t", t1 + 1);
  const t3 = t2 < 0 ? -1 : line.indexOf("\t", t2 + 1);
  const t4 = t3 < 0 ? -1 : line.indexOf("\t", t3 + 1);
  const t5 = t4 < 0 ? -1 : line.indexOf("\t", t4 + 1);
  if (t5 < 0 || line.indexOf("\t", t5 + 1) >= 0) throw bad(`expected 6 tab-separated fields, found ${line.split("\t").length}`);
  const status = line.slice(0, t1);
  const exp = line.slice(t1 + 1, t2);
  const serial = line.slice(t3 + 1, t4);
  if (status !== "V" && status !== "R" && status !== "E") throw bad(`unknown status ${JSON.stringify(status)}`);
  const expires = parseTime(exp);
  if (!expires) throw bad(`bad expiry time ${JSON.stringify(exp)}`);
  if (!isSerialHex(serial)) throw bad(`bad serial ${JSON.stringify(serial)}`);
  const e: IndexEntry = { status, expires, serial, file: line.slice(t4 + 1, t5), subject: line.slice(t5 + 1) };
  if (status === "R") {
    const r = parseRevocationField(line.slice(t2 + 1, t3));
    if (typeof r === "string") throw bad(r);
    e.revokedAt = r.revokedAt;
    if (r.reason) e.reason = r.reason;
    if (r.holdInstruction) e.holdInstruction = r.holdInstruction;
    if (r.invalidityDate) e.invalidityDate = r.invalidityDate;
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
    const f = line.split("\t");
    const [serial, profile, name] = f;
    // a half line (an interrupted append of an older version) or two glued together: skipped, doctor reports it
    if (f.length !== 3 || !serial || !/^[0-9A-F]+$/.test(serial) || !profile) continue;
    out.set(serial, { serial, profile, name: name && name !== "-" ? name : undefined });
  }
  return out;
}
