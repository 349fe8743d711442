/**
 * PKCS#11 URIs (RFC 7512): which token, which key, which module.
 *
 *   pkcs11:token=pki;object=ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pki/pin
 *
 * Path attributes (before "?", separated by ";") select the token and the
 * object; query attributes (after "?", separated by "&") say how to reach it.
 * Values are percent-encoded (RFC 7512 2.3); `id` is raw bytes ("%01%a2").
 *
 * Choices (RFC 7512 leaves them to the consumer):
 * - an attribute given twice, or an unknown standard attribute, is refused
 *   (a typo such as `label=` must not silently select "any key");
 *   vendor attributes (`x-...`) are accepted and ignored;
 * - `pin-value` is refused: the URI sits in pki.json and in argv, and a PIN
 *   must be in neither; `pin-source` (a file) or $PKI_PKCS11_PIN instead;
 * - `pin-source` is a `file:` URI or an absolute path (no command forms).
 *
 * Pure: no I/O.
 */
import { PkiError } from "./errors.js";

export type Pkcs11ObjectType = "public" | "private" | "cert" | "secret-key" | "data";

export interface Pkcs11Uri {
  /** token label (CKA of the token: CK_TOKEN_INFO.label) */
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  libraryManufacturer?: string;
  libraryDescription?: string;
  libraryVersion?: string;
  slotDescription?: string;
  slotManufacturer?: string;
  slotId?: number;
  /** key label (CKA_LABEL) */
  object?: string;
  /** key id (CKA_ID), raw bytes */
  id?: Uint8Array;
  type?: Pkcs11ObjectType;
  /** absolute path of the file whose first line is the PIN (from `pin-source`) */
  pinFile?: string;
  modulePath?: string;
  moduleName?: string;
}

const PATH_ATTRS: Record<string, keyof Pkcs11Uri> = {
  token: "token",
  manufacturer: "manufacturer",
  serial: "serial",
  model: "model",
  "library-manufacturer": "libraryManufacturer",
  "library-description": "libraryDescription",
  "library-version": "libraryVersion",
  "slot-description": "slotDescription",
  "slot-manufacturer": "slotManufacturer",
  "slot-id": "slotId",
  object: "object",
  id: "id",
  type: "type",
};
const QUERY_ATTRS = new Set(["pin-source", "pin-value", "module-name", "module-path"]);
const TYPES: readonly string[] = ["public", "private", "cert", "secret-key", "data"];

const bad = (msg: string) => new PkiError("USAGE", `invalid pkcs11: URI: ${msg}`, { exitCode: 2 });

/** Percent-decode to bytes; refuses a stray "%" and characters RFC 3986 never allows unencoded. */
function decodeBytes(v: string, name: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x25) {
      const h = v.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) throw bad(`"${name}" has a "%" not followed by two hex digits`);
      out.push(parseInt(h, 16));
      i += 2;
    } else if (c <= 0x20 || c >= 0x7f || '"<>\\^`{|}#'.includes(v[i]!)) {
      throw bad(`"${name}" holds a character that must be percent-encoded (${JSON.stringify(v[i])})`);
    } else {
      out.push(c);
    }
  }
  return Uint8Array.from(out);
}

function decodeText(v: string, name: string): string {
  const bytes = decodeBytes(v, name);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw bad(`"${name}" is not UTF-8 once decoded`);
  }
}

/** `pin-source`: file:/abs, file:///abs, file://localhost/abs or /abs. */
function pinFilePath(v: string): string {
  let p = v;
  if (/^file:/i.test(p)) {
    p = p.slice(5);
    if (p.startsWith("//")) {
      const rest = p.slice(2);
      const slash = rest.indexOf("/");
      const host = slash < 0 ? rest : rest.slice(0, slash);
      if (host !== "" && host.toLowerCase() !== "localhost") throw bad(`pin-source names a remote host (${JSON.stringify(host)}): give a local file`);
      p = slash < 0 ? "" : rest.slice(slash);
    }
  }
  if (!p.startsWith("/")) throw bad("pin-source must be a file: URI or an absolute path to a file holding the PIN (e.g. pin-source=file:/etc/pki/token.pin)");
  return p;
}

export function isPkcs11Uri(s: string): boolean {
  return /^pkcs11:/i.test(s);
}

