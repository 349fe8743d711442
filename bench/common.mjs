/**
 * What the bench modules share: the paths, sleep and median, and what a
 * bench module run on its own needs (node bench/ocsp.mjs, node
 * bench/pg.mjs): the build (npm run build when dist/bundle/ is missing), a temporary
 * directory (kept with --keep), a passphrase file and a fresh CA in it,
 * then the module's lines on stdout with the machine and its load.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BIN = path.join(ROOT, "bin", "pki.js");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Before a timed run that creates many files: write back what earlier runs
 * left (sync), and let it start with the disk idle. The runs' files are
 * not removed until the bench ends: ext4 without a journal (this machine's
 * root file system) passes over every inode freed in the last 60 s (300 s
 * while its inode table block is dirty) when it looks for a free one, and
 * reads that inode's table block to know (perf: recently_deleted,
 * find_get_block_common in ext4_create). A run made within that window of
 * removing the previous run's 40,000 files spent 4 to 11 s in the kernel
 * instead of ~3 s; waiting 5 s (what this did before) was not enough.
 */
export async function settle() {
  spawnSync("sync");
  await sleep(1000);
}

/** `npm run build` (tsc, then scripts/bundle.mjs) when bin/pki.js has nothing to run yet; false if it failed. */
export function ensureBuilt(log = (m) => process.stderr.write(`bench: ${m}\n`)) {
  if (fs.existsSync(path.join(ROOT, "dist", "bundle", "cli", "run.js"))) return true;
  log("building (npm run build) ...");
  return spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: ["ignore", 2, 2] }).status === 0;
}

/** A free TCP port on loopback. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** Run bench(o) with o = { tmp, ca0, passFile, env, quick, log } and print its lines under `title`. Exits. */
export async function runStandalone(name, title, bench) {
  const quick = process.argv.includes("--quick");
  const keep = process.argv.includes("--keep");
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("PKI_") || k === "CI") delete env[k];
  if (!ensureBuilt()) process.exit(1);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `pki-bench-${name}-`));
  process.on("exit", () => {
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  });
  const passFile = path.join(tmp, "pass");
  fs.writeFileSync(passFile, "bench passphrase 1234\n", { mode: 0o600 });
  const ca0 = path.join(tmp, "ca0");
  const r = spawnSync(BIN, ["init", "--dir", ca0, "--cn", "Bench CA", "--org", "Bench", "--passphrase-file", passFile], { env, encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(`bench: pki init failed: ${r.stderr}`);
    process.exit(1);
  }
  try {
    const lines = await bench({ tmp, ca0, passFile, env, quick, log: (m) => process.stderr.write(m + "\n") });
    process.stdout.write(`\n${title}, ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} CPU(s), load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, node ${process.version}\n` + lines.join("\n") + "\n");
    process.exit(0);
  } catch (e) {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exit(1);
  }
}
