/**
 * Two tiers behind a real Apache httpd (Debian apache2, started here with its
 * own config on a loopback port, stopped by pid), configured with exactly
 * what `pki apache-config` prints in an issuing CA: ca-chain.crt trusted,
 * only the issuing CA advertised, crl-chain.pem, depth 2, the issuer pinned
 * in the Require expression.
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pki, tmpdir } from "../helpers.js";
import { makeTwoTier, type TwoTier } from "./two-tier-lib.js";

const HTTPD = fs.existsSync("/usr/sbin/apache2") ? "/usr/sbin/apache2" : "apache2";
const MODULES = "/usr/lib/apache2/modules";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

class Httpd {
  readonly conf: string;
  pid = 0;
  constructor(readonly prefix: string, port: number, vhost: string) {
    this.conf = path.join(prefix, "httpd.conf");
    const user = process.getuid?.() === 0 ? "User www-data\nGroup www-data\n" : "";
    fs.writeFileSync(
      this.conf,
      `ServerRoot ${prefix}
DefaultRuntimeDir ${prefix}
PidFile ${prefix}/httpd.pid
ErrorLog ${prefix}/error.log
LogLevel info ssl:info
${user}Mutex file:${prefix} default
ServerName localhost
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule socache_shmcb_module ${MODULES}/mod_socache_shmcb.so
LoadModule ssl_module ${MODULES}/mod_ssl.so
LoadModule headers_module ${MODULES}/mod_headers.so
LoadModule proxy_module ${MODULES}/mod_proxy.so
LoadModule proxy_http_module ${MODULES}/mod_proxy_http.so
SSLSessionCache none
Listen 127.0.0.1:${port}
${vhost}
`,
    );
  }
  start(): void {
    const r = spawnSync(HTTPD, ["-f", this.conf, "-k", "start"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`apache2 did not start: ${r.stdout}${r.stderr}`);
    for (let i = 0; i < 100 && !fs.existsSync(path.join(this.prefix, "httpd.pid")); i++) spawnSync("sleep", ["0.1"]);
    this.pid = Number(fs.readFileSync(path.join(this.prefix, "httpd.pid"), "utf8").trim());
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
  log(): string {
    try {
      return fs.readFileSync(path.join(this.prefix, "error.log"), "utf8");
    } catch {
      return "";
    }
  }
}

function curl(port: number, cacert: string, cert?: string, key?: string): Promise<{ status: number; body: string }> {
  const args = ["-sS", "--max-time", "20", "--resolve", `localhost:${port}:127.0.0.1`, "--cacert", cacert, "-w", "\n%{http_code}"];
  if (cert) args.push("--cert", cert, "--key", key!);
  args.push(`https://localhost:${port}/`);
  return new Promise((resolve) => {
    execFile("curl", args, { encoding: "utf8" }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf("\n");
      const status = Number(stdout.slice(i + 1));
      if (err && !status) resolve({ status: 0, body: `curl failed: ${stderr}` });
      else resolve({ status, body: stdout.slice(0, i) });
    });
  });
}

describe("two tiers behind a real Apache httpd, configured by `pki apache-config`", () => {
  let upstream: http.Server;
  let upPort = 0;
  let httpd: Httpd | undefined;
  let t: TwoTier;
  let sibling: TwoTier;

  beforeAll(async () => {
    for (const [cmd, pkg] of [[HTTPD, "apache2"], ["curl", "curl"]] as const) {
      if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is missing: install the Debian package ${pkg}`);
    }
    upstream = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`hello ${req.headers["x-ssl-client-dn"]}`);
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upPort = (upstream.address() as net.AddressInfo).port;
    t = makeTwoTier({ rootConstraints: null, issuingName: "issuing1" });
    sibling = makeTwoTier({ base: t.root, rootConstraints: null, issuingName: "issuing2" });
    const ok = (r: ReturnType<typeof pki>) => {
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    ok(t.i(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]));
    for (const n of ["alice", "bob"]) ok(t.i(["issue", "client", n]));
    ok(sibling.i(["issue", "client", "mallory"]));
  });
  afterAll(async () => {
    httpd?.stop();
    await new Promise<void>((r) => upstream?.close(() => r()));
  });

  it("issuing-CA clients 200; a sibling's client refused; a client of a revoked issuing CA refused", async () => {
    const port = await freePort();
    const r = t.i(["apache-config", "--server-name", "localhost", "--listen", `127.0.0.1:${port}`, "--upstream", `http://127.0.0.1:${upPort}`]);
    expect(r.code, r.stderr).toBe(0);
    const vhost = r.stdout;
    expect(vhost).toContain(`SSLCACertificateFile  ${t.issuing}/ca-chain.crt`);
    expect(vhost).toContain(`SSLCADNRequestFile    ${t.issuing}/ca.crt`);
    expect(vhost).toContain(`SSLCARevocationFile   ${t.issuing}/crl-chain.pem`);
    expect(vhost).toMatch(/SSLVerifyDepth\s+2/);
    expect(vhost).toContain("%{SSL_CLIENT_I_DN} == 'CN=Acme Issuing CA issuing1,O=Acme'");
    const rootCrt = path.join(t.rootDir, "ca.crt");
    const client = (dir: string, n: string, chain = false) => [path.join(dir, "issued", `${n}.${chain ? "chain.crt" : "crt"}`), path.join(dir, "private", `${n}.key`)] as const;

    httpd = new Httpd(tmpdir("pki-2tier-apache-"), port, vhost);
    const test = spawnSync(HTTPD, ["-f", httpd.conf, "-t"], { encoding: "utf8" });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    httpd.start();
    for (const n of ["alice", "bob"]) {
      const a = await curl(port, rootCrt, ...client(t.issuing, n));
      expect(a.status, a.body + httpd.log().slice(-1500)).toBe(200);
      expect(a.body).toBe(`hello CN=${n}`);
    }
    const m = await curl(port, rootCrt, ...client(sibling.issuing, "mallory", true));
    expect(m.status, m.body).not.toBe(200);
    httpd.stop();

    // the sibling's CRL loaded as well (one httpd for both): the chain verifies, the issuer pin refuses it (403)
    const both = path.join(t.root, "apache-both-crls.pem");
    fs.writeFileSync(both, fs.readFileSync(path.join(t.issuing, "crl-chain.pem"), "utf8") + fs.readFileSync(path.join(sibling.issuing, "crl.pem"), "utf8"));
    const port2 = await freePort();
    const pinned = vhost.replace(`${t.issuing}/crl-chain.pem`, both).replace(`127.0.0.1:${port}`, `127.0.0.1:${port2}`);
    const h2 = new Httpd(tmpdir("pki-2tier-apache-both-"), port2, pinned);
    h2.start();
    try {
      expect((await curl(port2, rootCrt, ...client(sibling.issuing, "mallory", true))).status).toBe(403);
      expect((await curl(port2, rootCrt, ...client(t.issuing, "bob"))).status).toBe(200);
    } finally {
      h2.stop();
    }
    await new Promise((res) => setTimeout(res, 1000));
    httpd.start();

    // the root revokes the issuing CA, the CRL is imported, httpd restarted: every client refused
    expect(t.r(["revoke", "issuing1"]).code).toBe(0);
    expect(t.i(["crl", "--import-parent", path.join(t.rootDir, "crl.pem")]).code).toBe(0);
    httpd.stop();
    await new Promise((res) => setTimeout(res, 1000));
    httpd.start();
    for (const n of ["alice", "bob"]) expect((await curl(port, rootCrt, ...client(t.issuing, n))).status, n).not.toBe(200);
  });
});
