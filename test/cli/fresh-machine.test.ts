/**
 * A fresh clone on a fresh Debian machine (issue 16): the README's two
 * quick-start commands do all the set-up, `.ci/run` runs exactly those lines
 * in a clean clone, the install script lists every package a test needs, and
 * no test skips itself.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

const SCRIPT = path.join(ROOT, "scripts", "install-system-deps.sh");
const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const ciRun = fs.readFileSync(path.join(ROOT, ".ci", "run"), "utf8");
const script = fs.readFileSync(SCRIPT, "utf8");

/** What .ci/run extracts from the README: its own awk program, run here. */
function quickStart(): string[] {
  const awk = /awk '([^']+)' README\.md/.exec(ciRun)?.[1];
  expect(awk, ".ci/run extracts the quick start with awk").toBeDefined();
  const r = spawnSync("awk", [awk!, path.join(ROOT, "README.md")], { encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

const wanted = () => [...script.matchAll(/^want (\S+) (\S+)/gm)].map((m) => m[2]!);

/** Every test source, for the checks on what tests say and do. */
function testSources(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== "fixtures") walk(p);
      } else if (e.name.endsWith(".ts")) out.push([path.relative(ROOT, p), fs.readFileSync(p, "utf8")]);
    }
  };
  walk(path.join(ROOT, "test"));
  return out;
}

describe("the README's quick start", () => {
  it("is two commands: npm run setup, npm test; .ci/run runs exactly them in a clean clone", () => {
    expect(quickStart()).toEqual(["npm run setup", "npm test"]);
    expect(ciRun).toMatch(/git clone -q "\$repo" "\$work\/pki"/);
    expect(ciRun).toContain('bash -euo pipefail -c "$quickstart"');
    // .ci/run keeps no package list of its own: one list, in the script
    expect(ciRun).not.toMatch(/need\+=/);
  });

  it("npm run setup installs the system packages, then the npm ones", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    expect(pkg.scripts.setup).toMatch(/^scripts\/install-system-deps\.sh && npm ci\b/);
    expect(pkg.scripts.test).toMatch(/^npm run build && vitest run$/);
    expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig\.json && node scripts\/bundle\.mjs$/);
    expect(fs.statSync(SCRIPT).mode & 0o111).not.toBe(0);
  });

  it("the script wants every package the tests need, and the README names each", () => {
    const pkgs = wanted();
    for (const p of ["openssl", "nginx-light", "curl", "bsdutils", "zsh", "git", "systemd", "easy-rsa", "apache2", "apache2-utils", "softhsm2", "opensc", "gnutls-bin", "golang-go", "postgresql"]) {
      expect(pkgs, p).toContain(p);
    }
    const quick = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("<!-- usage -->"));
    for (const p of pkgs.filter((x) => x !== "bsdutils")) expect(quick, p).toContain(`\`${p}\``);
  });

  it("every package a test names when its tool is missing is one the script installs", () => {
    const named = new Set<string>();
    for (const [, src] of testSources()) {
      for (const m of src.matchAll(/apt-get install ([a-z0-9][a-z0-9.+-]*)/g)) named.add(m[1]!);
      for (const m of src.matchAll(/Debian package ([a-z0-9][a-z0-9.+-]*)/g)) named.add(m[1]!);
    }
    expect(named.size).toBeGreaterThan(0);
    const pkgs = wanted();
    for (const p of named) expect(pkgs, `a test asks for ${p}`).toContain(p);
  });

  it("no test skips itself (a missing tool fails, naming the package)", () => {
    const self = path.relative(ROOT, __filename);
    for (const [file, src] of testSources()) {
      if (file === self) continue;
      expect(src, file).not.toMatch(/\b(?:it|describe|test)\.(?:skip|skipIf|todo)\b|\bt\.skip\(|\bctx\.skip\(|runIf\(/);
    }
  });
});

describe("scripts/install-system-deps.sh", () => {
  it("--dry-run: nothing missing on this machine (the packages are installed here)", () => {
    const r = spawnSync("bash", [SCRIPT, "--dry-run"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, "missing packages: run npm run setup").toBe("");
  });

  it("--dry-run with an empty PATH lists the packages of the tools it cannot find, installs nothing", () => {
    const r = spawnSync("/bin/bash", [SCRIPT, "--dry-run"], { encoding: "utf8", env: { PATH: "/nonexistent" } });
    expect(r.status, r.stderr).toBe(0);
    const listed = r.stdout.trim().split("\n");
    for (const p of ["openssl", "curl", "zsh", "git", "golang-go"]) expect(listed).toContain(p);
    // tools in /usr/sbin are still found (the script adds it to PATH): nginx
    expect(listed).not.toContain("nginx-light");
  });
});
