/**
 * `pki revoke`'s commit: the resolved certificates revoked in one locked step
 * (ca/revocation.ts revokeSerials: index, CRL, bundle), then described as the
 * user knows them (the certificate's subject, its issued name) and audited,
 * one line per certificate.
 */
import { parseOnelineDn } from "../core/dn-format.js";
import type { IndexEntry, Reason } from "../core/index-format.js";
import { formatDn } from "../core/names.js";
import { parseCertificate } from "../core/parse.js";
import { parsePemBlocks } from "../core/pem.js";
import type { Authority, SigningAuthority } from "./authority.js";
import { revokeSerials, type CrlResult } from "./revocation.js";

export interface RevokedCert {
  serial: string;
  subject: string;
  name: string | null;
  reason: Reason;
  revokedAt: string;
}

/** The subject of a revoked certificate: its own, else the index's one-line form. */
function subjectOf(indexSubject: string, pem: string | null): string {
  let subject = formatDn(parseOnelineDn(indexSubject));
  try {
    const blocks = parsePemBlocks(pem ?? "");
    if (blocks[0]) subject = formatDn(parseCertificate(blocks[0].der).subject);
  } catch {
    // keep the index form of the subject
  }
  return subject;
}

/** Revoke the entries for one reason; the key decrypts (signing) while the index is rewritten. */
export async function revokeEntries(ca: Authority, signing: Promise<SigningAuthority>, entries: readonly IndexEntry[], reason: Reason, now: Date): Promise<{ list: RevokedCert[]; crl: CrlResult }> {
  const store = ca.store;
  const { revoked, crl } = await revokeSerials(
    ca,
    signing,
    entries.map((e) => ({ serial: e.serial, reason })),
    now,
  );
  const meta = await store.meta();
  const pems = await Promise.all(revoked.map((r) => store.certPem(r.serial)));
  const list = revoked.map((r, i) => ({ serial: r.serial, subject: subjectOf(r.subject, pems[i] ?? null), name: meta.get(r.serial)?.name ?? null, reason, revokedAt: r.revokedAt.toISOString() }));
  // one audit line per certificate
  await store.audit(list.map((r) => ({ command: "revoke", serial: r.serial, subject: r.subject, name: r.name ?? undefined, reason, crlNumber: Number(crl.crlNumber), outcome: "ok" })));
  return { list, crl };
}
