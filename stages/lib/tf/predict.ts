/**
 * Eval-mode predictions of a model on rows of a shard set, in batches: softmax probabilities and raw logits, with the
 * TRAINING set's normalisation (validation during training and the infer stage both use this).
 */
import * as tf from '@tensorflow/tfjs';
import type { ShardSet } from '../shards.js';
import { toInputTensor } from './images.js';

export async function predictRows(
  model: tf.LayersModel,
  set: ShardSet,
  rows: readonly number[],
  norm: { imageSize: number; mean: number; std: number },
  batchSize: number,
  onBatch?: (done: number) => void,
): Promise<{ probs: Float32Array; logits: Float32Array }> {
  const { height, width } = set.index;
  const probs = new Float32Array(rows.length * 2);
  const logits = new Float32Array(rows.length * 2);
  for (let i = 0; i < rows.length; i += batchSize) {
    const idx = rows.slice(i, i + batchSize);
    const px = await set.readBatch(idx);
    const [p, l] = tf.tidy(() => {
      const x = toInputTensor(px, idx.length, height, width, norm.imageSize, norm.mean, norm.std);
      const out = model.predict(x) as tf.Tensor2D;
      return [tf.softmax(out).dataSync(), out.dataSync()];
    });
    probs.set(p!, i * 2);
    logits.set(l!, i * 2);
    onBatch?.(Math.min(rows.length, i + batchSize));
  }
  return { probs, logits };
}
