/**
 * The command rules of #9, measured by scripts/command-size.mjs: every
 * function in src/commands/ at most 60 lines, no command reaching CA state
 * past the store (node:fs, store/lock, store/atomic), no command importing
 * another.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { breaches, functionSizes, MAX_LINES } from "../../scripts/command-size.mjs";
import { tmpdir } from "../helpers.js";

const ROOT = path.join(import.meta.dirname, "..", "..");
const SCRIPT = path.join(ROOT, "scripts", "command-size.mjs");

describe("src/commands", () => {
  it("keeps every rule: thin functions, no fs/lock/atomic, no command importing a command", () => {
    expect(breaches(path.join(ROOT, "src", "commands"))).toEqual([]);
  });
});

describe("scripts/command-size.mjs", () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join("\n");

  it("measures functions, arrows and methods from their first line to their last", () => {
    const dir = tmpdir("pki-size-");
    const file = path.join(dir, "a.ts");
    fs.writeFileSync(file, `export function f() {\n${body(3)}\n}\nconst g = async () => {\n${body(1)}\n};\nclass C {\n  m() {\n    return 1;\n  }\n}\n`);
    expect((functionSizes(file) as { name: string; from: number; lines: number }[]).map((x) => [x.name, x.from, x.lines])).toEqual([
      ["f", 1, 5],
      ["g", 6, 3],
      ["m", 10, 3],
    ]);
  });

  it("reports a long function, node:fs, the lock, atomic writes and a sibling command; exits 1", () => {
    const dir = tmpdir("pki-size-");
    fs.writeFileSync(path.join(dir, "long.ts"), `export async function run() {\n${body(MAX_LINES - 1)}\n}\n`);
    fs.writeFileSync(path.join(dir, "io.ts"), `import * as fs from "node:fs";\nimport { withLock } from "../store/lock.js";\nimport { writeAtomic } from "../store/atomic.js";\nimport { x } from "./long.js";\nimport { y } from "./options.js";\n`);
    expect(breaches(dir)).toEqual([
      "io.ts imports node:fs (CA state goes through CaStore, outputs through store/output.ts)",
      "io.ts imports ../store/lock.js (CA state goes through CaStore, outputs through store/output.ts)",
      "io.ts imports ../store/atomic.js (CA state goes through CaStore, outputs through store/output.ts)",
      "io.ts imports the command ./long.js (shared code belongs in src/ca/ or src/core/)",
      `long.ts:1 run is ${MAX_LINES + 1} lines (at most ${MAX_LINES})`,
    ]);
    expect(spawnSync(process.execPath, [SCRIPT, dir]).status).toBe(1);
  });

  it("a function of exactly the limit passes; exit 0", () => {
    const dir = tmpdir("pki-size-");
    fs.writeFileSync(path.join(dir, "ok.ts"), `export async function run() {\n${body(MAX_LINES - 2)}\n}\n`);
    expect(breaches(dir)).toEqual([]);
    expect(spawnSync(process.execPath, [SCRIPT, dir]).status).toBe(0);
  });
});
