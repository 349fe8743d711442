/**
 * CRL and client bundle generation on a CA store. Writers run inside
 * store.locked() and commit through its StoreTx.
 */
import { parseCrlNumber, prepareCrlFromEntries, prepareCrlFromIndex, readCrlInfo, spliceRevoked, type CrlHeader, type CrlInfo, type PreparedCrl } from "../core/crl.js";
import { CLOCK_SKEW_MS, compareCrlWithIndex } from "../core/crl-match.js";
import { CRL_TAIL_BYTES, crlBuiltFrom, crlSourceRecord, isRecordedCrl, parseCrlSource, type CrlSource } from "../core/crl-source.js";
import { parseCertificate } from "../core/parse.js";
import { formatLine, parseIndex, type IndexEntry, type Reason } from "../core/index-format.js";
import { applyIndexUpdates, entriesToRevoke, findIndexEntry, findSerialLine, markRevoked, revocationTime } from "../core/index-edit.js";
import { PkiError } from "../core/errors.js";
import { allowMapText } from "../core/allow-map.js";
import { parsePemBlocks, pemBlockDer, pemBlockDerInPlace, toPemBytes } from "../core/pem.js";
import { MAX_CRL_NUMBER } from "../store/ca-dir.js";
import { writeOutputs } from "../store/output.js";
import { DOC, type Change, type DocWrite, type StoreReader, type StoreTx } from "../store/store.js";
import { docWhere, issuedBy, settingsObject, type Authority, type SigningAuthority } from "./open-ca.js";
import { thenSign } from "./signer.js";
import { crlChainDocs } from "./parent.js";

export { findIndexEntry, findSerialLine };

export interface CrlResult {
  path: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: number;
  /** the CRL's DER (made from the PEM on first use when the CRL was made as PEM: signPreparedCrl) */
  readonly der: Uint8Array;
  /** the PEM file's bytes (made from the DER on first use when the CRL was made as DER) */
  readonly pemBytes: Uint8Array;
  /** the PEM as a string (made on first use: 60 MB for a 1,000,000-entry CRL) */
  readonly pem: string;
}

/** index.txt as bytes: the CRL builder reads bytes (a string of a huge index costs twice its size). */
export type IndexData = string | Uint8Array;

const indexBytes = (index: IndexData): Uint8Array => (typeof index === "string" ? Buffer.from(index, "utf8") : index);
const indexString = (index: IndexData): string => (typeof index === "string" ? index : Buffer.from(index.buffer, index.byteOffset, index.byteLength).toString("utf8"));

type CrlFields = Omit<CrlResult, "path" | "der" | "pemBytes" | "pem">;

/**
 * A CRL result that holds one encoding, PEM or DER, and makes the other (and
 * the PEM string) only when asked: a 1,000,000-entry CRL is ~45 MB of DER
 * and ~60 MB of PEM, and `pki crl` writes one of them.
 */
function crlEncodings<T extends CrlFields>(o: T, made: { der: Uint8Array } | { pemBytes: Uint8Array }): T & { readonly der: Uint8Array; readonly pemBytes: Uint8Array; readonly pem: string } {
  let der = "der" in made ? made.der : undefined;
  let pemBytes = "pemBytes" in made ? made.pemBytes : undefined;
  let pem: string | undefined;
  const getPemBytes = (): Uint8Array => (pemBytes ??= toPemBytes("X509 CRL", der!));
  return Object.defineProperties(o, {
    der: { enumerable: true, get: () => (der ??= pemBlockDer(pemBytes!, "X509 CRL")!) },
    pemBytes: { enumerable: true, get: getPemBytes },
    pem: { enumerable: true, get: () => (pem ??= Buffer.from(getPemBytes().buffer, getPemBytes().byteOffset, getPemBytes().byteLength).toString("latin1")) },
  }) as T & { readonly der: Uint8Array; readonly pemBytes: Uint8Array; readonly pem: string };
}

