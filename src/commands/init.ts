/**
 * pki init: create a CA directory, or adopt an existing CA pair. This module
 * settles the options (asking on a terminal what is missing); the CA is made
 * and committed by ca/init.ts.
 */
import { clearKeyRefused } from "../store/db-url.js";
import type * as crypto from "node:crypto";
import * as path from "node:path";
import { PkiError, missingInput, usage } from "../core/errors.js";
import { formatConstraints, parseConstraintList, type NameConstraints } from "../core/name-constraints.js";
import { dnFromParts, formatDn, parseDn, type Rdn } from "../core/names.js";
import { parsePkcs11Uri } from "../core/pkcs11-uri.js";
import { encryptPrivateKey, generateKeyPair, parseKeyType, privateKeyPem, type KeyType, KEY_TYPES } from "../crypto/keys.js";
import { DOC, type CaStore } from "../store/store.js";
import { keyAccess, readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import type { ParsedCertificate } from "../core/parse.js";
import { caPresent, docWhere } from "../ca/open-ca.js";
import { adoptedSigner, createCa, keyTypeOfSpki, newCaCertificate, openParent, readAdoptedCert, TOKEN_KEY_TYPES, type OpenParent, type TokenKeyType } from "../ca/init.js";
import { parentCrlAdvice } from "../ca/parent.js";
import { fileSigner, tokenSigner, type CaSigner } from "../ca/signer.js";
import { withSpinner } from "../ui/progress.js";
import { intOption, urlOption } from "./options.js";

type Prompt = typeof import("../ui/prompt.js") | undefined;

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

/** The usage errors of flags that exclude or need each other, before anything is read or made. */
function checkOptions(o: Opts, importing: boolean): void {
  if (o.key !== undefined) {
    parsePkcs11Uri(o.key); // a bad URI is a usage error before anything else
    if (o.importKey !== undefined) throw usage("--key (a key on a token) and --import-key (a key file) exclude each other: pass one");
    if (o.importCert !== undefined && o.keyType !== undefined) throw usage("--import-cert with --key uses the key already on the token: drop --key-type");
  } else if (importing && (!o.importCert || !o.importKey)) throw usage("--import-cert and --import-key go together: pass both");
  if (o.parent !== undefined && importing) throw usage("--parent makes a new issuing CA; --import-cert adopts an existing one: pass one of them");
  if (o.parent === undefined && (o.parentPassphraseFile !== undefined || o.parentName !== undefined)) throw usage("--parent-passphrase-file and --parent-name go with --parent DIR");
  if (o.nameConstraints !== undefined && importing) throw usage("--name-constraints is written into a new CA certificate; an imported one keeps its own");
}

/** The numbers and URLs of the command line (the prompts may still change days, crlDays and codeSigning). */
function settingsOptions(o: Opts, issuing: boolean) {
  return {
    // an issuing CA lives shorter than its root (5 years against 10), so that it is renewed under a root still valid
    days: intOption(o.days, "--days", 1, 36500) ?? (issuing ? 1825 : 3650),
    pathLen: intOption(o.pathLen, "--path-len", 0, 16),
    crlDays: intOption(o.crlDays, "--crl-days", 1, 3650) ?? 7,
    defaultDays: intOption(o.defaultDays, "--default-days", 1, 36500),
    urls: { crlUrl: urlOption(o.crlUrl, "--crl-url"), ocspUrl: urlOption(o.ocspUrl, "--ocsp-url"), caIssuersUrl: urlOption(o.caIssuersUrl, "--ca-issuers-url") },
    codeSigning: o.codeSigning === true,
  };
}
type SettingsOptions = ReturnType<typeof settingsOptions>;

async function newCaPassphrase(ctx: Context, prompt: Prompt): Promise<string> {
  let pass = ctx.passphraseFromSources();
  if (pass === undefined && prompt) pass = await prompt.askNewSecret("New CA key passphrase");
  if (pass === undefined) {
    throw missingInput("a passphrase for the CA key", "--passphrase-file FILE (or PKI_PASSPHRASE_FILE; or --no-passphrase to store it unencrypted)");
  }
  if (pass.length < 8) throw new PkiError("BAD_INPUT", "the CA key passphrase is shorter than 8 characters: choose a longer one");
  return pass;
}

/** The parent's passphrase: --parent-passphrase-file (never argv), else a prompt. */
const parentPassphrase = (o: Opts, prompt: Prompt) => async (keyWhere: string): Promise<string> => {
  if (o.parentPassphraseFile) return readSecretFile(o.parentPassphraseFile, secretFileOf("--parent-passphrase-file"));
  if (prompt) return prompt.askSecret(`Passphrase of the parent CA key (${keyWhere})`);
  throw missingInput("the parent CA's passphrase", "--parent-passphrase-file FILE");
};

/** The token's key: opened (or made) once the rest of the command line is known to be good. */
const tokenKey = (ctx: Context, uri: string, generate?: TokenKeyType): Promise<CaSigner> =>
  withSpinner(ctx, generate ? `Generating the ${generate} CA key on the token` : "Opening the CA key on the token", true, () => tokenSigner(uri, { pin: keyAccess(ctx, uri).pin!, generate }));

/** The CA's certificate and key, and what init settled on the way (the key type, a prompt's answers, the adopted certificate's pathLen). */
interface Pair {
  certDer: Uint8Array;
  signer: CaSigner;
  /** the key, when it is a file (a token's key never leaves the token) */
  key?: crypto.KeyObject;
  keyType: string;
  codeSigning: boolean;
  pathLen?: number;
  crlDays: number;
}

/** --import-cert / --import-key (or --key): the existing pair, checked. */
async function adoptPair(ctx: Context, o: Opts, prompt: Prompt, n: SettingsOptions): Promise<Pair> {
  const a = readAdoptedCert(o.importCert!);
  const k = await adoptedSigner(
    a,
    o.importCert!,
    o.key !== undefined
      ? { token: () => tokenKey(ctx, o.key!) }
      : {
          keyFile: o.importKey!,
          passphrase: async () => {
            const p = ctx.passphraseFromSources();
            if (p !== undefined) return p;
            if (prompt) return prompt.askSecret(`Passphrase of ${o.importKey}`);
            throw missingInput("the passphrase of the imported key", "--passphrase-file");
          },
        },
  );
  if (a.cert.notAfter.getTime() < ctx.now().getTime()) ctx.warn(`the imported CA certificate expired on ${a.cert.notAfter.toISOString()}`);
  return { certDer: a.der, signer: k.signer, key: k.key, keyType: k.keyType, codeSigning: n.codeSigning || a.codeSigning, pathLen: a.pathLen, crlDays: n.crlDays };
}

/** Each answer is checked where it is typed: the same rules as --cn and --days. */
const asError = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    return e instanceof PkiError ? e.message : String(e);
  }
};

