/**
 * pki doctor: check the CA's health; exit 1 when something needs action.
 *
 * Checks (each ok, warn or fail):
 *   ca-certificate  expired or expiring within 90 days: fail
 *   crl             missing, unreadable, not signed by the CA, expired or
 *                   expiring within a day, or not listing exactly the revoked
 *                   certificates of the index: fail (nginx refuses every
 *                   client once its CRL has expired)
 *   key-modes       private/ or a key file readable by group or others: fail
 *   index           index lines without certs/<SERIAL>.pem, or certificate
 *                   files without an index line: fail
 *   bundle          missing, without the CA, or (when it lists issued
 *                   certificates) older than the last revocation or listing a
 *                   revoked or expired one: fail
 *   bundle-size     the CA-names list nginx sends for the bundle (2 + the
 *                   DER subject length per certificate) over 65,535 bytes:
 *                   fail (every handshake fails); over 75% of it: warn
 *   allow-list      when pki.json turns it on: nginx-allow.map missing or
 *                   not listing exactly the valid certificates: fail
 *   parent, parent-crl, crl-chain (an issuing CA, ca/parent.ts): parent.crt
 *                   signs ca.crt; the parent's CRL is installed, does not
 *                   revoke this CA, and is not past or near its nextUpdate
 *                   (the message names the command to run on the root);
 *                   crl-chain.pem holds the current crl.pem + parent-crl.pem
 *   temp-files      leftover .*.tmp files of a killed process: warn
 *   lock            a .lock left by a dead process: warn
 *   ca-key          (CA key on a PKCS#11 token only) the token is reachable,
 *                   the PIN is accepted, the key is there, its public half
 *                   is ca.crt's and a test signature verifies with ca.crt:
 *                   fail otherwise; warn when no PIN source is given
 *
 * --repair, under the lock (which also takes over a stale lock), fixes what
 * is safe: it records each certs/<SERIAL>.pem that this CA signed but that
 * has no index line (status V, its notAfter, its subject; profile and name
 * stay in index.meta when the issuing run wrote them there), so it can be
 * listed and revoked (see the write-path comment in src/ca/authority.ts); a
 * file that is not a certificate of this CA is reported and never deleted.
 * It removes temporary files of dead processes, regenerates a bundle that
 * lists issued certificates, and re-signs a missing, expired, expiring or
 * out-of-step CRL when a passphrase source is given (or the key is
 * unencrypted). It never changes key modes: `chmod 600` is yours to run.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatCrlNumber } from "../core/crl.js";
import { compareCrlWithIndex, differingRevocations } from "../core/crl-match.js";
import { parseCrl } from "../core/crl-parse.js";
import * as der from "../core/der.js";
import { PkiError } from "../core/errors.js";
import { formatIndex, parseIndex, parseLine, type IndexEntry } from "../core/index-format.js";
import { formatDn, onelineDn } from "../core/names.js";
import { parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks } from "../core/pem.js";
import { keyAccess, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { caKeyUri, issuedBy, openAuthority, openSigningAuthority, type Authority } from "../ca/authority.js";
import { pinFromSources } from "../ca/signer.js";
import { parsePkcs11Uri } from "../core/pkcs11-uri.js";
import { randomBytes, verifySignature } from "../crypto/keys.js";
import { buildAllowMap, buildBundle, CLOCK_SKEW_MS, liveDrops, nextCrlNumber, readAllowListSetting, readBundleSettings, readCurrentCrl, refreshCrl, type LiveDrop } from "../ca/revocation.js";
import { examineParent, repairCrlChain } from "../ca/parent.js";
import { CA_NAMES_LIMIT, caNamesListSize } from "../core/allow-map.js";
import { TEMP_FILE, writeFilesAtomic } from "../store/atomic.js";
import { CaDir, MODE } from "../store/ca-dir.js";
import { dirOf } from "../store/dir-store.js";
import { DOC } from "../store/store.js";
import { alive, breakLock, LOCK_FILE, lockState, type LockState } from "../store/lock.js";
import { usage } from "../core/errors.js";

interface Opts {
  /** --key: the CA key on a PKCS#11 token (pkcs11: URI) */
  key?: string;
  repair?: boolean;
  breakLock?: boolean;
}