/**
 * Sign a CRL over every revoked line of the index: one pass over the index
 * bytes, entries encoded straight into the CRL buffer (core/crl.ts
 * signCrlFromIndex), no per-entry objects. thisUpdate is now; nextUpdate is
 * now + days. The number comes from `crlnumber` (the next number to use, as
 * OpenSSL keeps it), which is advanced in the same atomic step as the CRL is
 * written.
 */
export async function buildCrl(ca: SigningAuthority, index: IndexData, days: number, now: Date, crlNumber?: bigint): Promise<Omit<CrlResult, "path">> {
  return signPreparedCrl(prepareCrl(ca, index, days, now, crlNumber ?? (await nextCrlNumber(ca.store))), ca);
}

export interface PendingCrl {
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  prepared: PreparedCrl;
  /** the index text it is built from (crl-source.json records it with crl.pem) */
  index: Uint8Array;
}

/** The index text each signed CRL was built from, for its crl-source.json (crlChange). */
const builtFrom = new WeakMap<object, Uint8Array>();

/** Everything of a new CRL but its entries: thisUpdate is now (whole seconds), nextUpdate `days` later. */
function crlHeader(ca: Authority, days: number, now: Date, crlNumber: bigint): CrlHeader {
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + days * 86_400_000);
  return { signatureAlgorithm: ca.algorithm.der, issuer: ca.cert.subjectRaw, thisUpdate, nextUpdate, crlNumber, authorityKeyId: ca.keyId };
}

/** The CRL up to its signature: needs the CA certificate only, not the key. */
export function prepareCrl(ca: Authority, index: IndexData, days: number, now: Date, crlNumber: bigint): PendingCrl {
  const h = crlHeader(ca, days, now, crlNumber);
  const bytes = indexBytes(index);
  const prepared = prepareCrlFromIndex({ ...h, index: bytes });
  return { crlNumber, thisUpdate: h.thisUpdate, nextUpdate: h.nextUpdate, prepared, index: bytes };
}

/**
 * A revocation's CRL from the current one (core/crl.ts spliceRevoked):
 * when crl-source.json says crl.pem was built from `index` (`source`), the
 * new CRL is its entries with those of the lines `update` revokes put in
 * place. The bytes read are checked to be the crl.pem the record names, and
 * the CRL's signature, so that only what this CA signed from that index is
 * carried over. Null (build from the index) when it cannot be.
 */
async function splicedCrl(ca: Authority, tx: StoreReader, index: Buffer, source: CrlSource, update: readonly IndexEntry[], newIndex: Buffer, days: number, now: Date, crlNumber: bigint): Promise<PendingCrl | null> {
  const bytes = await tx.read(DOC.crl);
  if (bytes === null || !isRecordedCrl(source, { size: bytes.length, tail: bytes })) return null;
  const der = pemBlockDerInPlace(bytes, "X509 CRL");
  if (der === null) return null;
  let cur: CurrentCrl;
  try {
    cur = crlFromDer(ca, der, DOC.crl);
  } catch {
    return null;
  }
  if (!cur.signedByCa) return null;
  const changes = update.map((u) => ({ start: findSerialLine(index, u.serial)?.start ?? -1, line: formatLine(u) }));
  if (changes.some((c) => c.start < 0)) return null;
  const spliced = spliceRevoked(cur.info.revokedDer, index, source.index.bytes, changes);
  if (!spliced) return null;
  const h = crlHeader(ca, days, now, crlNumber);
  return { crlNumber, thisUpdate: h.thisUpdate, nextUpdate: h.nextUpdate, prepared: prepareCrlFromEntries(h, spliced.pieces, spliced.count), index: newIndex };
}

/**
 * Sign a prepared CRL. `as`: the encoding that is written ("pem", the
 * default: the PEM is made over the DER in the CRL's own buffer, no second
 * buffer; the DER is decoded again only if asked for), or "der" (--der).
 */