interface Answers {
  subject: Rdn[];
  keyType?: string;
  days: number;
  crlDays: number;
  codeSigning: boolean;
}

/** The new CA's subject (and, on a terminal without --cn, the other choices asked for). */
async function askSubject(o: Opts, prompt: Prompt, n: SettingsOptions): Promise<Answers> {
  const a: Omit<Answers, "subject"> = { keyType: o.keyType, days: n.days, crlDays: n.crlDays, codeSigning: n.codeSigning };
  if (o.subject) return { ...a, subject: parseDn(o.subject) };
  let cn = o.cn;
  let org = o.org;
  if (cn === undefined && prompt) {
    cn = await prompt.askText("CA name (CN)", "Internal CA", true, (v) => asError(() => dnFromParts({ cn: v })));
    if (org === undefined) org = (await prompt.askText("Organisation (O, optional)", "")) || undefined;
    if (a.keyType === undefined && o.key === undefined) a.keyType = await prompt.askChoice("Key type", KEY_TYPES, "ec-p256");
    if (o.days === undefined) a.days = intOption(await prompt.askText("Validity of the CA certificate in days", "3650", true, (v) => asError(() => intOption(v, "the validity", 1, 36500))), "validity", 1, 36500)!;
    // nginx refuses every client once the CRL expires: the timer re-signs it (README "Keep the CRL fresh")
    if (o.crlDays === undefined) a.crlDays = intOption(await prompt.askText("Validity of each CRL in days (pki-crl.timer re-signs it)", "7", true, (v) => asError(() => intOption(v, "the CRL validity", 1, 3650))), "CRL validity", 1, 3650)!;
    if (o.codeSigning === undefined) a.codeSigning = await prompt.askYesNo("Tag the CA for code signing (admins sign packages with certificates it issues)?", false);
  }
  if (cn === undefined) throw missingInput("the CA's common name", "--cn NAME (or --subject)");
  return { ...a, subject: dnFromParts({ cn, org, ou: o.ou, country: o.country, locality: o.locality, state: o.state }) };
}

