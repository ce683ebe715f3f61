import { PANDAS_NA_STRINGS } from '../../lib/pandas-csv.js';
import type { Cell } from './types.js';
import type { RawCell } from './xlsx.js';

/**
 * A cell as read from the .xlsx (lib/xlsx.ts) → what pandas would hold: its NA strings and NaN missing, dates as text.
 * The authors' code relies on this: a demographics cell that reads "N/A" is missing, not a line without ": ".
 */
export function toCell(value: RawCell | undefined): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return PANDAS_NA_STRINGS.has(value) ? null : value;
  if (typeof value === 'number') return Number.isNaN(value) ? null : value;
  if (typeof value === 'boolean') return value;
  return value.toISOString();
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
