/**
 * The HTTP side of `pki serve` (node:http, no framework):
 *
 *   GET  /ocsp/<base64 request>, GET /<base64 request>   RFC 6960 A.1, RFC 5019 5
 *   POST /ocsp, POST /   (body: application/ocsp-request)
 *   GET  /crl (DER), /crl.der, /crl.pem, /ca.crt, /ca.der
 *   GET  /healthz   200 {"ok":true,...} or 503 {"ok":false,"problem":...}
 *
 * Hostile clients: a request body over MAX_BODY is answered 413 and the
 * connection closed; headers must arrive within 5 s and the whole request
 * within 10 s (slow-loris); an idle keep-alive connection is dropped after
 * 5 s; a garbage request gets the OCSP error `malformedRequest` (HTTP 200,
 * as RFC 6960 wants an OCSPResponse), a request for another CA
 * `unauthorized`, another method 405. No request can throw out of the
 * handler: a bug answers `internalError` and is logged.
 *
 * Signed responses are cached per request (without a nonce) until the index,
 * the CA or the responder changes, and for at most CACHE_SECONDS, the way
 * RFC 5019 4 expects responders to pre-produce answers; a nonce'd request is
 * always signed afresh.
 */
import * as http from "node:http";
import type * as net from "node:net";
import type { AddressInfo } from "node:net";
import { buildOcspResponse, errorResponse, OcspMalformed, parseOcspRequest, type CertStatus, type OcspRequest, type SingleAnswer } from "../core/ocsp.js";
import { revocationOf, type ServeState } from "./state.js";

export const MAX_BODY = 16 * 1024;
export const CACHE_SECONDS = 60;
const CACHE_MAX = 50_000;

export interface ServeOptions {
  /** minutes between thisUpdate and nextUpdate */
  nextUpdateMinutes: number;
  log?: (record: Record<string, unknown>) => void;
}

interface Cached {
  body: Buffer;
  at: number;
  version: number;
}

export interface OcspOutcome {
  body: Uint8Array;
  status: string;
  serials?: string[];
  cacheable: boolean;
}

export class OcspService {
  private cache = new Map<string, Cached>();
  private cacheVersion = -1;
  constructor(private readonly state: ServeState, private readonly opts: ServeOptions) {}

  /**
   * The cached answer to the request whose GET path is `cacheKey`, when there
   * is one for the index, CA and responder as they are now (answer() would
   * return the same outcome): lets the caller skip decoding the request.
   */
  cached(cacheKey: string, nowMs = Date.now()): OcspOutcome | undefined {
    const s = this.state;
    if (this.cacheVersion !== s.version) {
      this.cache.clear();
      this.cacheVersion = s.version;
    }
    const hit = this.cache.get(cacheKey);
    if (hit && nowMs - hit.at < CACHE_SECONDS * 1000) return { body: hit.body, status: "cached", cacheable: true };
    return undefined;
  }

  /** Answer one DER request (never throws). */
  answer(reqDer: Uint8Array, cacheKey?: string): OcspOutcome {
    const s = this.state;
    const nowMs = Date.now();
    if (cacheKey !== undefined) {
      const hit = this.cached(cacheKey, nowMs);
      if (hit) return hit;
    } else if (this.cacheVersion !== s.version) {
      this.cache.clear();
      this.cacheVersion = s.version;
    }
    let req: OcspRequest;
    try {
      req = parseOcspRequest(reqDer);
    } catch (e) {
      if (e instanceof OcspMalformed) return { body: errorResponse("malformedRequest"), status: "malformedRequest", cacheable: false };
      return { body: errorResponse("internalError"), status: "internalError", cacheable: false };
    }
    try {
      for (const id of req.certIds) {
        if (!s.isOurIssuer(id.hash, id.nameHash, id.keyHash)) return { body: errorResponse("unauthorized"), status: "unauthorized", serials: req.certIds.map((c) => c.serial), cacheable: false };
      }
      const r = s.responder;
      if (!r) return { body: errorResponse("tryLater"), status: "tryLater", cacheable: false };
      const answers: SingleAnswer[] = req.certIds.map((certId) => ({ certId, status: this.statusOf(certId.serial) }));
      const now = new Date(Math.floor(nowMs / 1000) * 1000);
      const body = Buffer.from(
        buildOcspResponse({
          answers,
          producedAt: now,
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + this.opts.nextUpdateMinutes * 60_000),
          responderKeyHash: r.keyHash,
          nonceExtension: req.nonceExtension,
          signatureAlgorithm: r.algorithm.der,
          responderCert: r.certDer,
          sign: r.signer,
        }),
      );
      const cacheable = !req.nonceExtension;
      if (cacheable && cacheKey !== undefined) {
        if (this.cache.size >= CACHE_MAX) this.cache.clear();
        this.cache.set(cacheKey, { body, at: nowMs, version: s.version });
      }
      return { body, status: answers.map((a) => a.status.status).join(","), serials: req.certIds.map((c) => c.serial), cacheable };
    } catch {
      return { body: errorResponse("internalError"), status: "internalError", cacheable: false };
    }
  }

  statusOf(serial: string): CertStatus {
    const rec = this.state.index.get(serial);
    if (!rec) return { status: "unknown" };
    if (rec.status === "R") return { status: "revoked", ...revocationOf(rec) };
    return { status: "good" };
  }
}

