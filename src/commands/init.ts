/**
 * pki init: create a CA directory, or adopt an existing CA pair.
 */
import * as crypto from "node:crypto";
import { assembleSigned, authorityKeyIdentifier, caExtensions, tbsCertificate, urlExtensions, validity } from "../core/certificate.js";
import { PkiError, missingInput, usage } from "../core/errors.js";
import { decodeBasicConstraints, findExtension, parseCertificate } from "../core/parse.js";
import { dnFromParts, encodeName, formatDn, parseDn, type Rdn } from "../core/names.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import { newSerial } from "../core/serial.js";
import { encryptPrivateKey, generateKeyPair, keyIdentifier, keyKindOf, keyKindOfSpki, keyMatches, loadPrivateKey, parseKeyType, privateKeyPem, randomBytes, type KeyType, KEY_TYPES } from "../crypto/keys.js";
import { readInputFile, type Settings } from "../store/ca-dir.js";
import { openStore } from "../store/open.js";
import { DOC, type CaStore, type DocWrite } from "../store/store.js";
import type { Context } from "../cli/context.js";
import { publicKeyFromSpki } from "../crypto/keys.js";
import type { Result } from "../cli/output.js";
import { authorityOf, caPresent, docWhere, noCa, openAuthority, signingAuthority } from "../ca/authority.js";
import { fileSigner, tokenSigner, type CaSigner } from "../ca/signer.js";
import { keyAccess } from "../cli/context.js";
import { parsePkcs11Uri } from "../core/pkcs11-uri.js";
import { buildCrl } from "../ca/revocation.js";
import { intOption, urlOption } from "./options.js";
import { withSpinner } from "../ui/progress.js";
import * as path from "node:path";
import { formatConstraints, nameConstraintsExtension, parseConstraintList } from "../core/name-constraints.js";
import { checkName, issue, openSigningAuthority, type SigningAuthority } from "../ca/authority.js";
import { crlChainDocs, checkParentCrl, hasParent, parentCrlAdvice } from "../ca/parent.js";
import { readSecretFile, secretFileOf } from "../cli/context.js";
import { refuseTakenNames } from "../ca/issued.js";
import type { Extension, KeyKind } from "../core/certificate.js";
import type { Profile } from "../core/profiles.js";

interface Opts {
  cn?: string;
  org?: string;
  ou?: string;
  country?: string;
  locality?: string;
  state?: string;
  subject?: string;
  keyType?: string;
  days?: string;
  pathLen?: string;
  codeSigning?: boolean;
  crlUrl?: string;
  ocspUrl?: string;
  caIssuersUrl?: string;
  crlDays?: string;
  defaultDays?: string;
  passphrase?: boolean;
  importCert?: string;
  importKey?: string;
  parent?: string;
  parentPassphraseFile?: string;
  parentName?: string;
  nameConstraints?: string;
  /** the CA key on a PKCS#11 token (pkcs11: URI): used as it is there, or made there with --key-type */
  key?: string;
}

/** Key types a token makes for pki (Ed25519 is rare on tokens and absent from PKCS#11 before v3.0). */
const TOKEN_KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"] as const;

/** "ec-p256", "rsa-3072", ... of a public key. */
const keyTypeOfSpki = (spki: Uint8Array): string => keyTypeName(publicKeyFromSpki(spki));

