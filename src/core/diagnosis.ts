/**
 * pki doctor's diagnosis, pure (#9): a snapshot of the CA in (read by
 * ca/doctor.ts through the store, and for what only a directory has, file
 * modes, temporary files, the lock, through store/dir-doctor.ts), the checks
 * and what --repair may fix out. No fs, no clock, no crypto: the snapshot
 * carries the results of the reads and of the signature checks.
 *
 * The checks, in the order doctor prints them (commands/doctor.ts says what
 * each one means): ca-certificate, crl-number, crl, the parent's (an issuing
 * CA, ca/parent.ts), key-modes, index, bundle, bundle-size, allow-list,
 * temp-files, lock. Whether the CRL is out of step with the index is the one
 * rule of core/crl-match.ts.
 */
import { CA_NAMES_LIMIT, caNamesListSize } from "./allow-map.js";
import type { CrlInfo } from "./crl.js";
import { CLOCK_SKEW_MS, compareCrlWithIndex, differingRevocations } from "./crl-match.js";
import type { ParsedCrlEntry } from "./crl-parse.js";
import { listSome, PkiError } from "./errors.js";
import { formatIndex, parseIndex, parseLine, type IndexEntry } from "./index-format.js";
import { onelineDn } from "./names.js";
import { parseCertificate, type ParsedCertificate } from "./parse.js";
import { parsePemBlocks } from "./pem.js";

export type Status = "ok" | "warn" | "fail";
export interface Check {
  name: string;
  status: Status;
  message: string;
}

const DAY = 86_400_000;
const days = (ms: number) => Math.floor(ms / DAY);
/** SERIAL<TAB>profile<TAB>name-or-"-" (core/index-format formatMeta) */
const META_LINE = /^[0-9A-F]+\t[a-z0-9][a-z0-9_-]*\t[^\t]+$/;

/** index.txt as doctor reads it: a last line without its newline that does not parse is the half line of an interrupted write. */
export type IndexRead = { entries: IndexEntry[]; text: string; tail?: string } | { entries?: undefined; error: string; tail?: string };

export function readIndexForDoctor(raw: string): IndexRead {
  let text = raw;
  let tail: string | undefined;
  try {
    if (text && !text.endsWith("\n")) {
      const cut = text.lastIndexOf("\n") + 1;
      try {
        parseLine(text.slice(cut));
      } catch {
        tail = text.slice(cut);
        text = text.slice(0, cut);
      }
    }
    return { entries: parseIndex(text), text, tail };
  } catch (e) {
    return { error: (e as Error).message, tail };
  }
}

interface LockHolder {
  pid: number;
  host: string;
  since: string;
}
/** The lock of a CA directory as store/lock.ts sees it. */
export type LockView =
  | { kind: "none" }
  | { kind: "held" | "dead" | "foreign"; holder: LockHolder }
  | { kind: "strange"; what: string };

export interface DoctorSnapshot {
  now: Date;
  caNotAfter: Date;
  /** the CA certificate's DER (is it in the bundle?) */
  caDer: Uint8Array;
  /** where each thing is, for the messages */
  where: { crl: string; bundle: string; allowMap: string; lock: string };
  index: IndexRead;
  /** crl.pem: unreadable (the message), missing (cur null), or read; drops and the next number only for one signed by this CA */
  crl: { error: string } | { cur: { signedByCa: boolean; info: CrlInfo } | null; drops: Array<{ serial: string }>; nextNumber: bigint | null };
  /** an issuing CA's checks of its parent (ca/parent.ts examineParent) */
  parent: { checks: Check[]; chainStale: boolean };
  /** private/ (shown with a trailing "/"), its .key files and issued/*.p12, with their permission bits */
  modes: Array<{ path: string; mode: number }>;
  /** index.meta as it is ("" when there is none) */
  metaText: string;
  /** serials that have a certs/<SERIAL>.pem */
  certFiles: string[];
  /** the certs/<SERIAL>.pem files without an index line: parsed (null: not a certificate) and whether this CA signed them */
  stray: Array<{ serial: string; file: string; cert: ParsedCertificate | null; issuedByCa: boolean }>;
  /** ca-clients.crt (null: missing), its mtime, pki.json's choice and the bundle built from the index (when it lists issued certificates) */
  bundle: { text: string | null; mtimeMs: number; setting: boolean | string; expected: string | null };
  /** nginx-allow.map when pki.json turns it on: its text and the map built from the index */
  allow: { setting: false | true | string; text: string | null; expected: string | null };
  /** temporary files of processes that are gone, relative to the CA directory */
  tmpFiles: string[];
  lock: LockView;
}

