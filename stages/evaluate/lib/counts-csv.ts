/**
 * `cardiomegaly_calib_counts.csv` exactly as pandas wrote it (METHODS B.6): columns
 * `age_bin,Pred. Count,Pred. Percentage,fpr_lower,fpr_upper`, bins in string order, floats in Python repr
 * (`30.4`, `0.0`), adult labels quoted because they contain a comma.
 */
import { parse } from 'csv-parse/sync';
import { csvText, pandasNumber } from '../../lib/pandas-csv.js';
import type { BinRate } from './fpr.js';

export const COUNTS_HEADER = ['age_bin', 'Pred. Count', 'Pred. Percentage', 'fpr_lower', 'fpr_upper'] as const;

export function formatCountsCsv(bins: BinRate[]): string {
  return csvText([
    [...COUNTS_HEADER],
    ...bins.map((b) => [
      b.ageBin, pandasNumber(b.count, 'int'), pandasNumber(b.percentage, 'float'), pandasNumber(b.ci.lower, 'float'),
      pandasNumber(b.ci.upper, 'float'),
    ]),
  ]);
}

export interface CountsRow {
  ageBin: string;
  count: number;
  percentage: number;
  lower: number;
  upper: number;
}

/** Read a counts CSV back (ours or the authors'). */
export function parseCountsCsv(text: string): CountsRow[] {
  const records = parse(text, { skip_empty_lines: true }) as string[][];
  const [header, ...rows] = records;
  if (!header || header.join(',') !== COUNTS_HEADER.join(',')) {
    throw new Error(`not a counts table: header is "${header?.join(',')}", expected "${COUNTS_HEADER.join(',')}"`);
  }
  return rows.map((r) => ({ ageBin: r[0]!, count: Number(r[1]), percentage: Number(r[2]), lower: Number(r[3]), upper: Number(r[4]) }));
}