const keyTypeName = (k: crypto.KeyObject): string => {
  const kind = keyKindOf(k);
  return kind === "rsa" ? `rsa-${k.asymmetricKeyDetails?.modulusLength}` : kind;
};

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (await caPresent(store)) throw new PkiError("CA_EXISTS", `${ctx.dir} already holds a CA; pki init never touches an existing CA (use another --dir)`);
  const importing = o.importCert !== undefined || o.importKey !== undefined;
  const onToken = o.key !== undefined;
  if (onToken) {
    parsePkcs11Uri(o.key!); // a bad URI is a usage error before anything else
    if (o.importKey !== undefined) throw usage("--key (a key on a token) and --import-key (a key file) exclude each other: pass one");
    if (o.importCert !== undefined && o.keyType !== undefined) throw usage("--import-cert with --key uses the key already on the token: drop --key-type");
  } else if (importing && (!o.importCert || !o.importKey)) throw usage("--import-cert and --import-key go together: pass both");
  // the token's key: opened (or made) once the rest of the command line is known to be good
  const tokenKey = async (generate?: (typeof TOKEN_KEY_TYPES)[number]) =>
    withSpinner(ctx, generate ? `Generating the ${generate} CA key on the token` : "Opening the CA key on the token", true, () => tokenSigner(o.key!, { pin: keyAccess(ctx, o.key).pin!, generate }));
  if (o.parent !== undefined && importing) throw usage("--parent makes a new issuing CA; --import-cert adopts an existing one: pass one of them");
  if (o.parent === undefined && (o.parentPassphraseFile !== undefined || o.parentName !== undefined)) throw usage("--parent-passphrase-file and --parent-name go with --parent DIR");
  if (o.nameConstraints !== undefined && importing) throw usage("--name-constraints is written into a new CA certificate; an imported one keeps its own");
  const constraints = o.nameConstraints !== undefined ? parseConstraintList(o.nameConstraints) : undefined;
  // an issuing CA: the parent is checked (and its key opened) before any key is generated here
  const parent = o.parent !== undefined ? await openParent(ctx, store, o) : undefined;

  // an issuing CA lives shorter than its root (5 years against 10), so that it is renewed under a root still valid
  let days = intOption(o.days, "--days", 1, 36500) ?? (o.parent !== undefined ? 1825 : 3650);
  const pathLen = intOption(o.pathLen, "--path-len", 0, 16);
  let crlDays = intOption(o.crlDays, "--crl-days", 1, 3650) ?? 7;
  const defaultDays = intOption(o.defaultDays, "--default-days", 1, 36500);
  const urls = { crlUrl: urlOption(o.crlUrl, "--crl-url"), ocspUrl: urlOption(o.ocspUrl, "--ocsp-url"), caIssuersUrl: urlOption(o.caIssuersUrl, "--ca-issuers-url") };
  const encrypt = o.passphrase !== false;
  const prompt = ctx.interactive ? await import("../ui/prompt.js") : undefined;
  const newCaPassphrase = async (): Promise<string> => {
    let pass = ctx.passphraseFromSources();
    if (pass === undefined && prompt) pass = await prompt.askNewSecret("New CA key passphrase");
    if (pass === undefined) {
      throw missingInput("a passphrase for the CA key", "--passphrase-file FILE (or PKI_PASSPHRASE_FILE; or --no-passphrase to store it unencrypted)");
    }
    if (pass.length < 8) throw new PkiError("BAD_INPUT", "the CA key passphrase is shorter than 8 characters: choose a longer one");
    return pass;
  };
  // an issuing CA is recorded by its parent as soon as it is signed: every input the
  // rest of init needs is settled before that, so a refusal leaves the parent untouched
  const newPass = parent && encrypt && !onToken ? await newCaPassphrase() : undefined;

  // --- the key and the certificate, in memory
  let key: crypto.KeyObject | undefined;
  let caSigner: CaSigner;
  let certDer: Uint8Array;
  let codeSigning = o.codeSigning === true;
  let keyType: string;
  let effPathLen = parent ? (pathLen ?? 0) : pathLen;

  if (importing) {
    const certText = readInputFile(o.importCert!, "CA certificate").toString("utf8");
    const blocks = parsePemBlocks(certText).filter((b) => b.label === "CERTIFICATE");
    if (!blocks.length) throw new PkiError("BAD_INPUT", `${o.importCert} holds no PEM certificate`);
    certDer = blocks[0]!.der;
    let cert;
    try {
      cert = parseCertificate(certDer);
    } catch (e) {
      throw new PkiError("BAD_INPUT", `${o.importCert} is not a readable certificate: ${(e as Error).message}`);
    }
    const bc = findExtension(cert.extensions, "2.5.29.19");
    if (!bc || !decodeBasicConstraints(bc.value).ca) throw new PkiError("BAD_INPUT", `${o.importCert} is not a CA certificate (no basicConstraints CA:TRUE)`);
    effPathLen = decodeBasicConstraints(bc.value).pathLen;
    if (onToken) {
      caSigner = await tokenKey();
      if (!Buffer.from(caSigner.publicKey).equals(Buffer.from(cert.spki.raw))) throw new PkiError("BAD_INPUT", `${caSigner.description} is not the key of ${o.importCert}`);
      keyType = keyTypeOfSpki(caSigner.publicKey);
    } else {
      const keyText = readInputFile(o.importKey!, "CA key").toString("utf8");
      key = await loadPrivateKey(keyText, o.importKey!, async () => {
        const p = ctx.passphraseFromSources();
        if (p !== undefined) return p;
        if (prompt) return prompt.askSecret(`Passphrase of ${o.importKey}`);
        throw missingInput("the passphrase of the imported key", "--passphrase-file");
      });
      if (!keyMatches(key, cert.spki.raw)) throw new PkiError("BAD_INPUT", `${o.importKey} is not the key of ${o.importCert}`);
      caSigner = fileSigner(key);
      keyType = keyTypeName(key);
    }
    const eku = findExtension(cert.extensions, "2.5.29.37");
    codeSigning = codeSigning || (eku !== undefined && Buffer.from(eku.value).includes(Buffer.from([0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03])));
    if (cert.notAfter.getTime() < ctx.now().getTime()) ctx.warn(`the imported CA certificate expired on ${cert.notAfter.toISOString()}`);
  } else {
    let subject: Rdn[];
    let cn = o.cn;
    let org = o.org;
    let kt = o.keyType;
    if (o.subject) {
      subject = parseDn(o.subject);
    } else {
      if (cn === undefined && prompt) {
        // each answer is checked where it is typed: the same rules as --cn and --days
        const asError = (f: () => unknown): string | null => {
          try {
            f();
            return null;
          } catch (e) {
            return e instanceof PkiError ? e.message : String(e);
          }
        };
        cn = await prompt.askText("CA name (CN)", "Internal CA", true, (v) => asError(() => dnFromParts({ cn: v })));
        if (org === undefined) org = (await prompt.askText("Organisation (O, optional)", "")) || undefined;
        if (kt === undefined && !onToken) kt = await prompt.askChoice("Key type", KEY_TYPES, "ec-p256");
        if (o.days === undefined) days = intOption(await prompt.askText("Validity of the CA certificate in days", "3650", true, (v) => asError(() => intOption(v, "the validity", 1, 36500))), "validity", 1, 36500)!;
        // nginx refuses every client once the CRL expires: the timer re-signs it (README "Keep the CRL fresh")
        if (o.crlDays === undefined) crlDays = intOption(await prompt.askText("Validity of each CRL in days (pki-crl.timer re-signs it)", "7", true, (v) => asError(() => intOption(v, "the CRL validity", 1, 3650))), "CRL validity", 1, 3650)!;
        if (o.codeSigning === undefined) codeSigning = await prompt.askYesNo("Tag the CA for code signing (admins sign packages with certificates it issues)?", false);
      }
      if (cn === undefined) throw missingInput("the CA's common name", "--cn NAME (or --subject)");
      subject = dnFromParts({ cn, org, ou: o.ou, country: o.country, locality: o.locality, state: o.state });
    }
    if (onToken) {
      let generate: (typeof TOKEN_KEY_TYPES)[number] | undefined;
      if (kt !== undefined) {
        const t = parseKeyType(kt);
        if (!(TOKEN_KEY_TYPES as readonly string[]).includes(t)) throw usage(`--key-type ${t} cannot be made on a token by pki: use one of ${TOKEN_KEY_TYPES.join(", ")}`);
        generate = t as (typeof TOKEN_KEY_TYPES)[number];
      }
      caSigner = await tokenKey(generate);
      keyType = keyTypeOfSpki(caSigner.publicKey);
    } else {
      const kType: KeyType = parseKeyType(kt ?? "ec-p256");
      keyType = kType;
      const pair = await withSpinner(ctx, `Generating the ${kType} CA key`, kType.startsWith("rsa-3") || kType.startsWith("rsa-4"), () => generateKeyPair(kType));
      key = pair.privateKey;
      caSigner = fileSigner(key);
    }
    const spki = caSigner.publicKey;
    const keyId = keyIdentifier(spki);
    const now = ctx.now();
    const extensions = [...caExtensions({ pathLen: effPathLen, codeSigning, subjectKeyId: keyId }), ...(constraints ? [nameConstraintsExtension(constraints)] : [])];
    if (parent) {
      certDer = await signByParent(ctx, parent, { subject, spki, keyKind: keyKindOfSpki(spki), days, extensions, codeSigning });
    } else {
      const v = validity({ now, days, caNotAfter: new Date(8.64e15) });
      const name = encodeName(subject);
      const algorithm = caSigner.algorithm;
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
      certDer = assembleSigned(tbs, algorithm.der, await caSigner.sign(tbs));
    }
  }

  // --- the passphrase that protects the key at rest (already settled for an issuing CA; a token's key never leaves the token)
  let keyPem: string | undefined;
  if (onToken) {
    keyPem = undefined;
  } else if (encrypt) {
    const pass = newPass ?? (await newCaPassphrase());
    keyPem = await withSpinner(ctx, "Encrypting the CA key", true, () => encryptPrivateKey(key!, pass!));
  } else {
    keyPem = privateKeyPem(key!);
    ctx.warn("the CA key is stored UNENCRYPTED (--no-passphrase): anyone who can read private/ca.key can issue certificates in this CA's name");
  }

  const cert = parseCertificate(certDer);
  const settings: Settings & { bundle: { includeIssued: boolean } } = {
    version: 1,
    subject: formatDn(cert.subject),
    keyType,
    defaultDays,
    crlDays,
    ...urls,
    codeSigning,
    pathLen: effPathLen,
    encrypted: onToken ? false : encrypt,
    policy: {},
    bundle: { includeIssued: false },
    ...(onToken ? { key: o.key } : {}),
  };
  const certPem = toPem("CERTIFICATE", certDer);

  // --- write: the store makes the new CA all or nothing (a directory: staged
  // and renamed into place, or every file exclusive and pki.json last)
  const settingsText = JSON.stringify(settings, null, 2) + "\n";
  // a first, empty CRL so that nginx's ssl_crl works from the start
  // the key is already in memory: no second decryption
  const signing = signingAuthority(authorityOf(store, settingsText, certPem, parent ? parent.ca.certPem : null), caSigner);
  const crl = await buildCrl(signing, "", crlDays, ctx.now(), 1n);
  const docs: DocWrite[] = [
    ...(keyPem !== undefined ? [{ name: DOC.caKey, data: keyPem, mode: 0o600 }] : []),
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
    { name: DOC.settings, data: settingsText },
  ];
  await store.create({ crlNumber: crl.crlNumber + 1n, docs });

  const fingerprint = crypto.createHash("sha256").update(certDer).digest("hex");
  await store.audit([{ command: "init", serial: cert.serial, subject: formatDn(cert.subject), outcome: "ok", imported: importing, ...(parent ? { parent: parent.ca.store.location } : {}), ...(onToken ? { key: caSigner.description } : {}) }]);
  if (parent) {
    await parent.ca.store.audit([{ command: "init --parent", profile: "ca", name: parent.name, serial: cert.serial, subject: formatDn(cert.subject), dir: store.location, outcome: "ok" }]);
    await parent.ca.store.close();
  }
  const data = {
    dir: ctx.dir,
    subject: formatDn(cert.subject),
    serial: cert.serial,
    notAfter: cert.notAfter.toISOString(),
    keyType,
    fingerprint,
    ...(parent ? { parent: parent.ca.store.location, parentName: parent.name, chain: path.resolve(docWhere(store, DOC.caChain)) } : {}),
    ...(constraints ? { nameConstraints: formatConstraints(constraints) } : {}),
    fingerprints: { sha256: fingerprint },
    cert: path.resolve(docWhere(store, DOC.caCert)),
    path: path.resolve(docWhere(store, DOC.caCert)),
    ...(onToken ? { key: caSigner.description } : {}),
  };
  return {
    data,
    messages: [
      `Created the CA "${data.subject}" in ${ctx.dir}`,
      `  key type ${keyType}, valid until ${data.notAfter}${onToken ? `, key on the token (${caSigner.description}); no key file` : encrypt ? ", key encrypted" : ", key NOT encrypted"}`,
      `  SHA-256 fingerprint ${fingerprint}`,
      ...(parent
        ? [
            `  signed by "${formatDn(parent.ca.cert.subject)}" (${parent.ca.store.location}), recorded there as "${parent.name}": \`pki -d ${parent.ca.store.location} revoke ${parent.name}\` revokes this CA`,
            ...(parent.crlPem === undefined ? [`pki: warning: the parent has no crl.pem yet: ${parentCrlAdvice(store)}`] : []),
          ]
        : []),
      `Next: pki issue server <name> --san dns:<host>   or   pki sign-csr <file.csr> --profile ssl`,
      `      and keep the CRL fresh (valid ${crlDays} days; nginx refuses every client once it expires): enable pki-crl.timer (README "Monitoring")`,
    ],
  };
}