export function signPreparedCrl(p: PendingCrl, signing: SigningAuthority, as: "pem" | "der" = "pem"): Promise<Omit<CrlResult, "path">> | Omit<CrlResult, "path"> {
  return thenSign(signing.caSigner, p.prepared.tbs, (signature) => {
    const fields = { crlNumber: p.crlNumber, thisUpdate: p.thisUpdate, nextUpdate: p.nextUpdate, revoked: p.prepared.count };
    const crl = crlEncodings(fields, as === "der" ? { der: p.prepared.finish(signature) } : { pemBytes: p.prepared.finishPem(signature) });
    builtFrom.set(crl, p.index);
    return crl;
  });
}

/** The number the next CRL carries (crlnumber holds the next number to use, as OpenSSL keeps it; 1 when there is none). */
export async function nextCrlNumber(store: StoreReader): Promise<bigint> {
  const b = await store.read(DOC.crlNumber);
  if (b === null) return 1n;
  const n = parseCrlNumber(b.toString("utf8"));
  if (n === null) throw new PkiError("CA_INVALID", "crlnumber does not hold a hex number; run `pki doctor`");
  if (n > MAX_CRL_NUMBER) throw new PkiError("CA_INVALID", "crlnumber is longer than 20 octets, the most RFC 5280 5.2.3 allows: fix crlnumber (a CRL number only has to grow)");
  return n;
}

/**
 * The change that publishes a signed CRL, number first: the store advances
 * crlnumber (with the index of a revocation, `with`: the commit point)
 * before crl.pem is replaced. A crash in between skips a number, which RFC
 * 5280 5.2.3 allows; the other order could publish two different CRLs under
 * one number, which it forbids. In an issuing CA, crl-chain.pem (this CA's
 * CRL and the parent's, for nginx `ssl_crl`: see ca/parent.ts) goes with the
 * CRL. `own` false: only the number is advanced (the CRL goes to a file the
 * user named). With crl.pem goes crl-source.json, what it was built from
 * (core/crl-source.ts; removed when that is not known).
 */
export async function crlChange(ca: Authority, tx: StoreReader, crl: Omit<CrlResult, "path">, own = true, with_: Change = {}): Promise<Change> {
  if (!own) return { ...with_, crlNumber: crl.crlNumber + 1n, docs: with_.docs ?? [] };
  const index = builtFrom.get(crl);
  const source: DocWrite = { name: DOC.crlSource, data: index ? crlSourceRecord(index, crl.pemBytes) : null };
  return {
    ...with_,
    crlNumber: crl.crlNumber + 1n,
    docs: [...(with_.docs ?? []), { name: DOC.crl, data: crl.pemBytes }, source, ...(await crlChainDocs(ca, tx, crl.pemBytes))],
  };
}

/**
 * crl-source.json when it says that the current crl.pem was built by pki
 * from `index`, or from an index that `index` only appends lines to
 * (core/crl-source.ts), else null. Then crl.pem lists nothing `index` does
 * not revoke, and a CRL built from `index` (or from `index` with more
 * revocations) cannot drop one of its revocations.
 */
export async function crlSourceFor(reader: StoreReader, index: IndexData): Promise<CrlSource | null> {
  const [bytes, end] = await Promise.all([reader.read(DOC.crlSource), reader.readTail(DOC.crl, CRL_TAIL_BYTES)]);
  const rec = parseCrlSource(bytes);
  return crlBuiltFrom(rec, end, indexBytes(index)) ? rec : null;
}

/** The result of a CRL written to `path`: the same object (its encodings stay made on first use), with the path. */
const crlResult = (ca: Authority, crl: Omit<CrlResult, "path">, path = docWhere(ca.store, DOC.crl)): CrlResult => Object.assign(crl, { path });

