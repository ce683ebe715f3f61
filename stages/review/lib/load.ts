import { str } from './cells.js';
import { parseDemographics } from './demographics.js';
import { workbookError } from './errors.js';
import { parseModalityShares } from './modality-shares.js';
import { parsePedsVsAdult, type AgeGroup } from './peds-adult.js';
import { imputeSampleSize, parseSampleSize, type SampleSize } from './sample-size.js';
import { COL, getSheet, type SheetKey } from './sheets.js';
import type { Cell, Dataset, Workbook } from './types.js';
import { WarningLog } from './warnings.js';

/** A sheet key, or the union of the three collection sheets (A.2). */
export type Category = SheetKey | 'collections_datasets';

/** The main analysis set, in load order (A.2 `load_all`). */
export const ANALYSIS_CATEGORIES: readonly Category[] = ['challenges', 'benchmarks', 'datasets', 'collections_datasets'];

export interface RawRow {
  category: Category;
  sheet: string;
  excelRow: number;
  cells: Record<string, Cell>;
}

/** METHODS A.7: the "w/o Cancer" keywords, matched case-insensitively in these columns (missing cells never match). */
export const CANCER_REGEX = /tcia|cancer|tumor|tumour|carcinoma|sarcoma|glioma|metastasis|metastases/i;
const CANCER_COLUMNS = [COL.name, 'Description', 'Inclusion Criteria', COL.taskPathology];

const PAPER_MODALITIES = ['CT', 'MRI', 'X-ray', 'Ultrasound', 'Fundus'];

/** METHODS A.2 step 1: the rows of one category as the authors load them (no parsing yet). */
export function rawRows(wb: Workbook, category: Category): RawRow[] {
  if (category === 'collections_datasets') {
    const rows = (['midrc_parsed', 'stanford_aimi', 'tcia'] as const).flatMap((key) => sheetRows(wb, key, category));
    return forwardFill(rows, COL.imageCollection);
  }
  let rows = sheetRows(wb, category, category);
  const columns = getSheet(wb, category).columns;
  if (category === 'benchmarks') rows = forwardFill(rows, COL.benchmark);
  if (columns.includes(COL.imageCollection)) rows = forwardFill(rows, COL.imageCollection);
  if (category === 'papers') {
    rows = rows
      .filter((r) => r.cells[COL.pedsVsAdult] !== null)
      .map((r): RawRow => ({ ...r, cells: { ...r.cells, [COL.modality]: r.cells['Modality'] ?? null } }))
      .filter((r) => {
        const m = str(r.cells[COL.modality]);
        return (
          m !== null &&
          PAPER_MODALITIES.some((x) => m.includes(x)) &&
          !m.includes('Exclusion Criteria') &&
          r.cells['Private/Public Data'] !== 'Simulated'
        );
      });
  }
  if (category === 'repackaging_2nd') rows = rows.filter((r) => r.cells[COL.name] !== 'KiTS23');
  return rows;
}

function sheetRows(wb: Workbook, key: SheetKey, category: Category): RawRow[] {
  const sheet = getSheet(wb, key);
  return sheet.rows.map((r) => ({ category, sheet: sheet.name, excelRow: r.excelRow, cells: { ...r.cells } }));
}

/** pandas `ffill` on one column: a missing cell takes the value above. */
function forwardFill(rows: RawRow[], column: string): RawRow[] {
  let last: Cell = null;
  return rows.map((r) => {
    const v = r.cells[column] ?? null;
    if (v !== null) last = v;
    return v === null && last !== null ? { ...r, cells: { ...r.cells, [column]: last } } : r;
  });
}

type At = (column: string) => { sheet: string; row: number; column: string };

/**
 * METHODS A.3–A.6 for one raw row. Unparseable sample sizes, demographics and modality shares are errors (the
 * authors' code would silently skip that step for the whole category); values the authors treat as missing in
 * `Peds vs. Adult` are kept missing and warned about.
 */
export function parseRow(wb: Workbook, raw: RawRow, warnings: WarningLog): Dataset {
  const at: At = (column) => ({ sheet: raw.sheet, row: raw.excelRow, column });
  const modalityText = str(raw.cells[COL.modality]);
  const size = imputeSampleSize(sampleSizeOf(wb, raw, at), modalityText);
  const cells = withDemographics(wb, raw, at);
  const age = ageGroupOf(wb, raw, at, warnings);
  return {
    category: raw.category,
    sheet: raw.sheet,
    excelRow: raw.excelRow,
    cells,
    numPatients: size.patients,
    numSequences: size.sequences,
    numImages: size.images,
    imputedNumPatients: size.imputedNumPatients,
    containsChildren: age.containsChildren,
    propAdult: age.propAdult,
    modalityShares: modalitySharesOf(wb, cells, at),
  };
}

/** A.3: the `Sample Size` cell's counts; a bare number or a line without an integer is an error. */
function sampleSizeOf(wb: Workbook, raw: RawRow, at: At): SampleSize {
  const cell = raw.cells[COL.sampleSize] ?? null;
  if (cell !== null && typeof cell !== 'string') {
    throw workbookError(wb.file, at(COL.sampleSize),
      `the sample size is the bare ${typeof cell} ${JSON.stringify(cell)}; expected lines like ` +
        `"Patients: 1,234", "Sequences: 50" or "Images: 9,000" so that it is clear what is counted.`);
  }
  const parsed = parseSampleSize(cell);
  if (!parsed.ok) {
    throw workbookError(wb.file, at(COL.sampleSize),
      `cannot parse the sample size line ${JSON.stringify(parsed.line)}: ${parsed.reason} (one count per line, ` +
        `e.g. "Patients: 1,234"; lines containing "N/A" are ignored).`);
  }
  for (const [kind, n] of Object.entries(parsed.value)) {
    // The authors' int() takes "-40" and the count would quietly subtract patients from every total.
    if (n !== null && n < 0) {
      throw workbookError(wb.file, at(COL.sampleSize),
        `the ${kind} count adds up to ${n} in ${JSON.stringify(cell)}; counts cannot be negative.`);
    }
  }
  return parsed.value;
}

