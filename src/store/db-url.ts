/**
 * Database URLs (postgres://user@host:port/database), read without loading
 * the database driver: which --store values are databases, whether one
 * carries a password (argv must never), and how one is shown to a user.
 */

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