export type Status = "ok" | "warn" | "fail";
export interface Check {
  name: string;
  status: Status;
  message: string;
}

const DAY = 86_400_000;
/** SERIAL<TAB>profile<TAB>name-or-"-" (core/index-format formatMeta) */
const META_LINE = /^[0-9A-F]+\t[a-z0-9][a-z0-9_-]*\t[^\t]+$/;
const TMP = TEMP_FILE;

interface Findings {
  checks: Check[];
  orphans: Array<{ file: string; cert: ParsedCertificate }>;
  tmpFiles: string[];
  crlStale: boolean;
  bundleStale: boolean;
  chainStale?: boolean;
  allowStale: boolean;
  /** live revocations of crl.pem that index.txt lost (an older index restored) */
  drops: LiveDrop[];
  /** crlnumber is not above crl.pem's number: set it to this */
  crlNumberFix?: bigint;
  lock?: LockState;
  /** index.meta lines that do not parse (a half line of an interrupted append) */
  badMetaLines: number;
  /** a last index.txt line without its newline that does not parse */
  indexTail?: string;
}

const days = (ms: number) => Math.floor(ms / DAY);

function readCertFile(p: string): ParsedCertificate | null {
  try {
    const b = parsePemBlocks(fs.readFileSync(p, "utf8")).find((x) => x.label === "CERTIFICATE");
    return b ? parseCertificate(b.der) : null;
  } catch {
    return null;
  }
}

function listDir(d: string): string[] {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}

/** The CA directory behind the authority: doctor's checks are of a directory (temporary files, the lock, modes). */
function dirOfCa(ca: Authority): CaDir {
  const d = dirOf(ca.store);
  if (!d) throw usage(`pki doctor checks a CA directory (files, modes, the lock); ${ca.store.location} is a database, which has none: use \`pki status\` for what expires, or \`pki store export --to <dir>\` and run doctor on that copy`);
  return d.dir;
}

