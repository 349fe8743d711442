/**
 * pki renew <target>: a new certificate for the same subject, names and
 * profile (from the old certificate and index.meta).
 *
 * - The key: the old certificate's public key is certified again (for a
 *   sign-csr'ed certificate that is the agent's own key, which pki never
 *   holds), unless --rekey makes a new key of the same type (issued names
 *   only: pki writes private/<name>.key).
 * - The old certificate is revoked as "superseded" in the same index commit
 *   as the new one is recorded (authority.issue's `revoke`), and the CRL is
 *   re-signed under the same lock; --keep-old leaves it valid (to overlap
 *   during a rollout; revoke it later).
 * - A revoked certificate is renewed only with --rekey: its key may be the
 *   reason it was revoked.
 */
import { chainPem } from "../ca/parent.js";
import * as path from "node:path";
import { keyAccess, readSecretFile, secretFileOf, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { OID } from "../core/certificate.js";
import { PkiError, usage } from "../core/errors.js";
import { parseIndex } from "../core/index-format.js";
import { formatDn, type San } from "../core/names.js";
import { decodeSans, findExtension } from "../core/parse.js";
import { encryptPrivateKey, generateKeyPair, isEncryptedPem, keyKindOf, privateKeyPem, publicKeyFromSpki, spkiDer, type KeyPair, type KeyType } from "../crypto/keys.js";
import { docWhere, issue, issuedJson, noCa, openAuthority, openSigningAuthority, profileOf, type IssueRequest, type SigningAuthority } from "../ca/authority.js";
import { assertNoLiveDrops, refreshCrl } from "../ca/revocation.js";
import { confinedPathsFor, issuedWrites } from "../ca/issued.js";
import { DOC, type CaStore } from "../store/store.js";
import { intOption } from "./options.js";
import { resolveCertificate } from "../ca/target.js";
import { withSpinner } from "../ui/progress.js";

interface Opts {
  /** --key: the CA key on a PKCS#11 token (pkcs11: URI) */
  key?: string;
  rekey?: boolean;
  keepOld?: boolean;
  days?: string;
  keyPassphraseFile?: string;
  due?: string;
}

/** The key type to generate on --rekey: the old key's. */
function keyTypeOf(spki: Uint8Array): KeyType {
  const k = publicKeyFromSpki(spki);
  const kind = keyKindOf(k);
  if (kind === "rsa") {
    const bits = k.asymmetricKeyDetails?.modulusLength ?? 2048;
    return bits >= 4096 ? "rsa-4096" : bits >= 3072 ? "rsa-3072" : "rsa-2048";
  }
  if (kind === "ec-p521") return "ec-p384";
  return kind;
}

/**
 * What `renew --due <days>` renews: the current certificate of each issued
 * name (`pki issue`: pki holds its files, so the renewal lands where the
 * service already reads it) that is valid and expires within the window.
 * Not renewed: certificates signed from a CSR without a name (nobody would
 * collect the new one, and the old one would be revoked under its holder),
 * issuing CAs (profile `ca`) and the OCSP responder certificate, which
 * `pki serve` renews itself.
 */
export async function dueNames(store: CaStore, now: Date, days: number): Promise<string[]> {
  const horizon = now.getTime() + days * 86_400_000;
  const index = new Map(parseIndex((await store.indexText()).toString("utf8")).map((e) => [e.serial, e]));
  const current = new Map<string, string>();
  for (const m of (await store.meta()).values()) {
    if (!m.name || m.profile === "ca" || m.name === "ocsp-responder") continue;
    const e = index.get(m.serial);
    if (!e || e.status !== "V" || e.expires.getTime() <= now.getTime()) continue;
    if ((await store.read(DOC.issuedCert(m.name))) === null) continue;
    // the newest valid certificate of a name is its current one
    const prev = current.get(m.name);
    if (!prev || index.get(prev)!.expires.getTime() <= e.expires.getTime()) current.set(m.name, m.serial);
  }
  return [...current.entries()].filter(([, serial]) => index.get(serial)!.expires.getTime() <= horizon).map(([name]) => name).sort();
}

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = await ctx.openStore();
  if (o.due === undefined) {
    if (args[0] === undefined) throw usage("give the certificate to renew (serial, file or issued name), or --due <days> to renew every issued name expiring within that many days");
    let signing: Promise<SigningAuthority> | undefined;
    return renewOne(ctx, store, args[0], o, () => (signing ??= openSigningAuthority(store, keyAccess(ctx, o.key))));
  }
  if (args[0] !== undefined) throw usage("--due renews every issued name that is due: give no target with it");
  if (o.rekey || o.keyPassphraseFile) throw usage("--due renews with the same keys: --rekey goes with one target");
  const within = intOption(o.due, "--due", 0, 36500)!;
  if (!(await store.exists())) throw noCa(store);
  const names = await dueNames(store, ctx.now(), within);
  let signing: Promise<SigningAuthority> | undefined;
  const renewed: Record<string, unknown>[] = [];
  const messages: string[] = [];
  for (const name of names) {
    const r = await renewOne(ctx, store, name, o, () => (signing ??= openSigningAuthority(store, keyAccess(ctx, o.key))));
    renewed.push(r.data);
    messages.push(...(r.messages ?? []));
  }
  if (!names.length) messages.push(`Nothing is due: no issued name expires within ${within} day(s)`);
  else messages.push(`Renewed ${names.length} certificate(s); reload the services that use them`);
  return { data: { renewed, due: within }, messages };
}

