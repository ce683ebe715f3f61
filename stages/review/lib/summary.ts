import { isUsable } from './load.js';
import { pyRound } from '../../lib/pynum.js';
import { countriesAndInstitutions } from './sources.js';
import type { Dataset } from './types.js';

export interface SummaryStats {
  index: string;
  num_countries: number;
  num_institutions: number;
  num_datasets_total: number;
  num_datasets_filtered: number;
  num_total: number;
  num_children: number;
  /** null when no dataset is usable (0/0). */
  perc_children: number | null;
}

/**
 * METHODS A.8 `compute_summary_stats`. Adults and children are summed one row at a time in row order, as pandas
 * does on the authors' object column; a pairwise or vectorised sum gives 512,607 instead of 512,608 for "Total".
 */
export function computeSummaryStats(index: string, rows: readonly Dataset[]): SummaryStats {
  const { countries, institutions } = countriesAndInstitutions(rows);
  const usable = rows.filter(isUsable);
  let adults = 0;
  let children = 0;
  for (const d of usable) {
    adults += d.propAdult! * d.numPatients!;
    children += (1 - d.propAdult!) * d.numPatients!;
  }
  const total = children + adults;
  return {
    index,
    num_countries: countries.size,
    num_institutions: institutions.size,
    num_datasets_total: rows.length,
    num_datasets_filtered: usable.length,
    num_total: Math.trunc(total),
    num_children: Math.trunc(children),
    perc_children: total === 0 ? null : pyRound((100 * children) / total, 2),
  };
}

/** `Contains Children` counts of the usable datasets (the authors print these next to the summary). */
export function containsChildrenCounts(rows: readonly Dataset[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const d of rows.filter(isUsable)) counts[d.containsChildren] = (counts[d.containsChildren] ?? 0) + 1;
  return counts;
}
