/**
 * Helpers of the hardening tests (issue 5): asynchronous pki processes (to
 * run many at once and to kill them), CSRs built by openssl or by hand (for
 * subjects openssl refuses to write), and `openssl ca` as an independent
 * reader of the CA directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BIN, cleanEnv, openssl, type Run } from "./helpers.js";

export interface AsyncRun extends Run {
  signal: NodeJS.Signals | null;
  pid: number;
}

/** Start pki without waiting: returns the child and a promise of its result (resolved after it was reaped). */
export function spawnPki(args: string[], opts: { env?: Record<string, string>; input?: string | Buffer; cwd?: string } = {}): { child: ChildProcess; done: Promise<AsyncRun> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: cleanEnv(opts.env), stdio: ["pipe", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on("data", (b: Buffer) => out.push(b));
  child.stderr!.on("data", (b: Buffer) => err.push(b));
  child.stdin!.on("error", () => {}); // killed before reading its stdin
  child.stdin!.end(opts.input ?? "");
  const done = new Promise<AsyncRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({ code: code ?? -1, signal, pid: child.pid!, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
  return { child, done };
}

/** A seeded PRNG (mulberry32): the same seed gives the same test. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A key and a CSR made by openssl (PEM paths). */
export function opensslCsr(dir: string, name: string, subj: string, opts: { san?: string; keyAlg?: string[] } = {}): string {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const alg = opts.keyAlg ?? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const r = openssl(["req", "-new", ...alg, "-nodes", "-keyout", key, "-out", csr, "-subj", subj, ...(opts.san ? ["-addext", `subjectAltName=${opts.san}`] : [])]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return csr;
}

// ------------------------------------------------------------ hand-made CSRs

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...p: Buffer[]) => tlv(0x30, Buffer.concat(p));
const oid = (dotted: string): Buffer => {
  const parts = dotted.split(".").map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const v of parts.slice(2)) {
    const b: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) b.unshift(0x80 | (x & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
};

export const OIDS = { cn: "2.5.4.3", o: "2.5.4.10", ou: "2.5.4.11" };

/**
 * A PKCS#10 request with any subject values (UTF8String), signed by a fresh
 * P-256 key: for subjects that openssl itself refuses to encode (10,000-char
 * CN, control characters). Returns DER.
 */
export function handmadeCsr(subject: Array<[string, string]>): Buffer {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const name = seq(...subject.map(([t, v]) => tlv(0x31, seq(oid(t), tlv(0x0c, Buffer.from(v, "utf8"))))));
  const spki = publicKey.export({ type: "spki", format: "der" });
  const info = seq(tlv(0x02, Buffer.from([0])), name, spki, tlv(0xa0, Buffer.alloc(0)));
  const sig = crypto.sign("sha256", info, privateKey);
  return seq(info, seq(oid("1.2.840.10045.4.3.2")), tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
}

export const pemOf = (label: string, der: Buffer): string =>
  `-----BEGIN ${label}-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;

// ------------------------------------------------------------ openssl ca

/** A minimal `openssl ca` configuration over a pki CA directory. */
export function opensslCaConfig(dir: string, at: string): string {
  const cnf = path.join(at, "openssl-ca.cnf");
  fs.writeFileSync(
    cnf,
    [
      "[ ca ]",
      "default_ca = CA_default",
      "[ CA_default ]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "new_certs_dir = $dir/certs",
      "certificate = $dir/ca.crt",
      "private_key = $dir/private/ca.key",
      "serial = $dir/serial",
      "default_md = sha256",
      "policy = policy_any",
      "[ policy_any ]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  return cnf;
}

/** `openssl ca -status`: exits 1 even on success, so read what it says. Returns e.g. "Valid", "Revoked", or null. */
export function opensslCaStatus(cnf: string, serial: string): string | null {
  const r = openssl(["ca", "-config", cnf, "-status", serial]);
  const m = /=(\w+) \(([A-Z])\)/.exec(r.stdout + r.stderr);
  return m ? m[1]! : null;
}

/** Every regular file under dir (relative paths), depth first. */
export function allFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Index lines of index.txt, split by tab: [status, expires, revoked, serial, file, subject]. */
export function indexLines(dir: string): string[][] {
  const t = fs.existsSync(path.join(dir, "index.txt")) ? fs.readFileSync(path.join(dir, "index.txt"), "utf8") : "";
  return t.split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
}

export const certSerials = (dir: string): string[] =>
  fs.readdirSync(path.join(dir, "certs")).filter((f) => /^[0-9A-F]+\.pem$/.test(f)).map((f) => f.slice(0, -4)).sort();

/** Does dist/ hold this command (another branch may not have been merged yet)? */
export function hasCommand(module: string): boolean {
  return fs.existsSync(path.join(path.dirname(BIN), "..", "dist", "commands", `${module}.js`));
}
