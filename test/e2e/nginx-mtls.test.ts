/**
 * Revocation that nginx enforces, proven with a real nginx (Debian's
 * nginx-light; .ci/run installs it) and curl, as a user would run them.
 *
 * Each round: a fresh CA, `pki issue server localhost`, client pairs, the
 * bundle and the CRL; nginx started on 127.0.0.1 at a free high port with its
 * own prefix (-p) and config (-c), stopped by pid in afterAll; a tiny Node
 * upstream that echoes the X-Ssl-* headers it receives and records every
 * request, so that "a forged header never reaches the upstream" is checked on
 * what actually arrived.
 *
 * Round 1 uses a hand-written server block (what an admin writes today);
 * round 2 uses, verbatim, what `pki nginx-config` prints (on and optional).
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, tmpdir } from "../helpers.js";

const hasNginx = spawnSync("nginx", ["-v"]).status === 0;
const hasCurl = spawnSync("curl", ["--version"]).status === 0;
// fail loudly rather than skip: these tests are the point of the feature
if (!hasNginx) throw new Error("nginx is needed for this test: apt-get install nginx-light (npm run setup installs it)");
if (!hasCurl) throw new Error("curl is needed for this test: apt-get install curl (npm run setup installs it)");

interface Seen {
  dn?: string;
  auth?: string;
  headers: http.IncomingHttpHeaders;
}

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

/** The upstream application: echoes the headers nginx passed and records every request. */
async function startUpstream(): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const s: Seen = { dn: req.headers["x-ssl-client-dn"] as string | undefined, auth: req.headers["x-ssl-authenticated"] as string | undefined, headers: req.headers };
    seen.push(s);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ dn: s.dn ?? null, auth: s.auth ?? null }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, seen, close: () => new Promise((r) => server.close(() => r())) };
}

class Nginx {
  readonly conf: string;
  pid = 0;
  constructor(readonly prefix: string, site: string) {
    for (const d of ["logs", "tmp"]) fs.mkdirSync(path.join(prefix, d), { recursive: true });
    this.conf = path.join(prefix, "nginx.conf");
    fs.writeFileSync(path.join(prefix, "site.conf"), site);
    const user = process.getuid?.() === 0 ? "user root root;\n" : "";
    fs.writeFileSync(
      this.conf,
      `${user}worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ${prefix}/tmp/body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;
    include ${prefix}/site.conf;
}
`,
    );
  }
  private nginx(args: string[]) {
    return spawnSync("nginx", ["-p", this.prefix, "-c", this.conf, ...args], { encoding: "utf8" });
  }
  test(): { code: number | null; out: string } {
    const r = this.nginx(["-t"]);
    return { code: r.status, out: r.stdout + r.stderr };
  }
  start(): void {
    const r = this.nginx([]);
    if (r.status !== 0) throw new Error(`nginx did not start: ${r.stderr}`);
    this.pid = Number(fs.readFileSync(path.join(this.prefix, "nginx.pid"), "utf8").trim());
  }
  workers(): number[] {
    const out: number[] = [];
    for (const d of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === this.pid) out.push(Number(d));
      } catch {
        /* gone */
      }
    }
    return out;
  }
  /** `nginx -s reload`, then wait until the old workers (with the old CRL) are gone. */
  async reload(): Promise<void> {
    const old = this.workers();
    const r = this.nginx(["-s", "reload"]);
    if (r.status !== 0) throw new Error(`nginx -s reload failed: ${r.stderr}`);
    for (let i = 0; i < 200; i++) {
      const now = this.workers();
      if (now.length > 0 && old.every((p) => !now.includes(p))) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`nginx kept its old workers after reload (bad config?): ${fs.readFileSync(path.join(this.prefix, "logs/error.log"), "utf8").slice(-2000)}`);
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
}

interface Reply {
  status: number;
  body: string;
}

