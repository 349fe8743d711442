/**
 * The one resolver of a command's <target> (issue #9): show, verify, renew,
 * export p12 and revoke all read a target the same way.
 *
 *   - a file (certificate, CSR or CRL; PEM or DER): a path with a "/" (an
 *     issued name or a serial never has one, so `./web1.pem` or `/dev/zero`
 *     is always read as a file, and refused as one) or an existing regular
 *     file;
 *   - else an issued name (index.meta name -> serial);
 *   - else a serial of this CA (hex, any case, colons allowed).
 *
 * A certificate file stands for this CA's record only after the provenance
 * check (ca/provenance.ts). Names are looked up in the index text by a byte
 * search (core/index-edit.ts): resolving one name or serial in a
 * 100,000-line index parses only the lines it needs.
 */
import * as fs from "node:fs";
import { DerError } from "../core/der.js";
import { PkiError } from "../core/errors.js";
import { findIndexEntry, findSerialLine, parseIndexLineAt } from "../core/index-edit.js";
import { parseIndex, type IndexEntry, type MetaEntry } from "../core/index-format.js";
import { parseCertificate, parseCsr, type ParsedCertificate, type ParsedCsr } from "../core/parse.js";
import { parseCrl, type ParsedCrl } from "../core/crl-parse.js";
import { parseOnelineDn } from "../core/dn-format.js";
import { entriesOfName, liveMatching, parseSubjectQuery } from "../core/subject-match.js";
import { looksLikePem, parsePemBlocks, toPem } from "../core/pem.js";
import { normaliseSerial } from "../core/serial.js";
import { readInputFile } from "../store/ca-dir.js";
import type { CaStore } from "../store/store.js";
import { noCa, openAuthority, type Authority } from "./authority.js";
import { provenance, requireIssuedHere, type Provenance } from "./provenance.js";

export type Document =
  | { kind: "certificate"; der: Uint8Array; cert: ParsedCertificate }
  | { kind: "csr"; der: Uint8Array; csr: ParsedCsr }
  | { kind: "crl"; der: Uint8Array; crl: ParsedCrl };

