/**
 * pki serve's two ways of answering a GET (src/serve/server.ts): a one-shot
 * request complete in its first packet (HTTP/1.0 without keep-alive, or
 * `connection: close`) is answered without node:http; everything else goes
 * through node:http. Both must give the same answer, the same headers but
 * Connection, and log the same; a request split over packets, a keep-alive
 * one, HEAD, a query string and two pipelined requests still work; a client
 * that hangs up mid-request leaves nothing behind; the response cache gives
 * the same bytes until the index changes, then the new status.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCa, tmpdir } from "../helpers.js";
import { startServe, type Serve } from "./serve-lib.js";

let ca: ReturnType<typeof makeCa>;
let serve: Serve;
let urlPath: string;
let serial: string;

/** Send raw bytes (in parts, `gapMs` apart) and read until the server closes (or `untilBytes` arrive, then close). */
function raw(parts: string[], gapMs = 0, untilBytes?: (b: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(serve.port, "127.0.0.1");
    const got: Buffer[] = [];
    s.setTimeout(10_000, () => s.destroy(new Error("no answer within 10 s")));
    s.on("data", (d) => {
      got.push(d);
      if (untilBytes?.(Buffer.concat(got))) s.destroy();
    });
    s.on("close", () => resolve(Buffer.concat(got)));
    s.on("error", reject);
    s.on("connect", async () => {
      for (const p of parts) {
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

function split(resp: Buffer): { head: string; headers: Record<string, string>; body: Buffer } {
  const at = resp.indexOf("\r\n\r\n");
  const head = resp.subarray(0, at).toString("latin1");
  const headers: Record<string, string> = {};
  for (const l of head.split("\r\n").slice(1)) headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
  return { head: head.split("\r\n")[0]!, headers, body: resp.subarray(at + 4, at + 4 + Number(headers["content-length"])) };
}

function verifyStatus(body: Buffer): string {
  const f = path.join(tmpdir(), "resp.der");
  fs.writeFileSync(f, body);
  const v = spawnSync("openssl", ["ocsp", "-respin", f, "-issuer", path.join(ca.dir, "ca.crt"), "-serial", "0x" + serial, "-CAfile", path.join(ca.dir, "ca.crt")], { encoding: "utf8" });
  expect(v.stdout + v.stderr).toContain("Response verify OK");
  return /: (good|revoked|unknown)/.exec(v.stdout)?.[1] ?? "none";
}

beforeAll(async () => {
  ca = makeCa();
  expect(ca.run(["issue", "client", "agent1"]).code).toBe(0);
  serial = fs.readFileSync(path.join(ca.dir, "index.txt"), "utf8").split("\t")[3]!;
  const reqFile = path.join(ca.root, "req.der");
  expect(spawnSync("openssl", ["ocsp", "-issuer", path.join(ca.dir, "ca.crt"), "-serial", "0x" + serial, "-no_nonce", "-reqout", reqFile]).status).toBe(0);
  urlPath = "/" + encodeURIComponent(fs.readFileSync(reqFile).toString("base64"));
  serve = await startServe(ca.dir, ["--passphrase-file", ca.pass, "--log-json"]);
});

afterAll(async () => {
  await serve?.stop("SIGKILL");
});

describe("pki serve: one-shot GETs and the others", () => {
  it("HTTP/1.0 one-shot, HTTP/1.1 close, HTTP/1.1 keep-alive, split over packets: the same answer and headers", async () => {
    const oneShot = split(await raw([`GET ${urlPath} HTTP/1.0\r\nHost: x\r\nUser-Agent: ab\r\n\r\n`]));
    const close11 = split(await raw([`GET /ocsp${urlPath} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]));
    const keep = split(await raw([`GET ${urlPath} HTTP/1.1\r\nHost: x\r\n\r\n`], 0, (b) => { const i = b.indexOf("\r\n\r\n"); return i > 0 && b.length >= i + 4 + Number(/content-length: (\d+)/i.exec(b.toString("latin1"))?.[1] ?? 1e9); }));
    const parts = split(await raw([`GET ${urlPath.slice(0, 20)}`, `${urlPath.slice(20)} HTTP/1.0\r\n`, "Host: x\r\n\r\n"], 50));
    for (const r of [oneShot, close11, keep, parts]) {
      expect(r.head).toBe("HTTP/1.1 200 OK");
      expect(r.headers["content-type"]).toBe("application/ocsp-response");
      expect(r.headers["cache-control"]).toBe("max-age=0, no-cache");
      expect(r.headers["date"]).toMatch(/GMT$/);
      expect(r.body.equals(oneShot.body)).toBe(true); // the cache: the same signed bytes
      expect(verifyStatus(r.body)).toBe("good");
    }
    expect(oneShot.headers["connection"]).toBe("close");
    expect(close11.headers["connection"]).toBe("close");
    expect(keep.headers["connection"]).toBe("keep-alive");
  });

  it("HEAD, a query string, pipelined requests and other paths still go through node:http", async () => {
    const head = await raw([`HEAD ${urlPath} HTTP/1.0\r\n\r\n`]);
    expect(head.toString("latin1")).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: \d+/);
    expect(split(head).body.length).toBe(0);
    const q = split(await raw([`GET ${urlPath}?x=1 HTTP/1.0\r\n\r\n`]));
    expect(verifyStatus(q.body)).toBe("good");
    const two = (await raw([`GET ${urlPath} HTTP/1.1\r\nHost: x\r\n\r\nGET ${urlPath} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`])).toString("latin1");
    expect(two.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    const health = split(await raw(["GET /healthz HTTP/1.0\r\n\r\n"]));
    expect(JSON.parse(health.body.toString()).ok).toBe(true);
    const bad = split(await raw(["GET /%%% HTTP/1.0\r\n\r\n"]));
    expect(bad.head).toBe("HTTP/1.1 200 OK"); // an OCSP malformedRequest, as before
    expect(bad.body.equals(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]))).toBe(true);
  });

  it("clients that hang up mid-request or send nothing leave the server idle and answering", async () => {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        new Promise<void>((res) => {
          const s = net.connect(serve.port, "127.0.0.1", () => {
            if (i % 2) s.write(`GET ${urlPath.slice(0, 10)}`);
            s.destroy();
            res();
          });
          s.on("error", () => res());
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const ticks = () => {
      const f = fs.readFileSync(`/proc/${serve.proc.pid}/stat`, "utf8");
      const x = f.slice(f.lastIndexOf(")") + 2).split(" ");
      return Number(x[11]) + Number(x[12]);
    };
    const a = ticks();
    await new Promise((r) => setTimeout(r, 1000));
    expect(ticks() - a).toBeLessThan(20); // < 0.2 s of CPU in 1 s idle: no worker spinning
    expect(verifyStatus(split(await raw([`GET ${urlPath} HTTP/1.0\r\n\r\n`])).body)).toBe("good");
  });

  it("a connection that sends nothing is closed by the server (headers timeout, 5 s)", async () => {
    // raw() gives up (rejects) after 10 s: resolving means the server closed it
    const silent = await Promise.all([raw([]), raw([]), raw([])]);
    for (const b of silent) expect(b.length).toBe(0);
    expect(verifyStatus(split(await raw([`GET ${urlPath} HTTP/1.0\r\n\r\n`])).body)).toBe("good");
  });

  it("logs a one-shot GET like any other request, and answers revoked once pki revoke has run (the cache follows the index)", async () => {
    const before = serve.stderr().length;
    await raw([`GET ${urlPath} HTTP/1.0\r\n\r\n`]);
    await new Promise((r) => setTimeout(r, 100));
    const line = serve.stderr().slice(before).split("\n").find((l) => l.includes('"ocsp"'));
    expect(line).toBeDefined();
    const rec = JSON.parse(line!);
    expect(rec).toMatchObject({ method: "GET", status: 200 });
    expect(typeof rec.ms).toBe("number");
    expect(ca.run(["revoke", serial, "--reason", "keyCompromise"]).code).toBe(0);
    let status = "";
    for (let i = 0; i < 50 && status !== "revoked"; i++) {
      status = verifyStatus(split(await raw([`GET ${urlPath} HTTP/1.0\r\n\r\n`])).body);
      if (status !== "revoked") await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe("revoked");
  });
});
