/**
 * Which certificates a `pki revoke --subject` (and the duplicate-CN warning of
 * `sign-csr`) means. Pure: index entries and names in, decisions out.
 *
 * A query is either a whole DN ("CN=agent2,O=Acme", "O=Acme, CN=agent2",
 * "/O=Acme/CN=agent2": every form pki prints or nginx logs) or a CN alone
 * ("CN=agent2.agents.example.lan", or the bare value). Matching:
 *
 * - a DN query matches a subject with exactly the same attributes (type and
 *   value, each as often), in any order: nginx's $ssl_client_s_dn writes the
 *   RDNs in reverse (RFC 2253) while `pki list` and index.txt write them in
 *   encoded order, and an admin pastes whichever is at hand;
 * - a CN query matches every subject whose (last) CN is that value, whatever
 *   else the subject holds;
 * - values compare after trimming and ignoring case, as X.520's
 *   caseIgnoreMatch does for the DirectoryString attributes (so
 *   AGENT2.example.lan and agent2.example.lan are the same host name).
 */
import { commonName, OID_CN, parseDn, type Rdn } from "./names.js";
import { onelineCommonName } from "./dn-format.js";
import type { IndexEntry } from "./index-format.js";

export type SubjectQuery = { kind: "cn"; cn: string; text: string } | { kind: "dn"; rdns: Rdn[]; text: string };

const norm = (v: string): string => v.trim().replace(/\s+/g, " ").toLowerCase();

/** Read a --subject argument. Throws a usage error for a malformed DN. */
export function parseSubjectQuery(text: string): SubjectQuery {
  const t = text.trim();
  // a bare value (no TYPE=) is a CN: "agent2.agents.example.lan"
  if (t !== "" && !/^\/?[A-Za-z][A-Za-z0-9.-]*\s*=/.test(t)) return { kind: "cn", cn: t, text };
  const rdns = parseDn(t);
  if (rdns.length === 1 && rdns[0]!.type === OID_CN) return { kind: "cn", cn: rdns[0]!.value, text };
  return { kind: "dn", rdns, text };
}

const key = (r: Rdn): string => `${r.type}=${norm(r.value)}`;

export function subjectMatches(q: SubjectQuery, subject: readonly Rdn[]): boolean {
  if (q.kind === "cn") {
    const cn = commonName(subject);
    return cn !== undefined && norm(cn) === norm(q.cn);
  }
  if (subject.length !== q.rdns.length) return false;
  const want = q.rdns.map(key).sort();
  const have = subject.map(key).sort();
  return want.every((k, i) => k === have[i]);
}

/** The (last) CN as caseIgnoreMatch compares it, or undefined: equal keys are the same CN. */
export function commonNameKey(rdns: readonly Rdn[]): string | undefined {
  const cn = commonName(rdns);
  return cn === undefined ? undefined : norm(cn);
}

/** commonNameKey of an index subject (OpenSSL's oneline form), read straight from the text. */
export function onelineCommonNameKey(subject: string): string | undefined {
  const cn = onelineCommonName(subject);
  return cn === undefined ? undefined : norm(cn);
}

/** Valid in the index's sense and in time: status V and notAfter still ahead. */
export const isLive = (e: IndexEntry, now: Date): boolean => e.status === "V" && e.expires.getTime() > now.getTime();

/**
 * The live entries whose subject matches. `subjectOf` turns an index entry's
 * subject (OpenSSL's oneline form) into RDNs; the caller passes
 * dn-format.parseOnelineDn.
 */
export function liveMatching(entries: readonly IndexEntry[], q: SubjectQuery, now: Date, subjectOf: (e: IndexEntry) => Rdn[]): IndexEntry[] {
  return entries.filter((e) => isLive(e, now) && subjectMatches(q, subjectOf(e)));
}

/**
 * Every certificate recorded under `name` (index.meta), split by state:
 * live ones are what `revoke --all-of` revokes; the rest explain why nothing
 * was left to revoke.
 */
export function entriesOfName(
  entries: readonly IndexEntry[],
  nameOf: (serial: string) => string | undefined,
  name: string,
  now: Date,
): { live: IndexEntry[]; revoked: IndexEntry[]; expired: IndexEntry[] } {
  const out = { live: [] as IndexEntry[], revoked: [] as IndexEntry[], expired: [] as IndexEntry[] };
  for (const e of entries) {
    if (nameOf(e.serial) !== name) continue;
    if (e.status === "R") out.revoked.push(e);
    else if (isLive(e, now)) out.live.push(e);
    else out.expired.push(e);
  }
  return out;
}
