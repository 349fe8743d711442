/**
 * pki renew <target>: a new certificate for the same subject, names and
 * profile (from the old certificate and index.meta); the rules are in
 * ca/renew.ts.
 *
 * - --rekey makes a new key of the same type (issued names only); without
 *   it the old certificate's public key is certified again.
 * - The old certificate is revoked as "superseded" in the same commit and
 *   the CRL re-signed; --keep-old leaves it valid (to overlap during a
 *   rollout; revoke it later).
 * - A revoked certificate is renewed only with --rekey.
 * - --due <days>: every issued name expiring within that many days.
 */
import * as path from "node:path";
import { keyAccess, readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { usage } from "../core/errors.js";
import { formatDn } from "../core/names.js";
import { generateKeyPair, type KeyPair } from "../crypto/keys.js";
import { docWhere, issuedJson, noCa, openSigningAuthority, type SigningAuthority } from "../ca/authority.js";
import { commitRenewal, dueNames, oldKeyEncrypted, openRenewal, planRenewal, rekeyType, type RenewPlan, type Renewed } from "../ca/renew.js";
import type { CaStore } from "../store/store.js";
import { intOption } from "./options.js";
import { withSpinner } from "../ui/progress.js";

interface Opts {
  /** --key: the CA key on a PKCS#11 token (pkcs11: URI) */
  key?: string;
  rekey?: boolean;
  keepOld?: boolean;
  days?: string;
  keyPassphraseFile?: string;
  due?: string;
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (o.due === undefined) {
    if (args[0] === undefined) throw usage("give the certificate to renew (serial, file or issued name), or --due <days> to renew every issued name expiring within that many days");
    let signing: Promise<SigningAuthority> | undefined;
    return renewOne(ctx, store, args[0], o, () => (signing ??= openSigningAuthority(store, keyAccess(ctx, o.key))));
  }
  if (args[0] !== undefined) throw usage("--due renews every issued name that is due: give no target with it");
  if (o.rekey || o.keyPassphraseFile) throw usage("--due renews with the same keys: --rekey goes with one target");
  const within = intOption(o.due, "--due", 0, 36500)!;
  if (!(await store.exists())) throw noCa(store);
  const names = await dueNames(store, ctx.now(), within);
  let signing: Promise<SigningAuthority> | undefined;
  const renewed: Record<string, unknown>[] = [];
  const messages: string[] = [];
  for (const name of names) {
    const r = await renewOne(ctx, store, name, o, () => (signing ??= openSigningAuthority(store, keyAccess(ctx, o.key))));
    renewed.push(r.data);
    messages.push(...(r.messages ?? []));
  }
  if (!names.length) messages.push(`Nothing is due: no issued name expires within ${within} day(s)`);
  else messages.push(`Renewed ${names.length} certificate(s); reload the services that use them`);
  return { data: { renewed, due: within }, messages };
}

async function renewOne(ctx: Context, store: CaStore, target: string, o: Opts, openSigning: () => Promise<SigningAuthority>): Promise<Result> {
  const days = intOption(o.days, "--days", 1, 36500);
  if (o.keyPassphraseFile && !o.rekey) throw usage("--key-passphrase-file goes with --rekey (without it the key is not touched)");
  const now = ctx.now();
  const { ca, old } = await openRenewal(store, target, now);
  ctx.auditInfo.target = target;
  const plan = await planRenewal(store, ca, old, target, { rekey: !!o.rekey, keepOld: !!o.keepOld, days });
  // the key: the old SPKI, or a new pair of the same type
  let keyPass: string | undefined;
  if (o.rekey) {
    if (o.keyPassphraseFile) keyPass = readSecretFile(o.keyPassphraseFile, secretFileOf("--key-passphrase-file"));
    else if (oldKeyEncrypted(plan)) throw usage(`the current key of "${plan.name}" is encrypted: pass --key-passphrase-file FILE to encrypt the new one too`);
  }
  const signing = await openSigning();
  let pair: KeyPair | undefined;
  if (o.rekey) {
    const kt = rekeyType(plan);
    pair = await withSpinner(ctx, `Generating a new ${kt} key`, kt === "rsa-3072" || kt === "rsa-4096", () => generateKeyPair(kt));
  }
  return renewResult(store, plan, await commitRenewal(store, signing, plan, ctx.now, now, { pair, keyPass }));
}

/** The result of one renewal: JSON fields and the lines for the admin. */
function renewResult(store: CaStore, plan: RenewPlan, r: Renewed): Result {
  const { c, keyPem } = r;
  const { old, paths, name } = plan;
  const messages = [
    `Renewed ${formatDn(old.cert.subject)} (${plan.profile.name}): serial ${c.serial}, until ${c.notAfter.toISOString()}${plan.rekey ? ", new key" : ", same key"}`,
    plan.revoke.length ? `  old serial ${old.entry.serial} revoked (superseded); crl.pem re-signed` : `  old serial ${old.entry.serial} left ${plan.wasRevoked ? "revoked" : "valid (--keep-old)"}`,
  ];
  // in a database the issued files are rows, not files of this host: say where they are, name no path
  const inDb = store.kind === "postgres";
  if (paths && inDb) messages.push(`  kept in ${store.location} as ${paths.cert}${keyPem ? " with its new key" : ""}: \`pki export p12 ${name}\` packs it for its holder on any host`);
  else if (paths) messages.push(`  certificate ${paths.cert}`, `  chain       ${paths.chain}`, ...(keyPem ? [`  key         ${paths.key}`] : []));
  if (r.staleP12 && !inDb) messages.push(`pki: note: ${paths!.p12} still holds the old certificate: run \`pki export p12 ${name}\``);
  if (!paths) messages.push("Hand the new certificate to its holder: `pki show " + c.serial + "`" + (inDb ? "" : ", or certs/" + c.serial + ".pem"));
  const certPath = inDb ? null : paths ? path.resolve(paths.cert) : path.resolve(docWhere(store, `certs/${c.serial}.pem`));
  return {
    data: {
      ...issuedJson(c),
      serial: c.serial,
      previousSerial: old.entry.serial,
      notAfter: c.notAfter.toISOString(),
      name: name ?? null,
      revokedPrevious: plan.revoke.length > 0,
      cert: certPath,
      path: certPath,
      certificate: c.pem,
      key: paths && keyPem && !inDb ? path.resolve(paths.key) : null,
      chain: paths && !inDb ? path.resolve(paths.chain) : null,
    },
    messages,
  };
}
