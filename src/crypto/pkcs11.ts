/**
 * A CA key on a PKCS#11 token (an HSM, a smart card, SoftHSM): open a
 * session, log in, find the key, sign.
 *
 * Built on pkcs11js, the thinnest binding (a direct mirror of the C API):
 * pki builds every certificate and CRL as DER by hand and needs only
 * C_Sign with a key it has found, so a WebCrypto provider
 * (node-webcrypto-p11) or an object layer (graphene-pk11) would add
 * nothing but weight. pkcs11js is an optional dependency (a native addon):
 * it is loaded here, with import(), only when a pkcs11: URI is used, so an
 * install without a C++ toolchain still works for key files.
 *
 * Mechanisms, chosen to work on the tokens admins have (SoftHSM, YubiHSM 2,
 * Nitrokey HSM / SmartCard-HSM through OpenSC):
 * - ECDSA: the digest is computed here and signed with CKM_ECDSA (every
 *   token has it; CKM_ECDSA_SHA256 is missing on some); the token returns
 *   r || s, converted to the DER Ecdsa-Sig-Value X.509 needs (RFC 5758 3.2);
 * - RSA: CKM_SHA256_RSA_PKCS (PKCS#1 v1.5 with SHA-256); where a token lacks
 *   it, CKM_RSA_PKCS over a DigestInfo built here (the same signature).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as der from "../core/der.js";
import { PkiError } from "../core/errors.js";
import { describePkcs11Uri, type Pkcs11Uri } from "../core/pkcs11-uri.js";

// ---------------------------------------------------------------- the binding (typed here: it may be absent at build time)

interface Attr {
  type: number;
  value?: number | boolean | string | Buffer;
}
interface TokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: number;
}
interface SlotInfo {
  slotDescription: string;
  manufacturerID: string;
}
interface Module {
  load(path: string): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetInfo(): { manufacturerID: string; libraryDescription: string; libraryVersion: { major: number; minor: number } };
  C_GetSlotList(tokenPresent?: boolean): Buffer[];
  C_GetSlotInfo(slot: Buffer): SlotInfo;
  C_GetTokenInfo(slot: Buffer): TokenInfo;
  C_GetMechanismList(slot: Buffer): number[];
  C_OpenSession(slot: Buffer, flags: number): Buffer;
  C_CloseSession(session: Buffer): void;
  C_Login(session: Buffer, userType: number, pin?: string): void;
  C_FindObjectsInit(session: Buffer, template: Attr[]): void;
  C_FindObjects(session: Buffer, max: number): Buffer[];
  C_FindObjectsFinal(session: Buffer): void;
  C_GetAttributeValue(session: Buffer, object: Buffer, template: Attr[]): Attr[];
  C_SignInit(session: Buffer, mechanism: { mechanism: number; parameter?: Buffer }, key: Buffer): void;
  C_Sign(session: Buffer, data: Buffer, out: Buffer): Buffer;
  C_GenerateKeyPair(session: Buffer, mechanism: { mechanism: number }, publicTemplate: Attr[], privateTemplate: Attr[]): { publicKey: Buffer; privateKey: Buffer };
}

// PKCS#11 v2.40 constants (pkcs11t.h)
const CKO_PUBLIC_KEY = 2;
const CKO_PRIVATE_KEY = 3;
const CKK_RSA = 0;
const CKK_EC = 3;
const CKA = {
  CLASS: 0x0,
  TOKEN: 0x1,
  PRIVATE: 0x2,
  LABEL: 0x3,
  KEY_TYPE: 0x100,
  ID: 0x102,
  SENSITIVE: 0x103,
  SIGN: 0x108,
  VERIFY: 0x10a,
  MODULUS: 0x120,
  MODULUS_BITS: 0x121,
  PUBLIC_EXPONENT: 0x122,
  EXTRACTABLE: 0x162,
  EC_PARAMS: 0x180,
  EC_POINT: 0x181,
} as const;
const CKM_RSA_PKCS_KEY_PAIR_GEN = 0x0;
const CKM_RSA_PKCS = 0x1;
const CKM_SHA256_RSA_PKCS = 0x40;
const CKM_EC_KEY_PAIR_GEN = 0x1040;
const CKM_ECDSA = 0x1041;
const CKF_RW_SESSION = 0x2;
const CKF_SERIAL_SESSION = 0x4;
const CKF_LOGIN_REQUIRED = 0x4;
const CKF_PROTECTED_AUTHENTICATION_PATH = 0x100;
const CKU_USER = 1;

const CURVES = {
  "ec-p256": { oid: "1.2.840.10045.3.1.7", crv: "P-256", size: 32, digest: "sha256" },
  "ec-p384": { oid: "1.3.132.0.34", crv: "P-384", size: 48, digest: "sha384" },
  "ec-p521": { oid: "1.3.132.0.35", crv: "P-521", size: 66, digest: "sha512" },
} as const;
type Curve = keyof typeof CURVES;

/** A PKCS#11 return value by name: pkcs11js errors read "CKR_PIN_INCORRECT:160". */
const ckr = (e: unknown): string => /CKR_[A-Z_]+/.exec(String((e as Error)?.message ?? e))?.[0] ?? "";

