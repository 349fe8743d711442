/**
 * pki doctor over a CA store (#9): read a snapshot (through the store, and
 * through store/dir-doctor.ts for what only a directory has), let the pure
 * core/diagnosis.ts decide, and repair what is safe in one locked() run.
 *
 * doctor checks a CA directory: on a database store it says what to use
 * instead (doctorDir).
 */
import { parseCrl } from "../core/crl-parse.js";
import * as der from "../core/der.js";
import { PkiError, usage } from "../core/errors.js";
import { bundleListsIssued, cleanMeta, cutIndexTail, diagnose, readIndexForDoctor, recordOrphans, restoreRevocations, type Check, type Diagnosis, type DoctorSnapshot } from "../core/diagnosis.js";
import { formatDn } from "../core/names.js";
import { parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks } from "../core/pem.js";
import { parsePkcs11Uri } from "../core/pkcs11-uri.js";
import { randomBytes, verifySignature } from "../crypto/keys.js";
import { breakDirLock, certFile, dirFacts, repairDirectory } from "../store/dir-doctor.js";
import { dirOf, type DirStore } from "../store/dir-store.js";
import { applyIndexUpdates } from "../core/index-edit.js";
import { parseIndex } from "../core/index-format.js";
import { DOC, type Change, type DocWrite, type StoreReader, type StoreTx } from "../store/store.js";
import { caKeyUri, docWhere, issuedBy, openSigningAuthority, type Authority, type KeyAccess, type SigningAuthority } from "./open-ca.js";
import { examineParent, expectedCrlChain } from "./parent.js";
import { assertNoLiveDrops, buildAllowMap, buildBundle, buildCrl, crlChange, liveDrops, nextCrlNumber, readAllowListSetting, readBundleSettings, readCurrentCrl } from "./revocation.js";
import { pinFromSources } from "./signer.js";

export type { Check, Diagnosis };

/** The directory behind the store: doctor's checks are of a directory (temporary files, the lock, modes). */
export function doctorDir(ca: Authority): DirStore {
  const d = dirOf(ca.store);
  if (!d) throw usage(`pki doctor checks a CA directory (files, modes, the lock); ${ca.store.location} is a database, which has none: use \`pki status\` for what expires, or \`pki store export --to <dir>\` and run doctor on that copy`);
  return d;
}

/** Read what the diagnosis needs and diagnose it. */
export async function examineCa(ca: Authority, now: Date): Promise<Diagnosis> {
  return diagnose(await snapshot(ca, now));
}

async function readText(reader: StoreReader, name: string): Promise<string | null> {
  try {
    return (await reader.read(name))?.toString("utf8") ?? null;
  } catch {
    return null;
  }
}

async function snapshot(ca: Authority, now: Date): Promise<DoctorSnapshot> {
  const d = doctorDir(ca);
  const facts = dirFacts(d);
  let index: DoctorSnapshot["index"];
  try {
    index = readIndexForDoctor((await ca.store.indexText()).toString("utf8"));
  } catch (e) {
    index = { error: (e as Error).message };
  }
  const crl = await crlPart(ca, index, now);
  const parent = await examineParent(ca, now);
  const bundle = await bundlePart(ca, index, now, facts.bundleMtimeMs);
  const allowSetting = readAllowListSetting(ca);
  const allowText = allowSetting === false ? null : await readText(ca.store, DOC.allowMap);
  const allowExpected = allowSetting !== false && allowText !== null && index.entries ? await buildAllowMap(ca, index.entries, allowSetting, now) : null;
  return {
    now,
    caNotAfter: ca.cert.notAfter,
    caDer: ca.cert.der,
    where: { crl: docWhere(ca.store, DOC.crl), bundle: docWhere(ca.store, DOC.bundle), allowMap: docWhere(ca.store, DOC.allowMap), lock: facts.lockPath },
    index,
    crl,
    parent,
    modes: facts.modes,
    metaText: facts.metaText,
    certFiles: facts.certFiles,
    stray: index.entries ? await strayCerts(ca, d, index.entries, facts.certFiles) : [],
    bundle,
    allow: { setting: allowSetting, text: allowText, expected: allowExpected },
    tmpFiles: facts.tmpFiles,
    lock: facts.lock,
  };
}

