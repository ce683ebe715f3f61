import { loadAll } from './load.js';
import { COL } from './sheets.js';
import { computeSummaryStats, type SummaryStats } from './summary.js';
import type { Dataset, Workbook } from './types.js';
import type { WarningLog } from './warnings.js';

/** METHODS A.9 `describe_peds_in_each_category`: the 14 rows of summary_stats.csv, in the authors' order. */
export function summaryTable(wb: Workbook, warnings: WarningLog): SummaryStats[] {
  const load = (categories?: Parameters<typeof loadAll>[1]['categories'], excludeCancer = false) =>
    loadAll(wb, { categories, excludeCancer }, warnings);
  const where = (rows: Dataset[], column: string, value: string) => rows.filter((d) => d.cells[column] === value);

  const challenges = load(['challenges']);
  const benchmarks = load(['benchmarks']);
  return [
    computeSummaryStats('Dataset Collections', load(['collections_datasets'])),
    computeSummaryStats('Collection tcia', load(['tcia'])),
    computeSummaryStats('Collection midrc_parsed', load(['midrc_parsed'])),
    computeSummaryStats('Collection stanford_aimi', load(['stanford_aimi'])),
    computeSummaryStats('ML Challenges', challenges),
    computeSummaryStats('ML Challenges (Grand Challenge)', where(challenges, COL.dataLocation, 'Grand Challenge')),
    computeSummaryStats('ML Challenges (Kaggle)', where(challenges, COL.dataLocation, 'Kaggle')),
    computeSummaryStats('Highly-Cited Datasets', load(['datasets'])),
    computeSummaryStats('ML Benchmarks', benchmarks),
    computeSummaryStats('Benchmarks (MSD)', where(benchmarks, COL.benchmark, 'Medical Segmentation Decathlon')),
    computeSummaryStats('Benchmarks (MedFAIR)', where(benchmarks, COL.benchmark, 'MedFAIR')),
    computeSummaryStats('Benchmarks (AMOS)', where(benchmarks, COL.benchmark, 'AMOS')),
    computeSummaryStats('Total', load()),
    computeSummaryStats('Total w/o Cancer', load(undefined, true)),
  ];
}
