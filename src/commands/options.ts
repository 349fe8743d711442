/** Option parsing helpers shared by commands, so usage errors read the same everywhere. */
import { usage } from "../core/errors.js";

export function intOption(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) throw usage(`${flag} takes a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

export function urlOption(v: string | undefined, flag: string): string | undefined {
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw usage(`${flag} takes a URL such as http://pki.example.lan/crl.pem, not ${JSON.stringify(v)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:" && u.protocol !== "ldap:") throw usage(`${flag}: use an http:// URL (clients fetch CRLs and CA certificates over plain HTTP)`);
  if (!/^[\x21-\x7e]+$/.test(v)) throw usage(`${flag}: the URL must be ASCII without spaces`);
  return v;
}

export function choiceOption<T extends string>(v: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  const hit = choices.find((c) => c.toLowerCase() === v.toLowerCase());
  if (!hit) throw usage(`${flag} takes one of ${choices.join(", ")}, not ${JSON.stringify(v)}`);
  return hit;
}
