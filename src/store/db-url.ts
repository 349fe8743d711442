/**
 * Database URLs (postgres://user@host:port/database), read without loading
 * the database driver: which --store values are databases, whether one
 * carries a password (argv must never), and how one is shown to a user.
 */

import { PkiError } from "../core/errors.js";

export const isDatabaseUrl = (location: string): boolean => /^postgres(ql)?:\/\//i.test(location);

/**
 * The user information of a URL that WHATWG URL refuses (a socket URL
 * without a host, postgres://user:pw@/db?host=/run/postgresql): everything
 * from "://" to the last "@" before the query, as the driver reads it (a
 * password may hold "@" or "/"). Null when there is none.
 */
function userinfoOf(url: string): { end: number; colon: number } | null {
  const scheme = url.indexOf("://");
  if (scheme < 0) return null;
  const start = scheme + 3;
  const q = url.indexOf("?", start);
  const at = url.lastIndexOf("@", (q < 0 ? url.length : q) - 1);
  if (at < start) return null;
  const colon = url.indexOf(":", start);
  return { end: at, colon: colon >= 0 && colon < at ? colon : -1 };
}

/** The URL as shown to users: without its password (also a password= query parameter). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "";
    for (const k of [...u.searchParams.keys()]) if (k.toLowerCase() === "password") u.searchParams.delete(k);
    return u.toString();
  } catch {
    const ui = userinfoOf(url);
    const cut = ui && ui.colon >= 0 ? url.slice(0, ui.colon) + url.slice(ui.end) : url;
    return cut.replace(/([?&]password=)[^&#]*/gi, "$1");
  }
}

/** Does the URL carry a password (which argv must never hold)? */
export function urlHasPassword(url: string): boolean {
  try {
    const u = new URL(url);
    return u.password !== "" || [...u.searchParams.keys()].some((k) => k.toLowerCase() === "password");
  } catch {
    return (userinfoOf(url)?.colon ?? -1) >= 0 || /[?&]password=/i.test(url);
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

/**
 * The URL's sslmode as pki applies it, before the driver sees it (libpq's
 * names). pki verifies a TLS connection or makes none: `require` and
 * `verify-ca` connect as `verify-full` (the server's certificate and its
 * name verified: the store holds the CA's records and its encrypted key),
 * which is what node-postgres does with them today, without its warning of
 * a change to come. `allow` and `prefer` would fall back to a plain
 * connection without saying so: refused, as is anything unknown. Returns the
 * URL for the driver; `uselibpqcompat=true` (the driver's libpq semantics,
 * asked for by name) is left to the driver as it is.
 */
export function applySslMode(url: string): string {
  // a fragment means nothing to a database URL: not part of the last parameter
  const hash = url.indexOf("#");
  const body = hash < 0 ? url : url.slice(0, hash);
  const q = body.indexOf("?");
  if (q < 0) return url;
  const params = body.slice(q + 1).split("&");
  // the URL as messages show it: made only for a message (this runs at every command's start)
  const shown = () => redactUrl(url);
  for (const p of params) {
    const k = p.split("=", 1)[0]!;
    // the driver reads lower-case names only: SSLMODE=verify-full would be a plain connection
    if (/^(sslmode|uselibpqcompat)$/i.test(k) && k !== k.toLowerCase()) throw new PkiError("USAGE", `write ${k.toLowerCase()} in lower case in the store URL (${shown()}): the driver ignores ${k}`, { exitCode: 2 });
  }
  if (params.includes("uselibpqcompat=true")) return url;
  const modes = params
    .filter((p) => p.startsWith("sslmode="))
    .map((p) => {
      try {
        return decodeURIComponent(p.slice(8));
      } catch {
        throw new PkiError("USAGE", `the sslmode in the store URL is not valid percent-encoding (${shown()})`, { exitCode: 2 });
      }
    });
  if (modes.length === 0) return url;
  if (modes.length > 1) throw new PkiError("USAGE", `the store URL gives sslmode ${modes.length} times (${shown()}): give it once`, { exitCode: 2 });
  const mode = modes[0]!;
  const tls = "use sslmode=verify-full (or require) for a verified TLS connection, or sslmode=disable for none";
  if (mode === "allow" || mode === "prefer") throw new PkiError("USAGE", `sslmode=${mode} falls back to a plain connection without saying so, which pki does not do: ${tls}`, { exitCode: 2 });
  if (!["disable", "require", "verify-ca", "verify-full", "no-verify"].includes(mode)) throw new PkiError("USAGE", `unknown sslmode ${JSON.stringify(mode)} in the store URL: ${tls}`, { exitCode: 2 });
  if (mode !== "require" && mode !== "verify-ca") return url;
  return body.slice(0, q + 1) + params.map((p) => (p.startsWith("sslmode=") ? "sslmode=verify-full" : p)).join("&") + (hash < 0 ? "" : url.slice(hash));
}
