/**
 * The command table (src/cli/program.ts) is the one source of the commands,
 * their options and the values those take: commander registers exactly it,
 * every entry has its module, `pki completion` offers exactly it, and audit.log
 * follows its `audited` marks.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { argChoices, buildProgram, COMMANDS, GLOBAL_KEYS, GLOBAL_OPTIONS, optionChoices, type CommandSpec, type OptionSpec } from "../../src/cli/program.js";
import { bashScript, zshScript } from "../../src/commands/completion.js";
import { makeCa } from "../helpers.js";

const ROOT = path.join(import.meta.dirname, "..", "..");
const PROFILES = ["alpha", "beta-2"];

/** Every command of the table, with its path ("export p12"). */
function specs(): Array<{ path: string[]; spec: CommandSpec }> {
  const out: Array<{ path: string[]; spec: CommandSpec }> = [];
  const walk = (spec: CommandSpec, prefix: string[]) => {
    out.push({ path: [...prefix, spec.name], spec });
    for (const s of spec.sub ?? []) walk(s, [...prefix, spec.name]);
  };
  for (const s of COMMANDS) walk(s, []);
  return out;
}

const longNames = (options: readonly OptionSpec[]) => options.flatMap(([flags]) => flags.split(/[ ,]+/).filter((w) => w.startsWith("--")));

