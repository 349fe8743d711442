/**
 * Key pairs and their certificates in one step (`pki issue`): read the CA
 * once, decide in core/ (SAN rules, leafDays), check every name before any
 * key is made, generate the keys on the thread pool while the CA key is
 * decrypted, build the slow parts of each PKCS#12 (--p12) before the store's
 * lock is taken (#9), then commit the batch in one locked issuance.
 * All-or-nothing: any bad name fails the run before anything is written.
 */
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { applySanRules, withCn } from "../core/csr-policy.js";
import { checkIssuedName } from "../core/issued-name.js";
import { parseSanList, type Rdn, type San } from "../core/names.js";
import { leafDays, type Profile } from "../core/profiles.js";
import { encryptPrivateKey, generateKeyPairEncoded, keyKindOfType, loadPrivateKey, type KeyType } from "../crypto/keys.js";
import type { Pkcs12Format, PreparedPkcs12 } from "../crypto/pkcs12.js";
import { MAX_INPUT, readInputFile, readStdin } from "../store/ca-dir.js";
import { confineOutDir } from "../store/output.js";
import type { CaStore } from "../store/store.js";
import { issue, issuedJson, openAuthority, openSigningAuthority, profileOf, type Authority, type IssueRequest, type Issued, type KeyAccess, type SigningAuthority } from "./authority.js";
import { confinedPathsForAll, issuedWrites, pathsFor, refuseTakenNames } from "./issued.js";
import { chainPem, enforceConstraints, p12CaPem } from "./parent.js";
import { staleCrlWarning } from "./revocation.js";

/** What to issue: the options of `pki issue`, parsed. */
export interface IssuePairsRequest {
  profile: string;
  /** one name, or --names-from (a file, "-" for standard input: one name a line) */
  name?: string;
  namesFrom?: string;
  /** --cn; default: the name */
  cn?: string;
  /** --san, as given (parsed once the profile is known, in the order of the checks) */
  san?: string;
  keyType: KeyType;
  /** --days; default: the profile's, else pki.json's defaultDays, else 365 */
  days?: number;
  /** where the files go (default: the CA directory's issued/ and private/) */
  outDir?: string;
  /** --p12: also a PKCS#12 of each pair, in this format */
  p12?: Pkcs12Format;
}

/** A progress display (ui/progress.ts), handed in by the command. */
export interface ProgressLike {
  tick(): void;
  stop(): void;
}

export interface IssuePairsEnv {
  now: () => Date;
  /** how to reach the CA key */
  key: () => KeyAccess;
  /** the audit line's facts (profile, name or names), filled in as they are known */
  audit: Record<string, unknown>;
  /** the passphrase of the new keys (--key-passphrase-file) and of the PKCS#12 files: asked for before any slow work */
  secrets: () => Promise<{ keyPass?: string; p12Pass?: string }>;
  /** the CA key's passphrase will be prompted for: start the progress bar after the prompt */
  promptFirst: boolean;
  bar: (label: string, total: number, done: number) => Promise<ProgressLike>;
  spinner: <T>(label: string, on: boolean, fn: () => Promise<T>) => Promise<T>;
}

/** One name's plan: its subject and names, decided before any key is made. */
interface Plan {
  name: string;
  subject: Rdn[];
  sans: San[];
}

interface Pair {
  spki: Uint8Array;
  pkcs8Pem: string;
}

/** What an issuing run did: the command renders it. */
export interface IssuedPairs {
  profile: Profile;
  issued: Issued[];
  /** per pair: the JSON fields (README "JSON vocabulary") */
  certificates: Array<Record<string, unknown> & { name: string; serial: string; notAfter: string; cert: string; key: string; chain: string; p12: string | null }>;
  /** the new keys are encrypted (--key-passphrase-file) */
  keysEncrypted: boolean;
  /** a validity was capped at the CA's notAfter */
  cappedAt: Date | null;
  /** for stderr in both modes (a stale CRL) */
  warnings: string[];
}

