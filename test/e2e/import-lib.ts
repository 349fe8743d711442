/**
 * Real sources for the import tests: an easy-rsa 3 PKI made by Debian's
 * easy-rsa (/usr/share/easy-rsa/easyrsa, package easy-rsa), and an
 * `openssl ca` directory made with a minimal config, both as their admins
 * make them. A missing tool is a failure naming the package, never a skip.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "vitest";
import { openssl, tmpdir } from "../helpers.js";

export const EASYRSA = "/usr/share/easy-rsa/easyrsa";

export function requireTools(): void {
  if (!fs.existsSync(EASYRSA)) throw new Error(`${EASYRSA} is missing: install the Debian package easy-rsa (bash .ci/run does)`);
  if (spawnSync("openssl", ["version"]).status !== 0) throw new Error("openssl is missing: install the Debian package openssl");
}

/** Every file and directory under `dir` with its mode, and each file's SHA-256: a tree hash. */
export function treeHash(dir: string): string {
  const h = crypto.createHash("sha256");
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      h.update(`${path.relative(dir, p)}\0${st.mode.toString(8)}\0${st.mtimeMs}\0`);
      if (e.isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest("hex");
}

/** A secret file with mode 0600. */
export function secretFile(dir: string, name: string, value: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, value + "\n", { mode: 0o600 });
  return p;
}

export interface EasyRsa {
  root: string;
  pki: string;
  /** the CA key passphrase file, when the CA key is encrypted */
  pass?: string;
  run(args: string[], env?: Record<string, string>): void;
}

/** `easyrsa init-pki` and `build-ca` (nopass unless a passphrase is given), batch mode. */
export function makeEasyRsa(opts: { passphrase?: string; cn?: string; algo?: "rsa" | "ec" } = {}): EasyRsa {
  requireTools();
  const root = tmpdir("pki-easyrsa-");
  const pki = path.join(root, "pki");
  // two files: OpenSSL reads -passin and -passout from one file as one stream
  const pass = opts.passphrase !== undefined ? secretFile(root, "ca.pass", opts.passphrase) : undefined;
  const passout = opts.passphrase !== undefined ? secretFile(root, "ca.passout", opts.passphrase) : undefined;
  const run = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(EASYRSA, args, {
      cwd: root,
      encoding: "utf8",
      env: {
        ...process.env,
        EASYRSA_BATCH: "1",
        EASYRSA_PKI: pki,
        EASYRSA_ALGO: opts.algo ?? "rsa",
        ...(pass ? { EASYRSA_PASSIN: `file:${pass}` } : {}),
        ...env,
      },
    });
    if (r.status !== 0) throw new Error(`easyrsa ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  };
  run(["init-pki"]);
  run(pass ? ["build-ca"] : ["build-ca", "nopass"], { EASYRSA_REQ_CN: opts.cn ?? "Old VPN CA", ...(passout ? { EASYRSA_PASSOUT: `file:${passout}` } : {}) });
  return { root, pki, pass, run };
}

export interface IndexLine {
  status: string;
  revoked: string;
  serial: string;
}

/** The (status, revocation field, serial) set of an OpenSSL index.txt, sorted by serial. */
export function indexSet(file: string): IndexLine[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split("\t");
      return { status: f[0]!, revoked: f[2]!, serial: f[3]! };
    })
    .sort((a, b) => (a.serial < b.serial ? -1 : 1));
}

/** The revoked entries of a CRL as `openssl crl -text` prints them: serial -> the entry's text. */
export function crlEntries(crlFile: string): Map<string, string> {
  const r = openssl(["crl", "-in", crlFile, "-noout", "-text"]);
  expect(r.code, r.stderr).toBe(0);
  const out = new Map<string, string>();
  const body = r.stdout.split("Revoked Certificates:")[1] ?? "";
  const cut = body.split(/\n\s+Signature Algorithm:/)[0]!;
  for (const chunk of cut.split(/\n\s+Serial Number: /).slice(1)) {
    const [serial, ...rest] = chunk.split("\n");
    out.set(serial!.trim(), rest.map((x) => x.trim()).filter(Boolean).join("\n"));
  }
  return out;
}

export function crlNumber(crlFile: string): number | undefined {
  const r = openssl(["crl", "-in", crlFile, "-noout", "-crlnumber"]);
  expect(r.code, r.stderr).toBe(0);
  const m = /crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(r.stdout);
  return m ? parseInt(m[1]!, 16) : undefined;
}

/** openssl verify -crl_check against the imported CA and its CRL. */
export function verifyWithCrl(caDir: string, cert: string) {
  return openssl(["verify", "-crl_check", "-CAfile", path.join(caDir, "ca.crt"), "-CRLfile", path.join(caDir, "crl.pem"), cert]);
}

/** `openssl ca -status SERIAL` run on a pki directory (it exits 1 even on success; the answer is on stderr). */
export function opensslCaStatus(caDir: string, serial: string): string {
  const cnf = path.join(caDir, "..", `status-${path.basename(caDir)}.cnf`);
  fs.writeFileSync(cnf, `[ca]\ndefault_ca = d\n[d]\ndir = ${caDir}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/certs\ncertificate = $dir/ca.crt\nprivate_key = $dir/private/ca.key\nserial = $dir/serial\npolicy = p\n[p]\ncommonName = supplied\n`);
  const r = openssl(["ca", "-config", cnf, "-status", serial]);
  return (r.stdout + r.stderr).trim();
}
