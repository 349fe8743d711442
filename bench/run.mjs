#!/usr/bin/env node
/**
 * npm run bench [-- --quick] [-- --large] [-- --only NAME] [-- --keep]
 *
 * pki side by side with its peers, in one run, on fixtures built here in a
 * temporary directory (nothing outside it is touched). Every target of issue
 * 17 gets its figure, its peer, the target and a one-line verdict (`met` /
 * `MISSED`), and a summary table of the verdicts ends the output:
 *
 *   csr     1  one pki sign-csr          <= 1.25x openssl x509 -req, same encrypted CA key
 *                                           (PBES2, PBKDF2 600,000 iterations) and -passin
 *   bulk    2  pki issue client --names-from, 1,000 and 10,000 P-256 pairs in one run:
 *              10,000 at >= 2,000 pairs/s, peak RSS <= 250 MiB, 10,000 costs <= 11x 1,000;
 *              peer (for scale): openssl req -x509 -newkey ec -CA, one process per pair
 *              (a subset timed and extrapolated)
 *   ocsp    3  pki serve vs openssl ocsp -index -port on a 100,000-certificate CA:
 *              ab -c 8, no keep-alive (bench/ocsp.mjs; needs apache2-utils):
 *              responses/s >= 1x, p99 <= 10 ms, no stuck worker after early closes,
 *              a revocation answered <= 1 s after pki revoke returns
 *   pg      4  PostgreSQL store (bench/pg.mjs's pgBench, when that file exists)
 *   cold    5  pki --version, pki --help     <= 1.1x node -e 0 (same environment)
 *   crl     5  CRL of 100,000 revoked (figure only) and, with --large, of
 *              1,000,000: <= 0.2x the time and <= 0.6x the memory of openssl ca -gencrl
 *   revoke  5  pki revoke in a 100,000-line index <= 1.5x openssl ca -revoke
 *   token      1,000 pairs with the CA key on a SoftHSM2 token vs the key file
 *              (figure only; needs softhsm2 and the pkcs11js addon)
 *
 * --only NAME runs one case (`pairs` is an old name of `bulk`).
 *
 * Each case runs several times; figures are medians, ratios pki/peer, memory
 * the peak RSS of the process (GNU time when /usr/bin/time exists, else
 * /proc polling). Only public tools: node, openssl, ab, psql's server. The
 * bench is never part of `npm test`, and the test suite has no timed
 * assertion: the verdicts live here only.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureBuilt, settle } from "./common.mjs";
import { ocspBench } from "./ocsp.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "pki.js");
const args = new Set(process.argv.slice(2));
const QUICK = args.has("--quick");
const LARGE = args.has("--large");
const KEEP = args.has("--keep");
const onlyAt = process.argv.indexOf("--only");
const ONLY = onlyAt > 0 ? process.argv[onlyAt + 1] : undefined;
const CASES = ["cold", "csr", "bulk", "crl", "revoke", "ocsp", "pg", "token"];
const USAGE = `usage: npm run bench [-- --quick] [-- --large] [-- --keep] [-- --only ${CASES.join("|")}]\n  --quick  fewer runs and smaller peer samples\n  --large  also the 1,000,000-entry CRL\n  --keep   keep the temporary directory\n`;
if (args.has("--help") || args.has("-h")) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const only = ONLY === "pairs" ? "bulk" : ONLY;
if (onlyAt > 0 && !CASES.includes(only)) {
  process.stderr.write(`bench: --only wants one of ${CASES.join(", ")}\n${USAGE}`);
  process.exit(2);
}
const want = (name) => only === undefined || only === name;

const REPS = QUICK ? { cold: 7, sign: 3, pairs: 1, crl: 1, revoke: 3 } : { cold: 21, sign: 9, pairs: 3, crl: 3, revoke: 5 };
const PAIRS = 1000;
const BULK = 10_000;
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
async function timed(cmd, argv, { cwd, mem = false, input, env: childEnv = env } = {}) {
  let file = cmd;
  let a = argv;
  const memFile = mem && GNU_TIME ? path.join(os.tmpdir(), `pki-bench-mem-${process.pid}-${Math.random().toString(36).slice(2)}`) : null;
  if (memFile) {
    file = GNU_TIME;
    a = ["-f", "%M", "-o", memFile, cmd, ...argv];
  }
  const t0 = process.hrtime.bigint();
  const child = spawn(file, a, { cwd, env: childEnv, stdio: [input ? "pipe" : "ignore", "ignore", "pipe"] });
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

/** The median time and the median peak memory of timed() runs. */
const medians = (runs) => ({ ms: median(runs.map((r) => r.ms)), peakKb: median(runs.map((r) => r.peakKb)) });

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