/** A.4: the row's cells plus its demographics keys, which only fill cells that are missing. */
function withDemographics(wb: Workbook, raw: RawRow, at: At): Record<string, Cell> {
  const demo = parseDemographics(raw.cells[COL.demographics] ?? null);
  if (!demo.ok) {
    throw workbookError(wb.file, at(COL.demographics),
      `line ${demo.lineNumber} of the demographics cell, ${JSON.stringify(demo.line)}, is not "Key: Value" with ` +
        `exactly one ": " (write e.g. "Age Range: 18 to 90"; a cell that is just "N/A" counts as empty).`);
  }
  const cells: Record<string, Cell> = { ...raw.cells };
  for (const [key, value] of Object.entries(demo.value)) {
    if (cells[key] === undefined || cells[key] === null) cells[key] = value;
  }
  return cells;
}

/** A.5, warning where the authors silently fall back to "unknown". */
function ageGroupOf(wb: Workbook, raw: RawRow, at: At, warnings: WarningLog): AgeGroup {
  const cell = raw.cells[COL.pedsVsAdult] ?? null;
  const age = parsePedsVsAdult(cell);
  if (age.propAdult !== null && !(age.propAdult >= 0 && age.propAdult <= 1)) {
    // Python's float() takes "nan", "inf" and "150": the share would poison every sum it enters (NaN children,
    // negative children), where the authors' code carries on.
    throw workbookError(wb.file, at(COL.pedsVsAdult),
      `${JSON.stringify(cell)}: the share of adults must be a percentage from 0 to 100, got ` +
        `${String(age.propAdult * 100)}; write e.g. "Peds, Adult (>97.5%)".`);
  }
  if (age.unparsedPercentage !== undefined) {
    warnings.add({
      kind: 'unparsed_peds_percentage',
      ...at(COL.pedsVsAdult),
      message:
        `"${age.unparsedPercentage}": the percentage is not a number; the share of adults is treated as unknown, ` +
        'so the dataset is left out of the patient counts',
    });
  }
  if (cell !== null && age.containsChildren === 'Unknown') {
    warnings.add({
      kind: 'unrecognised_peds_vs_adult',
      ...at(COL.pedsVsAdult),
      message:
        `${JSON.stringify(cell)} is none of "Adult…", "Peds", "Peds, Adult (…%)"; the dataset counts as Unknown ` +
        'and is left out of the patient counts',
    });
  }
  return age;
}

/** A.6: the `Modalities` demographics key as a map, or null when the dataset has none. */
function modalitySharesOf(wb: Workbook, cells: Record<string, Cell>, at: At): Record<string, number> | null {
  const text = str(cells['Modalities']);
  if (text === null) return null;
  const shares = parseModalityShares(text);
  if (!shares.ok) {
    throw workbookError(wb.file, at(COL.demographics),
      `the "Modalities" line ${JSON.stringify(text)} has the part ${JSON.stringify(shares.part)} without ` +
        `a percentage; expected e.g. "Modalities: CT (83.3%), MRI (17.7%)".`);
  }
  for (const [modality, share] of Object.entries(shares.value)) {
    if (!(share >= 0 && share <= 1)) {
      throw workbookError(wb.file, at(COL.demographics),
        `the "Modalities" line ${JSON.stringify(text)} gives ${modality} ${String(share * 100)}%; each share must be ` +
          'a percentage from 0 to 100.');
    }
  }
  return shares.value;
}

export function isCancerDataset(d: Dataset): boolean {
  return CANCER_COLUMNS.some((c) => {
    const v = str(d.cells[c]);
    return v !== null && CANCER_REGEX.test(v);
  });
}

export interface LoadOptions {
  excludeCancer?: boolean;
}

/** One category, parsed, optionally without cancer datasets (A.7 applies per category, before de-duplication). */
export function loadCategory(wb: Workbook, category: Category, opts: LoadOptions, warnings: WarningLog): Dataset[] {
  const rows = rawRows(wb, category).map((r) => parseRow(wb, r, warnings));
  return opts.excludeCancer ? rows.filter((d) => !isCancerDataset(d)) : rows;
}

/** A.2 `load_all`: categories in order, concatenated, de-duplicated on the exact `Dataset Name` (first kept). */
export function loadAll(
  wb: Workbook,
  opts: LoadOptions & { categories?: readonly Category[] },
  warnings: WarningLog,
): Dataset[] {
  const all = (opts.categories ?? ANALYSIS_CATEGORIES).flatMap((c) => loadCategory(wb, c, opts, warnings));
  const seen = new Set<string>();
  return all.filter((d) => {
    // pandas drop_duplicates treats all missing names as equal; type-tag so 1 and "1" stay distinct.
    const name = d.cells[COL.name] ?? null;
    const key = name === null ? 'null' : `${typeof name}:${String(name)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A.8 "filtered": both the share of adults and the patient count are known. */
export function isUsable(d: Dataset): boolean {
  return d.propAdult !== null && d.numPatients !== null;
}
