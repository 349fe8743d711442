/**
 * Signing PKCS#10 requests (`pki sign-csr`): read the CA once, check every
 * request before the CA key is even opened (signature, key, name policy,
 * name constraints, the names and files it would take), let core/ decide
 * (csr-policy's template, profiles' leafDays), then commit the whole batch
 * in one locked issuance. All-or-nothing.
 *
 * What a run reads of the CA: pki.json and ca.crt once (openAuthority), the
 * profiles, and under the lock the index and what the commit derives from it.
 */
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { templateFromCsr, type IssuanceTemplate } from "../core/csr-policy.js";
import { commonName, formatDn, formatSan, type San } from "../core/names.js";
import { parseOnelineDn } from "../core/dn-format.js";
import type { IndexEntry, MetaEntry } from "../core/index-format.js";
import { commonNameKey, isLive, onelineCommonNameKey } from "../core/subject-match.js";
import { findSerialLine, parseIndexLineAt } from "../core/index-edit.js";
import { describeExtensions } from "../core/parse.js";
import { leafDays, type Profile } from "../core/profiles.js";
import { sha256Hex } from "../crypto/keys.js";
import { derivingAhead } from "../crypto/derive-ahead.js";
import { readInputFile, readStdin } from "../store/ca-dir.js";
import { confineOutDir, confineOutput } from "../store/output.js";
import type { CaStore } from "../store/store.js";
import { checkCsr, type CheckedCsr } from "./csr.js";
import { checkName, issue, issuedJson, openAuthority, openSigningAuthority, profileOf, signingAuthorityAhead, type Authority, type IssueRequest, type Issued, type KeyAccess, type SigningAuthority } from "./authority.js";
import { chainPem, enforceConstraints } from "./parent.js";
import { assertNoLiveDrops, refreshCrl, staleCrlWarning } from "./revocation.js";
import { issuedWrites, pathsFor } from "./issued.js";

/** What to sign, and how: the options of `pki sign-csr`, parsed. */
export interface SignCsrRequest {
  /** CSR files, "-" for standard input */
  csrs: readonly string[];
  profile: string;
  /** --out: the one certificate's file (else the PEM goes to stdout) */
  out?: string;
  /** --out-dir: one <csr-name>.crt per CSR */
  outDir?: string;
  /** --days; default: the profile's, else pki.json's defaultDays, else 365 */
  days?: number;
  cn?: string;
  /** --san: replaces the requested names */
  sans?: San[];
  /** --chain: the CA certificate(s) after the leaf */
  chain: boolean;
  dryRun: boolean;
  /** --name: recorded under this issued name */
  name?: string;
  /** --name-from-cn: each recorded under its CN */
  nameFromCn: boolean;
  /** --replace: supersede the live certificates of the name */
  replace: boolean;
}

export interface SignCsrEnv {
  now: () => Date;
  /** how to reach the CA key, its secret asked for now (cli/context.ts keyAccessNow); only when something is signed (a dry run needs no key) */
  key: (ca: Authority) => Promise<KeyAccess>;
  /** the audit line's facts, filled in as requests are read: a refusal line carries them too */
  audit: Record<string, unknown>;
}

/** One request, checked. */
export interface CsrItem {
  source: string;
  /** SHA-256 of the request as received (what `sha256sum file.csr` prints): the audit line's csrSha256 */
  sha256: string;
  checked: CheckedCsr;
  template: IssuanceTemplate;
  out?: string;
  /** the issued name (--name, or the CN with --name-from-cn) */
  name?: string;
}

export interface DryRunPlan {
  source: string;
  requested: { subject: string; extensions: ReturnType<typeof describeExtensions> };
  issued: { subject: string; san: string[]; profile: string; keyUsage: string[]; extendedKeyUsage: string[]; days: number; name: string | null };
  ignoredExtensions: string[];
}