// pki is run as a user runs it, as a program: bin/pki.js's first line (a
// shell line) starts node with glibc's huge pages for large buffers
function pki(argv, opts = {}) {
  return timed(BIN, argv, opts);
}

function pkiSync(argv, cwd) {
  const r = spawnSync(BIN, [...argv], { cwd, env, encoding: "utf8", maxBuffer: 1 << 28 });
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
if (!ensureBuilt(log)) die("the build failed: run npm ci first");

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
policy = bench_policy
crl_extensions = crl_ext
[ bench_policy ]
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
`,
  );
  return cnf;
}

/** An index.txt of n revoked lines (every third with a reason), or with `valid` n valid ones, written in chunks. */
function writeBenchIndex(file, n, extra = "", valid = false) {
  const fd = fs.openSync(file, "w");
  let s = "";
  const reasons = ["", ",keyCompromise", ",superseded"];
  for (let i = 0; i < n; i++) {
    const serial = "5" + (i % 10) + i.toString(16).toUpperCase().padStart(32, "0");
    s += valid ? `V\t351231235959Z\t\t${serial}\tunknown\t/O=Bench/CN=agent-${i}\n` : `R\t351231235959Z\t250601120000Z${reasons[i % 3]}\t${serial}\tunknown\t/O=Bench/CN=agent-${i}\n`;
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
  writeBenchIndex(path.join(dir, "index.txt"), n, extra);
  fs.writeFileSync(path.join(dir, "crlnumber"), "01\n");
  return { dir, cnf: opensslCnf(dir), target };
}

// ---------------------------------------------------------------- the cases

const rows = [];
function row(work, pkiLabel, p, peerLabel, q, opts = {}) {
  rows.push({ work, pkiLabel, p, peerLabel, q, ...opts });
}

const fmtMs = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fmtMb = (kb) => (kb === undefined ? "?" : `${(kb / 1024).toFixed(0)} MiB`);
const fmtRate = (n, ms) => `${Math.round((n * 1000) / ms).toLocaleString("en")}/s`;
const x = (r) => `${r.toFixed(2)}x`;

/**
 * The verdicts of issue 17's targets: `ok` true (met), false (MISSED) or null
 * (not measured in this run, `figure` says why). Each is printed as one line
 * when its case ends and again in the summary table.
 */
const verdicts = [];
const verdictWord = (v) => (v.ok === null ? "not measured" : v.ok ? "met" : "MISSED");
function verdict(v) {
  verdicts.push(v);
  log(`  target ${v.n}, ${v.name}: pki ${v.figure}; peer ${v.peer || "-"}; target ${v.target}: ${verdictWord(v)}${v.note ? ` (${v.note})` : ""}`);
}

log(`pki bench: ${os.cpus().length} CPU(s), node ${process.version}, ${opensslVersion}, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}${QUICK ? ", --quick" : ""}${LARGE ? ", --large" : ""}${only ? `, --only ${only}` : ""}`);
log(`temporary directory ${TMP}${KEEP ? " (kept)" : ""}`);

// target 1: one CSR
if (want("csr")) {
  log("one sign-csr ...");
  const dir = path.join(TMP, "sign");
  copyDir(CA0, dir);
  const csr = path.join(TMP, "one.csr");
  ossl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(TMP, "one.key"), "-subj", "/CN=one", "-out", csr]);
  // what the gap is made of, in the same rounds: node's start alone, and
  // node's start plus the key's PBKDF2 (the floor of any node process that
  // decrypts this key file); with NODE_EXTRA_CA_CERTS set (it makes node read
  // a CA bundle at every start), pki also once without it
  const pbkdf2 = `require("node:crypto").pbkdf2Sync(process.env.BENCH_PASSPHRASE, Buffer.alloc(16), 600000, 32, "sha256")`;
  const kdfEnv = { ...env, BENCH_PASSPHRASE: PASS }; // never in argv, even a fixture's
  const extraCa = env.NODE_EXTRA_CA_CERTS ? { ...env, NODE_EXTRA_CA_CERTS: "" } : null;
  // interleaved, so that all see the same load
  const ps = [];
  const qs = [];
  const n0 = [];
  const kdf = [];
  const pe = [];
  for (let i = 0; i < REPS.sign; i++) {
    ps.push((await pki([...g(dir), "sign-csr", csr, "--profile", "client", "--out", path.join(TMP, `one-pki-${i}.crt`)])).ms);
    qs.push((await timed("openssl", ["x509", "-req", "-in", csr, "-CA", path.join(dir, "ca.crt"), "-CAkey", path.join(dir, "private", "ca.key"), "-passin", `file:${passFile}`, "-days", "365", "-sha256", "-out", path.join(TMP, `one-ossl-${i}.crt`)])).ms);
    n0.push((await timed(process.execPath, ["-e", "0"])).ms);
    kdf.push((await timed(process.execPath, ["-e", pbkdf2], { env: kdfEnv })).ms);
    if (extraCa) pe.push((await pki([...g(dir), "sign-csr", csr, "--profile", "client", "--out", path.join(TMP, `one-pki-e${i}.crt`)], { env: extraCa })).ms);
  }
  const p = { ms: median(ps) };
  const q = { ms: median(qs) };
  const floor = { ms: median(kdf) };
  row("one CSR signed (P-256, encrypted CA key)", "pki sign-csr", p, "openssl x509 -req", q);
  row("  (reference) node's start", "node -e 0", { ms: median(n0) }, "openssl x509 -req", q);
  row("  (reference) node's start + the key's PBKDF2", "node -e pbkdf2Sync(600,000)", floor, "openssl x509 -req", q);
  if (extraCa) row("  (reference) NODE_EXTRA_CA_CERTS unset (bin/pki.js starts node without it anyway)", "pki sign-csr", { ms: median(pe) }, "openssl x509 -req", q);
  const v = spawnSync("openssl", ["verify", "-CAfile", path.join(dir, "ca.crt"), path.join(TMP, "one-pki-0.crt")], { encoding: "utf8" });
  if (v.status !== 0) die(`the signed certificate does not verify: ${v.stdout}${v.stderr}`);
  const note = `floor (node start + PBKDF2) ${x(floor.ms / q.ms)}${extraCa ? `; without NODE_EXTRA_CA_CERTS ${x(median(pe) / q.ms)}` : ""}`;
  verdict({ n: "1", name: "one sign-csr", figure: fmtMs(p.ms), peer: `openssl x509 -req ${fmtMs(q.ms)}`, ratio: p.ms / q.ms, target: "<= 1.25x", ok: p.ms / q.ms <= 1.25, note });

  // the same CSR in a CA of 100,000 valid certificates (figure only): pki reads its index (names, same-CN
  // warning, free serial) and rewrites it; the peer that keeps an index is openssl ca, which does the same
  log(`one sign-csr in a CA of ${CRL_N.toLocaleString("en")} valid certificates ...`);
  const big = {};
  for (const k of ["pki", "openssl"]) {
    big[k] = path.join(TMP, `sign-big-${k}`);
    copyDir(CA0, big[k]);
    writeBenchIndex(path.join(big[k], "index.txt"), CRL_N, "", true);
  }
  fs.writeFileSync(path.join(big.openssl, "serial-openssl"), randomBytes(16).toString("hex").toUpperCase() + "\n");
  const bigCnf = opensslCnf(big.openssl);
  const bp = [];
  const bq = [];
  for (let i = 0; i < REPS.sign; i++) {
    bp.push(await pki([...g(big.pki), "sign-csr", csr, "--profile", "client", "--out", path.join(TMP, `big-pki-${i}.crt`)], { mem: true }));
    bq.push(await timed("openssl", ["ca", "-config", bigCnf, "-batch", "-notext", "-in", csr, "-days", "365", "-passin", `file:${passFile}`, "-out", path.join(TMP, `big-ossl-${i}.crt`)], { mem: true }));
  }
  const lines = fs.readFileSync(path.join(big.pki, "index.txt"), "utf8").split("\n").length - 1;
  if (lines !== CRL_N + REPS.sign) die(`sign-csr in the large CA left ${lines} index lines, expected ${CRL_N + REPS.sign}`);
  row(`one CSR signed, CA of ${CRL_N.toLocaleString("en")} valid certificates`, "pki sign-csr", medians(bp), "openssl ca -batch", medians(bq), { mem: true });
}

// target 2: bulk issuance, 1,000 and 10,000 pairs in one run (interleaved)
if (want("bulk")) {
  log(`bulk: ${PAIRS.toLocaleString("en")} and ${BULK.toLocaleString("en")} P-256 client pairs ...`);
  const namesOf = (n) => {
    const f = path.join(TMP, `names-${n}.txt`);
    fs.writeFileSync(f, Array.from({ length: n }, (_, i) => `agent-${i}`).join("\n") + "\n");
    return f;
  };
  const files = { [PAIRS]: namesOf(PAIRS), [BULK]: namesOf(BULK) };
  const res = { [PAIRS]: [], [BULK]: [] };
  for (let rep = 0; rep < REPS.pairs; rep++) {
    for (const n of [PAIRS, BULK]) {
      const dir = path.join(TMP, `bulk-${n}-${rep}`);
      copyDir(CA0, dir);
      const out = path.join(TMP, `bulk-out-${n}-${rep}`);
      fs.mkdirSync(out);
      log(`  ${n.toLocaleString("en")} pairs (run ${rep + 1}/${REPS.pairs}) ...`);
      await settle();
      res[n].push(await pki([...g(dir), "issue", "client", "--names-from", files[n], "--out-dir", out], { mem: true }));
      log(`    ${fmtMs(res[n][res[n].length - 1].ms)}`);
      const v = spawnSync("openssl", ["verify", "-CAfile", path.join(CA0, "ca.crt"), path.join(out, "agent-0.crt"), path.join(out, `agent-${n - 1}.crt`)], { encoding: "utf8" });
      if (v.status !== 0) die(`issued certificates do not verify: ${v.stdout}${v.stderr}`);
      const count = fs.readFileSync(path.join(dir, "index.txt"), "utf8").split("\n").filter(Boolean).length;
      if (count !== n) die(`index.txt of the ${n}-pair batch holds ${count} lines`);
      // kept until the bench ends (settle(): removed files would slow the next run's creates)
    }
  }
  const sum = (n) => ({ ms: median(res[n].map((r) => r.ms)), peakKb: median(res[n].map((r) => r.peakKb)), runs: res[n].map((r) => r.ms) });
  const small = sum(PAIRS);
  const big = sum(BULK);
  // openssl: one process per pair, with the CA key unencrypted (else every process pays PBKDF2 600,000 again)
  const plainKey = path.join(TMP, "ca-plain.key");
  ossl(["pkey", "-in", path.join(CA0, "private", "ca.key"), "-passin", `file:${passFile}`, "-out", plainKey]);
  const oout = path.join(TMP, "ossl-pairs");
  fs.mkdirSync(oout);
  let oms = 0;
  for (let i = 0; i < OPENSSL_PAIRS; i++) {
    const n = `n${i}`;
    oms += (await timed("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-CA", path.join(CA0, "ca.crt"), "-CAkey", plainKey, "-nodes", "-subj", `/CN=${n}`, "-days", "365", "-keyout", path.join(oout, `${n}.key`), "-out", path.join(oout, `${n}.crt`)])).ms;
  }
  const perPair = oms / OPENSSL_PAIRS;
  // the disk alone (what the gap to the target is made of): the same number
  // of new files of about the same sizes (key, certificate, chain in the
  // out-dir; the CA's copy in certs/), created by one process with
  // open(O_EXCL)/write/close, then one sync -f: no crypto, no temporary names
  const diskRuns = [];
  for (let rep = 0; rep < REPS.pairs; rep++) {
    const d = path.join(TMP, `disk-${rep}`);
    fs.mkdirSync(path.join(d, "out"), { recursive: true });
    fs.mkdirSync(path.join(d, "certs"));
    const script = `const fs = require("node:fs"); const d = ${JSON.stringify(d)};