const p11Error = (msg: string, e?: unknown) =>
  new PkiError("PKCS11_ERROR", e === undefined ? msg : `${msg}: ${ckr(e) || String((e as Error)?.message ?? e).split("\n")[0]}`);

// ---------------------------------------------------------------- loading

/** Where module-name is looked for (Debian's p11-kit, OpenSC and SoftHSM directories). */
const MODULE_DIRS = ["/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11", "/usr/lib/pkcs11", "/usr/lib/softhsm", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib"];

export function modulePathOf(u: Pkcs11Uri): string {
  if (u.modulePath) return u.modulePath;
  if (u.moduleName) {
    const names = u.moduleName.endsWith(".so") ? [u.moduleName] : [u.moduleName + ".so", u.moduleName];
    for (const d of MODULE_DIRS) for (const n of names) if (fs.existsSync(path.join(d, n))) return path.join(d, n);
    throw p11Error(`PKCS#11 module "${u.moduleName}" not found in ${MODULE_DIRS.join(", ")}: give its path with module-path=`);
  }
  throw new PkiError("USAGE", "the pkcs11: URI names no module: add ?module-path=/path/to/the/pkcs11/library.so (e.g. /usr/lib/softhsm/libsofthsm2.so)", { exitCode: 2 });
}

type Binding = { PKCS11: new () => Module };
let binding: Promise<Binding> | undefined;

async function loadBinding(): Promise<Binding> {
  const name = "pkcs11js"; // not a literal: the build must not need the optional package
  binding ??= import(name).then(
    (m: { default?: Binding } & Binding) => m.default ?? m,
    () => {
      throw p11Error("PKCS#11 support is not installed: run `npm install pkcs11js` where pki is installed (it builds a native addon: needs g++, make and python3)");
    },
  );
  return binding;
}

/** One loaded and initialised module per path per process, finalised at exit. */
const modules = new Map<string, Module>();

async function openModule(modulePath: string): Promise<Module> {
  const have = modules.get(modulePath);
  if (have) return have;
  const { PKCS11 } = await loadBinding();
  let st: fs.Stats;
  try {
    st = fs.statSync(modulePath);
  } catch {
    throw p11Error(`PKCS#11 module ${modulePath} does not exist: install it (SoftHSM: apt-get install softhsm2; a YubiHSM or Nitrokey: the vendor's or OpenSC's module) or fix module-path`);
  }
  if (!st.isFile()) throw p11Error(`PKCS#11 module ${modulePath} is not a file`);
  const mod = new PKCS11();
  try {
    mod.load(modulePath);
  } catch (e) {
    throw p11Error(`cannot load PKCS#11 module ${modulePath} (not a PKCS#11 library for this machine?)`, e);
  }
  try {
    mod.C_Initialize();
  } catch (e) {
    if (ckr(e) !== "CKR_CRYPTOKI_ALREADY_INITIALIZED") throw p11Error(`PKCS#11 module ${modulePath} failed to initialise (check its configuration, e.g. SOFTHSM2_CONF)`, e);
  }
  modules.set(modulePath, mod);
  if (modules.size === 1) {
    process.once("exit", () => {
      for (const m of modules.values()) {
        try {
          m.C_Finalize();
        } catch {
          // nothing to do at exit
        }
      }
    });
  }
  return mod;
}

// ---------------------------------------------------------------- token, session, key

const trim = (s: string) => s.replace(/[\s\0]+$/, "");

function findSlot(mod: Module, u: Pkcs11Uri, modulePath: string): { slot: Buffer; info: TokenInfo } {
  let slots: Buffer[];
  try {
    slots = mod.C_GetSlotList(true);
  } catch (e) {
    throw p11Error(`cannot list the tokens of ${modulePath}`, e);
  }
  const matches: Array<{ slot: Buffer; info: TokenInfo }> = [];
  for (const slot of slots) {
    let info: TokenInfo;
    try {
      info = mod.C_GetTokenInfo(slot);
    } catch {
      continue;
    }
    if (u.token !== undefined && trim(info.label) !== u.token) continue;
    if (u.manufacturer !== undefined && trim(info.manufacturerID) !== u.manufacturer) continue;
    if (u.model !== undefined && trim(info.model) !== u.model) continue;
    if (u.serial !== undefined && trim(info.serialNumber) !== u.serial) continue;
    if (u.slotId !== undefined && slotNumber(slot) !== u.slotId) continue;
    if (u.slotDescription !== undefined || u.slotManufacturer !== undefined) {
      const si = mod.C_GetSlotInfo(slot);
      if (u.slotDescription !== undefined && trim(si.slotDescription) !== u.slotDescription) continue;
      if (u.slotManufacturer !== undefined && trim(si.manufacturerID) !== u.slotManufacturer) continue;
    }
    matches.push({ slot, info });
  }
  const which = u.token !== undefined ? `a token labelled "${u.token}"` : "a token matching the URI";
  if (!matches.length) throw p11Error(`${which} is not present in ${modulePath} (${slots.length} token(s) there): plug it in or check the label with \`pkcs11-tool --module ${modulePath} --list-token-slots\``);
  if (matches.length > 1) throw p11Error(`${matches.length} tokens match the URI in ${modulePath}: add serial=<token serial> to choose one`);
  return matches[0]!;
}

/** CK_SLOT_ID from pkcs11js's handle buffer (a little-endian CK_ULONG). */
function slotNumber(slot: Buffer): number {
  return slot.length >= 8 ? Number(slot.readBigUInt64LE(0) & 0xffffffffn) : slot.readUInt32LE(0);
}

function login(mod: Module, session: Buffer, info: TokenInfo, pin: string | null, tokenName: string): void {
  try {
    if (info.flags & CKF_PROTECTED_AUTHENTICATION_PATH && pin === null) mod.C_Login(session, CKU_USER);
    else mod.C_Login(session, CKU_USER, pin ?? "");
  } catch (e) {
    const r = ckr(e);
    if (r === "CKR_USER_ALREADY_LOGGED_IN") return;
    if (r === "CKR_PIN_INCORRECT" || r === "CKR_PIN_LEN_RANGE" || r === "CKR_PIN_INVALID") {
      throw new PkiError("BAD_PIN", `the PIN was refused by ${tokenName} (${r}): check pin-source / PKI_PKCS11_PIN; tokens lock after a few wrong PINs`);
    }
    if (r === "CKR_PIN_LOCKED") throw new PkiError("BAD_PIN", `the user PIN of ${tokenName} is locked (too many wrong PINs): unlock it with the SO PIN (pkcs11-tool --init-pin --login --login-type so)`);
    if (r === "CKR_PIN_EXPIRED") throw new PkiError("BAD_PIN", `the user PIN of ${tokenName} has expired: change it on the token`);
    throw p11Error(`login to ${tokenName} failed`, e);
  }
}

function findObjects(mod: Module, session: Buffer, template: Attr[]): Buffer[] {
  mod.C_FindObjectsInit(session, template);
  try {
    return mod.C_FindObjects(session, 4);
  } finally {
    mod.C_FindObjectsFinal(session);
  }
}

function keyTemplate(cls: number, u: { object?: string; id?: Uint8Array }): Attr[] {
  const t: Attr[] = [{ type: CKA.CLASS, value: cls }];
  if (u.object !== undefined) t.push({ type: CKA.LABEL, value: u.object });
  if (u.id !== undefined) t.push({ type: CKA.ID, value: Buffer.from(u.id) });
  return t;
}

function attrs(mod: Module, session: Buffer, obj: Buffer, types: number[]): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const type of types) {
    try {
      const [a] = mod.C_GetAttributeValue(session, obj, [{ type }]);
      if (a?.value instanceof Buffer) out.set(type, a.value);
    } catch {
      // sensitive or absent: the caller decides whether it needs it
    }
  }
  return out;
}

