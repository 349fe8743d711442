/**
 * bin/pki.js run as a program (`pki`, `npx pki`, ./bin/pki.js) is first a
 * shell line that starts node on the same file with glibc's malloc asked for
 * transparent huge pages (issue 17: first touches of fresh pages were a
 * third of a 1,000,000-entry CRL's time). It must hand over everything else
 * untouched: each argument byte for byte, the exit status, the environment,
 * the process itself (exec: the pid a supervisor holds is node's).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, cleanEnv } from "../helpers.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pki-launcher-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// a preload (NODE_OPTIONS=--require) reports what node was started with, and
// whether a fresh 64 MiB buffer got huge pages (smaps_rollup AnonHugePages)
const preload = path.join(tmp, "report.cjs");
fs.writeFileSync(
  preload,
  `const fs = require("fs");
const b = Buffer.allocUnsafe(64 << 20); b.fill(1);
const huge = Number((/AnonHugePages:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/smaps_rollup", "utf8")) || [0, 0])[1]);
fs.writeFileSync(process.env.REPORT, JSON.stringify({ tunables: process.env.GLIBC_TUNABLES ?? null, argv: process.argv.slice(2), pid: process.pid, hugeKb: huge, keep: b.length }));
process.on("exit", () => fs.writeFileSync(process.env.REPORT + ".exit", JSON.stringify({ extraCa: process.env.NODE_EXTRA_CA_CERTS ?? null, kept: process.env.PKI_NODE_EXTRA_CA_CERTS ?? null })));
`,
);

interface Report {
  tunables: string | null;
  argv: string[];
  pid: number;
  hugeKb: number;
}

function launch(args: string[], env: Record<string, string> = {}, viaNode = false): { code: number | null; stdout: string; stderr: string; report: Report; atExit: { extraCa: string | null; kept: string | null } } {
  const report = path.join(tmp, `report-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(viaNode ? process.execPath : BIN, viaNode ? [BIN, ...args] : args, {
    env: { ...cleanEnv(), NODE_OPTIONS: `--require ${preload}`, REPORT: report, ...env },
    encoding: "utf8",
  });
  const read = (f: string) => JSON.parse(fs.readFileSync(f, "utf8"));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, report: read(report) as Report, atExit: read(`${report}.exit`) };
}

const thp = fs.readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8").match(/\[(\w+)\]/)?.[1];

describe("bin/pki.js as a program", () => {
  it("is executable and starts with a shell line that execs node on itself", () => {
    expect(fs.statSync(BIN).mode & 0o111).toBe(0o111);
    expect(fs.readFileSync(BIN, "utf8").split("\n")[0]).toBe("#!/bin/sh");
  });

  it("asks glibc for huge pages, and a GLIBC_TUNABLES of the user's comes after (it wins)", () => {
    const plain = launch(["--version"]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(plain.report.tunables).toBe("glibc.malloc.hugetlb=1");
    const mine = launch(["--version"], { GLIBC_TUNABLES: "glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2" });
    expect(mine.report.tunables).toBe("glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2");
  });

  it(`a large buffer gets huge pages through the launcher, not through plain node (THP here: ${thp})`, () => {
    const launched = launch(["--version"]).report.hugeKb;
    const viaNode = launch(["--version"], {}, true).report;
    expect(viaNode.tunables).toBeNull();
    if (thp === "madvise") {
      expect(launched).toBeGreaterThan(0);
      expect(viaNode.hugeKb).toBe(0);
    } else if (thp === "never") {
      expect(launched).toBe(0);
    } else {
      // "always": every process gets them, asked or not
      expect(thp).toBe("always");
      expect(launched).toBeGreaterThan(0);
    }
  });

  it("starts node without NODE_EXTRA_CA_CERTS (node reads that bundle before any JavaScript), and puts it back for child processes", () => {
    // node warns at start about a bundle it cannot read: the sign that it tried
    const missing = path.join(tmp, "no-such-bundle.pem");
    const warned = /Ignoring extra certs from/;
    const launched = launch(["--version"], { NODE_EXTRA_CA_CERTS: missing });
    expect(launched.code).toBe(0);
    expect(launched.stderr).not.toMatch(warned);
    expect(launched.atExit).toEqual({ extraCa: missing, kept: null });
    const viaNode = launch(["--version"], { NODE_EXTRA_CA_CERTS: missing }, true);
    expect(viaNode.stderr).toMatch(warned);
    expect(viaNode.atExit).toEqual({ extraCa: missing, kept: null });
    // with the system store asked for, node's own handling stays (pki would not rebuild that store)
    const systemStore = launch(["--version"], { NODE_EXTRA_CA_CERTS: missing, NODE_OPTIONS: `--use-openssl-ca --require ${preload}` });
    expect(systemStore.code).toBe(0);
    expect(systemStore.stderr).toMatch(warned);
    // unset stays unset
    const env = cleanEnv();
    delete env.NODE_EXTRA_CA_CERTS;
    const report = path.join(tmp, "unset.json");
    const r = spawnSync(BIN, ["--version"], { env: { ...env, NODE_OPTIONS: `--require ${preload}`, REPORT: report }, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(`${report}.exit`, "utf8"))).toEqual({ extraCa: null, kept: null });
  });

  it("passes every argument byte for byte, and the exit status", () => {
    const odd = ["a b", "$HOME", "`id`", '"q"', "it's", "", "-", "x\ny", "*", "ü"];
    const r = launch(["frobnicate", ...odd]);
    expect(r.report.argv).toEqual(["frobnicate", ...odd]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("pki: error: unknown command 'frobnicate'; run `pki --help` for the commands\n");
  });

  it("replaces the shell (exec): the pid a caller holds, and signals, is node's", async () => {
    const report = path.join(tmp, "serve-report.json");
    const child = spawn(BIN, ["--version"], { env: { ...cleanEnv(), NODE_OPTIONS: `--require ${preload}`, REPORT: report }, stdio: "ignore" });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(0);
    expect((JSON.parse(fs.readFileSync(report, "utf8")) as Report).pid).toBe(child.pid);
  });
});
