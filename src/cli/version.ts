/**
 * The version of pki, in one place: package.json's "version", read once here.
 * `pki --version` (bin/pki.js, without commander) and commander's -V both
 * print this; nothing else spells the number.
 */
import { readFileSync } from "node:fs";

// src/cli/version.ts and dist/cli/version.js both sit two levels below package.json
export const VERSION: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
