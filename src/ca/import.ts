/**
 * Import an easy-rsa PKI or an `openssl ca` directory into a new pki CA
 * directory: every certificate with its status, revocation time and reason,
 * easy-rsa's issued names, the CA key re-encrypted with pki's scheme, CRL
 * numbers that continue above the source's, and a first CRL that lists
 * exactly the source's revoked set.
 *
 * The source is only read (never opened for writing, never locked). The new
 * directory is built complete in a staging directory beside the target and
 * renamed into place at the end: a failure or a crash leaves no half-made CA
 * at the target (at most a `.<name>.import-*` staging directory beside it).
 *
 * Pure decisions (index parsing, matching, names, profiles, CRL number) live
 * in core/import-source.ts; this module reads files, checks signatures and
 * writes.
 */
import type { KeyObject } from "node:crypto";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { PkiError } from "../core/errors.js";
import { formatCrlNumber, parseCrlNumber } from "../core/crl.js";
import { parseCrl } from "../core/crl-parse.js";
import { formatIndex, formatMeta, type IndexEntry } from "../core/index-format.js";
import { formatDn, onelineDn } from "../core/names.js";
import { decodeBasicConstraints, findExtension, parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { looksLikePem, parsePemBlocks, toPem } from "../core/pem.js";
import { normaliseSerial } from "../core/serial.js";
import { assignNames, parseSourceIndex, planImport, problemText, type ImportPlan, type PlannedCert, type SourceCert, type SourceCrl } from "../core/import-source.js";
import { encryptPrivateKey, isEncryptedPem, keyKindOf, keyMatches, loadPrivateKey, privateKeyPem, verifySignature } from "../crypto/keys.js";
import type { Settings } from "../store/ca-dir.js";
import { dirOf } from "../store/dir-store.js";
import { DOC, type CaStore, type CertRecord, type DocWrite } from "../store/store.js";
import { authorityOf, signingAuthority } from "./authority.js";
import { fileSigner } from "./signer.js";
import { buildCrl } from "./revocation.js";

export type SourceKind = "easyrsa" | "openssl-ca";

export interface ImportOptions {
  kind: SourceKind;
  /** the source directory */
  source: string;
  /** the new CA directory */
  /** the new CA's store (a new or empty directory, an empty database) */
  store: CaStore;
  skipBroken: boolean;
  dryRun: boolean;
  /** copy easy-rsa's private/<name>.key of valid issued names (default true) */
  copyKeys: boolean;
  crlDays: number;
  now: Date;
  /** the source CA key's passphrase: asked only when the key is encrypted */
  sourcePassphrase: () => Promise<string>;
  /** the new passphrase; null stores the key unencrypted (--no-passphrase). Not asked in a dry run. */
  newPassphrase: () => Promise<string | null>;
  /** problems, skips and notes, one line each, as they are found */
  report: (line: string) => void;
}

export interface ImportResult {
  dir: string;
  dryRun: boolean;
  certificates: number;
  revoked: number;
  names: string[];
  keys: number;
  crlNumber: number;
  skipped: string[];
  notes: string[];
  subject: string;
}

/** Where each kind keeps its files (contract: "Import from easy-rsa and `openssl ca`"). */
const LAYOUT = {
  caCert: ["ca.crt", "cacert.pem"],
  caKey: ["private/ca.key", "private/cakey.pem"],
  /** [directory, names are issued names, file names are serials] */
  certDirs: {
    easyrsa: [
      ["issued", true, false],
      ["certs_by_serial", false, true],
      ["revoked/certs_by_serial", false, true],
      ["renewed/certs_by_serial", false, true],
      ["renewed/issued", false, false],
    ],
    "openssl-ca": [
      ["newcerts", false, true],
      ["certs", false, true],
    ],
  } as Record<SourceKind, Array<[string, boolean, boolean]>>,
};

/** Largest single source file read (a certificate, a key); index.txt and crl.pem may be larger. */
const MAX_FILE = 1024 * 1024;
const MAX_INDEX = 512 * 1024 * 1024;

function sourceInvalid(message: string, problems?: string[]): PkiError {
  return new PkiError("SOURCE_INVALID", message, problems ? { details: { problems } } : {});
}

/** A regular file of the source (no symlink, device or FIFO), read with a bound; null when absent. */
function readSourceFile(source: string, rel: string, max = MAX_FILE): Buffer | null {
  const p = path.join(source, rel);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new PkiError("IO_ERROR", `cannot read ${p}: ${(e as NodeJS.ErrnoException).code}`);
  }
  if (!st.isFile()) throw sourceInvalid(`${p} is not a regular file (pki reads no symlinks, devices or FIFOs from a source)`);
  if (st.size > max) throw sourceInvalid(`${p} is ${st.size} bytes; pki reads at most ${max} bytes from it`);
  try {
    return fs.readFileSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PkiError("IO_ERROR", `cannot read ${p}: ${code === "EACCES" ? "permission denied (run as the user who owns the source)" : code}`);
  }
}

