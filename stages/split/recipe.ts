/**
 * The authors' split recipe (METHODS C.2 one image per patient, C.3 test/calibration splits, C.4 + the data module's
 * train/val split), as pure functions over parsed metadata rows — with the authors' membership: every draw is the
 * one their code makes (pandas `sample` on numpy's MT19937 `RandomState(seed)`, sklearn's `StratifiedShuffleSplit`),
 * on rows in the order their DataFrames hold them (groupby sorts by patient id). test/fixtures/split/ proves it row
 * for row against the authors' code run by Python.
 *
 * Rules are per dataset: a row's `dset` picks them, and a patient is (dset, patient_id).
 */
import { pandasSample } from './numpy-random.js';
import { stratifiedShuffleSplit, StratifiedSplitError } from './stratified-shuffle-split.js';

export type SplitName = 'train' | 'val' | 'test_adult_calib' | 'test_healthy_adult' | 'test_peds' | 'test';

/** One metadata row as the recipe reads it (see metadata.ts). NaN = missing, as pandas reads an empty cell. */
export interface MetaRow {
  dset: string;
  patientId: string;
  imageId: string;
  age: number;
  hasFinding: number;
  cardiomegaly: number;
  /** CheXBERT: some finding column holds −1 (uncertain). */
  uncertain: boolean;
}

/** What differs between the datasets in the authors' prep_data.py. */
export interface DatasetRules {
  /** Pediatric evaluation set: every row → `test`. */
  pediatric: boolean;
  /** One image per patient (C.2): NIH, PadChest, CheXBERT (VinDr-CXR's patient id is the image id). */
  onePerPatient: boolean;
  /** Minors → `test_peds` (NIH, PadChest). */
  pedsSplit: boolean;
  /** Share of each age bin drawn as healthy test. */
  healthyProp: number;
  /** CheXBERT: healthy also needs no −1 finding; the calibration draw fills missing labels with 0. */
  chexbert: boolean;
}

export const DATASET_RULES: Readonly<Record<string, DatasetRules>> = {
  vindr_cxr: { pediatric: false, onePerPatient: false, pedsSplit: false, healthyProp: 0.2, chexbert: false },
  nih_cxr18: { pediatric: false, onePerPatient: true, pedsSplit: true, healthyProp: 0.1, chexbert: false },
  padchest: { pediatric: false, onePerPatient: true, pedsSplit: true, healthyProp: 0.1, chexbert: false },
  chexbert: { pediatric: false, onePerPatient: true, pedsSplit: false, healthyProp: 0.1, chexbert: true },
  vindr_pcxr: { pediatric: true, onePerPatient: false, pedsSplit: false, healthyProp: 0, chexbert: false },
};

export const CHEXBERT_FINDINGS = [
  'Enlarged Cardiomediastinum', 'Cardiomegaly', 'Lung Opacity', 'Lung Lesion', 'Edema', 'Consolidation', 'Pneumonia',
  'Atelectasis', 'Pneumothorax', 'Pleural Effusion', 'Pleural Other', 'Fracture', 'Support Devices', 'No Finding',
];

export interface SplitOptions {
  seed: number;
  /** Share of each age bin drawn into test_healthy_adult; undefined = the dataset's (0.2 VinDr-CXR, else 0.1). */
  healthyProp?: number;
  /** Age bin edges for the healthy-adult draw (pandas `cut(right=False)` on the age as given). */
  ageBins: number[];
  /** Share (pandas `frac`) of Cardiomegaly-positive and of no-finding rows drawn into the calibration split. */
  calibFrac: number;
  /** Validation share of the training rows (StratifiedShuffleSplit train_size = 1 − valFrac; 0 = no validation). */
  valFrac: number;
  /** Apply the one-image-per-patient rule where the dataset has it. */
  onePerPatient: boolean;
}

export interface DatasetResult {
  dset: string;
  inputRows: number;
  droppedPerPatient: number;
  perBin: Array<{ bin: string; eligible: number; sampled: number }>;
  /** Rows the validation draw chose from (the data module's filtered training rows). */
  valCandidates: number;
}

export interface SplitResult {
  /** Input row index → split, for kept rows (rows dropped by the per-patient rule are absent). */
  assignment: Map<number, SplitName>;
  /** One entry per dataset, in order of first appearance. */
  datasets: DatasetResult[];
}

