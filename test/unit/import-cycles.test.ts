/**
 * The layering rules of #9 that an import graph can check: no import cycle
 * in src/, and ui/ does not import cli/ (scripts/import-cycles.mjs).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { findCycles, importGraph } from "../../scripts/import-cycles.mjs";
import { tmpdir } from "../helpers.js";

type Cycle = { modules: string[]; cycle: string[] };
const ROOT = path.join(import.meta.dirname, "..", "..");
const SRC = path.join(ROOT, "src");
const SCRIPT = path.join(ROOT, "scripts", "import-cycles.mjs");

describe("import graph of src/", () => {
  it("has no import cycle", () => {
    expect((findCycles(SRC) as Cycle[]).map((c) => c.cycle.join(" -> "))).toEqual([]);
  });

  it("ui/ does not import cli/ (nor commands/)", () => {
    const graph = importGraph(SRC) as Map<string, string[]>;
    const up = [...graph].flatMap(([m, deps]) => (m.startsWith("ui/") ? deps.filter((d) => /^(cli|commands)\//.test(d)).map((d) => `${m} -> ${d}`) : []));
    expect(up).toEqual([]);
  });
});

describe("scripts/import-cycles.mjs", () => {
  const tree = (files: Record<string, string>): string => {
    const dir = tmpdir("pki-cycles-");
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    return dir;
  };

  it("finds a cycle through a multi-line import, a type import and a re-export; not through import()", () => {
    const dir = tree({
      "a/one.ts": 'import {\n  two,\n  other,\n} from "../b/two.js";\nexport const one = 1;\n',
      "b/two.ts": 'export { three as two } from "./three.js";\nexport const other = 2;\n',
      "b/three.ts": 'import type { One } from "../a/types.js";\nexport const three = 3;\n',
      "a/types.ts": 'import { one } from "./one.js";\nexport type One = typeof one;\n',
      "lazy.ts": 'export const load = () => import("./late.js");\n',
      "late.ts": 'import { load } from "./lazy.js";\nexport const x = load;\n',
    });
    expect(findCycles(dir) as Cycle[]).toEqual([{ modules: ["a/one.ts", "a/types.ts", "b/three.ts", "b/two.ts"], cycle: ["a/one.ts", "b/two.ts", "b/three.ts", "a/types.ts", "a/one.ts"] }]);
    const r = spawnSync(process.execPath, [SCRIPT, dir]);
    expect(r.status).toBe(1);
    expect(String(r.stdout)).toContain("a/one.ts -> b/two.ts -> b/three.ts -> a/types.ts -> a/one.ts");
  });

  it("a tree without cycles exits 0", () => {
    const dir = tree({ "x.ts": 'import { y } from "./y.js";\nexport const x = y;\n', "y.ts": 'import * as fs from "node:fs";\nexport const y = fs;\n' });
    expect(findCycles(dir)).toEqual([]);
    expect(spawnSync(process.execPath, [SCRIPT, dir]).status).toBe(0);
  });
});
