/**
 * CRL and client bundle generation on a CA directory. Callers hold the lock.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeRevoked, formatCrlNumber, prepareCrlFromIndex, readCrlInfo, revokedFromIndexText, revokedSerials, type CrlInfo, type PreparedCrl } from "../core/crl.js";
import { parseCertificate } from "../core/parse.js";
import { formatIndex, formatLine, parseIndex, parseLine, type IndexEntry, type Reason } from "../core/index-format.js";
import { PkiError } from "../core/errors.js";
import { allowMapText } from "../core/allow-map.js";
import { withLock } from "../store/lock.js";
import { parsePemBlocks, toPem, toPemBytes } from "../core/pem.js";
import { writeFilesAtomic, type FileWrite } from "../store/atomic.js";
import { MODE } from "../store/ca-dir.js";
import { issuedBy, type Authority, type SigningAuthority } from "./authority.js";
import { thenSign } from "./signer.js";
import { crlChainWrites } from "./parent.js";

export interface CrlResult {
  path: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: number;
  der: Uint8Array;
  /** the PEM file's bytes */
  pemBytes: Uint8Array;
  /** the PEM as a string (made on first use: 60 MB for a 1,000,000-entry CRL) */
  readonly pem: string;
}

/** index.txt as bytes: the CRL builder reads bytes (a string of a huge index costs twice its size). */
export type IndexData = string | Uint8Array;

const indexBytes = (index: IndexData): Uint8Array => (typeof index === "string" ? Buffer.from(index, "utf8") : index);
const indexString = (index: IndexData): string => (typeof index === "string" ? index : Buffer.from(index.buffer, index.byteOffset, index.byteLength).toString("utf8"));

function withLazyPem<T extends { pemBytes: Uint8Array }>(o: T): T & { readonly pem: string } {
  let cached: string | undefined;
  return Object.defineProperty(o, "pem", {
    enumerable: true,
    get: () => (cached ??= Buffer.from(o.pemBytes.buffer, o.pemBytes.byteOffset, o.pemBytes.byteLength).toString("latin1")),
  }) as T & { readonly pem: string };
}

/**
 * Sign a CRL over every revoked line of the index: one pass over the index
 * bytes, entries encoded straight into the CRL buffer (core/crl.ts
 * signCrlFromIndex), no per-entry objects. thisUpdate is now; nextUpdate is
 * now + days. The number comes from `crlnumber` (the next number to use, as
 * OpenSSL keeps it), which is advanced in the same atomic step as the CRL is
 * written.
 */
export async function buildCrl(ca: SigningAuthority, index: IndexData, days: number, now: Date): Promise<Omit<CrlResult, "path">> {
  return signPreparedCrl(prepareCrl(ca, index, days, now), ca);
}

export interface PendingCrl {
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  prepared: PreparedCrl;
}

/** The CRL up to its signature: needs the CA certificate only, not the key. */
export function prepareCrl(ca: Authority, index: IndexData, days: number, now: Date): PendingCrl {
  const crlNumber = nextCrlNumber(ca);
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + days * 86_400_000);
  const prepared = prepareCrlFromIndex({
    signatureAlgorithm: ca.algorithm.der,
    issuer: ca.cert.subjectRaw,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyId: ca.keyId,
    index: indexBytes(index),
  });
  return { crlNumber, thisUpdate, nextUpdate, prepared };
}

export function signPreparedCrl(p: PendingCrl, signing: SigningAuthority): Promise<Omit<CrlResult, "path">> | Omit<CrlResult, "path"> {
  return thenSign(signing.caSigner, p.prepared.tbs, (signature) => {
    const der = p.prepared.finish(signature);
    return withLazyPem({ crlNumber: p.crlNumber, thisUpdate: p.thisUpdate, nextUpdate: p.nextUpdate, revoked: p.prepared.count, der, pemBytes: toPemBytes("X509 CRL", der) });
  });
}

/** The number the next CRL carries (crlnumber holds the next number to use, as OpenSSL keeps it). */
export function nextCrlNumber(ca: Authority): bigint {
  return ca.store.readCrlNumber();
}

