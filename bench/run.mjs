#!/usr/bin/env node
/**
 * npm run bench [-- --quick] [-- --large]
 *
 * pki side by side with openssl, in one run, on fixtures built here in a
 * temporary directory (nothing outside it is touched):
 *
 *   cold start      pki --version, pki --help      vs node -e 0 (same environment)
 *   one CSR         pki sign-csr                   vs openssl x509 -req, same encrypted CA key
 *                                                     (PBES2, PBKDF2 600,000 iterations) and -passin
 *   1,000 pairs     pki issue client --names-from  vs openssl req -x509 -newkey ec -CA, one process
 *                                                     per pair (a subset timed and extrapolated)
 *   CRL 100,000     pki crl                        vs openssl ca -gencrl, same directory and key
 *   CRL 1,000,000   (with --large)
 *   revoke          pki revoke in a 100,000-line index vs openssl ca -revoke
 *   OCSP            pki serve vs openssl ocsp -index -port on a 100,000-certificate
 *                   CA: ab -c 8, no keep-alive (bench/ocsp.mjs; needs apache2-utils)
 *   1,000 pairs on a token  pki issue --names-from with the CA key on a SoftHSM2
 *                   token vs the same with the encrypted key file (needs
 *                   softhsm2 and the pkcs11js addon; skipped, with a line, without)
 *
 * --only NAME runs one case: cold, csr, pairs, crl, revoke, ocsp, token.
 *
 * Each case runs several times; the table shows medians, the ratio pki/peer
 * and peak memory (max RSS of the process) for the CRL runs. Only public
 * tools: node and openssl (GNU time for memory when /usr/bin/time exists,
 * else /proc polling). The bench is never part of `npm test`.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ocspBench } from "./ocsp.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "pki.js");
const args = new Set(process.argv.slice(2));
const QUICK = args.has("--quick");
const LARGE = args.has("--large");
const KEEP = args.has("--keep");
const onlyAt = process.argv.indexOf("--only");
const ONLY = onlyAt > 0 ? process.argv[onlyAt + 1] : undefined;
const want = (name) => ONLY === undefined || ONLY === name;
if (args.has("--help") || args.has("-h")) {
  process.stdout.write("usage: npm run bench [-- --quick] [-- --large] [-- --keep] [-- --only cold|csr|pairs|crl|revoke|ocsp|token]\n  --quick  fewer runs and smaller batches\n  --large  also the 1,000,000-entry CRL\n  --keep   keep the temporary directory\n");
  process.exit(0);
}

const REPS = QUICK ? { cold: 7, sign: 3, pairs: 1, crl: 1, revoke: 3 } : { cold: 21, sign: 9, pairs: 3, crl: 3, revoke: 5 };
const PAIRS = 1000;
const OPENSSL_PAIRS = QUICK ? 20 : 100; // one process each: timed on a subset, extrapolated to PAIRS
const CRL_N = 100_000;
const CRL_LARGE_N = 1_000_000;
const PASS = "bench passphrase 1234";

// ---------------------------------------------------------------- helpers

const env = { ...process.env };
for (const k of Object.keys(env)) if (k.startsWith("PKI_") || k === "CI") delete env[k];

function die(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

const GNU_TIME = fs.existsSync("/usr/bin/time") && spawnSync("/usr/bin/time", ["-f", "%M", "true"], { encoding: "utf8" }).status === 0 ? "/usr/bin/time" : null;

/** Run once: wall time in ms (and max RSS in KiB when asked). Fails loudly on a non-zero exit. */
async function timed(cmd, argv, { cwd, mem = false, input } = {}) {
  let file = cmd;
  let a = argv;
  const memFile = mem && GNU_TIME ? path.join(os.tmpdir(), `pki-bench-mem-${process.pid}-${Math.random().toString(36).slice(2)}`) : null;
  if (memFile) {
    file = GNU_TIME;
    a = ["-f", "%M", "-o", memFile, cmd, ...argv];
  }
  const t0 = process.hrtime.bigint();
  const child = spawn(file, a, { cwd, env, stdio: [input ? "pipe" : "ignore", "ignore", "pipe"] });
  if (input) child.stdin.end(input);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let peakKb = 0;
  let poll;
  if (mem && !memFile) {
    // no GNU time: VmHWM (the process's own high-water mark) read until it exits
    poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* gone */
      }
    }, 10);
  }
  const code = await new Promise((res) => child.on("close", (c) => res(c)));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (poll) clearInterval(poll);
  if (code !== 0) die(`${cmd} ${argv.join(" ")} exited ${code}:\n${stderr}`);
  if (memFile) {
    peakKb = Number(fs.readFileSync(memFile, "utf8").trim().split("\n").pop());
    fs.rmSync(memFile, { force: true });
  }
  return { ms, peakKb: mem ? peakKb : undefined };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Run `prepare(i)` (untimed) then the timed command, `reps` times; medians of time and memory. */
