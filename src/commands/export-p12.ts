/**
 * pki export p12 <target>: a PKCS#12 (key, certificate, CA certificate) for
 * an issued name whose key the CA directory holds (private/<name>.key).
 * Needs no CA passphrase: nothing is signed. The password comes from
 * --p12-passphrase-file or a prompt; there is no built-in default, because a
 * default password is no password. The PKCS#12 is built (ca/export-p12.ts)
 * before anything is written, and no store lock is ever held for it.
 */
import * as path from "node:path";
import { readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { P12_FORMATS } from "../cli/program.js";
import { usage } from "../core/errors.js";
import { docWhere } from "../ca/authority.js";
import { buildExportP12, p12Source } from "../ca/export-p12.js";
import { choiceOption } from "./options.js";
import { confineOutput, writeOutputs } from "../store/output.js";

interface Opts {
  out?: string;
  p12PassphraseFile?: string;
  p12Format?: string;
  keyPassphraseFile?: string;
}

/** The PKCS#12 password: from --p12-passphrase-file, else asked (twice) at a terminal. */
async function p12Password(ctx: Context, o: Opts): Promise<string> {
  if (o.p12PassphraseFile) return readSecretFile(o.p12PassphraseFile, secretFileOf("--p12-passphrase-file"));
  if (ctx.interactive) return (await import("../ui/prompt.js")).askNewSecret("PKCS#12 password", 4);
  throw usage("the PKCS#12 file needs a password: pass --p12-passphrase-file FILE (no prompt without a terminal)");
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const format = choiceOption(o.p12Format, "--p12-format", P12_FORMATS) ?? "modern";
  const src = await p12Source(store, args[0]!, ctx.now());
  ctx.auditInfo.target = args[0];
  const { name, t } = src;
  if (t.entry?.status === "R") ctx.warn(`serial ${t.entry.serial} of "${name}" is revoked: the PKCS#12 will be refused by nginx`);

  // the output is confined before the key is read: never a CA file (but this name's own issued/<name>.p12), never a device or FIFO
  const own = [docWhere(store, `issued/${name}.p12`)];
  const out = confineOutput(store, o.out ?? `${name}.p12`, { own, label: "--out" });
  const password = await p12Password(ctx, o);
  const data = await buildExportP12(src, password, format, async () => {
    if (o.keyPassphraseFile) return readSecretFile(o.keyPassphraseFile, secretFileOf("--key-passphrase-file"));
    if (ctx.interactive) return (await import("../ui/prompt.js")).askSecret(`Passphrase of private/${name}.key`);
    throw usage(`private/${name}.key is encrypted: pass --key-passphrase-file FILE`);
  });
  writeOutputs(store, [{ path: out, data, mode: 0o600 }], { own, label: "--out" });
  await store.audit([{ command: "export p12", serial: t.cert.serial, name, format, path: path.resolve(out), outcome: "ok" }]);
  return { data: { path: path.resolve(out), name, serial: t.cert.serial, format }, messages: [`Wrote ${out} (${format}: key, certificate and CA for "${name}", serial ${t.cert.serial})`] };
}
