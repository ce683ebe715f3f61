// A small workbook in the authors' layout (13 sheets, in order), written with exceljs, for error and edge cases.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';

/** `columns` key the row values; `header`, when given, is what row 1 shows instead (e.g. a repeated name). */
export type SheetData = { name: string; rows: Array<Record<string, unknown>>; columns: string[]; header?: string[] };

const ANALYSIS = [
  'Dataset Name', 'Source / Institutions (Location)', 'Patient Demographics / Covariates / Metadata', 'Sample Size',
  'Imaging Modality(ies)', 'Peds vs. Adult', 'Age Documented How', 'Task / Pathology', 'Task Category',
];

/** The sheets of a valid mini workbook: 2 challenges, 2 benchmarks, 2 well-cited (one a duplicate), 3 collections. */
export function miniSheets(): SheetData[] {
  const ds = (name: string, sample: string, modality: string, peds: string, source: string, task: string, extra: Record<string, unknown> = {}) => ({
    'Dataset Name': name,
    'Source / Institutions (Location)': source,
    'Patient Demographics / Covariates / Metadata': 'Description: a study\nAge Range: 1 to 90 years',
    'Sample Size': sample,
    'Imaging Modality(ies)': modality,
    'Peds vs. Adult': peds,
    'Age Documented How': 'Patient-Level',
    'Task / Pathology': 'Pneumonia',
    'Task Category': task,
    ...extra,
  });
  return [
    { name: 'MIDL Papers', columns: ['Modality', 'Peds vs. Adult', 'Private/Public Data', 'Is Age Explicitly Documented', 'Age Documented How'],
      rows: [{ 'Modality': 'CT', 'Peds vs. Adult': 'Adult Only', 'Private/Public Data': 'Public', 'Is Age Explicitly Documented': true }] },
    { name: 'MIDL Datasets', columns: ['Dataset Name', 'Peds vs. Adult', 'Age Documented How'],
      rows: [{ 'Dataset Name': 'M1', 'Peds vs. Adult': 'Peds', 'Age Documented How': 'Patient-Level' }] },
    { name: 'Challenges', columns: [...ANALYSIS, 'Data Location'], rows: [
      ds('Chal A', 'Patients: 1,000\nImages: 2,000', 'X-ray', 'Peds, Adult (>90%)', 'Hosp A (USA)', 'Condition/Disease Classification', { 'Data Location': 'Kaggle' }),
      ds('Chal B', 'Patients: 500', 'CT', 'Adult', 'Hosp B (Spain)\nHosp C (USA)', 'Lesion/Tumor Segmentation/Detection', { 'Data Location': 'Grand Challenge' }),
    ] },
    { name: 'Benchmarks', columns: ['Benchmark', ...ANALYSIS], rows: [
      ds('Bench A', 'Sequences: 30', 'MRI', 'Peds', 'Hosp D (Canada)', 'Anatomy/Organ Segmentation/Detection', { Benchmark: 'MedFAIR' }),
      ds('Bench B', 'Patients: N/A\nImages: 10', 'X-ray', 'Peds, Adult', 'Hosp A (USA)', 'Condition/Disease Classification'),
    ] },
    { name: 'Well-Cited Datasets', columns: ANALYSIS, rows: [
      ds('Chal A', 'Patients: 7', 'X-ray', 'Adult', 'Hosp A (USA)', 'Condition/Disease Classification'),
      ds('Data C', 'Images: 40', 'Fundus', 'Adult', 'Clinic E (Germany)', 'Condition/Disease Classification'),
    ] },
    { name: 'Data Collections', columns: ['Image Collection', 'Dataset Name'], rows: [] },
    { name: 'Data Collection (Stanford AIMI)', columns: ['Image Collection', ...ANALYSIS], rows: [
      ds('Aimi 1', 'Patients: 200', 'US', 'Peds', 'Hosp F (USA)', 'Anatomy/Organ Segmentation/Detection', { 'Image Collection': 'Stanford AIMI' }),
    ] },
    { name: 'Data Collection (TCIA)', columns: ['Image Collection', ...ANALYSIS], rows: [
      ds('Tcia 1', 'Patients: 300', 'CT', 'Adult', 'Hosp G (USA)', 'Lesion/Tumor Segmentation/Detection', { 'Image Collection': 'TCIA' }),
    ] },
    { name: 'Data Collection (MIDRC)', columns: ['Image Collection', ...ANALYSIS.slice(0, 7)], rows: [
      ds('Midrc 1', 'Patients: 400', 'X-ray', 'Adult', 'MIDRC (USA)', '', { 'Image Collection': 'MIDRC' }),
    ] },
    { name: 'Repackaging (Primary)', columns: [...ANALYSIS, 'Secondary Datasets'], rows: [
      ds('Prim 1', 'Patients: 10', 'CT', 'Adult', 'Hosp A (USA)', '', { 'Secondary Datasets': 'Sec 1' }),
    ] },
    { name: 'Repackaging (Secondary)', columns: ANALYSIS, rows: [ds('Sec 1', 'Patients: 10', 'CT', 'Adult', 'Hosp A (USA)', '')] },
    { name: 'Repackaging (VQA-RAD)', columns: ['vqa_url'], rows: [{ vqa_url: 'x' }] },
    { name: 'Repackaging (MedSAM CT)', columns: [...ANALYSIS, 'Validation'], rows: [
      ds('Sam 1', 'Patients: 10', 'CT', 'Peds, Adult (>50%)', 'Hosp A (USA)', '', { Validation: 'Internal' }),
    ] },
  ];
}

/** Write sheets to a fresh temp .xlsx and return its path. */
export async function writeWorkbook(sheets: SheetData[]): Promise<string> {
  const wb = new ExcelJS.Workbook();
  for (const s of sheets) {
    const ws = wb.addWorksheet(s.name);
    ws.addRow(s.header ?? s.columns);
    for (const r of s.rows) ws.addRow(s.columns.map((c) => (r[c] === '' ? null : r[c] ?? null)));
  }
  const file = join(await mkdtemp(join(tmpdir(), 'review-wb-')), 'workbook.xlsx');
  await wb.xlsx.writeFile(file);
  return file;
}
