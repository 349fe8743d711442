/**
 * Issue 10, finding 12: the configuration `pki apache-config` prints lets no
 * client set the headers the application trusts, in any spelling. A real
 * Apache httpd (Debian `apache2`) runs the generated virtual host on a
 * loopback port in front of a backend that echoes the raw request headers;
 * a client with a valid certificate sends forged headers in every spelling
 * ('-' or '_' at each separator, any case), and the backend must see exactly
 * one header that normalises (as CGI/WSGI do: upper case, '-' -> '_') to
 * X_SSL_CLIENT_DN, holding the DN from the TLS layer, and likewise for
 * X_SSL_AUTHENTICATED.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa } from "../helpers.js";

const MODULES = "/usr/lib/apache2/modules";

type Ca = ReturnType<typeof makeCa>;
let ca: Ca;
let httpd: ChildProcess | undefined;
let backend: http.Server;
let port: number;
let seen: string[][] = []; // rawHeaders of each request the backend got
let alice: { cert: string; key: string; subject: string };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** curl, asynchronously (the backend runs in this process: a blocking call would deadlock it). */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "20", ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function waitForPort(p: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(p, "127.0.0.1", () => {
        c.destroy();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`httpd did not listen on ${p}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const norm = (h: string) => h.toUpperCase().replace(/-/g, "_");

/** The values the backend got under every header name that normalises to `name`. */
function valuesOf(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (norm(raw[i]!) === norm(name)) out.push(raw[i + 1]!);
  return out;
}

/** Every spelling of a header name: '-' or '_' at each separator, in three cases. */
function spellings(name: string): string[] {
  const parts = name.split("-");
  let out = [parts[0]!];
  for (const p of parts.slice(1)) out = out.flatMap((s) => [`${s}-${p}`, `${s}_${p}`]);
  return out.flatMap((s) => [s, s.toLowerCase(), s.toUpperCase()]);
}

beforeAll(async () => {
  expect(spawnSync("sh", ["-c", "command -v apache2"]).status, "apache2 is needed for this test: apt-get install apache2 (npm run setup installs it)").toBe(0);
  expect(spawnSync("sh", ["-c", "command -v curl"]).status, "curl is needed for this test: apt-get install curl (npm run setup installs it)").toBe(0);
  ca = makeCa();
  expect(ca.run(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]).code).toBe(0);
  const a = json(ca.run(["issue", "client", "alice", "--json"]));
  alice = { cert: a.cert, key: a.key, subject: a.subject };

  backend = http.createServer((req, res) => {
    seen.push(req.rawHeaders);
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(req.rawHeaders));
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
  const backendPort = (backend.address() as net.AddressInfo).port;
  port = await freePort();

  const cfg = ca.run(["apache-config", "--server-name", "localhost", "--listen", `127.0.0.1:${port}`, "--upstream", `http://127.0.0.1:${backendPort}`]);
  expect(cfg.code, cfg.stderr).toBe(0);
  const run = path.join(ca.root, "httpd");
  fs.mkdirSync(run);
  const root = process.getuid?.() === 0;
  const conf = [
    `ServerRoot ${run}`,
    `DefaultRuntimeDir ${run}`,
    `PidFile ${run}/httpd.pid`,
    `ErrorLog ${run}/error.log`,
    "LogLevel warn",
    "ServerName localhost",
    `Listen 127.0.0.1:${port}`,
    ...["mpm_event", "authz_core", "socache_shmcb", "ssl", "headers", "proxy", "proxy_http"].map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`),
    ...(root ? ["User nobody", "Group nogroup"] : []),
    `SSLSessionCache shmcb:${run}/ssl_scache(512000)`,
    cfg.stdout,
  ].join("\n");
  fs.writeFileSync(path.join(run, "httpd.conf"), conf);
  const t = spawnSync("apache2", ["-t", "-f", path.join(run, "httpd.conf")], { encoding: "utf8" });
  expect(t.status, `${t.stderr}\n${conf}`).toBe(0);
  httpd = spawn("apache2", ["-f", path.join(run, "httpd.conf"), "-DFOREGROUND"], { stdio: ["ignore", "ignore", "pipe"] });
  await waitForPort(port, 20_000);
});

afterAll(async () => {
  if (httpd?.pid) {
    httpd.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    try {
      httpd.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
  backend?.close();
});

const client = () => ["--cacert", path.join(ca.dir, "ca.crt"), "--cert", alice.cert, "--key", alice.key, `https://localhost:${port}/`];

describe("finding 12: Apache header forging", () => {
  it("a client sending X_Ssl_Client_DN (underscores) cannot set the DN the backend sees", async () => {
    seen = [];
    const r = await curl(["-H", "X_Ssl_Client_DN: CN=admin,O=Evil", "-H", "X_Ssl_Authenticated: SUCCESS", ...client()]);
    expect(r.code, r.stderr).toBe(0);
    const raw: string[] = JSON.parse(r.stdout);
    expect(valuesOf(raw, "X-Ssl-Client-DN")).toHaveLength(1);
    expect(valuesOf(raw, "X-Ssl-Client-DN")[0]).toContain("CN=alice");
    expect(valuesOf(raw, "X-Ssl-Client-DN")[0]).not.toContain("admin");
    expect(valuesOf(raw, "X-Ssl-Authenticated")).toEqual(["SUCCESS"]);
  });

  it("variant: every spelling ('-'/'_' at each separator, any case) is dropped; only httpd's own value arrives", async () => {
    const forged = [...spellings("X-Ssl-Client-DN"), ...spellings("X-Ssl-Authenticated")];
    expect(forged.length).toBe(36);
    const args = forged.flatMap((h, i) => ["-H", `${h}: forged-${i}`]);
    const r = await curl([...args, ...client()]);
    expect(r.code, r.stderr).toBe(0);
    const raw: string[] = JSON.parse(r.stdout);
    expect(raw.filter((v) => v.startsWith("forged-"))).toEqual([]);
    expect(valuesOf(raw, "X-Ssl-Client-DN")).toHaveLength(1);
    expect(valuesOf(raw, "X-Ssl-Client-DN")[0]).toContain("CN=alice");
    expect(valuesOf(raw, "X-Ssl-Authenticated")).toEqual(["SUCCESS"]);
  });

  it("a client without a certificate never reaches the backend, forged headers or not", async () => {
    seen = [];
    const r = await curl(["-H", "X_Ssl_Authenticated: SUCCESS", "-H", "X_Ssl_Client_DN: CN=alice", "--cacert", path.join(ca.dir, "ca.crt"), `https://localhost:${port}/`]);
    // httpd refuses the TLS handshake (SSLVerifyClient require) or answers 403
    expect(r.code !== 0 || /403/.test(r.stdout)).toBe(true);
    expect(seen).toEqual([]);
  });
});
