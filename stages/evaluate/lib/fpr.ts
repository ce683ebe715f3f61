/**
 * False-positive rates of a thresholded model on healthy rows (METHODS B.4–B.7): overall and per age bin, each with
 * its BCa interval, plus the authors' count-based re-estimate of the overall rate.
 */
import { bcaInterval, type BootstrapOptions, type Interval } from './bootstrap.js';
import { binLabel, compareLabels, schemeFor, type BinScheme } from './bins.js';
import type { EvalRows } from './filters.js';
import { npRound } from '../../lib/pynum.js';

export interface BinRate {
  /** Bin label as in the counts CSV ("0", "[18, 25)"). */
  ageBin: string;
  n: number;
  /** `Pred. Count`: rows predicted positive. */
  count: number;
  /** `Pred. Percentage`: Round(100·count/n, 2). */
  percentage: number;
  ci: Interval;
}

export interface FprResult {
  dset: string;
  split: string;
  scheme: BinScheme;
  threshold: number;
  n: number;
  positives: number;
  /** The true FPR in %: Round(100·positives/n, 2). */
  fpr: number;
  /** BCa interval of the overall FPR (%). */
  ci: Interval;
  /** The authors' fpr.json value: re-estimated from the rounded per-bin table, zero-count bins dropped. */
  fprReestimate: number;
  /** Bins in the counts CSV's (string) order. */
  bins: BinRate[];
}

/** Positive = raw class_probs[1] ≥ threshold (quirk 5: the threshold came from normalised scores). */
export function predictPositive(rows: EvalRows, threshold: number): Uint8Array {
  const pred = new Uint8Array(rows.n);
  for (let i = 0; i < rows.n; i++) pred[i] = rows.pPos[i]! >= threshold ? 1 : 0;
  return pred;
}

export function percentage(count: number, n: number): number {
  return npRound(100 * (count / n), 2);
}

/**
 * B.7 re-estimate: N̂ = Σ 100·Count/Percentage over bins (0/0 for a zero-count bin is skipped), x = 100·ΣCount/N̂.
 * `decimals` = 2 for fpr.json (percent), or pass `scale: 1, decimals: 4` for the HM figure's proportions.
 */
export function reestimate(bins: Array<{ count: number; percentage: number }>, opts = { scale: 100, decimals: 2 }): number {
  let totalCount = 0;
  let nHat = 0;
  for (const b of bins) {
    totalCount += b.count;
    const est = (100 * b.count) / b.percentage;
    if (!Number.isNaN(est)) nHat += est;
  }
  return nHat === 0 ? (totalCount === 0 ? 0 : NaN) : npRound((opts.scale * totalCount) / nHat, opts.decimals);
}

export function evaluateFpr(rows: EvalRows, threshold: number, boot: BootstrapOptions, onBin?: (label: string, index: number, total: number) => void): FprResult {
  const pred = predictPositive(rows, threshold);
  const scheme = schemeFor(rows.dset, rows.split);
  const byBin = new Map<string, number[]>();
  for (let i = 0; i < rows.n; i++) {
    const label = binLabel(rows.age[i]!, scheme);
    let list = byBin.get(label);
    if (!list) byBin.set(label, (list = []));
    list.push(i);
  }
  const labels = [...byBin.keys()].sort(compareLabels);
  const bins: BinRate[] = labels.map((label, index) => {
    onBin?.(label, index, labels.length);
    const idx = byBin.get(label)!;
    const sub = new Uint8Array(idx.length);
    let count = 0;
    idx.forEach((i, j) => {
      sub[j] = pred[i]!;
      count += pred[i]!;
    });
    return { ageBin: label, n: idx.length, count, percentage: percentage(count, idx.length), ci: bcaInterval(sub, boot) };
  });
  let positives = 0;
  for (let i = 0; i < rows.n; i++) positives += pred[i]!;
  return {
    dset: rows.dset,
    split: rows.split,
    scheme,
    threshold,
    n: rows.n,
    positives,
    fpr: rows.n ? percentage(positives, rows.n) : NaN,
    ci: rows.n ? bcaInterval(pred, boot) : { lower: NaN, upper: NaN },
    fprReestimate: reestimate(bins),
    bins,
  };
}