/** Re-sign crl.pem from the index (after a revocation), inside locked(). Refuses to drop a live revocation (CRL_SHRINK). */
export async function refreshCrl(ca: SigningAuthority, tx: StoreTx, now: Date, days = ca.settings.crlDays, opts: { allowShrink?: boolean; index?: IndexData } = {}): Promise<CrlResult> {
  const index = opts.index ?? (await tx.indexText());
  if (!opts.allowShrink) await assertNoLiveDrops(ca, tx, index, now);
  const crl = await buildCrl(ca, index, days, now, await nextCrlNumber(tx));
  await tx.commit(await crlChange(ca, tx, crl));
  return crlResult(ca, crl);
}

/**
 * `pki crl`: re-sign the CRL under the lock, unless `unchanged` (read under
 * the lock: another process may have re-signed meanwhile) says it is fine as
 * it is. Never un-revokes silently: a CRL that drops a live revocation of
 * crl.pem is refused (CRL_SHRINK) unless allowShrink, which returns the
 * dropped serials. With `out` (a file the user named, confined) the number
 * is advanced and the CRL written there instead of crl.pem.
 */
export async function resignCrl<T>(
  ca: Authority,
  signing: SigningAuthority | Promise<SigningAuthority>,
  o: { days: number; now: Date; allowShrink?: boolean; out?: { path: string; der: boolean } },
  unchanged: (tx: StoreReader) => Promise<T | null>,
): Promise<T | { crl: CrlResult; dropped: string[] }> {
  return ca.store.locked("crl", async (tx) => {
    const again = await unchanged(tx);
    if (again !== null) return again;
    const index = await tx.indexText();
    const dropped = o.allowShrink ? (await liveDrops(ca, tx, index, o.now)).map((d) => d.serial) : (await assertNoLiveDrops(ca, tx, index, o.now), []);
    const crl = await signPreparedCrl(prepareCrl(ca, index, o.days, o.now, await nextCrlNumber(tx)), await signing, o.out?.der ? "der" : "pem");
    await tx.commit(await crlChange(ca, tx, crl, o.out === undefined));
    if (o.out) writeOutputs(ca.store, [{ path: o.out.path, data: o.out.der ? crl.der : crl.pemBytes, mode: 0o644 }], { own: [o.out.path] });
    return { crl: crlResult(ca, crl, o.out?.path), dropped };
  });
}

// ---------------------------------------------------------------- never un-revoke

export interface LiveDrop {
  serial: string;
  /** the certificate's notAfter when known (index line or certs/<SERIAL>.pem); unknown counts as live */
  notAfter?: Date;
}

/**
 * Serials that the current crl.pem lists as revoked but a CRL built from
 * `index` would not, and whose certificate has not expired: publishing that
 * CRL would un-revoke them (an older index.txt restored from a backup, a
 * hand edit). Entries of expired certificates may go (RFC 5280 3.3: a CRL
 * need only list unexpired certificates). A current CRL that is missing,
 * unreadable or not signed by this CA proves nothing and gives no drops;
 * neither does one built from this index (crlSourceFor), which is not
 * read then.
 */
export async function liveDrops(ca: Authority, reader: StoreReader, index: IndexData, now: Date): Promise<LiveDrop[]> {
  if ((await crlSourceFor(reader, index)) !== null) return [];
  let cur: CurrentCrl | null;
  try {
    cur = await readCurrentCrl(ca, reader);
  } catch {
    return [];
  }
  if (!cur || !cur.signedByCa || cur.info.revoked === 0) return [];
  const bytes = indexBytes(index);
  const now_ = now.getTime();
  const drops: LiveDrop[] = [];
  for (const serial of compareCrlWithIndex(bytes, cur.info.revokedDer, { serialsOnly: true }).extra) {
    const e = findIndexEntry(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), serial);
    const notAfter = e ? e.expires : await certNotAfter(reader, serial);
    if (notAfter && notAfter.getTime() <= now_) continue;
    drops.push({ serial, notAfter });
  }
  return drops;
}

