import { pandasNumber } from '../../lib/pandas-csv.js';
import { str } from './cells.js';
import { isUsable } from './load.js';
import { modalityShare, modalityTokens } from './modality-shares.js';
import { COL } from './sheets.js';
import type { Dataset } from './types.js';

/** The five modalities, with the unit counted for each (A.10 step 3). */
export const MODALITY_UNITS = [
  { modality: 'X-ray', unit: 'images' },
  { modality: 'US', unit: 'sequences' },
  { modality: 'CT', unit: 'sequences' },
  { modality: 'MRI', unit: 'sequences' },
  { modality: 'Fundus', unit: 'images' },
] as const;

/** Output labels and the `Task Category` substring each matches (A.10 step 4); "All" has no filter. */
export const BREAKDOWN_TASKS: ReadonlyArray<{ label: string; match: string | null }> = [
  { label: 'All', match: null },
  { label: 'Condition Classification', match: 'Condition/Disease Classification' },
  { label: 'Anatomy Segmentation', match: 'Anatomy/Organ Segmentation/Detection' },
  { label: 'Lesion Segmentation', match: 'Lesion/Tumor Segmentation/Detection' },
  { label: 'Image Enhancement', match: 'Image Reconstruction/Generation' },
];

export type Side = 'Adult' | 'Peds';
export const SIDES: readonly Side[] = ['Adult', 'Peds'];

export interface BreakdownCell {
  modality: string;
  task: string;
  type: Side;
  count: number;
}

/** Exact-token modality match (A.10 step 3; unlike the substring match of the modality figure). */
export function hasModalityToken(d: Dataset, modality: string): boolean {
  return modalityTokens(str(d.cells[COL.modality] ?? null)).includes(modality);
}

/** A.10 unit count × modality share of one dataset; null when the unit count is missing. */
export function modalityPoints(d: Dataset, modality: string, unit: 'images' | 'sequences'): number | null {
  const n = unit === 'images' ? d.numImages : d.numSequences;
  if (n === null) return null;
  return n * modalityShare(d.modalityShares, str(d.cells[COL.modality] ?? null), modality);
}

/** One dataset's part of a breakdown cell: its unit count × modality share (`points`) × its subgroup share. */
export interface BreakdownContribution {
  dataset: Dataset;
  points: number;
  share: number;
  value: number;
}

/**
 * The usable datasets feeding one A.10 cell, in row order: side (Peds: Peds Only + Peds & Adult, share 1 − PropAdult;
 * Adult: all but Peds Only, share PropAdult), exact modality token, task substring; datasets whose unit count is
 * missing add nothing (the authors' missing products count as 0) and are left out.
 */
export function breakdownContributions(
  rows: readonly Dataset[],
  modality: string,
  task: { match: string | null },
  side: Side,
): BreakdownContribution[] {
  const unit = MODALITY_UNITS.find((m) => m.modality === modality)?.unit;
  if (!unit) throw new Error(`unknown modality ${modality}`);
  const out: BreakdownContribution[] = [];
  for (const d of rows) {
    if (!isUsable(d)) continue;
    const inSide = side === 'Peds' ? d.containsChildren.includes('Peds') : d.containsChildren !== 'Peds Only';
    if (!inSide || !hasModalityToken(d, modality)) continue;
    const tc = str(d.cells[COL.taskCategory] ?? null);
    if (task.match !== null && (tc === null || !tc.includes(task.match))) continue;
    const points = modalityPoints(d, modality, unit);
    if (points === null) continue;
    const share = side === 'Peds' ? 1 - d.propAdult! : d.propAdult!;
    out.push({ dataset: d, points, share, value: points * share });
  }
  return out;
}

/** METHODS A.10: per modality, task and side, trunc(Σ points × subgroup share), summed in row order. */
export function breakdown(rows: readonly Dataset[]): BreakdownCell[] {
  const cells: BreakdownCell[] = [];
  for (const { modality } of MODALITY_UNITS) {
    for (const task of BREAKDOWN_TASKS) {
      for (const side of SIDES) {
        let sum = 0;
        for (const c of breakdownContributions(rows, modality, task, side)) sum += c.value;
        cells.push({ modality, task: task.label, type: side, count: Math.trunc(sum) });
      }
    }
  }
  return cells;
}

/** Number of decimal digits of a count (0 → 0), the colour class of the breakdown figure. */
export function digitClass(count: number): number {
  return count === 0 ? 0 : String(Math.trunc(Math.abs(count))).length;
}

/** Legend label of a digit class: 0, [10^0,10^1), …, [10^5,10^6). */
export function digitClassLabel(digits: number): string {
  return digits === 0 ? '0' : `[10^${digits - 1},10^${digits})`;
}

/** A.10 CSV: two header rows (Task / Type), then one row per modality in the fixed order. */
export function breakdownCsvRows(cells: readonly BreakdownCell[]): string[][] {
  const header1 = ['Task'];
  const header2 = ['Type'];
  for (const task of BREAKDOWN_TASKS) {
    for (const side of SIDES) {
      header1.push(task.label);
      header2.push(side);
    }
  }
  const rows = MODALITY_UNITS.map(({ modality }) => [
    modality,
    ...BREAKDOWN_TASKS.flatMap((task) =>
      SIDES.map((side) => {
        const c = cells.find((x) => x.modality === modality && x.task === task.label && x.type === side);
        return pandasNumber(c?.count ?? 0, 'int');
      }),
    ),
  ]);
  return [header1, header2, ...rows];
}
