/**
 * Age bins (METHODS B.4): pandas `cut(..., right=False)` on the truncated age. Adults: [18, 25) … [80, 100);
 * children (VinDr-PCXR, or a split containing "peds"): one bin per year, labelled by its left edge.
 * Tables list bins in *string* order, as the authors' groupby did ("0", "1", "10", "2", …).
 */
import { truncAge } from './age.js';

export type BinScheme = 'adult' | 'child';

export const ADULT_EDGES = [18, 25, 40, 60, 80, 100] as const;
export const CHILD_EDGES = Array.from({ length: 19 }, (_, i) => i); // 0, 1, …, 18

/** Label for ages outside every bin (pandas gives NaN; the authors' string conversion wrote "nan"). */
export const OUT_OF_RANGE = 'nan';

export function schemeFor(dset: string, split: string): BinScheme {
  return dset === 'vindr_pcxr' || split.includes('peds') ? 'child' : 'adult';
}

export function binLabel(ageYears: number, scheme: BinScheme): string {
  const a = truncAge(ageYears);
  const edges: readonly number[] = scheme === 'adult' ? ADULT_EDGES : CHILD_EDGES;
  for (let i = 0; i + 1 < edges.length; i++) {
    if (a >= edges[i]! && a < edges[i + 1]!) return scheme === 'adult' ? `[${edges[i]}, ${edges[i + 1]})` : String(edges[i]);
  }
  return OUT_OF_RANGE;
}

/** Python's default string ordering (code points), which is what puts "10" between "1" and "2". */
export function compareLabels(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Numeric position of a bin (its left edge; out-of-range last), for plots that want ages in order. */
export function binOrder(label: string): number {
  if (label === OUT_OF_RANGE) return Number.POSITIVE_INFINITY;
  const m = /^\[?(\d+)/.exec(label);
  return m ? Number(m[1]) : Number.POSITIVE_INFINITY;
}
