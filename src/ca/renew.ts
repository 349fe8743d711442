/**
 * Renewal: a new certificate for the same subject, names and profile as an
 * old one of this CA (from the certificate and index.meta), its decisions
 * taken before the CA key is opened, committed in one locked step.
 *
 * - The key: the old certificate's public key is certified again (for a
 *   sign-csr'ed certificate that is the agent's own key, which pki never
 *   holds), unless rekey makes a new key of the same type (issued names
 *   only: pki writes private/<name>.key).
 * - The old certificate is revoked as "superseded" in the same index commit
 *   as the new one is recorded (authority.issue's `revoke`), and the CRL is
 *   re-signed under the same lock; keepOld leaves it valid.
 * - A revoked certificate is renewed only with rekey: its key may be the
 *   reason it was revoked.
 */
import { OID } from "../core/certificate.js";
import { PkiError, usage } from "../core/errors.js";
import { parseIndex, type IndexEntry, type MetaEntry } from "../core/index-format.js";
import { formatDn, type San } from "../core/names.js";
import { decodeSans, findExtension } from "../core/parse.js";
import { leafDays, type Profile } from "../core/profiles.js";
import { encryptPrivateKey, isEncryptedPem, keyKindOf, privateKeyPem, publicKeyFromSpki, spkiDer, type KeyPair, type KeyType } from "../crypto/keys.js";
import { RESPONDER_NAME } from "../serve/responder.js";
import { DOC, type CaStore } from "../store/store.js";
import { issue, openAuthority, profileOf, type Authority, type Issued, type IssueRequest, type SigningAuthority } from "./authority.js";
import { confinedPathsFor, issuedWrites, type IssuedPaths } from "./issued.js";
import { chainPem } from "./parent.js";
import { assertNoLiveDrops, refreshCrl } from "./revocation.js";
import { resolveCertificate, type CertTarget } from "./target.js";

/** The certificate to renew: this CA's, in its index, with its meta. */
export type RenewTarget = CertTarget & { entry: IndexEntry; meta: MetaEntry };

export interface RenewPlan {
  old: RenewTarget;
  profile: Profile;
  name: string | undefined;
  days: number;
  sans: San[];
  /** the files of an issued name (pki holds them); undefined for a certificate signed from a CSR */
  paths: IssuedPaths | undefined;
  /** private/<name>.key as stored, or null */
  oldKey: Buffer | null;
  wasRevoked: boolean;
  rekey: boolean;
  /** the old certificate, revoked as superseded in the same commit (empty with keepOld or when it was revoked already) */
  revoke: Array<{ serial: string; reason: "superseded" }>;
}

/** The old certificate, resolved (a file must be this CA's own certificate). */
export async function openRenewal(store: CaStore, target: string, now: Date): Promise<{ ca: Authority; old: CertTarget }> {
  const ca = await openAuthority(store);
  return { ca, old: await resolveCertificate(store, target, now, { recordedOnly: true }) };
}

/** What the renewal will be, every refusal before the CA key is opened. */
export async function planRenewal(store: CaStore, ca: Authority, t: CertTarget, target: string, o: { rekey: boolean; keepOld: boolean; days?: number }): Promise<RenewPlan> {
  if (!t.entry || !Buffer.from(t.cert.issuerRaw).equals(Buffer.from(ca.cert.subjectRaw))) {
    throw new PkiError("NOT_FOUND", `${target} is not a certificate in this CA's index: only certificates this CA issued can be renewed`);
  }
  if (!t.meta) throw new PkiError("PROFILE_INVALID", `serial ${t.entry.serial} has no profile in index.meta (it was not issued by pki): issue a new certificate instead`);
  const old = t as RenewTarget;
  if (old.meta.profile === "ca") {
    // an issuing CA gets a successor (new key, new directory), not a renewal: its clients move over, then it is revoked
    throw new PkiError("POLICY_DENIED", `${target} is an issuing CA (profile ca): make its successor with \`pki -d <new dir> init --parent ${store.location} --parent-name <new name>\`, move its clients over, then \`pki -d ${store.location} revoke ${old.meta.name ?? old.entry.serial} --reason superseded\``);
  }
  const profile = await profileOf(store, old.meta.profile);
  const name = old.meta.name;
  if (o.rekey && !name) throw usage(`--rekey is for names issued with \`pki issue\`; serial ${old.entry.serial} was signed from a CSR, whose key pki never holds: sign a new CSR instead`);
  const wasRevoked = old.entry.status === "R";
  if (wasRevoked && !o.rekey) {
    throw new PkiError("ALREADY_REVOKED", `serial ${old.entry.serial} is revoked; renewing it would certify the same key again: use --rekey (or sign a new CSR)`);
  }
  const days = leafDays(profile, o.days, ca.settings.defaultDays);
  const sanExt = findExtension(old.cert.extensions, OID.subjectAltName);
  const sans: San[] = sanExt ? decodeSans(sanExt.value).filter((s): s is San => s.type !== "other") : [];
  const paths = name ? confinedPathsFor(store, name) : undefined;
  const oldKey = name ? await store.read(DOC.issuedKey(name)) : null;
  // a name given by `sign-csr --name` has no key here: the agent holds it
  if (o.rekey && paths && oldKey === null) {
    throw usage(`--rekey makes a new key for a name whose key the CA directory holds; "${name}" was signed from a CSR (no ${paths.key}): sign a new CSR with \`pki sign-csr --name ${name} --replace\``);
  }
  const revoke = !o.keepOld && !wasRevoked ? [{ serial: old.entry.serial, reason: "superseded" as const }] : [];
  return { old, profile, name, days, sans, paths, oldKey, wasRevoked, rekey: o.rekey, revoke };
}