describe("the command table", () => {
  it("is what commander registers: the same commands, arguments and options", () => {
    const registered = new Map<string, Command>();
    const walk = (c: Command, prefix: string[]) => {
      for (const s of c.commands) {
        registered.set([...prefix, s.name()].join(" "), s);
        walk(s, [...prefix, s.name()]);
      }
    };
    walk(buildProgram("0", async () => {}), []);
    expect([...registered.keys()].sort()).toEqual(specs().map((s) => s.path.join(" ")).sort());
    for (const { path: p, spec } of specs()) {
      const cmd = registered.get(p.join(" "))!;
      expect(cmd.options.map((o) => o.flags), p.join(" ")).toEqual([...(spec.options ?? []), ...GLOBAL_OPTIONS].map(([flags]) => flags));
      expect(cmd.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? "..." : ""}>` : `[${a.name()}${a.variadic ? "..." : ""}]`)).join(" "), p.join(" ")).toBe(spec.args ?? "");
    }
  });

  it("names a module under src/commands/ with a run() for every command that runs", async () => {
    for (const { path: p, spec } of specs()) {
      if (spec.sub) continue;
      const file = path.join(ROOT, "src", "commands", `${spec.module}.ts`);
      expect(fs.existsSync(file), `${p.join(" ")}: ${file}`).toBe(true);
      const mod = (await import(file)) as { run?: unknown };
      expect(typeof mod.run, p.join(" ")).toBe("function");
    }
  });

  it("defines each option once: an option several commands take has one help text and one set of choices", () => {
    const seen = new Map<string, string>();
    const clashes: string[] = [];
    for (const { spec } of specs()) {
      for (const o of spec.options ?? []) {
        const key = o[0].split(" ")[0]!;
        const text = JSON.stringify([o[1], optionChoices(o)]);
        // --key is two things: the CA key's URI (signing commands), a server key file (nginx-config, apache-config)
        if (key === "--key" && o[0] === "--key <file>") continue;
        if (seen.has(key) && seen.get(key) !== text && ["--days", "--key-type", "--p12-format", "--p12-passphrase-file", "--no-passphrase", "--crl-days", "--key"].includes(key)) clashes.push(key);
        seen.set(key, text);
      }
    }
    expect(clashes).toEqual([]);
    const globals = longNames(GLOBAL_OPTIONS);
    for (const { path: p, spec } of specs()) expect(longNames(spec.options ?? []).filter((n) => globals.includes(n)), p.join(" ")).toEqual([]);
    expect(GLOBAL_KEYS).toEqual(["dir", "store", "json", "passphraseFile", "yes", "color", "quiet"]);
  });

  it("lists every fixed choice of an option in its help text", () => {
    for (const { path: p, spec } of specs()) {
      for (const o of spec.options ?? []) {
        const c = optionChoices(o);
        if (typeof c === "object") for (const v of c) expect(o[1], `${p.join(" ")} ${o[0]}`).toContain(v);
      }
    }
  });
});

describe("pki completion offers exactly the table", () => {
  const bash = bashScript(PROFILES);
  const complete = (...words: string[]): string[] => {
    const r = spawnSync("bash", ["-c", `${bash}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _pki; printf '%s\\n' "\${COMPREPLY[@]}"`]);
    expect(r.error, "bash (an Essential Debian package, so always installed) is needed for this test").toBeUndefined();
    return String(r.stdout).split("\n").filter(Boolean);
  };
  const resolve = (c: ReturnType<typeof optionChoices>) => (c === "profiles" ? PROFILES : c);

  it("bash: the commands, each command's options, and the values of each option and argument", () => {
    expect(complete("pki", "")).toEqual(COMMANDS.map((c) => c.name));
    expect(complete("pki", "--")).toEqual([...longNames(GLOBAL_OPTIONS), "--help", "--version"]);
    for (const { path: p, spec } of specs()) {
      const where = p.join(" ");
      expect(complete("pki", ...p, "--"), where).toEqual([...longNames(spec.options ?? []), ...longNames(GLOBAL_OPTIONS), "--help"]);
      const arg = resolve(argChoices(spec));
      if (typeof arg === "object") expect(complete("pki", ...p, ""), where).toEqual([...arg]);
      for (const o of [...(spec.options ?? []), ...GLOBAL_OPTIONS].filter(([flags]) => /[<[]/.test(flags))) {
        const values = resolve(optionChoices(o));
        const flag = longNames([o])[0]!;
        if (typeof values === "object") expect(complete("pki", ...p, flag, ""), `${where} ${flag}`).toEqual([...values]);
        // no fixed list: nothing to offer, or the files (directories) of the current directory
        else if (values === undefined) expect(complete("pki", ...p, flag, "package.j"), `${where} ${flag}`).toEqual([]);
        else expect(complete("pki", ...p, flag, values === "dir" ? "sr" : "package.j"), `${where} ${flag}`).toEqual([values === "dir" ? "src" : "package.json"]);
      }
    }
  });

  it("zsh: every command and option of the table, with its fixed values", () => {
    const zsh = zshScript(PROFILES);
    for (const { path: p, spec } of specs()) {
      expect(zsh, p.join(" ")).toContain(`    (${p.join("_")})\n`);
      for (const o of spec.options ?? []) {
        const values = resolve(optionChoices(o));
        const flag = longNames([o])[0]!;
        expect(zsh, `${p.join(" ")} ${flag}`).toContain(`'${flag}[`);
        if (typeof values === "object") expect(zsh, `${p.join(" ")} ${flag}`).toMatch(new RegExp(`'${flag}\\[[^\\n]*\\]:[^:]+:\\(${values.join(" ")}\\)'`));
      }
    }
  });

  it("the script a CA directory gets offers that CA's profiles", () => {
    const ca = makeCa();
    const bashOfCa = ca.run(["completion", "bash"]).stdout;
    expect(bashOfCa).toContain(`--profile) COMPREPLY=( $(compgen -W "client code-signing ocsp server ssl" -- "$cur") ); return ;;`);
  });
});

describe("audit.log follows the table's `audited` marks", () => {
  it("a refused audited command leaves a line; a refused unaudited one does not", () => {
    const ca = makeCa();
    const log = path.join(ca.dir, "audit.log");
    const lines = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0);
    const audited = specs().filter((s) => s.spec.audited).map((s) => s.path.join(" "));
    expect(audited).toContain("revoke");
    expect(audited).not.toContain("show");
    const before = lines();
    expect(ca.run(["revoke", "no-such-name"]).code).toBe(1);
    expect(lines()).toBe(before + 1);
    expect(ca.run(["show", "no-such-name"]).code).toBe(1);
    expect(lines()).toBe(before + 1);
  });
});
