/**
 * `pki --help` without commander: the root help rendered from the command
 * table alone, exactly as commander renders it (test/cli/help-fast.test.ts
 * compares the two at several widths). Loading and configuring commander
 * costs more than node's own start-up budget for a help screen.
 */
import { COMMANDS, GLOBAL_OPTIONS, ROOT_DESCRIPTION, ROOT_HELP_AFTER } from "./program.js";

const MIN_WIDTH_TO_WRAP = 40;

/** commander's Help.boxWrap: wrap at whitespace, keep existing line breaks. */
function boxWrap(str: string, width: number): string {
  if (width < MIN_WIDTH_TO_WRAP) return str;
  const out: string[] = [];
  for (const line of str.split(/\r\n|\n/)) {
    const chunks = line.match(/[\s]*[^\s]+/g);
    if (chunks === null) {
      out.push("");
      continue;
    }
    let sum = [chunks.shift()!];
    let w = sum[0]!.length;
    for (const c of chunks) {
      if (w + c.length <= width) {
        sum.push(c);
        w += c.length;
        continue;
      }
      out.push(sum.join(""));
      const next = c.trimStart();
      sum = [next];
      w = next.length;
    }
    out.push(sum.join(""));
  }
  return out.join("\n");
}

/** commander's Help.formatItem. */
function formatItem(term: string, termWidth: number, description: string, helpWidth: number): string {
  if (!description) return "  " + term;
  const remaining = helpWidth - termWidth - 2 - 2;
  let desc: string;
  if (remaining < MIN_WIDTH_TO_WRAP || /\n[^\S\r\n]/.test(description)) desc = description;
  else desc = boxWrap(description, remaining).replace(/\n/g, "\n" + " ".repeat(termWidth + 2));
  return "  " + term.padEnd(termWidth) + "  " + desc.replace(/\n/g, "\n  ");
}

/** The text `pki --help` prints, for a terminal of `width` columns (commander's default 80 when not a terminal). */
export function rootHelp(width?: number): string {
  const helpWidth = width ?? 80;
  const options: Array<[string, string]> = [["-V, --version", "output the version number"], ...GLOBAL_OPTIONS.map(([t, d]): [string, string] => [t, d]), ["-h, --help", "display help for command"]];
  const commands: Array<[string, string]> = [
    ...COMMANDS.map((c): [string, string] => [`${c.name} [options]${c.args ? " " + c.args : ""}`, c.summary]),
    ["help [command]", "display help for command"],
  ];
  const termWidth = Math.max(...options.map((o) => o[0].length), ...commands.map((c) => c[0].length));
  const lines = [
    "Usage: pki [options] [command]",
    "",
    boxWrap(ROOT_DESCRIPTION, helpWidth),
    "",
    "Options:",
    ...options.map(([t, d]) => formatItem(t, termWidth, d, helpWidth)),
    "",
    "Commands:",
    ...commands.map(([t, d]) => formatItem(t, termWidth, d, helpWidth)),
    "",
  ];
  return lines.join("\n") + ROOT_HELP_AFTER + "\n";
}
