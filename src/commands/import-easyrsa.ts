/** pki import easyrsa <dir>: adopt an easy-rsa 3 PKI (see commands/import.ts and ca/import.ts). */
import { importCommand } from "./import.js";

export const run = importCommand("easyrsa");
