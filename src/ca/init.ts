/**
 * Creating a CA (pki init): its certificate made here (self-signed, or signed
 * by a parent CA that records it) or adopted from an existing pair, then
 * every document of the new CA committed in one store.create() (createCa).
 * Options, prompts, passphrases, spinners and messages are the command's
 * (commands/init.ts); this module asks nothing and prints nothing.
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import { assembleSigned, authorityKeyIdentifier, caExtensions, tbsCertificate, urlExtensions, validity, type Extension, type KeyKind } from "../core/certificate.js";
import { PkiError, usage } from "../core/errors.js";
import { nameConstraintsExtension, type NameConstraints } from "../core/name-constraints.js";
import { encodeName, formatDn, type Rdn } from "../core/names.js";
import { decodeBasicConstraints, findExtension, parseCertificate, type ParsedCertificate } from "../core/parse.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import type { Profile } from "../core/profiles.js";
import { newSerial } from "../core/serial.js";
import { keyIdentifier, keyKindOf, keyKindOfSpki, keyMatches, loadPrivateKey, publicKeyFromSpki, randomBytes } from "../crypto/keys.js";
import { readInputFile, type Settings } from "../store/ca-dir.js";
import { openStore } from "../store/open.js";
import { DOC, type CaStore, type DocWrite } from "../store/store.js";
import { checkName, issue } from "./authority.js";
import { refuseTakenNames } from "./issued.js";
import { authorityOf, docWhere, noCa, openAuthority, openSigningAuthority, signingAuthority, type SigningAuthority } from "./open-ca.js";
import { checkParentCrl, crlChainDocs, hasParent } from "./parent.js";
import { buildCrl } from "./revocation.js";
import { fileSigner, type CaSigner } from "./signer.js";

/** Key types a token makes for pki (Ed25519 is rare on tokens and absent from PKCS#11 before v3.0). */
export const TOKEN_KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"] as const;
export type TokenKeyType = (typeof TOKEN_KEY_TYPES)[number];

/** "ec-p256", "rsa-3072", ... of a key. */
export const keyTypeName = (k: crypto.KeyObject): string => {
  const kind = keyKindOf(k);
  return kind === "rsa" ? `rsa-${k.asymmetricKeyDetails?.modulusLength}` : kind;
};

/** The same of a public key (a key on a token). */
export const keyTypeOfSpki = (spki: Uint8Array): string => keyTypeName(publicKeyFromSpki(spki));

// ---------------------------------------------------------------- adopting an existing pair (--import-cert)

export interface AdoptedCert {
  der: Uint8Array;
  cert: ParsedCertificate;
  /** its basicConstraints pathLen (kept in pki.json) */
  pathLen?: number;
  /** its extendedKeyUsage names codeSigning */
  codeSigning: boolean;
}

/** The CA certificate of --import-cert: PEM, readable, basicConstraints CA:TRUE. */
export function readAdoptedCert(file: string): AdoptedCert {
  const blocks = parsePemBlocks(readInputFile(file, "CA certificate").toString("utf8")).filter((b) => b.label === "CERTIFICATE");
  if (!blocks.length) throw new PkiError("BAD_INPUT", `${file} holds no PEM certificate`);
  const der = blocks[0]!.der;
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new PkiError("BAD_INPUT", `${file} is not a readable certificate: ${(e as Error).message}`);
  }
  const bc = findExtension(cert.extensions, "2.5.29.19");
  if (!bc || !decodeBasicConstraints(bc.value).ca) throw new PkiError("BAD_INPUT", `${file} is not a CA certificate (no basicConstraints CA:TRUE)`);
  const eku = findExtension(cert.extensions, "2.5.29.37");
  // id-kp-codeSigning, 1.3.6.1.5.5.7.3.3
  const codeSigning = eku !== undefined && Buffer.from(eku.value).includes(Buffer.from([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03]));
  return { der, cert, pathLen: decodeBasicConstraints(bc.value).pathLen, codeSigning };
}

/** Where the adopted certificate's key is: on a token (opened by the caller), or a PEM file (encrypted ones ask for their passphrase). */
export type AdoptedKeySource = { token: () => Promise<CaSigner> } | { keyFile: string; passphrase: () => Promise<string> };

/** The signer of the adopted pair, checked to be the key of its certificate. */
export async function adoptedSigner(a: AdoptedCert, certFile: string, source: AdoptedKeySource): Promise<{ signer: CaSigner; key?: crypto.KeyObject; keyType: string }> {
  if ("token" in source) {
    const signer = await source.token();
    if (!Buffer.from(signer.publicKey).equals(Buffer.from(a.cert.spki.raw))) throw new PkiError("BAD_INPUT", `${signer.description} is not the key of ${certFile}`);
    return { signer, keyType: keyTypeOfSpki(signer.publicKey) };
  }
  const key = await loadPrivateKey(readInputFile(source.keyFile, "CA key").toString("utf8"), source.keyFile, source.passphrase);
  if (!keyMatches(key, a.cert.spki.raw)) throw new PkiError("BAD_INPUT", `${source.keyFile} is not the key of ${certFile}`);
  return { signer: fileSigner(key), key, keyType: keyTypeName(key) };
}

