/**
 * pki sign-csr: turn PKCS#10 requests into certificates of a profile.
 * Batch (several CSRs with --out-dir) is all-or-nothing: every request is
 * checked before the CA key is even decrypted, and the batch is committed in
 * one locked step (ca/sign-csr.ts).
 */
import { usage } from "../core/errors.js";
import { parseSanList } from "../core/names.js";
import { REASONS } from "../core/index-format.js";
import { keyAccessNow, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { signCsrs, type DryRunPlan, type SignCsrRequest, type SignedCsrs } from "../ca/sign-csr.js";
import { confinedPathsFor } from "../ca/issued.js";
import { intOption } from "./options.js";

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

/** The usage rules of the options, before anything is read. */
function checkOptions(args: string[], o: Opts): void {
  if (!o.profile) throw usage("--profile is required: code-signing, ssl, server, client, or a custom profile");
  if (args.length > 1 && !o.outDir && !o.dryRun && !o.nameFromCn) throw usage("several CSRs need --out-dir DIR (one certificate file per CSR) or --name-from-cn (issued/<CN>.crt)");
  if (args.length > 1 && o.out) throw usage("--out names one file: with several CSRs use --out-dir");
  if (args.filter((a) => a === "-").length > 1) throw usage("standard input (-) can be read only once");
  if (o.name !== undefined && o.nameFromCn) throw usage("give either --name or --name-from-cn, not both");
  if (o.name !== undefined && args.length > 1) throw usage("--name names one certificate: with several CSRs use --name-from-cn");
  if (o.replace && o.name === undefined && !o.nameFromCn) throw usage("--replace goes with --name NAME (or --name-from-cn): it supersedes that name's certificate");
}

function dryRunText(plans: readonly DryRunPlan[]): string {
  return plans
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
}

/** One CSR without --out-dir: the certificate's fields, its PEM on stdout unless --out wrote it. */
function renderOne(s: SignedCsrs, notes: string[]): Result {
  const data = s.certificates[0]!;
  const it = s.items[0]!;
  const c = s.issued[0]!;
  const n = it.name;
  return {
    data,
    stdout: it.out ? undefined : (data.certificate as string),
    warnings: s.warnings,
    messages: [
      ...notes,
      ...(it.out ? [`Signed ${c.subject || c.sans.join(", ")} (${s.profile.name}), serial ${c.serial} -> ${it.out}`] : []),
      ...(n !== undefined ? [`Recorded as "${n}" ${s.recordedAt(n)}: \`pki revoke ${n}\` locks it out`] : []),
      ...s.replaced[0]!.map((serial) => `  replaced serial ${serial} (revoked as ${REASONS.superseded.openssl}); crl.pem re-signed`),
    ],
  };
}

function renderBatch(s: SignedCsrs, o: Opts, notes: string[]): Result {
  const n = s.issued.length;
  return {
    data: { certificates: s.certificates },
    warnings: s.warnings,
    messages: [
      ...notes,
      `Signed ${n} certificate${n === 1 ? "" : "s"} (${s.profile.name})${o.outDir ? ` into ${o.outDir}` : ""}${o.nameFromCn ? ", each recorded under its CN" : ""}`,
      ...(s.superseded ? [`  replaced ${s.superseded} certificate(s) (revoked as ${REASONS.superseded.openssl}); crl.pem re-signed`] : []),
    ],
  };
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  checkOptions(args, o);
  if (o.name !== undefined) confinedPathsFor(store, o.name); // the name rules of `pki issue`, and its files regular or new
  const req: SignCsrRequest = {
    csrs: args,
    profile: o.profile!,
    out: o.out,
    outDir: o.outDir,
    days: intOption(o.days, "--days", 1, 36500),
    cn: o.cn,
    sans: o.san !== undefined ? parseSanList(o.san) : undefined,
    chain: !!o.chain,
    dryRun: !!o.dryRun,
    name: o.name,
    nameFromCn: !!o.nameFromCn,
    replace: !!o.replace,
  };
  const s = await signCsrs(store, req, { now: ctx.now, key: (ca) => keyAccessNow(ctx, ca, o.key), audit: ctx.auditInfo });
  if ("dryRun" in s) return { data: { dryRun: true, requests: s.dryRun }, stdout: dryRunText(s.dryRun) };
  const notes = s.ignored.length && !ctx.json ? [`pki: note: requested extensions ignored (the profile decides): ${s.ignored.join(", ")}`] : [];
  return args.length === 1 && !o.outDir ? renderOne(s, notes) : renderBatch(s, o, notes);
}