const ulong = (b: Buffer | undefined): number | undefined => (b === undefined ? undefined : b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0));

const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

function curveOfParams(params: Buffer | undefined): Curve | undefined {
  if (!params) return undefined;
  try {
    const oid = der.readOid(params, der.read(params));
    return (Object.keys(CURVES) as Curve[]).find((c) => CURVES[c].oid === oid);
  } catch {
    return undefined;
  }
}

/** CKA_EC_POINT: a DER OCTET STRING around the X9.62 point (the standard), or the bare point (some tokens). */
function ecPoint(v: Buffer, size: number): Buffer {
  if (v.length === 2 * size + 1 && v[0] === 0x04) return v;
  try {
    const n = der.read(v);
    if (n.tag === der.TAG.OCTET_STRING) return Buffer.from(der.content(v, n));
  } catch {
    // fall through
  }
  throw p11Error("the token's public EC point is in an unknown encoding");
}

function spkiOf(kind: Curve | "rsa", a: Map<number, Buffer>): Uint8Array | undefined {
  let jwk: crypto.JsonWebKey;
  if (kind === "rsa") {
    const n = a.get(CKA.MODULUS);
    const e = a.get(CKA.PUBLIC_EXPONENT);
    if (!n || !e) return undefined;
    jwk = { kty: "RSA", n: b64u(n), e: b64u(e) };
  } else {
    const p = a.get(CKA.EC_POINT);
    if (!p) return undefined;
    const c = CURVES[kind];
    const pt = ecPoint(p, c.size);
    if (pt.length !== 2 * c.size + 1 || pt[0] !== 0x04) throw p11Error("the token's public EC point is not an uncompressed point");
    jwk = { kty: "EC", crv: c.crv, x: b64u(pt.subarray(1, 1 + c.size)), y: b64u(pt.subarray(1 + c.size)) };
  }
  return new Uint8Array(crypto.createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "der" }));
}