export interface Diagnosis {
  checks: Check[];
  /** certificate files this CA signed that have no index line */
  orphans: Array<{ file: string; cert: ParsedCertificate }>;
  tmpFiles: string[];
  crlStale: boolean;
  bundleStale: boolean;
  chainStale: boolean;
  allowStale: boolean;
  /** live revocations of crl.pem that index.txt lost (an older index restored) */
  drops: Array<{ serial: string }>;
  /** crlnumber is not above crl.pem's number: set it to this */
  crlNumberFix?: bigint;
  lock: LockView;
  /** index.meta lines that do not parse (a half line of an interrupted append) */
  badMetaLines: number;
  /** a last index.txt line without its newline that does not parse */
  indexTail?: string;
}

type Add = (name: string, status: Status, message: string) => void;

export function diagnose(s: DoctorSnapshot): Diagnosis {
  const checks: Check[] = [];
  const add: Add = (name, status, message) => checks.push({ name, status, message });
  const d: Diagnosis = { checks, orphans: [], tmpFiles: s.tmpFiles, crlStale: false, bundleStale: false, chainStale: s.parent.chainStale, allowStale: false, drops: [], lock: s.lock, badMetaLines: 0, indexTail: s.index.tail };
  caCheck(s, add);
  crlCheck(s, d, add);
  checks.push(...s.parent.checks);
  modesCheck(s, add);
  indexCheck(s, d, add);
  bundleCheck(s, d, add);
  bundleSizeCheck(s, add);
  allowCheck(s, d, add);
  // a few named, the rest counted: a batch killed half-way leaves thousands (one line of 200,000 characters)
  if (s.tmpFiles.length) add("temp-files", "warn", `${s.tmpFiles.length} temporary file(s) left by an interrupted run (${listSome(s.tmpFiles, 5)}): \`pki doctor --repair\` removes them`);
  else add("temp-files", "ok", "no leftover temporary files");
  lockCheck(s, add);
  return d;
}

function caCheck(s: DoctorSnapshot, add: Add): void {
  const end = s.caNotAfter.toISOString();
  const left = s.caNotAfter.getTime() - s.now.getTime();
  if (left <= 0) add("ca-certificate", "fail", `the CA certificate expired on ${end}: every certificate it issued is now refused; make a new CA`);
  else if (left <= 90 * DAY) add("ca-certificate", "fail", `the CA certificate expires on ${end} (in ${days(left)} days): plan its replacement now`);
  else add("ca-certificate", "ok", `valid until ${end} (${days(left)} days)`);
}

function crlCheck(s: DoctorSnapshot, d: Diagnosis, add: Add): void {
  if ("error" in s.crl) {
    d.crlStale = true;
    return add("crl", "fail", s.crl.error);
  }
  const { cur } = s.crl;
  if (!cur) {
    d.crlStale = true;
    return add("crl", "fail", `${s.where.crl} is missing: nginx cannot start with ssl_crl; run \`pki crl\``);
  }
  if (!cur.signedByCa) {
    d.crlStale = true;
    return add("crl", "fail", `${s.where.crl} is not signed by this CA's key: run \`pki crl\``);
  }
  try {
    signedCrlCheck(s, s.crl, cur.info, d, add);
  } catch (e) {
    d.crlStale = true;
    add("crl", "fail", e instanceof PkiError ? `${e.message}: run \`pki crl\`` : String(e));
  }
}

