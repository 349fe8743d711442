/**
 * Where pki is installed: the directory holding its package.json (and
 * templates/). Found by walking up from this module, because the module sits
 * at different depths in src/ (tests), dist/ (tsc) and dist/bundle/chunks/
 * (the bundle bin/pki.js runs): two or three stat calls, once.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

function installDir(): string {
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let d = start; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, "package.json"))) return d;
    if (path.dirname(d) === d) throw new Error(`pki's package.json was not found above ${start}: reinstall pki`);
  }
}

export const INSTALL_DIR: string = installDir();