export interface TokenKey {
  /** "ec-p256" | "ec-p384" | "ec-p521" | "rsa" */
  kind: Curve | "rsa";
  /** SPKI DER of the key pair */
  spki: Uint8Array;
  /** "pkcs11:token=...;object=..." */
  description: string;
  /** the signature over data, hashed with `digest`, in X.509 form */
  sign(data: Uint8Array): Uint8Array;
  close(): void;
}

export interface OpenOptions {
  /** the PIN; called only when the token needs a login */
  pin: () => Promise<string>;
  /** make a key pair there instead of using one (pki init --key-type); refused when the key exists */
  generate?: "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" | "rsa-4096";
}

/** Open the token a URI names, log in, find (or generate) the key. Nothing is written anywhere but, with `generate`, the token. */
export async function openTokenKey(u: Pkcs11Uri, o: OpenOptions): Promise<TokenKey> {
  const modulePath = modulePathOf(u);
  const mod = await openModule(modulePath);
  const { slot, info } = findSlot(mod, u, modulePath);
  const description = describePkcs11Uri(u);
  const tokenName = `token "${trim(info.label)}"`;
  let session: Buffer;
  try {
    session = mod.C_OpenSession(slot, CKF_SERIAL_SESSION | (o.generate ? CKF_RW_SESSION : 0));
  } catch (e) {
    throw p11Error(`cannot open a session on ${tokenName}`, e);
  }
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    try {
      mod.C_CloseSession(session);
    } catch {
      // the token may be gone
    }
  };
  try {
    if (info.flags & CKF_LOGIN_REQUIRED) {
      const pin = info.flags & CKF_PROTECTED_AUTHENTICATION_PATH ? null : await o.pin();
      login(mod, session, info, pin, tokenName);
    }
    let found = findObjects(mod, session, keyTemplate(CKO_PRIVATE_KEY, u));
    if (o.generate) {
      if (found.length) throw p11Error(`${tokenName} already holds a private key matching ${description}: drop --key-type to use it, or name another object`);
      generate(mod, session, u, o.generate, tokenName);
      found = findObjects(mod, session, keyTemplate(CKO_PRIVATE_KEY, u));
    }
    if (!found.length) throw p11Error(`no private key matching ${description} on ${tokenName}: create one (pki init --key URI --key-type ec-p256, or pkcs11-tool --keypairgen) or fix object=/id=`);
    if (found.length > 1) throw p11Error(`${found.length} private keys match ${description} on ${tokenName}: add id=<CKA_ID> to choose one`);
    const priv = found[0]!;
    const pa = attrs(mod, session, priv, [CKA.KEY_TYPE, CKA.ID, CKA.LABEL, CKA.EC_PARAMS, CKA.MODULUS, CKA.PUBLIC_EXPONENT]);
    const keyType = ulong(pa.get(CKA.KEY_TYPE));
    let kind: Curve | "rsa";
    if (keyType === CKK_RSA) kind = "rsa";
    else if (keyType === CKK_EC) {
      const c = curveOfParams(pa.get(CKA.EC_PARAMS));
      if (!c) throw new PkiError("WEAK_KEY", `the key ${description} is on a curve pki does not sign with: use P-256, P-384 or P-521`);
      kind = c;
    } else throw new PkiError("WEAK_KEY", `the key ${description} is neither RSA nor EC (CKK ${keyType ?? "?"}): pki signs with RSA and ECDSA keys on tokens`);

    // the public half: the matching public key object (same id, else same label), else (RSA) the private key's own modulus
    const pubTemplate = keyTemplate(CKO_PUBLIC_KEY, { id: pa.get(CKA.ID)?.length ? pa.get(CKA.ID) : u.id, object: pa.get(CKA.ID)?.length ? undefined : u.object });
    const pubs = findObjects(mod, session, pubTemplate);
    let spki: Uint8Array | undefined;
    if (pubs.length === 1) spki = spkiOf(kind, attrs(mod, session, pubs[0]!, [CKA.EC_POINT, CKA.MODULUS, CKA.PUBLIC_EXPONENT]));
    if (!spki && kind === "rsa") spki = spkiOf(kind, pa);
    if (!spki) throw p11Error(`${tokenName} holds no public key object for ${description}: pki needs it to know the key (store it with pkcs11-tool --write-object ... --type pubkey and the same --id)`);

    let mechs: number[] = [];
    try {
      mechs = mod.C_GetMechanismList(slot);
    } catch {
      // assume the standard ones
    }
    const sign = signerOf(mod, session, priv, kind, spki, mechs, description);
    return { kind, spki, description, sign, close };
  } catch (e) {
    close();
    throw e;
  }
}