/** The stored key of the name is encrypted (a rekey must then encrypt the new one too). */
export const oldKeyEncrypted = (plan: RenewPlan): boolean => plan.oldKey !== null && isEncryptedPem(plan.oldKey.toString("utf8"));

/** The key type to generate on rekey: the old key's. */
export function rekeyType(plan: RenewPlan): KeyType {
  const k = publicKeyFromSpki(plan.old.cert.spki.raw);
  const kind = keyKindOf(k);
  if (kind === "rsa") {
    const bits = k.asymmetricKeyDetails?.modulusLength ?? 2048;
    return bits >= 4096 ? "rsa-4096" : bits >= 3072 ? "rsa-3072" : "rsa-2048";
  }
  if (kind === "ec-p521") return "ec-p384";
  return kind;
}

export interface Renewed {
  c: Issued;
  /** the new key's PEM as written (rekey), else undefined */
  keyPem: string | undefined;
  /** issued/<name>.p12 exists and still holds the old certificate */
  staleP12: boolean;
}

/**
 * Issue the new certificate (the old SPKI, or the new pair's), revoke the old
 * one in the same index commit and re-sign the CRL under the same lock; then
 * audit both.
 */
export async function commitRenewal(store: CaStore, signing: SigningAuthority, plan: RenewPlan, clock: () => Date, now: Date, k: { pair?: KeyPair; keyPass?: string }): Promise<Renewed> {
  const { old, name, revoke } = plan;
  const keyPem = k.pair ? (k.keyPass ? await encryptPrivateKey(k.pair.privateKey, k.keyPass) : privateKeyPem(k.pair.privateKey)) : undefined;
  const spki = k.pair ? spkiDer(k.pair.publicKey) : old.cert.spki.raw;
  const req: IssueRequest = {
    profile: plan.profile,
    subject: old.cert.subject,
    subjectRaw: old.cert.subjectRaw,
    sans: plan.sans,
    spki,
    keyKind: keyKindOf(publicKeyFromSpki(spki)),
    days: plan.days,
    name,
    files: name ? (certPem: string) => issuedWrites(store, name, undefined, { key: keyPem, cert: certPem, chain: chainPem(signing, certPem) }) : undefined,
  };
  const [c] = await issue(signing, [req], {
    now: clock,
    revoke,
    // the CRL is re-signed after the index commit: refuse before it if that CRL would un-revoke anyone
    check: async (_index, tx) => {
      if (revoke.length) await assertNoLiveDrops(signing, tx, await tx.indexText(), now);
    },
    after: async (tx) => {
      if (!revoke.length) return;
      await refreshCrl(signing, tx, now); // issue() itself refreshes a bundle that lists issued certificates
    },
  });
  await store.audit([
    { command: "renew", profile: c!.profile, serial: c!.serial, previousSerial: old.entry.serial, subject: c!.subject, name, rekey: plan.rekey, outcome: "ok" },
    ...(revoke.length ? [{ command: "renew", serial: old.entry.serial, subject: formatDn(old.cert.subject), reason: "superseded", outcome: "revoked" }] : []),
  ]);
  const staleP12 = name !== undefined && plan.paths !== undefined && (await store.read(`issued/${name}.p12`).catch(() => null)) !== null;
  return { c: c!, keyPem, staleP12 };
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
    if (!m.name || m.profile === "ca" || m.name === RESPONDER_NAME) continue;
    const e = index.get(m.serial);
    if (!e || e.status !== "V" || e.expires.getTime() <= now.getTime()) continue;
    if ((await store.read(DOC.issuedCert(m.name))) === null) continue;
    // the newest valid certificate of a name is its current one
    const prev = current.get(m.name);
    if (!prev || index.get(prev)!.expires.getTime() <= e.expires.getTime()) current.set(m.name, m.serial);
  }
  return [...current.entries()].filter(([, serial]) => index.get(serial)!.expires.getTime() <= horizon).map(([name]) => name).sort();
}