async function crlPart(ca: Authority, index: DoctorSnapshot["index"], now: Date): Promise<DoctorSnapshot["crl"]> {
  try {
    const cur = await readCurrentCrl(ca);
    if (!cur || !cur.signedByCa) return { cur, drops: [], nextNumber: null };
    const drops = index.entries ? await liveDrops(ca, ca.store, index.text, now) : [];
    const nextNumber = await nextCrlNumber(ca.store).catch(() => null);
    return { cur, drops, nextNumber };
  } catch (e) {
    return { error: e instanceof PkiError ? `${e.message}: run \`pki crl\`` : String(e) };
  }
}

/** certs/<SERIAL>.pem files without an index line, parsed, and whether this CA signed them. */
async function strayCerts(ca: Authority, d: DirStore, index: ReadonlyArray<{ serial: string }>, files: readonly string[]): Promise<DoctorSnapshot["stray"]> {
  const inIndex = new Set(index.map((e) => e.serial));
  const out: DoctorSnapshot["stray"] = [];
  for (const serial of files) {
    if (inIndex.has(serial)) continue;
    let cert: ParsedCertificate | null = null;
    try {
      const b = parsePemBlocks((await ca.store.certPem(serial)) ?? "").find((x) => x.label === "CERTIFICATE");
      cert = b ? parseCertificate(b.der) : null;
    } catch {
      cert = null;
    }
    out.push({ serial, file: certFile(d, serial), cert, issuedByCa: cert !== null && issuedBy(ca, cert) });
  }
  return out;
}

async function bundlePart(ca: Authority, index: DoctorSnapshot["index"], now: Date, mtimeMs: number): Promise<DoctorSnapshot["bundle"]> {
  const setting = readBundleSettings(ca).includeIssued;
  const text = await readText(ca.store, DOC.bundle);
  const compare = text !== null && index.entries !== undefined && bundleListsIssued(text, setting);
  const expected = compare ? (await buildBundle(ca, index.entries!, setting === false ? true : setting, now)).text : null;
  return { text, mtimeMs, setting, expected };
}

// ---------------------------------------------------------------- the key

/** How doctor may reach the CA key: never by a prompt. */
export interface DoctorKey {
  /** --key */
  keyUri?: string;
  env: NodeJS.ProcessEnv;
  /** is there a passphrase source (--passphrase-file, PKI_PASSPHRASE_FILE)? Asked only when the CRL is to be re-signed */
  passphraseGiven: () => boolean;
  /** the key access, without prompting (made when the key is opened: a bad --key fails there) */
  access: () => KeyAccess;
}

/**
 * The ca-key check (a CA key on a PKCS#11 token only; null otherwise): open
 * the key the way a signing command does, sign 32 random bytes and verify
 * them with ca.crt's key.
 */
export async function checkTokenKey(ca: Authority, k: DoctorKey): Promise<Check | null> {
  const uri = caKeyUri(ca, k.keyUri);
  if (uri === undefined) return null;
  const name = "ca-key";
  try {
    if (pinFromSources(parsePkcs11Uri(uri), k.env) === undefined) {
      return { name, status: "warn", message: "the CA key is on a PKCS#11 token; give its PIN (pin-source in the URI or PKI_PKCS11_PIN) so that doctor can check it" };
    }
    const signing = await openSigningAuthority(ca, k.access());
    try {
      const challenge = randomBytes(32);
      const sig = await signing.caSigner.sign(challenge);
      const alg = signing.algorithm.der;
      const ok = verifySignature(ca.cert.spki.raw, der.readOid(alg, der.children(alg, der.read(alg))[0]!), challenge, sig);
      if (!ok) return { name, status: "fail", message: `${signing.caSigner.description}: a test signature does not verify with ca.crt's key` };
      return { name, status: "ok", message: `${signing.caSigner.description} is reachable, matches ca.crt and signs` };
    } finally {
      signing.caSigner.close?.();
    }
  } catch (e) {
    return { name, status: "fail", message: e instanceof PkiError ? e.message : String(e) };
  }
}

