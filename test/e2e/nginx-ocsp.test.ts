/**
 * Revocation without a reload, proven with a real nginx (Debian's
 * nginx-light) and the real `pki serve`: nginx runs exactly what `pki
 * nginx-config --ocsp` prints (ssl_ocsp leaf, ssl_ocsp_responder), started on
 * a free loopback port with its own prefix and stopped by pid.
 *
 *   agent 200; `pki revoke agent` and, WITHOUT any reload, the agent is
 *   refused within 2 s while others still pass; a TLS session the agent saved
 *   before (TLS 1.2 and 1.3) cannot be resumed; with `pki serve` stopped,
 *   every client is refused (fail-closed).
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, tmpdir } from "../helpers.js";
import { Nginx } from "./nginx-lib.js";
import { freePort, startServe, type Serve } from "./serve-lib.js";

for (const [tool, pkg] of [["nginx", "nginx-light"], ["curl", "curl"], ["openssl", "openssl"]] as const) {
  if (spawnSync(tool, tool === "nginx" ? ["-v"] : ["--version"]).error) throw new Error(`${tool} is required: install the Debian package ${pkg} (bash .ci/run does)`);
}

function curl(port: number, cacert: string, pair?: { cert: string; key: string }): Promise<number> {
  const args = ["-sS", "--max-time", "10", "--resolve", `localhost:${port}:127.0.0.1`, "--cacert", cacert, "-o", "/dev/null", "-w", "%{http_code}"];
  if (pair) args.push("--cert", pair.cert, "--key", pair.key);
  args.push(`https://localhost:${port}/`);
  return new Promise((resolve) => execFile("curl", args, { encoding: "utf8" }, (_e, stdout) => resolve(Number(stdout) || 0)));
}

/**
 * One HTTP/1.0 request over openssl s_client, saving or resuming a TLS
 * session. Asynchronous: the upstream lives in this process.
 */
function sClient(port: number, cacert: string, pair: { cert: string; key: string }, version: "-tls1_2" | "-tls1_3", sess: { out?: string; in?: string }): Promise<{ reused: boolean; status: number; out: string }> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-CAfile", cacert, "-cert", pair.cert, "-key", pair.key, version, "-ign_eof"];
  if (sess.out) args.push("-sess_out", sess.out);
  if (sess.in) args.push("-sess_in", sess.in);
  return new Promise((resolve) => {
    const child = execFile("openssl", args, { encoding: "utf8", timeout: 20_000 }, (_e, stdout, stderr) => {
      const out = (stdout ?? "") + (stderr ?? "");
      const m = /^HTTP\/1\.[01] (\d{3})/m.exec(out);
      resolve({ reused: /^Reused,/m.test(out), status: m ? Number(m[1]) : 0, out });
    });
    child.stdin!.end("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
  });
}

describe("nginx with ssl_ocsp asks pki serve: revocation without a reload", () => {
  let ca: ReturnType<typeof makeCa>;
  let serve: Serve;
  let nginx: Nginx;
  let upstream: http.Server;
  let port: number;
  let cacert: string;
  const pair = (n: string) => ({ cert: path.join(ca.dir, "issued", `${n}.crt`), key: path.join(ca.dir, "private", `${n}.key`) });

  beforeAll(async () => {
    ca = makeCa();
    cacert = path.join(ca.dir, "ca.crt");
    const ok = (r: ReturnType<typeof ca.run>) => {
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    ok(ca.run(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]));
    for (const n of ["agent", "other", "third"]) ok(ca.run(["issue", "client", n]));
    ok(ca.run(["bundle"]));
    ok(ca.run(["crl"]));
    serve = await startServe(ca.dir, ["--passphrase-file", ca.pass]);
    upstream = http.createServer((_q, res) => res.end("ok\n"));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    port = await freePort();
    const conf = json(
      ca.run(["nginx-config", "--json", "--server-name", "localhost", "--listen", `127.0.0.1:${port}`, "--upstream", `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`, "--ocsp", `${serve.url}/ocsp`]),
    );
    expect(conf.config).toContain("ssl_ocsp           leaf;");
    expect(conf.config).toContain(`ssl_ocsp_responder ${serve.url}/ocsp;`);
    nginx = new Nginx(tmpdir("pki-nginx-ocsp-"), conf.config);
    nginx.start();
  });

  afterAll(async () => {
    nginx?.stop();
    await serve?.stop("SIGKILL");
    await new Promise((r) => upstream?.close(r));
  });

  it("valid clients get 200, no certificate 400", async () => {
    expect(await curl(port, cacert, pair("agent"))).toBe(200);
    expect(await curl(port, cacert, pair("other"))).toBe(200);
    expect(await curl(port, cacert)).toBe(400); // no certificate: refused as before
  });

  let saved12 = "";
  let saved13 = "";
  it("the agent saves TLS sessions (1.2 and 1.3) while still valid", async () => {
    const dir = tmpdir("pki-sess-");
    saved12 = path.join(dir, "agent12.sess");
    saved13 = path.join(dir, "agent13.sess");
    const a = await sClient(port, cacert, pair("agent"), "-tls1_2", { out: saved12 });
    expect(a.status, a.out).toBe(200);
    const b = await sClient(port, cacert, pair("agent"), "-tls1_3", { out: saved13 });
    expect(b.status, b.out).toBe(200);
  });

  it("pki revoke, no reload: the agent is refused within 2 s, the others still pass", async () => {
    const r = ca.run(["revoke", "agent", "--reason", "keyCompromise"]);
    expect(r.code, r.stderr).toBe(0);
    const t0 = Date.now();
    let status = 0;
    while (Date.now() - t0 < 10_000) {
      status = await curl(port, cacert, pair("agent"));
      if (status !== 200) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const ms = Date.now() - t0;
    expect(status).toBe(400);
    expect(ms).toBeLessThanOrEqual(2000);
    expect(nginx.errorLog()).toMatch(/certificate status "revoked"|OCSP.*revoked|revoked/);
    expect(await curl(port, cacert, pair("other"))).toBe(200);
    expect(await curl(port, cacert, pair("third"))).toBe(200);
  });

  it("a saved session of the revoked agent cannot be resumed (TLS 1.2 and 1.3)", async () => {
    for (const [v, f] of [["-tls1_2", saved12], ["-tls1_3", saved13]] as const) {
      if (!fs.existsSync(f) || fs.statSync(f).size === 0) continue; // nginx gave no session to save: nothing to resume
      const r = await sClient(port, cacert, pair("agent"), v, { in: f });
      expect(r.reused, `${v}: ${r.out}`).toBe(false);
      expect(r.status, `${v}: ${r.out}`).not.toBe(200);
    }
    // and a valid client's saved session does not bring back resumption either: every handshake asks the responder
    const dir = tmpdir("pki-sess2-");
    const s = path.join(dir, "other.sess");
    expect((await sClient(port, cacert, pair("other"), "-tls1_2", { out: s })).status).toBe(200);
    if (fs.existsSync(s) && fs.statSync(s).size > 0) expect((await sClient(port, cacert, pair("other"), "-tls1_2", { in: s })).reused).toBe(false);
  });

  it("pki serve stopped: every client is refused (fail-closed)", async () => {
    expect(await serve.stop("SIGTERM")).toBe(0);
    expect(await curl(port, cacert, pair("other"))).toBe(400);
    expect(await curl(port, cacert, pair("third"))).toBe(400);
    expect(nginx.errorLog()).toMatch(/OCSP|ocsp/);
  });
});
