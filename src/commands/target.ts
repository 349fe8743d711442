/**
 * Resolving a command's <target>: a file (certificate, CSR or CRL; PEM or
 * DER), an issued name (index.meta name -> serial) or a serial (hex, any
 * case, colons allowed). Shared by show, verify, renew and export p12.
 */
import * as fs from "node:fs";
import { DerError } from "../core/der.js";
import { PkiError } from "../core/errors.js";
import { parseIndex, type IndexEntry, type MetaEntry } from "../core/index-format.js";
import { parseCertificate, parseCsr, type ParsedCertificate, type ParsedCsr } from "../core/parse.js";
import { parseCrl, type ParsedCrl } from "../core/crl-parse.js";
import { looksLikePem, parsePemBlocks, toPem } from "../core/pem.js";
import { normaliseSerial } from "../core/serial.js";
import { readInputFile } from "../store/ca-dir.js";
import type { CaStore } from "../store/store.js";
import { noCa, openAuthority, type Authority } from "../ca/authority.js";
import { provenance, requireIssuedHere, type Provenance } from "../ca/provenance.js";

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

/** The serial an issued name refers to: its valid certificate, else the last one issued. */
export async function serialOfName(store: CaStore, name: string, index: IndexEntry[], now: Date): Promise<string | undefined> {
  const meta = await store.meta();
  const serials = new Set([...meta.values()].filter((m) => m.name === name).map((m) => m.serial));
  if (serials.size === 0) return undefined;
  const lines = index.filter((e) => serials.has(e.serial));
  const valid = lines.filter((e) => e.status === "V" && e.expires.getTime() > now.getTime());
  return (valid[valid.length - 1] ?? lines[lines.length - 1])?.serial ?? [...serials].pop();
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * A file path, an issued name or a serial, resolved to any document. Names
 * and serials need the CA directory; a plain file does not.
 */
export async function resolveDocument(store: CaStore, target: string, now: Date): Promise<{ doc: Document; source: string; serial?: string }> {
  if (isFile(target)) return { doc: readDocument(readInputFile(target, "file"), target), source: target };
  const c = await resolveCertificate(store, target, now);
  return { doc: { kind: "certificate", der: c.der, cert: c.cert }, source: c.source, serial: c.entry?.serial };
}

/** A certificate given as a file, an issued name or a serial of this CA. */
export async function resolveCertificate(store: CaStore, target: string, now: Date, opts: ResolveOptions = {}): Promise<CertTarget> {
  const readIndex = async () => parseIndex((await store.indexText()).toString("utf8"));
  let der: Uint8Array;
  let source = target;
  // the index, once: read here for a name or serial, or below for a file
  let index: IndexEntry[] | undefined;
  if (isFile(target)) {
    const doc = readDocument(readInputFile(target, "certificate file"), target);
    if (doc.kind !== "certificate") throw new PkiError("BAD_INPUT", `${target} is a ${doc.kind === "csr" ? "certificate signing request" : "CRL"}, not a certificate`);
    der = doc.der;
  } else {
    if (!(await store.exists())) throw noCa(store);
    index = await readIndex();
    let serial = await serialOfName(store, target, index, now);
    if (serial === undefined) {
      const s = normaliseSerial(target);
      if (s !== null && (index.some((e) => e.serial === s) || (await store.certPem(s)) !== null)) serial = s;
    } else source = `${target} (serial ${serial})`;
    if (serial === undefined) {
      throw new PkiError("NOT_FOUND", `"${target}" is neither a file, an issued name nor a serial of this CA: check \`pki list\``);
    }
    const text = await store.certPem(serial);
    if (text === null) {
      throw new PkiError("CA_INVALID", `certs/${serial}.pem is missing although the index lists it; run \`pki doctor\``);
    }
    const block = parsePemBlocks(text).find((b) => b.label === "CERTIFICATE");
    if (!block) throw new PkiError("CA_INVALID", `certs/${serial}.pem holds no certificate; run \`pki doctor\``);
    der = block.der;
  }
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new PkiError("BAD_INPUT", `${target} is not a readable certificate: ${(e as Error).message}`);
  }
  let entry: IndexEntry | undefined;
  let meta: MetaEntry | undefined;
  let prov: Provenance | undefined;
  if (index === undefined) {
    // a file: trusted as this CA's certificate only after the provenance check
    if (opts.recordedOnly) {
      if (!(await store.exists())) throw noCa(store);
      const ca = await openAuthority(store);
      await requireIssuedHere(ca, cert, der, target, opts.hint);
      prov = { ok: true };
    } else if (await store.exists()) {
      let ca: Authority | undefined;
      try {
        ca = await openAuthority(store);
      } catch {
        ca = undefined; // a damaged CA directory: show still shows the file, with no record attached
      }
      prov = ca ? await provenance(ca, cert, der) : { ok: false, why: "foreign" };
    }
  }
  if ((index !== undefined || prov?.ok) && (await store.exists())) {
    entry = (index ?? (await readIndex())).find((e) => e.serial === cert.serial);
    meta = (await store.meta()).get(cert.serial);
  }
  return { der, pem: toPem("CERTIFICATE", der), cert, entry, meta, source, provenance: prov };
}
