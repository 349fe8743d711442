/**
 * pki issue <profile> <name>: a new key pair and its certificate, in one step.
 * --names-from issues one pair per line in one run: keys are generated on the
 * thread pool, the CA key is decrypted once, the lock is taken once, and the
 * batch is all-or-nothing (any bad name fails the run before anything is
 * written).
 */
import { chainPem, enforceConstraints, p12CaPem } from "../ca/parent.js";
import * as path from "node:path";
import { PkiError, usage } from "../core/errors.js";
import { applySanRules, withCn } from "../core/csr-policy.js";
import { parseSanList, type San } from "../core/names.js";
import { encryptPrivateKey, generateKeyPairEncoded, keyKindOfType, loadPrivateKey, parseKeyType, type KeyType } from "../crypto/keys.js";
import { keyAccess, readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { P12_FORMATS } from "../cli/program.js";
import { issue, issuedJson, openAuthority, openSigningAuthority, profileOf, type IssueRequest } from "../ca/authority.js";
import { confinedPathsFor, defaultOutDir, issuedWrites, pathsFor, refuseTakenNames } from "../ca/issued.js";
import { MAX_INPUT, readInputFile, readStdin } from "../store/ca-dir.js";
import { confineOutDir } from "../store/output.js";
import { checkIssuedName } from "../core/issued-name.js";
import { leafDays } from "../core/profiles.js";
import { choiceOption, intOption } from "./options.js";
import { staleCrlWarning } from "../ca/revocation.js";
import { progressBar, withSpinner, type Progress } from "../ui/progress.js";

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

async function readNames(src: string): Promise<string[]> {
  const data = src === "-" ? await readStdin("the list of names", MAX_INPUT) : readInputFile(src, "names file");
  const names = data
    .toString("utf8")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  if (names.length === 0) throw new PkiError("BAD_INPUT", `${src === "-" ? "standard input" : src} lists no names (one name a line)`);
  const seen = new Set<string>();
  for (const n of names) {
    checkIssuedName(n);
    if (seen.has(n)) throw usage(`the name "${n}" appears twice in ${src}`);
    seen.add(n);
  }
  return names;
}

export async function run(ctx: Context, args: string[], opts: Opts): Promise<Result> {
  const store = await ctx.openStore();
  // a database store keeps the pair and also writes it to the current directory (ca/issued.ts defaultOutDir)
  const o: Opts = { ...opts, outDir: defaultOutDir(store, opts.outDir) };
  const [profileName, single] = args as [string, string | undefined];
  if (single !== undefined && o.namesFrom !== undefined) throw usage("give either a name or --names-from, not both");
  if (single === undefined && o.namesFrom === undefined) throw usage("missing name: pki issue <profile> <name> (or --names-from FILE)");
  if (o.namesFrom !== undefined && (o.cn !== undefined || o.san !== undefined)) throw usage("--cn and --san apply to one name; with --names-from each name is its own CN (and DNS name for server)");
  const days = intOption(o.days, "--days", 1, 36500);
  const keyType: KeyType = parseKeyType(o.keyType ?? "ec-p256");
  const p12Format = choiceOption(o.p12Format, "--p12-format", P12_FORMATS) ?? "modern";
  if (o.p12Format !== undefined && !o.p12) throw usage("--p12-format goes with --p12");
  if (o.outDir) confineOutDir(store, o.outDir);

  ctx.auditInfo.profile = profileName;
  if (single !== undefined) ctx.auditInfo.name = single;
  const names = single !== undefined ? [single] : await readNames(o.namesFrom!);
  if (single === undefined) ctx.auditInfo.names = names.length <= 100 ? names : `${names.length} names from ${o.namesFrom}`;
  for (const n of names) confinedPathsFor(store, n, o.outDir);
  const ca = await openAuthority(store);
  const profile = await profileOf(store, profileName);
  const effDays = leafDays(profile, days, ca.settings.defaultDays);
  const extraSans: San[] = parseSanList(o.san);
  const plans = names.map((name) => {
    const subject = withCn([], o.cn ?? name);
    return { name, subject, sans: applySanRules(profile, subject, extraSans) };
  });
  // names outside the CA's name constraints: refused before any key is made or the CA key opened
  for (const p of plans) enforceConstraints(ca, o.cn ?? p.name, p.sans);

  // secrets before any slow work, so a missing one fails at once
  const keyPass = o.keyPassphraseFile ? readSecretFile(o.keyPassphraseFile, secretFileOf("--key-passphrase-file")) : undefined;
  let p12Pass: string | undefined;
  if (o.p12) {
    if (o.p12PassphraseFile) p12Pass = readSecretFile(o.p12PassphraseFile, secretFileOf("--p12-passphrase-file"));
    else if (ctx.interactive) p12Pass = await (await import("../ui/prompt.js")).askNewSecret("PKCS#12 password", 4);
    else throw usage("--p12 needs a password: pass --p12-passphrase-file FILE (no prompt without a terminal)");
  }

  // key generation runs on the thread pool while the main thread decrypts
  // the CA key (PBKDF2, 600,000 iterations): the two overlap
  // a bar for a batch, counting from the first key (started before the CA key
  // is opened unless a passphrase prompt must come first); a spinner for one
  // slow (RSA-3072/4096) key; neither off a terminal, in --json or --quiet
  const label = "Generating keys";
  let bar: Progress | undefined;
  let done = 0;
  const keygen = plans.map(() =>
    generateKeyPairEncoded(keyType).then((r) => {
      done++;
      bar?.tick();
      return r;
    }),
  );
  keygen.forEach((k) => k.catch(() => {})); // failures are reported by the await below
  const promptFirst = ctx.interactive && ctx.passphraseFromSources() === undefined;
  if (!promptFirst) bar = await progressBar(ctx, label, plans.length, done);
  let signing: Awaited<ReturnType<typeof openSigningAuthority>>;
  try {
    signing = await openSigningAuthority(ca, keyAccess(ctx, o.key));
  } catch (e) {
    bar?.stop();
    throw e;
  }
  bar ??= await progressBar(ctx, label, plans.length, done);
  const slowKeys = keyType === "rsa-3072" || keyType === "rsa-4096";
  let pairs: Awaited<(typeof keygen)[number]>[];
  try {
    pairs = await withSpinner(ctx, `Generating a ${keyType} key`, slowKeys && plans.length === 1, () => Promise.all(keygen));
  } finally {
    bar.stop();
  }
  const keyKind = keyKindOfType(keyType);
  // a KeyObject only where one is needed (encrypting the key, PKCS#12)
  const keyObject = (i: number) => loadPrivateKey(pairs[i]!.pkcs8Pem, "the new key", async () => "");
  const keyPems = keyPass ? await Promise.all(pairs.map(async (_, i) => encryptPrivateKey(await keyObject(i), keyPass))) : pairs.map((k) => k.pkcs8Pem);
  const p12Module = o.p12 ? await import("../crypto/pkcs12.js") : undefined;

  const p12Files: Array<string | null> = plans.map(() => null);
  const reqs: IssueRequest[] = plans.map((p, i) => {
    const paths = pathsFor(store, p.name, o.outDir);
    return {
      profile,
      subject: p.subject,
      sans: p.sans,
      spki: pairs[i]!.spki,
      keyKind,
      days: effDays,
      name: p.name,
      files: async (certPem: string) => {
        let p12: Uint8Array | undefined;
        if (p12Module) {
          p12 = await p12Module.buildPkcs12({ key: await keyObject(i), certPem, caPem: p12CaPem(signing), password: p12Pass!, format: p12Format, friendlyName: p.name });
          p12Files[i] = paths.p12;
        }
        return issuedWrites(store, p.name, o.outDir, { key: keyPems[i]!, cert: certPem, chain: chainPem(signing, certPem), p12 });
      },
    };
  });

  const issued = await issue(signing, reqs, { now: ctx.now, check: (index, tx) => refuseTakenNames(tx, names, index, ctx.now()) });
  await store.audit(issued.map((c) => ({ command: "issue", profile: c.profile, serial: c.serial, subject: c.subject, name: c.name, outcome: "ok" })));

  const one = (i: number): Record<string, unknown> & { name: string; serial: string; notAfter: string; cert: string; key: string; chain: string; p12: string | null } => {
    const paths = pathsFor(store, plans[i]!.name, o.outDir);
    return {
      name: plans[i]!.name,
      ...issuedJson(issued[i]!),
      serial: issued[i]!.serial,
      notAfter: issued[i]!.notAfter.toISOString(),
      cert: path.resolve(paths.cert),
      path: path.resolve(paths.cert),
      certificate: issued[i]!.pem,
      key: path.resolve(paths.key),
      chain: path.resolve(paths.chain),
      p12: p12Files[i] ? path.resolve(p12Files[i]!) : null,
    };
  };
  const warn = issued.some((c) => c.capped) ? [`pki: warning: validity capped at the CA's notAfter (${signing.cert.notAfter.toISOString()}): renew the CA soon`] : [];
  const crlWarning = await staleCrlWarning(signing, ctx.now());
  const warnings = crlWarning ? [crlWarning] : [];
  if (single !== undefined) {
    const d = one(0);
    return {
      data: d,
      warnings,
      messages: [
        ...warn,
        `Issued ${profile.name} certificate for "${d.name}" (serial ${d.serial}, until ${d.notAfter})`,
        `  certificate ${d.cert}`,
        `  chain       ${d.chain}`,
        `  key         ${d.key}${keyPass ? " (encrypted)" : ""}`,
        ...(d.p12 ? [`  PKCS#12     ${d.p12} (${p12Format})`] : []),
      ],
    };
  }
  return { data: { certificates: issued.map((_, i) => one(i)) }, warnings, messages: [...warn, `Issued ${issued.length} ${profile.name} certificates`] };
}