/** Failpoint between advancing crlnumber and publishing the CRL (tests only, see authority.ts). */
function crashPoint(step: "crl-number"): void {
  if (process.env.PKI_CRASH_AT === step) process.kill(process.pid, "SIGKILL");
}

/**
 * Publish a signed CRL, number first: `crlnumber` is advanced (written,
 * fsync'd, renamed, directory fsync'd) before the CRL file is renamed into
 * place. A crash in between skips a number, which RFC 5280 5.2.3 allows; the
 * other order could publish two different CRLs under one number, which it
 * forbids. `first` (e.g. the index of a revocation, the commit point) goes in
 * the same first step, before the number. In an issuing CA writing its
 * crl.pem, crl-chain.pem (this CA's CRL and the parent's, for nginx
 * `ssl_crl`: see ca/parent.ts) goes with the CRL.
 */
export function commitCrl(ca: Authority, crl: Omit<CrlResult, "path">, out: string, asDer: boolean, first: FileWrite[] = []): void {
  const own = !asDer && path.resolve(out) === path.resolve(ca.store.crlPath);
  writeFilesAtomic([...first, { path: ca.store.crlNumberPath, data: formatCrlNumber(crl.crlNumber + 1n), mode: MODE.file }]);
  crashPoint("crl-number");
  writeFilesAtomic([{ path: out, data: asDer ? crl.der : crl.pemBytes, mode: MODE.file }, ...(own ? crlChainWrites(ca.store, crl.pemBytes) : [])]);
}

/** Re-sign <dir>/crl.pem from the index (after a revocation). Refuses to drop a live revocation (CRL_SHRINK). */
export async function refreshCrl(ca: SigningAuthority, index: IndexData, now: Date, days = ca.settings.crlDays, opts: { allowShrink?: boolean } = {}): Promise<CrlResult> {
  if (!opts.allowShrink) assertNoLiveDrops(ca, index, now);
  const crl = await buildCrl(ca, index, days, now);
  commitCrl(ca, crl, ca.store.crlPath, false);
  return withLazyPem({ path: ca.store.crlPath, crlNumber: crl.crlNumber, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked: crl.revoked, der: crl.der, pemBytes: crl.pemBytes });
}

// ---------------------------------------------------------------- never un-revoke

/** Serials of the revoked ("R") lines of index bytes, leading zeros dropped (to compare with a CRL's). */
function revokedSerialsOfIndex(buf: Uint8Array): Set<string> {
  const out = new Set<string>();
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let p = 0; p < b.length; ) {
    let eol = b.indexOf(10, p);
    if (eol < 0) eol = b.length;
    if (b[p] === 82 /* R */) {
      let t = p;
      for (let k = 0; k < 3 && t >= 0 && t < eol; k++) t = b.indexOf(9, t + 1);
      const t4 = t >= 0 ? b.indexOf(9, t + 1) : -1;
      if (t >= 0 && t4 > t && t4 < eol) out.add(stripZeros(b.toString("latin1", t + 1, t4).toUpperCase()));
    }
    p = eol + 1;
  }
  return out;
}

const stripZeros = (hex: string): string => hex.replace(/^0+(?=.)/, "");

export interface LiveDrop {
  serial: string;
  /** the certificate's notAfter when known (index line or certs/<SERIAL>.pem); unknown counts as live */
  notAfter?: Date;
}

/**
 * Serials that the current crl.pem lists as revoked but a CRL built from
 * `index` would not, and whose certificate has not expired: publishing that
 * CRL would un-revoke them (an older index.txt restored from a backup, a
 * hand edit). Entries of expired certificates may go (RFC 5280 3.3: a CRL
 * need only list unexpired certificates). A current CRL that is missing,
 * unreadable or not signed by this CA proves nothing and gives no drops.
 */