const files = [["out", ".key", 241], ["out", ".crt", 680], ["out", ".chain.crt", 1400], ["certs", ".pem", 680]].map(([dir, ext, n]) => [dir, ext, Buffer.alloc(n, 65)]);
for (let i = 0; i < ${BULK}; i++) for (const [dir, ext, data] of files) { const fd = fs.openSync(d + "/" + dir + "/agent-" + i + ext, "wx", 0o600); fs.writeSync(fd, data); fs.closeSync(fd); }
require("node:child_process").execFileSync("sync", ["-f", d + "/out", d + "/certs"]);`;
    await settle();
    diskRuns.push((await timed(process.execPath, ["-e", script])).ms);
  }
  const disk = { ms: median(diskRuns) };
  const peerLabel = `openssl req -x509 -CA, a process per pair (${OPENSSL_PAIRS} timed, extrapolated)`;
  row(`${PAIRS.toLocaleString("en")} P-256 client pairs`, "pki issue --names-from", small, peerLabel, { ms: perPair * PAIRS }, { rate: PAIRS, mem: true });
  row(`${BULK.toLocaleString("en")} P-256 client pairs`, "pki issue --names-from", big, peerLabel, { ms: perPair * BULK }, { rate: BULK, mem: true });
  row(`  (reference) the disk: ${(4 * BULK).toLocaleString("en")} new files, no crypto`, "open/write/close + sync -f", disk, "pki, 10,000 pairs", big, { rate: BULK });
  const rate = (BULK * 1000) / big.ms;
  verdict({ n: "2a", name: `bulk ${BULK.toLocaleString("en")} pairs, rate`, figure: `${fmtRate(BULK, big.ms)} (${fmtMs(big.ms)})`, peer: `openssl loop ${fmtRate(1, perPair)}`, target: ">= 2,000/s", ok: rate >= 2000, note: `the disk alone, ${(4 * BULK).toLocaleString("en")} files: ${fmtMs(disk.ms)} (${fmtRate(BULK, disk.ms)} pairs)` });
  verdict({ n: "2b", name: `bulk ${BULK.toLocaleString("en")} pairs, peak RSS`, figure: fmtMb(big.peakKb), peer: `1,000 pairs: ${fmtMb(small.peakKb)}`, target: "<= 250 MiB", ok: big.peakKb !== undefined && big.peakKb <= 250 * 1024 });
  verdict({ n: "2c", name: "bulk linearity, 10,000 / 1,000", figure: `${x(big.ms / small.ms)} (${fmtMs(big.ms)} / ${fmtMs(small.ms)})`, peer: "", target: "<= 11x", ok: big.ms / small.ms <= 11 });
}

// target 3: OCSP responders (bench/ocsp.mjs: every child there is time-limited)
let ocspLines = [];
if (want("ocsp")) {
  try {
    ocspLines = await ocspBench({ tmp: TMP, ca0: CA0, passFile, env, quick: QUICK, log, verdict });
  } catch (e) {
    ocspLines = ["", `OCSP: the bench failed: ${e.message}`];
    verdict({ n: "3", name: "OCSP", figure: `bench failed: ${e.message.split("\n")[0]}`, peer: "", target: "see issue 17", ok: false });
  }
}

// target 4: PostgreSQL store (bench/pg.mjs, written alongside; absent: one line)
let pgLines = [];
if (want("pg")) {
  const pgFile = path.join(ROOT, "bench", "pg.mjs");
  if (!fs.existsSync(pgFile)) {
    pgLines = ["", "PostgreSQL store (target 4): not measured: bench/pg.mjs is not in this tree"];
    log(pgLines[1]);
    verdicts.push({ n: "4", name: "PostgreSQL store", figure: "no figure: bench/pg.mjs is absent", peer: "", target: "see issue 17", ok: null });
  } else {
    try {
      const { pgBench } = await import(pathToFileURL(pgFile).href);
      pgLines = await pgBench({ tmp: TMP, ca0: CA0, passFile, env, quick: QUICK, log, verdict });
    } catch (e) {
      pgLines = ["", `PostgreSQL store: the bench failed: ${e.message}`];
    }
    // its markdown rows whose last cell is a verdict join the summary (unless it reported them itself)
    if (!verdicts.some((v) => v.n.startsWith("4"))) {
      let k = 0;
      for (const l of pgLines) {
        const cells = l.split("|").slice(1, -1).map((c) => c.trim());
        const last = cells[cells.length - 1] ?? "";
        if (cells.length >= 3 && /^(met|missed)/i.test(last)) {
          k++;
          verdicts.push({ n: `4${String.fromCharCode(96 + k)}`, name: cells[0], figure: cells[1], peer: cells.slice(2, -2).filter(Boolean).join("; "), target: cells[cells.length - 2], ok: /^met/i.test(last) });
        }
      }
      if (!k) verdicts.push({ n: "4", name: "PostgreSQL store", figure: pgLines.filter(Boolean).pop() ?? "no figures", peer: "", target: "see issue 17", ok: pgLines.some((l) => /failed/.test(l)) ? false : null });
    }
  }
}

// target 5 (guards of round one): cold start
if (want("cold")) {
  log("cold start ...");
  const node0 = [];
  const node0e = [];
  const ver = [];
  const help = [];
  // pki starts node without NODE_EXTRA_CA_CERTS (bin/pki.js): node -e 0 without it too, for reference
  const extraCa = env.NODE_EXTRA_CA_CERTS ? { ...env, NODE_EXTRA_CA_CERTS: "" } : null;
  for (let i = 0; i < REPS.cold; i++) {
    node0.push((await timed(process.execPath, ["-e", "0"])).ms);
    ver.push((await pki(["--version"])).ms);
    help.push((await pki(["--help"])).ms);
    if (extraCa) node0e.push((await timed(process.execPath, ["-e", "0"], { env: extraCa })).ms);
  }
  const osslv = await series(REPS.cold, null, () => timed("openssl", ["version"]));
  const n0 = { ms: median(node0) };
  row("cold start", "pki --version", { ms: median(ver) }, "node -e 0", n0);
  row("cold start", "pki --help", { ms: median(help) }, "node -e 0", n0);
  row("cold start (reference)", "node -e 0", n0, "openssl version", osslv);
  const n0e = extraCa ? { ms: median(node0e) } : null;
  if (n0e) {
    row("cold start (reference), node -e 0 without NODE_EXTRA_CA_CERTS", "pki --version", { ms: median(ver) }, "node -e 0", n0e);
    row("cold start (reference), node -e 0 without NODE_EXTRA_CA_CERTS", "pki --help", { ms: median(help) }, "node -e 0", n0e);
  }
  const note = (ms) => (n0e ? `vs node -e 0 without NODE_EXTRA_CA_CERTS (${fmtMs(n0e.ms)}): ${x(ms / n0e.ms)}` : undefined);
  verdict({ n: "5a", name: "cold start, pki --version", figure: fmtMs(median(ver)), peer: `node -e 0 ${fmtMs(n0.ms)}`, ratio: median(ver) / n0.ms, target: "<= 1.1x", ok: median(ver) / n0.ms <= 1.1, note: note(median(ver)) });
  verdict({ n: "5b", name: "cold start, pki --help", figure: fmtMs(median(help)), peer: `node -e 0 ${fmtMs(n0.ms)}`, ratio: median(help) / n0.ms, target: "<= 1.1x", ok: median(help) / n0.ms <= 1.1, note: note(median(help)) });
}

// CRLs
let crlChecked = false;
async function crlCase(n, label) {
  log(`CRL with ${label} revoked ...`);
  const fx = crlFixture(`crl-${n}`, n, false);
  const outFile = path.join(fx.dir, "crl-openssl.pem");
  const ps = [];
  const qs = [];
  for (let i = 0; i < REPS.crl; i++) {
    ps.push(await pki([...g(fx.dir), "crl"], { mem: true }));
    if (!crlChecked) {
      const check = spawnSync("openssl", ["crl", "-in", path.join(fx.dir, "crl.pem"), "-noout", "-CAfile", path.join(fx.dir, "ca.crt")], { encoding: "utf8" });
      if (check.status !== 0 || !/verify OK/.test(check.stdout + check.stderr)) die(`openssl does not accept pki's CRL: ${check.stdout}${check.stderr}`);
      const text = spawnSync("openssl", ["crl", "-in", path.join(fx.dir, "crl.pem"), "-noout", "-text"], { encoding: "utf8", maxBuffer: 1 << 30 });
      const count = (text.stdout.match(/Serial Number:/g) ?? []).length;
      if (count !== n) die(`pki's CRL lists ${count} serials, expected ${n}`);
      log(`  openssl crl -CAfile: verify OK, ${count.toLocaleString("en")} entries`);
      crlChecked = true;
    }
    qs.push(await timed("openssl", ["ca", "-config", fx.cnf, "-gencrl", "-passin", `file:${passFile}`, "-out", outFile], { mem: true }));
  }
  const p = medians(ps);
  const q = medians(qs);
  row(`CRL, ${label} revoked`, "pki crl", p, "openssl ca -gencrl", q, { mem: true });
  fs.rmSync(fx.dir, { recursive: true, force: true });
  return { p, q };
}
if (want("crl")) {
  await crlCase(CRL_N, "100,000");
  if (LARGE) {
    const { p, q } = await crlCase(CRL_LARGE_N, "1,000,000");
    verdict({ n: "5c", name: "CRL of 1,000,000 revoked, time", figure: fmtMs(p.ms), peer: `openssl ca -gencrl ${fmtMs(q.ms)}`, ratio: p.ms / q.ms, target: "<= 0.2x", ok: p.ms / q.ms <= 0.2 });
    verdict({ n: "5d", name: "CRL of 1,000,000 revoked, memory", figure: fmtMb(p.peakKb), peer: `openssl ca -gencrl ${fmtMb(q.peakKb)}`, ratio: p.peakKb / q.peakKb, target: "<= 0.6x", ok: p.peakKb / q.peakKb <= 0.6 });
  } else {
    verdicts.push({ n: "5c", name: "CRL of 1,000,000 revoked, time", figure: "not run (add --large)", peer: "", target: "<= 0.2x", ok: null });
    verdicts.push({ n: "5d", name: "CRL of 1,000,000 revoked, memory", figure: "not run (add --large)", peer: "", target: "<= 0.6x", ok: null });
  }
}