/** A new key: made on the token (--key with --key-type) or opened there (--key), else generated here. */
async function newKey(ctx: Context, o: Opts, kt: string | undefined): Promise<Pick<Pair, "signer" | "key" | "keyType">> {
  if (o.key !== undefined) {
    let generate: TokenKeyType | undefined;
    if (kt !== undefined) {
      const t = parseKeyType(kt);
      if (!(TOKEN_KEY_TYPES as readonly string[]).includes(t)) throw usage(`--key-type ${t} cannot be made on a token by pki: use one of ${TOKEN_KEY_TYPES.join(", ")}`);
      generate = t as TokenKeyType;
    }
    const signer = await tokenKey(ctx, o.key, generate);
    return { signer, keyType: keyTypeOfSpki(signer.publicKey) };
  }
  const kType: KeyType = parseKeyType(kt ?? "ec-p256");
  const pair = await withSpinner(ctx, `Generating the ${kType} CA key`, kType.startsWith("rsa-3") || kType.startsWith("rsa-4"), () => generateKeyPair(kType));
  return { signer: fileSigner(pair.privateKey), key: pair.privateKey, keyType: kType };
}

/** A new key and its CA certificate (self-signed, or signed and recorded by the parent). */
async function makePair(ctx: Context, o: Opts, prompt: Prompt, n: SettingsOptions, parent: OpenParent | undefined, constraints: NameConstraints | undefined): Promise<Pair> {
  const a = await askSubject(o, prompt, n);
  const k = await newKey(ctx, o, a.keyType);
  const pathLen = parent ? (n.pathLen ?? 0) : n.pathLen;
  const certDer = await newCaCertificate({ subject: a.subject, signer: k.signer, days: a.days, pathLen, codeSigning: a.codeSigning, constraints, parent, now: ctx.now, warn: (m) => ctx.warn(m) });
  return { ...k, certDer, codeSigning: a.codeSigning, pathLen, crlDays: a.crlDays };
}

