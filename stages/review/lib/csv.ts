import { pyFloatRepr } from './python.js';
import type { Cell } from './types.js';

/** A field as Python's csv module writes it (QUOTE_MINIMAL): quoted when it holds a comma, quote or line break. */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Rows → CSV text with "\n" line ends, as pandas `to_csv` writes them. */
export function toCsv(rows: ReadonlyArray<ReadonlyArray<string>>): string {
  return rows.map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

/** A workbook cell as pandas writes it: missing → "", booleans → True/False, numbers as read. */
export function cellText(cell: Cell | undefined): string {
  if (cell === null || cell === undefined) return '';
  if (typeof cell === 'boolean') return cell ? 'True' : 'False';
  if (typeof cell === 'number') return Number.isInteger(cell) ? String(cell) : pyFloatRepr(cell);
  return cell;
}

/** A float column value as pandas writes it (NaN → ""). */
export function floatText(x: number | null): string {
  return x === null || Number.isNaN(x) ? '' : pyFloatRepr(x);
}
