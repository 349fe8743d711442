/**
 * pki init: create a CA directory, or adopt an existing CA pair.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { assembleSigned, authorityKeyIdentifier, caExtensions, tbsCertificate, validity } from "../core/certificate.js";
import { PkiError, missingInput, usage } from "../core/errors.js";
import { decodeBasicConstraints, findExtension, parseCertificate } from "../core/parse.js";
import { dnFromParts, encodeName, formatDn, parseDn, type Rdn } from "../core/names.js";
import { parsePemBlocks, toPem } from "../core/pem.js";
import { newSerial } from "../core/serial.js";
import { encryptPrivateKey, generateKeyPair, keyIdentifier, keyKindOf, keyMatches, loadPrivateKey, parseKeyType, privateKeyPem, randomBytes, type KeyType, KEY_TYPES } from "../crypto/keys.js";
import { formatCrlNumber } from "../core/crl.js";
import { ensureDir, writeFilesAtomic, type FileWrite } from "../store/atomic.js";
import { CaDir, MODE, readInputFile, type Settings } from "../store/ca-dir.js";
import type { Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { openAuthority, signingAuthority } from "../ca/authority.js";
import { fileSigner, type CaSigner } from "../ca/signer.js";
import { buildCrl } from "../ca/revocation.js";
import { intOption, urlOption } from "./options.js";
import { withSpinner } from "../ui/progress.js";

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
}

const keyTypeName = (k: crypto.KeyObject): string => {
  const kind = keyKindOf(k);
  return kind === "rsa" ? `rsa-${k.asymmetricKeyDetails?.modulusLength}` : kind;
};

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = new CaDir(ctx.dir);
  if (store.hasCa()) throw new PkiError("CA_EXISTS", `${ctx.dir} already holds a CA; pki init never touches an existing CA (use another --dir)`);
  const importing = o.importCert !== undefined || o.importKey !== undefined;
  if (importing && (!o.importCert || !o.importKey)) throw usage("--import-cert and --import-key go together: pass both");

  let days = intOption(o.days, "--days", 1, 36500) ?? 3650;
  const pathLen = intOption(o.pathLen, "--path-len", 0, 16);
  const crlDays = intOption(o.crlDays, "--crl-days", 1, 3650) ?? 7;
  const defaultDays = intOption(o.defaultDays, "--default-days", 1, 36500);
  const urls = { crlUrl: urlOption(o.crlUrl, "--crl-url"), ocspUrl: urlOption(o.ocspUrl, "--ocsp-url"), caIssuersUrl: urlOption(o.caIssuersUrl, "--ca-issuers-url") };
  const encrypt = o.passphrase !== false;
  const prompt = ctx.interactive ? await import("../ui/prompt.js") : undefined;

  // --- the key and the certificate, in memory
  let key: crypto.KeyObject;
  let caSigner: CaSigner;
  let certDer: Uint8Array;
  let codeSigning = o.codeSigning === true;
  let keyType: string;
  let effPathLen = pathLen;

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
        cn = await prompt.askText("CA name (CN)", "Internal CA", true);
        if (org === undefined) org = (await prompt.askText("Organisation (O, optional)", "")) || undefined;
        if (kt === undefined) kt = await prompt.askChoice("Key type", KEY_TYPES, "ec-p256");
        if (o.days === undefined) days = intOption(await prompt.askText("Validity of the CA certificate in days", "3650", true), "validity", 1, 36500)!;
        if (o.codeSigning === undefined) codeSigning = await prompt.askYesNo("Tag the CA for code signing (admins sign packages with certificates it issues)?", false);
      }
      if (cn === undefined) throw missingInput("the CA's common name", "--cn NAME (or --subject)");
      subject = dnFromParts({ cn, org, ou: o.ou, country: o.country, locality: o.locality, state: o.state });
    }
    const kType: KeyType = parseKeyType(kt ?? "ec-p256");
    keyType = kType;
    const pair = await withSpinner(ctx, `Generating the ${kType} CA key`, kType.startsWith("rsa-3") || kType.startsWith("rsa-4"), () => generateKeyPair(kType));
    key = pair.privateKey;
    caSigner = fileSigner(key);
    const spki = caSigner.publicKey;
    const keyId = keyIdentifier(spki);
    const now = ctx.now();
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
      extensions: [...caExtensions({ pathLen, codeSigning, subjectKeyId: keyId }), authorityKeyIdentifier(keyId)],
    });
    certDer = assembleSigned(tbs, algorithm.der, await caSigner.sign(tbs));
  }

  // --- the passphrase that protects the key at rest
  let keyPem: string;
  if (encrypt) {
    let pass = ctx.passphraseFromSources();
    if (pass === undefined && prompt) pass = await prompt.askNewSecret("New CA key passphrase");
    if (pass === undefined) {
      throw missingInput("a passphrase for the CA key", "--passphrase-file FILE (or PKI_PASSPHRASE_FILE; or --no-passphrase to store it unencrypted)");
    }
    if (pass.length < 8) throw new PkiError("BAD_INPUT", "the CA key passphrase is shorter than 8 characters: choose a longer one");
    keyPem = await withSpinner(ctx, "Encrypting the CA key", true, () => encryptPrivateKey(key, pass!));
  } else {
    keyPem = privateKeyPem(key);
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
    encrypted: encrypt,
    policy: {},
    bundle: { includeIssued: false },
  };
  const certPem = toPem("CERTIFICATE", certDer);

  // --- write: directories first, then every file atomically; on failure remove what we made
  const created: string[] = [];
  const dirExisted = fs.existsSync(ctx.dir);
  try {
    for (const [d, mode] of [[ctx.dir, MODE.dir], [store.p("private"), MODE.privateDir], [store.p("certs"), MODE.dir], [store.p("issued"), MODE.dir]] as const) {
      if (!fs.existsSync(d)) {
        ensureDir(d, mode);
        created.push(d);
      }
    }
    const files: FileWrite[] = [
      { path: store.caKeyPath, data: keyPem, mode: MODE.key, exclusive: true },
      { path: store.caCertPath, data: certPem, mode: MODE.file, exclusive: true },
      { path: store.indexPath, data: "", mode: MODE.file, exclusive: true },
      { path: store.p("index.txt.attr"), data: "unique_subject = no\n", mode: MODE.file, exclusive: true },
      { path: store.crlNumberPath, data: formatCrlNumber(1n), mode: MODE.file, exclusive: true },
      { path: store.bundlePath, data: certPem, mode: MODE.file, exclusive: true },
    ];
    writeFilesAtomic(files);
    created.push(...files.map((f) => f.path));
    // pki.json last: its presence is what makes the directory a CA
    writeFilesAtomic([{ path: store.settingsPath, data: JSON.stringify(settings, null, 2) + "\n", mode: MODE.file, exclusive: true }]);
    created.push(store.settingsPath);
    // a first, empty CRL so that nginx's ssl_crl works from the start
    // the key is already in memory: no second decryption
    const signing = signingAuthority(openAuthority(store), caSigner);
    const crl = await buildCrl(signing, "", crlDays, ctx.now());
    writeFilesAtomic([
      { path: store.crlPath, data: crl.pem, mode: MODE.file },
      { path: store.crlNumberPath, data: formatCrlNumber(crl.crlNumber + 1n), mode: MODE.file },
    ]);
    created.push(store.crlPath);
  } catch (e) {
    for (const p of created.reverse()) fs.rmSync(p, { force: true, recursive: p !== ctx.dir || !dirExisted });
    throw e;
  }

  const fingerprint = crypto.createHash("sha256").update(certDer).digest("hex");
  store.audit({ command: "init", serial: cert.serial, subject: formatDn(cert.subject), outcome: "ok", imported: importing });
  const data = {
    dir: ctx.dir,
    subject: formatDn(cert.subject),
    serial: cert.serial,
    notAfter: cert.notAfter.toISOString(),
    keyType,
    fingerprint,
  };
  return {
    data,
    messages: [
      `Created the CA "${data.subject}" in ${ctx.dir}`,
      `  key type ${keyType}, valid until ${data.notAfter}${encrypt ? ", key encrypted" : ", key NOT encrypted"}`,
      `  SHA-256 fingerprint ${fingerprint}`,
      `Next: pki issue server <name> --san dns:<host>   or   pki sign-csr <file.csr> --profile ssl`,
    ],
  };
}
