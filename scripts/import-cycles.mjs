#!/usr/bin/env node
/**
 * Import cycles among the TypeScript modules of a directory (default src/).
 * Static imports and re-exports count, `import type` too (a type cycle still
 * ties two layers together); dynamic import() does not (that is how commands
 * are loaded lazily). Prints one line per cycle, exits 1 if there is any.
 *   node scripts/import-cycles.mjs [dir]
 * test/unit/import-cycles.test.ts runs it on src/.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const STATIC = /^[ \t]*(?:import\s+(?:type\s+)?[\w${*][^;]*?\sfrom|export\s+(?:type\s+)?[*{][^;]*?\sfrom|import)\s*["']([^"']+)["']/gm;

/** module (path relative to dir) -> the modules of dir it imports */
export function importGraph(dir) {
  const graph = new Map();
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) graph.set(path.relative(dir, p), p);
    }
  };
  walk(dir);
  for (const [mod, file] of graph) {
    const deps = new Set();
    for (const m of fs.readFileSync(file, "utf8").matchAll(STATIC)) {
      if (!m[1].startsWith(".")) continue;
      const target = path.relative(dir, path.resolve(path.dirname(file), m[1].replace(/\.js$/, ".ts")));
      if (graph.has(target)) deps.add(target);
    }
    graph.set(mod, [...deps].sort());
  }
  return graph;
}

/**
 * One entry per strongly connected component of the import graph: its
 * modules, and one shortest cycle through the first of them (for the message).
 */
export function findCycles(dir) {
  const graph = importGraph(dir);
  const index = new Map(), low = new Map(), stack = [], on = new Set(), cycles = [];
  let n = 0;
  const connect = (v) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)) {
      if (!index.has(w)) connect(w), low.set(v, Math.min(low.get(v), low.get(w)));
      else if (on.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = [];
    for (let w; w !== v; ) on.delete((w = stack.pop())), scc.push(w);
    if (scc.length > 1 || graph.get(v).includes(v)) cycles.push({ modules: scc.sort(), cycle: shortestCycle(graph, scc[0], new Set(scc)) });
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return cycles.sort((a, b) => a.modules[0].localeCompare(b.modules[0]));
}

/** Breadth-first from start back to start, inside one component. */
function shortestCycle(graph, start, within) {
  const prev = new Map();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (w === start) {
        const out = [start];
        for (let x = v; x !== start; x = prev.get(x)) out.splice(1, 0, x);
        return [...out, start];
      }
      if (within.has(w) && !prev.has(w)) prev.set(w, v), queue.push(w);
    }
  }
  return [start, start];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = path.resolve(process.argv[2] ?? "src");
  const cycles = findCycles(dir);
  for (const c of cycles) console.log(`${c.cycle.join(" -> ")}   (all of: ${c.modules.join(", ")})`);
  console.log(cycles.length ? `${cycles.length} import cycle(s) in ${dir}` : `no import cycles in ${dir}`);
  process.exitCode = cycles.length ? 1 : 0;
}
