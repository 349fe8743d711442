// The README's error code table is what scripts rely on: it must list every code.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/core/errors.js";
import { ROOT } from "../helpers.js";

describe("README error codes", () => {
  it("lists every code of ERROR_CODES with its exit code", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    for (const code of Object.keys(ERROR_CODES)) {
      expect(readme, code).toMatch(new RegExp("\\| `" + code + "` \\| [12] \\|"));
    }
  });
});