function signedCrlCheck(s: DoctorSnapshot, crl: { drops: Array<{ serial: string }>; nextNumber: bigint | null }, info: CrlInfo, d: Diagnosis, add: Add): void {
  const now = s.now.getTime();
  const next = info.nextUpdate;
  d.drops = s.index.entries ? crl.drops : [];
  const differ = s.index.entries ? differingRevocations(compareCrlWithIndex(s.index.text, info.revokedDer)) : 0;
  const number = crl.nextNumber;
  if (info.crlNumber !== undefined && number !== null && number <= info.crlNumber) {
    // the next CRL would reuse a published number (RFC 5280 5.2.3): a crash between the CRL and its number
    d.crlNumberFix = info.crlNumber + 1n;
    add("crl-number", "fail", `crlnumber (${number.toString(16).toUpperCase()}) is not above the number of crl.pem (${info.crlNumber.toString(16).toUpperCase()}): the next CRL would reuse a number; \`pki doctor --repair\` advances it`);
  }
  const stale = (message: string) => {
    d.crlStale = true;
    add("crl", "fail", message);
  };
  if (d.drops.length) {
    add("crl", "fail", `crl.pem lists ${d.drops.length} revoked certificate(s) that have not expired but index.txt does not mark revoked (${d.drops.slice(0, 5).map((x) => x.serial).join(", ")}${d.drops.length > 5 ? ", ..." : ""}): index.txt is older than the CRL (restored from a backup?); \`pki doctor --repair\` re-applies those revocations from the signed CRL`);
  } else if (info.thisUpdate.getTime() > now + CLOCK_SKEW_MS) {
    stale(`the CRL's thisUpdate ${info.thisUpdate.toISOString()} is in the future (a clock jump?): nginx refuses every client ("CRL is not yet valid"); run \`pki crl\` and reload nginx`);
  } else if (!next || next.getTime() <= now) {
    stale(`the CRL expired${next ? ` on ${next.toISOString()}` : " (no nextUpdate)"}: nginx refuses every client certificate until \`pki crl\` and a reload`);
  } else if (next.getTime() - now <= DAY) {
    stale(`the CRL expires on ${next.toISOString()}, within a day: run \`pki crl\` and reload nginx; is the pki-crl timer (or cron job) running?`);
  } else if (differ !== 0) {
    stale(`the CRL is out of step with index.txt (${differ} revocation(s) differ): run \`pki crl\` and reload nginx`);
  } else {
    add("crl", "ok", `number ${info.crlNumber ?? "?"}, ${info.revoked} revoked, next update ${next.toISOString()} (in ${days(next.getTime() - now)} days)`);
  }
}

function modesCheck(s: DoctorSnapshot, add: Add): void {
  const open = s.modes.filter((m) => m.mode & 0o077).map((m) => `${m.path} (${m.mode.toString(8).padStart(4, "0")})`);
  if (open.length) add("key-modes", "fail", `readable by group or others: ${open.join(", ")}; run chmod 700 on private/ and chmod 600 on each key`);
  else add("key-modes", "ok", "private/ is 0700 and every key 0600 or stricter");
}

/** How many lines of index.meta do not parse. */
export function badMetaLines(metaText: string): number {
  return metaLines(metaText).filter((l) => !META_LINE.test(l)).length;
}

function metaLines(metaText: string): string[] {
  const lines = metaText.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function indexCheck(s: DoctorSnapshot, d: Diagnosis, add: Add): void {
  d.badMetaLines = badMetaLines(s.metaText);
  const index = s.index.entries;
  if (!index) return add("index", "fail", (s.index as { error: string }).error);
  const files = new Set(s.certFiles);
  const noFile = index.filter((e) => !files.has(e.serial)).map((e) => e.serial);
  const foreign: string[] = [];
  for (const x of s.stray) {
    if (x.cert && x.cert.serial === x.serial && x.issuedByCa) d.orphans.push({ file: x.file, cert: x.cert });
    else foreign.push(x.file);
  }
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const e of index) (seen.has(e.serial) ? dups : seen).add(e.serial);
  const few = (l: string[]) => `${l.slice(0, 5).join(", ")}${l.length > 5 ? ", ..." : ""}`;
  const problems: string[] = [];
  if (dups.size) problems.push(`${dups.size} serial(s) on more than one index line (${[...dups].slice(0, 5).join(", ")}): two certificates under one serial break revocation (RFC 5280 4.1.2.2); revoke the certificates concerned and edit index.txt by hand`);
  if (d.badMetaLines) problems.push(`index.meta has ${d.badMetaLines} line(s) that do not parse (half lines of an interrupted append; names and profiles of those certificates are unknown): \`pki doctor --repair\` removes them`);
  if (d.indexTail !== undefined) problems.push(`index.txt ends in a half line ${JSON.stringify(d.indexTail.slice(0, 40))} (an interrupted write): \`pki doctor --repair\` removes it`);
  if (d.orphans.length) problems.push(`${d.orphans.length} certificate(s) issued by this CA but missing from index.txt (${d.orphans.map((o) => o.cert.serial).join(", ")}; a run was interrupted): \`pki doctor --repair\` records them`);
  if (noFile.length) problems.push(`${noFile.length} index line(s) without their certs/<SERIAL>.pem (${few(noFile)}): restore them from a backup`);
  if (foreign.length) problems.push(`${foreign.length} file(s) in certs/ that are not certificates of this CA (${foreign.join(", ")}): move them away`);
  if (problems.length) add("index", "fail", problems.join("; "));
  else add("index", "ok", `${index.length} certificate(s), each with its file in certs/`);
}