export function liveDrops(ca: Authority, index: IndexData, now: Date): LiveDrop[] {
  let cur: CurrentCrl | null;
  try {
    cur = readCurrentCrl(ca, ca.store.crlPath);
  } catch {
    return [];
  }
  if (!cur || !cur.signedByCa || cur.info.revoked === 0) return [];
  const bytes = indexBytes(index);
  const now_ = now.getTime();
  const revoked = revokedSerialsOfIndex(bytes);
  const drops: LiveDrop[] = [];
  for (const raw of revokedSerials(cur.info.revokedDer)) {
    const serial = stripZeros(raw);
    if (revoked.has(serial)) continue;
    let notAfter: Date | undefined;
    const hex = serial.length % 2 ? "0" + serial : serial;
    const e = findIndexEntry(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), hex);
    if (e) notAfter = e.expires;
    else notAfter = certNotAfter(ca, hex);
    if (notAfter && notAfter.getTime() <= now_) continue;
    drops.push({ serial: hex, notAfter });
  }
  return drops;
}

function certNotAfter(ca: Authority, serial: string): Date | undefined {
  try {
    const block = parsePemBlocks(fs.readFileSync(ca.store.certPath(serial), "utf8")).find((b) => b.label === "CERTIFICATE");
    return block ? parseCertificate(block.der).notAfter : undefined;
  } catch {
    return undefined;
  }
}

/** Refuse (CRL_SHRINK) a CRL that would drop a live revocation of the current crl.pem. */
export function assertNoLiveDrops(ca: Authority, index: IndexData, now: Date): void {
  const drops = liveDrops(ca, index, now);
  if (!drops.length) return;
  const list = drops.slice(0, 3).map((d) => d.serial).join(", ") + (drops.length > 3 ? ", ..." : "");
  throw new PkiError(
    "CRL_SHRINK",
    `the new CRL would drop ${drops.length} revoked certificate(s) that have not expired (${list}): index.txt is older than crl.pem (restored from a backup?); restore the newer index.txt, or \`pki crl --allow-shrink\` to un-revoke them on purpose`,
    { details: { dropped: drops.map((d) => d.serial) } },
  );
}

// ---------------------------------------------------------------- reading the current CRL

export interface CurrentCrl {
  info: CrlInfo;
  /** the raw bytes of the file (PEM or DER) */
  bytes: Buffer;
  /** the CRL's DER */
  der: Uint8Array;
  /** the signature verifies with the CA's key and the issuer is the CA */
  signedByCa: boolean;
}

/**
 * The CRL at `p` (PEM or DER), or null when there is no file. A file that is
 * not a readable CRL is an error the caller reports (doctor) or replaces (crl).
 */
export function readCurrentCrl(ca: Authority, p: string): CurrentCrl | null {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new PkiError("IO_ERROR", `cannot read ${p}: ${(e as NodeJS.ErrnoException).code}`);
  }
  let derBytes: Uint8Array = bytes;
  if (bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN")) {
    const block = parsePemBlocks(bytes.toString("utf8")).find((b) => b.label === "X509 CRL");
    if (!block) throw new PkiError("CA_INVALID", `${p} holds no PEM CRL ("X509 CRL" block)`);
    derBytes = block.der;
  }
  let info: CrlInfo;
  try {
    info = readCrlInfo(derBytes);
  } catch (e) {
    throw new PkiError("CA_INVALID", `${p} is not a readable CRL: ${(e as Error).message}`);
  }
  return { info, bytes, der: derBytes, signedByCa: issuedBy(ca, info) };
}

/**
 * A warning for a command that just issued a certificate while crl.pem is
 * missing or past its nextUpdate: nginx (ssl_crl) refuses every client
 * certificate of this CA then, the new one too. The issuance still succeeds
 * (the certificate is recorded and valid); the admin must re-sign the CRL.
 */
export function staleCrlWarning(ca: Authority, now: Date): string | null {
  let cur: CurrentCrl | null;
  try {
    cur = readCurrentCrl(ca, ca.store.crlPath);
  } catch {
    return `pki: warning: ${ca.store.crlPath} is not a readable CRL: nginx refuses every client certificate of this CA, this one too, until \`pki crl\` re-signs it`;
  }
  if (!cur) return `pki: warning: there is no ${ca.store.crlPath}: nginx with ssl_crl refuses every client certificate of this CA until \`pki crl\` writes it`;
  const next = cur.info.nextUpdate;
  if (next && next.getTime() > now.getTime()) return null;
  return `pki: warning: ${ca.store.crlPath} expired${next ? ` on ${next.toISOString()}` : ""}: nginx refuses every client certificate of this CA, this one too, until \`pki crl\` re-signs it`;
}

