/** The JSON files the evaluate kinds write and read from each other (one shape each, versioned by `kind`). */
import type { BinRate, FprResult } from './fpr.js';
import { binOrder } from './bins.js';

export interface AurocEntry {
  set: string;
  file: string;
  n: number;
  positives: number;
  auroc: number;
}

export interface ThresholdJson {
  kind: 'evaluate/threshold';
  model: string;
  method: 'youden';
  /** Rounded to 4 decimals; predictions with class_probs[1] ≥ threshold are positive. */
  threshold: number;
  threshold_raw: number;
  youden_j: number;
  tpr: number;
  fpr: number;
  calib: { file: string; n: number; positives: number; negatives: number };
  /** AUROC of the model on each calibration set (its own first). */
  auroc: AurocEntry[];
}

export interface BinJson {
  age_bin: string;
  /** Numeric order of the bin (left edge), for plotting ages in order. */
  order: number;
  n: number;
  count: number;
  percentage: number;
  lower: number;
  upper: number;
  degenerate?: string;
}

export interface FprJson {
  kind: 'evaluate/fpr' | 'evaluate/hm';
  model: string;
  eval_set: string;
  split: string;
  file: string;
  threshold: number;
  n: number;
  positives: number;
  /** True FPR (%), 2 dp. */
  fpr: number;
  fpr_lower: number;
  fpr_upper: number;
  /** The authors' fpr.json value (B.7). */
  fpr_reestimate: number;
  bootstrap: { resamples: number; seed: number; confidence: number; rng: 'numpy-pcg64' };
  bins: BinJson[];
}

export interface HmJson extends FprJson {
  kind: 'evaluate/hm';
  ratio: string;
  /** B.8 impact value: FPR re-estimated over child bins 0 and 1 (proportion, 4 dp). */
  fpr_age_0_1: number;
  auroc_calib: number;
}

export function binsToJson(bins: BinRate[]): BinJson[] {
  return bins.map((b) => ({
    age_bin: b.ageBin,
    order: binOrder(b.ageBin),
    n: b.n,
    count: b.count,
    percentage: b.percentage,
    lower: b.ci.lower,
    upper: b.ci.upper,
    ...(b.ci.degenerate ? { degenerate: b.ci.degenerate } : {}),
  }));
}

export function fprToJson(
  r: FprResult,
  meta: { model: string; evalSet: string; file: string; resamples: number; seed: number; confidence: number },
): FprJson {
  return {
    kind: 'evaluate/fpr',
    model: meta.model,
    eval_set: meta.evalSet,
    split: r.split,
    file: meta.file,
    threshold: r.threshold,
    n: r.n,
    positives: r.positives,
    fpr: r.fpr,
    fpr_lower: r.ci.lower,
    fpr_upper: r.ci.upper,
    fpr_reestimate: r.fprReestimate,
    bootstrap: { resamples: meta.resamples, seed: meta.seed, confidence: meta.confidence, rng: 'numpy-pcg64' },
    bins: binsToJson(r.bins),
  };
}
