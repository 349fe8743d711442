/**
 * The CA at work: commit issuances and revocations to its store (opening
 * the CA and its signer is ca/open-ca.ts).
 *
 * Every change runs in the store's locked() (one read-decide-commit) and is
 * committed as one Change (store/store.ts): the store records a certificate
 * before it releases it, and advances the CRL number before a CRL that used
 * it is published. The directory store's write order, its crash safety and
 * the PKI_CRASH_AT failpoints are described in store/dir-store.ts.
 */
import { listSome, PkiError } from "../core/errors.js";
import { checkIssuedName } from "../core/issued-name.js";
import { assembleSigned, leafExtensions, type Extension, tbsCertificate, validity, type KeyKind } from "../core/certificate.js";
import { parseIndex, type IndexEntry, type Reason } from "../core/index-format.js";
import { applyIndexUpdates, appendIndexLines, entriesToRevoke, findSerialLine, markRevoked, revocationTime, SPLICE_LIMIT } from "../core/index-edit.js";
import { commonName, encodeName, formatDn, formatSan, onelineDn, type Rdn, type San } from "../core/names.js";
import { toPem } from "../core/pem.js";
import type { Profile } from "../core/profiles.js";
import { newSerial, serialHex } from "../core/serial.js";
import { sha256Hex, keyIdentifier, pooledRandom } from "../crypto/keys.js";
import { thenSign } from "./signer.js";
import type { FileWrite, StagedBatch, Staging } from "../store/atomic.js";
import { stageOutputs } from "../store/output.js";
import { withRecords, type CertRecord, type DocWrite, type StoreTx } from "../store/store.js";
import { derivedDocs } from "./revocation.js";
import { enforceConstraints } from "./parent.js";

// opening the CA lives in ca/open-ca.ts (shared with revocation.ts and parent.ts); re-exported for the callers of this module
export {
  authorityOf,
  caKeyUri,
  caPresent,
  docWhere,
  issuedBy,
  loadProfiles,
  noCa,
  openAuthority,
  openSigningAuthority,
  profileOf,
  readCaKeyPem,
  readCertificatePem,
  readDocText,
  settingsObject,
  signingAuthority,
  signingAuthorityAhead,
  type Authority,
  type KeyAccess,
  type SigningAuthority,
} from "./open-ca.js";
import type { Authority, SigningAuthority } from "./open-ca.js";


// ---------------------------------------------------------------- issuance

export interface IssueRequest {
  profile: Profile;
  subject: Rdn[];
  /** keep the request's own subject encoding when unchanged */
  subjectRaw?: Uint8Array;
  sans: San[];
  spki: Uint8Array;
  keyKind: KeyKind;
  days: number;
  /** `pki issue` name */
  name?: string;
  /**
   * the certificate's extensions, when they do not come from a leaf profile
   * (an issuing CA signed by this one: `pki init --parent`)
   */
  extensions?: Extension[];
  /**
   * what is released with the certificate (ca/issued.ts): documents of the
   * store (issued/<name>.crt, its chain, the key) and files in an --out-dir,
   * both written only once the certificate is recorded; `certPem` is filled
   * in by issue()
   */
  files?: (certPem: string, serial: string) => { docs: DocWrite[]; outputs: FileWrite[] } | Promise<{ docs: DocWrite[]; outputs: FileWrite[] }>;
}

export interface Issued {
  serial: string;
  pem: string;
  der: Uint8Array;
  subject: string;
  sans: string[];
  profile: string;
  notBefore: Date;
  notAfter: Date;
  capped: boolean;
  name?: string;
}

/**
 * A CA outside its validity does not issue (CA_EXPIRED): an expired CA would
 * otherwise sign leaves whose notAfter (capped at the CA's) lies before their
 * notBefore, and a CA that is not yet valid (a clock that jumped back) leaves
 * no relying party accepts.
 */
export function assertCaValid(ca: Authority, now: Date): void {
  const t = now.getTime();
  if (t >= ca.cert.notAfter.getTime()) {
    throw new PkiError("CA_EXPIRED", `the CA certificate expired on ${ca.cert.notAfter.toISOString()}: it cannot issue; make a new CA (pki init) and move the clients to it`);
  }
  if (t < ca.cert.notBefore.getTime()) {
    throw new PkiError("CA_EXPIRED", `the CA certificate is not valid before ${ca.cert.notBefore.toISOString()} (now ${now.toISOString()}): check the system clock`);
  }
}