/** curl as a user runs it: --cacert for the server, --cert/--key for the client. */
function curl(port: number, opts: { cert?: string; key?: string; cacert: string; headers?: string[] }): Promise<Reply> {
  const args = ["-sS", "--max-time", "20", "--resolve", `localhost:${port}:127.0.0.1`, "--cacert", opts.cacert, "-w", "\n%{http_code}"];
  if (opts.cert) args.push("--cert", opts.cert, "--key", opts.key!);
  for (const h of opts.headers ?? []) args.push("-H", h);
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

interface World {
  ca: ReturnType<typeof makeCa>;
  other: ReturnType<typeof makeCa>;
  cacert: string;
  pair: (name: string) => { cert: string; key: string };
  otherPair: { cert: string; key: string };
  serials: Record<string, string>;
}

function makeWorld(includeIssued: boolean): World {
  const ca = makeCa();
  const ok = (r: ReturnType<typeof ca.run>) => {
    expect(r.code, r.stderr).toBe(0);
    return r;
  };
  ok(ca.run(["issue", "server", "localhost", "--san", "dns:localhost,ip:127.0.0.1"]));
  const serials: Record<string, string> = {};
  for (const n of ["alice", "bob", "carol"]) serials[n] = json(ok(ca.run(["issue", "client", n, "--json"]))).serial;
  ok(ca.run(includeIssued ? ["bundle", "--include-issued", "client"] : ["bundle"]));
  ok(ca.run(["crl"]));
  const other = makeCa([], "pki-other-");
  const o = json(ok(other.run(["issue", "client", "mallory", "--json"])));
  return {
    ca,
    other,
    cacert: path.join(ca.dir, "ca.crt"),
    pair: (name) => ({ cert: path.join(ca.dir, "issued", `${name}.crt`), key: path.join(ca.dir, "private", `${name}.key`) }),
    otherPair: { cert: o.cert, key: o.key },
    serials,
  };
}

const ALICE_DN = "CN=alice";

describe("nginx enforces pki's bundle and CRL", () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const running: Nginx[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    for (const n of running) n.stop();
    await upstream?.close();
  });

  /** What every round checks, on a running nginx at `port` with ssl_verify_client on. */
  async function round(w: World, nginx: Nginx, port: number, revokeTarget: (w: World) => string): Promise<void> {
    const before = upstream.seen.length;
    // a valid client: 200, and its DN (from the TLS layer) reaches the upstream
    const a = await curl(port, { ...w.pair("alice"), cacert: w.cacert });
    expect(a.status, a.body).toBe(200);
    expect(JSON.parse(a.body)).toEqual({ dn: ALICE_DN, auth: "SUCCESS" });
    // no certificate: 400 from nginx, nothing reaches the upstream
    const none = await curl(port, { cacert: w.cacert });
    expect(none.status, none.body).toBe(400);
    // a certificate of another CA: 400
    const m = await curl(port, { ...w.otherPair, cacert: w.cacert });
    expect(m.status, m.body).toBe(400);
    // forged headers never reach the upstream: nginx replaces them with its own
    const forged = await curl(port, { ...w.pair("bob"), cacert: w.cacert, headers: ["X-Ssl-Client-DN: CN=admin", "X-Ssl-Authenticated: SUCCESS"] });
    expect(forged.status).toBe(200);
    expect(JSON.parse(forged.body)).toEqual({ dn: "CN=bob", auth: "SUCCESS" });
    const forgedLower = await curl(port, { ...w.pair("bob"), cacert: w.cacert, headers: ["x-ssl-client-dn: CN=admin"] });
    expect(JSON.parse(forgedLower.body).dn).toBe("CN=bob");

    // revoke alice, reload nginx: alice is refused, the others still get in
    const r = w.ca.run(["revoke", revokeTarget(w), "--reason", "keyCompromise", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).subject).toBe(ALICE_DN);
    await nginx.reload();
    const revoked = await curl(port, { ...w.pair("alice"), cacert: w.cacert });
    expect(revoked.status, revoked.body).toBe(400);
    for (const n of ["bob", "carol"]) {
      const ok = await curl(port, { ...w.pair(n), cacert: w.cacert });
      expect(ok.status, ok.body).toBe(200);
      expect(JSON.parse(ok.body).dn).toBe(`CN=${n}`);
    }

    // what the upstream received in this round: only verified DNs, never a forged one
    const got = upstream.seen.slice(before);
    // alice and bob twice before the revocation, bob and carol after; nothing for the refused requests
    expect(got.map((s) => s.dn)).toEqual([ALICE_DN, "CN=bob", "CN=bob", "CN=bob", "CN=carol"]);
    for (const s of got) {
      expect(s.auth).toBe("SUCCESS");
      expect(s.dn).not.toBe("CN=admin");
      expect([].concat(s.headers["x-ssl-client-dn"] as never)).toHaveLength(1);
    }
    expect(got.filter((s) => s.dn === ALICE_DN)).toHaveLength(1); // before the revocation only
  }

  it("round 1: a hand-written server block (WAPT style) with pki's bundle and CRL", async () => {
    const w = makeWorld(false);
    const port = await freePort();
    const prefix = tmpdir("pki-nginx1-");
    const d = w.ca.dir;
    const site = `
server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${d}/issued/localhost.chain.crt;
    ssl_certificate_key ${d}/private/localhost.key;
    ssl_client_certificate ${d}/ca-clients.crt;
    ssl_crl ${d}/crl.pem;
    ssl_verify_client on;
    proxy_set_header X-Ssl-Authenticated "";
    proxy_set_header X-Ssl-Client-DN "";
    location / {
        proxy_set_header X-Ssl-Authenticated $ssl_client_verify;
        proxy_set_header X-Ssl-Client-DN $ssl_client_s_dn;
        if ($ssl_client_verify != SUCCESS) { return 401; }
        proxy_pass http://127.0.0.1:${upstream.port};
    }
}
`;
    const nginx = new Nginx(prefix, site);
    expect(nginx.test().code, nginx.test().out).toBe(0);
    nginx.start();
    running.push(nginx);
    // revoke by serial in this round, typed as people copy it from openssl: lower case with colons
    await round(w, nginx, port, (x) => x.serials.alice!.toLowerCase().replace(/(..)(?!$)/g, "$1:"));
    nginx.stop();
  });

  it("round 2: exactly what `pki nginx-config` prints (on and optional), bundle listing the issued clients", async () => {
    const w = makeWorld(true);
    const port = await freePort();
    const portOptional = await freePort();
    const up = `http://127.0.0.1:${upstream.port}`;
    const cfg = (listen: number, verify: string) => {
      const r = w.ca.run(["nginx-config", "--server-name", "localhost", "--listen", `127.0.0.1:${listen}`, "--upstream", up, "--verify", verify]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const site = cfg(port, "on") + "\n" + cfg(portOptional, "optional");
    expect(site).toContain(`ssl_crl                ${w.ca.dir}/crl.pem;`);
    expect(site).toContain(`ssl_client_certificate ${w.ca.dir}/ca-clients.crt;`);
    expect(site).toMatch(/ssl_verify_depth\s+1;/);
    const nginx = new Nginx(tmpdir("pki-nginx2-"), site);
    const t = nginx.test();
    expect(t.code, t.out).toBe(0);
    expect(t.out).toContain("test is successful");
    nginx.start();
    running.push(nginx);

    // with ssl_verify_client optional, no certificate gets the snippet's 401 and reaches nothing
    const before = upstream.seen.length;
    const anon = await curl(portOptional, { cacert: w.cacert, headers: ["X-Ssl-Client-DN: CN=admin", "X-Ssl-Authenticated: SUCCESS"] });
    expect(anon.status, anon.body).toBe(401);
    expect(upstream.seen.length).toBe(before);
    const bobOpt = await curl(portOptional, { ...w.pair("bob"), cacert: w.cacert });
    expect(bobOpt.status).toBe(200);
    expect(JSON.parse(bobOpt.body).dn).toBe("CN=bob");
    upstream.seen.pop();

    await round(w, nginx, port, () => "alice");
    // the bundle followed the revocation: alice's certificate is no longer listed
    const bundle = fs.readFileSync(path.join(w.ca.dir, "ca-clients.crt"), "utf8");
    expect(bundle).not.toContain(fs.readFileSync(w.pair("alice").cert, "utf8").trim());
    expect(bundle).toContain(fs.readFileSync(w.pair("bob").cert, "utf8").trim());
    // optional mode refuses the revoked certificate as well (400 from nginx)
    const aliceOpt = await curl(portOptional, { ...w.pair("alice"), cacert: w.cacert });
    expect(aliceOpt.status).toBe(400);
    nginx.stop();
  });
});
