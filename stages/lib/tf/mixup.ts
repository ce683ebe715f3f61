/**
 * MixUp (torchvision v2 `MixUp`, α = 1 by default, as in METHODS C.6): one λ ~ Beta(α, α) per batch; the batch is
 * mixed with itself rolled by one position (torchvision's pairing): x' = λ·x + (1−λ)·roll(x), and the one-hot targets
 * likewise, giving soft targets for the cross-entropy. λ comes from our seeded Rng so runs reproduce.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from './rng.js';

export interface MixedBatch {
  x: tf.Tensor4D;
  /** Soft targets [B, classes]. */
  y: tf.Tensor2D;
  lambda: number;
}

export function sampleLambda(alpha: number, rng: Rng): number {
  return rng.beta(alpha, alpha);
}

/** Rolls along the batch axis by one: row i takes row i−1 (row 0 takes the last), like torch.roll(x, 1, 0). */
function rollBatch<T extends tf.Tensor>(t: T): T {
  const n = t.shape[0]!;
  if (n < 2) return t.clone();
  const last = tf.slice(t, n - 1, 1);
  const rest = tf.slice(t, 0, n - 1);
  return tf.concat([last, rest], 0) as T;
}

/** Mixes a batch; `y` is one-hot [B, classes]. Call inside tf.tidy. */
export function mixBatch(x: tf.Tensor4D, y: tf.Tensor2D, lambda: number): MixedBatch {
  const xm = tf.add(tf.mul(x, lambda), tf.mul(rollBatch(x), 1 - lambda)) as tf.Tensor4D;
  const ym = tf.add(tf.mul(y, lambda), tf.mul(rollBatch(y), 1 - lambda)) as tf.Tensor2D;
  return { x: xm, y: ym, lambda };
}
