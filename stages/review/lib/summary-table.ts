import { loadAll } from './load.js';
import { COL } from './sheets.js';
import { computeSummaryStats, type SummaryStats } from './summary.js';
import type { Dataset, Workbook } from './types.js';
import type { WarningLog } from './warnings.js';

/** METHODS A.9 `describe_peds_in_each_category`: the 14 rows of summary_stats.csv, in the authors' order. */
export function summaryTable(wb: Workbook, warnings: WarningLog): SummaryStats[] {
  return summaryRowSets(wb, warnings).map(({ index, rows }) => computeSummaryStats(index, rows));
}

/** The row set behind each of the 14 summary rows (A.9), labelled as in the CSV: what feeds each of its cells. */
export function summaryRowSets(wb: Workbook, warnings: WarningLog): Array<{ index: string; rows: Dataset[] }> {
  const load = (categories?: Parameters<typeof loadAll>[1]['categories'], excludeCancer = false) =>
    loadAll(wb, { categories, excludeCancer }, warnings);
  const where = (rows: Dataset[], column: string, value: string) => rows.filter((d) => d.cells[column] === value);

  const challenges = load(['challenges']);
  const benchmarks = load(['benchmarks']);
  return [
    { index: 'Dataset Collections', rows: load(['collections_datasets']) },
    { index: 'Collection tcia', rows: load(['tcia']) },
    { index: 'Collection midrc_parsed', rows: load(['midrc_parsed']) },
    { index: 'Collection stanford_aimi', rows: load(['stanford_aimi']) },
    { index: 'ML Challenges', rows: challenges },
    { index: 'ML Challenges (Grand Challenge)', rows: where(challenges, COL.dataLocation, 'Grand Challenge') },
    { index: 'ML Challenges (Kaggle)', rows: where(challenges, COL.dataLocation, 'Kaggle') },
    { index: 'Highly-Cited Datasets', rows: load(['datasets']) },
    { index: 'ML Benchmarks', rows: benchmarks },
    { index: 'Benchmarks (MSD)', rows: where(benchmarks, COL.benchmark, 'Medical Segmentation Decathlon') },
    { index: 'Benchmarks (MedFAIR)', rows: where(benchmarks, COL.benchmark, 'MedFAIR') },
    { index: 'Benchmarks (AMOS)', rows: where(benchmarks, COL.benchmark, 'AMOS') },
    { index: 'Total', rows: load() },
    { index: 'Total w/o Cancer', rows: load(undefined, true) },
  ];
}
