import { pandasCell, pandasNumber } from '../../lib/pandas-csv.js';
import type { Cell } from './types.js';

/**
 * The dtype pandas gives a workbook column after the authors' `read_excel` + `concat` (pandas 2, as the published
 * tables show): booleans stay booleans only when no cell is missing, else the column is float64 (True → 1.0); whole
 * numbers stay int64 only when none is missing; any text makes it an object column (each value written as is).
 */
export type PandasKind = 'bool' | 'int' | 'float' | 'object';

export function pandasKind(cells: Iterable<Cell | undefined>): PandasKind {
  let missing = false;
  let bools = 0;
  let numbers = 0;
  let integral = true;
  for (const c of cells) {
    if (c === null || c === undefined) missing = true;
    else if (typeof c === 'string') return 'object';
    else if (typeof c === 'boolean') bools++;
    else {
      numbers++;
      if (!Number.isInteger(c)) integral = false;
    }
  }
  if (bools > 0 && numbers === 0 && !missing) return 'bool';
  if (numbers > 0 && bools === 0 && integral && !missing) return 'int';
  return 'float';
}

/** A workbook cell as pandas writes it in a column of `kind` (missing → ""). */
export function cellText(cell: Cell | undefined, kind: PandasKind = 'object'): string {
  if (cell === null || cell === undefined) return '';
  if (kind === 'float' && typeof cell !== 'string') return pandasNumber(Number(cell), 'float');
  return pandasCell(cell);
}