// revoke
if (want("revoke")) {
  log("revoke in a 100,000-line index ...");
  const fx = crlFixture("revoke-src", CRL_N, true);
  const serial = fx.target.serial;
  // as a CA in service: its current crl.pem already lists the 100,000 (pki
  // revoke checks the new CRL drops none of them before it replaces it)
  const pre = pkiSync([...g(fx.dir), "crl"]);
  if (pre.code !== 0) die(`pki crl failed: ${pre.stderr}`);
  const ps = [];
  const qs = [];
  for (let i = 0; i < REPS.revoke; i++) {
    const dir = path.join(TMP, `revoke-pki-${i}`);
    copyDir(fx.dir, dir);
    ps.push((await pki([...g(dir), "revoke", serial, "--reason", "keyCompromise"])).ms);
    const odir = path.join(TMP, `revoke-ossl-${i}`);
    copyDir(fx.dir, odir);
    const cnf = opensslCnf(odir);
    qs.push((await timed("openssl", ["ca", "-config", cnf, "-revoke", path.join(odir, "certs", `${serial}.pem`), "-crl_reason", "keyCompromise", "-passin", `file:${passFile}`])).ms);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(odir, { recursive: true, force: true });
  }
  const p = { ms: median(ps) };
  const q = { ms: median(qs) };
  row("revoke one in a 100,000-line index, current CRL of 100,000", "pki revoke (+ new CRL)", p, "openssl ca -revoke (index only)", q);
  verdict({ n: "5e", name: "revoke in a 100,000-line index", figure: fmtMs(p.ms), peer: `openssl ca -revoke ${fmtMs(q.ms)}`, ratio: p.ms / q.ms, target: "<= 1.5x", ok: p.ms / q.ms <= 1.5 });
}

