/**
 * `pki list`'s reading half: the certificates of the index (with index.meta's
 * profile and name), their status at `now`, filtered. An issuing CA revoked
 * by its parent (parent-crl.pem) has nothing valid below it any more, and an
 * allow-list made from this list must not say otherwise.
 */
import { parseOnelineDn, rfc2253Dn } from "../core/dn-format.js";
import { isoTime, parseIndex } from "../core/index-format.js";
import { formatDn } from "../core/names.js";
import { statusOf, type ItemStatus } from "../core/status.js";
import { DOC, type CaStore } from "../store/store.js";
import { noCa, openAuthority } from "./authority.js";
import { verifyParentLink } from "./parent.js";

export interface ListRow {
  serial: string;
  subject: string;
  /** nginx's $ssl_client_s_dn spelling (core/dn-format.ts) */
  dn: string;
  name: string | null;
  profile: string | null;
  status: ItemStatus;
  notAfter: string;
  revokedAt: string | null;
  reason: string | null;
  expires: number;
}

export interface ListFilter {
  /** "all" or one status */
  status: ItemStatus | "all";
  /** valid certificates that expire within this many days */
  expiring?: number;
  profile?: string;
  /** every certificate ever recorded under that name (its history) */
  name?: string;
}

/** The filtered rows, and whether the parent CA has revoked this issuing CA. */
export async function listCertificates(store: CaStore, now: Date, f: ListFilter): Promise<{ rows: ListRow[]; caRevoked: boolean }> {
  if (!(await store.exists())) throw noCa(store);
  const meta = await store.meta();
  const caRevoked = (await store.read(DOC.parentCert)) !== null ? ((await verifyParentLink(await openAuthority(store), now))?.revokedByParent ?? false) : false;
  const horizon = f.expiring === undefined ? undefined : now.getTime() + f.expiring * 86_400_000;
  const rows = parseIndex((await store.indexText()).toString("utf8"))
    .map((e): ListRow => {
      const m = meta.get(e.serial);
      const rdns = parseOnelineDn(e.subject);
      const status = statusOf(e, now);
      return {
        serial: e.serial,
        subject: formatDn(rdns),
        dn: rfc2253Dn(rdns),
        name: m?.name ?? null,
        profile: m?.profile ?? null,
        status: caRevoked && status === "valid" ? "revoked" : status,
        notAfter: isoTime(e.expires),
        revokedAt: e.revokedAt ? isoTime(e.revokedAt) : null,
        reason: e.status === "R" ? (e.reason ?? "unspecified") : null,
        expires: e.expires.getTime(),
      };
    })
    .filter((r) => f.status === "all" || r.status === f.status)
    .filter((r) => f.profile === undefined || r.profile === f.profile)
    .filter((r) => f.name === undefined || r.name === f.name)
    // --expiring: what needs renewing, so valid certificates only
    .filter((r) => horizon === undefined || (r.status === "valid" && r.expires > now.getTime() && r.expires <= horizon));
  return { rows, caRevoked };
}
