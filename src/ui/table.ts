/**
 * The tables of `pki list` and `pki status`: a bold header, each column
 * padded to its widest cell (the last one not padded), the status column
 * coloured, an optional note after a row. Pure.
 *
 * Widths are found by a loop: a spread of every row into Math.max (one
 * argument per certificate) overflows the stack past ~120,000 rows.
 */
import { statusColour, type Palette } from "./colors.js";

function columnWidths(head: readonly string[], cells: readonly (readonly string[])[]): number[] {
  const width = head.map((h) => h.length);
  for (const row of cells) {
    for (let k = 0; k < width.length; k++) {
      const n = row[k]!.length;
      if (n > width[k]!) width[k] = n;
    }
  }
  return width;
}

export function renderTable(p: Palette, head: readonly string[], cells: readonly (readonly string[])[], statusColumn: number, note?: (row: number) => string | undefined): string {
  const width = columnWidths(head, cells);
  const last = head.length - 1;
  const pad = (s: string, k: number) => (k === last ? s : s.padEnd(width[k]!));
  const lines = [p.bold(head.map(pad).join("  "))];
  for (let n = 0; n < cells.length; n++) {
    const row = cells[n]!.map((v, k) => (k === statusColumn ? statusColour(p, v) + " ".repeat(width[k]! - v.length) : pad(v, k))).join("  ");
    const after = note?.(n);
    lines.push(after ? row + "  " + after : row);
  }
  return lines.join("\n");
}