/** Input that the authors' code would crash on or silently misuse, named by row. */
export class SplitInputError extends Error {
  constructor(
    message: string,
    readonly rows: number[] = [],
  ) {
    super(message);
  }
}

/** pandas `astype(bool)` of a float cell: NaN and every non-zero value (−1 too) are true. */
const truthy = (x: number): boolean => Number.isNaN(x) || x !== 0;
/** `fillna(0|False).astype(bool)`: missing is false. */
const truthyFilled = (x: number): boolean => !Number.isNaN(x) && x !== 0;

/** Python's str ordering (code points), which pandas groupby uses to sort patient ids. */
export function comparePy(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

/**
 * C.2 `groupby("patient_id").apply(sample_per_patient_multivisit_cxr)`: groups in sorted patient-id order; a group of
 * one is kept; else rows with an age if any; one left is kept; if the group's Cardiomegaly sum (NaN skipped) is
 * non-zero, the Cardiomegaly-truthy rows (NaN and −1 included), one kept or one drawn; else one drawn from all.
 * Draws are `sample(n=1, random_state=seed)`. Returns the kept rows in the new frame order.
 */
export function onePerPatient(rows: readonly MetaRow[], frame: readonly number[], seed: number): number[] {
  const groups = new Map<string, number[]>();
  for (const i of frame) {
    const g = groups.get(rows[i]!.patientId);
    if (g) g.push(i);
    else groups.set(rows[i]!.patientId, [i]);
  }
  const draw = (g: number[]) => g[pandasSample(g.length, { n: 1 }, seed)[0]!]!;
  const keep: number[] = [];
  for (const id of [...groups.keys()].sort(comparePy)) {
    let g = groups.get(id)!;
    if (g.length === 1) {
      keep.push(g[0]!);
      continue;
    }
    const withAge = g.filter((i) => !Number.isNaN(rows[i]!.age));
    if (withAge.length > 0) g = withAge;
    if (g.length === 1) {
      keep.push(g[0]!);
      continue;
    }
    let sum = 0;
    for (const i of g) if (!Number.isNaN(rows[i]!.cardiomegaly)) sum += rows[i]!.cardiomegaly;
    if (sum !== 0) {
      const positive = g.filter((i) => truthy(rows[i]!.cardiomegaly));
      keep.push(positive.length === 1 ? positive[0]! : draw(positive));
    } else {
      keep.push(draw(g));
    }
  }
  return keep;
}

/** pandas `cut(age, edges, right=False)` label, "[18, 25)"; null outside every bin. */
export function binLabel(age: number, edges: readonly number[]): string | null {
  for (let k = 0; k + 1 < edges.length; k++) if (age >= edges[k]! && age < edges[k + 1]!) return `[${edges[k]}, ${edges[k + 1]})`;
  return null;
}

/** The members of `group` at the positions of `sample(n|frac, random_state=seed)`. */
function sampled(group: readonly number[], how: { n: number } | { frac: number }, seed: number): number[] {
  return pandasSample(group.length, how, seed).map((p) => group[p]!);
}

/** The recipe for the rows of one dataset (`indices`, in file order). */
export function splitDataset(
  rows: readonly MetaRow[],
  indices: readonly number[],
  rules: DatasetRules,
  o: SplitOptions,
  assignment: Map<number, SplitName>,
): DatasetResult {
  const dset = indices.length ? rows[indices[0]!]!.dset : '';
  const result: DatasetResult = { dset, inputRows: indices.length, droppedPerPatient: 0, perBin: [], valCandidates: 0 };
  if (rules.pediatric) {
    for (const i of indices) assignment.set(i, 'test');
    return result;
  }
  const r = (i: number) => rows[i]!;
  let frame = rules.onePerPatient && o.onePerPatient ? onePerPatient(rows, indices, o.seed) : [...indices];
  result.droppedPerPatient = indices.length - frame.length;

  // 1. NIH, PadChest: age < 18 → test_peds (missing ages compare false).
  if (rules.pedsSplit) {
    for (const i of frame) if (r(i).age < 18) assignment.set(i, 'test_peds');
    frame = frame.filter((i) => !assignment.has(i));
  }

  // 2. Healthy rows with an age, binned; per bin in order of first appearance, int(len × prop) drawn.
  const prop = o.healthyProp ?? rules.healthyProp;
  const bins = new Map<string, number[]>();
  for (const i of frame) {
    const row = r(i);
    if (truthy(row.hasFinding) || (rules.chexbert && row.uncertain) || Number.isNaN(row.age)) continue;
    const bin = binLabel(row.age, o.ageBins);
    if (bin === null) continue;
    const members = bins.get(bin);
    if (members) members.push(i);
    else bins.set(bin, [i]);
  }
  for (const [bin, members] of bins) {
    const k = Math.trunc(members.length * prop);
    for (const i of sampled(members, { n: k }, o.seed)) assignment.set(i, 'test_healthy_adult');
    result.perBin.push({ bin, eligible: members.length, sampled: k });
  }
  frame = frame.filter((i) => !assignment.has(i));

  // 3. Calibration: sample(frac) of the Cardiomegaly-positive rows and of the no-finding rows, each seeded afresh.
  const asBool = rules.chexbert ? truthyFilled : truthy; // CheXBERT: .fillna(0).astype(bool)
  const positives = frame.filter((i) => asBool(r(i).cardiomegaly));
  const noFinding = frame.filter((i) => !asBool(r(i).hasFinding));
  for (const group of [positives, noFinding]) {
    for (const i of sampled(group, { frac: o.calibFrac }, o.seed)) assignment.set(i, 'test_adult_calib');
  }
  frame = frame.filter((i) => !assignment.has(i));
  for (const i of frame) assignment.set(i, 'train');

  // 4. The data module's validation split (load_metadata with filter_negative, then assign_split_table): positives
  //    (label filled with False) then no-finding rows (Has Finding filled with False), uncertain labels (−1) dropped,
  //    missing labels 0 for CheXBERT and unlabeled otherwise; StratifiedShuffleSplit over that list. The rows it
  //    leaves out stay `train`, as in the authors' metadata (their loader never trains on them).
  if (o.valFrac > 0) {
    const candidates = [
      ...frame.filter((i) => truthyFilled(r(i).cardiomegaly)),
      ...frame.filter((i) => !truthyFilled(r(i).hasFinding)),
    ].filter((i) => r(i).cardiomegaly !== -1 && (rules.chexbert || !Number.isNaN(r(i).cardiomegaly)));
    const seen = new Set<number>();
    const twice = candidates.filter((i) => (seen.has(i) ? true : (seen.add(i), false)));
    if (twice.length > 0) {
      throw new SplitInputError(
        `${twice.length} training row(s) of ${dset} have Cardiomegaly 1 but Has Finding 0; the authors' loader lists ` +
          'such a row both as a positive and as a no-finding row, and their stratified split refuses the duplicate ' +
          'image. Fix the labels (a cardiomegaly image has a finding).',
        twice,
      );
    }
    const labels = candidates.map((i) => (Number.isNaN(r(i).cardiomegaly) ? 0 : r(i).cardiomegaly));
    result.valCandidates = candidates.length;
    try {
      for (const p of stratifiedShuffleSplit(labels, 1 - o.valFrac, o.seed).test) assignment.set(candidates[p]!, 'val');
    } catch (e) {
      if (!(e instanceof StratifiedSplitError)) throw e;
      throw new SplitInputError(
        `the train/val split of ${dset} (StratifiedShuffleSplit over ${candidates.length} training rows, ` +
          `${labels.filter((l) => l !== 0).length} positive) is impossible: ${e.message}.`,
      );
    }
  }
  return result;
}

/** Every dataset of the file, each with its own rules, in order of first appearance. */
export function splitRows(rows: readonly MetaRow[], o: SplitOptions): SplitResult {
  const byDataset = new Map<string, number[]>();
  rows.forEach((row, i) => {
    const list = byDataset.get(row.dset);
    if (list) list.push(i);
    else byDataset.set(row.dset, [i]);
  });
  const assignment = new Map<number, SplitName>();
  const datasets: DatasetResult[] = [];
  for (const [dset, indices] of byDataset) {
    const rules = DATASET_RULES[dset];
    if (!rules) throw new SplitInputError(`no split rules for dataset "${dset}"`, indices);
    datasets.push(splitDataset(rows, indices, rules, o, assignment));
  }
  return { assignment, datasets };
}
