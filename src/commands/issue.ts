/**
 * pki issue <profile> <name>: a new key pair and its certificate, in one step.
 * --names-from issues one pair per line in one run: keys are generated on the
 * thread pool, the CA key is decrypted once, the lock is taken once, and the
 * batch is all-or-nothing (any bad name fails the run before anything is
 * written). The work is ca/issue-pairs.ts'; this file reads the options and
 * the secrets, and says what was done.
 */
import { usage } from "../core/errors.js";
import { parseKeyType } from "../crypto/keys.js";
import { keyAccess, readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { P12_FORMATS } from "../cli/program.js";
import { issuePairs, type IssuedPairs, type IssuePairsEnv, type IssuePairsRequest } from "../ca/issue-pairs.js";
import { defaultOutDir } from "../ca/issued.js";
import { choiceOption, intOption } from "./options.js";
import { progressBar, withSpinner } from "../ui/progress.js";

interface Opts {
  /** --key: the CA key on a PKCS#11 token (pkcs11: URI) */
  key?: string;
  san?: string;
  cn?: string;
  keyType?: string;
  days?: string;
  outDir?: string;
  keyPassphraseFile?: string;
  namesFrom?: string;
  p12?: boolean;
  p12PassphraseFile?: string;
  p12Format?: string;
}

/** The options, checked and parsed (usage errors before anything is read). */
function request(args: string[], o: Opts, outDir: string | undefined): IssuePairsRequest {
  const [profile, single] = args as [string, string | undefined];
  if (single !== undefined && o.namesFrom !== undefined) throw usage("give either a name or --names-from, not both");
  if (single === undefined && o.namesFrom === undefined) throw usage("missing name: pki issue <profile> <name> (or --names-from FILE)");
  if (o.namesFrom !== undefined && (o.cn !== undefined || o.san !== undefined)) throw usage("--cn and --san apply to one name; with --names-from each name is its own CN (and DNS name for server)");
  const days = intOption(o.days, "--days", 1, 36500);
  const keyType = parseKeyType(o.keyType ?? "ec-p256");
  const p12Format = choiceOption(o.p12Format, "--p12-format", P12_FORMATS) ?? "modern";
  if (o.p12Format !== undefined && !o.p12) throw usage("--p12-format goes with --p12");
  return { profile, name: single, namesFrom: o.namesFrom, cn: o.cn, san: o.san, keyType, days, outDir, p12: o.p12 ? p12Format : undefined };
}

/** The secrets of the new files: the key passphrase, the PKCS#12 password (a file, else a prompt on a terminal). */
async function secrets(ctx: Context, o: Opts): Promise<{ keyPass?: string; p12Pass?: string }> {
  const keyPass = o.keyPassphraseFile ? readSecretFile(o.keyPassphraseFile, secretFileOf("--key-passphrase-file")) : undefined;
  if (!o.p12) return { keyPass };
  if (o.p12PassphraseFile) return { keyPass, p12Pass: readSecretFile(o.p12PassphraseFile, secretFileOf("--p12-passphrase-file")) };
  if (ctx.interactive) return { keyPass, p12Pass: await (await import("../ui/prompt.js")).askNewSecret("PKCS#12 password", 4) };
  throw usage("--p12 needs a password: pass --p12-passphrase-file FILE (no prompt without a terminal)");
}

function environment(ctx: Context, o: Opts): IssuePairsEnv {
  return {
    now: ctx.now,
    key: () => keyAccess(ctx, o.key),
    audit: ctx.auditInfo,
    secrets: () => secrets(ctx, o),
    promptFirst: ctx.interactive && ctx.passphraseFromSources() === undefined,
    bar: (label, total, done) => progressBar(ctx, label, total, done),
    spinner: (label, on, fn) => withSpinner(ctx, label, on, fn),
  };
}

function render(r: IssuedPairs, single: boolean, p12Format: string | undefined): Result {
  const warn = r.cappedAt ? [`pki: warning: validity capped at the CA's notAfter (${r.cappedAt.toISOString()}): renew the CA soon`] : [];
  if (!single) return { data: { certificates: r.certificates }, warnings: r.warnings, messages: [...warn, `Issued ${r.issued.length} ${r.profile.name} certificates`] };
  const d = r.certificates[0]!;
  return {
    data: d,
    warnings: r.warnings,
    messages: [
      ...warn,
      `Issued ${r.profile.name} certificate for "${d.name}" (serial ${d.serial}, until ${d.notAfter})`,
      `  certificate ${d.cert}`,
      `  chain       ${d.chain}`,
      `  key         ${d.key}${r.keysEncrypted ? " (encrypted)" : ""}`,
      ...(d.p12 ? [`  PKCS#12     ${d.p12} (${p12Format})`] : []),
    ],
  };
}

export async function run(ctx: Context, args: string[], opts: Opts): Promise<Result> {
  const store = await ctx.openStore();
  // a database store keeps the pair and also writes it to the current directory (ca/issued.ts defaultOutDir)
  const req = request(args, opts, defaultOutDir(store, opts.outDir));
  const r = await issuePairs(store, req, environment(ctx, opts));
  return render(r, req.name !== undefined, req.p12);
}