async function certNotAfter(reader: StoreReader, serial: string): Promise<Date | undefined> {
  try {
    const block = parsePemBlocks((await reader.certPem(serial)) ?? "").find((b) => b.label === "CERTIFICATE");
    return block ? parseCertificate(block.der).notAfter : undefined;
  } catch {
    return undefined;
  }
}

/** Refuse (CRL_SHRINK) a CRL that would drop a live revocation of the current crl.pem. */
export async function assertNoLiveDrops(ca: Authority, reader: StoreReader, index: IndexData, now: Date): Promise<void> {
  const drops = await liveDrops(ca, reader, index, now);
  if (!drops.length) return;
  const list = drops.slice(0, 3).map((d) => d.serial).join(", ") + (drops.length > 3 ? ", ..." : "");
  throw new PkiError(
    "CRL_SHRINK",
    `the new CRL would drop ${drops.length} revoked certificate(s) that have not expired (${list}): index.txt is older than crl.pem (restored from a backup?); restore the newer index.txt, or \`pki crl --allow-shrink\` to un-revoke them on purpose`,
    { details: { dropped: drops.map((d) => d.serial) } },
  );
}

// ---------------------------------------------------------------- reading the current CRL

export interface CurrentCrl {
  info: CrlInfo;
  /** the CRL's DER */
  der: Uint8Array;
  /** the signature verifies with the CA's key and the issuer is the CA */
  signedByCa: boolean;
}

/**
 * The store's crl.pem, or null when there is none. A document that is not a
 * readable CRL is an error the caller reports (doctor) or replaces (crl).
 * A PEM CRL is decoded over the bytes just read (core/pem.ts
 * pemBlockDerInPlace): a 1,000,000-entry crl.pem is ~60 MB, and its string
 * and a second buffer for its DER cost ~100 MB more, at the moment the
 * never-un-revoke check holds the index too.
 */
export async function readCurrentCrl(ca: Authority, reader: StoreReader = ca.store): Promise<CurrentCrl | null> {
  const bytes = await reader.read(DOC.crl);
  if (bytes === null) return null;
  const where = docWhere(ca.store, DOC.crl);
  if (isPem(bytes)) {
    const der = pemBlockDerInPlace(bytes, "X509 CRL");
    if (der !== null) return crlFromDer(ca, der, where);
    // not plain base64 lines (the bytes may be overwritten in part): read again, parsePemBlocks says what is wrong
    const again = await reader.read(DOC.crl);
    if (again === null) return null;
    return crlFromBytes(ca, again, where);
  }
  return crlFromDer(ca, bytes, where);
}

const isPem = (bytes: Buffer): boolean => bytes.subarray(0, 64).toString("latin1").includes("-----BEGIN");

/** A CRL's bytes (PEM or DER), parsed and checked against this CA. */
export function crlFromBytes(ca: Authority, bytes: Buffer, p: string): CurrentCrl {
  let derBytes: Uint8Array = bytes;
  if (isPem(bytes)) {
    const fast = pemBlockDer(bytes, "X509 CRL");
    const block = fast ? { der: fast } : parsePemBlocks(bytes.toString("utf8")).find((b) => b.label === "X509 CRL");
    if (!block) throw new PkiError("CA_INVALID", `${p} holds no PEM CRL ("X509 CRL" block)`);
    derBytes = block.der;
  }
  return crlFromDer(ca, derBytes, p);
}

function crlFromDer(ca: Authority, der: Uint8Array, p: string): CurrentCrl {
  let info: CrlInfo;
  try {
    info = readCrlInfo(der);
  } catch (e) {
    throw new PkiError("CA_INVALID", `${p} is not a readable CRL: ${(e as Error).message}`);
  }
  return { info, der, signedByCa: issuedBy(ca, info) };
}

/**
 * A warning for a command that just issued a certificate while crl.pem is
 * missing or past its nextUpdate: nginx (ssl_crl) refuses every client
 * certificate of this CA then, the new one too. The issuance still succeeds
 * (the certificate is recorded and valid); the admin must re-sign the CRL.
 */
