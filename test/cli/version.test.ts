/** The version lives in package.json only: both ways of printing it agree with it. */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../src/cli/version.js";
import { pki } from "../helpers.js";

const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };

describe("pki --version", () => {
  it("is package.json's version, on the fast path and through commander", () => {
    expect(VERSION).toBe(pkg.version);
    const fast = pki(["--version"]);
    expect(fast.code).toBe(0);
    expect(fast.stdout).toBe(pkg.version + "\n");
    const full = pki(["--no-color", "-V"]); // more than one word: commander answers
    expect(full.code).toBe(0);
    expect(full.stdout).toBe(pkg.version + "\n");
  });

  it("no other source file spells the number", () => {
    const root = path.join(import.meta.dirname, "..", "..");
    const quoted = new RegExp(`["'\`]${pkg.version.replace(/\./g, "\\.")}(?![\\d.])`);
    const hits: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|js|mjs|service|timer)$/.test(e.name) && quoted.test(fs.readFileSync(p, "utf8"))) hits.push(path.relative(root, p));
      }
    };
    for (const d of ["src", "bin", "templates"]) walk(path.join(root, d));
    expect(hits).toEqual([]);
  });
});
