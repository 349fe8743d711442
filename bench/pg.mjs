#!/usr/bin/env node
/**
 * The PostgreSQL store next to the directory store (issue #17 target 4; part
 * of `npm run bench` as case "pg"; also runs alone: `node bench/pg.mjs
 * [--quick] [--keep]`):
 *
 *   10,000 pairs     pki --store postgres://... issue client --names-from   vs the same on a CA directory
 *                    target: >= 1,000 pairs/s on PostgreSQL
 *   8 x sign-csr     8 concurrent workers, each running `pki sign-csr` processes
 *                    one after another, on PostgreSQL vs on a directory:
 *                    certificates/s; target: PostgreSQL >= 0.8x the directory
 *   CRL 100,000      pki crl on a CA with 100,000 revoked records in PostgreSQL
 *                    vs the same index in a directory; target: <= 2x the directory's time
 *
 * The database is a throwaway cluster started here (Debian's postgresql
 * package: initdb into the temporary directory as an unprivileged user, a
 * free loopback port, the socket in that directory, fsync on as a real
 * server has it), stopped by pid at the end and on any exit. Each run starts
 * from a copy of the same initialised CA: a directory copied with cp, a
 * database made with CREATE DATABASE ... TEMPLATE. Medians of several runs.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

import { BIN, freePort, median, ROOT, runStandalone, settle, sleep } from "./common.mjs";
// the bulk workload of target 2: at 1,000 pairs the fixed start of a command
// (node, the key's PBKDF2, the connection) was a third of the time on both stores
const PAIRS = 10_000;
const CRL_N = 100_000;
const WORKERS = 8;
const LIMIT_S = 600;


// ---------------------------------------------------------------- a throwaway cluster (as test/e2e/pg-lib.ts)

function pgBin(name) {
  const base = "/usr/lib/postgresql";
  if (fs.existsSync(base)) {
    for (const v of fs.readdirSync(base).filter((x) => /^\d+$/.test(x)).sort((a, b) => Number(b) - Number(a))) {
      const p = path.join(base, v, "bin", name);
      if (fs.existsSync(p)) return p;
    }
  }
  return name;
}

function asUser(cmd, args) {
  const root = process.getuid?.() === 0;
  const argv = root ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", cmd, ...args] : [cmd, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", env: { ...process.env, LC_ALL: "C" }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/** initdb + start in a new temporary directory (its own: the server's user must reach it); { port, url(db), sql(text, db), stop() }. */
export async function startCluster() {
  for (const t of ["initdb", "pg_ctl"]) if (spawnSync(pgBin(t), ["--version"]).status !== 0) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-bench-pg-"));
  fs.chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) fs.chownSync(dir, 65534, 65534);
  const data = path.join(dir, "data");
  const port = await freePort();
  asUser(pgBin("initdb"), ["-D", data, "-U", "pki", "-A", "trust", "-E", "UTF8", "--no-sync"]);
  fs.writeFileSync(path.join(data, "pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 trust\n");
  fs.appendFileSync(path.join(data, "postgresql.conf"), [`port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${dir}'`, "max_connections = 100", ""].join("\n"));
  asUser(pgBin("pg_ctl"), ["start", "-D", data, "-l", path.join(dir, "server.log"), "-w", "-t", "60"]);
  let pid = Number(fs.readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  const url = (db) => `postgres://pki@127.0.0.1:${port}/${db}`;
  const sql = async (text, db = "postgres", values = []) => {
    const c = new pg.Client({ connectionString: url(db) });
    await c.connect();
    try {
      return (await c.query(text, values)).rows;
    } finally {
      await c.end();
    }
  };
  const stop = () => {
    if (!pid) return fs.rmSync(dir, { recursive: true, force: true });
    try {
      process.kill(pid, "SIGQUIT");
    } catch {
      /* gone */
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      spawnSync("sleep", ["0.05"]);
    }
    pid = 0;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { port, url, sql, stop };
}

// ---------------------------------------------------------------- runs

/** Run a child with a hard limit; wall ms. Throws on a non-zero exit. */
function timed(argv, { env, cwd }) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(BIN, [...argv], { env, cwd, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => child.kill("SIGKILL"), LIMIT_S * 1000);
    child.on("close", (code) => {
      clearTimeout(t);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`pki ${argv.join(" ")} exited ${code}: ${stderr.trim()}`));
      else resolve(ms);
    });
  });
}

/** `workers` loops, each running `jobs[k]` one after another; total wall ms. */
async function parallel(workers, jobs, run) {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < jobs.length) await run(jobs[next++]);
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The index lines bench/run.mjs writes for its CRL fixture: n revoked, every third with a reason. */
function revokedLines(n) {
  const reasons = ["", ",keyCompromise", ",superseded"];
  const out = [];
  for (let i = 0; i < n; i++) {
    const serial = "5" + (i % 10) + i.toString(16).toUpperCase().padStart(32, "0");
    out.push({ serial, line: `R\t351231235959Z\t250601120000Z${reasons[i % 3]}\t${serial}\tunknown\t/O=Bench/CN=agent-${i}`, revoked: `250601120000Z${reasons[i % 3]}`, subject: `/O=Bench/CN=agent-${i}` });
  }
  return out;
}

