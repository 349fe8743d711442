/**
 * `pki serve` from the outside: the real `openssl ocsp -url` against it,
 * revocations by another `pki` process answered without a restart, hostile
 * clients (garbage, oversized, another CA's certificate, wrong method, slow
 * and early-closing connections), and SIGTERM.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, makeCa, openssl, pki } from "../helpers.js";
import { startServe, type Serve } from "./serve-lib.js";

let ca: ReturnType<typeof makeCa>;
let serve: Serve;

function ocsp(cert: string, url: string, issuer = path.join(ca.dir, "ca.crt"), extra: string[] = []): { code: number | null; out: string } {
  const r = spawnSync("openssl", ["ocsp", "-issuer", issuer, "-cert", cert, "-url", url, "-CAfile", path.join(ca.dir, "ca.crt"), "-timeout", "5", ...extra], { encoding: "utf8", timeout: 15_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

function statusOf(out: string, cert: string): string | undefined {
  return new RegExp(`${cert.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: (\\w+)`).exec(out)?.[1];
}

function request(method: string, p: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: serve.port, method, path: p, headers: { ...(body ? { "content-type": "application/ocsp-request" } : {}), ...headers }, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    if (body) req.end(body);
    else req.end();
  });
}

const MALFORMED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);

beforeAll(async () => {
  ca = makeCa();
  for (const n of ["agent1", "agent2", "agent3"]) expect(ca.run(["issue", "client", n]).code).toBe(0);
  serve = await startServe(ca.dir, ["--passphrase-file", ca.pass, "--log-json"]);
});

afterAll(async () => {
  await serve?.stop("SIGKILL");
});

describe("pki serve answers openssl ocsp", () => {
  it("good for a valid certificate, over POST and GET", () => {
    const cert = path.join(ca.dir, "issued", "agent1.crt");
    const r = ocsp(cert, `${serve.url}/ocsp`);
    expect(r.out).toContain("Response verify OK");
    expect(statusOf(r.out, cert)).toBe("good");
    // -url ending in '/' with a small request: openssl 3 still POSTs; GET is checked by the nginx test and below
  });

  it("GET /ocsp/<base64> (RFC 6960 A.1) answers the same", async () => {
    const reqFile = path.join(ca.root, "get.der");
    expect(openssl(["ocsp", "-issuer", path.join(ca.dir, "ca.crt"), "-cert", path.join(ca.dir, "issued", "agent2.crt"), "-no_nonce", "-reqout", reqFile]).code).toBe(0);
    const b64 = encodeURIComponent(fs.readFileSync(reqFile).toString("base64"));
    const res = await request("GET", `/ocsp/${b64}`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/ocsp-response");
    const respFile = path.join(ca.root, "get-resp.der");
    fs.writeFileSync(respFile, res.body);
    const v = openssl(["ocsp", "-respin", respFile, "-issuer", path.join(ca.dir, "ca.crt"), "-cert", path.join(ca.dir, "issued", "agent2.crt"), "-CAfile", path.join(ca.dir, "ca.crt")]);
    expect(v.stdout + v.stderr).toContain("Response verify OK");
    expect(v.stdout).toMatch(/agent2.crt: good/);
    // and at the root too (responder URL http://host:port/)
    expect((await request("GET", `/${b64}`)).body.equals(res.body)).toBe(true);
  });

  it("a revocation by another pki process is answered as revoked within 1 s, without a restart", async () => {
    const cert = path.join(ca.dir, "issued", "agent1.crt");
    expect(statusOf(ocsp(cert, `${serve.url}/ocsp`).out, cert)).toBe("good");
    const r = pki(["--dir", ca.dir, "--passphrase-file", ca.pass, "revoke", "agent1", "--reason", "keyCompromise"]);
    expect(r.code, r.stderr).toBe(0);
    const t0 = Date.now();
    let out = "";
    while (Date.now() - t0 < 5000) {
      out = ocsp(cert, `${serve.url}/ocsp`).out;
      if (statusOf(out, cert) === "revoked") break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const ms = Date.now() - t0;
    expect(statusOf(out, cert), out).toBe("revoked");
    expect(out).toMatch(/Reason: keyCompromise/);
    expect(ms).toBeLessThanOrEqual(1000);
    // the others still good
    const other = path.join(ca.dir, "issued", "agent2.crt");
    expect(statusOf(ocsp(other, `${serve.url}/ocsp`).out, other)).toBe("good");
  });

  it("a certificate of another CA: unauthorized", () => {
    const o = makeCa([], "pki-other-");
    expect(o.run(["issue", "client", "stranger"]).code).toBe(0);
    const r = ocsp(path.join(o.dir, "issued", "stranger.crt"), `${serve.url}/ocsp`, path.join(o.dir, "ca.crt"));
    expect(r.out).toMatch(/Responder Error: unauthorized \(6\)/);
  });

  it("garbage: malformedRequest (POST and GET); wrong method 405; oversized 413; unknown path 404", async () => {
    const a = await request("POST", "/ocsp", Buffer.from("this is not DER"));
    expect(a.status).toBe(200);
    expect(a.body.equals(MALFORMED)).toBe(true);
    const b = await request("GET", "/ocsp/%%%not-base64%%%");
    expect(b.body.equals(MALFORMED)).toBe(true);
    const c = await request("GET", "/ocsp/" + Buffer.from("garbage garbage").toString("base64"));
    expect(c.body.equals(MALFORMED)).toBe(true);
    expect((await request("PUT", "/ocsp", Buffer.from("x"))).status).toBe(405);
    expect((await request("DELETE", "/crl")).status).toBe(405);
    expect((await request("POST", "/elsewhere", Buffer.from("x"))).status).toBe(404);
    const big = await request("POST", "/ocsp", Buffer.alloc(100_000, 0x30)).catch((e) => ({ status: -1, error: e }));
    expect([413, -1]).toContain(big.status); // 413, or the connection closed mid-upload: never an answer
    const bigHeaderless = await new Promise<string>((resolve) => {
      const s = net.connect(serve.port, "127.0.0.1", () => s.write(`POST /ocsp HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n` + `4000\r\n${"0".repeat(0x4000)}\r\n`.repeat(4)));
      let got = "";
      s.on("data", (d) => (got += d));
      s.on("close", () => resolve(got));
      s.on("error", () => resolve(got));
    });
    expect(bigHeaderless).toMatch(/^HTTP\/1\.1 413/);
    // still serving
    const cert = path.join(ca.dir, "issued", "agent3.crt");
    expect(statusOf(ocsp(cert, `${serve.url}/ocsp`).out, cert)).toBe("good");
  });

  it("slow and early-closing clients do not block others and are dropped", async () => {
    const slow: net.Socket[] = [];
    const closed: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) {
      const s = net.connect(serve.port, "127.0.0.1");
      const t0 = Date.now();
      closed.push(new Promise((res) => s.on("close", () => res(Date.now() - t0))));
      s.on("error", () => {});
      s.resume(); // read what the server sends, so its close is seen
      s.write("GET /ocsp/MAo"); // and never the end of the headers
      slow.push(s);
    }
    for (let i = 0; i < 50; i++) {
      const s = net.connect(serve.port, "127.0.0.1", () => {
        s.write("POST /ocsp HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n0123");
        s.destroy();
      });
      s.on("error", () => {});
    }
    const cert = path.join(ca.dir, "issued", "agent3.crt");
    const t = Date.now();
    expect(statusOf(ocsp(cert, `${serve.url}/ocsp`).out, cert)).toBe("good");
    expect(Date.now() - t).toBeLessThan(3000);
    const times = await Promise.all(closed);
    // headers must arrive within 5 s (checked every second)
    expect(Math.max(...times)).toBeLessThan(9000);
    const h = await request("GET", "/healthz");
    expect(h.status).toBe(200);
    // no worker left spinning after the early closes (openssl's responder does): idle CPU stays idle
    const cpu = () => {
      const f = fs.readFileSync(`/proc/${serve.proc.pid}/stat`, "utf8").slice(fs.readFileSync(`/proc/${serve.proc.pid}/stat`, "utf8").lastIndexOf(")") + 2).split(" ");
      return Number(f[11]) + Number(f[12]);
    };
    const before = cpu();
    await new Promise((r) => setTimeout(r, 2000));
    expect(cpu() - before).toBeLessThan(50); // clock ticks (100/s): under 0.5 s of CPU in 2 s
  });

  it("serves the CRL (DER and PEM), the CA certificate and health", async () => {
    const crl = await request("GET", "/crl");
    expect(crl.status).toBe(200);
    const crlFile = path.join(ca.root, "crl.der");
    fs.writeFileSync(crlFile, crl.body);
    const v = openssl(["crl", "-inform", "DER", "-in", crlFile, "-noout", "-CAfile", path.join(ca.dir, "ca.crt")]);
    expect(v.stdout + v.stderr).toMatch(/verify OK/);
    expect((await request("GET", "/crl.pem")).body.toString()).toBe(fs.readFileSync(path.join(ca.dir, "crl.pem"), "utf8"));
    expect((await request("GET", "/ca.crt")).body.toString()).toBe(fs.readFileSync(path.join(ca.dir, "ca.crt"), "utf8"));
    const h = await request("GET", "/healthz");
    expect(h.status).toBe(200);
    const doc = JSON.parse(h.body.toString());
    expect(doc.ok).toBe(true);
    expect(doc.responder.serial).toMatch(/^[0-9A-F]+$/);
    expect(doc.revoked).toBeGreaterThanOrEqual(1);
    // one JSON line per request on stderr
    const lines = serve.stderr().split("\n").filter((l) => l.startsWith("{"));
    expect(lines.length).toBeGreaterThan(5);
    expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ method: "GET", status: 200 });
  });

  it("SIGTERM: exit 0, ready file removed", async () => {
    const s2 = await startServe(ca.dir);
    const ready = path.join(path.dirname(ca.dir), `ready-${s2.port}.json`);
    expect(JSON.parse(fs.readFileSync(ready, "utf8")).url).toBe(`http://127.0.0.1:${s2.port}/`);
    expect(await s2.stop("SIGTERM")).toBe(0);
    expect(fs.existsSync(ready)).toBe(false);
    expect(s2.stderr()).toMatch(/pki serve: stopped \(SIGTERM\)/);
  });
});

describe("pki serve start-up", () => {
  it("a CA without a responder needs the passphrase once, then not again", async () => {
    const c = makeCa();
    const r = pki(["serve", "--dir", c.dir, "--listen", "127.0.0.1:0"], { timeout: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^pki: error: .*passphrase/);
    const s1 = await startServe(c.dir, ["--passphrase-file", c.pass]);
    expect(s1.stderr()).toMatch(/issued the OCSP responder certificate/);
    expect(await s1.stop()).toBe(0);
    const s2 = await startServe(c.dir);
    expect(s2.stderr()).not.toMatch(/issued the OCSP responder/);
    expect(await s2.stop()).toBe(0);
    const list = json(pki(["list", "--dir", c.dir, "--json"]));
    expect(JSON.stringify(list)).toContain("ocsp-responder");
  });

  it("renews a responder certificate with fewer than 10 days left: the old one revoked (superseded) in the CRL", async () => {
    const c = makeCa();
    // a CA whose own ocsp profile gives 5 days: every start finds it due
    fs.mkdirSync(path.join(c.dir, "profiles"), { recursive: true });
    fs.writeFileSync(path.join(c.dir, "profiles", "ocsp.json"), JSON.stringify({ keyUsage: ["digitalSignature"], extendedKeyUsage: ["OCSPSigning"], san: "forbidden", days: 5 }));
    const s1 = await startServe(c.dir, ["--passphrase-file", c.pass]);
    const first = /issued the OCSP responder certificate: serial ([0-9A-F]+)/.exec(s1.stderr())![1]!;
    expect(await s1.stop()).toBe(0);
    const s2 = await startServe(c.dir, ["--passphrase-file", c.pass]);
    const m = /renewed the OCSP responder certificate \(([0-9A-F]+) superseded\): serial ([0-9A-F]+)/.exec(s2.stderr());
    expect(m, s2.stderr()).not.toBeNull();
    expect(m![1]).toBe(first);
    // the new one signs; the old one is in the CRL as superseded
    const crl = openssl(["crl", "-in", path.join(c.dir, "crl.pem"), "-noout", "-text"]).stdout;
    expect(crl).toMatch(new RegExp(`Serial Number: ${first}[\\s\\S]*?Superseded`));
    const cert = path.join(c.dir, "issued", "ocsp-responder.crt");
    expect(openssl(["x509", "-in", cert, "-noout", "-serial"]).stdout.trim()).toBe(`serial=${m![2]}`);
    const h = JSON.parse((await new Promise<Buffer>((res, rej) => http.get({ host: "127.0.0.1", port: s2.port, path: "/healthz", agent: false }, (r) => { const b: Buffer[] = []; r.on("data", (d) => b.push(d)); r.on("end", () => res(Buffer.concat(b))); }).on("error", rej))).toString());
    expect(h.responder.serial).toBe(m![2]);
    expect(await s2.stop()).toBe(0);
  });

  it("pki revoke ocsp-responder while serve runs: a new responder is issued at once and answers verify again", async () => {
    const c = makeCa();
    expect(c.run(["issue", "client", "agent"]).code).toBe(0);
    const s1 = await startServe(c.dir, ["--passphrase-file", c.pass]);
    const old = /serial ([0-9A-F]+)/.exec(s1.stderr())![1]!;
    expect(c.run(["revoke", "ocsp-responder", "--reason", "keyCompromise"]).code).toBe(0);
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000 && (s1.stderr().match(/issued the OCSP responder certificate/g) ?? []).length < 2) await new Promise((res) => setTimeout(res, 100));
    const serials = [...s1.stderr().matchAll(/issued the OCSP responder certificate: serial ([0-9A-F]+)/g)].map((m) => m[1]);
    expect(serials, s1.stderr()).toHaveLength(2);
    expect(serials[1]).not.toBe(old);
    const cert = path.join(c.dir, "issued", "agent.crt");
    const r = spawnSync("openssl", ["ocsp", "-issuer", path.join(c.dir, "ca.crt"), "-cert", cert, "-url", `${s1.url}/ocsp`, "-CAfile", path.join(c.dir, "ca.crt"), "-resp_text", "-timeout", "5"], { encoding: "utf8", timeout: 15_000 });
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/agent.crt: good/);
    // the response carries the new responder certificate
    expect(r.stdout.replace(/[:\s]/g, "").toUpperCase()).toContain(serials[1]!);
    expect(await s1.stop()).toBe(0);
  });

  it("a certificate of someone else under the name ocsp-responder is never used nor replaced", () => {
    const c = makeCa();
    expect(c.run(["issue", "client", "ocsp-responder"]).code).toBe(0);
    const before = fs.readFileSync(path.join(c.dir, "issued", "ocsp-responder.crt"));
    const r = pki(["serve", "--dir", c.dir, "--passphrase-file", c.pass, "--listen", "127.0.0.1:0"], { timeout: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pki: error: .*ocsp-responder\.crt is not an OCSP responder certificate/);
    expect(fs.readFileSync(path.join(c.dir, "issued", "ocsp-responder.crt")).equals(before)).toBe(true);
  });

  it("bad --listen is a usage error; a taken port a one-line error", async () => {
    const r = pki(["serve", "--dir", ca.dir, "--listen", "nonsense"]);
    expect(r.code).toBe(2);
    const t = pki(["serve", "--dir", ca.dir, "--listen", `127.0.0.1:${serve.port}`]);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/^pki: error: cannot listen on 127\.0\.0\.1:\d+: the address is in use\n$/);
  });
});