/** Classify bytes as a certificate, CSR or CRL (PEM label, else DER structure). */
export function readDocument(data: Uint8Array, source: string): Document {
  const bad = (why: string) => new PkiError("BAD_INPUT", `${source}: ${why}`);
  if (data.length === 0) throw bad("the file is empty");
  const asCert = (der: Uint8Array): Document => ({ kind: "certificate", der, cert: parseCertificate(der) });
  const asCsr = (der: Uint8Array): Document => ({ kind: "csr", der, csr: parseCsr(der) });
  const asCrl = (der: Uint8Array): Document => ({ kind: "crl", der, crl: parseCrl(der) });
  try {
    if (looksLikePem(data)) {
      const blocks = parsePemBlocks(Buffer.from(data).toString("latin1"));
      if (!blocks.length) throw bad("the PEM block is incomplete (no END line): the file was truncated");
      for (const b of blocks) {
        if (b.label === "CERTIFICATE" || b.label === "TRUSTED CERTIFICATE") return asCert(b.der);
        if (b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST") return asCsr(b.der);
        if (b.label === "X509 CRL") return asCrl(b.der);
      }
      throw bad(`holds a PEM "${blocks[0]!.label}", not a certificate, CSR or CRL`);
    }
    for (const f of [asCert, asCrl, asCsr]) {
      try {
        return f(data);
      } catch (e) {
        if (!(e instanceof DerError)) throw e;
      }
    }
    throw bad("not a certificate, CSR or CRL (PEM or DER)");
  } catch (e) {
    if (e instanceof DerError) throw bad(`not a readable certificate, CSR or CRL: ${e.message}`);
    throw e;
  }
}

export interface CertTarget {
  der: Uint8Array;
  pem: string;
  cert: ParsedCertificate;
  /** the index line, when this CA issued it */
  entry?: IndexEntry;
  meta?: MetaEntry;
  /** how the user named it */
  source: string;
  /** for a file: whether it is this CA's own certificate (ca/provenance.ts); a name or serial is the CA's own copy */
  provenance?: Provenance;
}

export interface ResolveOptions {
  /**
   * A certificate file must be this CA's own certificate (signed with its key,
   * identical to certs/<SERIAL>.pem), else NOT_ISSUED_HERE: for commands that
   * act on or report on the record (renew, revoke, export p12, show, verify).
   * Default false: the file is read, and this CA's record is attached only
   * when it passes the check.
   */
  recordedOnly?: boolean;
  /** what to do instead, in the NOT_ISSUED_HERE message */
  hint?: string;
}

/**
 * Is the target a file rather than a name or a serial? A path with a "/"
 * always is (names and serials have none: `revoke /dev/zero` is refused as a
 * device, never looked up as a name); otherwise an existing regular file.
 */
export function isFileTarget(target: string): boolean {
  if (target.includes("/")) return true;
  try {
    return fs.statSync(target).isFile();
  } catch {
    return false;
  }
}

/** A certificate file: read bounded, classified, refused when it is a CSR or a CRL. */
export function readCertificateFile(file: string): { der: Uint8Array; cert: ParsedCertificate } {
  const doc = readDocument(readInputFile(file, "certificate file"), file);
  if (doc.kind !== "certificate") throw new PkiError("BAD_INPUT", `${file} is a ${doc.kind === "csr" ? "certificate signing request" : "CRL"}, not a certificate`);
  return { der: doc.der, cert: doc.cert };
}

/**
 * The index lines recorded under an issued name, in index order (index.meta's
 * own order is not kept by every store), and the serials index.meta names.
 */
export function namedEntries(indexBuf: Buffer, meta: ReadonlyMap<string, MetaEntry>, name: string): { entries: IndexEntry[]; serials: string[] } {
  const serials = [...meta.values()].filter((m) => m.name === name).map((m) => m.serial);
  const lines = serials.flatMap((s) => {
    const at = findSerialLine(indexBuf, s);
    return at ? [at] : [];
  });
  lines.sort((a, b) => a.start - b.start);
  return { entries: lines.map((at) => parseIndexLineAt(indexBuf, at.start, at.end)), serials };
}

/** The serial an issued name refers to: its valid certificate, else the last one issued. */
export function currentOfName(named: { entries: IndexEntry[]; serials: string[] }, now: Date): string | undefined {
  const valid = named.entries.filter((e) => e.status === "V" && e.expires.getTime() > now.getTime());
  return (valid[valid.length - 1] ?? named.entries[named.entries.length - 1])?.serial ?? named.serials[named.serials.length - 1];
}

/** A name or serial of this CA, to its serial and the source shown in messages. */
async function serialOf(store: CaStore, target: string, indexBuf: Buffer, now: Date): Promise<{ serial: string; source: string }> {
  const byName = currentOfName(namedEntries(indexBuf, await store.meta(), target), now);
  if (byName !== undefined) return { serial: byName, source: `${target} (serial ${byName})` };
  const s = normaliseSerial(target);
  if (s !== null && (findSerialLine(indexBuf, s) !== null || (await store.certPem(s)) !== null)) return { serial: s, source: target };
  throw new PkiError("NOT_FOUND", `"${target}" is neither a file, an issued name nor a serial of this CA: check \`pki list\``);
}

/** certs/<SERIAL>.pem, which the index (or a name) points at. */
async function recordedDer(store: CaStore, serial: string): Promise<Uint8Array> {
  const text = await store.certPem(serial);
  if (text === null) throw new PkiError("CA_INVALID", `certs/${serial}.pem is missing although the index lists it; run \`pki doctor\``);
  const block = parsePemBlocks(text).find((b) => b.label === "CERTIFICATE");
  if (!block) throw new PkiError("CA_INVALID", `certs/${serial}.pem holds no certificate; run \`pki doctor\``);
  return block.der;
}

/** A file's provenance: required (recordedOnly), else looked at when there is a readable CA. */
async function fileProvenance(store: CaStore, file: string, cert: ParsedCertificate, der: Uint8Array, opts: ResolveOptions): Promise<Provenance | undefined> {
  if (opts.recordedOnly) {
    if (!(await store.exists())) throw noCa(store);
    await requireIssuedHere(await openAuthority(store), cert, der, file, opts.hint);
    return { ok: true };
  }
  if (!(await store.exists())) return undefined;
  let ca: Authority | undefined;
  try {
    ca = await openAuthority(store);
  } catch {
    ca = undefined; // a damaged CA directory: show still shows the file, with no record attached
  }
  return ca ? await provenance(ca, cert, der) : { ok: false, why: "foreign" };
}

/**
 * A file path, an issued name or a serial, resolved to any document. Names
 * and serials need the CA directory; a plain file does not.
 */
export async function resolveDocument(store: CaStore, target: string, now: Date): Promise<{ doc: Document; source: string; serial?: string }> {
  if (isFileTarget(target)) return { doc: readDocument(readInputFile(target, "file"), target), source: target };
  const c = await resolveCertificate(store, target, now);
  return { doc: { kind: "certificate", der: c.der, cert: c.cert }, source: c.source, serial: c.entry?.serial };
}

/** A certificate given as a file, an issued name or a serial of this CA. */
export async function resolveCertificate(store: CaStore, target: string, now: Date, opts: ResolveOptions = {}): Promise<CertTarget> {
  if (isFileTarget(target)) {
    const { der, cert } = readCertificateFile(target);
    const prov = await fileProvenance(store, target, cert, der, opts);
    const t: CertTarget = { der, pem: toPem("CERTIFICATE", der), cert, source: target, provenance: prov };
    // a file is this CA's record only once its provenance is established
    return prov?.ok && (await store.exists()) ? { ...t, ...(await recordOf(store, cert.serial)) } : t;
  }
  if (!(await store.exists())) throw noCa(store);
  const indexBuf = await store.indexText();
  const { serial, source } = await serialOf(store, target, indexBuf, now);
  const der = await recordedDer(store, serial);
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new PkiError("BAD_INPUT", `${target} is not a readable certificate: ${(e as Error).message}`);
  }
  return { der, pem: toPem("CERTIFICATE", der), cert, source, ...(await recordOf(store, cert.serial, indexBuf)) };
}