// bulk issuance, CA key on a token vs in the key file (a figure, no target)
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
    row(`${PAIRS} P-256 client pairs, CA key on a token`, "pki issue, SoftHSM2 token", { ms: median(tok) }, "pki issue, encrypted key file", { ms: median(file) }, { rate: PAIRS });
  }
}

// ---------------------------------------------------------------- report

const lines = [];
if (rows.length) {
  lines.push(`| work | pki | median | peer | median | pki/peer |`);
  lines.push(`|---|---|---:|---|---:|---:|`);
  for (const r of rows) {
    let pcell = fmtMs(r.p.ms);
    let qcell = fmtMs(r.q.ms);
    if (r.rate) {
      pcell += ` (${fmtRate(r.rate, r.p.ms)})`;
      qcell += ` (${fmtRate(r.rate, r.q.ms)})`;
    }
    if (r.mem) {
      pcell += `, ${fmtMb(r.p.peakKb)}`;
      if (r.q.peakKb !== undefined) qcell += `, ${fmtMb(r.q.peakKb)}`;
    }
    lines.push(`| ${r.work} | ${r.pkiLabel} | ${pcell} | ${r.peerLabel} | ${qcell} | ${(r.p.ms / r.q.ms).toFixed(2)} |`);
  }
}
const summary = [];
if (verdicts.length) {
  const order = (v) => v.n.padEnd(3, " ");
  const vs = [...verdicts].sort((a, b) => order(a).localeCompare(order(b)));
  summary.push("", "Verdicts, targets of issue 17:", "");
  for (const v of vs) summary.push(`- ${v.n} ${v.name}: ${verdictWord(v)} (pki ${v.figure}${v.peer ? `; ${v.peer}` : ""}${v.ratio !== undefined ? `; ${x(v.ratio)}` : ""}; target ${v.target}${v.note ? `; ${v.note}` : ""})`);
  summary.push("", "| # | target | pki | peer | ratio | goal | verdict |", "|---|---|---:|---|---:|---|---|");
  for (const v of vs) summary.push(`| ${v.n} | ${v.name} | ${v.figure} | ${v.peer || ""} | ${v.ratio !== undefined ? x(v.ratio) : ""} | ${v.target} | ${verdictWord(v)} |`);
  const met = vs.filter((v) => v.ok === true).length;
  const missed = vs.filter((v) => v.ok === false).length;
  summary.push("", `${met} met, ${missed} MISSED, ${vs.length - met - missed} not measured`);
}
process.stdout.write(
  `\npki bench, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC: ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? "?"}), load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, node ${process.version}, ${opensslVersion}` +
    `${process.env.NODE_EXTRA_CA_CERTS ? ", NODE_EXTRA_CA_CERTS set" : ""}${QUICK ? ", --quick" : ""}\n` +
    `medians of ${REPS.cold} (cold start), ${REPS.sign} (CSR), ${REPS.pairs} (bulk), ${REPS.crl} (CRL), ${REPS.revoke} (revoke) runs; memory: peak RSS${GNU_TIME ? " (GNU time)" : " (/proc VmHWM)"}\n\n` +
    [lines, ocspLines, pgLines, summary].filter((l) => l.length).map((l) => l.join("\n")).join("\n") +
    "\n"
);
