/** store/output.ts: which paths are inside the CA directory ("..x" is a name inside it, not its parent). */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { isCaState, outsideRel } from "../../src/store/output.js";

describe("inside or outside the CA directory", () => {
  it("outsideRel: .. and ../x are outside; ..x, x/..y and x are inside; an absolute path is outside", () => {
    for (const rel of ["..", `..${path.sep}x`, `..${path.sep}..${path.sep}y`, path.resolve("/elsewhere")]) expect(outsideRel(rel), rel).toBe(true);
    for (const rel of ["..x", "..export", `x${path.sep}..y`, "x", ""]) expect(outsideRel(rel), rel).toBe(false);
  });

  it("isCaState: a dot file named ..x in the CA directory is the CA's (dot files are); one in its parent is not", () => {
    expect(isCaState("/ca", "/ca/..x")).toBe(true);
    expect(isCaState("/ca", "/ca/.lock")).toBe(true);
    expect(isCaState("/ca", "/..x")).toBe(false);
    expect(isCaState("/ca", "/ca/out.crt")).toBe(false);
  });
});
