/**
 * CSV as pandas `DataFrame.to_csv(index=False)` writes it — the one way kinds write tables that sit next to the
 * authors' (review tables, counts tables, tidy tables). Rows go through csv-stringify (Python csv's QUOTE_MINIMAL:
 * a field is quoted when it holds the delimiter, a quote or a line break; "\n" line ends); numbers go through one
 * formatter with pandas' rules, so every kind prints 5e-05, 1e+16, 30.0 and 0.4337 the same way.
 */
import { stringify } from 'csv-stringify/sync';
import { pyFloatRepr } from './pynum.js';

/**
 * One cell of a numeric column. `float`: a float64 column (integral values keep ".0"); `int`: an int64 column;
 * `auto`: a column pandas holds as objects (Python ints stay "266", floats are repr'd). Missing (null/NaN) → "".
 */
export function pandasNumber(x: number | null | undefined, dtype: 'float' | 'int' | 'auto' = 'auto'): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '';
  if (dtype === 'int' || (dtype === 'auto' && Number.isInteger(x) && Math.abs(x) < 1e16)) {
    if (!Number.isInteger(x)) throw new RangeError(`${x} is not an integer (int64 column)`);
    return String(x);
  }
  return pyFloatRepr(x);
}

/** A cell of any type, as pandas writes an object column: text as is, booleans True/False, numbers as `auto`. */
export function pandasCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return pandasNumber(v, 'auto');
  return String(v);
}

/** Strings pandas' `read_csv` / `read_excel` read as NaN by default (`na_values`). */
export const PANDAS_NA_STRINGS: ReadonlySet<string> = new Set([
  '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>', 'N/A', 'NA',
  'NULL', 'NaN', 'None', 'n/a', 'nan', 'null',
]);

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A numeric CSV cell as pandas reads it: NaN for a missing value, 1/0 for its booleans (True/TRUE/true…), the number
 * for decimal text; undefined for anything else (text, hex, "Infinity", a value that overflows) — which a reader must
 * refuse rather than take as missing.
 */
export function parsePandasNumber(text: string | undefined): number | undefined {
  const t = (text ?? '').trim();
  if (PANDAS_NA_STRINGS.has(t)) return NaN;
  if (t === 'True' || t === 'TRUE' || t === 'true') return 1;
  if (t === 'False' || t === 'FALSE' || t === 'false') return 0;
  if (!DECIMAL.test(t)) return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

/** Rows of already-formatted cells (header first) → CSV text with "\n" line ends and a final newline. */
export function csvText(rows: ReadonlyArray<ReadonlyArray<string>>): string {
  return stringify(rows as string[][], { record_delimiter: '\n', eof: true });
}

/** Records → CSV text with the given columns as header; each value through `pandasCell`. */
export function recordsCsv(records: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): string {
  return csvText([[...columns], ...records.map((r) => columns.map((c) => pandasCell(r[c])))]);
}