/** What a signing run did: the command renders it. */
export interface SignedCsrs {
  profile: Profile;
  items: CsrItem[];
  issued: Issued[];
  /** per certificate: the JSON fields (README "JSON vocabulary"); `certificate` when it was not written to a file */
  certificates: Array<Record<string, unknown>>;
  /** per certificate: the serials it superseded (--replace) */
  replaced: string[][];
  /** how many certificates --replace revoked (crl.pem re-signed) */
  superseded: number;
  /** where a named certificate is kept, for messages: its file, or the store */
  recordedAt: (name: string) => string;
  /** extensions requested and ignored, over all requests */
  ignored: string[];
  /** for stderr in both modes (a duplicate CN, a stale CRL) */
  warnings: string[];
}

/** A CSR's CN as an issued name (--name-from-cn): it must pass the name rules of `pki issue`. */
function nameFromCn(t: IssuanceTemplate, source: string): string {
  const cn = commonName(t.subject);
  if (cn === undefined) throw new PkiError("BAD_INPUT", `${source} has no CN to name its certificate after: sign it alone with --name NAME`);
  try {
    checkName(cn);
  } catch {
    throw new PkiError("BAD_INPUT", `the CN ${JSON.stringify(cn.slice(0, 80))} of ${source} cannot be an issued name (letters, digits, '.', '-', '_', '@'; it becomes a file name): sign it alone with --name NAME`);
  }
  return cn;
}

/**
 * Under the lock: the names already taken (NAME_EXISTS unless --replace, which
 * supersedes their live certificates) and the live certificates that share a
 * CN with a new one (a warning: the same machine holding two valid
 * certificates is how a re-registered agent kept its old access).
 *
 * `index` is the index text, read where it matters rather than parsed whole
 * (a CA of 100,000 valid certificates: ~0.3 s of every sign-csr): the named
 * certificates are found from index.meta (`meta`) by their serial's line; for
 * the CN, each valid line's subject is read and only a line with a wanted CN
 * is parsed. Both lists are in index order.
 */
export function planNames(
  items: ReadonlyArray<{ name?: string; subject: IssuanceTemplate["subject"] }>,
  index: Buffer,
  meta: ReadonlyMap<string, { name?: string }>,
  replace: boolean,
  now: Date,
): { supersede: IndexEntry[]; duplicates: Array<{ item: number; entry: IndexEntry }> } {
  const wanted = new Set(items.map((i) => i.name).filter((n): n is string => n !== undefined));
  const named: Array<{ at: number; entry: IndexEntry; name: string }> = [];
  if (wanted.size) {
    for (const [serial, m] of meta) {
      if (m.name === undefined || !wanted.has(m.name)) continue;
      const at = findSerialLine(index, serial);
      if (!at) continue;
      const entry = parseIndexLineAt(index, at.start, at.end);
      if (isLive(entry, now)) named.push({ at: at.start, entry, name: m.name });
    }
    named.sort((a, b) => a.at - b.at);
  }
  if (named.length && !replace) {
    const { name, entry } = named[0]!;
    throw new PkiError("NAME_EXISTS", `"${name}" already holds a valid certificate (serial ${entry.serial}): pass --replace to supersede it, or \`pki revoke ${name}\` first`);
  }
  const supersede = named.map((n) => n.entry);
  const wantedCns = items.map((it) => commonNameKey(it.subject));
  const cns = new Set(wantedCns.filter((cn): cn is string => cn !== undefined));
  const sameCn: Array<{ cn: string; entry: IndexEntry }> = [];
  if (cns.size) {
    const gone = new Set(supersede.map((e) => e.serial));
    for (let start = 0; start < index.length; ) {
      let end = index.indexOf(10, start);
      if (end < 0) end = index.length;
      // a valid line ("V<TAB>..."): its subject is the last field
      const tab = index[start] === 0x56 && index[start + 1] === 9 ? index.lastIndexOf(9, end - 1) : -1;
      if (tab > start) {
        const cn = onelineCommonNameKey(index.toString("utf8", tab + 1, end));
        if (cn !== undefined && cns.has(cn)) {
          const entry = parseIndexLineAt(index, start, end);
          if (isLive(entry, now) && !gone.has(entry.serial)) sameCn.push({ cn, entry });
        }
      }
      start = end + 1;
    }
  }
  const duplicates: Array<{ item: number; entry: IndexEntry }> = [];
  wantedCns.forEach((cn, i) => {
    if (cn !== undefined) for (const d of sameCn) if (d.cn === cn) duplicates.push({ item: i, entry: d.entry });
  });
  return { supersede, duplicates };
}

