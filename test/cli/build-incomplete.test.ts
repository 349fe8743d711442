/**
 * bin/pki.js without its build (a clone before `npm ci`, an interrupted
 * `npm run build`): one line that says what to run, exit 1, no stack trace;
 * --version still answers (it needs only package.json).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cleanEnv, tmpdir } from "../helpers.js";

const ROOT = path.join(import.meta.dirname, "..", "..");

describe("bin/pki.js without dist/bundle", () => {
  const dir = tmpdir("pki-nobuild-");
  fs.cpSync(path.join(ROOT, "bin"), path.join(dir, "bin"), { recursive: true });
  fs.copyFileSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
  const run = (args: string[]) => spawnSync(process.execPath, [path.join(dir, "bin", "pki.js"), ...args], { encoding: "utf8", env: cleanEnv(), cwd: dir });

  it.each([["list"], ["--help"], ["sign-csr", "x.csr", "--profile", "client"]])("pki %s: one line, `npm run build`, exit 1", (...args) => {
    const r = run(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("pki: error: the build is incomplete (dist/bundle is missing a file): run `npm run build`\n");
  });

  it("--version needs no build", () => {
    const r = run(["--version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