/**
 * @param {{ tmp: string, ca0: string, passFile: string, env: NodeJS.ProcessEnv, quick: boolean, log: (s: string) => void }} o
 * @returns {Promise<string[]>} report lines (markdown)
 */
export async function pgBench(o) {
  const { env, log } = o;
  const REPS = o.quick ? 1 : 3;
  const SIGN_JOBS = o.quick ? 24 : 64;
  const cluster = await startCluster();
  if (!cluster) return ["", "PostgreSQL store: skipped: PostgreSQL's initdb/pg_ctl are not installed (Debian package postgresql)"];
  const onExit = () => cluster.stop();
  process.on("exit", onExit);
  let dbs = 0;
  try {
    const g = ["--passphrase-file", o.passFile];
    const pkiSync = (argv, cwd = o.tmp) => {
      const r = spawnSync(BIN, [...argv], { env, cwd, encoding: "utf8", maxBuffer: 1 << 28, timeout: LIMIT_S * 1000 });
      if (r.status !== 0) throw new Error(`pki ${argv.join(" ")} failed: ${r.stderr}`);
      return r.stdout;
    };
    // the template database: the directory CA ca0 migrated (same key, same certificate, same settings)
    log("PostgreSQL store: a throwaway cluster, the bench CA migrated into it ...");
    await cluster.sql("CREATE DATABASE pki_ca0");
    pkiSync(["store", "migrate", "--from", o.ca0, "--to", cluster.url("pki_ca0")]);
    const freshDb = async () => {
      const name = `pki_run_${++dbs}`;
      await cluster.sql(`CREATE DATABASE ${name} TEMPLATE pki_ca0`);
      return cluster.url(name);
    };
    const freshDir = () => {
      const d = path.join(o.tmp, `pg-dir-${++dbs}`);
      fs.cpSync(o.ca0, d, { recursive: true, preserveTimestamps: true });
      return d;
    };
    const onStore = (s) => (s.startsWith("postgres") ? ["--store", s, ...g] : ["--dir", s, ...g]);

    // 1. bulk issuance
    log(`  ${PAIRS} pairs, PostgreSQL and directory (${REPS} run(s) each) ...`);
    const names = path.join(o.tmp, "pg-names.txt");
    fs.writeFileSync(names, Array.from({ length: PAIRS }, (_, i) => `agent-${i}`).join("\n") + "\n");
    const pairs = { pg: [], dir: [] };
    let lastOut;
    for (let i = 0; i < REPS; i++) {
      for (const k of ["pg", "dir"]) {
        const store = k === "pg" ? await freshDb() : freshDir();
        const out = fs.mkdtempSync(path.join(o.tmp, "pg-pairs-out-"));
        await settle();
        pairs[k].push(await timed([...onStore(store), "issue", "client", "--names-from", names, "--out-dir", out], { env, cwd: o.tmp }));
        // kept until the bench ends (settle(): removed files would slow the next run's creates)
        if (k === "pg") lastOut = out;
      }
    }
    const caFile = path.join(o.ca0, "ca.crt");
    const v = spawnSync("openssl", ["verify", "-CAfile", caFile, path.join(lastOut, "agent-0.crt"), path.join(lastOut, `agent-${PAIRS - 1}.crt`)], { encoding: "utf8" });
    if (v.status !== 0) throw new Error(`certificates issued on PostgreSQL do not verify: ${v.stdout}${v.stderr}`);

    // 2. parallel sign-csr
    log(`  ${WORKERS} parallel sign-csr workers, ${SIGN_JOBS} CSRs, PostgreSQL and directory ...`);
    const csrDir = path.join(o.tmp, "pg-csrs");
    fs.mkdirSync(csrDir);
    const csrs = [];
    for (let i = 0; i < SIGN_JOBS; i++) {
      const csr = path.join(csrDir, `c${i}.csr`);
      const r = spawnSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(csrDir, `c${i}.key`), "-subj", `/CN=agent-${i}`, "-out", csr], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
      csrs.push(csr);
    }
    const sign = { pg: [], dir: [] };
    for (let i = 0; i < REPS; i++) {
      for (const k of ["pg", "dir"]) {
        const store = k === "pg" ? await freshDb() : freshDir();
        const out = fs.mkdtempSync(path.join(o.tmp, "pg-sign-out-"));
        const ms = await parallel(WORKERS, csrs.map((c, j) => [c, j]), ([csr, j]) => timed([...onStore(store), "sign-csr", csr, "--profile", "client", "--out", path.join(out, `c${j}.crt`)], { env, cwd: o.tmp }));
        sign[k].push((SIGN_JOBS * 1000) / ms);
        if (k === "pg") {
          const n = Number((await cluster.sql("SELECT count(DISTINCT serial) AS n FROM pki_certificates", new URL(store).pathname.slice(1)))[0].n);
          if (n !== SIGN_JOBS) throw new Error(`parallel sign-csr on PostgreSQL recorded ${n} certificates, expected ${SIGN_JOBS}`);
        }
      }
    }

    // 3. CRL of 100,000 revoked: the same index in both stores
    log(`  CRL of ${CRL_N.toLocaleString("en")} revoked, PostgreSQL and directory ...`);
    const lines = revokedLines(CRL_N);
    const crlDir = freshDir();
    const fd = fs.openSync(path.join(crlDir, "index.txt"), "w");
    for (let at = 0; at < lines.length; at += 10_000) fs.writeSync(fd, lines.slice(at, at + 10_000).map((l) => l.line + "\n").join(""));
    fs.closeSync(fd);
    fs.writeFileSync(path.join(crlDir, "crlnumber"), "01\n");
    const crlUrl = await freshDb();
    const crlDb = new URL(crlUrl).pathname.slice(1);
    {
      const c = new pg.Client({ connectionString: crlUrl });
      await c.connect();
      try {
        for (let at = 0; at < lines.length; at += 10_000) {
          const chunk = lines.slice(at, at + 10_000);
          await c.query(
            `INSERT INTO pki_certificates (serial, line, status, expires, revoked, subject)
             SELECT s, l, 'R', '2035-12-31T23:59:59Z', r, j FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(s, l, r, j)`,
            [chunk.map((x) => x.serial), chunk.map((x) => x.line), chunk.map((x) => x.revoked), chunk.map((x) => x.subject)],
          );
        }
        await c.query("UPDATE pki_documents SET data = convert_to(E'01\\n', 'UTF8') WHERE name = 'crlnumber'");
        await c.query("VACUUM ANALYZE pki_certificates");
      } finally {
        await c.end();
      }
    }
    void crlDb;
    const crl = { pg: [], dir: [] };
    for (let i = 0; i < REPS; i++) {
      crl.pg.push(await timed([...onStore(crlUrl), "crl", "--out", path.join(o.tmp, "pg-crl.pem")], { env, cwd: o.tmp }));
      crl.dir.push(await timed([...onStore(crlDir), "crl"], { env, cwd: o.tmp }));
    }
    const text = spawnSync("openssl", ["crl", "-in", path.join(o.tmp, "pg-crl.pem"), "-noout", "-text", "-CAfile", caFile], { encoding: "utf8", maxBuffer: 1 << 30 });
    const listed = (text.stdout.match(/Serial Number:/g) ?? []).length;
    if (!/verify OK/.test(text.stdout + text.stderr) || listed !== CRL_N) throw new Error(`the CRL made on PostgreSQL does not verify or lists ${listed} serials, expected ${CRL_N}`);

    // the report
    const pPairs = (PAIRS * 1000) / median(pairs.pg);
    const dPairs = (PAIRS * 1000) / median(pairs.dir);
    const pSign = median(sign.pg);
    const dSign = median(sign.dir);
    const pCrl = median(crl.pg);
    const dCrl = median(crl.dir);
    const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
    const verdict = (ok) => (ok ? "met" : "MISSED");
    return [
      "",
      `PostgreSQL store next to the directory store (issue #17 target 4): a local throwaway cluster (fsync on), medians of ${REPS} run(s)`,
      "",
      "| work | pki on PostgreSQL | pki on a directory | PostgreSQL/directory | target | |",
      "|---|---:|---:|---:|---|---|",
      `| ${PAIRS.toLocaleString("en")} client pairs, pki issue --names-from | ${fmtMs(median(pairs.pg))} (${Math.round(pPairs)}/s) | ${fmtMs(median(pairs.dir))} (${Math.round(dPairs)}/s) | ${(pPairs / dPairs).toFixed(2)} (rate) | >= 1,000/s on PostgreSQL | ${verdict(pPairs >= 1000)} |`,
      `| ${SIGN_JOBS} sign-csr, ${WORKERS} processes at a time | ${pSign.toFixed(1)}/s | ${dSign.toFixed(1)}/s | ${(pSign / dSign).toFixed(2)} (rate) | >= 0.8 | ${verdict(pSign / dSign >= 0.8)} |`,
      `| CRL, ${CRL_N.toLocaleString("en")} revoked, pki crl | ${fmtMs(pCrl)} | ${fmtMs(dCrl)} | ${(pCrl / dCrl).toFixed(2)} (time) | <= 2 | ${verdict(pCrl / dCrl <= 2)} |`,
    ];
  } finally {
    cluster.stop();
    process.off("exit", onExit);
  }
}

// standalone: node bench/pg.mjs [--quick] [--keep]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runStandalone("pg", "pki PostgreSQL bench", pgBench);
}
