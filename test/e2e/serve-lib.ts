/**
 * Running the real `pki serve` in tests: spawned as a user would (bin/pki.js),
 * on a free loopback port, waited for through --ready-file, stopped by pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { BIN, cleanEnv } from "../helpers.js";

import { freePort } from "./nginx-lib.js";

export { freePort };

export interface Serve {
  proc: ChildProcess;
  port: number;
  url: string;
  stderr: () => string;
  /** SIGTERM, then the exit code (SIGKILL after 10 s: a hang is a failure, not a stuck suite) */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
});

export async function startServe(dir: string, args: string[] = [], env: Record<string, string> = {}): Promise<Serve> {
  const port = await freePort();
  const ready = path.join(path.dirname(dir), `ready-${port}.json`);
  fs.rmSync(ready, { force: true });
  const proc = spawn(process.execPath, [BIN, "serve", "--dir", dir, "--listen", `127.0.0.1:${port}`, "--ready-file", ready, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  running.add(proc);
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  proc.stdout!.on("data", () => {});
  const exited = new Promise<number | null>((res) => proc.on("exit", (c) => { running.delete(proc); res(c); }));
  const t0 = Date.now();
  while (!fs.existsSync(ready)) {
    if (proc.exitCode !== null) throw new Error(`pki serve exited ${proc.exitCode}: ${err}`);
    if (Date.now() - t0 > 30_000) {
      proc.kill("SIGKILL");
      throw new Error(`pki serve did not become ready: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    exited,
    stop: async (signal = "SIGTERM") => {
      if (proc.exitCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const c = await exited;
      clearTimeout(t);
      return c;
    },
  };
}
