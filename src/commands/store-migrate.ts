/**
 * pki store migrate --from <dir> --to <postgres://...>: copy a CA directory
 * into an empty PostgreSQL database (issue #14). The directory is only read
 * and stays as it was (keep it as the backup until the database has been
 * used for a while); the database receives every document, record and audit
 * line in one transaction (ca/store-copy.ts), or nothing.
 *
 * A refused copy (the database already holds a CA, the directory is not
 * whole) is audited here, in each of the two stores that holds a CA, not by
 * the command table's `audited` (that writes to --store / PKI_STORE / ./pki,
 * which this command does not use). Usage errors and a failing database are
 * not audited, as everywhere.
 */
import * as path from "node:path";
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { copyAndAudit } from "../ca/store-copy.js";
import { missingInput, PkiError, usage } from "../core/errors.js";
import { isDatabaseUrl, openStore } from "../store/open.js";
import { redactUrl, urlHasPassword } from "../store/db-url.js";
import type { CaStore } from "../store/store.js";

interface Opts {
  from?: string;
  to?: string;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  if (!o.from) throw missingInput("the CA directory to copy", "--from <dir>");
  if (!o.to) throw missingInput("the database to copy it into", "--to <postgres://user@host/db>");
  if (isDatabaseUrl(o.from)) throw usage("--from is a CA directory; to copy a CA out of a database use `pki --store <url> store export --to <dir>`");
  if (!isDatabaseUrl(o.to)) throw usage(`--to must be a PostgreSQL URL (postgres://user@host:port/database), not ${JSON.stringify(o.to)}`);
  if (urlHasPassword(o.to)) throw usage("--to: a password in the URL on the command line is visible to every user of this machine: remove it and use PGPASSWORD, ~/.pgpass or the PKI_STORE environment variable");
  ctx.auditInfo.to = redactUrl(o.to);
  const from = await openStore(path.resolve(o.from));
  try {
    const to = await openStore(o.to);
    const r = await copyAndAudit("store migrate", from, to, ctx.now(), (e) => auditRefusal(e, ctx, [from, to]));
    return {
      data: { ...r },
      messages: [
        `Copied the CA in ${r.from} into ${r.to}: ${r.certificates} certificate(s) (${r.revoked} revoked), ${r.documents} document(s), ${r.auditRecords} audit record(s)`,
        `Use it with --store ${r.to} or PKI_STORE; ${r.from} was left as it was (keep it as a backup, and stop using it for changes)`,
      ],
    };
  } finally {
    await from.close();
  }
}

/** The refusal, in each store that holds a CA (the one copied, the one in the way); never an error of its own. */
async function auditRefusal(e: unknown, ctx: Context, stores: CaStore[]): Promise<void> {
  if (!(e instanceof PkiError) || e.code === "USAGE" || e.code.startsWith("STORE_")) return;
  const rec = { time: ctx.now().toISOString(), command: "store migrate", ...ctx.auditInfo, from: stores[0]!.location, outcome: "refused", error: e.code, message: e.message };
  for (const s of stores) {
    try {
      if (await s.exists()) await s.audit([rec]);
    } catch {
      // the audit log must never turn a refusal into another error
    }
  }
}
