/**
 * Database URLs (postgres://user@host:port/database), read without loading
 * the database driver: which --store values are databases, whether one
 * carries a password (argv must never), and how one is shown to a user.
 */

import { PkiError } from "../core/errors.js";

export const isDatabaseUrl = (location: string): boolean => /^postgres(ql)?:\/\//i.test(location);

/** The URL as shown to users: without its password (also a password= query parameter). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "";
    for (const k of [...u.searchParams.keys()]) if (k.toLowerCase() === "password") u.searchParams.delete(k);
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1@").replace(/([?&]password=)[^&]*/gi, "$1");
  }
}

/** Does the URL carry a password (which argv must never hold)? */
export function urlHasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== "" || [...u.searchParams.keys()].some((k) => k.toLowerCase() === "password");
  } catch {
    return /\/\/[^:/@]*:[^@/]*@/.test(url) || /[?&]password=/i.test(url);
  }
}

/**
 * The database is read by its admins, its backups and its replicas: the CA
 * key goes in encrypted or not at all. init and import refuse
 * --no-passphrase with this before they make anything; the store refuses
 * such a key with it too.
 */
export function clearKeyRefused(location: string): PkiError {
  return new PkiError("USAGE", `the CA key must be encrypted in a PostgreSQL store (${location}): give a passphrase instead of --no-passphrase, or keep the key on a token (--key pkcs11:...); nothing changed`, { exitCode: 2 });
}