/** The signer for re-signing the CRL, when a PIN or passphrase source exists (doctor never prompts); else why not. */
async function repairSigner(ca: Authority, f: Diagnosis, k: DoctorKey): Promise<{ signing: SigningAuthority | null; why?: string }> {
  if (!f.crlStale && !f.drops.length) return { signing: null };
  const uri = caKeyUri(ca, k.keyUri);
  if (uri !== undefined && pinFromSources(parsePkcs11Uri(uri), k.env) === undefined) {
    return { signing: null, why: "CRL not re-signed: no PIN source for the token (add pin-source to the key URI or set PKI_PKCS11_PIN)" };
  }
  if (uri === undefined && ca.settings.encrypted && !k.passphraseGiven()) {
    return { signing: null, why: "CRL not re-signed: no passphrase source (pass --passphrase-file or set PKI_PASSPHRASE_FILE)" };
  }
  try {
    return { signing: await openSigningAuthority(ca, k.access()) };
  } catch (e) {
    return { signing: null, why: `CRL not re-signed: ${(e as Error).message}` };
  }
}

// ---------------------------------------------------------------- --break-lock and --repair

/** `pki doctor --break-lock`: remove the lock (of another host, or a strange or dead one); what was done. */
export async function breakLockOf(ca: Authority): Promise<string> {
  const was = breakDirLock(doctorDir(ca));
  if (was.kind === "none") return "there was no lock";
  await ca.store.audit([{ command: "doctor", action: "break-lock", ...(was.kind === "strange" ? { lock: was.what } : { pid: was.holder.pid, host: was.holder.host }), outcome: "ok" }]);
  return `removed the lock (${was.kind === "strange" ? was.what : `pid ${was.holder.pid} on ${was.holder.host} since ${was.holder.since}`})`;
}

interface Repairs {
  done: string[];
  audit: Array<Record<string, unknown>>;
}

/**
 * `pki doctor --repair`: the key is opened before the lock is taken; under
 * it the directory's own repairs (temporary files, half lines, certificate
 * files without an index line), then one commit of the rest: re-applied
 * revocations, crlnumber, the re-signed CRL (or crl-chain.pem), the
 * allow-list and the bundle. Never changes key modes.
 */
export async function repairCa(ca: Authority, f: Diagnosis, key: DoctorKey, now: Date): Promise<string[]> {
  const d = doctorDir(ca);
  const { signing, why } = await repairSigner(ca, f, key);
  const r: Repairs = { done: why ? [why] : [], audit: [] };
  if (f.lock.kind === "foreign") {
    r.done.push(`nothing repaired: the CA directory is locked by pid ${f.lock.holder.pid} on ${f.lock.holder.host}; if that process is gone, \`pki doctor --break-lock\``);
    return r.done;
  }
  try {
    await ca.store.locked("doctor", async (tx) => {
      repairFiles(d, f, r);
      const pending: Repairs = { done: r.done, audit: [] };
      await tx.commit(await repairChange(ca, tx, f, signing, now, pending));
      r.audit.push(...pending.audit);
    });
  } finally {
    await ca.store.audit(r.audit);
  }
  return r.done;
}

function repairFiles(d: DirStore, f: Diagnosis, r: Repairs): void {
  const tail = f.indexTail;
  let cut = false;
  let added: ParsedCertificate[] = [];
  repairDirectory(d, {
    tmpFiles: f.tmpFiles,
    index: tail === undefined && !f.orphans.length ? undefined : (text) => {
      const short = tail === undefined ? null : cutIndexTail(text, tail);
      cut = short !== null;
      const rec = recordOrphans(short ?? text, f.orphans.map((o) => o.cert));
      added = rec.added;
      return cut || added.length ? rec.text : null;
    },
    meta: f.badMetaLines ? cleanMeta : undefined,
  });
  // in the order the repairs are told: temporary files, index.txt's half line, index.meta, the recorded certificates
  for (const t of f.tmpFiles) r.done.push(`removed ${t}`);
  if (cut) {
    r.done.push(`removed the half line ${JSON.stringify(tail!.slice(0, 40))} at the end of index.txt`);
    r.audit.push({ command: "doctor", action: "index-tail", line: tail!.slice(0, 200), outcome: "ok" });
  }
  if (f.badMetaLines) {
    r.done.push(`removed ${f.badMetaLines} line(s) of index.meta that did not parse`);
    r.audit.push({ command: "doctor", action: "index-meta", removed: f.badMetaLines, outcome: "ok" });
  }
  for (const c of added) {
    r.done.push(`recorded ${c.serial} (${formatDn(c.subject)}) in index.txt`);
    r.audit.push({ command: "doctor", action: "record", serial: c.serial, subject: formatDn(c.subject), outcome: "ok" });
  }
}

