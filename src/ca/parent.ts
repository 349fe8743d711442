/**
 * Two-tier PKI: an issuing CA below a (usually offline) root.
 *
 * An issuing CA directory holds, besides its own files:
 *   parent.crt      the parent's certificate (the root)
 *   parent-crl.pem  the parent's current CRL (`pki crl --import-parent` replaces it)
 *   ca-chain.crt    this CA's certificate, then the parent's: every CA from here to the root
 *   crl-chain.pem   this CA's CRL, then the parent's: nginx checks a CRL for every CA in
 *                   the chain (X509_V_FLAG_CRL_CHECK_ALL) and refuses every client with
 *                   "unable to get certificate CRL" when one is missing
 *
 * Chains given to holders (issued/<name>.chain.crt, sign-csr --chain) carry
 * the leaf and every CA up to, not including, the root: a server sends what
 * the peer cannot have, and the peer must already trust the root (RFC 8446
 * 4.4.2 lets the root be omitted; sending it buys nothing and costs bytes).
 * In a one-tier CA that is the leaf alone.
 *
 * pki builds two tiers (root -> issuing CAs): a parent that itself has a
 * parent is refused, so that crl-chain.pem always covers the whole chain.
 */
import { PkiError } from "../core/errors.js";
import { readCrlInfo, revokedSerials, type CrlInfo } from "../core/crl.js";
import { findExtension, parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { checkNameConstraints, decodeNameConstraints, OID_NAME_CONSTRAINTS, type NameConstraints } from "../core/name-constraints.js";
import { formatDn, type San } from "../core/names.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import { verifySignature } from "../crypto/keys.js";
import { DOC, type DocWrite, type StoreReader, type StoreTx } from "../store/store.js";
import { docWhere, type Authority } from "./open-ca.js";

export interface ParentInfo {
  certPem: string;
  cert: ParsedCertificate;
}

/** Is this directory an issuing CA (has a parent.crt)? */
export const hasParent = (ca: Authority): boolean => ca.parentPem !== null;

export function readParent(ca: Authority): ParentInfo | null {
  if (ca.parentPem === null) return null;
  const where = docWhere(ca.store, DOC.parentCert);
  const b = parsePemBlocks(ca.parentPem).find((x) => x.label === "CERTIFICATE");
  if (!b) throw new PkiError("CA_INVALID", `${where} holds no PEM certificate; copy the parent's ca.crt there`);
  try {
    return { certPem: toPem("CERTIFICATE", b.der), cert: parseCertificate(b.der) };
  } catch (e) {
    throw new PkiError("CA_INVALID", `${where} is not a readable certificate: ${(e as Error).message}`);
  }
}

/** The CA certificates a holder sends along with its leaf: this CA's when it has a parent, else none. */
export function intermediatesPem(ca: Authority): string {
  return hasParent(ca) ? ca.certPem : "";
}

/** issued/<name>.chain.crt and `sign-csr --chain`: the leaf and every CA up to, not including, the root. */
export function chainPem(ca: Authority, leafPem: string): string {
  return leafPem + intermediatesPem(ca);
}

/**
 * The CA certificates of a PKCS#12: the issuing CA (not the root) in a
 * two-tier PKI; the CA itself in a one-tier one, where the file has always
 * carried "key, certificate and CA" (importers such as Windows and macOS
 * keychains then know the issuer).
 */
export function p12CaPem(ca: Authority): string {
  return intermediatesPem(ca) || ca.certPem;
}

/** The root every chain ends at: parent.crt in an issuing CA, else ca.crt. */
export function rootPem(ca: Authority): string {
  return readParent(ca)?.certPem ?? ca.certPem;
}

/** Every CA from this one up to and including the root (ca-chain.crt). */
export function caChainPem(ca: Authority): string {
  const p = readParent(ca);
  return p ? ca.certPem + p.certPem : ca.certPem;
}

// ---------------------------------------------------------------- the parent's CRL

function crlDer(bytes: Buffer, what: string): Uint8Array {
  if (bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN")) {
    const block = parsePemBlocks(bytes.toString("utf8")).find((b) => b.label === "X509 CRL");
    if (!block) throw new PkiError("BAD_INPUT", `${what} holds no PEM CRL ("X509 CRL" block)`);
    return block.der;
  }
  return bytes;
}

export interface ParentCrl {
  info: CrlInfo;
  der: Uint8Array;
  pem: string;
}

/** Parse a CRL (PEM or DER) and check it was signed by the parent: issuer name and signature. */
export function checkParentCrl(parent: ParentInfo, bytes: Buffer, what: string): ParentCrl {
  const d = crlDer(bytes, what);
  let info: CrlInfo;
  try {
    info = readCrlInfo(d);
  } catch (e) {
    throw new PkiError("BAD_INPUT", `${what} is not a readable CRL: ${(e as Error).message}`);
  }
  let ok = Buffer.from(info.issuerRaw).equals(Buffer.from(parent.cert.subjectRaw));
  try {
    ok = ok && verifySignature(parent.cert.spki.raw, info.signatureAlgorithm, info.tbs, info.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError("BAD_INPUT", `${what} is not signed by the parent CA in parent.crt: take the crl.pem of the parent's own directory`);
  return { info, der: d, pem: toPem("X509 CRL", d) };
}

/** The installed parent-crl.pem, or null when there is none. */
export async function readParentCrl(ca: Authority, reader: StoreReader = ca.store): Promise<ParentCrl | null> {
  const parent = readParent(ca);
  if (!parent) return null;
  const bytes = await reader.read(DOC.parentCrl);
  return bytes === null ? null : checkParentCrl(parent, bytes, docWhere(ca.store, DOC.parentCrl));
}

/**
 * crl-chain.pem, written in the same atomic step as every CRL write of an
 * issuing CA: this CA's CRL followed by the parent's. Nothing for a root.
 */
export async function crlChainDocs(ca: Authority, reader: StoreReader, ownCrlPem: string | Uint8Array, parentCrlPem?: string): Promise<DocWrite[]> {
  if (!hasParent(ca)) return [];
  const parentPem = parentCrlPem ?? (await reader.read(DOC.parentCrl))?.toString("utf8") ?? "";
  return [{ name: DOC.crlChain, data: crlChainText(ownCrlPem, parentPem) }];
}

const crlChainText = (ownCrlPem: string | Uint8Array, parentPem: string): string => {
  const own = typeof ownCrlPem === "string" ? ownCrlPem : Buffer.from(ownCrlPem).toString("latin1");
  return own + (own.endsWith("\n") ? "" : "\n") + parentPem;
};

/** The command an operator runs on the root (offline) machine to hand us a fresh parent CRL. */
export function parentCrlAdvice(ca: { store: { location: string } } | { location: string }): string {
  const where = "store" in ca ? ca.store.location : ca.location;
  return `on the root machine run \`pki -d <root dir> crl\`, copy its crl.pem here and run \`pki -d ${where} crl --import-parent crl.pem\``;
}

// ---------------------------------------------------------------- name constraints

const constraintsCache = new WeakMap<Authority, Array<{ c: NameConstraints; whose: string }>>();

/** The permitted subtrees of this CA's certificate and of its parent's (a verifier applies both). */
export function caConstraints(ca: Authority): Array<{ c: NameConstraints; whose: string }> {
  let out = constraintsCache.get(ca);
  if (out) return out;
  out = [];
  const add = (cert: ParsedCertificate, whose: string) => {
    const e = findExtension(cert.extensions, OID_NAME_CONSTRAINTS);
    if (!e) return;
    try {
      out!.push({ c: decodeNameConstraints(e.value), whose });
    } catch (err) {
      throw new PkiError("CA_INVALID", `the name constraints of ${whose} are not readable: ${(err as Error).message}`);
    }
  };
  add(ca.cert, "this CA");
  const p = readParent(ca);
  if (p) add(p.cert, "the parent CA");
  constraintsCache.set(ca, out);
  return out;
}

/** Refuse (POLICY_DENIED) names outside this CA's (or its parent's) name constraints: called before anything is signed. */
export function enforceConstraints(ca: Authority, cn: string | undefined, sans: readonly San[]): void {
  for (const { c, whose } of caConstraints(ca)) checkNameConstraints(c, cn, sans, whose);
}

// ---------------------------------------------------------------- pki crl --import-parent

export interface ImportedParentCrl {
  path: string;
  crlNumber: number | null;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  revoked: number;
  /** false: the very same CRL was installed already (nothing written) */
  imported: boolean;
  /** this CA's own serial is on the parent's CRL */
  selfRevoked: boolean;
}

/**
 * Install a newer CRL of the parent: its signature checked against
 * parent.crt, an older (or equal but different) CRL number refused, an
 * expired CRL refused (nginx would refuse every client with it); then
 * parent-crl.pem and crl-chain.pem are replaced in one atomic step, under the
 * lock. Needs no key: nothing is signed here.
 */
export async function importParentCrl(ca: Authority, bytes: Buffer, source: string, now: Date): Promise<ImportedParentCrl> {
  const parent = readParent(ca);
  if (!parent) throw new PkiError("NOT_FOUND", `${ca.store.location} has no parent CA (no parent.crt): --import-parent is for an issuing CA made with \`pki init --parent\``);
  const fresh = checkParentCrl(parent, bytes, source);
  const i = fresh.info;
  if (i.nextUpdate && i.nextUpdate.getTime() <= now.getTime()) {
    throw new PkiError("BAD_INPUT", `${source} expired on ${i.nextUpdate.toISOString()}: nginx would refuse every client with it; ${parentCrlAdvice(ca)}`);
  }
  const selfRevoked = revokedSerials(i.revokedDer).includes(ca.cert.serial);
  return ca.store.locked("crl --import-parent", async (tx) => {
    const cur = await readParentCrl(ca, tx);
    const result = { path: docWhere(ca.store, DOC.parentCrl), crlNumber: i.crlNumber === undefined ? null : Number(i.crlNumber), thisUpdate: i.thisUpdate, nextUpdate: i.nextUpdate, revoked: i.revoked, selfRevoked };
    if (cur && Buffer.from(cur.der).equals(Buffer.from(fresh.der))) return { ...result, imported: false };
    if (cur) {
      const a = cur.info.crlNumber;
      const b = i.crlNumber;
      const older = a !== undefined && b !== undefined ? b <= a : i.thisUpdate.getTime() <= cur.info.thisUpdate.getTime();
      if (older) {
        throw new PkiError(
          "CRL_NOT_NEWER",
          `${source} (CRL number ${b ?? "none"}, ${i.thisUpdate.toISOString()}) is not newer than the installed parent CRL (number ${a ?? "none"}, ${cur.info.thisUpdate.toISOString()}): an older CRL could bring a revoked certificate back`,
        );
      }
    }
    const own = (await tx.read(DOC.crl))?.toString("utf8") ?? "";
    await tx.commit({ docs: [{ name: DOC.parentCrl, data: fresh.pem }, ...(own ? await crlChainDocs(ca, tx, own, fresh.pem) : [])] });
    return { ...result, imported: true };
  });
}

// ---------------------------------------------------------------- health (doctor, status)

export interface ParentCheck {
  name: string;
  status: "ok" | "warn" | "fail";
  message: string;
}

const DAY = 86_400_000;

/**
 * How close to its nextUpdate the parent's CRL may come before doctor fails:
 * a quarter of its validity, between one and seven days. A fresh root CRL
 * takes a trip to the offline machine, so the warning must come early; a
 * root CRL valid only 7 days fails 1.75 days ahead (README: the root CRL
 * calendar).
 */
export function parentCrlMargin(info: CrlInfo): number {
  const span = info.nextUpdate ? info.nextUpdate.getTime() - info.thisUpdate.getTime() : 0;
  return Math.min(7 * DAY, Math.max(DAY, span / 4));
}

/** The expected crl-chain.pem from the current crl.pem and parent-crl.pem (null when either is missing). */
export async function expectedCrlChain(ca: Authority, reader: StoreReader = ca.store): Promise<string | null> {
  if (!hasParent(ca)) return null;
  const [own, parent] = await Promise.all([reader.read(DOC.crl), reader.read(DOC.parentCrl)]);
  if (own === null || parent === null) return null;
  return crlChainText(own.toString("utf8"), parent.toString("utf8"));
}

/** Checks of an issuing CA's link to its parent: parent.crt, the parent's CRL, crl-chain.pem. Empty for a root. */
export async function examineParent(ca: Authority, now: Date): Promise<{ checks: ParentCheck[]; chainStale: boolean }> {
  const store = ca.store;
  const parentCertPath = docWhere(store, DOC.parentCert);
  const parentCrlPath = docWhere(store, DOC.parentCrl);
  const crlChainPath = docWhere(store, DOC.crlChain);
  const checks: ParentCheck[] = [];
  if (!hasParent(ca)) return { checks, chainStale: false };
  const add = (name: string, status: ParentCheck["status"], message: string) => checks.push({ name, status, message });
  let parent: ParentInfo | null = null;
  try {
    parent = readParent(ca);
  } catch (e) {
    add("parent", "fail", (e as Error).message);
  }
  if (parent) {
    let signed = Buffer.from(ca.cert.issuerRaw).equals(Buffer.from(parent.cert.subjectRaw));
    try {
      signed = signed && verifySignature(parent.cert.spki.raw, ca.cert.signatureAlgorithm, ca.cert.tbs, ca.cert.signature);
    } catch {
      signed = false;
    }
    const left = parent.cert.notAfter.getTime() - now.getTime();
    if (!signed) add("parent", "fail", `ca.crt is not signed by the CA in parent.crt: put the parent's ca.crt in ${parentCertPath}`);
    else if (left <= 0) add("parent", "fail", `the parent (root) certificate expired on ${parent.cert.notAfter.toISOString()}: every chain through it is refused`);
    else if (left <= 180 * DAY) add("parent", "fail", `the parent (root) certificate expires on ${parent.cert.notAfter.toISOString()} (in ${Math.floor(left / DAY)} days): plan the new root now`);
    else add("parent", "ok", `signed by ${formatDn(parent.cert.subject)}, valid until ${parent.cert.notAfter.toISOString()}`);
  }
  // the parent's CRL
  const advice = parentCrlAdvice(ca);
  let pcrl: ParentCrl | null = null;
  try {
    pcrl = await readParentCrl(ca);
    if (!pcrl) add("parent-crl", "fail", `${parentCrlPath} is missing: nginx refuses every client without a CRL of the root; ${advice}`);
  } catch (e) {
    add("parent-crl", "fail", `${(e as Error).message}; ${advice}`);
  }
  if (pcrl) {
    const next = pcrl.info.nextUpdate;
    const selfRevoked = revokedSerials(pcrl.info.revokedDer).includes(ca.cert.serial);
    if (selfRevoked) add("parent-crl", "fail", `the parent has revoked this CA (serial ${ca.cert.serial}): every certificate it issued is refused; make a new issuing CA`);
    else if (!next || next.getTime() <= now.getTime()) add("parent-crl", "fail", `the parent's CRL expired${next ? ` on ${next.toISOString()}` : " (no nextUpdate)"}: nginx refuses every client certificate; ${advice}`);
    else if (next.getTime() - now.getTime() <= parentCrlMargin(pcrl.info)) add("parent-crl", "fail", `the parent's CRL expires on ${next.toISOString()}: ${advice}, then reload nginx`);
    else add("parent-crl", "ok", `number ${pcrl.info.crlNumber ?? "?"}, ${pcrl.info.revoked} revoked, next update ${next.toISOString()} (in ${Math.floor((next.getTime() - now.getTime()) / DAY)} days)`);
  }
  // crl-chain.pem follows crl.pem and parent-crl.pem
  let chainStale = false;
  const want = await expectedCrlChain(ca);
  if (want !== null) {
    const have = (await store.read(DOC.crlChain))?.toString("utf8") ?? null;
    if (have !== want) {
      chainStale = true;
      add("crl-chain", "fail", `${crlChainPath} ${have === null ? "is missing" : "does not hold the current crl.pem and parent-crl.pem"}: nginx's ssl_crl reads it; \`pki doctor --repair\` rewrites it`);
    } else add("crl-chain", "ok", "this CA's CRL and the parent's, current");
  }
  return { checks, chainStale };
}

/** doctor --repair: rewrite crl-chain.pem from crl.pem and parent-crl.pem (no key needed). Caller holds the lock. */
export async function repairCrlChain(ca: Authority, tx: StoreTx): Promise<boolean> {
  const want = await expectedCrlChain(ca, tx);
  if (want === null) return false;
  await tx.commit({ docs: [{ name: DOC.crlChain, data: want }] });
  return true;
}

/** For `pki verify`: the link from this CA up to the root, and whether the root's CRL (still valid) revokes this CA. Null for a root. */
export async function verifyParentLink(ca: Authority, now: Date): Promise<{ chainOk: boolean; message: string; parent?: ParsedCertificate; revokedByParent: boolean; crl: "revoked" | "not revoked" | "unavailable"; crlProblem?: string } | null> {
  if (!hasParent(ca)) return null;
  let parent: ParentInfo | null;
  try {
    parent = readParent(ca);
  } catch (e) {
    return { chainOk: false, message: (e as Error).message, revokedByParent: false, crl: "unavailable", crlProblem: (e as Error).message };
  }
  const p = parent!;
  let signed = Buffer.from(ca.cert.issuerRaw).equals(Buffer.from(p.cert.subjectRaw));
  try {
    signed = signed && verifySignature(p.cert.spki.raw, ca.cert.signatureAlgorithm, ca.cert.tbs, ca.cert.signature);
  } catch {
    signed = false;
  }
  const valid = now >= p.cert.notBefore && now <= p.cert.notAfter;
  const rootName = formatDn(p.cert.subject);
  const message = !signed ? "ca.crt is not signed by the CA in parent.crt" : !valid ? `the root certificate is outside its validity period (until ${p.cert.notAfter.toISOString()})` : `the issuing CA is signed by the root ${rootName}`;
  let crl: "revoked" | "not revoked" | "unavailable" = "unavailable";
  let crlProblem: string | undefined;
  let revokedByParent = false;
  try {
    const c = await readParentCrl(ca);
    if (!c) crlProblem = `parent-crl.pem is missing: ${parentCrlAdvice(ca)}`;
    else if (c.info.nextUpdate && c.info.nextUpdate.getTime() <= now.getTime()) crlProblem = `the parent's CRL expired on ${c.info.nextUpdate.toISOString()} (nginx now refuses every client): ${parentCrlAdvice(ca)}`;
    else {
      revokedByParent = revokedSerials(c.info.revokedDer).includes(ca.cert.serial);
      crl = revokedByParent ? "revoked" : "not revoked";
    }
  } catch (e) {
    crlProblem = (e as Error).message;
  }
  return { chainOk: signed && valid, message, parent: p.cert, revokedByParent, crl, crlProblem };
}
