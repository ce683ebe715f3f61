/**
 * Eval-mode predictions of a model on one batch of shard pixels: softmax probabilities and raw logits, with the
 * TRAINING set's normalisation (validation during training and the infer stage both use this, through a replica of
 * the model in each worker: see data-parallel.ts). A row's result does not depend on the other rows of its batch.
 */
import * as tf from '@tensorflow/tfjs';
import { toInputTensor } from './images.js';

export interface InputNorm {
  imageSize: number;
  mean: number;
  std: number;
}

export function predictBatch(
  model: tf.LayersModel,
  pixels: Uint8Array,
  n: number,
  height: number,
  width: number,
  norm: InputNorm,
): { probs: Float32Array; logits: Float32Array } {
  return tf.tidy(() => {
    const x = toInputTensor(pixels, n, height, width, norm.imageSize, norm.mean, norm.std);
    const out = model.predict(x) as tf.Tensor2D;
    // Copies that own their buffers: a replica hands them to another thread.
    return { probs: Float32Array.from(tf.softmax(out).dataSync()), logits: Float32Array.from(out.dataSync()) };
  });
}
