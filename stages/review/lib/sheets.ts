import { workbookError } from './errors.js';
import type { Sheet, Workbook } from './types.js';

/** METHODS A.1: sheets are addressed by position; the name is checked so a deleted or moved sheet is caught. */
export const SHEETS = {
  papers: { index: 0, name: 'MIDL Papers' },
  midl_datasets: { index: 1, name: 'MIDL Datasets' },
  challenges: { index: 2, name: 'Challenges' },
  benchmarks: { index: 3, name: 'Benchmarks' },
  datasets: { index: 4, name: 'Well-Cited Datasets' },
  collections: { index: 5, name: 'Data Collections' },
  stanford_aimi: { index: 6, name: 'Data Collection (Stanford AIMI)' },
  tcia: { index: 7, name: 'Data Collection (TCIA)' },
  midrc_parsed: { index: 8, name: 'Data Collection (MIDRC)' },
  repackaging_1st: { index: 9, name: 'Repackaging (Primary)' },
  repackaging_2nd: { index: 10, name: 'Repackaging (Secondary)' },
  vqa_rad: { index: 11, name: 'Repackaging (VQA-RAD)' },
  medsam: { index: 12, name: 'Repackaging (MedSAM CT)' },
} as const;

export type SheetKey = keyof typeof SHEETS;

export const COL = {
  name: 'Dataset Name',
  sampleSize: 'Sample Size',
  pedsVsAdult: 'Peds vs. Adult',
  modality: 'Imaging Modality(ies)',
  taskCategory: 'Task Category',
  taskPathology: 'Task / Pathology',
  source: 'Source / Institutions (Location)',
  demographics: 'Patient Demographics / Covariates / Metadata',
  ageDocumentedHow: 'Age Documented How',
  dataLocation: 'Data Location',
  benchmark: 'Benchmark',
  imageCollection: 'Image Collection',
} as const;

/** Columns each analysis sheet must have (Task columns are optional: the MIDRC sheet has none). */
const ANALYSIS_COLUMNS = [COL.name, COL.sampleSize, COL.pedsVsAdult, COL.modality, COL.source, COL.demographics];

export const REQUIRED_COLUMNS: Partial<Record<SheetKey, readonly string[]>> = {
  papers: ['Modality', COL.pedsVsAdult, 'Private/Public Data', 'Is Age Explicitly Documented', COL.ageDocumentedHow],
  midl_datasets: [COL.name, COL.pedsVsAdult, COL.ageDocumentedHow],
  challenges: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow, COL.dataLocation],
  benchmarks: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow, COL.benchmark],
  datasets: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow],
  stanford_aimi: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow, COL.imageCollection],
  tcia: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow, COL.imageCollection],
  midrc_parsed: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow, COL.imageCollection],
  repackaging_1st: [...ANALYSIS_COLUMNS, 'Secondary Datasets', COL.ageDocumentedHow],
  repackaging_2nd: [...ANALYSIS_COLUMNS, COL.ageDocumentedHow],
  medsam: [...ANALYSIS_COLUMNS, 'Validation'],
};

/** The sheet of `key`, checked for position, name and required columns. */
export function getSheet(wb: Workbook, key: SheetKey): Sheet {
  const want = SHEETS[key];
  const sheet = wb.sheets[want.index];
  if (!sheet) {
    throw workbookError(
      wb.file,
      { sheet: want.name },
      `the sheet is missing: the review reads sheets by position and expects "${want.name}" as sheet ` +
        `${want.index + 1}, but the workbook has only ${wb.sheetNames.length} sheet(s). Restore the sheet (sheet order ` +
        `matters) or use the authors' workbook.`,
    );
  }
  if (sheet.name !== want.name) {
    throw workbookError(
      wb.file,
      { sheet: want.name },
      `the sheet is missing or out of place: sheet ${want.index + 1} should be "${want.name}" but is ` +
        `"${sheet.name}" (sheets are read by position; the workbook's sheets are: ` +
        `${wb.sheetNames.map((name) => `"${name}"`).join(', ')}).`,
    );
  }
  for (const column of REQUIRED_COLUMNS[key] ?? []) {
    if (!sheet.columns.includes(column)) {
      throw workbookError(
        wb.file,
        { sheet: sheet.name, row: 1, column },
        `the header row has no column "${column}", which the review needs. The columns present are: ` +
          `${sheet.columns.map((c) => `"${c}"`).join(', ')}.`,
      );
    }
  }
  return sheet;
}
