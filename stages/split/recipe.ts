/**
 * The authors' split recipe (METHODS C.2 per-patient rule and C.3), as pure functions over metadata rows.
 *
 * Randomness: a seeded sfc32 stream (stages/synth/cxr/prng.ts), one fresh stream per draw named after what it
 * draws (e.g. "healthy/[18, 25)"), mirroring the original's "seed 42 per call". Exact membership parity with numpy's
 * MT19937 + pandas `sample` + sklearn's StratifiedShuffleSplit is not attempted (it needs ports of all three); the
 * sizes, proportions and stratification are the same.
 */
import { createRng, type Rng } from '../synth/cxr/prng.js';

export type Row = Record<string, string>;
export type SplitName = 'train' | 'val' | 'test_adult_calib' | 'test_healthy_adult' | 'test_peds' | 'test';

export interface SplitOptions {
  /** Dataset name (B.1): vindr_cxr, vindr_pcxr, nih_cxr18, padchest, chexbert. */
  dset: string;
  seed: number;
  /** Share of each age bin of healthy adults drawn into test_healthy_adult (0.2 VinDr-CXR, else 0.1). */
  healthyProp: number;
  /** Age bin edges for the healthy-adult draw (left-closed). */
  ageBins: number[];
  /** Shares of Cardiomegaly-positive and of no-finding rows drawn into the calibration split. */
  calibFrac: number;
  /** Share of the remaining training rows held out for validation, stratified by Cardiomegaly. */
  valFrac: number;
  /** Apply the one-image-per-patient rule (C.2). */
  onePerPatient: boolean;
}

export interface SplitResult {
  /** Input row index → split, for kept rows (rows dropped by the per-patient rule are absent). */
  assignment: Map<number, SplitName>;
  droppedPerPatient: number;
  perBin: Array<{ bin: string; eligible: number; sampled: number }>;
}

export const CHEXBERT_FINDINGS = [
  'Enlarged Cardiomediastinum', 'Cardiomegaly', 'Lung Opacity', 'Lung Lesion', 'Edema', 'Consolidation', 'Pneumonia',
  'Atelectasis', 'Pneumothorax', 'Pleural Effusion', 'Pleural Other', 'Fracture', 'Support Devices', 'No Finding',
];

export const PEDIATRIC_DSETS = new Set(['vindr_pcxr']);
/** Datasets whose minors go to test_peds (C.3 step 1). */
const PEDS_SPLIT_DSETS = new Set(['nih_cxr18', 'padchest']);

export const defaultHealthyProp = (dset: string): number => (dset === 'vindr_cxr' ? 0.2 : 0.1);

const age = (r: Row): number | null => {
  const t = (r['age_years'] ?? '').trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
};

