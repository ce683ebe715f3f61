/**
 * The row filters applied when predictions are loaded (`filter_metadata`, METHODS B.2), and the rows that survive
 * as plain arrays in file order (the bootstrap resamples bins in that order).
 */
import { StageError } from '../../../engine/stage-api.js';
import { parseAgeString } from './age.js';
import type { Predictions } from './predictions.js';

export interface EvalRows {
  dset: string;
  split: string;
  n: number;
  /** Age in years (NaN = missing), after the VinDr-PCXR parsing rule. */
  age: Float64Array;
  /** Positive-class probability as written (raw, compared with the threshold). */
  pPos: Float64Array;
  /** Row-normalised positive score p1 / (p0 + p1) (what the threshold is fitted on). */
  score: Float64Array;
  /** Cardiomegaly == 1. */
  label: Uint8Array;
  /** Index of each kept row in the file (0-based, header excluded). */
  source: Int32Array;
}

/** Ages as the evaluation sees them: `age_years`, or the DICOM string parsed and kept only if ≤ 10 years. */
export function agesOf(p: Predictions): Float64Array {
  if (p.ageYears) return p.ageYears;
  const ages = new Float64Array(p.n);
  for (let i = 0; i < p.n; i++) {
    const a = parseAgeString(p.ageRaw![i]);
    ages[i] = a !== undefined && Math.trunc(a) <= 10 ? a : NaN;
  }
  return ages;
}

/** Which rows `filter_metadata` keeps for this dataset and split. */
export function keepRow(dset: string, split: string, age: number, hasFinding: number, cardiomegaly: number): boolean {
  const hasAge = !Number.isNaN(age);
  const healthy = hasFinding === 0;
  if (dset === 'vindr_pcxr' && !(hasAge && healthy && Math.trunc(age) <= 10)) return false;
  if (split.includes('test_peds')) return healthy && hasAge;
  if (split === 'test_healthy_adult') return hasAge;
  // (~Has Finding.astype(bool)) | Cardiomegaly.astype(bool): −1 and missing labels are truthy (see filterPredictions).
  if (split === 'test_adult_calib') return healthy || Number.isNaN(cardiomegaly) || cardiomegaly !== 0;
  return true;
}

/**
 * Apply B.2. `dset`/`split` default to the file's own columns; `fallback` names them when the file has none
 * (e.g. a predictions.csv without metadata columns).
 */
export function filterPredictions(p: Predictions, fallback: { dset?: string; split?: string } = {}): EvalRows {
  // A file whose own dset/split columns say otherwise than the stage asked for is the wrong file: its rows would be
  // filtered and binned as what it says it is, and reported as what was asked.
  for (const key of ['dset', 'split'] as const) {
    const mine = p[key];
    const asked = fallback[key];
    if (mine !== undefined && asked !== undefined && mine !== asked) {
      throw new StageError(
        `Predictions CSV ${p.file}: its ${key} column says "${mine}" but the stage reads it as ${key} "${asked}"; point the ` +
          `stage at the ${asked} predictions (or correct the stage's with.${key === 'dset' ? 'model / eval_set' : 'split'}).`,
      );
    }
  }
  const dset = p.dset ?? fallback.dset ?? '';
  const split = p.split ?? fallback.split ?? '';
  const ages = agesOf(p);
  const keep: number[] = [];
  for (let i = 0; i < p.n; i++) {
    if (!keepRow(dset, split, ages[i]!, p.hasFinding[i]!, p.cardiomegaly[i]!)) continue;
    const cm = p.cardiomegaly[i]!;
    if (split === 'test_adult_calib' && p.hasFinding[i] !== 0 && cm !== 1) {
      // The authors' filter keeps a row with a finding and an uncertain or missing Cardiomegaly label (astype(bool)),
      // and their threshold then counts it as a negative: a wrong calibration that looks right. Refused instead.
      throw new StageError(
        `Predictions CSV ${p.file}, line ${i + 2}, column "Cardiomegaly": a calibration row with a finding has the label ` +
          `${Number.isNaN(cm) ? 'missing' : JSON.stringify(String(cm))}; the threshold needs 1 or 0 there (the authors' ` +
          'filter would keep it and count it as a negative). Give the row its label or leave it out.',
      );
    }
    keep.push(i);
  }
  const n = keep.length;
  const rows: EvalRows = {
    dset,
    split,
    n,
    age: new Float64Array(n),
    pPos: new Float64Array(n),
    score: new Float64Array(n),
    label: new Uint8Array(n),
    source: Int32Array.from(keep),
  };
  keep.forEach((i, j) => {
    rows.age[j] = ages[i]!;
    rows.pPos[j] = p.pPos[i]!;
    rows.score[j] = p.pPos[i]! / (p.pNeg[i]! + p.pPos[i]!);
    rows.label[j] = p.cardiomegaly[i] === 1 ? 1 : 0;
  });
  return rows;
}