/** private/ca.key: encrypted with the new passphrase (already settled for an issuing CA), or in the clear with a warning; none for a token's key. */
async function keyAtRest(ctx: Context, pair: Pair, o: Opts, passphrase: () => Promise<string>): Promise<string | undefined> {
  if (o.key !== undefined) return undefined;
  if (o.passphrase !== false) {
    const pass = await passphrase();
    return withSpinner(ctx, "Encrypting the CA key", true, () => encryptPrivateKey(pair.key!, pass));
  }
  ctx.warn("the CA key is stored UNENCRYPTED (--no-passphrase): anyone who can read private/ca.key can issue certificates in this CA's name");
  return privateKeyPem(pair.key!);
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (await caPresent(store)) throw new PkiError("CA_EXISTS", `${ctx.dir} already holds a CA; pki init never touches an existing CA (use ${store.kind === "postgres" ? "another database" : "another --dir"})`);
  const importing = o.importCert !== undefined || o.importKey !== undefined;
  checkOptions(o, importing);
  if (store.kind === "postgres" && o.passphrase === false && o.key === undefined) throw clearKeyRefused(store.location);
  const constraints = o.nameConstraints !== undefined ? parseConstraintList(o.nameConstraints) : undefined;
  const prompt: Prompt = ctx.interactive ? await import("../ui/prompt.js") : undefined;
  // an issuing CA: the parent is checked (and its key opened) before any key is generated here
  const parent = o.parent !== undefined ? await openParent(store, o.parent, o.parentName, parentPassphrase(o, prompt), ctx.now()) : undefined;
  const n = settingsOptions(o, parent !== undefined);
  // an issuing CA is recorded by its parent as soon as it is signed: every input the
  // rest of init needs is settled before that, so a refusal leaves the parent untouched
  const newPass = parent && o.passphrase !== false && o.key === undefined ? await newCaPassphrase(ctx, prompt) : undefined;
  const pair = importing ? await adoptPair(ctx, o, prompt, n) : await makePair(ctx, o, prompt, n, parent, constraints);
  const keyPem = await keyAtRest(ctx, pair, o, async () => newPass ?? (await newCaPassphrase(ctx, prompt)));
  const { cert, fingerprint } = await createCa({
    store,
    certDer: pair.certDer,
    signer: pair.signer,
    keyPem,
    settings: { keyType: pair.keyType, defaultDays: n.defaultDays, crlDays: pair.crlDays, ...n.urls, codeSigning: pair.codeSigning, pathLen: pair.pathLen, encrypted: o.key === undefined && o.passphrase !== false, key: o.key },
    parent,
    imported: importing,
    now: ctx.now(),
  });
  return created(ctx, store, o, { cert, fingerprint, pair, parent, constraints });
}

/** What init prints: the --json fields, and the summary with the next steps. */
function created(ctx: Context, store: CaStore, o: Opts, r: { cert: ParsedCertificate; fingerprint: string; pair: Pair; parent?: OpenParent; constraints?: NameConstraints }): Result {
  const { cert, fingerprint, parent } = r;
  const { keyType, signer } = r.pair;
  const onToken = o.key !== undefined;
  const data = {
    dir: ctx.dir,
    subject: formatDn(cert.subject),
    serial: cert.serial,
    notAfter: cert.notAfter.toISOString(),
    keyType,
    fingerprint,
    ...(parent ? { parent: parent.ca.store.location, parentName: parent.name, chain: path.resolve(docWhere(store, DOC.caChain)) } : {}),
    ...(r.constraints ? { nameConstraints: formatConstraints(r.constraints) } : {}),
    fingerprints: { sha256: fingerprint },
    cert: path.resolve(docWhere(store, DOC.caCert)),
    path: path.resolve(docWhere(store, DOC.caCert)),
    ...(onToken ? { key: signer.description } : {}),
  };
  return {
    data,
    messages: [
      `Created the CA "${data.subject}" in ${ctx.dir}`,
      `  key type ${keyType}, valid until ${data.notAfter}${onToken ? `, key on the token (${signer.description}); no key file` : o.passphrase !== false ? ", key encrypted" : ", key NOT encrypted"}`,
      `  SHA-256 fingerprint ${fingerprint}`,
      ...(parent
        ? [
            `  signed by "${formatDn(parent.ca.cert.subject)}" (${parent.ca.store.location}), recorded there as "${parent.name}": \`pki -d ${parent.ca.store.location} revoke ${parent.name}\` revokes this CA`,
            ...(parent.crlPem === undefined ? [`pki: warning: the parent has no crl.pem yet: ${parentCrlAdvice(store)}`] : []),
          ]
        : []),
      `Next: pki issue server <name> --san dns:<host>   or   pki sign-csr <file.csr> --profile ssl`,
      `      and keep the CRL fresh (valid ${r.pair.crlDays} days; nginx refuses every client once it expires): enable pki-crl.timer (README "Monitoring")`,
    ],
  };
}
