/**
 * A real nginx for the end-to-end tests (Debian's nginx-light; .ci/run
 * installs it), a recording upstream, curl and `openssl s_client` as users
 * run them. nginx runs on 127.0.0.1 at a free port with its own prefix (-p)
 * and config (-c), and is stopped by its pid.
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";

/** A missing tool is a failure naming the package, never a skip. */
export function requireTools(): void {
  const missing: string[] = [];
  if (spawnSync("nginx", ["-v"]).status !== 0) missing.push("nginx-light (nginx)");
  if (spawnSync("curl", ["--version"]).status !== 0) missing.push("curl");
  if (spawnSync("openssl", ["version"]).status !== 0) missing.push("openssl");
  if (missing.length) throw new Error(`these tests need ${missing.join(", ")}: install them (bash .ci/run does)`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export interface Seen {
  dn?: string;
  auth?: string;
  headers: http.IncomingHttpHeaders;
}

/** The application behind nginx: echoes the X-Ssl-* headers it received and records every request. */
export async function startUpstream(): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
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

export class Nginx {
  readonly conf: string;
  pid = 0;
  /** `http` is put at http level before the site (e.g. what an admin's nginx.conf holds) */
  constructor(
    readonly prefix: string,
    site: string,
    http = "",
  ) {
    for (const d of ["logs", "tmp"]) fs.mkdirSync(path.join(prefix, d), { recursive: true });
    this.conf = path.join(prefix, "nginx.conf");
    fs.writeFileSync(path.join(prefix, "site.conf"), site);
    const user = process.getuid?.() === 0 ? "user root root;\n" : "";
    fs.writeFileSync(
      this.conf,
      `${user}worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${prefix}/tmp/body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;
${http}
    include ${prefix}/site.conf;
}
`,
    );
  }
  /** Replace the site (takes effect at the next reload). */
  setSite(site: string): void {
    fs.writeFileSync(path.join(this.prefix, "site.conf"), site);
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
  async reload(timeoutMs = 20_000): Promise<void> {
    const old = this.workers();
    const r = this.nginx(["-s", "reload"]);
    if (r.status !== 0) throw new Error(`nginx -s reload failed: ${r.stderr}`);
    for (let i = 0; i < timeoutMs / 50; i++) {
      const now = this.workers();
      if (now.length > 0 && old.every((p) => !now.includes(p))) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`nginx kept its old workers after reload (bad config?): ${this.errorLog().slice(-2000)}`);
  }
  errorLog(): string {
    try {
      return fs.readFileSync(path.join(this.prefix, "logs/error.log"), "utf8");
    } catch {
      return "";
    }
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

export interface Reply {
  status: number;
  body: string;
}

/** curl as a user runs it: --cacert for the server, --cert/--key for the client. */
export function curl(port: number, opts: { cert?: string; key?: string; cacert: string; headers?: string[]; path?: string }): Promise<Reply> {
  const args = ["-sS", "--max-time", "30", "--resolve", `localhost:${port}:127.0.0.1`, "--cacert", opts.cacert, "-w", "\n%{http_code}"];
  if (opts.cert) args.push("--cert", opts.cert, "--key", opts.key!);
  for (const h of opts.headers ?? []) args.push("-H", h);
  args.push(`https://localhost:${port}${opts.path ?? "/"}`);
  return new Promise((resolve) => {
    execFile("curl", args, { encoding: "utf8" }, (err, stdout, stderr) => {
      const i = stdout.lastIndexOf("\n");
      const status = Number(stdout.slice(i + 1));
      if (err && !status) resolve({ status: 0, body: `curl failed: ${stderr}` });
      else resolve({ status, body: stdout.slice(0, i) });
    });
  });
}

export interface Handshake {
  /** "New" or "Reused", as s_client prints it */
  session: "New" | "Reused" | "none";
  protocol: string;
  /** the HTTP status nginx answered on that connection (0: none) */
  status: number;
  out: string;
}

/**
 * One HTTPS request with `openssl s_client`, optionally saving the TLS session
 * (-sess_out) or offering a saved one (-sess_in): how a client resumes.
 */
export function sClient(port: number, o: { cert: string; key: string; cacert: string; tls: "1.2" | "1.3"; sessOut?: string; sessIn?: string }): Promise<Handshake> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-CAfile", o.cacert, "-cert", o.cert, "-key", o.key, o.tls === "1.2" ? "-tls1_2" : "-tls1_3", "-ign_eof"];
  if (o.sessOut) args.push("-sess_out", o.sessOut);
  if (o.sessIn) args.push("-sess_in", o.sessIn);
  return new Promise((resolve) => {
    const child = execFile("openssl", args, { encoding: "utf8", timeout: 30_000 }, (_err, stdout, stderr) => {
      const out = stdout + stderr;
      const m = /^(New|Reused), (TLSv[\d.]+|\(NONE\))/m.exec(out);
      const st = /HTTP\/1\.1 (\d{3}) /.exec(out);
      resolve({ session: m ? (m[1] as "New" | "Reused") : "none", protocol: m?.[2] ?? "", status: st ? Number(st[1]) : 0, out });
    });
    child.stdin!.end("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
  });
}
