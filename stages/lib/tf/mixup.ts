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

/** λ·a + (1−λ)·b, elementwise: the one MixUp formula (a whole batch and a micro-batch use it alike). */
export function mixPair<T extends tf.Tensor>(a: T, b: T, lambda: number): T {
  return tf.add(tf.mul(a, lambda), tf.mul(b, 1 - lambda)) as T;
}

/** Mixes a batch; `y` is one-hot [B, classes]. Call inside tf.tidy. */
export function mixBatch(x: tf.Tensor4D, y: tf.Tensor2D, lambda: number): MixedBatch {
  return { x: mixPair(x, rollBatch(x), lambda), y: mixPair(y, rollBatch(y), lambda), lambda };
}

/**
 * Row i's MixUp partner in a batch of n: i − 1, and n − 1 for row 0 (torch.roll(x, 1, 0)). A micro-batch [a, b) of
 * the batch mixes with rows partner(a) … partner(b − 1), so it needs no other part of the batch than those rows.
 */
export function mixPartner(i: number, n: number): number {
  return (i + n - 1) % n;
}