/** The certificates of a PEM text as base64 of their DER (nothing when it does not parse). */
export function pemCertificates(text: string): string[] {
  try {
    return parsePemBlocks(text).filter((b) => b.label === "CERTIFICATE").map((b) => Buffer.from(b.der).toString("base64"));
  } catch {
    return [];
  }
}

/** Does doctor compare the bundle with one built from the index? When it lists issued certificates, or pki.json says it should. */
export const bundleListsIssued = (text: string, setting: boolean | string): boolean => setting !== false || pemCertificates(text).length > 1;

function bundleCheck(s: DoctorSnapshot, d: Diagnosis, add: Add): void {
  const { text, setting } = s.bundle;
  const where = s.where.bundle;
  const stale = (status: Status, message: string) => {
    d.bundleStale = true;
    add("bundle", status, message);
  };
  if (text === null) return stale("fail", `${where} is missing: nginx's ssl_client_certificate needs it; run \`pki bundle\``);
  const have = pemCertificates(text);
  if (!have.includes(Buffer.from(s.caDer).toString("base64"))) return stale("fail", `${where} does not hold this CA's certificate: run \`pki bundle\``);
  if (!bundleListsIssued(text, setting)) return add("bundle", "ok", "the CA certificate");
  // it lists issued certificates: it must follow the revocations
  const lastRevocation = Math.max(0, ...(s.index.entries ?? []).filter((e) => e.status === "R" && e.revokedAt).map((e) => e.revokedAt!.getTime()));
  const expected = s.bundle.expected !== null ? new Set(pemCertificates(s.bundle.expected)) : null;
  const extra = expected ? have.filter((k) => !expected.has(k)).length : 0;
  const lacking = expected ? [...expected].filter((k) => !have.includes(k)).length : 0;
  const command = `pki bundle --include-issued${typeof setting === "string" ? " " + setting : ""}`;
  if (s.bundle.mtimeMs < lastRevocation || extra > 0) {
    const why = s.bundle.mtimeMs < lastRevocation ? `is older than the last revocation (${new Date(lastRevocation).toISOString()})` : `lists ${extra} certificate(s) that are revoked, expired or unknown to the index`;
    stale("fail", `${where} ${why}: run \`${command}\` and reload nginx`);
  } else if (lacking > 0) {
    stale("warn", `${where} lacks ${lacking} valid certificate(s) issued since it was written: run \`${command}\``);
  } else {
    add("bundle", "ok", `the CA and ${have.length - 1} issued certificate(s), current`);
  }
}

/** What nginx must send for the bundle: the CA-names list has a 16-bit length. */
function bundleSizeCheck(s: DoctorSnapshot, add: Add): void {
  if (s.bundle.text === null) return;
  let lengths: number[] = [];
  try {
    lengths = parsePemBlocks(s.bundle.text)
      .filter((b) => b.label === "CERTIFICATE")
      .map((b) => parseCertificate(b.der).subjectRaw.length);
  } catch {
    lengths = [];
  }
  const size = caNamesListSize(lengths);
  const where = s.where.bundle;
  const fix = "keep only the CA in it (`pki bundle --no-include-issued`) and let `pki nginx-config --allow-list` say which clients may connect";
  if (size > CA_NAMES_LIMIT) {
    add("bundle-size", "fail", `${where} makes nginx send a ${size}-byte list of CA names (${lengths.length} certificates); over ${CA_NAMES_LIMIT} bytes every TLS handshake fails: ${fix}`);
  } else if (size > CA_NAMES_LIMIT * 0.75) {
    add("bundle-size", "warn", `${where} makes nginx send ${size} of at most ${CA_NAMES_LIMIT} bytes of CA names (${lengths.length} certificates); past the limit every handshake fails: ${fix}`);
  } else {
    add("bundle-size", "ok", `${size} bytes of CA names per handshake (limit ${CA_NAMES_LIMIT})`);
  }
}