/** The index line and meta of a serial. */
async function recordOf(store: CaStore, serial: string, indexBuf?: Buffer): Promise<{ entry?: IndexEntry; meta?: MetaEntry }> {
  const entry = findIndexEntry(indexBuf ?? (await store.indexText()), serial) ?? undefined;
  return { entry, meta: (await store.meta()).get(serial) };
}

/**
 * Resolve a target to the one index entry it revokes. A file must be this
 * CA's own certificate (a forged file carrying someone else's serial revokes
 * nobody). An issued name picks its valid certificate; a name with several
 * valid ones is refused (give the serial).
 */
export async function resolveEntry(ca: Authority, target: string, indexBuf: Buffer, now: Date, meta: ReadonlyMap<string, MetaEntry>): Promise<IndexEntry> {
  if (isFileTarget(target)) {
    const { der, cert } = readCertificateFile(target);
    await requireIssuedHere(ca, cert, der, target);
    const e = findIndexEntry(indexBuf, cert.serial);
    if (!e) throw new PkiError("NOT_FOUND", `${target} (serial ${cert.serial}) is not in this CA's index: check \`pki list\` or run \`pki doctor\``);
    return e;
  }
  // an issued name first, then a serial: the order of every command
  const named = namedEntries(indexBuf, meta, target).entries;
  if (named.length === 0) {
    const asSerial = normaliseSerial(target);
    const bySerial = asSerial !== null ? findIndexEntry(indexBuf, asSerial) : null;
    if (bySerial) return bySerial;
    // a word that reads like a file name (web.crt): a missing file, most likely; a file is given with a path (./web.crt)
    const fileLike = /\.(crt|pem|cer|der)$/i.test(target) ? `; for a certificate file give its path (./${target})` : "";
    throw new PkiError("NOT_FOUND", `no certificate with serial or name ${JSON.stringify(target)} in this CA: check \`pki list\`${fileLike}`);
  }
  return revocableOfName(target, named, now);
}