/** The audit facts of the requests, as they are read (one request: its values; several: lists). */
interface AuditFacts {
  facts: Record<string, unknown>;
  one: boolean;
  hashes: string[];
  subjects: string[];
}

function auditFacts(r: SignCsrRequest, facts: Record<string, unknown>): AuditFacts {
  const a: AuditFacts = { facts, one: r.csrs.length === 1, hashes: [], subjects: [] };
  facts.profile = r.profile;
  if (r.name !== undefined) facts.name = r.name;
  // the SHA-256 of each CSR as received (what `sha256sum file.csr` prints), on refusal lines and ok lines alike
  facts.csrSha256 = a.one ? undefined : a.hashes;
  if (!a.one) facts.subject = a.subjects;
  return a;
}

/**
 * Read and check every request, in order, before anything is signed: each
 * one's SHA-256 as received and its subject go to the audit facts first (a
 * refused request is logged with them), then the profile's template, the name
 * constraints, its output file and its issued name.
 */
async function readRequests(store: CaStore, ca: Authority, profile: Profile, r: SignCsrRequest, audit: AuditFacts): Promise<CsrItem[]> {
  const { one, hashes, subjects } = audit;
  const items: CsrItem[] = [];
  const bases = new Set<string>();
  for (const a of r.csrs) {
    const source = a === "-" ? "standard input" : a;
    const data = a === "-" ? await readStdin("the CSR") : readInputFile(a, "CSR file");
    hashes.push(sha256Hex(data));
    if (one) audit.facts.csrSha256 = hashes[0];
    const checked = checkCsr(data, source);
    // the subject as requested (signature verified), cut short: a hostile CN must not bloat the log
    subjects.push(formatDn(checked.csr.subject).slice(0, 256));
    if (one) audit.facts.subject = subjects[0];
    const template = templateFromCsr(checked.csr, profile, { cn: r.cn, sans: r.sans }, ca.settings.policy);
    enforceConstraints(ca, commonName(template.subject), template.sans); // before the CA key is even opened
    const out = r.outDir ? outDirFile(store, r.outDir, a, bases) : r.out;
    const name = r.name ?? (r.nameFromCn ? nameFromCn(template, source) : undefined);
    if (name !== undefined && items.some((i) => i.name === name)) throw usage(`two CSRs would both be named "${name}": sign them separately`);
    items.push({ source, sha256: hashes[hashes.length - 1]!, checked, template, out, name });
  }
  return items;
}

/** --out-dir: <dir>/<the CSR file's name>.crt, each name once, each file confined. */
function outDirFile(store: CaStore, outDir: string, arg: string, taken: Set<string>): string {
  const base = arg === "-" ? "stdin" : path.basename(arg).replace(/\.(csr|req|pem|der)$/i, "");
  if (taken.has(base)) throw usage(`two CSRs would both be written to ${base}.crt: rename one`);
  taken.add(base);
  const out = path.join(outDir, `${base}.crt`);
  confineOutput(store, out, { label: "--out-dir file" });
  return out;
}

/** --dry-run: what would be issued next to what was requested. */
function dryRunPlans(items: readonly CsrItem[], profile: Profile, days: number): DryRunPlan[] {
  return items.map((it) => ({
    source: it.source,
    requested: {
      subject: formatDn(it.checked.csr.subject),
      extensions: describeExtensions(it.checked.csr.extensions),
    },
    issued: {
      subject: formatDn(it.template.subject),
      san: it.template.sans.map(formatSan),
      profile: profile.name,
      keyUsage: [...profile.keyUsage, ...(it.checked.keyKind === "rsa" ? profile.rsaKeyUsage : [])],
      extendedKeyUsage: profile.extendedKeyUsage,
      days,
      name: it.name ?? null,
    },
    ignoredExtensions: it.template.ignoredExtensions,
  }));
}

