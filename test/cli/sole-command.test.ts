/**
 * run.ts builds the program with only the command argv names (start-up
 * time: issue 17), unless help or version is asked for. What such a program
 * says of its command is what the whole program says; errors in use are
 * compared in the e2e suites through bin/pki.js.
 */
import { describe, expect, it } from "vitest";
import type { Command } from "commander";
import { buildProgram, COMMANDS } from "../../src/cli/program.js";
import { soleCommand } from "../../src/cli/run.js";

const noop = async () => {};
const sub = (p: Command, name: string) => p.commands.find((c) => c.name() === name)!;

describe("soleCommand", () => {
  it("names the command wherever the global options are, and nothing when help, version or an unknown command is asked for", () => {
    expect(soleCommand(["sign-csr", "a.csr", "--profile", "client"])).toBe("sign-csr");
    expect(soleCommand(["--dir", "issue", "--passphrase-file", "p", "crl"])).toBe("crl");
    expect(soleCommand(["-d", "x", "--json", "revoke", "ab"])).toBe("revoke");
    expect(soleCommand(["--store", "postgres://h/db", "export", "p12", "n"])).toBe("export");
    expect(soleCommand(["issue", "client", "x", "--help"])).toBeUndefined();
    expect(soleCommand(["-h"])).toBeUndefined();
    expect(soleCommand(["help", "issue"])).toBeUndefined();
    expect(soleCommand(["-V"])).toBeUndefined();
    expect(soleCommand(["signcsr"])).toBeUndefined();
    expect(soleCommand([])).toBeUndefined();
    expect(soleCommand(["--json"])).toBeUndefined();
  });

  it("a program built for one command describes it exactly as the whole program does", () => {
    const all = buildProgram("1.2.3", noop);
    for (const spec of COMMANDS) {
      const one = buildProgram("1.2.3", noop, spec.name);
      expect(one.commands.map((c) => c.name())).toEqual([spec.name]);
      expect(sub(one, spec.name).helpInformation()).toBe(sub(all, spec.name).helpInformation());
      for (const s of sub(all, spec.name).commands) expect(sub(sub(one, spec.name), s.name()).helpInformation()).toBe(s.helpInformation());
    }
  });
});
