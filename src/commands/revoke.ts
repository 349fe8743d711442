/**
 * pki revoke <target>...: mark certificates revoked in index.txt and re-sign
 * the CRL (and ca-clients.crt when it lists issued certificates) in the same
 * locked step, so that the next `nginx -s reload` refuses it.
 *
 * <target> is, in this order: a certificate file (PEM or DER), an issued
 * name (index.meta), or a serial in the index (hex, any case, colons allowed).
 */
import * as fs from "node:fs";
import { PkiError, usage } from "../core/errors.js";
import { parseIndex, parseReason, REASON_NAMES, REASONS, type IndexEntry, type MetaEntry, type Reason } from "../core/index-format.js";
import { parseOnelineDn } from "../core/dn-format.js";
import { entriesOfName, liveMatching, parseSubjectQuery } from "../core/subject-match.js";
import { formatDn } from "../core/names.js";
import { parseCertificate } from "../core/parse.js";
import { looksLikePem, parsePemBlocks } from "../core/pem.js";
import { normaliseSerial } from "../core/serial.js";
import { keyAccessNow, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { openAuthority, openSigningAuthority, type Authority } from "../ca/authority.js";
import { findIndexEntry, revokeSerials } from "../ca/revocation.js";
import { requireIssuedHere } from "../ca/provenance.js";
import { readInputFile } from "../store/ca-dir.js";

interface Opts {
  reason?: string;
  subject?: string;
  allOf?: string;
  key?: string;
}

export function reasonOption(v: string | undefined): Reason {
  if (v === undefined) return "unspecified";
  const r = parseReason(v);
  if (!r) throw usage(`--reason takes one of ${REASON_NAMES.join(", ")}, not ${JSON.stringify(v)}`);
  return r;
}

/** The serial of a certificate file, checked to be this CA's own certificate (ca/provenance.ts). */
async function serialFromFile(ca: Authority, file: string): Promise<string> {
  const data = readInputFile(file, "certificate file");
  let der: Uint8Array = data;
  if (looksLikePem(data)) {
    const b = parsePemBlocks(data.toString("utf8")).find((x) => x.label === "CERTIFICATE");
    if (!b) throw new PkiError("BAD_INPUT", `${file} holds no PEM certificate`);
    der = b.der;
  }
  let cert;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new PkiError("BAD_INPUT", `${file} is not a readable certificate: ${(e as Error).message}`);
  }
  // signed with this CA's key and identical to certs/<SERIAL>.pem: a forged file carrying someone else's serial revokes nobody
  await requireIssuedHere(ca, cert, der, file);
  return cert.serial;
}

/**
 * Resolve a target to one index entry. An issued name picks its valid
 * certificate; a name with several valid ones is refused (give the serial).
 * The index is searched, not parsed: revoking one serial in a 100,000-line
 * index reads only that line.
 */
export async function resolveTarget(ca: Authority, target: string, indexBuf: Buffer, now: Date, meta?: Map<string, MetaEntry>): Promise<IndexEntry> {
  const lookup = (serial: string) => findIndexEntry(indexBuf, serial);
  if (target.includes("/") || (fs.existsSync(target) && fs.statSync(target).isFile())) {
    const serial = await serialFromFile(ca, target);
    const e = lookup(serial);
    if (!e) throw new PkiError("NOT_FOUND", `${target} (serial ${serial}) is not in this CA's index: check \`pki list\` or run \`pki doctor\``);
    return e;
  }
  // an issued name first, then a serial: the order show, renew and export use too
  const named: IndexEntry[] = [];
  for (const m of (meta ?? (await ca.store.meta())).values()) {
    if (m.name !== target) continue;
    const e = lookup(m.serial);
    if (e) named.push(e);
  }
  if (named.length === 0) {
    const asSerial = normaliseSerial(target);
    const bySerial = asSerial !== null ? lookup(asSerial) : null;
    if (bySerial) return bySerial;
    throw new PkiError("NOT_FOUND", `no certificate with serial or name ${JSON.stringify(target)} in this CA: check \`pki list\``);
  }
  const valid = named.filter((e) => e.status === "V");
  if (valid.length === 0) {
    const last = named[named.length - 1]!;
    throw new PkiError("ALREADY_REVOKED", `"${target}" holds no valid certificate: serial ${last.serial} was already revoked on ${last.revokedAt?.toISOString()}`);
  }
  const live = valid.filter((e) => e.expires.getTime() > now.getTime());
  const pick = live.length ? live : valid;
  if (pick.length > 1) {
    throw new PkiError("BAD_INPUT", `"${target}" holds ${pick.length} valid certificates (serials ${pick.map((e) => e.serial).join(", ")}): revoke one by its serial, or all with --all-of ${target}`);
  }
  return pick[0]!;
}

/**
 * Every certificate the command line names, resolved before anything is
 * revoked (and before the CA key is decrypted): one unknown or already
 * revoked target fails the run. The same certificate named twice (its name
 * and its serial, say) is revoked once.
 */