// ---------------------------------------------------------------- an issuing CA (--parent)

export interface OpenParent {
  ca: SigningAuthority;
  /** the name the parent records the new CA under */
  name: string;
  /** the parent's current crl.pem, when it has one (checked: signed by the parent) */
  crlPem?: string;
}

/**
 * The parent CA, ready to sign: a root (pki builds two tiers), valid now,
 * allowed to certify a CA (pathLen), its key decrypted with the passphrase
 * the caller gets (asked with the key's place).
 */
export async function openParent(store: CaStore, dir: string, parentName: string | undefined, passphrase: (keyWhere: string) => Promise<string>, now: Date): Promise<OpenParent> {
  const pstore = await openStore(path.resolve(dir));
  if (!(await pstore.exists())) throw noCa(pstore);
  if (pstore.location === store.location) throw usage("--parent must be another CA directory than --dir");
  const pa = await openAuthority(pstore);
  if (hasParent(pa)) {
    throw new PkiError("POLICY_DENIED", `${pstore.location} is itself an issuing CA (it has a parent.crt): pki builds two tiers, a root and the CAs it signs; use the root as --parent`);
  }
  const name = parentName ?? path.basename(path.resolve(store.location));
  checkName(name);
  const ca = await openSigningAuthority(pa, () => passphrase(docWhere(pstore, DOC.caKey)));
  if (ca.cert.notAfter.getTime() <= now.getTime() || ca.cert.notBefore.getTime() > now.getTime()) {
    throw new PkiError("CA_INVALID", `the parent CA certificate is not valid now (${ca.cert.notBefore.toISOString()} to ${ca.cert.notAfter.toISOString()}): it cannot sign`);
  }
  const bc = findExtension(ca.cert.extensions, "2.5.29.19");
  const pl = bc ? decodeBasicConstraints(bc.value).pathLen : undefined;
  if (pl === 0) throw new PkiError("POLICY_DENIED", `the parent CA's certificate has pathLen 0: it may sign leaves only, not another CA`);
  let crlPem: string | undefined;
  const pcrl = await pstore.read(DOC.crl);
  if (pcrl !== null) crlPem = checkParentCrl({ certPem: ca.certPem, cert: ca.cert }, pcrl, docWhere(pstore, DOC.crl)).pem;
  return { ca, name, crlPem };
}

const CA_PROFILE: Profile = {
  name: "ca",
  description: "an issuing CA signed by this one (pki init --parent)",
  keyUsage: ["digitalSignature", "keyCertSign", "cRLSign"],
  rsaKeyUsage: [],
  extendedKeyUsage: [],
  san: "forbidden",
  sanTypes: [],
  cnAsSan: false,
  source: "built-in",
};

interface ToSign {
  subject: Rdn[];
  spki: Uint8Array;
  keyKind: KeyKind;
  days: number;
  extensions: Extension[];
  codeSigning: boolean;
}

/**
 * The parent signs the new CA's certificate and records it in its index
 * (profile "ca", under the name) before the certificate is released, so that
 * `pki -d <parent> revoke <name>` revokes the whole issuing CA.
 */
async function signByParent(parent: OpenParent, r: ToSign, now: () => Date, warn: (msg: string) => void): Promise<Uint8Array> {
  const p = parent.ca;
  if (p.settings.codeSigning && !r.codeSigning) warn("the parent CA is tagged for code signing: its extendedKeyUsage limits every certificate below it");
  const [c] = await issue(
    p,
    [
      {
        profile: CA_PROFILE,
        subject: r.subject,
        sans: [],
        spki: r.spki,
        keyKind: r.keyKind,
        days: r.days,
        name: parent.name,
        extensions: [...r.extensions, authorityKeyIdentifier(p.keyId), ...urlExtensions(p.settings)],
        files: (certPem) => ({ docs: [{ name: DOC.issuedCert(parent.name), data: certPem }], outputs: [] }),
      },
    ],
    { now, check: (index, tx) => refuseTakenNames(tx, [parent.name], index(), now()) },
  );
  if (c!.capped) warn(`the issuing CA's validity is capped at the parent's notAfter (${p.cert.notAfter.toISOString()})`);
  return c!.der;
}

// ---------------------------------------------------------------- a new CA certificate

export interface NewCaCert {
  subject: Rdn[];
  signer: CaSigner;
  days: number;
  pathLen?: number;
  codeSigning: boolean;
  constraints?: NameConstraints;
  /** an issuing CA: its parent signs (and records) the certificate; else it is self-signed */
  parent?: OpenParent;
  now: () => Date;
  warn: (msg: string) => void;
}