/** --names-from: one name a line (blank lines and # comments skipped), each a valid issued name, none twice. */
export async function readNames(src: string): Promise<string[]> {
  const data = src === "-" ? await readStdin("the list of names", MAX_INPUT) : readInputFile(src, "names file");
  const where = src === "-" ? "standard input" : src;
  const lines = data.toString("utf8").split(/\r?\n/);
  const names: string[] = [];
  // the file's content, not the command line, is wrong: BAD_INPUT (exit 1), with its line
  const seen = new Map<string, number>();
  lines.forEach((raw, i) => {
    const n = raw.trim();
    if (n === "" || n.startsWith("#")) return;
    try {
      checkIssuedName(n);
    } catch (e) {
      // a name refused as an argument (USAGE) is bad input in a file; other refusals (UNSAFE_PATH) keep their code
      if (e instanceof PkiError) throw new PkiError(e.code === "USAGE" ? "BAD_INPUT" : e.code, `${where} line ${i + 1}: ${e.message}`, { exitCode: e.code === "USAGE" ? 1 : e.exitCode });
      throw e;
    }
    const first = seen.get(n);
    if (first !== undefined) throw new PkiError("BAD_INPUT", `${where} line ${i + 1}: the name "${n}" is already on line ${first}: one certificate a name`);
    seen.set(n, i + 1);
    names.push(n);
  });
  if (names.length === 0) throw new PkiError("BAD_INPUT", `${where} lists no names (one name a line)`);
  return names;
}

/** The names, their files checked (confined, regular or new), and the audit facts. */
async function namesOf(store: CaStore, r: IssuePairsRequest, audit: Record<string, unknown>): Promise<string[]> {
  if (r.outDir) confineOutDir(store, r.outDir);
  audit.profile = r.profile;
  if (r.name !== undefined) audit.name = r.name;
  const names = r.name !== undefined ? [r.name] : await readNames(r.namesFrom!);
  if (r.name === undefined) audit.names = names.length <= 100 ? names : `${names.length} names from ${r.namesFrom}`;
  confinedPathsForAll(store, names, r.outDir);
  return names;
}

/** Each name's subject and SANs (the profile's SAN rules); names outside the CA's name constraints are refused before any key is made or the CA key opened. */
function planPairs(ca: Authority, profile: Profile, names: readonly string[], r: IssuePairsRequest): Plan[] {
  const extraSans: San[] = parseSanList(r.san);
  const plans = names.map((name) => {
    const subject = withCn([], r.cn ?? name);
    return { name, subject, sans: applySanRules(profile, subject, extraSans) };
  });
  for (const p of plans) enforceConstraints(ca, r.cn ?? p.name, p.sans);
  return plans;
}

/**
 * Key generation runs on the thread pool while the main thread decrypts the
 * CA key (PBKDF2, 600,000 iterations): the two overlap. A bar for a batch,
 * counting from the first key (started before the CA key is opened unless a
 * passphrase prompt must come first); a spinner for one slow (RSA-3072/4096)
 * key; neither off a terminal, in --json or --quiet (the command's bar and
 * spinner decide).
 */
async function keysAndSigner(ca: Authority, count: number, keyType: KeyType, env: IssuePairsEnv): Promise<{ signing: SigningAuthority; pairs: Pair[] }> {
  const label = "Generating keys";
  let bar: ProgressLike | undefined;
  let done = 0;
  const keygen = Array.from({ length: count }, () =>
    generateKeyPairEncoded(keyType).then((r) => {
      done++;
      bar?.tick();
      return r;
    }),
  );
  keygen.forEach((k) => k.catch(() => {})); // failures are reported by the await below
  if (!env.promptFirst) bar = await env.bar(label, count, done);
  let signing: SigningAuthority;
  try {
    signing = await openSigningAuthority(ca, env.key());
  } catch (e) {
    bar?.stop();
    throw e;
  }
  bar ??= await env.bar(label, count, done);
  const slowKeys = keyType === "rsa-3072" || keyType === "rsa-4096";
  try {
    return { signing, pairs: await env.spinner(`Generating a ${keyType} key`, slowKeys && count === 1, () => Promise.all(keygen)) };
  } finally {
    bar.stop();
  }
}

/**
 * What each pair releases besides its certificate: the key (encrypted with
 * --key-passphrase-file) and, with --p12, a PKCS#12 whose slow parts (its
 * PBKDF2 derivations) are done here, before the lock.
 */