export async function staleCrlWarning(ca: Authority, now: Date): Promise<string | null> {
  let cur: CurrentCrl | null;
  const crlPath = docWhere(ca.store, DOC.crl);
  try {
    cur = await readCurrentCrl(ca);
  } catch {
    return `pki: warning: ${crlPath} is not a readable CRL: nginx refuses every client certificate of this CA, this one too, until \`pki crl\` re-signs it`;
  }
  if (!cur) return `pki: warning: there is no ${crlPath}: nginx with ssl_crl refuses every client certificate of this CA until \`pki crl\` writes it`;
  const next = cur.info.nextUpdate;
  if (next && next.getTime() > now.getTime()) return null;
  return `pki: warning: ${crlPath} expired${next ? ` on ${next.toISOString()}` : ""}: nginx refuses every client certificate of this CA, this one too, until \`pki crl\` re-signs it`;
}

export { CLOCK_SKEW_MS };

/** Why a CRL must be re-signed now (null: it is fine as it is). */
export function crlResignReason(cur: CurrentCrl | null, indexText: string, now: Date, withinDays: number): string | null {
  if (!cur) return "there is no CRL yet";
  if (!cur.signedByCa) return "the CRL is not signed by this CA";
  // a clock that jumped forward and back: nginx refuses every client with "CRL is not yet valid"
  if (cur.info.thisUpdate.getTime() > now.getTime() + CLOCK_SKEW_MS) return `the CRL's thisUpdate ${cur.info.thisUpdate.toISOString()} is in the future (clock jump)`;
  const next = cur.info.nextUpdate;
  if (!next) return "the CRL has no nextUpdate";
  if (next.getTime() - now.getTime() <= withinDays * 86_400_000) {
    return next.getTime() <= now.getTime() ? `the CRL expired on ${next.toISOString()}` : `the CRL expires on ${next.toISOString()}, within ${withinDays} day(s)`;
  }
  // a revocation the CRL does not carry yet (e.g. a crash between index and CRL): the one rule, core/crl-match.ts
  if (!compareCrlWithIndex(indexText, cur.info.revokedDer).matches) return "the CRL does not list exactly the revoked certificates of the index";
  return null;
}

// ---------------------------------------------------------------- bundle

export interface BundleSettings {
  /** false: the CA only; true: every issued certificate; a name: that profile's */
  includeIssued: boolean | string;
}

/** pki.json's "bundle" choice, from the settings as read (`doc`: a fresher pki.json object, e.g. read under the lock). */
export function readBundleSettings(ca: Authority, doc: Record<string, unknown> = ca.settingsDoc): BundleSettings {
  const b = doc.bundle;
  const v = typeof b === "object" && b !== null ? (b as { includeIssued?: unknown }).includeIssued : undefined;
  return { includeIssued: typeof v === "string" || typeof v === "boolean" ? v : false };
}

/**
 * ca-clients.crt: the CA certificate, then (when asked) every issued
 * certificate that is neither revoked nor expired, of one profile or all.
 * Returns the text and the number of certificates in it.
 */
export async function buildBundle(ca: Authority, index: IndexEntry[], include: boolean | string, now: Date, reader: StoreReader = ca.store): Promise<{ text: string; count: number }> {
  let text = ca.certPem;
  let count = 1;
  if (include === false) return { text, count };
  const meta = await reader.meta();
  for (const e of index) {
    if (e.status !== "V" || e.expires.getTime() <= now.getTime()) continue;
    if (typeof include === "string" && meta.get(e.serial)?.profile !== include) continue;
    const pem = await reader.certPem(e.serial);
    if (pem === null) continue; // doctor reports index lines without files
    text += pem;
    count++;
  }
  return { text, count };
}

