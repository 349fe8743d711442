/**
 * Each top-level command runs from one file of its own (dist/bundle/cmd/,
 * scripts/bundle.mjs): node 20 spends a resolve, read, compile and link on
 * every ES module, and a sign-csr used to load ~20 chunks (issue 17: ~35 ms
 * of every start, and on two cores a slower PBKDF2 beside it). Shown on a copy
 * of the install whose shared chunks are gone: the commands still run, while
 * what needs the whole program (help, subcommands) says the build is incomplete.
 * PkiError thrown by a separately loaded file (the prompts) is still a PkiError.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/cli/program.js";
import { PkiError } from "../../src/core/errors.js";
import { CSR } from "../e2e/lib.js";
import { cleanEnv, PASSPHRASE, tmpdir } from "../helpers.js";

const ROOT = path.join(import.meta.dirname, "..", "..");

/** bin/, package.json, templates and node_modules as they are; dist/bundle without chunks/ and cli/run.js */
function installWithoutChunks(): string {
  const dir = tmpdir("pki-cmdfiles-");
  fs.cpSync(path.join(ROOT, "bin"), path.join(dir, "bin"), { recursive: true });
  fs.copyFileSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  fs.symlinkSync(path.join(ROOT, "templates"), path.join(dir, "templates"));
  fs.cpSync(path.join(ROOT, "dist", "bundle"), path.join(dir, "dist", "bundle"), { recursive: true });
  fs.rmSync(path.join(dir, "dist", "bundle", "chunks"), { recursive: true });
  fs.rmSync(path.join(dir, "dist", "bundle", "cli"), { recursive: true });
  return dir;
}

describe("one file per command", () => {
  it("every top-level command without subcommands has its file, listed in cmd/commands.json", () => {
    const listed = JSON.parse(fs.readFileSync(path.join(ROOT, "dist", "bundle", "cmd", "commands.json"), "utf8")) as Record<string, string>;
    const expected = Object.fromEntries(COMMANDS.filter((c) => !c.sub).map((c) => [c.name, c.module]));
    expect(listed).toEqual(expected);
    for (const m of Object.values(listed)) expect(fs.existsSync(path.join(ROOT, "dist", "bundle", "cmd", `${m}.js`)), m).toBe(true);
  });

  it("init, issue, sign-csr, revoke, crl, list and status run without the shared chunks; help and subcommands need them", () => {
    const dir = installWithoutChunks();
    const pass = path.join(dir, "pass");
    fs.writeFileSync(pass, PASSPHRASE + "\n", { mode: 0o600 });
    const ca = path.join(dir, "ca");
    const run = (args: string[]) => spawnSync(process.execPath, [path.join(dir, "bin", "pki.js"), "--dir", ca, "--passphrase-file", pass, ...args], { encoding: "utf8", env: cleanEnv(), cwd: dir });
    for (const args of [
      ["init", "--cn", "Files CA", "--org", "Acme"],
      ["issue", "client", "alice"],
      ["sign-csr", CSR("p256.csr"), "--profile", "client", "--out", path.join(dir, "agent.crt")],
      ["revoke", "alice"],
      ["crl"],
      ["list"],
      ["status"],
    ]) {
      const r = run(args);
      expect(r.status, `pki ${args[0]}: ${r.stderr}`).toBe(0);
    }
    expect(fs.readFileSync(path.join(dir, "agent.crt"), "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----/);
    for (const args of [["list", "--help"], ["store", "migrate", "--help"], ["frobnicate"]]) {
      const r = run(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toBe("pki: error: the build is incomplete (dist/bundle is missing a file): run `npm run build`\n");
    }
  });

  it("instanceof PkiError holds for an error of another copy of the class (the files loaded late carry their own)", () => {
    const brand = Symbol.for("pki.error");
    const foreign = Object.defineProperty(new Error("from another copy"), brand, { value: true });
    expect(foreign instanceof PkiError).toBe(true);
    expect(new Error("plain") instanceof PkiError).toBe(false);
    expect(new PkiError("USAGE", "x") instanceof PkiError).toBe(true);
    expect(new PkiError("USAGE", "x") instanceof Error).toBe(true);
    expect(null instanceof PkiError).toBe(false);
  });
});