async function pairFiles(signing: SigningAuthority, plans: readonly Plan[], pairs: readonly Pair[], r: IssuePairsRequest, s: { keyPass?: string; p12Pass?: string }): Promise<{ keyPems: string[]; p12: Array<PreparedPkcs12 | undefined> }> {
  // a KeyObject only where one is needed (encrypting the key, PKCS#12)
  const keyObject = (i: number) => loadPrivateKey(pairs[i]!.pkcs8Pem, "the new key", async () => "");
  const keyPass = s.keyPass;
  const keyPems = keyPass ? await Promise.all(pairs.map(async (_, i) => encryptPrivateKey(await keyObject(i), keyPass))) : pairs.map((k) => k.pkcs8Pem);
  if (!r.p12) return { keyPems, p12: plans.map(() => undefined) };
  const format = r.p12;
  const { preparePkcs12 } = await import("../crypto/pkcs12.js");
  const caPem = p12CaPem(signing);
  const p12 = await Promise.all(plans.map(async (p, i) => preparePkcs12({ key: await keyObject(i), caPem, password: s.p12Pass!, format, friendlyName: p.name })));
  return { keyPems, p12 };
}

/** The issuance of each pair; its files written once the certificate is recorded (ca/issued.ts). */
function issueRequests(store: CaStore, signing: SigningAuthority, profile: Profile, days: number, keyType: KeyType, plans: readonly Plan[], pairs: readonly Pair[], files: { keyPems: string[]; p12: Array<PreparedPkcs12 | undefined> }, outDir: string | undefined): IssueRequest[] {
  const keyKind = keyKindOfType(keyType);
  return plans.map((p, i) => ({
    profile,
    subject: p.subject,
    sans: p.sans,
    spki: pairs[i]!.spki,
    keyKind,
    days,
    name: p.name,
    files: (certPem: string) => issuedWrites(store, p.name, outDir, { key: files.keyPems[i]!, cert: certPem, chain: chainPem(signing, certPem), p12: files.p12[i]?.(certPem) }),
  }));
}

/** One pair's JSON fields: where its files are (absolute), its certificate. */
function pairJson(store: CaStore, c: Issued, name: string, outDir: string | undefined, p12: boolean): IssuedPairs["certificates"][number] {
  const paths = pathsFor(store, name, outDir);
  return {
    name,
    ...issuedJson(c),
    serial: c.serial,
    notAfter: c.notAfter.toISOString(),
    cert: path.resolve(paths.cert),
    path: path.resolve(paths.cert),
    certificate: c.pem,
    key: path.resolve(paths.key),
    chain: path.resolve(paths.chain),
    p12: p12 ? path.resolve(paths.p12) : null,
  };
}

/** `pki issue`: new key pairs and their certificates, one commit for the batch. */
export async function issuePairs(store: CaStore, r: IssuePairsRequest, env: IssuePairsEnv): Promise<IssuedPairs> {
  const names = await namesOf(store, r, env.audit);
  const ca = await openAuthority(store);
  const profile = await profileOf(store, r.profile);
  const days = leafDays(profile, r.days, ca.settings.defaultDays);
  const plans = planPairs(ca, profile, names, r);
  const secrets = await env.secrets(); // before any slow work, so a missing one fails at once
  const { signing, pairs } = await keysAndSigner(ca, plans.length, r.keyType, env);
  const files = await pairFiles(signing, plans, pairs, r, secrets);
  const reqs = issueRequests(store, signing, profile, days, r.keyType, plans, pairs, files, r.outDir);
  const issued = await issue(signing, reqs, { now: env.now, check: (index, tx) => refuseTakenNames(tx, names, index(), env.now()) });
  await store.audit(issued.map((c) => ({ command: "issue", profile: c.profile, serial: c.serial, subject: c.subject, name: c.name, outcome: "ok" })));
  const crlWarning = await staleCrlWarning(signing, env.now());
  return {
    profile,
    issued,
    certificates: issued.map((c, i) => pairJson(store, c, plans[i]!.name, r.outDir, !!r.p12)),
    keysEncrypted: !!secrets.keyPass,
    cappedAt: issued.some((c) => c.capped) ? signing.cert.notAfter : null,
    warnings: crlWarning ? [crlWarning] : [],
  };
}
