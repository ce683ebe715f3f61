/**
 * The review's data model: a workbook as plain values (no exceljs types), so every parsing and statistics step is a
 * pure function over these and can be unit-tested without reading an .xlsx file.
 */

/** One cell as pandas would see it after `read_excel`: text, number, boolean, or missing. */
export type Cell = string | number | boolean | null;

export interface SheetRow {
  /** Excel row number (1-based; the header is row 1), kept for error messages. */
  excelRow: number;
  cells: Record<string, Cell>;
}

export interface Sheet {
  /** 0-based position in the workbook (sheets are addressed by position, as the authors' code does). */
  index: number;
  name: string;
  /** Header cells in column order; `columnLetters[i]` is the Excel column of `columns[i]`. */
  columns: string[];
  columnLetters: string[];
  rows: SheetRow[];
}

export interface Workbook {
  file: string;
  /** Every sheet's name, in workbook order. */
  sheetNames: string[];
  /** The sheets read, from the first on (those the review addresses by position). */
  sheets: Sheet[];
}

/** Where a value came from, for error messages and warnings. */
export interface CellRef {
  sheet: string;
  row: number;
  column: string;
}

export type ContainsChildren = 'Adult Only' | 'Peds Only' | 'Peds & Adult' | 'Unknown';

/** One dataset row of an analysis category after parsing (METHODS A.2–A.6). */
export interface Dataset {
  /** Category key (`challenges`, `collections_datasets`, ...). */
  category: string;
  sheet: string;
  excelRow: number;
  /** The sheet's cells, forward-filled where A.2 says, plus demographics keys that filled missing cells (A.4). */
  cells: Record<string, Cell>;
  numPatients: number | null;
  numSequences: number | null;
  numImages: number | null;
  imputedNumPatients: boolean;
  containsChildren: ContainsChildren;
  propAdult: number | null;
  /** Per-modality proportions from the `Modalities` demographics key (A.6), or null. */
  modalityShares: Record<string, number> | null;
}

/** A row the authors' method silently skips or treats as missing; we count and report them. */
export interface ReviewWarning {
  kind: string;
  sheet: string;
  row: number;
  column: string;
  message: string;
}
