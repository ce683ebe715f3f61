/**
 * Tables as text (aligned columns under a dashed rule), Markdown and CSV: one renderer for every table pipe prints
 * (`pipe metrics`, `pipe exp show`, `pipe exp diff`). Cells are strings already formatted by the caller.
 */

export interface Table {
  header: string[];
  rows: string[][];
  /** Columns whose cells are right-aligned (numbers). */
  right?: ReadonlySet<number>;
}

/** Display width of a cell (code points: `Δ`, `…` and `✗` are one column each). */
export function width(s: string): number {
  return [...s].length;
}

function pad(s: string, w: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)));
  return right ? fill + s : s + fill;
}

export function columnWidths(t: Table): number[] {
  return t.header.map((h, i) => Math.max(width(h), ...t.rows.map((r) => width(r[i] ?? ''))));
}

/** The widest line `textTable` would print for these columns. */
export function tableWidth(t: Table): number {
  const w = columnWidths(t);
  return w.reduce((a, b) => a + b, 0) + 2 * Math.max(0, w.length - 1);
}

/** Columns two spaces apart, a dashed rule under the header; no trailing spaces. */
export function textTable(t: Table): string {
  const w = columnWidths(t);
  const line = (cells: string[]): string => cells.map((c, i) => pad(c ?? '', w[i]!, t.right?.has(i) ?? false)).join('  ').trimEnd();
  return [line(t.header), line(w.map((n) => '-'.repeat(n))), ...t.rows.map(line)].join('\n');
}

/** A GitHub-flavoured Markdown table (`|` in cells escaped). */
export function markdownTable(t: Table): string {
  const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const row = (cells: string[]): string => `| ${cells.map(esc).join(' | ')} |`;
  const rule = `|${t.header.map((_, i) => (t.right?.has(i) ? ' ---: ' : ' --- ')).join('|')}|`;
  return [row(t.header), rule, ...t.rows.map(row)].join('\n');
}

/** RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled. */
export function csvTable(t: Table): string {
  const field = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return [t.header, ...t.rows].map((r) => r.map(field).join(',')).join('\n');
}

/** How wide the terminal is: stdout's columns on a terminal, else $COLUMNS, else 80. */
export function terminalWidth(): number {
  const cols = process.stdout.isTTY ? process.stdout.columns : Number(process.env.COLUMNS);
  return Number.isInteger(cols) && cols > 20 ? cols : 80;
}
