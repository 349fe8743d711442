/**
 * pki list: the certificates of this CA from index.txt (+ index.meta for
 * profile and name). Reads only; never needs the CA key.
 *
 * --format serial|dn prints one value a line: an allow-list that an
 * application behind nginx can load and compare with the X-Ssl-Client-DN
 * header (the dn form is nginx's $ssl_client_s_dn spelling, see
 * core/dn-format.ts).
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { LIST_FORMATS, LIST_STATUSES } from "../cli/program.js";
import { listCertificates } from "../ca/list.js";
import { choiceOption, intOption } from "./options.js";
import { palette } from "../ui/colors.js";
import { renderTable } from "../ui/table.js";

interface Opts {
  status?: string;
  expiring?: string;
  profile?: string;
  name?: string;
  format?: string;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const wanted = choiceOption(o.status, "--status", LIST_STATUSES) ?? "all";
  const format = choiceOption(o.format, "--format", LIST_FORMATS) ?? "table";
  const expiring = intOption(o.expiring, "--expiring", 0, 36500);
  const { rows, caRevoked } = await listCertificates(store, ctx.now(), { status: wanted, expiring, profile: o.profile, name: o.name });
  if (caRevoked) ctx.warn("the parent CA has revoked this issuing CA (parent-crl.pem): every certificate it issued is refused and listed as revoked");

  const certificates = rows.map(({ serial, subject, name, profile, status, notAfter, revokedAt, reason }) => ({ serial, subject, name, profile, status, notAfter, revokedAt, reason }));
  if (format === "serial" || format === "dn") {
    const lines = rows.map((r) => (format === "serial" ? r.serial : r.dn));
    return { data: { certificates }, stdout: lines.length ? lines.join("\n") + "\n" : "" };
  }
  if (rows.length === 0) return { data: { certificates }, messages: ["No certificates match."] };
  const p = palette(ctx);
  const head = ["SERIAL", "STATUS", "PROFILE", "NAME", "NOT AFTER", "SUBJECT"];
  const cells = rows.map((r) => [r.serial, r.status, r.profile ?? "-", r.name ?? "-", r.notAfter.slice(0, 10), r.subject]);
  return { data: { certificates }, stdout: renderTable(p, head, cells, 1) };
}
