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

/**
 * METHODS A.10: per modality, task and side, trunc(Σ points × subgroup share) over usable datasets of that side
 * (Peds: Peds Only + Peds & Adult, share 1 − PropAdult; Adult: all but Peds Only, share PropAdult), summed in row
 * order with missing products counting 0.
 */
export function breakdown(rows: readonly Dataset[]): BreakdownCell[] {
  const usable = rows.filter(isUsable);
  const cells: BreakdownCell[] = [];
  for (const { modality, unit } of MODALITY_UNITS) {
    for (const task of BREAKDOWN_TASKS) {
      for (const side of SIDES) {
        let sum = 0;
        for (const d of usable) {
          const inSide = side === 'Peds' ? d.containsChildren.includes('Peds') : d.containsChildren !== 'Peds Only';
          if (!inSide || !hasModalityToken(d, modality)) continue;
          const tc = str(d.cells[COL.taskCategory] ?? null);
          if (task.match !== null && (tc === null || !tc.includes(task.match))) continue;
          const points = modalityPoints(d, modality, unit);
          if (points === null) continue;
          sum += points * (side === 'Peds' ? 1 - d.propAdult! : d.propAdult!);
        }
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
        return String(c?.count ?? 0);
      }),
    ),
  ]);
  return [header1, header2, ...rows];
}
