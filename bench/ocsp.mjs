#!/usr/bin/env node
/**
 * OCSP responders side by side (part of `npm run bench`; also runs alone:
 * `node bench/ocsp.mjs [--quick]`):
 *
 *   pki serve   vs   openssl ocsp -index index.txt -port N (OpenSSL's own responder)
 *
 * on the same 100,000-certificate CA (index.txt of 100,000 lines, a third
 * revoked), the same delegated responder certificate and key, the same GET
 * request (RFC 6960 A.1, no nonce, the way nginx asks): `ab` from Debian's
 * apache2-utils, 8 concurrent clients, no keep-alive, loopback. Reported:
 * responses/s and p99 latency of each, their ratio, the time from `pki
 * revoke` returning to `pki serve` answering "revoked", and whether a
 * responder keeps spinning after clients close connections early.
 *
 * Every child is guarded: ab gets -s 5 (socket timeout) and is killed after
 * AB_LIMIT_S seconds; both servers are killed by pid at the end (and on any
 * exit), so the bench always ends.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { BIN, freePort, median, ROOT, runStandalone, sleep } from "./common.mjs";
const N_CERTS = 100_000;
const AB_LIMIT_S = 60;


/** Run a command with a hard time limit: { code, stdout, stderr, timedOut }. */
function run(cmd, argv, { env, limitS = AB_LIMIT_S, input } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { env, stdio: [input ? "pipe" : "ignore", "pipe", "pipe"] });
    if (input) child.stdin.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, limitS * 1000);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/**
 * Wait until something listens on the port, without connecting: a probe
 * that connects and hangs up is exactly what makes openssl's responder spin
 * (see earlyCloseSpin), so read the kernel's socket table instead.
 */