/** The issuance of each request: a named certificate is kept where `pki issue` keeps one (no key: the agent keeps its own). */
function issueRequests(store: CaStore, signing: SigningAuthority, items: readonly CsrItem[], profile: Profile, days: number, chain: boolean): IssueRequest[] {
  return items.map((it) => ({
    profile,
    subject: it.template.subject,
    subjectRaw: it.template.subjectRaw,
    sans: it.template.sans,
    spki: it.checked.csr.spki.raw,
    keyKind: it.checked.keyKind,
    days,
    name: it.name,
    files:
      it.out || it.name !== undefined
        ? (pem) => ({
            docs: it.name !== undefined ? issuedWrites(store, it.name, undefined, { cert: pem, chain: chainPem(signing, pem) }).docs : [],
            outputs: it.out ? [{ path: it.out, data: chain ? chainPem(signing, pem) : pem, mode: 0o644 }] : [],
          })
        : undefined,
  }));
}

type NamePlan = ReturnType<typeof planNames>;

/** One locked issuance: the names decided under the lock (--replace supersedes, and the CRL is re-signed in the same run). */
async function commit(signing: SigningAuthority, items: readonly CsrItem[], reqs: IssueRequest[], replace: boolean, now: () => Date): Promise<{ issued: Issued[]; plan: NamePlan }> {
  let plan: NamePlan = { supersede: [], duplicates: [] };
  const issued = await issue(signing, reqs, {
    now,
    supersede: async (index, tx) => {
      plan = planNames(
        items.map((i) => ({ name: i.name, subject: i.template.subject })),
        index,
        await tx.meta(),
        replace,
        now(),
      );
      // the CRL is re-signed after the index commit: refuse before it if that CRL would un-revoke anyone (as renew)
      if (plan.supersede.length) await assertNoLiveDrops(signing, tx, index, now());
      return plan.supersede.map((e) => ({ serial: e.serial, reason: "superseded" as const }));
    },
    after: async (tx) => {
      if (plan.supersede.length) await refreshCrl(signing, tx, now());
    },
  });
  return { issued, plan };
}

/** The audit lines of a signing run: one per certificate, one per superseded one. */
async function auditSigned(store: CaStore, issued: readonly Issued[], items: readonly CsrItem[], plan: NamePlan, meta: Map<string, MetaEntry> | undefined): Promise<void> {
  await store.audit([
    ...issued.map((c, i) => ({ command: "sign-csr", profile: c.profile, serial: c.serial, subject: c.subject, name: c.name, csrSha256: items[i]!.sha256, outcome: "ok" })),
    ...plan.supersede.map((e) => ({ command: "sign-csr", serial: e.serial, subject: formatDn(parseOnelineDn(e.subject)), name: meta?.get(e.serial)?.name, reason: "superseded", outcome: "revoked" })),
  ]);
}

/** A live certificate with the same CN stays valid: said on stderr even with --json (a registration hook must not miss it). */
function duplicateWarnings(items: readonly CsrItem[], plan: NamePlan, meta: Map<string, MetaEntry> | undefined): string[] {
  return plan.duplicates.map((d) => {
    const other = meta?.get(d.entry.serial)?.name;
    const cn = commonName(items[d.item]!.template.subject);
    // --replace supersedes what is recorded under a name: an unnamed certificate can only be revoked
    const how = other ? `to supersede it, sign with --name ${other} --replace, or run \`pki revoke ${other}\`` : `if the new one replaces it, run \`pki revoke ${d.entry.serial}\` (it has no name for --replace to supersede)`;
    return `pki: warning: CN=${cn} already holds valid certificate ${d.entry.serial}${other ? ` (name "${other}")` : ""}, which stays valid: ${how}`;
  });
}

/**
 * The files of one certificate, as they are: --out, and for a named one in a
 * CA directory issued/<name>.crt and its chain. A database store keeps a
 * named certificate in the database, not in a file: no path for it there.
 */
function certificateFiles(store: CaStore, it: CsrItem, named: boolean, chain: boolean): Record<string, string | null> {
  const out = it.out ? path.resolve(it.out) : null;
  const kept = it.name !== undefined && store.kind === "dir" ? pathsFor(store, it.name) : undefined;
  const files = { cert: out, chain: out && chain ? out : null };
  if (named && kept) Object.assign(files, { cert: path.resolve(kept.cert), chain: path.resolve(kept.chain) });
  return { path: out ?? (kept ? path.resolve(kept.cert) : null), ...files };
}

