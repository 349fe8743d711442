/**
 * pki doctor: check the CA's health; exit 1 when something needs action.
 *
 * Checks (each ok, warn or fail):
 *   ca-certificate  expired or expiring within 90 days: fail
 *   crl             missing, unreadable, not signed by the CA, expired or
 *                   expiring within a day, or not listing exactly the revoked
 *                   certificates of the index: fail (nginx refuses every
 *                   client once its CRL has expired)
 *   key-modes       private/ or a key file readable by group or others: fail
 *   index           index lines without certs/<SERIAL>.pem, or certificate
 *                   files without an index line: fail
 *   bundle          missing, without the CA, or (when it lists issued
 *                   certificates) older than the last revocation or listing a
 *                   revoked or expired one: fail
 *   bundle-size     the CA-names list nginx sends for the bundle (2 + the
 *                   DER subject length per certificate) over 65,535 bytes:
 *                   fail (every handshake fails); over 75% of it: warn
 *   allow-list      when pki.json turns it on: nginx-allow.map missing or
 *                   not listing exactly the valid certificates: fail
 *   parent, parent-crl, crl-chain (an issuing CA, ca/parent.ts): parent.crt
 *                   signs ca.crt; the parent's CRL is installed, does not
 *                   revoke this CA, and is not past or near its nextUpdate
 *                   (the message names the command to run on the root);
 *                   crl-chain.pem holds the current crl.pem + parent-crl.pem
 *   temp-files      leftover .*.tmp files of a killed process: warn
 *   lock            a .lock left by a dead process: warn
 *   ca-key          (CA key on a PKCS#11 token only) the token is reachable,
 *                   the PIN is accepted, the key is there, its public half
 *                   is ca.crt's and a test signature verifies with ca.crt:
 *                   fail otherwise; warn when no PIN source is given
 *
 * --repair, under the lock (which also takes over a stale lock), fixes what
 * is safe: it records each certs/<SERIAL>.pem that this CA signed but that
 * has no index line (status V, its notAfter, its subject; profile and name
 * stay in index.meta when the issuing run wrote them there), so it can be
 * listed and revoked (see the write-path comment in src/ca/authority.ts); a
 * file that is not a certificate of this CA is reported and never deleted.
 * It removes temporary files of dead processes, regenerates a bundle that
 * lists issued certificates, and re-signs a missing, expired, expiring or
 * out-of-step CRL when a passphrase source is given (or the key is
 * unencrypted). It never changes key modes: `chmod 600` is yours to run.
 */
import { keyAccess, type Context } from "../cli/context.js";
import type { Result } from "../cli/output.js";
import { openAuthority } from "../ca/authority.js";
import { breakLockOf, checkTokenKey, doctorDir, examineCa, repairCa, type DoctorKey } from "../ca/doctor.js";

interface Opts {
  /** --key: the CA key on a PKCS#11 token (pkcs11: URI) */
  key?: string;
  repair?: boolean;
  breakLock?: boolean;
}

export async function run(ctx: Context, _args: string[], o: Opts): Promise<Result> {
  const ca = await openAuthority(await ctx.openStore());
  doctorDir(ca); // a database has no directory to check: say what to use instead
  const key: DoctorKey = { keyUri: o.key, env: ctx.env, passphraseGiven: () => ctx.passphraseFromSources() !== undefined, access: () => keyAccess(ctx, o.key, { prompt: false }) };
  // explicit: a lock of another host (pki cannot see its process), or a strange or dead one
  let repaired: string[] | undefined = o.breakLock ? [await breakLockOf(ca)] : undefined;
  let f = await examineCa(ca, ctx.now());
  if (o.repair) {
    repaired = [...(repaired ?? []), ...(await repairCa(ca, f, key, ctx.now()))];
    f = await examineCa(ca, ctx.now());
  }
  const checks = f.checks;
  const tokenKey = await checkTokenKey(ca, key);
  if (tokenKey) checks.push(tokenKey);
  const failed = checks.filter((c) => c.status === "fail");
  const width = checks.reduce((w, c) => Math.max(w, c.name.length), 0);
  const text = checks.map((c) => `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.message}`).join("\n");
  const data: Record<string, unknown> = { checks };
  if (repaired) data.repaired = repaired;
  return {
    data,
    stdout: text,
    messages: repaired?.map((r) => `repair: ${r}`),
    failure: failed.length ? { code: "CA_INVALID", message: `${failed.length} check(s) failed: ${failed.map((c) => c.name).join(", ")}${o.repair ? "" : " (see above; `pki doctor --repair` fixes what is safe to fix)"}` } : undefined,
  };
}