function firstOf(source: string, rels: string[], max = MAX_FILE): { rel: string; data: Buffer } | null {
  for (const rel of rels) {
    const data = readSourceFile(source, rel, max);
    if (data) return { rel, data };
  }
  return null;
}

function certDer(data: Buffer): Uint8Array {
  if (looksLikePem(data)) {
    const b = parsePemBlocks(data.toString("latin1")).find((x) => x.label === "CERTIFICATE" || x.label === "TRUSTED CERTIFICATE");
    if (!b) throw new Error("no PEM certificate in it");
    return b.der;
  }
  return data;
}

/** Was `doc` signed by `ca` (issuer name and signature)? */
function signedBy(ca: ParsedCertificate, doc: { issuerRaw: Uint8Array; signatureAlgorithm: string; tbs: Uint8Array; signature: Uint8Array }): boolean {
  if (!Buffer.from(doc.issuerRaw).equals(Buffer.from(ca.subjectRaw))) return false;
  try {
    return verifySignature(ca.spki.raw, doc.signatureAlgorithm, doc.tbs, doc.signature);
  } catch {
    return false; // SHA-1 or an unknown algorithm: not checkable, so not accepted
  }
}

function listDir(source: string, rel: string): string[] {
  try {
    return fs
      .readdirSync(path.join(source, rel), { withFileTypes: true })
      .filter((e) => e.isFile() && (e.name.endsWith(".pem") || e.name.endsWith(".crt")))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

interface Source {
  caCertRel: string;
  caKeyRel: string;
  caCert: ParsedCertificate;
  caDer: Uint8Array;
  keyPem: string;
  certs: SourceCert[];
  plan: ImportPlan;
}

/** Read and check the source; every problem is collected, not thrown one by one. */
function readSource(o: ImportOptions): Source {
  const src = o.source;
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch {
    throw new PkiError("NOT_FOUND", `the source directory ${src} does not exist`);
  }
  if (!st.isDirectory()) throw new PkiError("BAD_INPUT", `${src} is not a directory: give the ${o.kind === "easyrsa" ? "easy-rsa PKI directory (the one holding ca.crt, index.txt, issued/)" : "`openssl ca` directory (the one holding index.txt)"}`);
  const cert = firstOf(src, LAYOUT.caCert);
  const index = readSourceFile(src, "index.txt", MAX_INDEX);
  if (!cert || !index) {
    const missing = [!cert ? "ca.crt (or cacert.pem)" : "", !index ? "index.txt" : ""].filter(Boolean).join(" and ");
    const hint = o.kind === "easyrsa" && fs.existsSync(path.join(src, "pki", "index.txt")) ? `; did you mean ${path.join(src, "pki")}?` : "";
    throw sourceInvalid(`${src} has no ${missing}: it is not ${o.kind === "easyrsa" ? "an easy-rsa PKI directory" : "an `openssl ca` directory"}${hint}`);
  }
  const keyFile = firstOf(src, LAYOUT.caKey);
  if (!keyFile) throw sourceInvalid(`${src} has no CA key (private/ca.key or private/cakey.pem): pki needs the key to sign the CRL and new certificates`);
  let caCert: ParsedCertificate;
  let caDer: Uint8Array;
  try {
    caDer = certDer(cert.data);
    caCert = parseCertificate(caDer);
  } catch (e) {
    throw sourceInvalid(`${path.join(src, cert.rel)} is not a readable certificate: ${(e as Error).message}`);
  }
  const bc = findExtension(caCert.extensions, "2.5.29.19");
  if (!bc || !decodeBasicConstraints(bc.value).ca) throw sourceInvalid(`${path.join(src, cert.rel)} is not a CA certificate (no basicConstraints CA:TRUE)`);

  const parsed = parseSourceIndex(index.toString("utf8"));
  const certs: SourceCert[] = [];
  for (const [dir, named, bySerial] of LAYOUT.certDirs[o.kind]) {
    for (const file of listDir(src, dir)) {
      const rel = `${dir}/${file}`;
      const base = file.replace(/\.(pem|crt)$/, "");
      const c: SourceCert = { path: rel };
      if (named) c.name = base;
      if (bySerial) {
        const s = /^[0-9A-Fa-f]+$/.test(base) ? normaliseSerial(base) : null;
        if (s === null) continue; // not a by-serial file (e.g. a README)
        c.serialFromName = s;
      }
      try {
        const data = readSourceFile(src, rel)!;
        c.cert = parseCertificate(certDer(data));
        c.signedByCa = signedBy(caCert, c.cert);
      } catch (e) {
        c.error = e instanceof PkiError ? e.message : (e as Error).message;
      }
      certs.push(c);
    }
  }

  let crl: SourceCrl | undefined;
  const crlFile = readSourceFile(src, "crl.pem", MAX_INDEX);
  const indexProblems = [...parsed.problems];
  if (crlFile) {
    try {
      let der: Uint8Array = crlFile;
      if (looksLikePem(crlFile)) {
        const b = parsePemBlocks(crlFile.toString("latin1")).find((x) => x.label === "X509 CRL");
        if (!b) throw new Error("no PEM CRL in it");
        der = b.der;
      }
      const c = parseCrl(der);
      crl = { path: "crl.pem", crlNumber: c.crlNumber, signedByCa: signedBy(caCert, c), entries: c.revoked };
    } catch (e) {
      indexProblems.push({ where: "crl.pem", message: `not a readable CRL (${(e as Error).message})` });
    }
  }
  let crlNumberFile: bigint | undefined;
  const cn = readSourceFile(src, "crlnumber");
  if (cn) {
    const n = parseCrlNumber(cn.toString("utf8"));
    if (n === null) indexProblems.push({ where: "crlnumber", message: "does not hold a hex number" });
    else crlNumberFile = n;
  }
  const plan = planImport({ entries: parsed.entries, indexProblems, certs, crl, crlNumberFile, skipBroken: o.skipBroken });
  assignNames(plan, certs, o.kind === "easyrsa");
  return { caCertRel: cert.rel, caKeyRel: keyFile.rel, caCert, caDer, keyPem: keyFile.data.toString("utf8"), certs, plan };
}

const keyTypeName = (k: KeyObject): string => {
  const kind = keyKindOf(k);
  return kind === "rsa" ? `rsa-${k.asymmetricKeyDetails?.modulusLength}` : kind;
};

/** The certificate an issued name points at: its newest valid one, else its newest one. */
function pickForName(list: PlannedCert[]): PlannedCert {
  const valid = list.filter((c) => c.entry.status === "V");
  const pool = valid.length ? valid : list;
  return pool.reduce((a, b) => (b.cert!.notBefore.getTime() >= a.cert!.notBefore.getTime() ? b : a));
}

/** Refuse a target that holds a CA or anything else: pki imports into a new or empty directory (a new, empty database). */
export async function checkTarget(store: CaStore): Promise<void> {
  const dir = dirOf(store);
  if (dir) return dir.checkNewOrEmpty("pki import");
  if (await store.exists()) throw new PkiError("CA_EXISTS", `${store.location} already holds a CA; pki import never touches an existing CA`);
}

export async function importCa(o: ImportOptions): Promise<ImportResult> {
  await checkTarget(o.store);
  const s = readSource(o);
  const plan = s.plan;
  const where = (rel: string) => path.join(o.source, rel);

  // 1. problems: listed line by line; refused unless --skip-broken
  if (plan.problems.length) {
    for (const p of plan.problems) o.report(`problem: ${problemText(p)}`);
    if (!o.skipBroken) {
      throw sourceInvalid(
        `${o.source}: ${plan.problems.length} problem(s) in the source (listed above); nothing imported. Fix them, or pass --skip-broken to import the rest (revoked certificates always stay revoked)`,
        plan.problems.map(problemText),
      );
    }
  }
  for (const x of plan.skipped) o.report(`skipped: ${x}`);
  for (const n of plan.notes) o.report(`note: ${n}`);

  // 2. the source CA key: decrypted, and it must be the key of the certificate
  const key = await loadPrivateKey(s.keyPem, where(s.caKeyRel), o.sourcePassphrase).catch((e: unknown) => {
    if (e instanceof PkiError && e.code === "BAD_PASSPHRASE") throw new PkiError("BAD_PASSPHRASE", `the passphrase does not decrypt ${where(s.caKeyRel)}: check --source-passphrase-file`);
    if (e instanceof PkiError && e.code === "BAD_INPUT") throw sourceInvalid(`${where(s.caKeyRel)} is not a readable private key`);
    throw e;
  });
  if (!keyMatches(key, s.caCert.spki.raw)) throw sourceInvalid(`${where(s.caKeyRel)} is not the key of ${where(s.caCertRel)}: nothing imported`);

  // 3. names, keys of issued names
  const byName = new Map<string, PlannedCert[]>();
  for (const c of plan.certificates) if (c.name && c.cert) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  const names = [...byName.keys()].sort();
  const keyCopies: Array<{ name: string; data: string }> = [];
  if (o.kind === "easyrsa" && o.copyKeys) {
    for (const name of names) {
      const c = pickForName(byName.get(name)!);
      if (c.entry.status !== "V") continue; // a revoked certificate's key is of no use to anyone
      const data = readSourceFile(o.source, `private/${name}.key`);
      if (!data) continue;
      const pem = data.toString("utf8");
      if (!isEncryptedPem(pem)) {
        let k: KeyObject;
        try {
          k = crypto.createPrivateKey({ key: pem, format: "pem" });
        } catch {
          o.report(`note: private/${name}.key is not a readable key; not copied`);
          continue;
        }
        if (!keyMatches(k, c.cert!.spki.raw)) {
          o.report(`note: private/${name}.key is not the key of ${name}'s certificate; not copied`);
          continue;
        }
      }
      keyCopies.push({ name, data: pem });
    }
  }

  const revoked = plan.certificates.filter((c) => c.entry.status === "R").length;
  const result: ImportResult = {
    dir: o.store.location,
    dryRun: o.dryRun,
    certificates: plan.certificates.length,
    revoked,
    names,
    keys: keyCopies.length,
    crlNumber: Number(plan.crlNumber),
    skipped: plan.skipped,
    notes: plan.notes,
    subject: formatDn(s.caCert.subject),
  };
  if (o.dryRun) return result;

  // 4. the key at rest, under the new passphrase
  const pass = await o.newPassphrase();
  const keyPem = pass === null ? privateKeyPem(key) : await encryptPrivateKey(key, pass);

  // 5. the new CA, whole: the store creates it all or nothing
  const caPem = toPem("CERTIFICATE", s.caDer);
  const add: CertRecord[] = [];
  for (const c of plan.certificates) {
    const e: IndexEntry = { status: c.entry.status, expires: c.entry.expires, serial: c.entry.serial, file: "unknown", subject: c.cert ? onelineDn(c.cert.subject) : c.entry.subject };
    if (c.entry.status === "R") {
      e.revokedAt = c.entry.revokedAt;
      if (c.entry.reason) e.reason = c.entry.reason;
      // `openssl ca -crl_hold` / `-crl_compromise`: kept in the index line, so every later CRL carries them
      if (c.entry.holdInstruction) e.holdInstruction = c.entry.holdInstruction;
      if (c.entry.invalidityDate) e.invalidityDate = c.entry.invalidityDate;
    }
    add.push({ entry: e, pem: c.cert ? toPem("CERTIFICATE", c.cert.der) : "", profile: c.profile, name: c.name });
  }
  const indexText = formatIndex(add.map((a) => a.entry));
  const eku = findExtension(s.caCert.extensions, "2.5.29.37");
  const bc = decodeBasicConstraints(findExtension(s.caCert.extensions, "2.5.29.19")!.value);
  const settings: Settings & { bundle: { includeIssued: boolean }; importedFrom: Record<string, string> } = {
    version: 1,
    subject: formatDn(s.caCert.subject),
    keyType: keyTypeName(key),
    crlDays: o.crlDays,
    codeSigning: eku !== undefined && Buffer.from(eku.value).includes(Buffer.from([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03])),
    pathLen: bc.pathLen,
    encrypted: pass !== null,
    policy: {},
    bundle: { includeIssued: false },
    importedFrom: { kind: o.kind, source: path.resolve(o.source), at: o.now.toISOString() },
  };
  const settingsText = JSON.stringify(settings, null, 2) + "\n";
  const release: DocWrite[] = [];
  for (const name of names) {
    const pem = toPem("CERTIFICATE", pickForName(byName.get(name)!).cert!.der);
    release.push({ name: DOC.issuedCert(name), data: pem }, { name: DOC.issuedChain(name), data: pem + caPem });
  }
  for (const k of keyCopies) release.push({ name: DOC.issuedKey(k.name), data: k.data, mode: 0o600 });
  // the first CRL: exactly the source's revoked set, numbered above the source's
  const signing = signingAuthority(authorityOf(o.store, settingsText, caPem, null), fileSigner(key));
  const crl = await buildCrl(signing, indexText, o.crlDays, o.now, plan.crlNumber);
  await o.store.create({
    crlNumber: crl.crlNumber + 1n,
    add,
    docs: [
      { name: DOC.caKey, data: keyPem, mode: 0o600 },
      { name: DOC.caCert, data: caPem },
      { name: DOC.bundle, data: caPem },
      { name: DOC.crl, data: crl.pemBytes },
      { name: DOC.settings, data: settingsText },
    ],
    release,
  });
  return result;
}
