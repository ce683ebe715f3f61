import type { Cell } from './types.js';

/**
 * Strings pandas' `read_excel` turns into NaN by default (its `na_values`). The authors' code relies on this: a
 * demographics cell that reads "N/A" is missing, not a line without ": ".
 */
export const PANDAS_NA_STRINGS: ReadonlySet<string> = new Set([
  '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>', 'N/A', 'NA',
  'NULL', 'NaN', 'None', 'n/a', 'nan', 'null',
]);

/** Converts an exceljs cell value (plain, rich text, hyperlink, formula, date, error) into what pandas would read. */
export function toCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return PANDAS_NA_STRINGS.has(value) ? null : value;
  if (typeof value === 'number') return Number.isNaN(value) ? null : value;
  if (typeof value === 'boolean') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v.richText)) return toCell(richTextToString(v.richText));
    if ('hyperlink' in v && 'text' in v) return toCell(v.text);
    if ('formula' in v || 'sharedFormula' in v) return toCell(v.result);
    if ('error' in v) return null; // #N/A, #REF!...: pandas reads error cells as NaN
    if ('text' in v) return toCell(v.text);
  }
  return String(value);
}

function richTextToString(parts: unknown[]): string {
  return parts.map((p) => String((p as { text?: unknown }).text ?? '')).join('');
}

/** The cell as text if it is text (pandas `.str` accessors yield NaN for non-strings). */
export function str(cell: Cell | undefined): string | null {
  return typeof cell === 'string' ? cell : null;
}

/** Excel column letters of a 1-based column number (1 → A, 27 → AA). */
export function columnLetter(n: number): string {
  let s = '';
  for (let x = n; x > 0; x = Math.floor((x - 1) / 26)) s = String.fromCharCode(65 + ((x - 1) % 26)) + s;
  return s;
}
