/**
 * scikit-learn's `StratifiedShuffleSplit(train_size=…, random_state=seed)`, first split — what the authors' data module
 * uses to hold out validation rows (`stratify_split_by_ids`). Ported from sklearn 1.2 (`_iter_indices`,
 * `_approximate_mode`, `_validate_shuffle_split`; the same code in the authors' 1.6): classes are the sorted distinct
 * labels; each class's share of n_train and n_test is the floor of its proportional share, the remaining draws going
 * to the largest remainders with ties broken by `rng.choice`; then each class's rows are permuted and cut.
 */
import { RandomState } from './numpy-random.js';

export class StratifiedSplitError extends Error {}

/** `_approximate_mode(class_counts, n_draws, rng)`. */
export function approximateMode(counts: readonly number[], nDraws: number, rng: RandomState): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const continuous = counts.map((c) => (c / total) * nDraws);
  const floored = continuous.map(Math.floor);
  let needToAdd = Math.trunc(nDraws - floored.reduce((a, b) => a + b, 0));
  if (needToAdd > 0) {
    const remainder = continuous.map((c, i) => c - floored[i]!);
    const values = [...new Set(remainder)].sort((a, b) => b - a); // np.sort(np.unique(remainder))[::-1]
    for (const value of values) {
      const inds = remainder.flatMap((r, i) => (r === value ? [i] : []));
      const addNow = Math.min(inds.length, needToAdd);
      for (const i of rng.choiceWithoutReplacement(inds, addNow) as number[]) floored[i]! += 1;
      needToAdd -= addNow;
      if (needToAdd === 0) break;
    }
  }
  return floored;
}

/**
 * Positions (into `labels`) of the first split's train and test parts. Labels are compared as numbers (a CSV's 0 and
 * 0.0 are one class). Raises StratifiedSplitError where sklearn raises ValueError.
 */
export function stratifiedShuffleSplit(labels: readonly number[], trainSize: number, seed: number): { train: number[]; test: number[] } {
  const n = labels.length;
  const nTrain = Math.floor(trainSize * n);
  const nTest = n - nTrain;
  if (nTrain === 0) {
    throw new StratifiedSplitError(`with n_samples=${n} and train_size=${trainSize}, the resulting train set would be empty`);
  }
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const classOf = new Map(classes.map((c, i) => [c, i]));
  // np.split(np.argsort(y_indices, kind="mergesort"), …): each class's positions in order.
  const classIndices: number[][] = classes.map(() => []);
  labels.forEach((y, i) => classIndices[classOf.get(y)!]!.push(i));
  const counts = classIndices.map((c) => c.length);
  if (Math.min(...counts) < 2) {
    throw new StratifiedSplitError(
      `the least populated class has only 1 member (label ${classes[counts.indexOf(Math.min(...counts))]}), which is too few: each class needs at least 2`,
    );
  }
  if (nTrain < classes.length) throw new StratifiedSplitError(`the train size ${nTrain} is smaller than the number of classes ${classes.length}`);
  if (nTest < classes.length) throw new StratifiedSplitError(`the test size ${nTest} is smaller than the number of classes ${classes.length}`);

  const rng = new RandomState(seed);
  const nI = approximateMode(counts, nTrain, rng);
  const tI = approximateMode(counts.map((c, i) => c - nI[i]!), nTest, rng);
  const train: number[] = [];
  const test: number[] = [];
  classIndices.forEach((indices, i) => {
    const perm = rng.permutation(counts[i]!).map((p) => indices[p]!);
    train.push(...perm.slice(0, nI[i]));
    test.push(...perm.slice(nI[i], nI[i]! + tI[i]!));
  });
  // sklearn then returns rng.permutation(train), rng.permutation(test): the same members in another order.
  return { train, test };
}