/** The one valid certificate of a name that `revoke <name>` revokes. */
export function revocableOfName(name: string, named: readonly IndexEntry[], now: Date): IndexEntry {
  const valid = named.filter((e) => e.status === "V");
  if (valid.length === 0) {
    const last = named[named.length - 1]!;
    throw new PkiError("ALREADY_REVOKED", `"${name}" holds no valid certificate: serial ${last.serial} was already revoked on ${last.revokedAt?.toISOString()}`);
  }
  const live = valid.filter((e) => e.expires.getTime() > now.getTime());
  const pick = live.length ? live : valid;
  if (pick.length > 1) {
    throw new PkiError("BAD_INPUT", `"${name}" holds ${pick.length} valid certificates (serials ${pick.map((e) => e.serial).join(", ")}): revoke one by its serial, or all with --all-of ${name}`);
  }
  return pick[0]!;
}

/**
 * Every certificate a revoke command line names, resolved before anything is
 * revoked (and before the CA key is decrypted): one unknown or already
 * revoked target fails the run. The same certificate named twice (its name
 * and its serial, say) is revoked once.
 */
export async function resolveRevocations(ca: Authority, targets: readonly string[], o: { subject?: string; allOf?: string }, now: Date): Promise<IndexEntry[]> {
  const out = new Map<string, IndexEntry>();
  const indexBuf = await ca.store.indexText();
  const meta = await ca.store.meta();
  for (const t of targets) {
    const e = await resolveEntry(ca, t, indexBuf, now, meta);
    if (e.status === "R") throw new PkiError("ALREADY_REVOKED", `${t}: serial ${e.serial} (${e.subject}) was already revoked on ${e.revokedAt?.toISOString()}`);
    out.set(e.serial, e);
  }
  if (o.subject === undefined && o.allOf === undefined) return [...out.values()];
  const index = parseIndex(indexBuf.toString("utf8"));
  for (const e of o.subject !== undefined ? bySubject(index, o.subject, now) : []) out.set(e.serial, e);
  for (const e of o.allOf !== undefined ? allOfName(index, meta, o.allOf, now) : []) out.set(e.serial, e);
  return [...out.values()];
}

/** --subject: every valid certificate with that subject (or CN). */
function bySubject(index: readonly IndexEntry[], subject: string, now: Date): IndexEntry[] {
  const q = parseSubjectQuery(subject);
  const hits = liveMatching(index, q, now, (e) => parseOnelineDn(e.subject));
  if (hits.length === 0) {
    throw new PkiError("NOT_FOUND", `no valid certificate has the ${q.kind === "cn" ? "CN" : "subject"} ${JSON.stringify(subject)}: check \`pki list --status valid\``);
  }
  return hits;
}

/** --all-of: every valid certificate ever recorded under the name. */
function allOfName(index: readonly IndexEntry[], meta: ReadonlyMap<string, MetaEntry>, name: string, now: Date): IndexEntry[] {
  const of = entriesOfName(index, (s) => meta.get(s)?.name, name, now);
  if (of.live.length + of.revoked.length + of.expired.length === 0) {
    throw new PkiError("NOT_FOUND", `no certificate was ever issued under the name ${JSON.stringify(name)}: check \`pki list\``);
  }
  if (of.live.length === 0) {
    throw new PkiError("ALREADY_REVOKED", `"${name}" holds no valid certificate (${of.revoked.length} revoked, ${of.expired.length} expired): nothing to revoke`);
  }
  return of.live;
}
