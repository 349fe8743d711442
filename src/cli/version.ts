/**
 * The version of pki, in one place: package.json's "version", read once here.
 * `pki --version` (bin/pki.js, without commander) and commander's -V both
 * print this; nothing else spells the number.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { INSTALL_DIR } from "../store/install-dir.js";

export const VERSION: string = (JSON.parse(readFileSync(path.join(INSTALL_DIR, "package.json"), "utf8")) as { version: string }).version;
