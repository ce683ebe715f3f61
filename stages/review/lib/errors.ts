import { StageError } from '../../../engine/stage-api.js';
import type { CellRef } from './types.js';

/** One clear paragraph naming workbook, sheet, Excel row and column, and what was expected. */
export function workbookError(file: string, ref: Partial<CellRef>, problem: string): StageError {
  const where = [
    ref.sheet !== undefined ? `sheet "${ref.sheet}"` : undefined,
    ref.row !== undefined ? `row ${ref.row}` : undefined,
    ref.column !== undefined ? `column "${ref.column}"` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join(', ');
  return new StageError(`review: ${file}${where ? `: ${where}` : ''}: ${problem}`);
}
