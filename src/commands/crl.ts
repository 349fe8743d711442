/**
 * pki crl: sign a fresh CRL over the index (v2, crlNumber, AKI, reasonCode
 * per entry). --if-expiring-within makes it a no-op unless the current CRL
 * is close to (or past) its nextUpdate, so cron or a systemd timer can run
 * it daily without churning the CRL number or nginx reloads.
 */
import { usage } from "../core/errors.js";
import type { CrlInfo } from "../core/crl.js";
import { keyAccessNow, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { docWhere, openAuthority, openSigningAuthority } from "../ca/authority.js";
import { crlTarget, crlThatMayStay, type CrlTarget } from "../ca/crl-publish.js";
import { resignCrl } from "../ca/revocation.js";
import { readInputFile, readStdin } from "../store/ca-dir.js";
import { importParentCrl } from "../ca/parent.js";
import { DOC, type CaStore, type StoreReader } from "../store/store.js";
import { intOption } from "./options.js";

interface Opts {
  out?: string;
  der?: boolean;
  days?: string;
  ifExpiringWithin?: string;
  importParent?: string;
  key?: string;
  allowShrink?: boolean;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (o.importParent !== undefined) return importParent(ctx, store, o);
  const days = intOption(o.days, "--days", 1, 3650);
  const within = intOption(o.ifExpiringWithin, "--if-expiring-within", 0, 3650);
  const target = crlTarget(store, o.out, o.der === true);
  const ca = await openAuthority(store);
  const effDays = days ?? ca.settings.crlDays;
  if (within !== undefined && within >= effDays) {
    // not an error: a timer that stops re-signing is worse than one that re-signs every run
    ctx.warn(`--if-expiring-within ${within} is not below the CRL validity of ${effDays} days: every run will re-sign`);
  }
  const unchanged = async (reader: StoreReader): Promise<Result | null> => {
    const cur = await crlThatMayStay(ca, reader, target, ctx.now(), within);
    return cur ? leftAsIs(target, cur.info, within!) : null;
  };
  // the common daily case needs neither the key nor the lock
  const early = await unchanged(store);
  if (early) return early;

  // the passphrase first (a prompt must not run under the lock), then the key
  // decrypts on the thread pool while the CRL is built from the index
  const access = await keyAccessNow(ctx, ca, o.key);
  const signing = openSigningAuthority(ca, access);
  signing.catch(() => {}); // handled where it is awaited
  // never un-revoke silently: dropping a live revocation of crl.pem needs --allow-shrink, and is audited
  const done = await resignCrl(ca, signing, { days: effDays, now: ctx.now(), allowShrink: o.allowShrink, out: target.own ? undefined : { path: target.path, der: target.der } }, unchanged);
  if (!("dropped" in done)) return done;
  const { crl, dropped } = done;
  await store.audit([{ command: "crl", crlNumber: Number(crl.crlNumber), revoked: crl.revoked, path: target.path, ...(dropped.length ? { allowShrink: true, dropped } : {}), outcome: "ok" }]);
  if (dropped.length) ctx.warn(`--allow-shrink: the CRL no longer lists ${dropped.length} revoked certificate(s) that have not expired: ${dropped.join(", ")}`);
  const messages = [`Wrote ${target.path}${target.der ? " (DER)" : ""}: CRL number ${crl.crlNumber}, ${crl.revoked} revoked, next update ${crl.nextUpdate.toISOString()}`];
  if (target.own) messages.push(store.kind === "postgres" ? "  nginx reads a file: on each nginx host run `pki crl --out <file>` and reload nginx" : "  reload nginx to load it: nginx -s reload");
  return { data: crlData(target.path, crl, true), messages };
}

/** The fields of a CRL in pki crl's result. */
function crlData(p: string, c: { crlNumber?: bigint; thisUpdate: Date; nextUpdate?: Date; revoked: number }, resigned: boolean): Result["data"] {
  return { path: p, crlNumber: Number(c.crlNumber ?? 0n), thisUpdate: c.thisUpdate.toISOString(), nextUpdate: c.nextUpdate!.toISOString(), revoked: c.revoked, revokedCount: c.revoked, resigned };
}

/** --if-expiring-within and the CRL is far from its nextUpdate: nothing signed, nothing written. */
function leftAsIs(target: CrlTarget, info: CrlInfo, within: number): Result {
  return { data: crlData(target.path, info, false), messages: [`CRL ${target.path} is valid until ${info.nextUpdate!.toISOString()} (more than ${within} day(s)): left as it is`] };
}

/** pki crl --import-parent <file>: install the parent's (root's) fresh CRL; crl-chain.pem follows. */
async function importParent(ctx: Context, store: CaStore, o: Opts): Promise<Result> {
  if (o.out !== undefined || o.der || o.days !== undefined || o.ifExpiringWithin !== undefined) {
    throw usage("--import-parent installs the parent's CRL as it is: --out, --der, --days and --if-expiring-within do not apply");
  }
  const ca = await openAuthority(store);
  ctx.auditInfo.source = o.importParent;
  const bytes = o.importParent === "-" ? await readStdin("the parent CRL") : readInputFile(o.importParent!, "parent CRL");
  const r = await importParentCrl(ca, bytes, o.importParent === "-" ? "standard input" : o.importParent!, ctx.now());
  if (r.imported) await store.audit([{ command: "crl --import-parent", crlNumber: r.crlNumber, revoked: r.revoked, path: r.path, outcome: "ok" }]);
  const messages = [
    r.imported
      ? `Installed the parent CRL (number ${r.crlNumber ?? "none"}, ${r.revoked} revoked, next update ${r.nextUpdate?.toISOString() ?? "none"}) in ${r.path}; ${docWhere(store, DOC.crlChain)} updated`
      : `${r.path} already holds this CRL (number ${r.crlNumber ?? "none"}): nothing changed`,
  ];
  if (r.selfRevoked) messages.push(`pki: warning: the parent has REVOKED this CA (serial ${ca.cert.serial}): nginx refuses every certificate it issued once it reloads`);
  if (r.imported) messages.push("  reload nginx to load it: nginx -s reload");
  return {
    data: {
      path: r.path,
      crlNumber: r.crlNumber,
      thisUpdate: r.thisUpdate.toISOString(),
      nextUpdate: r.nextUpdate?.toISOString() ?? null,
      revoked: r.revoked,
      imported: r.imported,
      caRevoked: r.selfRevoked,
      crlChain: docWhere(store, DOC.crlChain),
    },
    messages,
  };
}
