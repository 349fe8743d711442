/**
 * pki sign-csr: turn PKCS#10 requests into certificates of a profile.
 * Batch (several CSRs with --out-dir) is all-or-nothing: every request is
 * checked before the CA key is even decrypted, and the batch is committed in
 * one locked step.
 */
import { chainPem, enforceConstraints } from "../ca/parent.js";
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { templateFromCsr, type IssuanceTemplate } from "../core/csr-policy.js";
import { commonName, formatDn, formatSan, parseSanList } from "../core/names.js";
import { parseOnelineDn } from "../core/dn-format.js";
import { REASONS, type IndexEntry } from "../core/index-format.js";
import { isLive, sameCommonName } from "../core/subject-match.js";
import { describeExtensions } from "../core/parse.js";
import { leafDays, type Profile } from "../core/profiles.js";
import { keyAccess, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { checkCsr, type CheckedCsr } from "../ca/csr.js";
import { checkName, issue, issuedJson, openAuthority, openSigningAuthority, profileOf, type IssueRequest } from "../ca/authority.js";
import { refreshCrl, staleCrlWarning } from "../ca/revocation.js";
import { confinedPathsFor, issuedWrites, pathsFor } from "../ca/issued.js";
import { readInputFile, readStdin } from "../store/ca-dir.js";
import { intOption } from "./options.js";
import { confineOutDir, confineOutput } from "../store/output.js";
import { sha256Hex } from "../crypto/keys.js";

interface Opts {
  /** --key: the CA key on a PKCS#11 token (pkcs11: URI) */
  key?: string;
  profile?: string;
  out?: string;
  outDir?: string;
  days?: string;
  cn?: string;
  san?: string;
  chain?: boolean;
  dryRun?: boolean;
  name?: string;
  nameFromCn?: boolean;
  replace?: boolean;
}

interface Item {
  source: string;
  checked: CheckedCsr;
  template: IssuanceTemplate;
  out?: string;
  /** the issued name (--name, or the CN with --name-from-cn) */
  name?: string;
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
 */
export function planNames(
  items: ReadonlyArray<{ name?: string; subject: IssuanceTemplate["subject"] }>,
  index: readonly IndexEntry[],
  nameOf: (serial: string) => string | undefined,
  replace: boolean,
  now: Date,
): { supersede: IndexEntry[]; duplicates: Array<{ item: number; entry: IndexEntry }> } {
  const wanted = new Set(items.map((i) => i.name).filter((n): n is string => n !== undefined));
  const supersede: IndexEntry[] = [];
  const live = index.filter((e) => isLive(e, now));
  for (const e of live) {
    const n = nameOf(e.serial);
    if (n === undefined || !wanted.has(n)) continue;
    if (!replace) {
      throw new PkiError("NAME_EXISTS", `"${n}" already holds a valid certificate (serial ${e.serial}): pass --replace to supersede it, or \`pki revoke ${n}\` first`);
    }
    supersede.push(e);
  }
  const gone = new Set(supersede.map((e) => e.serial));
  const duplicates: Array<{ item: number; entry: IndexEntry }> = [];
  items.forEach((it, i) => {
    for (const e of live) if (!gone.has(e.serial) && sameCommonName(it.subject, parseOnelineDn(e.subject))) duplicates.push({ item: i, entry: e });
  });
  return { supersede, duplicates };
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (!o.profile) throw usage("--profile is required: code-signing, ssl, server, client, or a custom profile");
  if (args.length > 1 && !o.outDir && !o.dryRun && !o.nameFromCn) throw usage("several CSRs need --out-dir DIR (one certificate file per CSR) or --name-from-cn (issued/<CN>.crt)");
  if (args.length > 1 && o.out) throw usage("--out names one file: with several CSRs use --out-dir");
  if (args.filter((a) => a === "-").length > 1) throw usage("standard input (-) can be read only once");
  if (o.name !== undefined && o.nameFromCn) throw usage("give either --name or --name-from-cn, not both");
  if (o.name !== undefined && args.length > 1) throw usage("--name names one certificate: with several CSRs use --name-from-cn");
  if (o.replace && o.name === undefined && !o.nameFromCn) throw usage("--replace goes with --name NAME (or --name-from-cn): it supersedes that name's certificate");
  if (o.name !== undefined) confinedPathsFor(store, o.name); // the name rules of `pki issue`, and its files regular or new
  const named = o.name !== undefined || !!o.nameFromCn;
  const days = intOption(o.days, "--days", 1, 36500);
  const overrideSans = o.san !== undefined ? parseSanList(o.san) : undefined;

  const ca = await openAuthority(store);
  let profile: Profile | undefined;
  let effDays: number;
  const items: Item[] = [];
  // audit: the SHA-256 of each CSR as received (what `sha256sum file.csr` prints), on refusal lines and ok lines alike
  const hashes: string[] = [];
  const subjects: string[] = [];
  ctx.auditInfo.profile = o.profile;
  if (o.name !== undefined) ctx.auditInfo.name = o.name;
  ctx.auditInfo.csrSha256 = args.length === 1 ? undefined : hashes;
  if (args.length !== 1) ctx.auditInfo.subject = subjects;
  {
    profile = await profileOf(store, o.profile);
    effDays = leafDays(profile, days, ca.settings.defaultDays);
    if (o.outDir) confineOutDir(store, o.outDir);
    if (o.out !== undefined) confineOutput(store, o.out, { label: "--out" });
    const names = new Set<string>();
    for (const a of args) {
      const source = a === "-" ? "standard input" : a;
      const data = a === "-" ? await readStdin("the CSR") : readInputFile(a, "CSR file");
      hashes.push(sha256Hex(data));
      if (args.length === 1) ctx.auditInfo.csrSha256 = hashes[0];
      const checked = checkCsr(data, source);
      // the subject as requested (signature verified), cut short: a hostile CN must not bloat the log
      subjects.push(formatDn(checked.csr.subject).slice(0, 256));
      if (args.length === 1) ctx.auditInfo.subject = subjects[0];
      const template = templateFromCsr(checked.csr, profile, { cn: o.cn, sans: overrideSans }, ca.settings.policy);
      enforceConstraints(ca, commonName(template.subject), template.sans); // before the CA key is even opened
      let out = o.out;
      if (o.outDir) {
        const base = a === "-" ? "stdin" : path.basename(a).replace(/\.(csr|req|pem|der)$/i, "");
        if (names.has(base)) throw usage(`two CSRs would both be written to ${base}.crt: rename one`);
        names.add(base);
        out = path.join(o.outDir, `${base}.crt`);
        confineOutput(store, out, { label: "--out-dir file" });
      }
      const name = o.name ?? (o.nameFromCn ? nameFromCn(template, source) : undefined);
      if (name !== undefined && items.some((i) => i.name === name)) throw usage(`two CSRs would both be named "${name}": sign them separately`);
      items.push({ source, checked, template, out, name });
    }
  }


  if (o.dryRun) {
    const plans = items.map((it) => ({
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
        days: effDays,
        name: it.name ?? null,
      },
      ignoredExtensions: it.template.ignoredExtensions,
    }));
    const text = plans
      .map((p) =>
        [
          `${p.source}:`,
          `  requested  subject ${p.requested.subject || "(empty)"}`,
          `             extensions ${JSON.stringify(p.requested.extensions)}`,
          `  would issue subject ${p.issued.subject || "(empty)"}`,
          `             san ${p.issued.san.join(", ") || "(none)"}`,
          `             profile ${p.issued.profile}: keyUsage ${p.issued.keyUsage.join(", ")}; extendedKeyUsage ${p.issued.extendedKeyUsage.join(", ") || "(none)"}`,
          `             valid ${p.issued.days} days`,
          ...(p.issued.name ? [`  name       ${p.issued.name}`] : []),
          `  ignored    ${p.ignoredExtensions.join(", ") || "(nothing)"}`,
        ].join("\n"),
      )
      .join("\n");
    return { data: { dryRun: true, requests: plans }, stdout: text };
  }

  const signing = await openSigningAuthority(ca, keyAccess(ctx, o.key));
  const reqs: IssueRequest[] = items.map((it) => ({
    profile: profile!,
    subject: it.template.subject,
    subjectRaw: it.template.subjectRaw,
    sans: it.template.sans,
    spki: it.checked.csr.spki.raw,
    keyKind: it.checked.keyKind,
    days: effDays,
    name: it.name,
    files:
      it.out || it.name !== undefined
        ? (pem) => ({
            // a named certificate is found where `pki issue` puts one (no key: the agent keeps its own)
            docs: it.name !== undefined ? issuedWrites(store, it.name, undefined, { cert: pem, chain: chainPem(signing, pem) }).docs : [],
            outputs: it.out ? [{ path: it.out, data: o.chain ? chainPem(signing, pem) : pem, mode: 0o644 }] : [],
          })
        : undefined,
  }));
  let plan: ReturnType<typeof planNames> = { supersede: [], duplicates: [] };
  const issued = await issue(signing, reqs, {
    now: ctx.now,
    supersede: async (index, tx) => {
      const meta = await tx.meta();
      plan = planNames(
        items.map((i) => ({ name: i.name, subject: i.template.subject })),
        index,
        (s) => meta.get(s)?.name,
        !!o.replace,
        ctx.now(),
      );
      return plan.supersede.map((e) => ({ serial: e.serial, reason: "superseded" as const }));
    },
    after: async (_index, tx) => {
      if (plan.supersede.length) await refreshCrl(signing, tx, ctx.now());
    },
  });
  const metaNow = plan.supersede.length || plan.duplicates.length ? await store.meta() : undefined;
  await store.audit([
    ...issued.map((c, i) => ({ command: "sign-csr", profile: c.profile, serial: c.serial, subject: c.subject, name: c.name, csrSha256: hashes[i], outcome: "ok" })),
    ...plan.supersede.map((e) => ({ command: "sign-csr", serial: e.serial, subject: formatDn(parseOnelineDn(e.subject)), name: metaNow?.get(e.serial)?.name, reason: "superseded", outcome: "revoked" })),
  ]);
  const warnings: string[] = [];
  // to stderr even with --json: a registration hook must not miss it
  const dupWarnings = plan.duplicates.map((d) => {
    const other = metaNow?.get(d.entry.serial)?.name;
    const cn = commonName(items[d.item]!.template.subject);
    return `pki: warning: CN=${cn} already holds valid certificate ${d.entry.serial}${other ? ` (name "${other}")` : ""}, which stays valid: to supersede it, sign with --name ${other ?? "NAME"} --replace, or run \`pki revoke ${other ?? d.entry.serial}\``;
  });
  const ignoredAll = [...new Set(items.flatMap((i) => i.template.ignoredExtensions))];
  if (ignoredAll.length && !ctx.json) warnings.push(`pki: note: requested extensions ignored (the profile decides): ${ignoredAll.join(", ")}`);

  const crlWarning = await staleCrlWarning(signing, ctx.now());
  if (crlWarning) dupWarnings.push(crlWarning);
  const replacedBy = (i: number) => (items[i]!.name === undefined ? [] : plan.supersede.filter((e) => metaNow?.get(e.serial)?.name === items[i]!.name).map((e) => e.serial));
  const one = (i: number) => ({
    ...issuedJson(issued[i]!),
    path: items[i]!.out ? path.resolve(items[i]!.out!) : items[i]!.name !== undefined ? path.resolve(pathsFor(store, items[i]!.name!).cert) : null,
    ...(named
      ? {
          name: items[i]!.name ?? null,
          cert: items[i]!.name !== undefined ? path.resolve(pathsFor(store, items[i]!.name!).cert) : null,
          chain: items[i]!.name !== undefined ? path.resolve(pathsFor(store, items[i]!.name!).chain) : null,
          replaced: replacedBy(i),
        }
      : {
          cert: items[i]!.out ? path.resolve(items[i]!.out!) : null,
          chain: items[i]!.out && o.chain ? path.resolve(items[i]!.out!) : null,
        }),
    key: null,
    ignoredExtensions: items[i]!.template.ignoredExtensions,
    ...(items[i]!.out ? {} : { certificate: o.chain ? chainPem(signing, issued[i]!.pem) : issued[i]!.pem }),
  });
  if (args.length === 1 && !o.outDir) {
    const data = one(0);
    const n = items[0]!.name;
    return {
      data,
      stdout: items[0]!.out ? undefined : (data.certificate as string),
      warnings: dupWarnings,
      messages: [
        ...warnings,
        ...(items[0]!.out ? [`Signed ${issued[0]!.subject || issued[0]!.sans.join(", ")} (${profile.name}), serial ${issued[0]!.serial} -> ${items[0]!.out}`] : []),
        ...(n !== undefined ? [`Recorded as "${n}" (${pathsFor(store, n).cert}): \`pki revoke ${n}\` locks it out`] : []),
        ...replacedBy(0).map((s) => `  replaced serial ${s} (revoked as ${REASONS.superseded.openssl}); crl.pem re-signed`),
      ],
    };
  }
  return {
    data: { certificates: issued.map((_, i) => one(i)) },
    warnings: dupWarnings,
    messages: [
      ...warnings,
      `Signed ${issued.length} certificate${issued.length === 1 ? "" : "s"} (${profile.name})${o.outDir ? ` into ${o.outDir}` : ""}${o.nameFromCn ? ", each recorded under its CN" : ""}`,
      ...(plan.supersede.length ? [`  replaced ${plan.supersede.length} certificate(s) (revoked as ${REASONS.superseded.openssl}); crl.pem re-signed`] : []),
    ],
  };
}