/** pandas truthiness of a label cell: non-zero numbers, -1 and empty (NaN) are all truthy (quirk 18). */
const truthy = (v: string | undefined): boolean => {
  const t = (v ?? '').trim();
  if (t === '') return true;
  const n = Number(t);
  return Number.isNaN(n) ? true : n !== 0;
};
const cardiomegalyLabel = (r: Row): boolean => truthy(r['Cardiomegaly']);

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (Math.abs(d - 0.5) < 1e-12) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/** The first k of a seeded permutation of `items` (pandas `sample(n=k)` semantics, different generator). */
export function sample<T>(rng: Rng, items: readonly T[], k: number): T[] {
  const a = [...items];
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng.next() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

/** C.2: one image per patient_id, preferring rows with an age, then Cardiomegaly-truthy rows; ties drawn at random. */
export function onePerPatient(rows: readonly Row[], indices: number[], seed: number): number[] {
  const groups = new Map<string, number[]>();
  for (const i of indices) {
    const pid = rows[i]!['patient_id'] ?? '';
    const g = groups.get(pid);
    if (g) g.push(i);
    else groups.set(pid, [i]);
  }
  const keep: number[] = [];
  for (const [pid, g] of groups) {
    if (g.length === 1) {
      keep.push(g[0]!);
      continue;
    }
    const rng = createRng(`${seed}/patient/${pid}`);
    const withAge = g.filter((i) => age(rows[i]!) !== null);
    const pool = withAge.length ? withAge : g;
    if (pool.length === 1) {
      keep.push(pool[0]!);
      continue;
    }
    const positive = pool.filter((i) => cardiomegalyLabel(rows[i]!));
    keep.push(sample(rng, positive.length ? positive : pool, 1)[0]!);
  }
  return keep.sort((a, b) => a - b);
}

export function binLabel(a: number, edges: readonly number[]): string | null {
  const t = Math.trunc(a);
  for (let k = 0; k + 1 < edges.length; k++) if (t >= edges[k]! && t < edges[k + 1]!) return `[${edges[k]}, ${edges[k + 1]})`;
  return null;
}

const isHealthy = (r: Row, dset: string): boolean =>
  (r['Has Finding'] ?? '').trim() === '0' &&
  (dset !== 'chexbert' || !CHEXBERT_FINDINGS.some((f) => (r[f] ?? '').trim() === '-1'));

/** sklearn-style stratified holdout: per class, the largest-remainder share of n_val = n − floor((1−valFrac)·n). */
function stratifiedVal(rows: readonly Row[], train: number[], valFrac: number, seed: number): Set<number> {
  const n = train.length;
  const nVal = n - Math.floor((1 - valFrac) * n);
  const classes = new Map<string, number[]>();
  for (const i of train) {
    const c = cardiomegalyLabel(rows[i]!) ? '1' : '0';
    classes.set(c, [...(classes.get(c) ?? []), i]);
  }
  const keys = [...classes.keys()].sort();
  const exact = keys.map((k) => (classes.get(k)!.length * nVal) / Math.max(1, n));
  const alloc = exact.map(Math.floor);
  let left = nVal - alloc.reduce((s, x) => s + x, 0);
  const order = keys.map((_, k) => k).sort((a, b) => exact[b]! - alloc[b]! - (exact[a]! - alloc[a]!) || a - b);
  for (const k of order) if (left > 0) (alloc[k]!++, left--);
  const val = new Set<number>();
  keys.forEach((k, idx) => {
    for (const i of sample(createRng(`${seed}/val/${k}`), classes.get(k)!, alloc[idx]!)) val.add(i);
  });
  return val;
}

export function splitRows(rows: readonly Row[], o: SplitOptions): SplitResult {
  const assignment = new Map<number, SplitName>();
  const all = rows.map((_, i) => i);
  if (PEDIATRIC_DSETS.has(o.dset)) {
    for (const i of all) assignment.set(i, 'test');
    return { assignment, droppedPerPatient: 0, perBin: [] };
  }
  const kept = o.onePerPatient ? onePerPatient(rows, all, o.seed) : all;
  let rest = kept;

  // 1. Minors of NIH and PadChest → test_peds.
  if (PEDS_SPLIT_DSETS.has(o.dset)) {
    for (const i of rest) {
      const a = age(rows[i]!);
      if (a !== null && a < 18) assignment.set(i, 'test_peds');
    }
    rest = rest.filter((i) => !assignment.has(i));
  }

  // 2. Healthy adults with an age, per bin (order of first appearance), trunc(prop × bin size) each.
  const bins = new Map<string, number[]>();
  for (const i of rest) {
    const a = age(rows[i]!);
    if (a === null || !isHealthy(rows[i]!, o.dset)) continue;
    const b = binLabel(a, o.ageBins);
    if (b === null) continue;
    bins.set(b, [...(bins.get(b) ?? []), i]);
  }
  const perBin: SplitResult['perBin'] = [];
  for (const [bin, members] of bins) {
    const k = Math.trunc(o.healthyProp * members.length);
    for (const i of sample(createRng(`${o.seed}/healthy/${bin}`), members, k)) assignment.set(i, 'test_healthy_adult');
    perBin.push({ bin, eligible: members.length, sampled: k });
  }
  rest = rest.filter((i) => !assignment.has(i));

  // 3. Calibration: calibFrac of Cardiomegaly-positive rows plus calibFrac of no-finding rows.
  const positives = rest.filter((i) => cardiomegalyLabel(rows[i]!));
  const negatives = rest.filter((i) => !cardiomegalyLabel(rows[i]!) && (rows[i]!['Has Finding'] ?? '').trim() === '0');
  for (const [name, group] of [['positive', positives], ['healthy', negatives]] as const)
    for (const i of sample(createRng(`${o.seed}/calib/${name}`), group, roundHalfEven(o.calibFrac * group.length)))
      assignment.set(i, 'test_adult_calib');
  rest = rest.filter((i) => !assignment.has(i));

  // 4–5. The rest is training data, split again into train/val stratified by Cardiomegaly.
  const val = stratifiedVal(rows, rest, o.valFrac, o.seed);
  for (const i of rest) assignment.set(i, val.has(i) ? 'val' : 'train');
  return { assignment, droppedPerPatient: rows.length - kept.length, perBin };
}
