/**
 * `pki store migrate` and `pki store export` (issue #14): a whole CA copied
 * from one store to another — a directory into PostgreSQL, PostgreSQL out to
 * a directory that `openssl ca` reads. Only through the CaStore interface, so
 * any direction works: every document (DOC's top-level names and everything
 * under private/, profiles/, issued/), every certificate record with its
 * index line, profile, name and PEM, and the audit log.
 *
 * All or nothing: the target is made by one CaStore.create (refused when it
 * already holds a CA); the source is only read. The copy is checked before
 * and after: the index text the target serves must be byte for byte the
 * source's, and every record must have its certificate PEM.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseCrlNumber } from "../core/crl.js";
import { PkiError } from "../core/errors.js";
import { formatLine, parseIndex, type IndexEntry } from "../core/index-format.js";
import { DOC, DOC_DIRS, type CaStore, type CertRecord, type DocWrite } from "../store/store.js";

/** The documents that live at the top of a CA (and private/ca.key), by name. */
export const TOP_DOCS: readonly string[] = (Object.values(DOC) as unknown[]).filter((v): v is string => typeof v === "string");

export interface CopyResult {
  from: string;
  to: string;
  certificates: number;
  revoked: number;
  documents: number;
  auditRecords: number;
}

/** The audit log of a store as JSON lines: the database's table, or a directory's audit.log. */
async function auditLines(store: CaStore): Promise<string[]> {
  let text = "";
  const withText = store as CaStore & { auditText?: () => Promise<string> };
  if (typeof withText.auditText === "function") text = await withText.auditText();
  else if (store.kind === "dir") {
    try {
      text = fs.readFileSync(path.join(store.location, "audit.log"), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new PkiError("IO_ERROR", `cannot read ${path.join(store.location, "audit.log")}: ${(e as Error).message}`);
    }
  }
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** Copy the CA in `from` into the empty store `to`. */
export async function copyStore(from: CaStore, to: CaStore): Promise<CopyResult> {
  if (!(await from.exists())) throw new PkiError("NO_CA", `${from.location} holds no CA: nothing to copy`);
  if (await to.exists()) throw new PkiError("CA_EXISTS", `${to.location} already holds a CA: the target of a copy must be empty`);

  const docs: DocWrite[] = [];
  // the CRL number travels as the change's crlNumber (each store writes it its own way, crlnumber as openssl keeps it)
  let crlNumber: bigint | undefined;
  const crlText = await from.read(DOC.crlNumber);
  if (crlText) {
    const n = parseCrlNumber(crlText.toString("utf8"));
    if (n === null) throw new PkiError("CA_INVALID", `${from.location}: crlnumber does not hold a hex number; run \`pki doctor\` on the source`);
    crlNumber = n;
  }
  for (const name of TOP_DOCS) {
    if (name === DOC.crlNumber) continue;
    const data = await from.read(name);
    if (data) docs.push({ name, data, mode: name.startsWith("private/") ? 0o600 : 0o644 });
  }
  for (const dir of DOC_DIRS) {
    for (const name of await from.list(dir)) {
      if (TOP_DOCS.includes(name)) continue;
      const data = await from.read(name);
      if (data) docs.push({ name, data, mode: dir === "private" ? 0o600 : 0o644 });
    }
  }

  const indexText = (await from.indexText()).toString("utf8");
  const entries: IndexEntry[] = parseIndex(indexText);
  // the target stores each record's line as pki formats it: a line in another spelling would not round-trip
  const lines = indexText.split("\n").filter((l) => l !== "");
  for (let i = 0; i < entries.length; i++) {
    if (formatLine(entries[i]!) !== lines[i]) {
      throw new PkiError("CA_INVALID", `${from.location}: index line ${i + 1} (serial ${entries[i]!.serial}) is not in the form pki writes, so it would not copy byte for byte; run \`pki doctor\` on the source`);
    }
  }
  const meta = await from.meta();
  const add: CertRecord[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.serial)) throw new PkiError("CA_INVALID", `${from.location}: serial ${entry.serial} is recorded twice; run \`pki doctor\` on the source`);
    seen.add(entry.serial);
    const pem = await from.certPem(entry.serial);
    if (pem === null) throw new PkiError("CA_INVALID", `${from.location}: certificate ${entry.serial} is recorded but its PEM (certs/${entry.serial}.pem) is missing; run \`pki doctor\` on the source`);
    const m = meta.get(entry.serial);
    add.push({ entry, pem, profile: m?.profile, name: m?.name });
  }
  const audit = await auditLines(from);

  await to.create({ docs, add, ...(crlNumber !== undefined ? { crlNumber } : {}) });

  const copied = (await to.indexText()).toString("utf8");
  if (copied !== indexText) throw new PkiError("INTERNAL", `the copy in ${to.location} does not serve the same index as ${from.location}`);
  const records: Record<string, unknown>[] = [];
  for (const l of audit) {
    try {
      records.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      records.push({ unparsed: l });
    }
  }
  const result: CopyResult = {
    from: from.location,
    to: to.location,
    certificates: entries.length,
    revoked: entries.filter((e) => e.status === "R").length,
    documents: docs.length,
    auditRecords: audit.length,
  };
  await to.audit(records);
  return result;
}

/** The audit record of a copy, for both stores' logs. */
export function copyAuditRecord(command: string, r: CopyResult, now: Date): Record<string, unknown> {
  return { time: now.toISOString(), command, from: r.from, to: r.to, certificates: r.certificates, revoked: r.revoked, outcome: "ok" };
}

/**
 * `pki store migrate` and `pki store export`: copy, then append the same
 * audit record to both stores (the copy's own audit lines come first), and
 * close the destination. A refused copy is handed to onRefused first, while
 * both stores are open (store migrate records it there).
 */
export async function copyAndAudit(command: string, from: CaStore, to: CaStore, now: Date, onRefused?: (e: unknown) => Promise<void>): Promise<CopyResult> {
  try {
    const r = await copyStore(from, to).catch(async (e: unknown) => {
      // while both stores are open: the command may record the refusal in them
      if (onRefused) await onRefused(e);
      throw e;
    });
    const rec = copyAuditRecord(command, r, now);
    await to.audit([rec]);
    await from.audit([rec]);
    return r;
  } finally {
    await to.close();
  }
}
