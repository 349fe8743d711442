/**
 * pki store export --to <dir>: write the CA of the current store (--store,
 * PKI_STORE) into a new CA directory (issue #14): ca.crt, private/ca.key
 * (still encrypted), index.txt, index.meta, certs/<SERIAL>.pem, crlnumber,
 * crl.pem, pki.json, issued/, profiles/, audit.log — a directory that pki
 * uses as it is and `openssl ca` reads (-status, -gencrl, -revoke). The
 * store is only read; the directory is made whole or not at all.
 */
import * as path from "node:path";
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { copyAndAudit } from "../ca/store-copy.js";
import { missingInput, usage } from "../core/errors.js";
import { isDatabaseUrl, openStore } from "../store/open.js";
import { refuseOverlap } from "../store/output.js";

interface Opts {
  to?: string;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  if (!o.to) throw missingInput("the directory to write the CA into", "--to <dir>");
  if (isDatabaseUrl(o.to)) throw usage("--to is a directory; to copy a CA directory into a database use `pki store migrate --from <dir> --to <url>`");
  const dest = path.resolve(o.to);
  ctx.auditInfo.to = dest;
  const from = await ctx.openStore();
  if (from.kind === "dir") refuseOverlap(from.location, dest, o.to);
  const r = await copyAndAudit("store export", from, await openStore(dest), ctx.now());
  return {
    data: { ...r },
    messages: [`Wrote the CA of ${r.from} to ${r.to}: ${r.certificates} certificate(s) (${r.revoked} revoked), ${r.documents} document(s), ${r.auditRecords} audit record(s); \`openssl ca\` reads it`],
  };
}
