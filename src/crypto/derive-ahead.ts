/**
 * PBKDF2 derivations started ahead of their use: cli/prefetch.ts starts the
 * CA key's (600,000 iterations, ~150 ms of a core) as soon as the command
 * line names the key and the passphrase, before the command's modules load;
 * loadPrivateKey (crypto/keys.ts) takes it when it decrypts that key.
 *
 * This module loads first, so it depends on node:crypto alone (its own small
 * reader of the PBES2 parameters; keys.ts's readPbes2 remains the one that
 * decides how a key is decrypted). A derivation is used only by a request
 * for the very same passphrase, salt, iteration count, key length and PRF,
 * and only once; anything else derives anew, so a guess that was wrong
 * costs CPU, never correctness.
 */
import * as crypto from "node:crypto";

export interface Pbkdf2Params {
  salt: Buffer;
  iterations: number;
  keyLength: number;
  prf: string;
}

const ahead: Array<{ passphrase: string; p: Pbkdf2Params; dk: Promise<Buffer> }> = [];

export function pbkdf2(passphrase: string, p: Pbkdf2Params): Promise<Buffer> {
  return new Promise<Buffer>((res, rej) => crypto.pbkdf2(Buffer.from(passphrase, "utf8"), p.salt, p.iterations, p.keyLength, p.prf, (e, k) => (e ? rej(e) : res(k))));
}

/** The derivation of these parameters: the one started ahead when it matches, else a new one. */
export function derivedKey(passphrase: string, p: Pbkdf2Params): Promise<Buffer> {
  const i = ahead.findIndex((d) => d.passphrase === passphrase && d.p.iterations === p.iterations && d.p.keyLength === p.keyLength && d.p.prf === p.prf && d.p.salt.equals(p.salt));
  if (i < 0) return pbkdf2(passphrase, p);
  return ahead.splice(i, 1)[0]!.dk;
}

const PRF: Record<string, string> = { "2a864886f70d0207": "sha1", "2a864886f70d0208": "sha224", "2a864886f70d0209": "sha256", "2a864886f70d020a": "sha384", "2a864886f70d020b": "sha512" };
const AES: Record<string, number> = { "608648016503040102": 16, "608648016503040116": 24, "60864801650304012a": 32 };

/** One DER element at `at`: its tag and the bounds of its content. */
function el(b: Buffer, at: number, end: number): { tag: number; start: number; end: number } {
  if (at + 2 > end) throw new Error("short");
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || p + n > end) throw new Error("length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
  }
  if (p + len > end) throw new Error("overrun");
  return { tag, start: p, end: p + len };
}

function kids(b: Buffer, e: { start: number; end: number }): Array<{ tag: number; start: number; end: number }> {
  const out = [];
  for (let at = e.start; at < e.end; ) {
    const k = el(b, at, e.end);
    out.push(k);
    at = k.end;
  }
  return out;
}

/** The PBKDF2 parameters of a PBES2 (PBKDF2 + AES-CBC) ENCRYPTED PRIVATE KEY PEM, or null. */
export function pbkdf2ParamsOf(pem: string): Pbkdf2Params | null {
  try {
    const m = /-----BEGIN ENCRYPTED PRIVATE KEY-----([\s\S]*?)-----END ENCRYPTED PRIVATE KEY-----/.exec(pem);
    if (!m) return null;
    const b = Buffer.from(m[1]!.replace(/\s+/g, ""), "base64");
    const hex = (e: { start: number; end: number }) => b.toString("hex", e.start, e.end);
    const [alg] = kids(b, el(b, 0, b.length));
    const [algOid, params] = kids(b, alg!);
    if (hex(algOid!) !== "2a864886f70d01050d") return null;
    const [kdf, enc] = kids(b, params!);
    const [kdfOid, kdfParams] = kids(b, kdf!);
    if (hex(kdfOid!) !== "2a864886f70d01050c") return null;
    const kp = kids(b, kdfParams!);
    if (kp[0]?.tag !== 0x04 || kp[1]?.tag !== 0x02) return null;
    let prf = "sha1";
    for (const x of kp.slice(2)) if (x.tag === 0x30) prf = PRF[hex(kids(b, x)[0]!)] ?? "";
    const keyLength = AES[hex(kids(b, enc!)[0]!)];
    if (!prf || keyLength === undefined) return null;
    let iterations = 0;
    for (let i = kp[1].start; i < kp[1].end; i++) iterations = iterations * 256 + b[i]!;
    if (iterations < 1 || iterations > 100_000_000) return null;
    return { salt: b.subarray(kp[0].start, kp[0].end), iterations, keyLength, prf };
  } catch {
    return null;
  }
}

/** Start the PBKDF2 of an encrypted key file's PEM now, for a loadPrivateKey to come (nothing for other PEMs). */
export function deriveAhead(pem: string, passphrase: string): void {
  const p = pbkdf2ParamsOf(pem);
  if (!p) return;
  const dk = pbkdf2(passphrase, p);
  dk.catch(() => {}); // its user sees the error, if any
  ahead.push({ passphrase, p, dk });
}