/** The one commit of a repair (after the directory's own repairs: tx reads the repaired index). */
async function repairChange(ca: Authority, tx: StoreTx, f: Diagnosis, signing: SigningAuthority | null, now: Date, r: Repairs): Promise<Change> {
  let index = await tx.indexText();
  let change: Change = {};
  if (f.drops.length) {
    // re-apply revocations that crl.pem (signed by this CA) proves and the index lost
    const cur = await readCurrentCrl(ca, tx);
    const { update, left } = restoreRevocations(parseIndex(index.toString("utf8")), cur && cur.signedByCa ? parseCrl(cur.der).revoked : [], f.drops);
    if (update.length) {
      index = applyIndexUpdates(index, update);
      change = { update };
      for (const e of update) {
        r.done.push(`re-applied the revocation of ${e.serial} from crl.pem to index.txt`);
        r.audit.push({ command: "doctor", action: "restore-revocation", serial: e.serial, outcome: "ok" });
      }
    }
    if (left) r.done.push(`${left} revocation(s) of crl.pem have no index line to re-apply them to: restore index.txt from a backup (the CRL is left as it is)`);
  }
  if (f.crlNumberFix !== undefined) {
    change.crlNumber = f.crlNumberFix;
    r.done.push(`advanced crlnumber to ${f.crlNumberFix.toString(16).toUpperCase()}, above crl.pem's number`);
    r.audit.push({ command: "doctor", action: "crlnumber", crlNumber: Number(f.crlNumberFix), outcome: "ok" });
  }
  const docs: DocWrite[] = [];
  if (signing) change = await resignInto(ca, tx, signing, index, change, now, r);
  else if (f.chainStale) {
    const want = await expectedCrlChain(ca, tx);
    if (want !== null) {
      docs.push({ name: DOC.crlChain, data: want });
      r.done.push(`rewrote ${docWhere(ca.store, DOC.crlChain)} from crl.pem and parent-crl.pem: reload nginx`);
      r.audit.push({ command: "doctor", action: "crl-chain", outcome: "ok" });
    }
  }
  docs.push(...(await derivedRepairs(ca, tx, f, parseIndex(index.toString("utf8")), now, r)));
  return { ...change, docs: [...(change.docs ?? []), ...docs] };
}

/** The re-signed CRL added to the change (its number: crlnumber as the change leaves it); refused (CRL_SHRINK) when it would drop a live revocation. */
async function resignInto(ca: Authority, tx: StoreTx, signing: SigningAuthority, index: Buffer, change: Change, now: Date, r: Repairs): Promise<Change> {
  try {
    await assertNoLiveDrops(ca, tx, index, now);
  } catch (e) {
    if (!(e instanceof PkiError) || e.code !== "CRL_SHRINK") throw e;
    r.done.push(`CRL not re-signed: ${e.message}`);
    return change;
  }
  const crl = await buildCrl(signing, index, ca.settings.crlDays, now, change.crlNumber ?? (await nextCrlNumber(tx)));
  r.done.push(`re-signed ${docWhere(ca.store, DOC.crl)} (number ${crl.crlNumber}, next update ${crl.nextUpdate.toISOString()}): reload nginx`);
  r.audit.push({ command: "doctor", action: "crl", crlNumber: Number(crl.crlNumber), outcome: "ok" });
  return crlChange(ca, tx, crl, true, change);
}

/** The allow-list (when turned on) and the bundle, rebuilt from the repaired index. */
async function derivedRepairs(ca: Authority, tx: StoreTx, f: Diagnosis, index: ReturnType<typeof parseIndex>, now: Date, r: Repairs): Promise<DocWrite[]> {
  const docs: DocWrite[] = [];
  const allow = readAllowListSetting(ca);
  if ((f.allowStale || f.orphans.length) && allow !== false) {
    docs.push({ name: DOC.allowMap, data: await buildAllowMap(ca, index, allow, now, tx) });
    r.done.push(`rewrote ${docWhere(ca.store, DOC.allowMap)}: reload nginx`);
    r.audit.push({ command: "doctor", action: "allow-list", outcome: "ok" });
  }
  if (f.bundleStale) {
    const b = await buildBundle(ca, index, readBundleSettings(ca).includeIssued, now, tx);
    docs.push({ name: DOC.bundle, data: b.text });
    r.done.push(`rewrote ${docWhere(ca.store, DOC.bundle)} (${b.count} certificate(s)): reload nginx`);
    r.audit.push({ command: "doctor", action: "bundle", certificates: b.count, outcome: "ok" });
  }
  return docs;
}
