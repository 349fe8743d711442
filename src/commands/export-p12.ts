/**
 * pki export p12 <target>: a PKCS#12 (key, certificate, CA certificate) for
 * an issued name whose key the CA directory holds (private/<name>.key).
 * Needs no CA passphrase: nothing is signed. The password comes from
 * --p12-passphrase-file or a prompt; there is no built-in default, because a
 * default password is no password.
 */
import { p12CaPem } from "../ca/parent.js";
import * as path from "node:path";
import { readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { P12_FORMATS } from "../cli/program.js";
import { PkiError, usage } from "../core/errors.js";
import { keyMatches, loadPrivateKey } from "../crypto/keys.js";
import { buildPkcs12 } from "../crypto/pkcs12.js";
import { docWhere, openAuthority } from "../ca/authority.js";
import { DOC } from "../store/store.js";
import { choiceOption } from "./options.js";
import { confineOutput, writeOutputs } from "../store/output.js";
import { resolveCertificate } from "../ca/target.js";

interface Opts {
  out?: string;
  p12PassphraseFile?: string;
  p12Format?: string;
  keyPassphraseFile?: string;
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const format = choiceOption(o.p12Format, "--p12-format", P12_FORMATS) ?? "modern";
  const ca = await openAuthority(store);
  const t = await resolveCertificate(store, args[0]!, ctx.now(), { recordedOnly: true });
  ctx.auditInfo.target = args[0];
  const name = t.meta?.name;
  if (!name) throw new PkiError("NOT_FOUND", `${args[0]} is not a name issued with \`pki issue\`: pki holds no key for it (the holder of a CSR keeps the key and makes the PKCS#12 with \`openssl pkcs12 -export\`)`);
  const keyPath = docWhere(store, DOC.issuedKey(name));
  const keyPem = await store.read(DOC.issuedKey(name)); // a key readable by others is refused (KEY_MODE)
  if (keyPem === null) throw new PkiError("NOT_FOUND", `the key of "${name}" is not in ${path.dirname(keyPath)} (was it issued with --out-dir?)`);
  if (t.entry?.status === "R") ctx.warn(`serial ${t.entry.serial} of "${name}" is revoked: the PKCS#12 will be refused by nginx`);

  // the output is confined before the key is read: never a CA file (but this name's own issued/<name>.p12), never a device or FIFO
  const out = confineOutput(store, o.out ?? `${name}.p12`, { own: [docWhere(store, `issued/${name}.p12`)], label: "--out" });

  let password: string;
  if (o.p12PassphraseFile) password = readSecretFile(o.p12PassphraseFile, secretFileOf("--p12-passphrase-file"));
  else if (ctx.interactive) password = await (await import("../ui/prompt.js")).askNewSecret("PKCS#12 password", 4);
  else throw usage("the PKCS#12 file needs a password: pass --p12-passphrase-file FILE (no prompt without a terminal)");

  const key = await loadPrivateKey(keyPem.toString("utf8"), `private/${name}.key`, async () => {
    if (o.keyPassphraseFile) return readSecretFile(o.keyPassphraseFile, secretFileOf("--key-passphrase-file"));
    if (ctx.interactive) return (await import("../ui/prompt.js")).askSecret(`Passphrase of private/${name}.key`);
    throw usage(`private/${name}.key is encrypted: pass --key-passphrase-file FILE`);
  });
  if (!keyMatches(key, t.cert.spki.raw)) {
    throw new PkiError("CA_INVALID", `private/${name}.key does not belong to serial ${t.cert.serial}; run \`pki doctor\``);
  }
  const data = await buildPkcs12({ key, certPem: t.pem, caPem: p12CaPem(ca), password, format, friendlyName: name });
  writeOutputs(store, [{ path: out, data, mode: 0o600 }], { own: [docWhere(store, `issued/${name}.p12`)], label: "--out" });
  await store.audit([{ command: "export p12", serial: t.cert.serial, name, format, path: path.resolve(out), outcome: "ok" }]);
  return { data: { path: path.resolve(out), name, serial: t.cert.serial, format }, messages: [`Wrote ${out} (${format}: key, certificate and CA for "${name}", serial ${t.cert.serial})`] };
}