/** pki.json with one key replaced (or removed: undefined), the others kept as they are: read under the lock. */
async function settingsWith(tx: StoreReader, key: string, value: unknown): Promise<DocWrite> {
  const b = await tx.read(DOC.settings);
  if (b === null) throw new PkiError("CA_INVALID", "pki.json is missing; run `pki doctor`");
  const raw = JSON.parse(b.toString("utf8")) as Record<string, unknown>;
  if (value === undefined) delete raw[key];
  else raw[key] = value;
  return { name: DOC.settings, data: JSON.stringify(raw, null, 2) + "\n" };
}

/**
 * Remember the bundle choice in pki.json ("bundle": {"includeIssued": ...}) so
 * that `pki revoke` keeps ca-clients.crt current (a document for a commit
 * inside locked(); the other settings are kept).
 */
export async function bundleSettingsDoc(tx: StoreReader, s: BundleSettings): Promise<DocWrite> {
  const raw = settingsObject((await tx.read(DOC.settings))?.toString("utf8") ?? "{}");
  const old = typeof raw.bundle === "object" && raw.bundle !== null ? (raw.bundle as Record<string, unknown>) : {};
  return settingsWith(tx, "bundle", { ...old, includeIssued: s.includeIssued });
}

/**
 * `pki bundle`: build ca-clients.crt from the index under the lock; written
 * as the CA's own (and the choice remembered in pki.json), or to `out`, a
 * file the user named (confined: store/output.ts). Returns the number of
 * certificates in it.
 */
export async function writeBundle(ca: Authority, include: boolean | string, out: string | null, now: Date): Promise<number> {
  return ca.store.locked("bundle", async (tx) => {
    const b = await buildBundle(ca, parseIndex((await tx.indexText()).toString("utf8")), include, now, tx);
    if (out === null) await tx.commit({ docs: [{ name: DOC.bundle, data: b.text }, await bundleSettingsDoc(tx, { includeIssued: include })] });
    else writeOutputs(ca.store, [{ path: out, data: b.text, mode: 0o644 }]);
    return b.count;
  });
}

/**
 * Everything derived from the index that nginx reads besides the CRL: the
 * bundle (when it lists issued certificates) and the allow-list map (when
 * the admin turned it on), as documents of the same commit as the index
 * change (written after it). `index` is the index as the commit leaves it
 * (asked for only when something is derived).
 */
export async function derivedDocs(ca: Authority, tx: StoreReader, index: () => IndexData, now: Date): Promise<DocWrite[]> {
  const doc = settingsObject((await tx.read(DOC.settings))?.toString("utf8") ?? "{}");
  const bundle = readBundleSettings(ca, doc).includeIssued;
  const allow = readAllowListSetting(ca, doc);
  if (bundle === false && allow === false) return [];
  const entries = parseIndex(indexString(index()));
  const out: DocWrite[] = [];
  if (bundle !== false) out.push({ name: DOC.bundle, data: (await buildBundle(ca, entries, bundle, now, tx)).text });
  if (allow !== false) out.push({ name: DOC.allowMap, data: await buildAllowMap(ca, entries, allow, now, tx) });
  return out;
}

// ---------------------------------------------------------------- nginx allow-list map

/** pki.json "allowList": {"include": true | "<profile>"}; false when absent (the admin did not opt in). */
export function readAllowListSetting(ca: Authority, doc: Record<string, unknown> = ca.settingsDoc): false | true | string {
  const a = doc.allowList;
  const v = typeof a === "object" && a !== null ? (a as { include?: unknown }).include : undefined;
  return typeof v === "string" || v === true ? v : false;
}

/** pki.json with the allow-list choice (a document for a commit inside locked(); other settings are kept). */
export async function allowListSettingDoc(tx: StoreReader, include: true | string | false): Promise<DocWrite> {
  return settingsWith(tx, "allowList", include === false ? undefined : { include });
}

