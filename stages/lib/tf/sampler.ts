/**
 * The authors' imbalanced sampler (METHODS C.6): each training image is weighted 1/(count of its label) and an epoch
 * draws N = training-set size indices WITH replacement, proportionally to the weights (torch
 * WeightedRandomSampler), so both classes are seen about equally often however rare cardiomegaly is.
 */
import type { Rng } from './rng.js';

/** Per-image weights 1/count(label). */
export function inverseFrequencyWeights(labels: readonly number[]): number[] {
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return labels.map((l) => 1 / counts.get(l)!);
}

/** Draw `n` indices with replacement, P(i) ∝ weights[i] (inverse-CDF on a cumulative table; O(n log N)). */
export function weightedDraw(weights: readonly number[], n: number, rng: Rng): number[] {
  const cum = new Float64Array(weights.length);
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`sampler weight ${i} is ${w}; weights must be finite and ≥ 0`);
    total += w;
    cum[i] = total;
  }
  if (!(total > 0)) throw new RangeError('sampler weights sum to 0');
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const u = rng.next() * total;
    let lo = 0;
    let hi = weights.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    out[k] = lo;
  }
  return out;
}

/** One epoch's index order: the imbalanced draw, or a plain shuffle of every image once. */
export function epochOrder(labels: readonly number[], imbalanced: boolean, rng: Rng): number[] {
  return imbalanced ? weightedDraw(inverseFrequencyWeights(labels), labels.length, rng) : rng.permutation(labels.length);
}