async function examine(ca: Authority, now: Date): Promise<Findings> {
  const store = dirOfCa(ca);
  const checks: Check[] = [];
  const f: Findings = { checks, orphans: [], tmpFiles: [], crlStale: false, bundleStale: false, allowStale: false, drops: [], badMetaLines: 0 };
  const add = (name: string, status: Status, message: string) => checks.push({ name, status, message });

  // --- the CA certificate
  const left = ca.cert.notAfter.getTime() - now.getTime();
  if (left <= 0) add("ca-certificate", "fail", `the CA certificate expired on ${ca.cert.notAfter.toISOString()}: every certificate it issued is now refused; make a new CA`);
  else if (left <= 90 * DAY) add("ca-certificate", "fail", `the CA certificate expires on ${ca.cert.notAfter.toISOString()} (in ${days(left)} days): plan its replacement now`);
  else add("ca-certificate", "ok", `valid until ${ca.cert.notAfter.toISOString()} (${days(left)} days)`);

  // --- the index (needed by the CRL and bundle checks)
  let index: IndexEntry[] | null = null;
  let indexError = "";
  let indexText = "";
  try {
    indexText = store.readIndexText();
    // a last line without its newline that does not parse: the half line of an interrupted write
    if (indexText && !indexText.endsWith("\n")) {
      const cut = indexText.lastIndexOf("\n") + 1;
      try {
        parseLine(indexText.slice(cut));
      } catch {
        f.indexTail = indexText.slice(cut);
        indexText = indexText.slice(0, cut);
      }
    }
    index = parseIndex(indexText);
  } catch (e) {
    indexError = (e as Error).message;
  }

  // --- the CRL
  try {
    const cur = await readCurrentCrl(ca);
    if (!cur) {
      f.crlStale = true;
      add("crl", "fail", `${store.crlPath} is missing: nginx cannot start with ssl_crl; run \`pki crl\``);
    } else if (!cur.signedByCa) {
      f.crlStale = true;
      add("crl", "fail", `${store.crlPath} is not signed by this CA's key: run \`pki crl\``);
    } else {
      const next = cur.info.nextUpdate;
      f.drops = index ? await liveDrops(ca, ca.store, indexText, now) : [];
      const missing = index ? differingRevocations(compareCrlWithIndex(indexText, cur.info.revokedDer)) : 0;
      let number: bigint | null = null;
      try {
        number = await nextCrlNumber(ca.store);
      } catch {
        number = null;
      }
      if (cur.info.crlNumber !== undefined && number !== null && number <= cur.info.crlNumber) {
        // the next CRL would reuse a published number (RFC 5280 5.2.3): a crash between the CRL and its number
        f.crlNumberFix = cur.info.crlNumber + 1n;
        add("crl-number", "fail", `crlnumber (${number.toString(16).toUpperCase()}) is not above the number of crl.pem (${cur.info.crlNumber.toString(16).toUpperCase()}): the next CRL would reuse a number; \`pki doctor --repair\` advances it`);
      }
      if (f.drops.length) {
        add("crl", "fail", `crl.pem lists ${f.drops.length} revoked certificate(s) that have not expired but index.txt does not mark revoked (${f.drops.slice(0, 5).map((d) => d.serial).join(", ")}${f.drops.length > 5 ? ", ..." : ""}): index.txt is older than the CRL (restored from a backup?); \`pki doctor --repair\` re-applies those revocations from the signed CRL`);
      } else if (cur.info.thisUpdate.getTime() > now.getTime() + CLOCK_SKEW_MS) {
        f.crlStale = true;
        add("crl", "fail", `the CRL's thisUpdate ${cur.info.thisUpdate.toISOString()} is in the future (a clock jump?): nginx refuses every client ("CRL is not yet valid"); run \`pki crl\` and reload nginx`);
      } else if (!next || next.getTime() <= now.getTime()) {
        f.crlStale = true;
        add("crl", "fail", `the CRL expired${next ? ` on ${next.toISOString()}` : " (no nextUpdate)"}: nginx refuses every client certificate until \`pki crl\` and a reload`);
      } else if (next.getTime() - now.getTime() <= DAY) {
        f.crlStale = true;
        add("crl", "fail", `the CRL expires on ${next.toISOString()}, within a day: run \`pki crl\` and reload nginx; is the pki-crl timer (or cron job) running?`);
      } else if (missing !== 0) {
        f.crlStale = true;
        add("crl", "fail", `the CRL is out of step with index.txt (${missing} revocation(s) differ): run \`pki crl\` and reload nginx`);
      } else {
        add("crl", "ok", `number ${cur.info.crlNumber ?? "?"}, ${cur.info.revoked} revoked, next update ${next.toISOString()} (in ${days(next.getTime() - now.getTime())} days)`);
      }
    }
  } catch (e) {
    f.crlStale = true;
    add("crl", "fail", e instanceof PkiError ? `${e.message}: run \`pki crl\`` : String(e));
  }

  // --- an issuing CA: parent.crt, the parent's CRL (fails near its nextUpdate, naming the command for the root), crl-chain.pem
  const up = await examineParent(ca, now);
  checks.push(...up.checks);
  f.chainStale = up.chainStale;

  // --- key modes
  const open: string[] = [];
  const mode = (p: string) => {
    try {
      return fs.statSync(p).mode & 0o777;
    } catch {
      return null;
    }
  };
  const privDir = store.p("private");
  const dm = mode(privDir);
  if (dm !== null && dm & 0o077) open.push(`${privDir}/ (${dm.toString(8).padStart(4, "0")})`);
  for (const n of listDir(privDir)) {
    if (!n.endsWith(".key")) continue;
    const m = mode(path.join(privDir, n));
    if (m !== null && m & 0o077) open.push(`${path.join(privDir, n)} (${m.toString(8).padStart(4, "0")})`);
  }
  for (const n of listDir(store.p("issued"))) {
    if (!n.endsWith(".p12")) continue;
    const m = mode(store.p("issued", n));
    if (m !== null && m & 0o077) open.push(`${store.p("issued", n)} (${m.toString(8).padStart(4, "0")})`);
  }
  if (open.length) add("key-modes", "fail", `readable by group or others: ${open.join(", ")}; run chmod 700 on private/ and chmod 600 on each key`);
  else add("key-modes", "ok", "private/ is 0700 and every key 0600 or stricter");

  // --- index and certs/
  let metaText = "";
  try {
    metaText = fs.readFileSync(store.metaPath, "utf8");
  } catch {
    metaText = "";
  }
  const metaLines = metaText.split("\n");
  if (metaLines[metaLines.length - 1] === "") metaLines.pop();
  f.badMetaLines = metaLines.filter((l) => !META_LINE.test(l)).length;
  if (!index) {
    add("index", "fail", indexError);
  } else {
    const files = new Set(listDir(store.p("certs")).filter((n) => /^[0-9A-F]+\.pem$/.test(n)).map((n) => n.slice(0, -4)));
    const inIndex = new Set(index.map((e) => e.serial));
    const noFile = index.filter((e) => !files.has(e.serial)).map((e) => e.serial);
    const foreign: string[] = [];
    for (const s of files) {
      if (inIndex.has(s)) continue;
      const file = store.certPath(s);
      const cert = readCertFile(file);
      if (cert && cert.serial === s && issuedBy(ca, cert)) f.orphans.push({ file, cert });
      else foreign.push(file);
    }
    const problems: string[] = [];
    const seen = new Set<string>();
    const dups = new Set<string>();
    for (const e of index) (seen.has(e.serial) ? dups : seen).add(e.serial);
    if (dups.size) problems.push(`${dups.size} serial(s) on more than one index line (${[...dups].slice(0, 5).join(", ")}): two certificates under one serial break revocation (RFC 5280 4.1.2.2); revoke the certificates concerned and edit index.txt by hand`);
    if (f.badMetaLines) problems.push(`index.meta has ${f.badMetaLines} line(s) that do not parse (half lines of an interrupted append; names and profiles of those certificates are unknown): \`pki doctor --repair\` removes them`);
    if (f.indexTail !== undefined) problems.push(`index.txt ends in a half line ${JSON.stringify(f.indexTail.slice(0, 40))} (an interrupted write): \`pki doctor --repair\` removes it`);
    if (f.orphans.length) problems.push(`${f.orphans.length} certificate(s) issued by this CA but missing from index.txt (${f.orphans.map((o) => o.cert.serial).join(", ")}; a run was interrupted): \`pki doctor --repair\` records them`);
    if (noFile.length) problems.push(`${noFile.length} index line(s) without their certs/<SERIAL>.pem (${noFile.slice(0, 5).join(", ")}${noFile.length > 5 ? ", ..." : ""}): restore them from a backup`);
    if (foreign.length) problems.push(`${foreign.length} file(s) in certs/ that are not certificates of this CA (${foreign.join(", ")}): move them away`);
    if (problems.length) add("index", "fail", problems.join("; "));
    else add("index", "ok", `${index.length} certificate(s), each with its file in certs/`);
  }

  // --- the bundle
  const setting = readBundleSettings(ca).includeIssued;
  let bundleText: string | null = null;
  try {
    bundleText = fs.readFileSync(store.bundlePath, "utf8");
  } catch {
    bundleText = null;
  }
  if (bundleText === null) {
    f.bundleStale = true;
    add("bundle", "fail", `${store.bundlePath} is missing: nginx's ssl_client_certificate needs it; run \`pki bundle\``);
  } else {
    const key = (d: Uint8Array) => Buffer.from(d).toString("base64");
    let have: string[] = [];
    try {
      have = parsePemBlocks(bundleText).filter((b) => b.label === "CERTIFICATE").map((b) => key(b.der));
    } catch {
      have = [];
    }
    const caKey = key(ca.cert.der);
    if (!have.includes(caKey)) {
      f.bundleStale = true;
      add("bundle", "fail", `${store.bundlePath} does not hold this CA's certificate: run \`pki bundle\``);
    } else if (have.length > 1 || setting !== false) {
      // it lists issued certificates: it must follow the revocations
      const lastRevocation = Math.max(0, ...(index ?? []).filter((e) => e.status === "R" && e.revokedAt).map((e) => e.revokedAt!.getTime()));
      const mtime = fs.statSync(store.bundlePath).mtimeMs;
      const expected = index ? new Set(parsePemBlocks((await buildBundle(ca, index, setting === false ? true : setting, now)).text).map((b) => key(b.der))) : null;
      const extra = expected ? have.filter((k) => !expected.has(k)).length : 0;
      const lacking = expected ? [...expected].filter((k) => !have.includes(k)).length : 0;
      if (mtime < lastRevocation || extra > 0) {
        f.bundleStale = true;
        const why = mtime < lastRevocation ? `is older than the last revocation (${new Date(lastRevocation).toISOString()})` : `lists ${extra} certificate(s) that are revoked, expired or unknown to the index`;
        add("bundle", "fail", `${store.bundlePath} ${why}: run \`pki bundle --include-issued${typeof setting === "string" ? " " + setting : ""}\` and reload nginx`);
      } else if (lacking > 0) {
        f.bundleStale = true;
        add("bundle", "warn", `${store.bundlePath} lacks ${lacking} valid certificate(s) issued since it was written: run \`pki bundle --include-issued${typeof setting === "string" ? " " + setting : ""}\``);
      } else {
        add("bundle", "ok", `the CA and ${have.length - 1} issued certificate(s), current`);
      }
    } else {
      add("bundle", "ok", "the CA certificate");
    }
  }

  // --- what nginx must send for the bundle: the CA-names list has a 16-bit length
  if (bundleText !== null) {
    let lengths: number[] = [];
    try {
      lengths = parsePemBlocks(bundleText)
        .filter((b) => b.label === "CERTIFICATE")
        .map((b) => parseCertificate(b.der).subjectRaw.length);
    } catch {
      lengths = [];
    }
    const size = caNamesListSize(lengths);
    const fix = "keep only the CA in it (`pki bundle --no-include-issued`) and let `pki nginx-config --allow-list` say which clients may connect";
    if (size > CA_NAMES_LIMIT) {
      add("bundle-size", "fail", `${store.bundlePath} makes nginx send a ${size}-byte list of CA names (${lengths.length} certificates); over ${CA_NAMES_LIMIT} bytes every TLS handshake fails: ${fix}`);
    } else if (size > CA_NAMES_LIMIT * 0.75) {
      add("bundle-size", "warn", `${store.bundlePath} makes nginx send ${size} of at most ${CA_NAMES_LIMIT} bytes of CA names (${lengths.length} certificates); past the limit every handshake fails: ${fix}`);
    } else {
      add("bundle-size", "ok", `${size} bytes of CA names per handshake (limit ${CA_NAMES_LIMIT})`);
    }
  }

  // --- the nginx allow-list map (when turned on)
  const allow = readAllowListSetting(ca);
  if (allow !== false) {
    let have: string | null = null;
    try {
      have = fs.readFileSync(store.allowMapPath, "utf8");
    } catch {
      have = null;
    }
    if (have === null) {
      f.allowStale = true;
      add("allow-list", "fail", `${store.allowMapPath} is missing (pki.json turns the allow-list on): nginx will not start; \`pki doctor --repair\` rewrites it`);
    } else if (index && have !== (await buildAllowMap(ca, index, allow, now))) {
      f.allowStale = true;
      add("allow-list", "fail", `${store.allowMapPath} does not list exactly the valid certificates${typeof allow === "string" ? ` of profile ${allow}` : ""}: \`pki doctor --repair\` rewrites it; then reload nginx`);
    } else {
      add("allow-list", "ok", `${store.allowMapPath} is current`);
    }
  }

  // --- leftovers of killed processes
  for (const d of [store.dir, store.p("certs"), store.p("issued"), privDir]) {
    for (const n of listDir(d)) {
      const m = TMP.exec(n);
      if (m && !(Number(m[1]) !== process.pid && alive(Number(m[1])))) f.tmpFiles.push(path.join(d, n));
    }
  }
  if (f.tmpFiles.length) add("temp-files", "warn", `${f.tmpFiles.length} temporary file(s) left by an interrupted run (${f.tmpFiles.map((p) => path.relative(store.dir, p)).join(", ")}): \`pki doctor --repair\` removes them`);
  else add("temp-files", "ok", "no leftover temporary files");

  const lockPath = path.join(store.dir, LOCK_FILE);
  const lock = lockState(store.dir);
  f.lock = lock;
  if (lock.kind === "none") add("lock", "ok", "not locked");
  else if (lock.kind === "held") add("lock", "ok", `locked by running pid ${lock.holder.pid} since ${lock.holder.since}`);
  else if (lock.kind === "foreign") add("lock", "warn", `locked by pid ${lock.holder.pid} on another host, ${lock.holder.host}, since ${lock.holder.since}: pki cannot see whether it still runs; if it is gone, \`pki doctor --break-lock\` removes the lock`);
  else if (lock.kind === "dead") add("lock", "warn", `${lockPath} was left by a process that is gone (pid ${lock.holder.pid}): the next pki command takes it over; \`pki doctor --repair\` removes it`);
  else add("lock", "warn", `${lockPath} is ${lock.what}: the next pki command removes it; \`pki doctor --repair\` removes it now`);
  return f;
}

