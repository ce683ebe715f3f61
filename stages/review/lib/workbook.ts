import { existsSync } from 'node:fs';
import { workbookError } from './errors.js';
import { columnLetter, toCell } from './cells.js';
import { SHEETS } from './sheets.js';
import type { Cell, Sheet, SheetRow, Workbook } from './types.js';
import { readXlsx, XlsxLimitError, type RawSheet, type XlsxLimits } from './xlsx.js';

/** Sheets the review reads: up to the last one it addresses by position (A.1). */
const SHEETS_READ = Math.max(...Object.values(SHEETS).map((s) => s.index)) + 1;

/** Default sheet-count bound (the authors' workbook has 15). */
export const DEFAULT_MAX_SHEETS = 64;

/**
 * Limits of a read within a memory budget: the XML read may expand to 1/8 of it and the cells held are 1/256 of it in
 * number (a held cell costs well under 256 bytes). At the kind's 512 MiB: a 64 MiB file, 64 MiB of XML, 2 Mi cells —
 * the authors' workbook is 0.2 MB, 1.2 MB of XML and 8,000 cells.
 */
export function workbookLimits(memBytes: number, maxSheets = DEFAULT_MAX_SHEETS): XlsxLimits {
  return {
    maxFileBytes: Math.floor(memBytes / 8),
    maxExpandedBytes: Math.floor(memBytes / 8),
    maxCells: Math.floor(memBytes / 256),
    maxSheets,
  };
}

const HOW_TO_RAISE: Record<keyof XlsxLimits, string> = {
  maxFileBytes: 'raise the review stage\'s memory budget (`resources: { mem: 2G }` on the stage; the limit is 1/8 of it)',
  maxExpandedBytes: 'raise the review stage\'s memory budget (`resources: { mem: 2G }` on the stage; the limit is 1/8 of it)',
  maxCells: 'raise the review stage\'s memory budget (`resources: { mem: 2G }` on the stage; one cell per 256 bytes of it)',
  maxSheets: 'raise `with.max_sheets` of the review stage',
};

/**
 * Reads an .xlsx workbook into plain values within `limits` (streaming; only the sheets the review addresses are
 * decompressed). `displayPath` is the workspace-relative path used in error messages. Fully empty rows are skipped
 * (pandas drops blank lines); header cells become column names.
 */
export async function readWorkbook(
  absPath: string,
  displayPath: string,
  limits: XlsxLimits = workbookLimits(512 * 1024 * 1024),
): Promise<Workbook> {
  if (!existsSync(absPath)) throw workbookError(displayPath, {}, 'cannot read the workbook: the file does not exist.');
  let raw;
  try {
    raw = await readXlsx(absPath, limits, SHEETS_READ);
  } catch (e) {
    if (e instanceof XlsxLimitError) {
      throw workbookError(displayPath, {}, `the workbook is too large to read within the stage's limits: ${e.found}, ` +
        `where ${limitText(e.limit, e.value)} is allowed. To read it, ${HOW_TO_RAISE[e.limit]}.`);
    }
    throw workbookError(displayPath, {}, `cannot read the workbook as .xlsx: ${(e as Error).message}.`);
  }
  return { file: displayPath, sheetNames: raw.sheetNames, sheets: raw.sheets.map((s, index) => readSheet(s, index)) };
}

function limitText(limit: keyof XlsxLimits, value: number): string {
  const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;
  switch (limit) {
    case 'maxFileBytes': return `a file of ${bytes(value)}`;
    case 'maxExpandedBytes': return `${bytes(value)} of XML`;
    case 'maxCells': return `${value} cells`;
    case 'maxSheets': return `${value} sheets`;
  }
}

/**
 * pandas' header de-duplication (python parser, `mangle_dupe_cols`): a repeated name becomes "name.1", "name.2"…,
 * skipping names the header already has — so the first "Sample Size" stays "Sample Size", as the authors read it.
 */
export function mangleDuplicateColumns(names: readonly string[]): string[] {
  const out = [...names];
  const counts = new Map<string, number>();
  for (let i = 0; i < out.length; i++) {
    const old = out[i]!;
    let col = old;
    let cur = counts.get(col) ?? 0;
    if (cur > 0) {
      while (cur > 0) {
        counts.set(old, cur + 1);
        col = `${old}.${cur}`;
        cur = out.includes(col) ? cur + 1 : (counts.get(col) ?? 0);
      }
      out[i] = col;
    }
    counts.set(col, cur + 1);
  }
  return out;
}

function readSheet(raw: RawSheet, index: number): Sheet {
  const names: string[] = [];
  const columnNumbers: number[] = [];
  const header = raw.rows.get(1) ?? new Map();
  for (const col of [...header.keys()].sort((a, b) => a - b)) {
    const name = toCell(header.get(col));
    if (name === null) continue;
    names.push(String(name));
    columnNumbers.push(col);
  }
  const columns = mangleDuplicateColumns(names);
  const rows: SheetRow[] = [];
  for (const rowNumber of [...raw.rows.keys()].sort((a, b) => a - b)) {
    if (rowNumber === 1) continue;
    const row = raw.rows.get(rowNumber)!;
    const cells: Record<string, Cell> = {};
    let any = false;
    columns.forEach((name, i) => {
      const value = row.get(columnNumbers[i]!) ?? null;
      if (value !== null && value !== '') any = true;
      cells[name] = toCell(value);
    });
    if (any) rows.push({ excelRow: rowNumber, cells });
  }
  return { index, name: raw.name, columns, columnLetters: columnNumbers.map(columnLetter), rows };
}