async function series(reps, prepare, run) {
  const ms = [];
  const kb = [];
  for (let i = 0; i < reps; i++) {
    const p = prepare ? await prepare(i) : undefined;
    const r = await run(p, i);
    ms.push(r.ms);
    if (r.peakKb !== undefined) kb.push(r.peakKb);
  }
  return { ms: median(ms), peakKb: kb.length ? median(kb) : undefined, runs: ms };
}

function pki(argv, opts = {}) {
  return timed(process.execPath, [BIN, ...argv], opts);
}

function pkiSync(argv, cwd) {
  const r = spawnSync(process.execPath, [BIN, ...argv], { cwd, env, encoding: "utf8", maxBuffer: 1 << 28 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ossl(argv, cwd) {
  const r = spawnSync("openssl", argv, { cwd, env, encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) die(`openssl ${argv.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

function copyDir(from, to) {
  fs.cpSync(from, to, { recursive: true, preserveTimestamps: true });
  // cpSync keeps modes; private/ must stay 0700 and keys 0600 (pki refuses otherwise)
}

function log(msg) {
  process.stderr.write(msg + "\n");
}

// ---------------------------------------------------------------- fixtures

if (!which("openssl")) die("openssl is not on PATH");
if (!fs.existsSync(path.join(ROOT, "dist", "cli", "run.js"))) {
  log("building (tsc) ...");
  const b = spawnSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", ROOT], { stdio: "inherit" });
  if (b.status !== 0) die("the build failed: run npm install first");
}

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "pki-bench-"));
process.on("exit", () => {
  if (!KEEP) fs.rmSync(TMP, { recursive: true, force: true });
});
const passFile = path.join(TMP, "pass");
fs.writeFileSync(passFile, PASS + "\n", { mode: 0o600 });
const CA0 = path.join(TMP, "ca0");
{
  const r = pkiSync(["init", "--dir", CA0, "--cn", "Bench CA", "--org", "Bench", "--passphrase-file", passFile]);
  if (r.code !== 0) die(`pki init failed: ${r.stderr}`);
}
const g = (dir) => ["--dir", dir, "--passphrase-file", passFile];
const opensslVersion = ossl(["version"]).trim();

/** openssl ca configuration over a pki directory: same index.txt, crlnumber, certificate and encrypted key. */
function opensslCnf(dir) {
  const cnf = path.join(dir, "openssl-bench.cnf");
  fs.writeFileSync(
    cnf,
    `[ ca ]
default_ca = bench
[ bench ]
dir = ${dir}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/private/ca.key
new_certs_dir = $dir/certs
serial = $dir/serial-openssl
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
`,
  );
  return cnf;
}

/** An index.txt of n revoked lines (every third with a reason), written in chunks. */
function writeRevokedIndex(file, n, extra = "") {
  const fd = fs.openSync(file, "w");
  let s = "";
  const reasons = ["", ",keyCompromise", ",superseded"];
  for (let i = 0; i < n; i++) {
    const serial = "5" + (i % 10) + i.toString(16).toUpperCase().padStart(32, "0");
    s += `R\t351231235959Z\t250601120000Z${reasons[i % 3]}\t${serial}\tunknown\t/O=Bench/CN=agent-${i}\n`;
    if (s.length > 1 << 20) {
      fs.writeSync(fd, s);
      s = "";
    }
  }
  fs.writeSync(fd, s + extra);
  fs.closeSync(fd);
}

/** A CA directory whose index holds n revoked entries (and, with `target`, one valid certificate to revoke). */
function crlFixture(name, n, withTarget) {
  const dir = path.join(TMP, name);
  copyDir(CA0, dir);
  let extra = "";
  let target;
  if (withTarget) {
    const r = pkiSync([...g(dir), "issue", "client", "victim", "--json"]);
    if (r.code !== 0) die(`pki issue failed: ${r.stderr}`);
    target = JSON.parse(r.stdout);
    extra = fs.readFileSync(path.join(dir, "index.txt"), "utf8");
  }
  writeRevokedIndex(path.join(dir, "index.txt"), n, extra);
  fs.writeFileSync(path.join(dir, "crlnumber"), "01\n");
  return { dir, cnf: opensslCnf(dir), target };
}

// ---------------------------------------------------------------- the cases

const rows = [];
function row(work, pkiLabel, p, peerLabel, q, target, opts = {}) {
  rows.push({ work, pkiLabel, p, peerLabel, q, target, ...opts });
}

log(`pki bench: ${os.cpus().length} CPU(s), node ${process.version}, ${opensslVersion}${QUICK ? ", --quick" : ""}${LARGE ? ", --large" : ""}`);
log(`temporary directory ${TMP}${KEEP ? " (kept)" : ""}`);

// cold start
if (want("cold")) {
  log("cold start ...");
  const node0 = await series(REPS.cold, null, () => timed(process.execPath, ["-e", "0"]));
  const ver = await series(REPS.cold, null, () => pki(["--version"]));
  const help = await series(REPS.cold, null, () => pki(["--help"]));
  const osslv = await series(REPS.cold, null, () => timed("openssl", ["version"]));
  row("cold start", "pki --version", ver, "node -e 0", node0, 1.2);
  row("cold start", "pki --help", help, "node -e 0", node0, 1.2);
  row("cold start (reference)", "node -e 0", node0, "openssl version", osslv, null);
}

// one CSR
if (want("csr")) {
  log("one sign-csr ...");
  const dir = path.join(TMP, "sign");
  copyDir(CA0, dir);
  const csr = path.join(TMP, "one.csr");
  ossl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(TMP, "one.key"), "-subj", "/CN=one", "-out", csr]);
  const p = await series(REPS.sign, null, (_, i) => pki([...g(dir), "sign-csr", csr, "--profile", "client", "--out", path.join(TMP, `one-pki-${i}.crt`)]));
  const q = await series(REPS.sign, null, (_, i) =>
    timed("openssl", ["x509", "-req", "-in", csr, "-CA", path.join(dir, "ca.crt"), "-CAkey", path.join(dir, "private", "ca.key"), "-passin", `file:${passFile}`, "-days", "365", "-sha256", "-out", path.join(TMP, `one-ossl-${i}.crt`)]),
  );
  row("one CSR signed (P-256, encrypted CA key)", "pki sign-csr", p, "openssl x509 -req", q, 1.5);
}

// 1,000 pairs
if (want("pairs")) {
  log(`${PAIRS} P-256 pairs ...`);
  const names = path.join(TMP, "names.txt");
  fs.writeFileSync(names, Array.from({ length: PAIRS }, (_, i) => `agent-${i}`).join("\n") + "\n");
  const p = await series(
    REPS.pairs,
    (i) => {
      const dir = path.join(TMP, `pairs-${i}`);
      copyDir(CA0, dir);
      const out = path.join(TMP, `pairs-out-${i}`);
      fs.mkdirSync(out);
      return { dir, out };
    },
    ({ dir, out }) => pki([...g(dir), "issue", "client", "--names-from", names, "--out-dir", out]),
  );
  // openssl: one process per pair, with the CA key unencrypted (else every process pays PBKDF2 600,000 again)
  const plainKey = path.join(TMP, "ca-plain.key");
  ossl(["pkey", "-in", path.join(CA0, "private", "ca.key"), "-passin", `file:${passFile}`, "-out", plainKey]);
  const oout = path.join(TMP, "ossl-pairs");
  fs.mkdirSync(oout);
  const q = await series(
    REPS.pairs,
    null,
    async (_, rep) => {
      let ms = 0;
      for (let i = 0; i < OPENSSL_PAIRS; i++) {
        const n = `r${rep}-n${i}`;
        const r = await timed("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-CA", path.join(CA0, "ca.crt"), "-CAkey", plainKey, "-nodes", "-subj", `/CN=${n}`, "-days", "365", "-keyout", path.join(oout, `${n}.key`), "-out", path.join(oout, `${n}.crt`)]);
        ms += r.ms;
      }
      return { ms: (ms * PAIRS) / OPENSSL_PAIRS };
    },
  );
  row(`${PAIRS} P-256 client pairs`, "pki issue --names-from", p, `openssl req -x509 -CA loop (${OPENSSL_PAIRS} timed, x${PAIRS / OPENSSL_PAIRS})`, q, 1 / 8, { rate: true });
  // every certificate of the last batch verifies
  const last = path.join(TMP, `pairs-out-${REPS.pairs - 1}`);
  const v = spawnSync("openssl", ["verify", "-CAfile", path.join(CA0, "ca.crt"), path.join(last, "agent-0.crt"), path.join(last, `agent-${PAIRS - 1}.crt`)], { encoding: "utf8" });
  if (v.status !== 0) die(`issued certificates do not verify: ${v.stdout}${v.stderr}`);
}

// CRLs
async function pkiCrl(dir) {
  return pki([...g(dir), "crl"], { mem: true });
}

let crlChecked = false;
async function crlCase(n, label) {
  log(`CRL with ${n.toLocaleString("en")} revoked ...`);
  const fx = crlFixture(`crl-${n}`, n, false);
  const p = await series(REPS.crl, null, () => pkiCrl(fx.dir));
  if (!crlChecked) {
    const check = spawnSync("openssl", ["crl", "-in", path.join(fx.dir, "crl.pem"), "-noout", "-CAfile", path.join(fx.dir, "ca.crt")], { encoding: "utf8" });
    if (check.status !== 0 || !/verify OK/.test(check.stdout + check.stderr)) die(`openssl does not accept pki's CRL: ${check.stdout}${check.stderr}`);
    const text = spawnSync("openssl", ["crl", "-in", path.join(fx.dir, "crl.pem"), "-noout", "-text"], { encoding: "utf8", maxBuffer: 1 << 30 });
    const count = (text.stdout.match(/Serial Number:/g) ?? []).length;
    if (count !== n) die(`pki's CRL lists ${count} serials, expected ${n}`);
    log(`  openssl crl -CAfile: verify OK, ${count.toLocaleString("en")} entries`);
    crlChecked = true;
  }
  const outFile = path.join(fx.dir, "crl-openssl.pem");
  const q = await series(REPS.crl, null, () => timed("openssl", ["ca", "-config", fx.cnf, "-gencrl", "-passin", `file:${passFile}`, "-out", outFile], { mem: true }));
  row(`CRL, ${label} revoked`, "pki crl", p, "openssl ca -gencrl", q, 0.5, { mem: true });
}
if (want("crl")) await crlCase(CRL_N, "100,000");
if (LARGE && want("crl")) await crlCase(CRL_LARGE_N, "1,000,000");

// revoke
if (want("revoke")) {
  log("revoke in a 100,000-line index ...");
  const fx = crlFixture("revoke-src", CRL_N, true);
  const serial = fx.target.serial;
  const p = await series(
    REPS.revoke,
    (i) => {
      const dir = path.join(TMP, `revoke-pki-${i}`);
      copyDir(fx.dir, dir);
      return dir;
    },
    (dir) => pki([...g(dir), "revoke", serial, "--reason", "keyCompromise"]),
  );
  const q = await series(
    REPS.revoke,
    (i) => {
      const dir = path.join(TMP, `revoke-ossl-${i}`);
      copyDir(fx.dir, dir);
      return { dir, cnf: opensslCnf(dir) };
    },
    ({ dir, cnf }) => timed("openssl", ["ca", "-config", cnf, "-revoke", path.join(dir, "certs", `${serial}.pem`), "-crl_reason", "keyCompromise", "-passin", `file:${passFile}`]),
  );
  row("revoke one in a 100,000-line index", "pki revoke (+ new CRL)", p, "openssl ca -revoke (index only)", q, 1.5);
}

// OCSP responders (bench/ocsp.mjs: every child there is time-limited)
const ocspLines = !want("ocsp") ? [] : await ocspBench({ tmp: TMP, ca0: CA0, passFile, env, quick: QUICK, log });

// bulk issuance, CA key on a token vs in the key file
if (want("token")) {
  const MODULE = "/usr/lib/softhsm/libsofthsm2.so";
  const addon = path.join(ROOT, "node_modules", "pkcs11js", "build", "Release", "pkcs11.node");
  if (!fs.existsSync(MODULE) || !which("softhsm2-util") || !fs.existsSync(addon)) {
    log("bulk issuance on a token: skipped (needs softhsm2 and the pkcs11js addon: apt-get install softhsm2 g++ make python3; npm ci)");
  } else {
    log(`${PAIRS} P-256 pairs, CA key on a SoftHSM2 token vs the key file ...`);
    const hsm = path.join(TMP, "softhsm");
    fs.mkdirSync(path.join(hsm, "tokens"), { recursive: true });
    fs.writeFileSync(path.join(hsm, "softhsm2.conf"), `directories.tokendir = ${hsm}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
    env.SOFTHSM2_CONF = path.join(hsm, "softhsm2.conf");
    const pin = "bench-pin-1234";
    const pinFile = path.join(hsm, "pin");
    fs.writeFileSync(pinFile, pin + "\n", { mode: 0o600 });
    const init = spawnSync("softhsm2-util", ["--init-token", "--free", "--label", "bench", "--so-pin", "bench-so-1234", "--pin", pin], { env, encoding: "utf8" });
    if (init.status !== 0) die(`softhsm2-util --init-token failed: ${init.stderr}`);
    const CAT = path.join(TMP, "ca-token");
    const key = `pkcs11:token=bench;object=ca?module-path=${MODULE}&pin-source=file:${pinFile}`;
    const r = pkiSync(["init", "--dir", CAT, "--cn", "Bench Token CA", "--org", "Bench", "--key", key, "--key-type", "ec-p256"]);
    if (r.code !== 0) die(`pki init --key failed: ${r.stderr}`);
    const names = path.join(TMP, "names-token.txt");
    fs.writeFileSync(names, Array.from({ length: PAIRS }, (_, i) => `agent-${i}`).join("\n") + "\n");
    const batch = (from, tag) => (i) => {
      const dir = path.join(TMP, `${tag}-${i}`);
      copyDir(from, dir);
      const out = path.join(TMP, `${tag}-out-${i}`);
      fs.mkdirSync(out);
      return { dir, out };
    };
    // interleaved, so that both see the same machine load
    const tok = [];
    const file = [];
    for (let i = 0; i < REPS.pairs; i++) {
      tok.push((await series(1, () => batch(CAT, "tok")(i), ({ dir, out }) => pki(["--dir", dir, "issue", "client", "--names-from", names, "--out-dir", out]))).ms);
      file.push((await series(1, () => batch(CA0, "file")(i), ({ dir, out }) => pki([...g(dir), "issue", "client", "--names-from", names, "--out-dir", out]))).ms);
    }
    const last = path.join(TMP, `tok-out-${REPS.pairs - 1}`);
    const v = spawnSync("openssl", ["verify", "-CAfile", path.join(CAT, "ca.crt"), path.join(last, "agent-0.crt"), path.join(last, `agent-${PAIRS - 1}.crt`)], { encoding: "utf8" });
    if (v.status !== 0) die(`certificates signed on the token do not verify: ${v.stdout}${v.stderr}`);
    row(`${PAIRS} P-256 client pairs, CA key on a token`, "pki issue, SoftHSM2 token", { ms: median(tok) }, "pki issue, encrypted key file", { ms: median(file) }, null, { rate: true });
  }
}

// ---------------------------------------------------------------- report

const fmtMs = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fmtMb = (kb) => (kb === undefined ? "" : `${(kb / 1024).toFixed(0)} MiB`);
const lines = [];
lines.push(`| work | pki | median | peer | median | pki/peer | target | |`);
lines.push(`|---|---|---:|---|---:|---:|---|---|`);
for (const r of rows) {
  const ratio = r.p.ms / r.q.ms;
  let target = "";
  const missed = [];
  if (r.target !== null) {
    target = r.target < 1 && r.rate ? `<= ${r.target.toFixed(3)} (>= 8x faster)` : `<= ${r.target}`;
    if (ratio > r.target) missed.push("time");
  }
  let pcell = fmtMs(r.p.ms);
  let qcell = fmtMs(r.q.ms);
  if (r.rate) {
    pcell += ` (${Math.round((PAIRS * 1000) / r.p.ms)}/s)`;
    qcell += ` (${Math.round((PAIRS * 1000) / r.q.ms)}/s)`;
    if ((PAIRS * 1000) / r.p.ms < 1000) missed.push("< 1,000/s");
  }
  if (r.mem) {
    pcell += `, ${fmtMb(r.p.peakKb)}`;
    qcell += `, ${fmtMb(r.q.peakKb)}`;
    if (r.p.peakKb !== undefined && r.q.peakKb !== undefined && r.p.peakKb > r.q.peakKb) missed.push("memory");
  }
  const verdict = r.target === null ? "" : missed.length ? `missed (${missed.join(", ")})` : "met";
  lines.push(`| ${r.work} | ${r.pkiLabel} | ${pcell} | ${r.peerLabel} | ${qcell} | ${ratio.toFixed(2)} | ${target} | ${verdict} |`);
}
process.stdout.write(
  `\npki bench, ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? "?"}), load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, node ${process.version}, ${opensslVersion}` +
    `${process.env.NODE_EXTRA_CA_CERTS ? ", NODE_EXTRA_CA_CERTS set" : ""}\n` +
    `medians of ${REPS.cold} (cold start), ${REPS.sign} (CSR), ${REPS.pairs} (pairs), ${REPS.crl} (CRL), ${REPS.revoke} (revoke) runs; memory: peak RSS${GNU_TIME ? " (GNU time)" : " (/proc VmHWM)"}\n\n` +
    lines.join("\n") +
    "\n" +
    ocspLines.join("\n") +
    "\n",
);