async function renewOne(ctx: Context, store: CaStore, target: string, o: Opts, openSigning: () => Promise<SigningAuthority>): Promise<Result> {
  const args = [target];
  const days = intOption(o.days, "--days", 1, 36500);
  if (o.keyPassphraseFile && !o.rekey) throw usage("--key-passphrase-file goes with --rekey (without it the key is not touched)");
  const ca = await openAuthority(store);
  const now = ctx.now();
  const old = await resolveCertificate(store, args[0]!, now, { recordedOnly: true });
  ctx.auditInfo.target = args[0];
  if (!old.entry || !Buffer.from(old.cert.issuerRaw).equals(Buffer.from(ca.cert.subjectRaw))) {
    throw new PkiError("NOT_FOUND", `${args[0]} is not a certificate in this CA's index: only certificates this CA issued can be renewed`);
  }
  if (!old.meta) throw new PkiError("PROFILE_INVALID", `serial ${old.entry.serial} has no profile in index.meta (it was not issued by pki): issue a new certificate instead`);
  if (old.meta.profile === "ca") {
    // an issuing CA gets a successor (new key, new directory), not a renewal: its clients move over, then it is revoked
    throw new PkiError("POLICY_DENIED", `${args[0]} is an issuing CA (profile ca): make its successor with \`pki -d <new dir> init --parent ${store.location} --parent-name <new name>\`, move its clients over, then \`pki -d ${store.location} revoke ${old.meta.name ?? old.entry.serial} --reason superseded\``);
  }
  const profile = await profileOf(store, old.meta.profile);
  const name = old.meta.name;
  if (o.rekey && !name) throw usage(`--rekey is for names issued with \`pki issue\`; serial ${old.entry.serial} was signed from a CSR, whose key pki never holds: sign a new CSR instead`);
  const wasRevoked = old.entry.status === "R";
  if (wasRevoked && !o.rekey) {
    throw new PkiError("ALREADY_REVOKED", `serial ${old.entry.serial} is revoked; renewing it would certify the same key again: use --rekey (or sign a new CSR)`);
  }
  if (days !== undefined && profile.maxDays !== undefined && days > profile.maxDays) {
    throw new PkiError("POLICY_DENIED", `profile "${profile.name}" allows at most ${profile.maxDays} days, not ${days}`);
  }
  const effDays = days ?? profile.days ?? ca.settings.defaultDays ?? 365;

  const sanExt = findExtension(old.cert.extensions, OID.subjectAltName);
  const sans: San[] = sanExt ? decodeSans(sanExt.value).filter((s): s is San => s.type !== "other") : [];
  const paths = name ? confinedPathsFor(store, name) : undefined;
  const oldKey = name ? await store.read(DOC.issuedKey(name)) : null;
  // a name given by `sign-csr --name` has no key here: the agent holds it
  if (o.rekey && paths && oldKey === null) {
    throw usage(`--rekey makes a new key for a name whose key the CA directory holds; "${name}" was signed from a CSR (no ${paths.key}): sign a new CSR with \`pki sign-csr --name ${name} --replace\``);
  }

  // the key: the old SPKI, or a new pair of the same type
  let keyPass: string | undefined;
  if (o.rekey) {
    if (o.keyPassphraseFile) keyPass = readSecretFile(o.keyPassphraseFile, secretFileOf("--key-passphrase-file"));
    else if (oldKey !== null && isEncryptedPem(oldKey.toString("utf8"))) {
      throw usage(`the current key of "${name}" is encrypted: pass --key-passphrase-file FILE to encrypt the new one too`);
    }
  }
  const signing = await openSigning();
  let pair: KeyPair | undefined;
  if (o.rekey) {
    const kt = keyTypeOf(old.cert.spki.raw);
    pair = await withSpinner(ctx, `Generating a new ${kt} key`, kt === "rsa-3072" || kt === "rsa-4096", () => generateKeyPair(kt));
  }
  const keyPem = pair ? (keyPass ? await encryptPrivateKey(pair.privateKey, keyPass) : privateKeyPem(pair.privateKey)) : undefined;
  const spki = pair ? spkiDer(pair.publicKey) : old.cert.spki.raw;

  const req: IssueRequest = {
    profile,
    subject: old.cert.subject,
    subjectRaw: old.cert.subjectRaw,
    sans,
    spki,
    keyKind: keyKindOf(publicKeyFromSpki(spki)),
    days: effDays,
    name,
    files: name ? (certPem: string) => issuedWrites(store, name, undefined, { key: keyPem, cert: certPem, chain: chainPem(signing, certPem) }) : undefined,
  };
  const revoke = !o.keepOld && !wasRevoked ? [{ serial: old.entry.serial, reason: "superseded" as const }] : [];
  const [c] = await issue(signing, [req], {
    now: ctx.now,
    revoke,
    // the CRL is re-signed after the index commit: refuse before it if that CRL would un-revoke anyone
    check: async (_index, tx) => {
      if (revoke.length) await assertNoLiveDrops(signing, tx, await tx.indexText(), now);
    },
    after: async (_index, tx) => {
      if (!revoke.length) return;
      await refreshCrl(signing, tx, now); // issue() itself refreshes a bundle that lists issued certificates
    },
  });
  await store.audit([
    { command: "renew", profile: c!.profile, serial: c!.serial, previousSerial: old.entry.serial, subject: c!.subject, name, rekey: !!o.rekey, outcome: "ok" },
    ...(revoke.length ? [{ command: "renew", serial: old.entry.serial, subject: formatDn(old.cert.subject), reason: "superseded", outcome: "revoked" }] : []),
  ]);

  const messages = [
    `Renewed ${formatDn(old.cert.subject)} (${profile.name}): serial ${c!.serial}, until ${c!.notAfter.toISOString()}${o.rekey ? ", new key" : ", same key"}`,
    revoke.length ? `  old serial ${old.entry.serial} revoked (superseded); crl.pem re-signed` : `  old serial ${old.entry.serial} left ${wasRevoked ? "revoked" : "valid (--keep-old)"}`,
  ];
  if (paths) messages.push(`  certificate ${paths.cert}`, `  chain       ${paths.chain}`, ...(keyPem ? [`  key         ${paths.key}`] : []));
  if (name && paths && (await store.read(`issued/${name}.p12`).catch(() => null)) !== null) messages.push(`pki: note: ${paths.p12} still holds the old certificate: run \`pki export p12 ${name}\``);
  if (!paths) messages.push("Hand the new certificate to its holder: `pki show " + c!.serial + "`, or certs/" + c!.serial + ".pem");
  return {
    data: {
      ...issuedJson(c!),
      serial: c!.serial,
      previousSerial: old.entry.serial,
      notAfter: c!.notAfter.toISOString(),
      name: name ?? null,
      revokedPrevious: revoke.length > 0,
      cert: paths ? path.resolve(paths.cert) : path.resolve(docWhere(store, `certs/${c!.serial}.pem`)),
      path: paths ? path.resolve(paths.cert) : path.resolve(docWhere(store, `certs/${c!.serial}.pem`)),
      certificate: c!.pem,
      key: paths && keyPem ? path.resolve(paths.key) : null,
      chain: paths ? path.resolve(paths.chain) : null,
    },
    messages,
  };
}
