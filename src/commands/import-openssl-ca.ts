/** pki import openssl-ca <dir>: adopt an `openssl ca` directory (see commands/import.ts and ca/import.ts). */
import { importCommand } from "./import.js";

export const run = importCommand("openssl-ca");