/** The DER of a new CA certificate for the signer's key: CA extensions (contract "Built-in profiles"), self-signed or by the parent. */
export async function newCaCertificate(r: NewCaCert): Promise<Uint8Array> {
  const spki = r.signer.publicKey;
  const keyId = keyIdentifier(spki);
  const extensions = [...caExtensions({ pathLen: r.pathLen, codeSigning: r.codeSigning, subjectKeyId: keyId }), ...(r.constraints ? [nameConstraintsExtension(r.constraints)] : [])];
  if (r.parent) return signByParent(r.parent, { subject: r.subject, spki, keyKind: keyKindOfSpki(spki), days: r.days, extensions, codeSigning: r.codeSigning }, r.now, r.warn);
  const v = validity({ now: r.now(), days: r.days, caNotAfter: new Date(8.64e15) });
  const name = encodeName(r.subject);
  const algorithm = r.signer.algorithm;
  const tbs = tbsCertificate({
    serial: newSerial(randomBytes, new Set()),
    signatureAlgorithm: algorithm.der,
    issuer: name,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    subject: name,
    spki,
    extensions: [...extensions, authorityKeyIdentifier(keyId)],
  });
  return assembleSigned(tbs, algorithm.der, await r.signer.sign(tbs));
}

// ---------------------------------------------------------------- the new CA, committed

export interface NewCa {
  store: CaStore;
  certDer: Uint8Array;
  signer: CaSigner;
  /** private/ca.key (encrypted unless --no-passphrase); none for a key on a token */
  keyPem?: string;
  /** pki.json's values (subject, version and the empty policy are added here) */
  settings: Omit<Settings, "version" | "subject" | "policy">;
  parent?: OpenParent;
  /** audit.log: an adopted pair */
  imported: boolean;
  now: Date;
}

/** pki.json of a new CA, its keys in the order pki has always written them. */
function settingsText(cert: ParsedCertificate, s: NewCa["settings"]): string {
  const { key, ...rest } = s;
  const doc: Settings & { bundle: { includeIssued: boolean } } = {
    version: 1,
    subject: formatDn(cert.subject),
    keyType: rest.keyType,
    defaultDays: rest.defaultDays,
    crlDays: rest.crlDays,
    crlUrl: rest.crlUrl,
    ocspUrl: rest.ocspUrl,
    caIssuersUrl: rest.caIssuersUrl,
    codeSigning: rest.codeSigning,
    pathLen: rest.pathLen,
    encrypted: rest.encrypted,
    policy: {},
    bundle: { includeIssued: false },
    ...(key !== undefined ? { key } : {}),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/**
 * Commit the new CA: key, certificate, bundle, a first empty CRL (so that
 * nginx's ssl_crl works from the start), the parent's documents for an
 * issuing CA, pki.json; all in one store.create() (a directory: staged and
 * renamed into place, or every file exclusive and pki.json last). Then the
 * audit lines, here and in the parent.
 */
export async function createCa(r: NewCa): Promise<{ cert: ParsedCertificate; fingerprint: string }> {
  const { store, parent } = r;
  const cert = parseCertificate(r.certDer);
  const certPem = toPem("CERTIFICATE", r.certDer);
  const text = settingsText(cert, r.settings);
  // the key is already in memory: no second decryption
  const signing = signingAuthority(authorityOf(store, text, certPem, parent ? parent.ca.certPem : null), r.signer);
  const crl = await buildCrl(signing, "", r.settings.crlDays, r.now, 1n);
  const docs: DocWrite[] = [
    ...(r.keyPem !== undefined ? [{ name: DOC.caKey, data: r.keyPem, mode: 0o600 }] : []),
    { name: DOC.caCert, data: certPem },
    { name: DOC.bundle, data: certPem },
    ...(parent
      ? [
          { name: DOC.parentCert, data: parent.ca.certPem },
          { name: DOC.caChain, data: certPem + parent.ca.certPem },
          ...(parent.crlPem !== undefined ? [{ name: DOC.parentCrl, data: parent.crlPem }] : []),
        ]
      : []),
    { name: DOC.crl, data: crl.pem },
    ...(await crlChainDocs(signing, store, crl.pem, parent?.crlPem ?? "")),
    { name: DOC.settings, data: text },
  ];
  await store.create({ crlNumber: crl.crlNumber + 1n, docs });

  const fingerprint = crypto.createHash("sha256").update(r.certDer).digest("hex");
  const onToken = r.settings.key !== undefined;
  await store.audit([{ command: "init", serial: cert.serial, subject: formatDn(cert.subject), outcome: "ok", imported: r.imported, ...(parent ? { parent: parent.ca.store.location } : {}), ...(onToken ? { key: r.signer.description } : {}) }]);
  if (parent) {
    await parent.ca.store.audit([{ command: "init --parent", profile: "ca", name: parent.name, serial: cert.serial, subject: formatDn(cert.subject), dir: store.location, outcome: "ok" }]);
    await parent.ca.store.close();
  }
  return { cert, fingerprint };
}