/** One certificate's JSON fields (CONTRACT "pki sign-csr"; with a name also name, cert, chain, replaced). */
function certificateJson(store: CaStore, signing: SigningAuthority, it: CsrItem, c: Issued, r: SignCsrRequest, replaced: string[]): Record<string, unknown> {
  const named = r.name !== undefined || r.nameFromCn;
  const { path: p, cert, chain } = certificateFiles(store, it, named, r.chain);
  return {
    ...issuedJson(c),
    path: p,
    ...(named ? { name: it.name ?? null, cert, chain, replaced } : { cert, chain }),
    key: null,
    ignoredExtensions: it.template.ignoredExtensions,
    ...(it.out ? {} : { certificate: r.chain ? chainPem(signing, c.pem) : c.pem }),
  };
}

/**
 * Sign what was checked, commit once, audit, and say what happened.
 * `crlBefore`: the stale-CRL warning as crl.pem was before the commit (read
 * while the key was still opening); a --replace that re-signed it is read again,
 * and without it (a database store) it is read now.
 */
async function signChecked(store: CaStore, signing: SigningAuthority, items: CsrItem[], profile: Profile, days: number, r: SignCsrRequest, env: SignCsrEnv, crlBefore?: Promise<string | null>): Promise<SignedCsrs> {
  const reqs = issueRequests(store, signing, items, profile, days, r.chain);
  const { issued, plan } = await commit(signing, items, reqs, r.replace, env.now);
  const meta = plan.supersede.length || plan.duplicates.length ? await store.meta() : undefined;
  await auditSigned(store, issued, items, plan, meta);
  const warnings = duplicateWarnings(items, plan, meta);
  const crlWarning = plan.supersede.length || !crlBefore ? await staleCrlWarning(signing, env.now()) : await crlBefore;
  if (crlWarning) warnings.push(crlWarning);
  const replaced = items.map((it) => (it.name === undefined ? [] : plan.supersede.filter((e) => meta?.get(e.serial)?.name === it.name).map((e) => e.serial)));
  return {
    profile,
    items,
    issued,
    certificates: issued.map((c, i) => certificateJson(store, signing, items[i]!, c, r, replaced[i]!)),
    replaced,
    superseded: plan.supersede.length,
    recordedAt: (name) => (store.kind === "dir" ? `(${pathsFor(store, name).cert})` : `in ${store.location}`),
    ignored: [...new Set(items.flatMap((i) => i.template.ignoredExtensions))],
    warnings,
  };
}

/**
 * `pki sign-csr`: check every request against the profile, the name policy
 * and the CA's constraints, then (unless a dry run) open the CA key and sign
 * the batch in one commit.
 */
export async function signCsrs(store: CaStore, r: SignCsrRequest, env: SignCsrEnv): Promise<{ dryRun: DryRunPlan[] } | SignedCsrs> {
  const ca = await openAuthority(store);
  const audit = auditFacts(r, env.audit);
  const profile = await profileOf(store, r.profile);
  const days = leafDays(profile, r.days, ca.settings.defaultDays);
  if (r.outDir) confineOutDir(store, r.outDir);
  if (r.out !== undefined) confineOutput(store, r.out, { label: "--out" });
  const items = await readRequests(store, ca, profile, r, audit);
  if (r.dryRun) return { dryRun: dryRunPlans(items, profile, days) };
  // when the key file's PBKDF2 was started at the process's start (cli/prefetch.ts), the locked
  // issuance reads the index and builds while it ends; else (a database store, a token, a typed
  // passphrase) the key opens first: the lock is not held through a whole derivation, which
  // would serialise the PBKDF2 of concurrent signers (8 sign-csr on PostgreSQL: 4.0/s -> 3.6/s)
  const access = await env.key(ca);
  const ahead = derivingAhead();
  const opening = openSigningAuthority(ca, access);
  const signing = ahead ? signingAuthorityAhead(ca, opening) : await opening;
  // crl.pem read meanwhile too (a directory store, where it costs no second database connection)
  const crlBefore = ahead ? staleCrlWarning(ca, env.now()) : undefined;
  crlBefore?.catch(() => {}); // awaited after the commit (staleCrlWarning itself does not reject)
  return signChecked(store, signing, items, profile, days, r, env, crlBefore);
}