export function parsePkcs11Uri(s: string): Pkcs11Uri {
  if (!isPkcs11Uri(s)) throw bad(`it must start with "pkcs11:" (got ${JSON.stringify(s.slice(0, 16))}...)`);
  if (s.length > 4096) throw bad("longer than 4096 characters");
  const body = s.slice("pkcs11:".length);
  const q = body.indexOf("?");
  const pathPart = q < 0 ? body : body.slice(0, q);
  const queryPart = q < 0 ? "" : body.slice(q + 1);
  if (body.includes("#")) throw bad('"#" is not allowed (a fragment has no meaning here)');
  const out: Pkcs11Uri = {};
  const seen = new Set<string>();
  const split = (part: string, sep: string) => (part === "" ? [] : part.split(sep));

  for (const a of split(pathPart, ";")) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw bad(`path attribute ${JSON.stringify(a)} is not name=value`);
    const name = a.slice(0, eq).toLowerCase();
    const raw = a.slice(eq + 1);
    if (seen.has(name)) throw bad(`"${name}" appears twice`);
    seen.add(name);
    if (name.startsWith("x-")) continue; // vendor attribute
    const key = PATH_ATTRS[name];
    if (!key) throw bad(`unknown path attribute "${name}" (known: ${Object.keys(PATH_ATTRS).join(", ")})`);
    if (name === "id") {
      out.id = decodeBytes(raw, name);
      if (out.id.length === 0) throw bad('"id" is empty');
    } else if (name === "slot-id") {
      const v = decodeText(raw, name);
      if (!/^[0-9]{1,10}$/.test(v) || Number(v) > 0xffffffff) throw bad('"slot-id" must be a decimal number');
      out.slotId = Number(v);
    } else if (name === "type") {
      const v = decodeText(raw, name);
      if (!TYPES.includes(v)) throw bad(`"type" must be one of ${TYPES.join(", ")}`);
      out.type = v as Pkcs11ObjectType;
    } else {
      (out as Record<string, unknown>)[key] = decodeText(raw, name);
    }
  }
  for (const a of split(queryPart, "&")) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw bad(`query attribute ${JSON.stringify(a.split("=")[0])} is not name=value`);
    const name = a.slice(0, eq).toLowerCase();
    if (seen.has(name)) throw bad(`"${name}" appears twice`);
    seen.add(name);
    if (name.startsWith("x-")) continue;
    if (!QUERY_ATTRS.has(name)) throw bad(`unknown query attribute "${name}" (known: ${[...QUERY_ATTRS].join(", ")})`);
    // never echo a pin-value: the whole point is that it must not be in the URI
    if (name === "pin-value") throw bad("pin-value puts the PIN in pki.json and the command line: use pin-source=file:/path/to/pin (mode 0600) or PKI_PKCS11_PIN");
    const v = decodeText(a.slice(eq + 1), name);
    if (v === "") throw bad(`"${name}" is empty`);
    if (name === "pin-source") out.pinFile = pinFilePath(v);
    else if (name === "module-path") {
      if (!v.startsWith("/")) throw bad("module-path must be an absolute path to the PKCS#11 library (.so)");
      out.modulePath = v;
    } else {
      if (v.includes("/")) throw bad("module-name is a library name without a directory; use module-path for a path");
      out.moduleName = v;
    }
  }
  if (out.type !== undefined && out.type !== "private") throw bad(`type=${out.type}: the CA key is a private key (type=private, or leave type out)`);
  if (out.object === undefined && out.id === undefined) throw bad('name the key with "object=<label>" or "id=<bytes>"');
  return out;
}

const ENC_KEEP = /[A-Za-z0-9\-._~:@!$'()*+,=&]/;

/** Percent-encode a value for a path attribute (RFC 7512 2.3). */
export function encodeAttr(v: string | Uint8Array): string {
  const bytes = typeof v === "string" ? new TextEncoder().encode(v) : v;
  let s = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += typeof v === "string" && b < 0x80 && ENC_KEEP.test(c) && c !== "&" ? c : "%" + b.toString(16).padStart(2, "0");
  }
  return s;
}

/**
 * The key's name for messages and the audit log: the path part only (token,
 * object, id, slot), never the query (no module path clutter, no PIN file).
 */
export function describePkcs11Uri(u: Pkcs11Uri): string {
  const parts: string[] = [];
  if (u.token !== undefined) parts.push(`token=${encodeAttr(u.token)}`);
  if (u.serial !== undefined) parts.push(`serial=${encodeAttr(u.serial)}`);
  if (u.slotId !== undefined) parts.push(`slot-id=${u.slotId}`);
  if (u.object !== undefined) parts.push(`object=${encodeAttr(u.object)}`);
  if (u.id !== undefined) parts.push(`id=${encodeAttr(u.id)}`);
  return `pkcs11:${parts.join(";")}`;
}