// ---------------------------------------------------------------- an issuing CA (--parent)

interface OpenParent {
  ca: SigningAuthority;
  /** the name the parent records the new CA under */
  name: string;
  /** the parent's current crl.pem, when it has one (checked: signed by the parent) */
  crlPem?: string;
}

/**
 * The parent CA, ready to sign: a root (pki builds two tiers), valid now,
 * allowed to certify a CA (pathLen), its key decrypted with
 * --parent-passphrase-file (never argv) or a prompt.
 */
async function openParent(ctx: Context, store: CaStore, o: Opts): Promise<OpenParent> {
  const pstore = await openStore(path.resolve(o.parent!));
  if (!(await pstore.exists())) throw noCa(pstore);
  if (pstore.location === store.location) throw usage("--parent must be another CA directory than --dir");
  const pa = await openAuthority(pstore);
  if (hasParent(pa)) {
    throw new PkiError("POLICY_DENIED", `${pstore.location} is itself an issuing CA (it has a parent.crt): pki builds two tiers, a root and the CAs it signs; use the root as --parent`);
  }
  const name = o.parentName ?? path.basename(path.resolve(store.location));
  checkName(name);
  const prompt = ctx.interactive ? await import("../ui/prompt.js") : undefined;
  const ca = await openSigningAuthority(pa, async () => {
    if (o.parentPassphraseFile) return readSecretFile(o.parentPassphraseFile, secretFileOf("--parent-passphrase-file"));
    if (prompt) return prompt.askSecret(`Passphrase of the parent CA key (${docWhere(pstore, DOC.caKey)})`);
    throw missingInput("the parent CA's passphrase", "--parent-passphrase-file FILE");
  });
  const now = ctx.now().getTime();
  if (ca.cert.notAfter.getTime() <= now || ca.cert.notBefore.getTime() > now) {
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

/**
 * The parent signs the new CA's certificate and records it in its index
 * (profile "ca", under the name) before the certificate is released, so that
 * `pki -d <parent> revoke <name>` revokes the whole issuing CA.
 */
async function signByParent(ctx: Context, parent: OpenParent, r: { subject: Rdn[]; spki: Uint8Array; keyKind: KeyKind; days: number; extensions: Extension[]; codeSigning: boolean }): Promise<Uint8Array> {
  const p = parent.ca;
  if (p.settings.codeSigning && !r.codeSigning) {
    ctx.warn("the parent CA is tagged for code signing: its extendedKeyUsage limits every certificate below it");
  }
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
    { now: ctx.now, check: (index, tx) => refuseTakenNames(tx, [parent.name], index, ctx.now()) },
  );
  if (c!.capped) ctx.warn(`the issuing CA's validity is capped at the parent's notAfter (${p.cert.notAfter.toISOString()})`);
  return c!.der;
}