/**
 * The token check: open the key the way a signing command does (never
 * prompting), then sign 32 random bytes and verify them with ca.crt's key.
 */
async function tokenCheck(ctx: Context, ca: Authority, keyUri: string | undefined): Promise<Check | null> {
  const uri = caKeyUri(ca, keyUri);
  if (uri === undefined) return null;
  const name = "ca-key";
  try {
    const u = parsePkcs11Uri(uri);
    if (pinFromSources(u, ctx.env) === undefined) {
      return { name, status: "warn", message: "the CA key is on a PKCS#11 token; give its PIN (pin-source in the URI or PKI_PKCS11_PIN) so that doctor can check it" };
    }
    const signing = await openSigningAuthority(ca, keyAccess(ctx, keyUri, { prompt: false }));
    try {
      const challenge = randomBytes(32);
      const sig = await signing.caSigner.sign(challenge);
      const ok = verifySignature(ca.cert.spki.raw, oidOf(signing.algorithm.der), challenge, sig);
      if (!ok) return { name, status: "fail", message: `${signing.caSigner.description}: a test signature does not verify with ca.crt's key` };
      return { name, status: "ok", message: `${signing.caSigner.description} is reachable, matches ca.crt and signs` };
    } finally {
      signing.caSigner.close?.();
    }
  } catch (e) {
    return { name, status: "fail", message: e instanceof PkiError ? e.message : String(e) };
  }
}

