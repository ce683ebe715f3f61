import { hasModalityToken, MODALITY_UNITS, modalityPoints } from './breakdown.js';
import { pandasNumber } from '../../lib/pandas-csv.js';
import { npRound } from '../../lib/pynum.js';
import { cellText, pandasKind } from './csv.js';
import { isUsable } from './load.js';
import type { Dataset } from './types.js';

/** A.11 `save_peds_dataset_in_each_modality` columns, in order. */
export const PEDS_COLUMNS = [
  'Category', 'Image Collection', 'Benchmark', 'Dataset Name', 'Link', 'Paper Link', 'Considerations', 'Inferred',
  'Is Age Explicitly Documented', 'Age Documented How', 'Is Age Complete', 'Source / Institutions (Location)',
  'Patient Demographics / Covariates / Metadata', 'Sample Size', 'Peds Sample Size', 'Percentage Overall',
  'Imaging Modality(ies)', 'Peds vs. Adult', 'Organ / Body Part', 'Task / Pathology', 'Task Category',
] as const;

export interface PedsDatasetRow {
  dataset: Dataset;
  /** Unit × modality share × (1 − PropAdult); null when the unit count is missing. */
  pedsSampleSize: number | null;
  percentageOverall: number | null;
}

/** File name of a modality's list: ct, mri, x-ray, us, fundus. */
export function pedsFileStem(modality: string): string {
  return modality.toLowerCase();
}

/**
 * A.11: usable datasets with children (PropAdult < 1) having the modality as a token, with their pediatric sample
 * size and its share of the modality's total (pandas `Series.round(2)`, i.e. numpy's rounding of 100·value/Σ, the
 * sum taken row by row as on the authors' object column), sorted by share descending. The sort is stable (the authors' was not:
 * the 2022 AMOS / AMOS tie in ct.csv may come out in the other order), missing shares last as pandas puts them.
 */
export function pedsDatasets(rows: readonly Dataset[], modality: string): PedsDatasetRow[] {
  const unit = MODALITY_UNITS.find((m) => m.modality === modality)?.unit;
  if (!unit) throw new Error(`unknown modality ${modality}`);
  const selected = rows.filter((d) => isUsable(d) && d.propAdult! < 1 && hasModalityToken(d, modality));
  const values = selected.map((d) => {
    const points = modalityPoints(d, modality, unit);
    return points === null ? null : points * (1 - d.propAdult!);
  });
  let total = 0;
  for (const v of values) if (v !== null) total += v;
  const out = selected.map((dataset, i) => ({
    dataset,
    pedsSampleSize: values[i]!,
    percentageOverall: values[i] === null ? null : npRound((100 * values[i]!) / total, 2),
  }));
  const key = (r: PedsDatasetRow) => (r.percentageOverall === null ? -Infinity : r.percentageOverall);
  return out.map((r, i) => ({ r, i })).sort((a, b) => key(b.r) - key(a.r) || a.i - b.i).map(({ r }) => r);
}

/**
 * The CSV rows (header first) of one modality's list. `analysisSet` is the whole loaded set the list was drawn from:
 * each workbook column is written with the dtype pandas gives it over that set (e.g. "Is Age Complete" holds
 * booleans and blanks, so pandas writes 1.0 / 0.0, while "Is Age Explicitly Documented" has no blank: True / False).
 */
export function pedsCsvRows(rows: readonly PedsDatasetRow[], analysisSet: readonly Dataset[]): string[][] {
  const kinds = new Map(PEDS_COLUMNS.map((c) => [c, pandasKind(analysisSet.map((d) => d.cells[c]))]));
  return [
    [...PEDS_COLUMNS],
    ...rows.map((r) =>
      PEDS_COLUMNS.map((column) => {
        if (column === 'Category') return r.dataset.category;
        if (column === 'Peds Sample Size') return pandasNumber(r.pedsSampleSize, 'float');
        if (column === 'Percentage Overall') return pandasNumber(r.percentageOverall, 'float');
        return cellText(r.dataset.cells[column], kinds.get(column));
      }),
    ),
  ];
}
