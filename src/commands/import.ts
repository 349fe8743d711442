/**
 * pki import easyrsa <dir> | pki import openssl-ca <dir>: both table entries
 * (cli/program.ts) name this module; the entry's name is the source kind.
 * The work is ca/import.ts.
 */
import * as path from "node:path";
import { clearKeyRefused } from "../store/db-url.js";
import { readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import type { CommandSpec } from "../cli/program.js";
import { PkiError, missingInput, usage } from "../core/errors.js";
import { importCa, type SourceKind } from "../ca/import.js";
import { intOption } from "./options.js";

interface Opts {
  sourcePassphraseFile?: string;
  skipBroken?: boolean;
  dryRun?: boolean;
  keys?: boolean;
  passphrase?: boolean;
  crlDays?: string;
}

export async function run(ctx: Context, args: string[], o: Opts, spec: Pick<CommandSpec, "name">): Promise<Result> {
  const kind = spec.name as SourceKind;
  const source = args[0];
  if (!source) throw usage(`missing source directory: pki import ${kind} <dir>`);
  const crlDays = intOption(o.crlDays, "--crl-days", 1, 3650) ?? 7;
  const prompt = ctx.interactive ? await import("../ui/prompt.js") : undefined;
  const src = path.resolve(source);
  if (src === ctx.dir) throw usage("the source and the target (--dir) are the same directory: pki import leaves the source as it is and creates a new CA directory");
  ctx.auditInfo.source = src;
  const store = await ctx.openStore();
  if (store.kind === "postgres" && o.passphrase === false) throw clearKeyRefused(store.location);
  const r = await importCa({
    kind,
    source: src,
    store,
    skipBroken: o.skipBroken === true,
    dryRun: o.dryRun === true,
    copyKeys: o.keys !== false,
    crlDays,
    now: ctx.now(),
    sourcePassphrase: async () => {
      if (o.sourcePassphraseFile) return readSecretFile(o.sourcePassphraseFile, secretFileOf("--source-passphrase-file"));
      if (prompt) return prompt.askSecret(`Passphrase of the source CA key (${source})`);
      throw missingInput("the passphrase of the source CA key", "--source-passphrase-file FILE");
    },
    newPassphrase: async () => {
      if (o.passphrase === false) {
        ctx.warn("the CA key is stored UNENCRYPTED (--no-passphrase): anyone who can read private/ca.key can issue certificates in this CA's name");
        return null;
      }
      let pass = ctx.passphraseFromSources();
      if (pass === undefined && prompt) pass = await prompt.askNewSecret("New CA key passphrase");
      if (pass === undefined) throw missingInput("a new passphrase for the CA key", "--passphrase-file FILE (or PKI_PASSPHRASE_FILE; or --no-passphrase to store it unencrypted)");
      if (pass.length < 8) throw new PkiError("BAD_INPUT", "the CA key passphrase is shorter than 8 characters: choose a longer one");
      return pass;
    },
    // problems and skips are printed even with --quiet: they are why the import failed or what it left out
    report: (line) => (line.startsWith("note: ") ? ctx.info(line) : ctx.stderr.write(line + "\n")),
  });
  if (!r.dryRun) {
    await (await ctx.openStore()).audit([{ command: `import ${kind}`, source: src, subject: r.subject, certificates: r.certificates, revoked: r.revoked, names: r.names.length, crlNumber: r.crlNumber, skipped: r.skipped.length, outcome: "ok" }]);
  }
  const what = `${r.certificates} certificate(s), ${r.revoked} revoked, ${r.names.length} issued name(s)${kind === "easyrsa" ? `, ${r.keys} key(s)` : ""}`;
  return {
    data: { dir: ctx.dir, certificates: r.certificates, revoked: r.revoked, names: r.names, crlNumber: r.crlNumber, dryRun: r.dryRun, keys: r.keys, skipped: r.skipped, notes: r.notes },
    messages: r.dryRun
      ? [`Dry run: would import the CA "${r.subject}" from ${src} into ${ctx.dir}:`, `  ${what}; first CRL number ${r.crlNumber}`, "Nothing was written."]
      : [
          `Imported the CA "${r.subject}" from ${src} into ${ctx.dir}:`,
          `  ${what}; CRL ${path.join(ctx.dir, "crl.pem")} signed (number ${r.crlNumber}, ${r.revoked} revoked)`,
          `The source directory was not changed. Point nginx's ssl_crl at the new crl.pem, then: pki list`,
        ],
  };
}
