/**
 * Colours for human output (chalk lives here only). Off unless the Context
 * says colours are wanted (a terminal, no NO_COLOR, no --no-color) and the
 * stream the text goes to is itself a terminal: a pipe never gets escapes.
 */
import { Chalk } from "chalk";

/** What colouring needs of the CLI's Context (ui/ sits below cli/ and does not import it). */
export interface ColourSettings {
  color: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface Palette {
  ok(s: string): string;
  bad(s: string): string;
  warn(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
  label(s: string): string;
}

export function palette(ctx: ColourSettings, stream: "stdout" | "stderr" = "stdout"): Palette {
  const s = (stream === "stdout" ? ctx.stdout : ctx.stderr) as NodeJS.WritableStream & { isTTY?: boolean };
  const c = new Chalk({ level: ctx.color && s.isTTY === true ? 1 : 0 });
  return { ok: c.green, bad: c.red, warn: c.yellow, dim: c.dim, bold: c.bold, label: c.cyan };
}

/** Colour a certificate status word the same way everywhere. */
export function statusColour(p: Palette, status: string): string {
  if (status === "valid") return p.ok(status);
  if (status === "revoked") return p.bad(status);
  return p.warn(status);
}
