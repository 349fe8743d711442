/**
 * A CLI that never surprises cron or a pipe (issue 16): --quiet prints nothing
 * on stderr on success, a closed pipe ends quietly with status 0, typos get a
 * suggestion, and `pki --json` with no command still answers in JSON.
 */
import { spawn, spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, cleanEnv, json, makeCa, pki } from "../helpers.js";

let ca: ReturnType<typeof makeCa>;

beforeAll(() => {
  ca = makeCa();
  for (const n of ["alice", "bob", "carol"]) expect(ca.run(["issue", "client", n]).code).toBe(0);
});

/** Run pki with its stdout read end closed at once: every write it makes meets EPIPE. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    p.stdout.destroy();
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe("a write to a closed pipe ends quietly", () => {
  it.each([
    ["list", ["--dir", "<dir>", "list"]],
    ["list --json", ["--dir", "<dir>", "list", "--json"]],
    ["issue --help (commander's help)", ["issue", "--help"]],
    ["--help (the fast root help)", ["--help"]],
    ["show", ["--dir", "<dir>", "show", "alice"]],
  ])("%s: exit 0, no stack trace", async (_label, args) => {
    const r = await withClosedStdout(args.map((a) => (a === "<dir>" ? ca.dir : a)));
    expect(r.stderr).not.toMatch(/EPIPE|Error:|at /);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });

  it("`set -o pipefail; pki issue --help | head -1` and `pki list | head -1` succeed", () => {
    for (const cmd of [`"$NODE" "$BIN" issue --help | head -1`, `"$NODE" "$BIN" --dir "$DIR" list | head -1`]) {
      const r = spawnSync("bash", ["-c", `set -o pipefail; ${cmd}`], { env: cleanEnv({ NODE: process.execPath, BIN, DIR: ca.dir }) });
      expect(String(r.stderr)).toBe("");
      expect(r.status).toBe(0);
      expect(String(r.stdout).split("\n").filter(Boolean)).toHaveLength(1);
    }
  });
});

describe("--quiet: nothing on stderr on success (for cron)", () => {
  it("`pki crl --if-expiring-within 2` says it left the CRL alone; with -q (before or after the command) it says nothing", () => {
    const loud = ca.run(["crl", "--if-expiring-within", "2"]);
    expect(loud.code).toBe(0);
    expect(loud.stderr).toContain("left as it is");
    for (const args of [["-q", "crl", "--if-expiring-within", "2"], ["crl", "--if-expiring-within", "2", "--quiet"]]) {
      const r = ca.run(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("");
    }
  });

  it("a re-signing crl, an issue and a revoke print nothing on stderr with -q; data on stdout is unchanged", () => {
    expect(ca.run(["crl"]).stderr).not.toBe("");
    for (const args of [["crl"], ["issue", "client", "dave"], ["revoke", "dave"], ["bundle"]]) {
      const r = ca.run(["-q", ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe("");
    }
    const listed = ca.run(["-q", "list", "--format", "serial"]);
    expect(listed.stdout.trim().split("\n").length).toBeGreaterThanOrEqual(4);
  });

  it("errors still appear with -q", () => {
    const r = ca.run(["-q", "revoke", "nobody-by-that-name"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pki: error: /);
  });
});

describe("typos and a missing command", () => {
  it("an unknown command gets a suggestion", () => {
    const r = pki(["isue", "client", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'isue' (did you mean 'issue'?)");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("an unknown option gets a suggestion", () => {
    const r = pki(["list", "--statu", "valid"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--statu' (did you mean '--status'?)");
  });

  it("`pki --json` with no command is a JSON usage error (exit 2), not human help", () => {
    const r = pki(["--json"]);
    expect(r.code).toBe(2);
    const d = json(r);
    expect(d.ok).toBe(false);
    expect(d.error.code).toBe("USAGE");
    expect(r.stderr).toBe("");
  });
});