/** How far in the future a thisUpdate may be before the CRL counts as not yet valid (clock skew between hosts). */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Why a CRL must be re-signed now (null: it is fine as it is). */
export function crlResignReason(cur: CurrentCrl | null, indexText: string, now: Date, withinDays: number): string | null {
  if (!cur) return "there is no CRL yet";
  if (!cur.signedByCa) return "the CRL is not signed by this CA";
  // a clock that jumped forward and back: nginx refuses every client with "CRL is not yet valid"
  if (cur.info.thisUpdate.getTime() > now.getTime() + CLOCK_SKEW_MS) return `the CRL's thisUpdate ${cur.info.thisUpdate.toISOString()} is in the future (clock jump)`;
  const next = cur.info.nextUpdate;
  if (!next) return "the CRL has no nextUpdate";
  if (next.getTime() - now.getTime() <= withinDays * 86_400_000) {
    return next.getTime() <= now.getTime() ? `the CRL expired on ${next.toISOString()}` : `the CRL expires on ${next.toISOString()}, within ${withinDays} day(s)`;
  }
  // a revocation the CRL does not carry yet (e.g. a crash between index and CRL)
  const expected = encodeRevoked(revokedFromIndexText(indexText));
  if (!Buffer.from(expected).equals(Buffer.from(cur.info.revokedDer))) return "the CRL does not list exactly the revoked certificates of the index";
  return null;
}

// ---------------------------------------------------------------- bundle

export interface BundleSettings {
  /** false: the CA only; true: every issued certificate; a name: that profile's */
  includeIssued: boolean | string;
}

export function readBundleSettings(ca: Authority): BundleSettings {
  try {
    const raw = JSON.parse(fs.readFileSync(ca.store.settingsPath, "utf8")) as { bundle?: { includeIssued?: unknown } };
    const v = raw.bundle?.includeIssued;
    return { includeIssued: typeof v === "string" || typeof v === "boolean" ? v : false };
  } catch {
    return { includeIssued: false };
  }
}

/**
 * ca-clients.crt: the CA certificate, then (when asked) every issued
 * certificate that is neither revoked nor expired, of one profile or all.
 * Returns the text and the number of certificates in it.
 */
export function buildBundle(ca: Authority, index: IndexEntry[], include: boolean | string, now: Date): { text: string; count: number } {
  let text = ca.certPem;
  let count = 1;
  if (include === false) return { text, count };
  const meta = ca.store.readMeta();
  for (const e of index) {
    if (e.status !== "V" || e.expires.getTime() <= now.getTime()) continue;
    if (typeof include === "string" && meta.get(e.serial)?.profile !== include) continue;
    let pem: string;
    try {
      pem = fs.readFileSync(ca.store.certPath(e.serial), "utf8");
    } catch {
      continue; // doctor reports index lines without files
    }
    text += pem;
    count++;
  }
  return { text, count };
}

/**
 * Remember the bundle choice in pki.json ("bundle": {"includeIssued": ...}) so
 * that `pki revoke` keeps ca-clients.crt current. Callers hold the lock; the
 * other settings are kept as they are, and the file is replaced atomically.
 */
export function writeBundleSettings(ca: Authority, s: BundleSettings): void {
  const raw = JSON.parse(ca.store.readText(ca.store.settingsPath, "pki.json")) as Record<string, unknown>;
  const prev = typeof raw.bundle === "object" && raw.bundle !== null ? (raw.bundle as Record<string, unknown>) : {};
  raw.bundle = { ...prev, includeIssued: s.includeIssued };
  writeFilesAtomic([{ path: ca.store.settingsPath, data: JSON.stringify(raw, null, 2) + "\n", mode: MODE.file }]);
}