const DIGEST_INFO_SHA256 = Buffer.from("3031300d060960864801650304020105000420", "hex");

function signerOf(mod: Module, session: Buffer, key: Buffer, kind: Curve | "rsa", spki: Uint8Array, mechs: number[], description: string): (data: Uint8Array) => Uint8Array {
  const fail = (e: unknown) => {
    const r = ckr(e);
    if (r === "CKR_USER_NOT_LOGGED_IN") return new PkiError("PIN_REQUIRED", `the token wants a login to sign with ${description}: give the PIN (pin-source or PKI_PKCS11_PIN)`, { exitCode: 2 });
    if (r === "CKR_DEVICE_REMOVED" || r === "CKR_TOKEN_NOT_PRESENT" || r === "CKR_SESSION_HANDLE_INVALID") return p11Error(`the token holding ${description} went away while signing`, e);
    return p11Error(`the token refused to sign with ${description}`, e);
  };
  if (kind === "rsa") {
    const modulusBytes = Math.ceil((crypto.createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }).asymmetricKeyDetails?.modulusLength ?? 4096) / 8);
    const direct = mechs.length === 0 || mechs.includes(CKM_SHA256_RSA_PKCS);
    return (data) => {
      try {
        if (direct) {
          mod.C_SignInit(session, { mechanism: CKM_SHA256_RSA_PKCS }, key);
          return new Uint8Array(mod.C_Sign(session, Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(modulusBytes)));
        }
        mod.C_SignInit(session, { mechanism: CKM_RSA_PKCS }, key);
        const digestInfo = Buffer.concat([DIGEST_INFO_SHA256, crypto.createHash("sha256").update(data).digest()]);
        return new Uint8Array(mod.C_Sign(session, digestInfo, Buffer.alloc(modulusBytes)));
      } catch (e) {
        throw fail(e);
      }
    };
  }
  const c = CURVES[kind];
  return (data) => {
    let rs: Buffer;
    try {
      mod.C_SignInit(session, { mechanism: CKM_ECDSA }, key);
      rs = mod.C_Sign(session, crypto.createHash(c.digest).update(data).digest(), Buffer.alloc(2 * c.size));
    } catch (e) {
      throw fail(e);
    }
    return ecdsaRawToDer(rs, c.size);
  };
}

