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

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as import("node:net").AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Debian's nginx (nginx-light) on 127.0.0.1:<port> with its own prefix and
 * config, for mutual TLS against a pki CA directory; stopped by its pid.
 */
export class MtlsNginx {
  pid = 0;
  constructor(
    readonly prefix: string,
    readonly port: number,
    readonly caDir: string,
  ) {}
  start(): void {
    if (spawnSync("nginx", ["-v"]).status !== 0) throw new Error("nginx is missing: install the Debian package nginx-light (bash .ci/run does)");
    for (const d of ["logs", "tmp"]) fs.mkdirSync(path.join(this.prefix, d), { recursive: true });
    const d = this.caDir;
    const user = process.getuid?.() === 0 ? "user root root;\n" : "";
    const conf = path.join(this.prefix, "nginx.conf");
    fs.writeFileSync(
      conf,
      `${user}worker_processes 1;
pid ${this.prefix}/nginx.pid;
error_log ${this.prefix}/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ${this.prefix}/tmp/body;
    proxy_temp_path ${this.prefix}/tmp/proxy;
    fastcgi_temp_path ${this.prefix}/tmp/fastcgi;
    uwsgi_temp_path ${this.prefix}/tmp/uwsgi;
    scgi_temp_path ${this.prefix}/tmp/scgi;
    server {
        listen 127.0.0.1:${this.port} ssl;
        server_name localhost;
        ssl_certificate ${d}/issued/localhost.chain.crt;
        ssl_certificate_key ${d}/private/localhost.key;
        ssl_client_certificate ${d}/ca-clients.crt;
        ssl_crl ${d}/crl.pem;
        ssl_verify_client on;
        ssl_verify_depth 1;
        ssl_session_tickets off;
        location / { return 200 "hello $ssl_client_s_dn\\n"; }
    }
}
`,
    );
    const r = spawnSync("nginx", ["-p", this.prefix, "-c", conf], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`nginx did not start: ${r.stderr}`);
    this.pid = Number(fs.readFileSync(path.join(this.prefix, "nginx.pid"), "utf8").trim());
  }
  stop(): void {
    if (!this.pid) return;
    try {
      process.kill(this.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
    this.pid = 0;
  }
  /** curl as a client: the HTTP status (0 when the TLS handshake failed) and the body. */
  get(cert: string, key: string): { status: number; body: string } {
    if (spawnSync("curl", ["--version"]).status !== 0) throw new Error("curl is missing: install the Debian package curl");
    const r = spawnSync(
      "curl",
      ["-sS", "--max-time", "20", "--resolve", `localhost:${this.port}:127.0.0.1`, "--cacert", path.join(this.caDir, "ca.crt"), "--cert", cert, "--key", key, "-w", "\n%{http_code}", `https://localhost:${this.port}/`],
      { encoding: "utf8" },
    );
    const i = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, i) + r.stderr };
  }
}
