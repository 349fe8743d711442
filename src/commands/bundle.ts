/**
 * pki bundle: write ca-clients.crt, the file nginx loads with
 * ssl_client_certificate: the CA certificate, and with --include-issued the
 * issued certificates that are neither revoked nor expired (of one profile).
 *
 * The choice is remembered in pki.json ("bundle": {"includeIssued": ...}) when
 * the default file is written, so that `pki revoke` regenerates it: a revoked
 * certificate then leaves the bundle as it enters the CRL.
 */
import * as path from "node:path";
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { docWhere, openAuthority, profileOf } from "../ca/authority.js";
import { readBundleSettings, writeBundle } from "../ca/revocation.js";
import { DOC } from "../store/store.js";
import { confineOutput } from "../store/output.js";

interface Opts {
  out?: string;
  includeIssued?: boolean | string;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  const ca = await openAuthority(store);
  // a plain `pki bundle` keeps the remembered choice (pki.json "bundle"); --include-issued [profile]
  // or --no-include-issued changes it
  const include: boolean | string = o.includeIssued === undefined ? readBundleSettings(ca).includeIssued : o.includeIssued;
  if (typeof include === "string") await profileOf(store, include); // unknown profile: PROFILE_INVALID, before anything is written
  ctx.auditInfo.includeIssued = include;
  const own = docWhere(store, DOC.bundle);
  // --out is confined (store/output.ts): never a CA file other than the bundle itself, never a device or FIFO
  const out = o.out !== undefined ? confineOutput(store, o.out, { own: [own], label: "--out" }) : path.resolve(own);
  const isDefault = out === path.resolve(own);
  const count = await writeBundle(ca, include, isDefault ? null : out, ctx.now());
  await store.audit([{ command: "bundle", path: out, includeIssued: include, certificates: count, outcome: "ok" }]);
  const messages = [`Wrote ${out}: the CA${count > 1 ? ` and ${count - 1} issued certificate(s)` : ""}`];
  if (!isDefault && include !== false) messages.push(`pki: warning: \`pki revoke\` keeps only ${own} current, not ${out}: run \`pki bundle --out ${out} ...\` again after revoking`);
  return { data: { path: out, certificates: count }, messages };
}
