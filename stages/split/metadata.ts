/**
 * The split's metadata reader: CSV text → rows as strings (written back out) and the typed fields the recipe reads,
 * with pandas' `read_csv` semantics for what counts as missing. Anything pandas would read into a different meaning
 * than the recipe assumes — a label that is not 0/1/−1, an age that is text, negative or infinite, a row without a
 * patient, an image listed twice, rows of another dataset than `with.dataset` — is an error naming file, line, column
 * and value: never merged, never silently read as missing.
 */
import { parse } from 'csv-parse/sync';
import { parsePandasNumber } from '../lib/pandas-csv.js';
import { CHEXBERT_FINDINGS, DATASET_RULES, type MetaRow } from './recipe.js';

export type Row = Record<string, string>;


export class MetadataError extends Error {}

export interface Metadata {
  columns: string[];
  rows: Row[];
  meta: MetaRow[];
  /** The source line of each row (1-based; the header is line 1). */
  lines: number[];
}

/**
 * Parses and checks a metadata CSV. `dataset` (the stage's `with.dataset`) names the rules for files without a
 * `dset` column; with a `dset` column it must agree with every row.
 */
export function parseMetadata(text: string | Buffer, shown: string, dataset?: string): Metadata {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, { bom: true, skip_empty_lines: true, info: true }) as unknown as typeof records;
  } catch (e) {
    throw new MetadataError(`${shown} is not valid CSV: ${(e as Error).message}`);
  }
  if (records.length === 0) throw new MetadataError(`${shown} is empty (no header line).`);
  const columns = records[0]!.record;
  const has = (c: string) => columns.includes(c);
  const known = Object.keys(DATASET_RULES);
  const missing = ['image_id', 'patient_id'].filter((c) => !has(c));
  if (!has('dset') && dataset === undefined) missing.push('dset');
  if (missing.length) {
    throw new MetadataError(
      `${shown} lacks column(s) ${missing.join(', ')} (needed by the split recipe${missing.includes('dset') ? '; without a dset column, set with.dataset' : ''}).`,
    );
  }
  const rows: Row[] = [];
  const meta: MetaRow[] = [];
  const lines: number[] = [];
  const firstLine = new Map<string, number>();
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const row: Row = Object.fromEntries(columns.map((c, i) => [c, record[i] ?? '']));
    const at = (column: string, value: string, problem: string) =>
      new MetadataError(`${shown}, line ${line}, column "${column}": ${JSON.stringify(value)} ${problem}`);

    const fileDset = has('dset') ? row['dset']! : '';
    if (dataset !== undefined && has('dset') && fileDset !== dataset) {
      throw new MetadataError(
        `${shown}, line ${line}: the row is dataset ${JSON.stringify(fileDset)} but with.dataset is "${dataset}". The split ` +
          'rules are per dataset, so mixed metadata is never split by one dataset\'s rules: leave with.dataset out (each ' +
          'row\'s dset then picks its rules) or give a file of that dataset only.',
      );
    }
    const dset = dataset ?? fileDset;
    if (!known.includes(dset)) throw at('dset', dset, `is not a dataset with split rules (${known.join(', ')}).`);
    const rules = DATASET_RULES[dset]!;
    if (!rules.pediatric) {
      const lacking = ['age_years', 'Has Finding', 'Cardiomegaly'].filter((c) => !has(c));
      if (lacking.length) {
        throw new MetadataError(
          `${shown} lacks column(s) ${lacking.join(', ')}, needed to split ${dset} (healthy test by age, calibration and ` +
            'train/val draws).',
        );
      }
    }

    const num = (column: string, allowed?: readonly number[]): number => {
      const raw = (row[column] ?? '').trim();
      const v = parsePandasNumber(raw);
      if (v === undefined) throw at(column, raw, 'is not a number (an empty cell means missing).');
      if (allowed && !Number.isNaN(v) && !allowed.includes(v)) throw at(column, raw, `is not one of ${allowed.join(', ')} (or empty).`);
      return v;
    };
    const age = has('age_years') ? num('age_years') : NaN;
    if (age < 0) throw at('age_years', row['age_years']!, 'is a negative age.');
    const imageId = row['image_id']!;
    if (imageId === '') throw at('image_id', imageId, 'is empty: every row needs an image id.');
    const patientId = row['patient_id']!;
    if (patientId === '' && rules.onePerPatient) throw at('patient_id', patientId, `is empty: ${dset} keeps one image per patient.`);
    const key = `${dset}\u0000${imageId}`;
    const before = firstLine.get(key);
    if (before !== undefined) throw at('image_id', imageId, `is listed twice for ${dset} (lines ${before} and ${line}).`);
    firstLine.set(key, line);
    meta.push({
      dset,
      patientId,
      imageId,
      age,
      hasFinding: has('Has Finding') ? num('Has Finding', [0, 1]) : NaN,
      cardiomegaly: has('Cardiomegaly') ? num('Cardiomegaly', [1, 0, -1]) : NaN,
      uncertain: rules.chexbert && CHEXBERT_FINDINGS.some((f) => has(f) && num(f, [1, 0, -1]) === -1),
    });
    rows.push(row);
    lines.push(line);
  }
  return { columns, rows, meta, lines };
}