/** Regenerate ca-clients.crt when it lists issued certificates (after a revocation). */
export function refreshBundleIfListing(ca: Authority, index: IndexData, now: Date): boolean {
  const s = readBundleSettings(ca);
  if (s.includeIssued === false) return false;
  const b = buildBundle(ca, parseIndex(indexString(index)), s.includeIssued, now);
  writeFilesAtomic([{ path: ca.store.bundlePath, data: b.text, mode: MODE.file }]);
  return true;
}

/**
 * Everything derived from the index that nginx reads besides the CRL: the
 * bundle (when it lists issued certificates) and the allow-list map (when
 * the admin turned it on). Called under the lock after every index commit.
 */
export function refreshDerived(ca: Authority, index: IndexData, now: Date): void {
  const bundle = readBundleSettings(ca).includeIssued !== false;
  const allow = readAllowListSetting(ca);
  if (!bundle && allow === false) return;
  const entries = parseIndex(indexString(index));
  if (bundle) refreshBundleIfListing(ca, indexString(index), now);
  if (allow !== false) writeAllowMap(ca, entries, allow, now);
}

// ---------------------------------------------------------------- nginx allow-list map

/** pki.json "allowList": {"include": true | "<profile>"}; false when absent (the admin did not opt in). */
export function readAllowListSetting(ca: Authority): false | true | string {
  try {
    const raw = JSON.parse(fs.readFileSync(ca.store.settingsPath, "utf8")) as { allowList?: { include?: unknown } };
    const v = raw.allowList?.include;
    return typeof v === "string" || v === true ? v : false;
  } catch {
    return false;
  }
}

/** Remember the allow-list choice in pki.json (callers hold the lock; other settings are kept). */
export function writeAllowListSetting(ca: Authority, include: true | string | false): void {
  const raw = JSON.parse(ca.store.readText(ca.store.settingsPath, "pki.json")) as Record<string, unknown>;
  if (include === false) delete raw.allowList;
  else raw.allowList = { include };
  writeFilesAtomic([{ path: ca.store.settingsPath, data: JSON.stringify(raw, null, 2) + "\n", mode: MODE.file }]);
}

export function buildAllowMap(ca: Authority, index: readonly IndexEntry[], include: true | string, now: Date): string {
  const meta = ca.store.readMeta();
  return allowMapText(index, { include, profileOf: (s) => meta.get(s)?.profile, now, caSubject: ca.settings.subject || "this CA" });
}

/** <dir>/nginx-allow.map, replaced atomically (nginx reads it whole at its next reload). */
export function writeAllowMap(ca: Authority, index: readonly IndexEntry[], include: true | string, now: Date): void {
  writeFilesAtomic([{ path: ca.store.allowMapPath, data: buildAllowMap(ca, index, include, now), mode: MODE.file }]);
}

// ---------------------------------------------------------------- revoking

export interface RevokeRequest {
  serial: string;
  reason: Reason;
}

export interface Revoked {
  serial: string;
  subject: string;
  reason: Reason;
  revokedAt: Date;
}

/**
 * Mark serials revoked in the index and re-sign the CRL (and the bundle when
 * it lists issued certificates), all under one lock. Unknown or already
 * revoked serials fail the whole call before anything is written.
 *
 * The index is not parsed into objects: each serial's line is found by a
 * byte search for "<TAB>SERIAL<TAB>" in the fourth field, only that line is
 * parsed and rewritten, and the rest of the file is copied around it (a
 * revocation in a 100,000-line index costs a search, not 100,000 parses).
 * Large batches take the parse-everything path instead.
 */