/** Build and sign one certificate; synchronous when the signer is (the key file). */
export function buildCertificate(ca: SigningAuthority, req: IssueRequest, serial: Uint8Array, now: Date): Issued | Promise<Issued> {
  assertCaValid(ca, now);
  // a name outside the CA's name constraints is refused before anything is signed
  if (!req.extensions) enforceConstraints(ca, commonName(req.subject), req.sans);
  const v = validity({ now, days: req.days, caNotAfter: ca.cert.notAfter });
  const subject = req.subjectRaw ?? encodeName(req.subject);
  const tbs = tbsCertificate({
    serial,
    signatureAlgorithm: ca.algorithm.der,
    issuer: ca.cert.subjectRaw,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    subject,
    spki: req.spki,
    extensions: req.extensions ?? leafExtensions({
      profile: req.profile,
      keyKind: req.keyKind,
      sans: req.sans,
      subjectEmpty: req.subject.length === 0,
      subjectKeyId: keyIdentifier(req.spki),
      authorityKeyId: ca.keyId,
      urls: ca.settings,
    }),
  });
  return thenSign(ca.caSigner, tbs, (signature) => {
    const certDer = assembleSigned(tbs, ca.algorithm.der, signature);
    return {
      serial: serialHex(serial),
      pem: toPem("CERTIFICATE", certDer),
      der: certDer,
      subject: formatDn(req.subject),
      sans: req.sans.map(formatSan),
      profile: req.profile.name,
      notBefore: v.notBefore,
      notAfter: v.notAfter,
      capped: v.capped,
      name: req.name,
    };
  });
}

export interface IssueHooks {
  /** inside the lock, before anything is built: e.g. refuse a name that holds a valid certificate (`index()` parses the index on first use) */
  check?: (index: () => IndexEntry[], tx: StoreTx) => void | Promise<void>;
  /**
   * serials to mark revoked in the same index commit as the new certificates
   * (renew: the superseded one), so that a crash never leaves both or
   * neither; unknown or already revoked serials fail before anything is
   * written. The caller re-signs the CRL in `after`.
   */
  revoke?: ReadonlyArray<{ serial: string; reason: Reason }>;
  /**
   * like `revoke`, but decided under the lock from the index as it is then
   * (sign-csr --replace: the live certificates of a name), so that a
   * concurrent issuance under the same name is not missed
   */
  supersede?: (index: Buffer, tx: StoreTx) => ReadonlyArray<{ serial: string; reason: Reason }> | Promise<ReadonlyArray<{ serial: string; reason: Reason }>>;
  /** after the index is committed, still under the lock (CRL, bundle): commits through tx */
  after?: (tx: StoreTx) => void | Promise<void>;
  now?: () => Date;
  onProgress?: (done: number) => void;
}

/** Pairs signed between two turns of the event loop while their files are staged (~10 ms of signing). */
const YIELD_EVERY = 32;
/** Batches of at least this many certificates have the store write its copies as they are signed (StoreTx.prepare). */
const PREPARE_MIN = 64;

/**
 * Issue a batch under one lock: build and sign everything, write all files
 * (each atomic; all staged and fsync'd, on the thread pool, before the first
 * rename), then commit the index once.
 * All-or-nothing: a request that fails to build fails the whole batch before
 * anything is visible (files already staged are removed).
 */
export async function issue(ca: SigningAuthority, reqs: IssueRequest[], hooks: IssueHooks = {}): Promise<Issued[]> {
  assertCaValid(ca, (hooks.now ?? (() => new Date()))());
  // files in an --out-dir the user named: staged as each pair is signed (the
  // thread pool writes them while the next ones are signed), before the
  // commit (a directory that cannot take them fails the batch before anything
  // is recorded), released once the store's transaction is over: on
  // PostgreSQL its COMMIT is when locked() returns, and a certificate is
  // recorded before it is released
  const out: { staged?: StagedBatch; count: number; keys: boolean } = { count: 0, keys: false };
  let issued: Issued[];
  try {
    issued = await ca.store.locked("issue", (tx) => issueLocked(ca, reqs, hooks, tx, out));
  } catch (e) {
    if (!(e instanceof AfterCommitFailure)) {
      out.staged?.abort();
      throw e;
    }
    // the directory store's commit stood (only it raises AfterCommitFailure): recorded, so released, the
    // certificates are valid and their holders need their files
    let unreleased: string | undefined;
    try {
      out.staged?.commit(0, out.count);
    } catch (r) {
      unreleased = r instanceof PkiError ? r.message : String((r as Error)?.message ?? r);
    }
    throw e.report(unreleased);
  }
  try {
    out.staged?.commit(0, out.count);
  } catch (e) {
    throw releaseFailure(e, issued, out.keys);
  }
  return issued;
}

