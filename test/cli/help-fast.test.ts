import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/program.js";
import { rootHelp } from "../../src/cli/help.js";
import { pki } from "../helpers.js";

/** What commander itself prints for `pki --help` at a given width. */
function commanderHelp(width: number | undefined): string {
  let out = "";
  const program = buildProgram("0.1.0", async () => {});
  program.exitOverride();
  program.configureOutput({ writeOut: (s) => void (out += s), writeErr: () => {}, getOutHelpWidth: () => width as number });
  try {
    program.parse(["--help"], { from: "user" });
  } catch {
    /* commander.helpDisplayed */
  }
  return out;
}

describe("pki --help without commander", () => {
  it.each([undefined, 80, 120, 60, 30])("renders what commander renders (width %s)", (w) => {
    expect(rootHelp(w)).toBe(commanderHelp(w));
  });

  it("is what bin/pki prints, with exit 0", () => {
    const r = pki(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(commanderHelp(undefined));
    expect(pki(["-h"]).stdout).toBe(r.stdout);
  });
});