async function waitPort(port, limitMs = 30_000) {
  const hex = ":" + port.toString(16).toUpperCase().padStart(4, "0");
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      try {
        if (fs.readFileSync(f, "utf8").split("\n").some((l) => l.split(/\s+/)[2]?.endsWith(hex) && l.split(/\s+/)[4] === "0A")) return;
      } catch {
        /* no such table */
      }
    }
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port} after ${limitMs} ms`);
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: p, agent: false, timeout: 5000 }, (res) => {
      const c = [];
      res.on("data", (d) => c.push(d));
      res.on("end", () => resolve(Buffer.concat(c)));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** CPU ticks (user + system) of a process, from /proc. */
function cpuTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** ab -n N -c 8 -s 5 (no -k: no keep-alive): responses/s and p99 in ms. */
async function ab(url, n, env) {
  const r = await run("ab", ["-q", "-n", String(n), "-c", "8", "-s", "5", "-r", url], { env });
  if (r.timedOut) return { rps: 0, p99: Infinity, note: `ab killed after ${AB_LIMIT_S} s` };
  const rps = Number(/Requests per second:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  const p99 = Number(/^\s*99%\s+(\d+)/m.exec(r.stdout)?.[1] ?? Infinity);
  const non2xx = Number(/Non-2xx responses:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  const complete = Number(/Complete requests:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (!rps) return { rps: 0, p99: Infinity, note: `ab failed: ${(r.stderr || r.stdout).trim().split("\n").pop()}` };
  return { rps, p99, note: non2xx ? `${non2xx} non-2xx` : complete < n ? `${n - complete} incomplete` : "" };
}

/**
 * Early closes: 200 connections that send half a request and hang up, then
 * the server's CPU over 2 idle seconds (openssl's responder is reported to
 * spin at 100% after that).
 */
async function earlyCloseSpin(port, pid) {
  for (let i = 0; i < 200; i++) {
    const s = net.connect(port, "127.0.0.1", () => {
      s.write("GET /MFIwUDBO");
      s.destroy();
    });
    s.on("error", () => {});
  }
  await sleep(500);
  const a = cpuTicks(pid);
  await sleep(2000);
  const b = cpuTicks(pid);
  return ((b - a) / 100 / 2) * 100; // % of one core
}

/**
 * @param {{ tmp: string, ca0: string, passFile: string, env: NodeJS.ProcessEnv, quick: boolean, log: (s: string) => void, verdict?: (v: object) => void }} o
 *   verdict, when given, receives issue 17's target-3 verdicts (see bench/run.mjs)
 * @returns {Promise<string[]>} report lines (markdown)
 */
export async function ocspBench(o) {
  const { env, log } = o;
  // our own response reader, from the build (run.mjs builds it first when missing)
  const { readOcspResponse } = await import(pathToFileURL(path.join(ROOT, "dist", "core", "ocsp.js")).href);
  if (spawnSync("sh", ["-c", "command -v ab"]).status !== 0) return ["OCSP: skipped: `ab` is not installed (Debian package apache2-utils)"];
  const N = o.quick ? 5_000 : 20_000;
  const REPS = o.quick ? 1 : 3;
  const dir = path.join(o.tmp, "ocsp");
  fs.cpSync(o.ca0, dir, { recursive: true, preserveTimestamps: true });
  const pkiSync = (argv) => spawnSync(BIN, ["--dir", dir, "--passphrase-file", o.passFile, ...argv], { env, encoding: "utf8", maxBuffer: 1 << 28, timeout: 300_000 });

  // a victim with a real certificate (revoked at the end), then 100,000 index lines
  log(`OCSP: a ${N_CERTS.toLocaleString("en")}-certificate CA ...`);
  const victim = JSON.parse(pkiSync(["issue", "client", "victim", "--json"]).stdout);
  const idx = path.join(dir, "index.txt");
  const head = fs.readFileSync(idx, "utf8");
  const fd = fs.openSync(idx, "w");
  let s = "";
  for (let i = 0; i < N_CERTS - 2; i++) {
    const serial = "6" + (i % 10) + i.toString(16).toUpperCase().padStart(32, "0");
    s += i % 3 === 0 ? `R\t351231235959Z\t250601120000Z,keyCompromise\t${serial}\tunknown\t/O=Bench/CN=agent-${i}\n` : `V\t351231235959Z\t\t${serial}\tunknown\t/O=Bench/CN=agent-${i}\n`;
    if (s.length > 1 << 20) {
      fs.writeSync(fd, s);
      s = "";
    }
  }
  fs.writeSync(fd, s + head);
  fs.closeSync(fd);
  const crl = pkiSync(["crl"]);
  if (crl.status !== 0) throw new Error(`pki crl failed: ${crl.stderr}`);

  const children = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  };
  process.on("exit", killAll);
  try {
    // pki serve first: it issues the responder certificate both servers use
    const pPort = await freePort();
    const ready = path.join(o.tmp, "ocsp-ready.json");
    const serve = spawn(BIN, ["serve", "--dir", dir, "--passphrase-file", o.passFile, "--listen", `127.0.0.1:${pPort}`, "--ready-file", ready], { env, stdio: ["ignore", "ignore", "pipe"] });
    children.push(serve);
    let serveErr = "";
    serve.stderr.on("data", (d) => (serveErr += d));
    for (let t0 = Date.now(); !fs.existsSync(ready); ) {
      if (serve.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`pki serve did not start: ${serveErr}`);
      await sleep(50);
    }
    // openssl's responder, (re)started: a run it stops answering in (ab's
    // 5 s timeout) must not leave the next runs to a wedged process
    let oPort;
    let ossl;
    const startOssl = async () => {
      if (ossl && ossl.exitCode === null) ossl.kill("SIGKILL");
      oPort = await freePort();
      const osslArgs = ["ocsp", "-index", idx, "-port", String(oPort), "-rsigner", path.join(dir, "issued", "ocsp-responder.crt"), "-rkey", path.join(dir, "private", "ocsp-responder.key"), "-CA", path.join(dir, "ca.crt"), "-nmin", "5", "-ignore_err"];
      ossl = spawn("openssl", osslArgs, { env, stdio: ["ignore", "ignore", "ignore"] });
      children.push(ossl);
      await waitPort(oPort);
    };
    await startOssl();

    // one request, as nginx sends it: SHA-1 CertID, no nonce, GET
    const reqFile = path.join(o.tmp, "ocsp-req.der");
    const target = "6" + "5" + (5555).toString(16).toUpperCase().padStart(32, "0"); // a valid line deep in the index
    const mk = spawnSync("openssl", ["ocsp", "-issuer", path.join(dir, "ca.crt"), "-serial", "0x" + target, "-no_nonce", "-reqout", reqFile], { encoding: "utf8" });
    if (mk.status !== 0) throw new Error(`openssl ocsp -reqout failed: ${mk.stderr}`);
    const urlPath = "/" + encodeURIComponent(fs.readFileSync(reqFile).toString("base64"));

    // both answer, and both answers verify
    for (const [name, port] of [["pki serve", pPort], ["openssl ocsp", oPort]]) {
      const body = await get(port, urlPath);
      const f = path.join(o.tmp, `ocsp-resp-${port}.der`);
      fs.writeFileSync(f, body);
      const v = spawnSync("openssl", ["ocsp", "-respin", f, "-issuer", path.join(dir, "ca.crt"), "-serial", "0x" + target, "-CAfile", path.join(dir, "ca.crt")], { encoding: "utf8" });
      if (!/Response verify OK/.test(v.stdout + v.stderr) || !/: good/.test(v.stdout)) throw new Error(`${name}'s answer does not verify: ${v.stdout}${v.stderr}`);
    }
    log("  both answers verify with openssl ocsp -respin (good)");

    const results = { pki: [], ossl: [] };
    await ab(`http://127.0.0.1:${pPort}${urlPath}`, 500, env); // warm-up
    if (!(await ab(`http://127.0.0.1:${oPort}${urlPath}`, 500, env)).rps) await startOssl();
    for (let rep = 0; rep < REPS; rep++) {
      for (const [k, port] of [["pki", pPort], ["ossl", oPort]]) {
        log(`  ab -n ${N} -c 8 against ${k === "pki" ? "pki serve" : "openssl ocsp"} (run ${rep + 1}/${REPS}) ...`);
        const r = await ab(`http://127.0.0.1:${port}${urlPath}`, N, env);
        results[k].push(r);
        if (k === "ossl" && !r.rps) await startOssl(); // a fresh responder for the next run
      }
    }
    // medians of the runs that finished; a run ab could not finish (a responder
    // that stopped answering: openssl's does under load here, and is then
    // restarted for the next run) is reported, not averaged in
    const sum = (k) => {
      const ok = results[k].filter((r) => r.rps > 0);
      const notes = results[k].map((r) => r.note).filter(Boolean);
      const failed = results[k].length - ok.length;
      if (failed) notes.unshift(`${failed} of ${results[k].length} run(s) did not finish`);
      return ok.length ? { rps: median(ok.map((r) => r.rps)), p99: median(ok.map((r) => r.p99)), note: notes.join("; ") } : { rps: 0, p99: Infinity, note: notes.join("; ") };
    };
    const P = sum("pki");
    const Q = sum("ossl");

    // revocation latency: pki revoke returns -> pki serve answers revoked
    log("  revocation latency ...");
    const vReq = path.join(o.tmp, "ocsp-victim.der");
    spawnSync("openssl", ["ocsp", "-issuer", path.join(dir, "ca.crt"), "-serial", "0x" + victim.serial, "-no_nonce", "-reqout", vReq]);
    const vPath = "/" + encodeURIComponent(fs.readFileSync(vReq).toString("base64"));
    const rv = pkiSync(["revoke", victim.serial, "--reason", "keyCompromise"]);
    if (rv.status !== 0) throw new Error(`pki revoke failed: ${rv.stderr}`);
    const t0 = Date.now();
    let latency = NaN;
    while (Date.now() - t0 < 10_000) {
      const body = await get(pPort, vPath);
      if (readOcspResponse(body).answers[0]?.status === "revoked") {
        latency = Date.now() - t0;
        break;
      }
      await sleep(10);
    }

    log("  early-closing clients ...");
    const spinP = await earlyCloseSpin(pPort, serve.pid);
    const spinQ = await earlyCloseSpin(oPort, ossl.pid);
    const qAlive = ossl.exitCode === null;
    const answers = async (port) => get(port, urlPath).then((b) => readOcspResponse(b).status === "successful", () => false);
    const pAnswers = await answers(pPort);
    const qAnswers = qAlive && (await answers(oPort));

    serve.kill("SIGTERM");
    const exit = await Promise.race([new Promise((r) => serve.on("exit", (c) => r(c))), sleep(10_000).then(() => "hung")]);

    const ratio = Q.rps > 0 ? P.rps / Q.rps : NaN;
    const fmt = (r) => (r.rps > 0 ? `${Math.round(r.rps).toLocaleString("en")}/s, p99 ${r.p99} ms${r.note ? ` (${r.note})` : ""}` : `no figure: ${r.note}`);
    // the rate target: >= openssl's; an openssl that could not finish any run counts as beaten only when pki finished its own
    const rateOk = P.rps > 0 && (Q.rps === 0 || ratio >= 1);
    const verdict = [rateOk ? null : "rate", P.p99 <= 10 ? null : "p99", latency <= 1000 ? null : "revocation"].filter(Boolean);
    const stuckOk = spinP < 20 && pAnswers;
    if (o.verdict) {
      o.verdict({ n: "3a", name: "OCSP responses/s, 100,000-certificate CA", figure: P.rps > 0 ? `${Math.round(P.rps).toLocaleString("en")}/s` : `no figure (${P.note})`, peer: `openssl ocsp ${Q.rps > 0 ? `${Math.round(Q.rps).toLocaleString("en")}/s` : `did not finish (${Q.note})`}`, ratio: Number.isNaN(ratio) ? undefined : ratio, target: ">= 1x", ok: rateOk, note: Q.rps > 0 && Q.note ? `openssl: ${Q.note}` : undefined });
      o.verdict({ n: "3b", name: "OCSP p99 latency", figure: P.rps > 0 ? `${P.p99} ms` : "no figure", peer: `openssl ocsp ${Q.rps > 0 ? `${Q.p99} ms` : "no figure"}`, target: "<= 10 ms", ok: P.p99 <= 10 });
      o.verdict({ n: "3c", name: "OCSP after 200 early closes", figure: `${spinP.toFixed(0)}% of a core over 2 idle s, ${pAnswers ? "answers" : "NO ANSWER"}`, peer: `openssl ocsp ${qAlive ? `${spinQ.toFixed(0)}% of a core, ${qAnswers ? "answers" : "no answer"}` : "exited"}`, target: "no stuck worker (< 20% CPU idle, answers)", ok: stuckOk });
      o.verdict({ n: "3d", name: "revoked answered after pki revoke", figure: Number.isNaN(latency) ? "not within 10 s" : `${latency} ms`, peer: "", target: "<= 1000 ms", ok: latency <= 1000 });
    }
    return [
      "",
      `OCSP responders, ${N_CERTS.toLocaleString("en")}-certificate CA, one GET request (SHA-1 CertID, no nonce): ab -n ${N.toLocaleString("en")} -c 8, no keep-alive, loopback; medians of ${REPS} run(s)`,
      "",
      "| work | pki | result | peer | result | pki/peer (rate) | target | |",
      "|---|---|---:|---|---:|---:|---|---|",
      `| OCSP responses | pki serve | ${fmt(P)} | openssl ocsp -index -port | ${fmt(Q)} | ${Number.isNaN(ratio) ? "-" : ratio.toFixed(2)} | >= 1, p99 <= 10 ms | ${verdict.filter((v) => v !== "revocation").length ? `MISSED (${verdict.filter((v) => v !== "revocation").join(", ")})` : "met"} |`,
      `| revoke -> answered revoked | pki revoke, then pki serve | ${Number.isNaN(latency) ? "not within 10 s" : `${latency} ms`} | openssl ocsp | reloads index.txt when it changes | | <= 1000 ms | ${latency <= 1000 ? "met" : "MISSED"} |`,
      `| after 200 early closes: CPU over 2 idle s, then a request | pki serve | ${spinP.toFixed(0)}% of a core, ${pAnswers ? "answers" : "NO ANSWER"} | openssl ocsp | ${qAlive ? `${spinQ.toFixed(0)}% of a core, ${qAnswers ? "answers" : "no answer within 5 s"}` : "exited"} | | no stuck worker | ${stuckOk ? "met" : "MISSED"} |`,
      `| SIGTERM | pki serve | exit ${exit} | | | | exit 0 | ${exit === 0 ? "met" : "MISSED"} |`,
      "",
      "ab counts responses whose length differs from the first as 'failed' (ECDSA signatures vary in length by a byte): they are valid answers and are counted in responses/s.",
    ];
  } finally {
    killAll();
  }
}

// standalone: node bench/ocsp.mjs [--quick] [--keep]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runStandalone("ocsp", "pki OCSP bench", ocspBench);
}
