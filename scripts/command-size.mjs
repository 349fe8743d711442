#!/usr/bin/env node
/**
 * The layering rules of #9 that are about the commands themselves, measured:
 *   - every function in src/commands/*.ts (the `run` bodies and their helpers)
 *     is at most 60 lines long, from its first line to its closing brace;
 *   - no command imports node:fs, the store's lock or its atomic writes;
 *   - no command imports another command (options.ts, shared option parsing, aside).
 * Prints one line per breach and exits 1 if there is any.
 *   node scripts/command-size.mjs [dir]
 * test/unit/command-size.test.ts runs it on src/commands.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export const MAX_LINES = 60;

/** every function-like node of a file with at least one line of body: { name, from, lines } */
export function functionSizes(file) {
  const text = fs.readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out = [];
  const nameOf = (n) => {
    if (n.name && ts.isIdentifier(n.name)) return n.name.text;
    const p = n.parent;
    if (p && ts.isVariableDeclaration(p) && ts.isIdentifier(p.name)) return p.name.text;
    if (p && ts.isPropertyAssignment(p) && ts.isIdentifier(p.name)) return p.name.text;
    return "(anonymous)";
  };
  const visit = (n) => {
    if ((ts.isFunctionDeclaration(n) || ts.isFunctionExpression(n) || ts.isArrowFunction(n) || ts.isMethodDeclaration(n)) && n.body) {
      const from = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
      const to = sf.getLineAndCharacterOfPosition(n.getEnd()).line + 1;
      out.push({ name: nameOf(n), from, lines: to - from + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

const FORBIDDEN = /from\s+["'](node:fs(?:\/promises)?|fs|[^"']*store\/lock\.js|[^"']*store\/atomic\.js)["']/g;
const SIBLING = /from\s+["']\.\/([^"']+)\.js["']/g;

export function breaches(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith(".ts")).sort()) {
    const file = path.join(dir, name);
    for (const f of functionSizes(file)) if (f.lines > MAX_LINES) out.push(`${name}:${f.from} ${f.name} is ${f.lines} lines (at most ${MAX_LINES})`);
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(FORBIDDEN)) out.push(`${name} imports ${m[1]} (CA state goes through CaStore, outputs through store/output.ts)`);
    for (const m of text.matchAll(SIBLING)) if (m[1] !== "options") out.push(`${name} imports the command ./${m[1]}.js (shared code belongs in src/ca/ or src/core/)`);
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "commands");
  const b = breaches(dir);
  for (const l of b) console.log(l);
  process.exit(b.length ? 1 : 0);
}
