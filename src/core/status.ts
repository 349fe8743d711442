/**
 * What expires, and when: the pure half of `pki status`. The command gathers
 * the dates (CA certificates, CRLs, index); this module decides what is due
 * and renders the Prometheus text format (node_exporter's textfile
 * collector: https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
import type { IndexEntry } from "./index-format.js";

export type ItemKind = "ca" | "crl" | "responder" | "certificate";
export type ItemStatus = "valid" | "revoked" | "expired";

/**
 * The status of a certificate's index line at `now` (list, show, status):
 * "expired" once past notAfter while still V in the index, or marked E
 * (openssl ca -updatedb).
 */
export function statusOf(e: IndexEntry, now: Date): ItemStatus {
  if (e.status === "R") return "revoked";
  if (e.status === "E" || e.expires.getTime() <= now.getTime()) return "expired";
  return "valid";
}

export interface StatusItem {
  kind: ItemKind;
  /** "ca", "parent", "crl", "parent-crl", or an issued name (null for a certificate without one) */
  name: string | null;
  serial: string | null;
  subject: string | null;
  profile: string | null;
  status: ItemStatus;
  /** a CRL's number */
  crlNumber?: number;
  /** notAfter of a certificate, nextUpdate of a CRL */
  notAfter: Date;
  /**
   * Days before notAfter from which this item is due, whatever the window
   * (the window still applies when it is shorter). This CA's own CRL has one:
   * it lives 7 days by default and pki-crl.timer re-signs it 2 days ahead, so
   * a 14-day window would call every healthy CRL due; it is due once the
   * timer has evidently not run (see crlMarginDays).
   */
  marginDays?: number;
}

export interface StatusReport {
  items: Array<StatusItem & { daysLeft: number; due: boolean }>;
  counts: Record<ItemStatus, number>;
  /** the items that make --fail-within fail */
  due: StatusItem[];
}

const DAY = 86_400_000;

/**
 * An item is due when it is still in use (a CA, a CRL, a valid certificate)
 * and its date falls within `withinDays` (or has passed, for a CA or CRL: an
 * expired CRL makes nginx refuse every client). Expired and revoked
 * certificates are history, never due.
 */
export function assess(items: readonly StatusItem[], now: Date, withinDays: number | undefined): StatusReport {
  const horizon = withinDays === undefined ? undefined : now.getTime() + withinDays * DAY;
  const counts: Record<ItemStatus, number> = { valid: 0, revoked: 0, expired: 0 };
  const out = items.map((i) => {
    if (i.kind === "certificate" || i.kind === "responder") counts[i.status]++;
    const inUse = i.kind === "ca" || i.kind === "crl" || i.status === "valid";
    const limit = horizon === undefined ? undefined : i.marginDays === undefined ? horizon : Math.min(horizon, now.getTime() + i.marginDays * DAY);
    const due = limit !== undefined && inUse && i.notAfter.getTime() <= limit;
    return { ...i, daysLeft: Math.floor((i.notAfter.getTime() - now.getTime()) / DAY), due };
  });
  out.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
  return { items: out, counts, due: out.filter((i) => i.due) };
}

/**
 * When this CA's own CRL counts as due: a quarter of its lifetime before its
 * nextUpdate, at most one day (pki-crl.timer re-signs at two days left, so a
 * CRL this close means the timer has not run; nginx refuses every client
 * once it passes).
 */
export function crlMarginDays(thisUpdate: Date, nextUpdate: Date): number {
  return Math.min(1, (nextUpdate.getTime() - thisUpdate.getTime()) / DAY / 4);
}

/** A label value in the text format: backslash, double quote and line feed escaped. */
export function promLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function series(name: string, labels: Record<string, string>, value: number): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${promLabel(v)}"`)
    .join(",");
  return `${name}{${l}} ${value}`;
}

/**
 * The report as a Prometheus textfile. Times are Unix seconds, as
 * node_exporter's own *_seconds metrics; alert on e.g.
 * `pki_crl_next_update_seconds - time() < 2 * 86400`. Every series carries
 * `dir` (the CA directory) so that the files of several CAs can sit side by
 * side in one textfile directory. Only valid certificates get a
 * pki_certificate_not_after_seconds series: an alert on a revoked or expired
 * one would never clear.
 */
export function renderMetrics(report: StatusReport, dir: string, now: Date): string {
  const d = { dir };
  const lines: string[] = [];
  const head = (name: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
  const secs = (t: Date) => Math.floor(t.getTime() / 1000);

  head("pki_ca_not_after_seconds", "notAfter of a CA certificate (this CA, its parent), Unix time");
  for (const i of report.items.filter((x) => x.kind === "ca")) lines.push(series("pki_ca_not_after_seconds", { ...d, name: i.name ?? "ca", subject: i.subject ?? "" }, secs(i.notAfter)));

  head("pki_crl_next_update_seconds", "nextUpdate of a CRL (crl.pem, parent-crl.pem), Unix time; nginx refuses every client after it");
  for (const i of report.items.filter((x) => x.kind === "crl")) lines.push(series("pki_crl_next_update_seconds", { ...d, name: i.name ?? "crl" }, secs(i.notAfter)));

  head("pki_certificate_not_after_seconds", "notAfter of each valid certificate this CA issued (the OCSP responder's too), Unix time");
  for (const i of report.items.filter((x) => (x.kind === "certificate" || x.kind === "responder") && x.status === "valid")) {
    lines.push(series("pki_certificate_not_after_seconds", { ...d, serial: i.serial ?? "", name: i.name ?? "", profile: i.profile ?? "" }, secs(i.notAfter)));
  }

  head("pki_certificates", "certificates in the index, by status");
  for (const s of ["valid", "revoked", "expired"] as const) lines.push(series("pki_certificates", { ...d, status: s }, report.counts[s]));

  head("pki_status_generated_seconds", "when pki status wrote this file, Unix time (alert when it gets old: the timer stopped)");
  lines.push(series("pki_status_generated_seconds", d, secs(now)));
  return lines.join("\n") + "\n";
}
