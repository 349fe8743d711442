/**
 * pki status: everything that expires, in one table (or JSON), for the admin
 * on call and for a monitoring timer. Reads only; never needs the CA key.
 *
 * - the CA certificate (and `parent.crt` in an issuing CA);
 * - the CRL's nextUpdate (and `parent-crl.pem`'s): once it passes, nginx
 *   refuses every client, so it is the date that matters most;
 * - the OCSP responder certificate (the issued name `ocsp-responder`);
 * - every certificate of the index, with its status.
 *
 * --fail-within <days> makes it a check: exit 1 (EXPIRING) when a CA or CRL,
 * or a valid certificate, expires within that many days (or a CA or CRL
 * already has). --metrics <file> writes the same as a Prometheus textfile,
 * atomically (a temporary file renamed over it: node_exporter never reads
 * half a file; it ignores the dot-named temporary).
 *
 * What is gathered is ca/status.ts; what is due, core/status.ts.
 */
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { assess, renderMetrics, type StatusItem } from "../core/status.js";
import { noCa } from "../ca/authority.js";
import { parentCrlAdvice } from "../ca/parent.js";
import { gather } from "../ca/status.js";
import { confineOutput, writeOutputs } from "../store/output.js";
import type { CaStore } from "../store/store.js";
import { intOption } from "./options.js";
import { isoTime } from "../core/index-format.js";
import { palette } from "../ui/colors.js";
import { renderTable } from "../ui/table.js";

interface Opts {
  failWithin?: string;
  metrics?: string;
}

/** --metrics is an output the user names: confined like every other (store/output.ts). */
function checkMetricsPath(store: CaStore, p: string): string {
  return confineOutput(store, p, { label: "--metrics" });
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const within = intOption(o.failWithin, "--fail-within", 0, 36500);
  if (!(await store.exists())) throw noCa(store);
  const metricsPath = o.metrics === undefined ? undefined : checkMetricsPath(store, o.metrics);
  const now = ctx.now();
  const report = assess(await gather(store, now), now, within);
  if (metricsPath) writeOutputs(store, [{ path: metricsPath, data: renderMetrics(report, store.location, now), mode: 0o644 }], { label: "--metrics" });

  const items = report.items.map((i) => ({
    kind: i.kind,
    name: i.name,
    serial: i.serial,
    subject: i.subject,
    profile: i.profile,
    status: i.status,
    ...(i.kind === "crl" ? { crlNumber: i.crlNumber ?? null } : {}),
    notAfter: isoTime(i.notAfter),
    daysLeft: i.daysLeft,
    due: i.due,
  }));
  const data = { items, counts: report.counts, failWithin: within ?? null, metrics: metricsPath ?? null };

  const p = palette(ctx);
  const head = ["KIND", "STATUS", "NOT AFTER", "DAYS", "NAME", "SERIAL", "SUBJECT"];
  const cells = items.map((i) => [i.kind, i.status, i.notAfter.slice(0, 16).replace("T", " "), String(i.daysLeft), i.name ?? "-", i.serial ?? (i.kind === "crl" && i.crlNumber != null ? `number ${i.crlNumber}` : "-"), i.subject ?? "-"]);
  const table = renderTable(p, head, cells, 1, (n) => (items[n]!.due ? p.warn("<- due") : undefined));
  const messages = metricsPath ? [`Wrote ${metricsPath}`] : [];
  if (report.due.length) {
    const label = (i: StatusItem) => (i.kind === "crl" ? `${i.name}.pem` : i.kind === "ca" ? `${i.name === "ca" ? "CA" : "parent CA"} certificate` : `${i.kind} ${i.name ?? i.serial}`);
    const what = report.due.map((i) => `${label(i)} (${i.notAfter.toISOString().slice(0, 10)})`).join(", ");
    // only the commands that renew what is due
    const advice = [
      ...(report.due.some((i) => i.kind === "certificate" || i.kind === "responder") ? [`\`pki renew --due ${within}\``] : []),
      ...(report.due.some((i) => i.name === "crl") ? ["`pki crl` (and check pki-crl.timer)"] : []),
      ...(report.due.some((i) => i.kind === "ca") ? ["a successor CA (`pki init` in a new directory; clients move over as they renew)"] : []),
    ];
    return {
      data,
      stdout: table,
      messages,
      failure: {
        code: "EXPIRING",
        message: `${report.due.length} item(s) expire within ${within} day(s): ${what}${advice.length ? `; renew with ${advice.join(", ")}` : ""}${report.due.some((i) => i.name === "parent-crl") ? `; for the parent's CRL, ${parentCrlAdvice(store)}` : ""}`,
      },
    };
  }
  return { data, stdout: table, messages };
}
