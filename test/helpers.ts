/**
 * Test helpers: run the real bin/pki and the real openssl in temporary
 * directories. No mocks: files, keys and processes are real.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BIN = path.join(ROOT, "bin", "pki.js");
export const FIXTURES = path.join(ROOT, "test", "fixtures");
export const PASSPHRASE = "correct horse battery staple";

const made: string[] = [];
afterAll(() => {
  if (process.env.PKI_KEEP_TMP) return;
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

export function tmpdir(prefix = "pki-test-"): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a script: no TTY, no inherited PKI_* variables. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("PKI_") || k === "NO_COLOR" || k === "CI") delete env[k];
  return { ...env, ...extra };
}

export function pki(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string | Buffer; timeout?: number } = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: cleanEnv(opts.env),
    input: opts.input ?? "",
    timeout: opts.timeout ?? 60_000,
    maxBuffer: 256 * 1024 * 1024,
  } as SpawnSyncOptions);
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export function openssl(args: string[], opts: { cwd?: string; input?: string | Buffer } = {}): Run {
  const r = spawnSync("openssl", args, { cwd: opts.cwd, input: opts.input ?? "", maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A fresh CA in a temp dir, with its passphrase file. */
export function makeCa(args: string[] = [], prefix = "pki-ca-"): { root: string; dir: string; pass: string; run: (a: string[], o?: Parameters<typeof pki>[1]) => Run } {
  const root = tmpdir(prefix);
  const pass = path.join(root, "pass");
  fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
  const dir = path.join(root, "pki");
  const r = pki(["init", "--dir", dir, "--cn", "Test Root CA", "--org", "Acme", "--passphrase-file", pass, ...args]);
  if (r.code !== 0) throw new Error(`pki init failed: ${r.stderr}`);
  return { root, dir, pass, run: (a, o) => pki(["--dir", dir, "--passphrase-file", pass, ...a], { cwd: root, ...o }) };
}

/** Every file under dir with its SHA-256 and mode: to prove "nothing changed". */
export function snapshot(dir: string, ignore: string[] = ["audit.log"]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (ignore.includes(rel)) continue;
      const st = fs.statSync(p);
      if (e.isDirectory()) {
        out[rel + "/"] = (st.mode & 0o777).toString(8);
        walk(p);
      } else {
        out[rel] = (st.mode & 0o777).toString(8) + " " + crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
      }
    }
  };
  walk(dir);
  return out;
}

export function json(r: Run): any {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}
