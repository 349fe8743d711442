/**
 * pki sign-csr: turn PKCS#10 requests into certificates of a profile.
 * Batch (several CSRs with --out-dir) is all-or-nothing: every request is
 * checked before the CA key is even decrypted, and the batch is committed in
 * one locked step.
 */
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { templateFromCsr, type IssuanceTemplate } from "../core/csr-policy.js";
import { formatDn, formatSan, parseSanList } from "../core/names.js";
import { describeExtensions } from "../core/parse.js";
import type { Profile } from "../core/profiles.js";
import { caPassphrase, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { checkCsr, type CheckedCsr } from "../ca/csr.js";
import { ensureOutDir, issue, issuedJson, openAuthority, openSigningAuthority, type IssueRequest } from "../ca/authority.js";
import { CaDir, MODE, readInputFile, readStdin } from "../store/ca-dir.js";
import { intOption } from "./options.js";
import { sha256Hex } from "../crypto/keys.js";

interface Opts {
  profile?: string;
  out?: string;
  outDir?: string;
  days?: string;
  cn?: string;
  san?: string;
  chain?: boolean;
  dryRun?: boolean;
}

interface Item {
  source: string;
  checked: CheckedCsr;
  template: IssuanceTemplate;
  out?: string;
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = new CaDir(ctx.dir);
  if (!o.profile) throw usage("--profile is required: code-signing, ssl, server, client, or a custom profile");
  if (args.length > 1 && !o.outDir && !o.dryRun) throw usage("several CSRs need --out-dir DIR (one certificate file per CSR)");
  if (args.length > 1 && o.out) throw usage("--out names one file: with several CSRs use --out-dir");
  if (args.filter((a) => a === "-").length > 1) throw usage("standard input (-) can be read only once");
  const days = intOption(o.days, "--days", 1, 36500);
  const overrideSans = o.san !== undefined ? parseSanList(o.san) : undefined;

  const ca = openAuthority(store);
  let profile: Profile | undefined;
  const items: Item[] = [];
  // audit: the SHA-256 of each CSR as received (what `sha256sum file.csr` prints), on refusal lines and ok lines alike
  const hashes: string[] = [];
  const subjects: string[] = [];
  ctx.auditInfo.profile = o.profile;
  ctx.auditInfo.csrSha256 = args.length === 1 ? undefined : hashes;
  if (args.length !== 1) ctx.auditInfo.subject = subjects;
  {
    profile = store.profile(o.profile);
    if (days !== undefined && profile.maxDays !== undefined && days > profile.maxDays) {
      throw new PkiError("POLICY_DENIED", `profile "${profile.name}" allows at most ${profile.maxDays} days, not ${days}`);
    }
    if (o.outDir) ensureOutDir(o.outDir);
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
      let out = o.out;
      if (o.outDir) {
        const base = a === "-" ? "stdin" : path.basename(a).replace(/\.(csr|req|pem|der)$/i, "");
        if (names.has(base)) throw usage(`two CSRs would both be written to ${base}.crt: rename one`);
        names.add(base);
        out = path.join(o.outDir, `${base}.crt`);
      }
      items.push({ source, checked, template, out });
    }
  }

  const effDays = days ?? profile.days ?? ca.settings.defaultDays ?? 365;

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
          `  ignored    ${p.ignoredExtensions.join(", ") || "(nothing)"}`,
        ].join("\n"),
      )
      .join("\n");
    return { data: { dryRun: true, requests: plans }, stdout: text };
  }

  const signing = await openSigningAuthority(store, () => caPassphrase(ctx));
  const reqs: IssueRequest[] = items.map((it) => ({
    profile: profile!,
    subject: it.template.subject,
    subjectRaw: it.template.subjectRaw,
    sans: it.template.sans,
    spki: it.checked.csr.spki.raw,
    keyKind: it.checked.keyKind,
    days: effDays,
    files: it.out ? (pem) => [{ path: it.out!, data: o.chain ? pem + signing.certPem : pem, mode: MODE.file }] : undefined,
  }));
  const issued = await issue(signing, reqs, { now: ctx.now });
  store.auditMany(issued.map((c, i) => ({ command: "sign-csr", profile: c.profile, serial: c.serial, subject: c.subject, csrSha256: hashes[i], outcome: "ok" })));
  const warnings: string[] = [];
  if (issued.some((c) => c.capped)) warnings.push(`pki: warning: validity capped at the CA's notAfter (${signing.cert.notAfter.toISOString()}): renew the CA soon`);
  const ignoredAll = [...new Set(items.flatMap((i) => i.template.ignoredExtensions))];
  if (ignoredAll.length && !ctx.json) warnings.push(`pki: note: requested extensions ignored (the profile decides): ${ignoredAll.join(", ")}`);

  const one = (i: number) => ({
    ...issuedJson(issued[i]!),
    path: items[i]!.out ? path.resolve(items[i]!.out!) : null,
    ignoredExtensions: items[i]!.template.ignoredExtensions,
    ...(items[i]!.out ? {} : { certificate: o.chain ? issued[i]!.pem + signing.certPem : issued[i]!.pem }),
  });
  if (args.length === 1 && !o.outDir) {
    const data = one(0);
    return {
      data,
      stdout: items[0]!.out ? undefined : (data.certificate as string),
      messages: [...warnings, ...(items[0]!.out ? [`Signed ${issued[0]!.subject || issued[0]!.sans.join(", ")} (${profile.name}), serial ${issued[0]!.serial} -> ${items[0]!.out}`] : [])],
    };
  }
  return {
    data: { certificates: issued.map((_, i) => one(i)) },
    messages: [...warnings, `Signed ${issued.length} certificate${issued.length === 1 ? "" : "s"} (${profile.name}) into ${o.outDir}`],
  };
}