function allowCheck(s: DoctorSnapshot, d: Diagnosis, add: Add): void {
  const { setting, text, expected } = s.allow;
  const where = s.where.allowMap;
  if (setting === false) return;
  if (text === null) {
    d.allowStale = true;
    add("allow-list", "fail", `${where} is missing (pki.json turns the allow-list on): nginx will not start; \`pki doctor --repair\` rewrites it`);
  } else if (s.index.entries && text !== expected) {
    d.allowStale = true;
    add("allow-list", "fail", `${where} does not list exactly the valid certificates${typeof setting === "string" ? ` of profile ${setting}` : ""}: \`pki doctor --repair\` rewrites it; then reload nginx`);
  } else {
    add("allow-list", "ok", `${where} is current`);
  }
}

function lockCheck(s: DoctorSnapshot, add: Add): void {
  const lock = s.lock;
  const where = s.where.lock;
  if (lock.kind === "none") add("lock", "ok", "not locked");
  else if (lock.kind === "held") add("lock", "ok", `locked by running pid ${lock.holder.pid} since ${lock.holder.since}`);
  else if (lock.kind === "foreign") add("lock", "warn", `locked by pid ${lock.holder.pid} on another host, ${lock.holder.host}, since ${lock.holder.since}: pki cannot see whether it still runs; if it is gone, \`pki doctor --break-lock\` removes the lock`);
  else if (lock.kind === "dead") add("lock", "warn", `${where} was left by a process that is gone (pid ${lock.holder.pid}): the next pki command takes it over; \`pki doctor --repair\` removes it`);
  else if (lock.kind === "strange") add("lock", "warn", `${where} is ${lock.what}: the next pki command removes it; \`pki doctor --repair\` removes it now`);
}

// ---------------------------------------------------------------- the repairs' edits (pure)

/** index.txt without its half last line, or null when it no longer ends in it. */
export function cutIndexTail(text: string, tail: string): string | null {
  return text.endsWith(tail) ? text.slice(0, text.length - tail.length) : null;
}

/** index.meta without the lines that do not parse. */
export function cleanMeta(metaText: string): string {
  return metaLines(metaText)
    .filter((l) => l !== "" && META_LINE.test(l))
    .map((l) => l + "\n")
    .join("");
}

/**
 * index.txt with a line for each orphan the index does not have yet (status
 * V, its notAfter, its subject, as `openssl ca` writes one), and the orphans
 * so recorded.
 */
export function recordOrphans(text: string, orphans: readonly ParsedCertificate[]): { text: string; added: ParsedCertificate[] } {
  const inIndex = new Set(parseIndex(text).map((e) => e.serial));
  const added = orphans.filter((c) => !inIndex.has(c.serial));
  if (!added.length) return { text, added };
  const lines = formatIndex(added.map((c) => ({ status: "V" as const, expires: c.notAfter, serial: c.serial, file: "unknown", subject: onelineDn(c.subject) })));
  return { text: text + (text && !text.endsWith("\n") ? "\n" : "") + lines, added };
}

/**
 * The index lines that get back the revocations a signed crl.pem proves and
 * the index lost (`drops`): each as the CRL entry says (time, reason, hold,
 * invalidity date). `left`: drops without an index line to re-apply them to.
 */
export function restoreRevocations(index: readonly IndexEntry[], crlEntries: readonly ParsedCrlEntry[], drops: ReadonlyArray<{ serial: string }>): { update: IndexEntry[]; left: number } {
  const strip = (s: string) => s.replace(/^0+(?=.)/, "");
  const entries = new Map(crlEntries.map((e) => [strip(e.serial), e]));
  const update: IndexEntry[] = [];
  for (const d of drops) {
    const e = entries.get(strip(d.serial));
    const line = index.find((x) => x.serial === d.serial);
    if (!e || !line || line.status === "R" || update.some((u) => u.serial === d.serial)) continue;
    update.push({ ...line, status: "R", revokedAt: e.revokedAt, reason: e.reason, holdInstruction: e.holdInstruction, invalidityDate: e.invalidityDate });
  }
  return { update, left: drops.length - update.length };
}