export async function revokeSerials(
  ca: Authority,
  signing: SigningAuthority | Promise<SigningAuthority>,
  reqs: readonly RevokeRequest[],
  now: Date,
): Promise<{ revoked: Revoked[]; crl: CrlResult }> {
  return withLock(ca.store.dir, async () => {
    const revokedAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const out: Revoked[] = [];
    let newIndex: Uint8Array;
    if (reqs.length <= 16) {
      let buf: Buffer = ca.store.readIndexBuffer();
      for (const r of reqs) {
        const at = findSerialLine(buf, r.serial);
        if (!at) throw new PkiError("NOT_FOUND", `no certificate with serial ${r.serial} in this CA's index: check \`pki list\``);
        const e = parseIndexLineAt(buf, at.start, at.end);
        if (e.status === "R") throw new PkiError("ALREADY_REVOKED", `serial ${r.serial} (${e.subject}) was already revoked on ${e.revokedAt?.toISOString()}`);
        const line = formatLine({ ...e, status: "R", revokedAt, reason: r.reason === "unspecified" ? undefined : r.reason });
        buf = Buffer.concat([buf.subarray(0, at.start), Buffer.from(line, "utf8"), buf.subarray(at.end)]);
        out.push({ serial: e.serial, subject: e.subject, reason: r.reason, revokedAt });
      }
      newIndex = buf;
    } else {
      const index = parseIndex(ca.store.readIndexText());
      const bySerial = new Map(index.map((e, i) => [e.serial, i]));
      for (const r of reqs) {
        const i = bySerial.get(r.serial);
        if (i === undefined) throw new PkiError("NOT_FOUND", `no certificate with serial ${r.serial} in this CA's index: check \`pki list\``);
        const e = index[i]!;
        if (e.status === "R") throw new PkiError("ALREADY_REVOKED", `serial ${r.serial} (${e.subject}) was already revoked on ${e.revokedAt?.toISOString()}`);
        index[i] = { ...e, status: "R", revokedAt, reason: r.reason === "unspecified" ? undefined : r.reason };
        out.push({ serial: e.serial, subject: e.subject, reason: r.reason, revokedAt });
      }
      newIndex = Buffer.from(formatIndex(index), "utf8");
    }
    // the CRL is built while the CA key may still be decrypting on the thread
    // pool; nothing is written before the key is there (a wrong passphrase
    // changes nothing)
    const pending = prepareCrl(ca, newIndex, ca.settings.crlDays, now);
    const crl = await signPreparedCrl(pending, await signing);
    // never un-revoke: an index older than crl.pem is refused before anything is written
    assertNoLiveDrops(ca, newIndex, now);
    // the index (the commit point) with the advanced number first, then the CRL
    commitCrl(ca, crl, ca.store.crlPath, false, [{ path: ca.store.indexPath, data: newIndex, mode: MODE.file }]);
    refreshDerived(ca, newIndex, now);
    return { revoked: out, crl: withLazyPem({ path: ca.store.crlPath, crlNumber: crl.crlNumber, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked: crl.revoked, der: crl.der, pemBytes: crl.pemBytes }) };
  });
}

/**
 * The line of index.txt whose serial field is exactly `serial`: [start, end)
 * without the newline. Null when no line has it.
 */
export function findSerialLine(buf: Buffer, serial: string): { start: number; end: number } | null {
  if (!/^[0-9A-F]+$/.test(serial)) return null;
  const needle = Buffer.from(`\t${serial}\t`, "latin1");
  let from = 0;
  for (;;) {
    const hit = buf.indexOf(needle, from);
    if (hit < 0) return null;
    const start = buf.lastIndexOf(10, hit) + 1;
    // the serial is the fourth field: exactly three tabs from the line start up to and including `hit`
    let tabs = 0;
    for (let i = start; i <= hit; i++) if (buf[i] === 9) tabs++;
    if (tabs === 3) {
      let end = buf.indexOf(10, hit + needle.length);
      if (end < 0) end = buf.length;
      return { start, end };
    }
    from = hit + 1;
  }
}

/** The index entry of one serial, found by a byte search (no parse of the other lines). */
export function findIndexEntry(buf: Buffer, serial: string): IndexEntry | null {
  const at = findSerialLine(buf, serial);
  return at ? parseIndexLineAt(buf, at.start, at.end) : null;
}

/** Parse one line of the index buffer; the line number (for the error message) is counted only when it is bad. */
function parseIndexLineAt(buf: Buffer, start: number, end: number): IndexEntry {
  const text = buf.toString("utf8", start, end);
  try {
    return parseLine(text, 0);
  } catch {
    let lineNo = 1;
    for (let i = buf.indexOf(10); i >= 0 && i < start; i = buf.indexOf(10, i + 1)) lineNo++;
    return parseLine(text, lineNo);
  }
}