/**
 * The serials of the index and those drawn since (add()): a byte search of
 * the index per new serial for a few certificates, one set of every serial
 * for a batch.
 */
function takenSerials(buf: Buffer, count: number, entries: () => IndexEntry[]): { has(serial: string): boolean; add(serial: string): void } {
  const drawn = new Set<string>();
  let all: Set<string> | undefined;
  const whole = count > SPLICE_LIMIT;
  return {
    has: (serial) => drawn.has(serial) || (whole ? (all ??= new Set(entries().map((e) => e.serial))).has(serial) : findSerialLine(buf, serial) !== null),
    add: (serial) => void drawn.add(serial),
  };
}

/** issue() under the lock, in the store's transaction: everything but the release of the --out-dir files. */
async function issueLocked(ca: SigningAuthority, reqs: IssueRequest[], hooks: IssueHooks, tx: StoreTx, out: { staged?: StagedBatch; count: number; keys: boolean }): Promise<Issued[]> {
  const buf = await tx.indexText();
  // the index parsed whole only when a check or a batch needs every entry: one sign-csr in a CA of 100,000
  // valid certificates spent ~0.3 s (and ~40 MB) on that parse alone
  let parsed: IndexEntry[] | undefined;
  const entries = (): IndexEntry[] => (parsed ??= parseIndex(buf.toString("utf8")));
  await hooks.check?.(entries, tx);
  const taken = takenSerials(buf, reqs.length, entries);
  const random = pooledRandom();
  const now = (hooks.now ?? (() => new Date()))();
  const revokes = [...(hooks.revoke ?? []), ...((await hooks.supersede?.(buf, tx)) ?? [])];
  let update: IndexEntry[] = [];
  if (revokes.length) {
    const revokedAt = revocationTime(now);
    const olds = entriesToRevoke(buf, revokes.map((r) => r.serial), false);
    update = olds.map((e, i) => markRevoked(e, revokedAt, revokes[i]!.reason));
  }
  const issued: Issued[] = [];
  const add: CertRecord[] = [];
  const release: DocWrite[] = [];
  let outputs: Staging | undefined;
  try {
    for (const req of reqs) {
      const serial = newSerial(random, taken);
      const hex = serialHex(serial);
      taken.add(hex);
      const built = buildCertificate(ca, req, serial, now);
      const c = built instanceof Promise ? await built : built;
      issued.push(c);
      const record: CertRecord = { entry: { status: "V", expires: c.notAfter, serial: hex, file: "unknown", subject: onelineDn(req.subject) }, pem: c.pem, profile: req.profile.name, name: req.name };
      add.push(record);
      // a batch: the store writes its own copy now, while the next ones are signed
      if (reqs.length >= PREPARE_MIN) tx.prepare?.([record]);
      if (req.files) {
        const f = await req.files(c.pem, hex);
        release.push(...f.docs);
        if (f.outputs.length) {
          // expected: this pair's number of files for every request (a single sign-csr stays on the pool)
          (outputs ??= stageOutputs(ca.store, {}, reqs.length * f.outputs.length)).add(f.outputs);
          out.count += f.outputs.length;
          // private keys among them (mode 0600: a pair's .key, its .p12): lost with a file that is not released
          out.keys ||= f.outputs.some((w) => w.mode === 0o600);
        }
      }
      hooks.onProgress?.(issued.length);
      // let the staging's callbacks run (they start the next files on the thread pool)
      if (outputs && issued.length % YIELD_EVERY === 0) await new Promise(setImmediate);
    }
    out.staged = await outputs?.done();
  } catch (e) {
    await outputs?.abandon();
    throw e;
  }
  // a bundle that lists issued certificates, and the nginx allow-list,
  // must list the new ones too (and drop superseded ones): derived from
  // the index as this commit leaves it, written after the release
  let next: Buffer | undefined;
  const newIndex = () => (next ??= appendIndexLines(update.length ? applyIndexUpdates(buf, update) : buf, add.map((a) => a.entry)));
  const docs = await derivedDocs(ca, withRecords(tx, add), newIndex, now);
  try {
    await tx.commit({ add, update, release, docs });
  } catch (e) {
    // the directory store wrote index.txt, then failed on what follows it (issued/ files, the bundle): recorded
    if (e instanceof PkiError && e.details?.committedIndex) throw new AfterCommitFailure(e, issued, update);
    throw e;
  }
  // (no index handed over: parsing the new one cost a 100,000-line CA ~150 ms of every sign-csr)
  if (hooks.after) {
    try {
      await hooks.after(tx);
    } catch (e) {
      // PostgreSQL rolls the whole transaction back: the error stands as it is (and the store still sees its own
      // STORE_UNAVAILABLE, to close a connection that stopped answering instead of asking it to roll back)
      if (ca.store.kind !== "dir") throw e;
      throw new AfterCommitFailure(e, issued, update);
    }
  }
  return issued;
}