/** RFC 6960 A.1: the path after the responder URL is the URL-encoded base64 of the DER request. */
export function decodeGetPath(p: string): Uint8Array | null {
  let s: string;
  try {
    s = decodeURIComponent(p);
  } catch {
    return null;
  }
  // some clients send base64url, or lose '+' to a space in transit
  s = s.replace(/ /g, "+").replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return null;
  return Buffer.from(s, "base64");
}

export function createServer(state: ServeState, service: OcspService, opts: ServeOptions): http.Server {
  const log = opts.log;
  const server = http.createServer(
    {
      requestTimeout: 10_000,
      headersTimeout: 5_000,
      keepAliveTimeout: 5_000,
      // how often the two timeouts above are enforced (Node's default, 30 s, lets a slow client sit that long)
      connectionsCheckingInterval: 1_000,
      maxHeaderSize: 16 * 1024,
      // set by fastOcspGets when it hands a connection to node:http (a
      // one-shot answer is one write: Nagle has nothing to delay, and the
      // setsockopt is one syscall per request)
      noDelay: false,
    },
    (req, res) => {
      const t0 = process.hrtime.bigint();
      let ocsp: OcspOutcome | undefined;
      const done = (code: number, headers: Record<string, string | number>, body: Uint8Array | string) => {
        if (res.headersSent || res.destroyed) return;
        res.writeHead(code, { "content-length": Buffer.byteLength(body), ...headers });
        res.end(body);
        if (log) {
          const rec: Record<string, unknown> = { time: new Date().toISOString(), remote: req.socket.remoteAddress, method: req.method, path: (req.url ?? "").slice(0, 80), status: code, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
          if (ocsp) {
            rec.ocsp = ocsp.status;
            if (ocsp.serials) rec.serials = ocsp.serials;
          }
          log(rec);
        }
      };
      const sendOcsp = (o: OcspOutcome, get: boolean) => {
        ocsp = o;
        const headers: Record<string, string | number> = { "content-type": "application/ocsp-response" };
        // RFC 5019 6.2 caching headers, kept short: a revocation must not be hidden by an HTTP cache
        headers["cache-control"] = get && o.cacheable ? "max-age=0, no-cache" : "no-store";
        done(200, headers, o.body);
      };
      try {
        const url = req.url ?? "/";
        const q = url.indexOf("?");
        const pathname = q < 0 ? url : url.slice(0, q);
        if (req.method === "POST") {
          if (pathname !== "/" && pathname !== "/ocsp" && pathname !== "/ocsp/") return done(404, { "content-type": "text/plain" }, "not found\n");
          const declared = Number(req.headers["content-length"] ?? "0");
          const tooLarge = () => {
            // answer, then close: the rest of the upload is never read
            res.setHeader("connection", "close");
            res.on("finish", () => req.socket.destroy());
            done(413, { "content-type": "text/plain" }, "request too large\n");
          };
          if (declared > MAX_BODY) return tooLarge();
          const chunks: Buffer[] = [];
          let size = 0;
          req.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              if (!res.headersSent) {
                req.pause();
                tooLarge();
              }
              return;
            }
            chunks.push(c);
          });
          req.on("end", () => {
            if (size > MAX_BODY) return;
            sendOcsp(service.answer(Buffer.concat(chunks)), false);
          });
          req.on("error", () => {});
          return;
        }
        if (req.method !== "GET" && req.method !== "HEAD") {
          return done(405, { "content-type": "text/plain", allow: "GET, HEAD, POST" }, "method not allowed\n");
        }
        switch (pathname) {
          case "/healthz":
          case "/health": {
            const h = health(state);
            return done(h.ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }, JSON.stringify(h) + "\n");
          }
          case "/crl":
          case "/crl.der":
          case "/crl.crl":
            if (!state.crl) return done(404, { "content-type": "text/plain" }, "no CRL yet: run `pki crl`\n");
            return done(200, { "content-type": "application/pkix-crl", "cache-control": "no-cache" }, state.crl.der);
          case "/crl.pem":
            if (!state.crl) return done(404, { "content-type": "text/plain" }, "no CRL yet: run `pki crl`\n");
            return done(200, { "content-type": "application/x-pem-file", "cache-control": "no-cache" }, state.crl.pem);
          case "/ca.crt":
          case "/ca.pem":
            return done(200, { "content-type": "application/x-pem-file" }, state.caPem);
          case "/ca.der":
          case "/ca.cer":
            return done(200, { "content-type": "application/pkix-cert" }, state.ca.cert.der);
          case "/":
          case "/ocsp":
          case "/ocsp/":
            return done(200, { "content-type": "text/plain" }, "pki serve: OCSP responder (RFC 6960); GET /ocsp/<base64 request> or POST /ocsp\n");
        }
        const b64 = pathname.startsWith("/ocsp/") ? pathname.slice(6) : pathname.slice(1);
        if (b64.length > 4 * MAX_BODY) return done(414, { "content-type": "text/plain" }, "request URI too long\n");
        const reqDer = decodeGetPath(b64);
        if (!reqDer) return sendOcsp({ body: errorResponse("malformedRequest"), status: "malformedRequest", cacheable: false }, true);
        return sendOcsp(service.answer(reqDer, b64), true);
      } catch (e) {
        log?.({ time: new Date().toISOString(), error: (e as Error).message });
        if (!res.headersSent) done(500, { "content-type": "text/plain" }, "internal error\n");
      }
    },
  );
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    // malformed HTTP, oversized headers, timeouts: a 4xx when the socket still takes it
    if (!socket.writable) return socket.destroy();
    const code = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    socket.end(`HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  // idle sockets (no request at all) are closed too
  server.setTimeout(15_000, (socket) => socket.destroy());
  fastOcspGets(server, service, log);
  return server;
}

/**
 * The common request, answered without node:http's per-request machinery:
 * a one-shot OCSP GET (HTTP/1.0 without keep-alive, or `connection: close`:
 * what nginx, openssl and ab without -k send), complete in the first packet.
 * Its answer is exactly what the handler above sends (same status, headers
 * and body; logged the same), then the connection is closed. Every other
 * connection (keep-alive, POST, other paths, a request split over packets,
 * anything unusual) is handed to node:http untouched, its first bytes put
 * back. Measured on the bench's 100,000-certificate CA: see README
 * "Performance".
 */
function fastOcspGets(server: http.Server, service: OcspService, log: ServeOptions["log"]): void {
  const httpConnection = server.listeners("connection") as Array<(socket: net.Socket) => void>;
  server.removeAllListeners("connection");
  server.on("connection", (socket: net.Socket) => {
    const handOver = (first?: Buffer) => {
      socket.removeListener("data", onData);
      socket.removeListener("error", onError);
      socket.setTimeout(0);
      socket.setNoDelay(true); // node:http's default, left off at accept (createServer above)
      socket.pause();
      if (first) socket.unshift(first);
      for (const l of httpConnection) l.call(server, socket);
      socket.resume();
    };
    const onError = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      const t0 = process.hrtime.bigint();
      let answered = false;
      try {
        answered = answerFast(socket, chunk, service, log, t0);
      } catch {
        answered = false;
      }
      if (!answered) handOver(chunk);
    };
    socket.on("error", onError);
    // nothing sent within the headers timeout: dropped, as node:http would
    socket.setTimeout(5_000, () => socket.destroy());
    socket.once("data", onData);
  });
}

const FAST_HEAD = /^GET (\/[^ ?#\r\n]*) HTTP\/1\.([01])\r\n/;

/** Answer `chunk` here when it is a whole one-shot OCSP GET; false (nothing sent) otherwise. */
function answerFast(socket: net.Socket, chunk: Buffer, service: OcspService, log: ServeOptions["log"], t0: bigint): boolean {
  if (chunk.length > 8 * 1024 || chunk[0] !== 0x47 /* G */) return false;
  const text = chunk.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0 || end + 4 !== chunk.length) return false; // incomplete, or more behind it
  const m = FAST_HEAD.exec(text);
  if (!m) return false;
  const head = text.slice(0, end).toLowerCase();
  const conn = /\r\nconnection:[ \t]*([^\r]*)/.exec(head)?.[1]?.trim();
  const closes = m[2] === "0" ? conn !== "keep-alive" : conn === "close";
  if (!closes || /\r\n(content-length|transfer-encoding|expect|upgrade):/.test(head)) return false;
  const pathname = m[1]!;
  if (!pathname.startsWith("/") || pathname === "/" || FIXED_PATHS.has(pathname)) return false;
  const b64 = pathname.startsWith("/ocsp/") ? pathname.slice(6) : pathname.slice(1);
  if (b64.length > 4 * MAX_BODY) return false;
  // a cached answer is found by the path as sent: no URL or base64 decoding, no DER parsing
  let o = service.cached(b64);
  if (!o) {
    const reqDer = decodeGetPath(b64);
    if (!reqDer) return false;
    o = service.answer(reqDer, b64);
  }
  socket.setTimeout(0);
  // the whole answer in one write, then close: the request was read whole and
  // nothing more is expected on a one-shot connection, so there is no need to
  // half-close and wait for the client's FIN (a shutdown, a read and an event
  // loop turn fewer per request); close() still delivers the bytes written
  // before it, then FIN, as `openssl ocsp -port` does (unless the client sent
  // more than the request, which Linux answers with a reset: answerFast only
  // takes a packet that ends with the request). (Destroyed a tick after
  // the write's callback: destroyed within it, the stream makes an
  // ERR_STREAM_DESTROYED, stack trace and all, for nobody.)
  socket.write(wireOf(o), () => process.nextTick(closeSocket, socket));
  if (log) {
    const rec: Record<string, unknown> = { time: new Date().toISOString(), remote: socket.remoteAddress, method: "GET", path: pathname.slice(0, 80), status: 200, ms: Number(process.hrtime.bigint() - t0) / 1e6, ocsp: o.status };
    if (o.serials) rec.serials = o.serials;
    log(rec);
  }
  return true;
}

const closeSocket = (socket: net.Socket) => socket.destroy();

/** The HTTP date, computed once a second. */
let dateSecond = -1;
let dateText = "";
function httpDate(nowMs: number): string {
  const sec = Math.floor(nowMs / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateText = new Date(sec * 1000).toUTCString();
  }
  return dateText;
}

/** Head and body of a fast answer, built once per body and second (a cached body is one Buffer, answered many times). */
const wires = new WeakMap<Uint8Array, { second: number; wire: Buffer }>();
function wireOf(o: OcspOutcome): Buffer {
  const date = httpDate(Date.now());
  const w = wires.get(o.body);
  if (w && w.second === dateSecond) return w.wire;
  const cache = o.cacheable ? "max-age=0, no-cache" : "no-store";
  const wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${o.body.length}\r\ncontent-type: application/ocsp-response\r\ncache-control: ${cache}\r\nDate: ${date}\r\nConnection: close\r\n\r\n`, "latin1"), o.body]);
  if (o.cacheable) wires.set(o.body, { second: dateSecond, wire });
  return wire;
}