export async function resolveAll(ca: Authority, targets: readonly string[], o: { subject?: string; allOf?: string }, now: Date): Promise<IndexEntry[]> {
  const out = new Map<string, IndexEntry>();
  const indexBuf = await ca.store.indexText();
  let meta: Map<string, MetaEntry> | undefined;
  for (const t of targets) {
    const e = await resolveTarget(ca, t, indexBuf, now, (meta ??= await ca.store.meta()));
    if (e.status === "R") throw new PkiError("ALREADY_REVOKED", `${t}: serial ${e.serial} (${e.subject}) was already revoked on ${e.revokedAt?.toISOString()}`);
    out.set(e.serial, e);
  }
  if (o.subject === undefined && o.allOf === undefined) return [...out.values()];
  const index = parseIndex(indexBuf.toString("utf8"));
  if (o.subject !== undefined) {
    const q = parseSubjectQuery(o.subject);
    const hits = liveMatching(index, q, now, (e) => parseOnelineDn(e.subject));
    if (hits.length === 0) {
      throw new PkiError("NOT_FOUND", `no valid certificate has the ${q.kind === "cn" ? "CN" : "subject"} ${JSON.stringify(o.subject)}: check \`pki list --status valid\``);
    }
    for (const e of hits) out.set(e.serial, e);
  }
  if (o.allOf !== undefined) {
    const m = meta ?? (await ca.store.meta());
    const of = entriesOfName(index, (s) => m.get(s)?.name, o.allOf, now);
    if (of.live.length + of.revoked.length + of.expired.length === 0) {
      throw new PkiError("NOT_FOUND", `no certificate was ever issued under the name ${JSON.stringify(o.allOf)}: check \`pki list\``);
    }
    if (of.live.length === 0) {
      throw new PkiError("ALREADY_REVOKED", `"${o.allOf}" holds no valid certificate (${of.revoked.length} revoked, ${of.expired.length} expired): nothing to revoke`);
    }
    for (const e of of.live) out.set(e.serial, e);
  }
  return [...out.values()];
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (args.length === 0 && o.subject === undefined && o.allOf === undefined) {
    throw usage("missing target: pki revoke <serial|certificate file|name>... (or --subject DN, --all-of NAME)");
  }
  if (o.subject !== undefined) parseSubjectQuery(o.subject); // a malformed DN is a usage error, before anything else
  const reason = reasonOption(o.reason);
  ctx.auditInfo.target = args.length === 1 ? args[0] : args.length ? args : undefined;
  if (o.subject !== undefined) ctx.auditInfo.subjectQuery = o.subject;
  if (o.allOf !== undefined) ctx.auditInfo.allOf = o.allOf;
  ctx.auditInfo.reason = reason;
  const ca = await openAuthority(store);
  // resolve and refuse before the key is decrypted; revokeSerials checks again under the lock
  const entries = await resolveAll(ca, args, o, ctx.now());
  ctx.auditInfo.serial = entries.length === 1 ? entries[0]!.serial : entries.map((e) => e.serial);
  // the passphrase first (a prompt must not run under the lock), then the key
  // decrypts on the thread pool while revokeSerials rewrites the index and
  // builds the CRL
  const access = await keyAccessNow(ctx, ca, o.key);
  const signing = openSigningAuthority(ca, access);
  signing.catch(() => {}); // handled where it is awaited
  const { revoked, crl } = await revokeSerials(
    ca,
    signing,
    entries.map((e) => ({ serial: e.serial, reason })),
    ctx.now(),
  );
  const meta = await store.meta();
  const pems = await Promise.all(revoked.map((r) => store.certPem(r.serial)));
  const list = revoked.map((r, i) => {
    let subject = formatDn(parseOnelineDn(r.subject));
    try {
      const blocks = parsePemBlocks(pems[i] ?? "");
      if (blocks[0]) subject = formatDn(parseCertificate(blocks[0].der).subject);
    } catch {
      // keep the index form of the subject
    }
    return { serial: r.serial, subject, name: meta.get(r.serial)?.name ?? null, reason, revokedAt: r.revokedAt.toISOString() };
  });
  // one audit line per certificate
  await store.audit(list.map((r) => ({ command: "revoke", serial: r.serial, subject: r.subject, name: r.name ?? undefined, reason, crlNumber: Number(crl.crlNumber), outcome: "ok" })));
  const first = list[0]!;
  const why = reason === "unspecified" ? "" : `, reason ${REASONS[reason].openssl}`;
  return {
    data: {
      // the first release's fields, for one certificate
      ...(list.length === 1 ? { serial: first.serial, subject: first.subject, reason, revokedAt: first.revokedAt } : {}),
      revoked: list.map(({ serial, subject, name, reason: r, revokedAt }) => ({ serial, subject, name, reason: r, revokedAt })),
      crl: crl.path,
    },
    messages: [
      ...list.map((r) => `Revoked ${r.serial} (${r.subject}${r.name ? `, name "${r.name}"` : ""})${why}`),
      `  CRL ${crl.path} re-signed (number ${crl.crlNumber}, ${crl.revoked} revoked): reload nginx to enforce it (nginx -s reload)`,
    ],
  };
}