/**
 * The --out-dir files could not all be put in place after the index commit
 * (the directory made read-only half-way, a directory where a file goes):
 * the certificates are recorded and valid. With keys among the files (a
 * pair's .key), those not released are gone with their temporary files:
 * revoke and issue again. Certificates alone (sign-csr) are in the store.
 * Every serial goes in the JSON error's "committed" and the audit line.
 */
export function releaseFailure(e: unknown, issued: readonly Pick<Issued, "serial">[], keys: boolean): PkiError {
  const why = e instanceof PkiError ? e.message : String((e as Error)?.message ?? e);
  const serials = issued.map((c) => c.serial);
  const todo = keys
    ? `a certificate whose key file is not there serves nobody: revoke it (pki revoke <serial>...; --json lists every serial under "committed", as audit.log does) and issue it again`
    : `each certificate is valid and kept by the CA (certs/<serial>.pem in a CA directory; \`pki store export\` writes a database's out; --json lists every serial under "committed", as audit.log does)`;
  return new PkiError("IO_ERROR", `the index records ${serials.length} new certificate(s) (${listSome(serials, 3)}), but their files could not all be put in place: ${why}; ${todo}`, {
    cause: e,
    details: { committed: { issued: serials, revoked: [] } },
  });
}

/**
 * A failure once the directory store's index commit was made: in the
 * `after` hook (the CRL that publishes a --replace or a renewal), or in the
 * store's own commit past its commit point (issued/ files, the bundle:
 * details.committedIndex). On PostgreSQL the whole transaction is rolled
 * back instead: nothing happened, the error stands as it is (never wrapped).
 * Here the certificates are issued and the revocations recorded, and the
 * user must hear that, with what to run.
 */
class AfterCommitFailure extends Error {
  constructor(
    readonly failure: unknown,
    readonly issued: readonly Issued[],
    readonly revoked: readonly IndexEntry[],
  ) {
    super("after-commit failure");
  }

  /** `unreleased`: why the --out files could not be put in place either (the store keeps each certificate: `pki show <serial>`) */
  report(unreleased?: string): PkiError {
    const e = this.failure;
    const why = e instanceof PkiError ? e.message : `${(e as NodeJS.ErrnoException)?.code ?? ""} ${(e as Error)?.message ?? String(e)}`.trim();
    const issued = this.issued.map((c) => c.serial);
    const revoked = this.revoked.map((r) => r.serial);
    const done = `issued ${listSome(issued, 3)}${revoked.length ? ` and revoked ${listSome(revoked, 3)} (superseded)` : ""}`;
    // a failure inside the store's commit already says what to run; the CRL hook's needs pki crl
    const inner = e instanceof PkiError ? e.details?.committedIndex : undefined;
    const next = typeof inner === "string" ? inner : `publishing it failed: ${why}; fix that, then run \`pki crl\`: until then crl.pem does not list ${revoked.length === 1 ? "that revocation" : "those revocations"}`;
    return new PkiError(e instanceof PkiError ? e.code : "IO_ERROR", `the index records this change (${done}), but ${next}${unreleased ? `; the output files were not written either (${unreleased})` : ""}`, {
      cause: e,
      details: { committed: { issued, revoked } },
    });
  }
}

export function issuedJson(c: Issued): Record<string, unknown> {
  const sha = sha256Hex(c.der);
  return {
    serial: c.serial,
    subject: c.subject,
    san: c.sans,
    profile: c.profile,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    // one vocabulary (README "JSON vocabulary"): init says fingerprint, show fingerprints.sha256
    fingerprint: sha,
    fingerprints: { sha256: sha },
  };
}

/** A name for files: see core/issued-name.ts. */
export const checkName = checkIssuedName;