/** The OID inside a DER AlgorithmIdentifier (SEQUENCE { OID, ... }). */
function oidOf(alg: Uint8Array): string {
  return der.readOid(alg, der.children(alg, der.read(alg))[0]!);
}

async function repair(ctx: Context, ca: Authority, f: Findings, keyUri: string | undefined): Promise<string[]> {
  const store = dirOfCa(ca);
  const done: string[] = [];
  // decrypt before taking the lock; only when a passphrase source exists (never prompt from doctor)
  let signing: Awaited<ReturnType<typeof openSigningAuthority>> | null = null;
  if (f.crlStale || f.drops.length) {
    const uri = caKeyUri(ca, keyUri);
    if (uri !== undefined && pinFromSources(parsePkcs11Uri(uri), ctx.env) === undefined) {
      done.push("CRL not re-signed: no PIN source for the token (add pin-source to the key URI or set PKI_PKCS11_PIN)");
    } else if (uri === undefined && ca.settings.encrypted && ctx.passphraseFromSources() === undefined) {
      done.push("CRL not re-signed: no passphrase source (pass --passphrase-file or set PKI_PASSPHRASE_FILE)");
    } else {
      try {
        signing = await openSigningAuthority(ca, keyAccess(ctx, keyUri, { prompt: false }));
      } catch (e) {
        done.push(`CRL not re-signed: ${(e as Error).message}`);
      }
    }
  }
  if (f.lock?.kind === "foreign") {
    done.push(`nothing repaired: the CA directory is locked by pid ${f.lock.holder.pid} on ${f.lock.holder.host}; if that process is gone, \`pki doctor --break-lock\``);
    return done;
  }
  await ca.store.locked("doctor", async (tx) => {
    for (const t of f.tmpFiles) {
      fs.rmSync(t, { force: true });
      done.push(`removed ${path.relative(store.dir, t)}`);
    }
    let indexText = store.readIndexText();
    if (f.indexTail !== undefined && indexText.endsWith(f.indexTail)) {
      indexText = indexText.slice(0, indexText.length - f.indexTail.length);
      writeFilesAtomic([{ path: store.indexPath, data: indexText, mode: MODE.file }]);
      done.push(`removed the half line ${JSON.stringify(f.indexTail.slice(0, 40))} at the end of index.txt`);
      store.audit({ command: "doctor", action: "index-tail", line: f.indexTail.slice(0, 200), outcome: "ok" });
    }
    if (f.badMetaLines) {
      const text = fs.readFileSync(store.metaPath, "utf8");
      const keep = text.split("\n").filter((l) => l !== "" && META_LINE.test(l));
      writeFilesAtomic([{ path: store.metaPath, data: keep.map((l) => l + "\n").join(""), mode: MODE.file }]);
      done.push(`removed ${f.badMetaLines} line(s) of index.meta that did not parse`);
      store.audit({ command: "doctor", action: "index-meta", removed: f.badMetaLines, outcome: "ok" });
    }
    if (f.orphans.length) {
      const inIndex = new Set(parseIndex(indexText).map((e) => e.serial));
      const add = f.orphans.filter((o) => !inIndex.has(o.cert.serial));
      const lines = formatIndex(add.map((o) => ({ status: "V" as const, expires: o.cert.notAfter, serial: o.cert.serial, file: "unknown", subject: onelineDn(o.cert.subject) })));
      indexText = indexText + (indexText && !indexText.endsWith("\n") ? "\n" : "") + lines;
      writeFilesAtomic([{ path: store.indexPath, data: indexText, mode: MODE.file }]);
      for (const o of add) {
        done.push(`recorded ${o.cert.serial} (${formatDn(o.cert.subject)}) in index.txt`);
        store.audit({ command: "doctor", action: "record", serial: o.cert.serial, subject: formatDn(o.cert.subject), outcome: "ok" });
      }
    }
    if (f.drops.length) {
      // re-apply revocations that crl.pem (signed by this CA) proves and the index lost
      const cur = await readCurrentCrl(ca, tx);
      const entries = cur && cur.signedByCa ? new Map(parseCrl(cur.der).revoked.map((e) => [e.serial.replace(/^0+(?=.)/, ""), e])) : new Map();
      const idx = parseIndex(indexText);
      const restored: string[] = [];
      for (const d of f.drops) {
        const e = entries.get(d.serial.replace(/^0+(?=.)/, ""));
        const i = idx.findIndex((x) => x.serial === d.serial);
        if (!e || i < 0 || idx[i]!.status === "R") continue;
        idx[i] = { ...idx[i]!, status: "R", revokedAt: e.revokedAt, reason: e.reason, holdInstruction: e.holdInstruction, invalidityDate: e.invalidityDate };
        restored.push(d.serial);
      }
      if (restored.length) {
        indexText = formatIndex(idx);
        writeFilesAtomic([{ path: store.indexPath, data: indexText, mode: MODE.file }]);
        for (const serial of restored) {
          done.push(`re-applied the revocation of ${serial} from crl.pem to index.txt`);
          store.audit({ command: "doctor", action: "restore-revocation", serial, outcome: "ok" });
        }
      }
      const left = f.drops.length - restored.length;
      if (left) done.push(`${left} revocation(s) of crl.pem have no index line to re-apply them to: restore index.txt from a backup (the CRL is left as it is)`);
    }
    if (f.crlNumberFix !== undefined) {
      writeFilesAtomic([{ path: store.crlNumberPath, data: formatCrlNumber(f.crlNumberFix), mode: MODE.file }]);
      done.push(`advanced crlnumber to ${f.crlNumberFix.toString(16).toUpperCase()}, above crl.pem's number`);
      store.audit({ command: "doctor", action: "crlnumber", crlNumber: Number(f.crlNumberFix), outcome: "ok" });
    }
    if (signing) {
      let crl;
      try {
        crl = await refreshCrl(signing, tx, ctx.now(), undefined, { index: indexText });
      } catch (e) {
        if (!(e instanceof PkiError) || e.code !== "CRL_SHRINK") throw e;
        done.push(`CRL not re-signed: ${e.message}`);
        crl = null;
      }
      if (crl) {
      done.push(`re-signed ${crl.path} (number ${crl.crlNumber}, next update ${crl.nextUpdate.toISOString()}): reload nginx`);
      store.audit({ command: "doctor", action: "crl", crlNumber: Number(crl.crlNumber), outcome: "ok" });
      }
    }
    if (f.chainStale && !signing && (await repairCrlChain(ca, tx))) {
      done.push(`rewrote ${store.crlChainPath} from crl.pem and parent-crl.pem: reload nginx`);
      store.audit({ command: "doctor", action: "crl-chain", outcome: "ok" });
    }
    if (f.allowStale || f.orphans.length) {
      const allow = readAllowListSetting(ca);
      if (allow !== false) {
        await tx.commit({ docs: [{ name: DOC.allowMap, data: await buildAllowMap(ca, parseIndex(indexText), allow, ctx.now(), tx) }] });
        done.push(`rewrote ${store.allowMapPath}: reload nginx`);
        store.audit({ command: "doctor", action: "allow-list", outcome: "ok" });
      }
    }
    if (f.bundleStale) {
      const s = readBundleSettings(ca).includeIssued;
      const b = await buildBundle(ca, parseIndex(indexText), s, ctx.now(), tx);
      await tx.commit({ docs: [{ name: DOC.bundle, data: b.text }] });
      done.push(`rewrote ${store.bundlePath} (${b.count} certificate(s)): reload nginx`);
      store.audit({ command: "doctor", action: "bundle", certificates: b.count, outcome: "ok" });
    }
  });
  return done;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const ca = await openAuthority(await ctx.openStore());
  const store = dirOfCa(ca);
  let repaired: string[] | undefined;
  if (o.breakLock) {
    // explicit: a lock of another host (pki cannot see its process), or a strange or dead one
    const was = breakLock(store.dir);
    const what = was.kind === "none" ? "there was no lock" : `removed the lock (${was.kind === "strange" ? was.what : `pid ${was.holder.pid} on ${was.holder.host} since ${was.holder.since}`})`;
    repaired = [what];
    if (was.kind !== "none") store.audit({ command: "doctor", action: "break-lock", ...(was.kind === "strange" ? { lock: was.what } : { pid: was.holder.pid, host: was.holder.host }), outcome: "ok" });
  }
  let f = await examine(ca, ctx.now());
  if (o.repair) {
    repaired = [...(repaired ?? []), ...(await repair(ctx, ca, f, o.key))];
    f = await examine(ca, ctx.now());
  }
  const checks = f.checks;
  const key = await tokenCheck(ctx, ca, o.key);
  if (key) checks.push(key);
  const failed = checks.filter((c) => c.status === "fail");
  const width = Math.max(...checks.map((c) => c.name.length));
  const text = checks.map((c) => `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.message}`).join("\n");
  const data: Record<string, unknown> = { checks };
  if (repaired) data.repaired = repaired;
  return {
    data,
    stdout: text,
    messages: repaired?.map((r) => `repair: ${r}`),
    failure: failed.length ? { code: "CA_INVALID", message: `${failed.length} check(s) failed: ${failed.map((c) => c.name).join(", ")}${o.repair ? "" : " (see above; `pki doctor --repair` fixes what is safe to fix)"}` } : undefined,
  };
}
