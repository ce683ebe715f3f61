/**
 * BCa bootstrap interval of a bin's false-positive rate, as the authors computed it with `arch`'s
 * `IIDBootstrap(x, seed=42).conf_int(np.mean, 12000, method="bca")` on x = 100·[pred = 1] (METHODS B.5).
 *
 * The statistic is a mean of 0/100 values, so a resample is summarised by how many positives it drew: the
 * kernel counts them without materialising any resample. With the numpy-compatible RNG the bounds are the
 * authors' to the last digit.
 */
import { normCdf, normPpf } from './normal.js';
import { percentileSorted } from './percentile.js';
import { npRound } from '../../lib/pynum.js';
import { Pcg64Kernel } from './rng/pcg64-wasm.js';

export interface BootstrapOptions {
  /** Number of resamples (the authors: 12,000). */
  resamples: number;
  /** Seed of a fresh `np.random.default_rng(seed)` per call (the authors: 42). */
  seed: number;
  /** Two-sided coverage (0.95). */
  confidence: number;
}

export const DEFAULT_BOOTSTRAP: BootstrapOptions = { resamples: 12000, seed: 42, confidence: 0.95 };

export interface Interval {
  /** Bounds in percent (0–100), rounded to 4 decimals. */
  lower: number;
  upper: number;
  /**
   * Why BCa was not computable (every resample on one side of the estimate, or no jackknife variance — e.g. a
   * bin with no positives); then the interval is (point, point), as in the authors' code.
   */
  degenerate?: 'bias' | 'acceleration';
}

/** The BCa interval for the mean of 100·pred (pred: 0/1 per row, in the rows' original order). */
export function bcaInterval(pred: Uint8Array, opts: BootstrapOptions = DEFAULT_BOOTSTRAP): Interval {
  const n = pred.length;
  if (n === 0) throw new RangeError('bcaInterval: no rows');
  let k = 0;
  for (let i = 0; i < n; i++) k += pred[i]!;
  const base = (100 * k) / n;
  const point = npRound(base, 4);

  const counts = new Pcg64Kernel(opts.seed).resampleCounts(pred, opts.resamples);
  counts.sort();
  let below = 0;
  while (below < counts.length && counts[below]! < k) below++;
  const share = below / opts.resamples;
  if (share === 0 || share === 1) return { lower: point, upper: point, degenerate: 'bias' };

  const a = jackknifeAcceleration(n, k);
  if (a === undefined) return { lower: point, upper: point, degenerate: 'acceleration' };

  const z0 = normPpf(share);
  const alpha = (1 - opts.confidence) / 2;
  const stats = new Float64Array(counts.length);
  for (let i = 0; i < counts.length; i++) stats[i] = (100 * counts[i]!) / n;
  const bound = (level: number): number => {
    const zq = normPpf(level);
    const adjusted = normCdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)));
    return npRound(percentileSorted(stats, 100 * adjusted), 4);
  };
  return { lower: bound(alpha), upper: bound(1 - alpha) };
}

/**
 * arch's `_bca_acceleration` from leave-one-out means: only two distinct values exist (a positive or a negative
 * left out), so the O(n²) jackknife collapses to two terms. undefined where arch raises ("jackknife variance
 * estimate is too small").
 */
export function jackknifeAcceleration(n: number, k: number): number | undefined {
  if (n < 2) return undefined;
  const thetaPos = (100 * (k - 1)) / (n - 1);
  const thetaNeg = (100 * k) / (n - 1);
  const mean = (k * thetaPos + (n - k) * thetaNeg) / n;
  const uPos = mean - thetaPos;
  const uNeg = mean - thetaNeg;
  const numer = k * uPos ** 3 + (n - k) * uNeg ** 3;
  const denom = 6 * (k * uPos ** 2 + (n - k) * uNeg ** 2) ** 1.5;
  if (!(denom >= Math.abs(numer) * Number.EPSILON) || denom === 0) return undefined;
  const a = numer / denom;
  return Number.isFinite(a) ? a : undefined;
}