/** GET paths the handler answers with something other than OCSP. */
const FIXED_PATHS = new Set(["/healthz", "/health", "/crl", "/crl.der", "/crl.crl", "/crl.pem", "/ca.crt", "/ca.pem", "/ca.der", "/ca.cer", "/ocsp", "/ocsp/"]);

export interface Health {
  ok: boolean;
  problem?: string;
  ca: string;
  certificates: number;
  revoked: number;
  crl: { thisUpdate: string; nextUpdate: string | null } | null;
  responder: { serial: string; notAfter: string } | null;
}

export function health(state: ServeState, now = new Date()): Health {
  let revoked = 0;
  for (const r of state.index.values()) if (r.status === "R") revoked++;
  const problems: string[] = [];
  if (state.problem) problems.push(state.problem);
  if (!state.responder) problems.push(state.responderProblem ?? "no responder certificate");
  else if (state.responder.cert.notAfter.getTime() <= now.getTime()) problems.push("the responder certificate has expired");
  if (!state.crl) problems.push("no CRL (run `pki crl`)");
  else if (state.crl.nextUpdate && state.crl.nextUpdate.getTime() <= now.getTime()) problems.push(`the CRL expired on ${state.crl.nextUpdate.toISOString()} (run \`pki crl\`)`);
  if (state.ca.cert.notAfter.getTime() <= now.getTime()) problems.push("the CA certificate has expired");
  return {
    ok: problems.length === 0,
    ...(problems.length ? { problem: problems.join("; ") } : {}),
    ca: state.ca.settings.subject,
    certificates: state.index.size,
    revoked,
    crl: state.crl ? { thisUpdate: state.crl.thisUpdate.toISOString(), nextUpdate: state.crl.nextUpdate?.toISOString() ?? null } : null,
    responder: state.responder ? { serial: state.responder.cert.serial, notAfter: state.responder.cert.notAfter.toISOString() } : null,
  };
}

export const addressOf = (server: http.Server): string => {
  const a = server.address() as AddressInfo;
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
};