export async function buildAllowMap(ca: Authority, index: readonly IndexEntry[], include: true | string, now: Date, reader: StoreReader = ca.store): Promise<string> {
  const meta = await reader.meta();
  return allowMapText(index, { include, profileOf: (s) => meta.get(s)?.profile, now, caSubject: ca.settings.subject || "this CA" });
}

/**
 * Turn the nginx allow-list on (`pki nginx-config --allow-list`): the choice
 * remembered in pki.json and nginx-allow.map written, in one commit under
 * the lock. Returns the number of index lines considered.
 */
export async function enableAllowList(ca: Authority, include: true | string, now: Date): Promise<number> {
  return ca.store.locked("nginx-config", async (tx) => {
    const index = parseIndex((await tx.indexText()).toString("utf8"));
    const doc = settingsObject((await tx.read(DOC.settings))?.toString("utf8") ?? "{}");
    const docs: DocWrite[] = [];
    if (readAllowListSetting(ca, doc) !== include) docs.push(await allowListSettingDoc(tx, include));
    docs.push({ name: DOC.allowMap, data: await buildAllowMap(ca, index, include, now, tx) });
    await tx.commit({ docs });
    return index.length;
  });
}

// ---------------------------------------------------------------- revoking

export interface RevokeRequest {
  serial: string;
  reason: Reason;
}

export interface Revoked {
  serial: string;
  subject: string;
  reason: Reason;
  revokedAt: Date;
}

/**
 * Mark serials revoked in the index and re-sign the CRL (and the bundle when
 * it lists issued certificates), all under one lock. Unknown or already
 * revoked serials fail the whole call before anything is written.
 *
 * The index is not parsed into objects: each serial's line is found by a
 * byte search for "<TAB>SERIAL<TAB>" in the fourth field, only that line is
 * parsed and rewritten, and the rest of the file is copied around it (a
 * revocation in a 100,000-line index costs a search, not 100,000 parses).
 * Large batches take the parse-everything path instead.
 */
export async function revokeSerials(
  ca: Authority,
  signing: SigningAuthority | Promise<SigningAuthority>,
  reqs: readonly RevokeRequest[],
  now: Date,
): Promise<{ revoked: Revoked[]; crl: CrlResult }> {
  return ca.store.locked("revoke", async (tx) => {
    const revokedAt = revocationTime(now);
    const buf = await tx.indexText();
    const olds = entriesToRevoke(buf, reqs.map((r) => r.serial));
    const update = olds.map((e, i) => markRevoked(e, revokedAt, reqs[i]!.reason));
    const out: Revoked[] = olds.map((e, i) => ({ serial: e.serial, subject: e.subject, reason: reqs[i]!.reason, revokedAt }));
    const newIndex = applyIndexUpdates(buf, update);
    // the CRL is built while the CA key may still be decrypting on the thread
    // pool; nothing is written before the key is there (a wrong passphrase
    // changes nothing). When crl.pem was built from the index as it was
    // before this edit (which only adds revocations), the new CRL is made
    // from its entries, and nothing needs checking for dropped revocations.
    const source = await crlSourceFor(tx, buf);
    const crlNumber = await nextCrlNumber(tx);
    const days = ca.settings.crlDays;
    const pending = (source && (await splicedCrl(ca, tx, buf, source, update, newIndex, days, now, crlNumber))) ?? prepareCrl(ca, newIndex, days, now, crlNumber);
    const crl = await signPreparedCrl(pending, await signing);
    // never un-revoke: an index older than crl.pem is refused before anything is written
    if (!source) await assertNoLiveDrops(ca, tx, newIndex, now);
    // the index (the commit point) with the advanced number first, then the CRL, the bundle and the allow-list
    const derived = await derivedDocs(ca, tx, () => newIndex, now);
    await tx.commit(await crlChange(ca, tx, crl, true, { update, docs: [] }).then((c) => ({ ...c, docs: [...(c.docs ?? []), ...derived] })));
    return { revoked: out, crl: crlResult(ca, crl) };
  });
}
