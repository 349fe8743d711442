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
import { openAuthority } from "../ca/authority.js";
import { buildBundle, readBundleSettings, writeBundleSettings } from "../ca/revocation.js";
import { writeFilesAtomic } from "../store/atomic.js";
import { CaDir, MODE } from "../store/ca-dir.js";
import { withLock } from "../store/lock.js";
import { confineOutput } from "../store/output.js";

interface Opts {
  out?: string;
  includeIssued?: boolean | string;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = new CaDir(ctx.dir);
  const ca = openAuthority(store);
  // a plain `pki bundle` keeps the remembered choice (pki.json "bundle"); --include-issued [profile]
  // or --no-include-issued changes it
  const include: boolean | string = o.includeIssued === undefined ? readBundleSettings(ca).includeIssued : o.includeIssued;
  if (typeof include === "string") store.profile(include); // unknown profile: PROFILE_INVALID, before anything is written
  ctx.auditInfo.includeIssued = include;
  // --out is confined (store/output.ts): never a CA file other than the bundle itself, never a device or FIFO
  const out = o.out !== undefined ? confineOutput(store, o.out, { own: [store.bundlePath], label: "--out" }) : path.resolve(store.bundlePath);
  const isDefault = out === path.resolve(store.bundlePath);
  const messages: string[] = [];
  const count = await withLock(store.dir, () => {
    const b = buildBundle(ca, store.readIndex(), include, ctx.now());
    writeFilesAtomic([{ path: out, data: b.text, mode: MODE.file }]);
    if (isDefault) writeBundleSettings(ca, { includeIssued: include });
    return b.count;
  });
  store.audit({ command: "bundle", path: out, includeIssued: include, certificates: count, outcome: "ok" });
  messages.push(`Wrote ${out}: the CA${count > 1 ? ` and ${count - 1} issued certificate(s)` : ""}`);
  if (!isDefault && include !== false) messages.push(`pki: warning: \`pki revoke\` keeps only ${store.bundlePath} current, not ${out}: run \`pki bundle --out ${out} ...\` again after revoking`);
  return { data: { path: out, certificates: count }, messages };
}
