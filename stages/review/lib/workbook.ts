import { existsSync } from 'node:fs';
import ExcelJS from 'exceljs';
import { workbookError } from './errors.js';
import { columnLetter, toCell } from './cells.js';
import type { Cell, Sheet, SheetRow, Workbook } from './types.js';

/**
 * Reads an .xlsx workbook into plain values. `displayPath` is the workspace-relative path used in error messages.
 * Fully empty rows are skipped (pandas trims them); header cells become column names.
 */
export async function readWorkbook(absPath: string, displayPath: string): Promise<Workbook> {
  const wb = new ExcelJS.Workbook();
  if (!existsSync(absPath)) throw workbookError(displayPath, {}, 'cannot read the workbook: the file does not exist.');
  try {
    await wb.xlsx.readFile(absPath);
  } catch (e) {
    throw workbookError(displayPath, {}, `cannot read the workbook as .xlsx: ${(e as Error).message}.`);
  }
  return { file: displayPath, sheets: wb.worksheets.map((ws, index) => readSheet(ws, index)) };
}

function readSheet(ws: ExcelJS.Worksheet, index: number): Sheet {
  const columns: string[] = [];
  const columnNumbers: number[] = [];
  ws.getRow(1).eachCell({ includeEmpty: false }, (cell, col) => {
    const name = toCell(cell.value);
    if (name === null) return;
    columns.push(String(name));
    columnNumbers.push(col);
  });
  const rows: SheetRow[] = [];
  ws.eachRow({ includeEmpty: false }, (row, rowNumber) => {
    if (rowNumber === 1) return;
    const cells: Record<string, Cell> = {};
    let any = false;
    columns.forEach((name, i) => {
      const raw = row.getCell(columnNumbers[i]!).value;
      if (raw !== null && raw !== undefined && raw !== '') any = true;
      cells[name] = toCell(raw);
    });
    if (any) rows.push({ excelRow: rowNumber, cells });
  });
  return { index, name: ws.name, columns, columnLetters: columnNumbers.map(columnLetter), rows };
}
