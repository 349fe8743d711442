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
import * as fs from "node:fs";
import * as path from "node:path";
import { caPassphrase, readSecretFile, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { OID } from "../core/certificate.js";
import { PkiError, usage } from "../core/errors.js";
import { formatIndex } from "../core/index-format.js";
import { formatDn, type San } from "../core/names.js";
import { decodeSans, findExtension } from "../core/parse.js";
import { encryptPrivateKey, generateKeyPair, isEncryptedPem, keyKindOf, privateKeyPem, publicKeyFromSpki, spkiDer, type KeyPair, type KeyType } from "../crypto/keys.js";
import { issue, issuedJson, openAuthority, openSigningAuthority, type IssueRequest } from "../ca/authority.js";
import { refreshCrl } from "../ca/revocation.js";
import type { FileWrite } from "../store/atomic.js";
import { CaDir, MODE } from "../store/ca-dir.js";
import { intOption } from "./options.js";
import { resolveCertificate } from "./target.js";
import { pathsFor } from "./issue.js";
import { withSpinner } from "../ui/progress.js";

interface Opts {
  rekey?: boolean;
  keepOld?: boolean;
  days?: string;
  keyPassphraseFile?: string;
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

export async function run(ctx: Context, args: string[], o: Opts): Promise<Result> {
  const store = new CaDir(ctx.dir);
  const days = intOption(o.days, "--days", 1, 36500);
  if (o.keyPassphraseFile && !o.rekey) throw usage("--key-passphrase-file goes with --rekey (without it the key is not touched)");
  const ca = openAuthority(store);
  const now = ctx.now();
  const old = resolveCertificate(store, args[0]!, now);
  ctx.auditInfo.target = args[0];
  if (!old.entry || !Buffer.from(old.cert.issuerRaw).equals(Buffer.from(ca.cert.subjectRaw))) {
    throw new PkiError("NOT_FOUND", `${args[0]} is not a certificate in this CA's index: only certificates this CA issued can be renewed`);
  }
  if (!old.meta) throw new PkiError("PROFILE_INVALID", `serial ${old.entry.serial} has no profile in index.meta (it was not issued by pki): issue a new certificate instead`);
  const profile = store.profile(old.meta.profile);
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
  const paths = name ? pathsFor(store, name) : undefined;

  // the key: the old SPKI, or a new pair of the same type
  let keyPass: string | undefined;
  if (o.rekey) {
    if (o.keyPassphraseFile) keyPass = readSecretFile(o.keyPassphraseFile, "key passphrase file");
    else if (fs.existsSync(paths!.key) && isEncryptedPem(fs.readFileSync(paths!.key, "utf8"))) {
      throw usage(`the current key of "${name}" is encrypted: pass --key-passphrase-file FILE to encrypt the new one too`);
    }
  }
  const signing = await openSigningAuthority(store, () => caPassphrase(ctx));
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
    files: paths
      ? (certPem: string): FileWrite[] => [
          ...(keyPem ? [{ path: paths.key, data: keyPem, mode: MODE.key }] : []),
          { path: paths.cert, data: certPem, mode: MODE.file },
          { path: paths.chain, data: certPem + signing.certPem, mode: MODE.file },
        ]
      : undefined,
  };
  const revoke = !o.keepOld && !wasRevoked ? [{ serial: old.entry.serial, reason: "superseded" as const }] : [];
  const [c] = await issue(signing, [req], {
    now: ctx.now,
    revoke,
    after: async (index) => {
      if (!revoke.length) return;
      const text = formatIndex(index);
      await refreshCrl(signing, text, now); // issue() itself refreshes a bundle that lists issued certificates
    },
  });
  store.audit({ command: "renew", profile: c!.profile, serial: c!.serial, previousSerial: old.entry.serial, subject: c!.subject, name, rekey: !!o.rekey, outcome: "ok" });
  if (revoke.length) store.audit({ command: "renew", serial: old.entry.serial, subject: formatDn(old.cert.subject), reason: "superseded", outcome: "revoked" });

  const messages = [
    `Renewed ${formatDn(old.cert.subject)} (${profile.name}): serial ${c!.serial}, until ${c!.notAfter.toISOString()}${o.rekey ? ", new key" : ", same key"}`,
    revoke.length ? `  old serial ${old.entry.serial} revoked (superseded); crl.pem re-signed` : `  old serial ${old.entry.serial} left ${wasRevoked ? "revoked" : "valid (--keep-old)"}`,
  ];
  if (paths) messages.push(`  certificate ${paths.cert}`, `  chain       ${paths.chain}`, ...(keyPem ? [`  key         ${paths.key}`] : []));
  if (paths && fs.existsSync(paths.p12)) messages.push(`pki: note: ${paths.p12} still holds the old certificate: run \`pki export p12 ${name}\``);
  if (!paths) messages.push("Hand the new certificate to its holder: `pki show " + c!.serial + "`, or certs/" + c!.serial + ".pem");
  return {
    data: {
      ...issuedJson(c!),
      serial: c!.serial,
      previousSerial: old.entry.serial,
      notAfter: c!.notAfter.toISOString(),
      name: name ?? null,
      revokedPrevious: revoke.length > 0,
      cert: paths ? path.resolve(paths.cert) : path.resolve(store.certPath(c!.serial)),
      key: paths && keyPem ? path.resolve(paths.key) : null,
      chain: paths ? path.resolve(paths.chain) : null,
    },
    messages,
  };
}
