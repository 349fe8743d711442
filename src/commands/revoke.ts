/**
 * pki revoke <target>...: mark certificates revoked in index.txt and re-sign
 * the CRL (and ca-clients.crt when it lists issued certificates) in the same
 * locked step, so that the next `nginx -s reload` refuses it.
 *
 * <target> is, in this order: a certificate file (PEM or DER), an issued
 * name (index.meta), or a serial in the index (hex, any case, colons allowed):
 * resolved by ca/target.ts, as every command's target.
 */
import { usage } from "../core/errors.js";
import { parseReason, REASON_NAMES, REASONS, type Reason } from "../core/index-format.js";
import { parseSubjectQuery } from "../core/subject-match.js";
import { keyAccessNow, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { openAuthority, openSigningAuthority } from "../ca/authority.js";
import { revokeEntries } from "../ca/revoke.js";
import { resolveRevocations } from "../ca/target.js";

interface Opts {
  reason?: string;
  subject?: string;
  allOf?: string;
  key?: string;
}

export function reasonOption(v: string | undefined): Reason {
  if (v === undefined) return "unspecified";
  const r = parseReason(v);
  if (!r) throw usage(`--reason takes one of ${REASON_NAMES.join(", ")}, not ${JSON.stringify(v)}`);
  return r;
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (args.length === 0 && o.subject === undefined && o.allOf === undefined) {
    throw usage("missing target: pki revoke <serial|certificate file|name>... (or --subject DN, --all-of NAME)");
  }
  if (o.subject !== undefined) parseSubjectQuery(o.subject); // a malformed DN is a usage error, before anything else
  const reason = reasonOption(o.reason);
  ctx.auditInfo.target = args.length === 1 ? args[0] : args.length ? args : undefined;
  if (o.subject !== undefined) ctx.auditInfo.subjectQuery = o.subject;
  if (o.allOf !== undefined) ctx.auditInfo.allOf = o.allOf;
  ctx.auditInfo.reason = reason;
  const ca = await openAuthority(store);
  // resolve and refuse before the key is decrypted; revokeSerials checks again under the lock
  const entries = await resolveRevocations(ca, args, o, ctx.now());
  ctx.auditInfo.serial = entries.length === 1 ? entries[0]!.serial : entries.map((e) => e.serial);
  // the passphrase first (a prompt must not run under the lock), then the key
  // decrypts on the thread pool while revokeSerials rewrites the index and
  // builds the CRL
  const access = await keyAccessNow(ctx, ca, o.key);
  const signing = openSigningAuthority(ca, access);
  signing.catch(() => {}); // handled where it is awaited
  const { list, crl } = await revokeEntries(ca, signing, entries, reason, ctx.now());
  const first = list[0]!;
  const why = reason === "unspecified" ? "" : `, reason ${REASONS[reason].openssl}`;
  return {
    data: {
      // the first release's fields, for one certificate
      ...(list.length === 1 ? { serial: first.serial, subject: first.subject, reason, revokedAt: first.revokedAt } : {}),
      revoked: list.map(({ serial, subject, name, reason: r, revokedAt }) => ({ serial, subject, name, reason: r, revokedAt })),
      crl: crl.path,
    },
    messages: [
      ...list.map((r) => `Revoked ${r.serial} (${r.subject}${r.name ? `, name "${r.name}"` : ""})${why}`),
      store.kind === "postgres"
        ? `  CRL re-signed in ${store.location} (number ${crl.crlNumber}, ${crl.revoked} revoked): on each nginx host run \`pki crl --out <file>\` and reload nginx, or let pki serve answer OCSP`
        : `  CRL ${crl.path} re-signed (number ${crl.crlNumber}, ${crl.revoked} revoked): reload nginx to enforce it (nginx -s reload)`,
    ],
  };
}
