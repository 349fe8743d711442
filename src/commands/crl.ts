/**
 * pki crl: sign a fresh CRL over the index (v2, crlNumber, AKI, reasonCode
 * per entry). --if-expiring-within makes it a no-op unless the current CRL
 * is close to (or past) its nextUpdate, so cron or a systemd timer can run
 * it daily without churning the CRL number or nginx reloads.
 */
import * as path from "node:path";
import { usage } from "../core/errors.js";
import { keyAccessNow, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { docWhere, openAuthority, openSigningAuthority, type Authority } from "../ca/authority.js";
import { crlFromBytes, crlResignReason, readCurrentCrl, resignCrl } from "../ca/revocation.js";
import { readInputFile, readStdin } from "../store/ca-dir.js";
import { importParentCrl } from "../ca/parent.js";
import { DOC, type CaStore, type StoreReader } from "../store/store.js";
import { confineOutput } from "../store/output.js";
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
  // DER in crl.pem would break nginx's ssl_crl: --der without --out writes crl.der
  if (o.out !== undefined && o.out.trim() === "") throw usage("--out needs a file name");
  // --out is confined (store/output.ts): never a CA state file (crl.pem included: the contract's crl*.pem;
  // the CA's own crl.pem is what plain `pki crl` writes), never a device or FIFO. crl.der is not state: --der's default.
  const crlDer = docWhere(store, "crl.der");
  const crlPath = docWhere(store, DOC.crl);
  const confined = o.out !== undefined ? confineOutput(store, o.out, { own: [crlDer], label: "--out", hint: "plain `pki crl` (no --out) re-signs the CA's crl.pem; otherwise choose a path outside them" }) : undefined;
  // in a database the CA's own crl.pem is a document, never a file of the current directory: --out there is a plain output
  const own = !o.der && (confined === undefined || (store.kind === "dir" && confined === path.resolve(crlPath)));
  const out = confined ?? (store.kind === "dir" || o.der ? path.resolve(o.der ? crlDer : crlPath) : crlPath);
  const ca = await openAuthority(store);
  const effDays = days ?? ca.settings.crlDays;
  if (within !== undefined && within >= effDays) {
    // not an error: a timer that stops re-signing is worse than one that re-signs every run
    ctx.warn(`--if-expiring-within ${within} is not below the CRL validity of ${effDays} days: every run will re-sign`);
  }

  const unchanged = async (reader: StoreReader): Promise<Result | null> => {
    if (within === undefined) return null;
    const cur = own ? await readCurrentCrl(ca, reader) : readOutCrl(ca, out);
    if (crlResignReason(cur, (await reader.indexText()).toString("utf8"), ctx.now(), within) !== null) return null;
    const i = cur!.info;
    return {
      data: {
        path: out,
        crlNumber: Number(i.crlNumber ?? 0n),
        thisUpdate: i.thisUpdate.toISOString(),
        nextUpdate: i.nextUpdate!.toISOString(),
        revoked: i.revoked,
        revokedCount: i.revoked,
        resigned: false,
      },
      messages: [`CRL ${out} is valid until ${i.nextUpdate!.toISOString()} (more than ${within} day(s)): left as it is`],
    };
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
  const done = await resignCrl(ca, signing, { days: effDays, now: ctx.now(), allowShrink: o.allowShrink, out: own ? undefined : { path: out, der: o.der === true } }, unchanged);
  const result = await (async (): Promise<Result> => {
    if (!("dropped" in done)) return done;
    const { crl, dropped } = done;
    await store.audit([{ command: "crl", crlNumber: Number(crl.crlNumber), revoked: crl.revoked, path: out, ...(dropped.length ? { allowShrink: true, dropped } : {}), outcome: "ok" }]);
    if (dropped.length) ctx.warn(`--allow-shrink: the CRL no longer lists ${dropped.length} revoked certificate(s) that have not expired: ${dropped.join(", ")}`);
    const r: Result = {
      data: {
        path: out,
        crlNumber: Number(crl.crlNumber),
        thisUpdate: crl.thisUpdate.toISOString(),
        nextUpdate: crl.nextUpdate.toISOString(),
        revoked: crl.revoked,
        revokedCount: crl.revoked,
        resigned: true,
      },
      messages: [`Wrote ${out}${o.der ? " (DER)" : ""}: CRL number ${crl.crlNumber}, ${crl.revoked} revoked, next update ${crl.nextUpdate.toISOString()}`],
    };
    return r;
  })();
  if (result.data.resigned && own) result.messages!.push("  reload nginx to load it: nginx -s reload");
  return result;
}

/** pki crl --import-parent <file>: install the parent's (root's) fresh CRL; crl-chain.pem follows. */
/** A CRL file the user named (--out), or null when there is none. */
function readOutCrl(ca: Authority, p: string) {
  let bytes: Buffer;
  try {
    bytes = readInputFile(p, "CRL");
  } catch (e) {
    if ((e as { code?: string }).code === "NOT_FOUND") return null;
    throw e;
  }
  return crlFromBytes(ca, bytes, p);
}

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
