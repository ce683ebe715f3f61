/**
 * The decision threshold (METHODS B.3): Youden's J over sklearn's DET curve on the model's own calibration split,
 * ties resolved to the lowest threshold, rounded to 4 decimals; and the AUROC.
 */
import { npRound } from '../../lib/pynum.js';

export interface Curve {
  /** Candidate thresholds in increasing order, with their false-positive and false-negative rates. */
  thresholds: number[];
  fpr: number[];
  fnr: number[];
}

/** sklearn `_binary_clf_curve`: distinct scores descending, cumulative true/false positives at each. */
function binaryClfCurve(scores: ArrayLike<number>, labels: ArrayLike<number>) {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i);
  // sklearn: argsort(kind="mergesort")[::-1] — stable ascending, then reversed.
  order.sort((a, b) => scores[a]! - scores[b]! || a - b).reverse();
  const tps: number[] = [];
  const fps: number[] = [];
  const thr: number[] = [];
  let tp = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j]!;
    tp += labels[i]! ? 1 : 0;
    const last = j === n - 1 || scores[order[j + 1]!] !== scores[i];
    if (last) {
      tps.push(tp);
      fps.push(j + 1 - tp);
      thr.push(scores[i]!);
    }
  }
  return { tps, fps, thr };
}

/** sklearn `det_curve`, returned in increasing-threshold order. */
export function detCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): Curve {
  const { tps, fps, thr } = binaryClfCurve(scores, labels);
  const P = tps[tps.length - 1]!;
  const N = fps[fps.length - 1]!;
  // first_ind: last index whose fps equals fps[0]; last_ind: first index reaching tps = P, plus one.
  let first = 0;
  while (first + 1 < fps.length && fps[first + 1] === fps[0]) first++;
  let last = 0;
  while (last < tps.length && tps[last]! < P) last++;
  last += 1;
  const curve: Curve = { thresholds: [], fpr: [], fnr: [] };
  for (let i = Math.min(last, tps.length) - 1; i >= first; i--) {
    curve.thresholds.push(thr[i]!);
    curve.fpr.push(fps[i]! / N);
    curve.fnr.push((P - tps[i]!) / P);
  }
  return curve;
}

export interface ThresholdResult {
  /** Rounded to 4 decimals: what predictions are compared against. */
  threshold: number;
  /** Unrounded score at the optimum. */
  raw: number;
  youdenJ: number;
  tpr: number;
  fpr: number;
}

/** Youden's J = TPR + TNR − 1 maximised over the DET curve; the first maximum in increasing order wins. */
export function youdenThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>): ThresholdResult {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) pos += labels[i] ? 1 : 0;
  if (pos === 0 || pos === labels.length) {
    throw new RangeError(`needs both classes (got ${pos} positives among ${labels.length} rows)`);
  }
  const c = detCurve(scores, labels);
  let best = -1;
  let bestJ = -Infinity;
  for (let i = 0; i < c.thresholds.length; i++) {
    const tpr = 1 - c.fnr[i]!;
    const tnr = 1 - c.fpr[i]!;
    const j = tpr + tnr - 1;
    if (j > bestJ) {
      bestJ = j;
      best = i;
    }
  }
  const raw = c.thresholds[best]!;
  return { threshold: npRound(raw, 4), raw, youdenJ: bestJ, tpr: 1 - c.fnr[best]!, fpr: c.fpr[best]! };
}

/** Area under the ROC curve (Mann–Whitney with ties counted half), or NaN with a single class. */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (labels[order[t]!]) {
        rankSumPos += avgRank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}