/** PKCS#11 ECDSA signatures are r || s, each the curve's size; X.509 wants SEQUENCE { INTEGER r, INTEGER s } (RFC 5480). */
export function ecdsaRawToDer(rs: Uint8Array, size: number): Uint8Array {
  if (rs.length !== 2 * size) throw p11Error(`the token returned an ECDSA signature of ${rs.length} bytes, expected ${2 * size}`);
  return der.seq(der.integer(rs.subarray(0, size)), der.integer(rs.subarray(size)));
}

function generate(mod: Module, session: Buffer, u: Pkcs11Uri, type: NonNullable<OpenOptions["generate"]>, tokenName: string): void {
  // an id links the two halves (and lets the URI name the key by id later)
  const id = Buffer.from(u.id ?? crypto.randomBytes(8));
  const label = u.object;
  const common = (cls: number): Attr[] => [
    { type: CKA.CLASS, value: cls },
    { type: CKA.TOKEN, value: true },
    { type: CKA.ID, value: id },
    ...(label !== undefined ? [{ type: CKA.LABEL, value: label }] : []),
  ];
  let mechanism: number;
  let pub: Attr[];
  if (type.startsWith("rsa-")) {
    mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
    pub = [...common(CKO_PUBLIC_KEY), { type: CKA.VERIFY, value: true }, { type: CKA.MODULUS_BITS, value: Number(type.slice(4)) }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }];
  } else {
    mechanism = CKM_EC_KEY_PAIR_GEN;
    pub = [...common(CKO_PUBLIC_KEY), { type: CKA.VERIFY, value: true }, { type: CKA.EC_PARAMS, value: Buffer.from(der.oid(CURVES[type as Curve].oid)) }];
  }
  // the private half never leaves the token: sensitive, not extractable
  const priv: Attr[] = [...common(CKO_PRIVATE_KEY), { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.EXTRACTABLE, value: false }, { type: CKA.SIGN, value: true }];
  try {
    mod.C_GenerateKeyPair(session, { mechanism }, pub, priv);
  } catch (e) {
    throw p11Error(`${tokenName} could not generate a ${type} key pair`, e);
  }
}
