/**
 * Turning shard pixels (uint8, N×H×W) into the network's input: scale to [0, 1], normalise with the training set's
 * mean/std (METHODS C.5 normalises with the TRAINING dataset's constants, also at inference on other datasets), and
 * resize to the model's input size when the shards were written at another size.
 */
import * as tf from '@tensorflow/tfjs';

export function toInputTensor(
  pixels: Uint8Array,
  n: number,
  height: number,
  width: number,
  imageSize: number,
  mean: number,
  std: number,
): tf.Tensor4D {
  const f = new Float32Array(pixels.length);
  const a = 1 / (255 * std);
  const b = -mean / std;
  for (let i = 0; i < pixels.length; i++) f[i] = pixels[i]! * a + b;
  const x = tf.tensor4d(f, [n, height, width, 1]);
  if (height === imageSize && width === imageSize) return x;
  // Antialiasing is not available in tfjs; bilinear with half-pixel centres is the closest plain resize.
  const r = tf.image.resizeBilinear(x, [imageSize, imageSize], false, true);
  x.dispose();
  return r;
}

/** Mean and std of pixels/255 over the given images, read in chunks (the training split's statistics). */
export async function pixelStats(
  readBatch: (indices: readonly number[]) => Promise<Uint8Array>,
  indices: readonly number[],
  chunk = 256,
): Promise<{ mean: number; std: number }> {
  const hist = new Float64Array(256);
  for (let i = 0; i < indices.length; i += chunk) {
    const px = await readBatch(indices.slice(i, i + chunk));
    for (let k = 0; k < px.length; k++) hist[px[k]!]!++;
  }
  let n = 0;
  let s = 0;
  let s2 = 0;
  for (let v = 0; v < 256; v++) {
    const c = hist[v]!;
    n += c;
    s += c * (v / 255);
    s2 += c * (v / 255) * (v / 255);
  }
  if (n === 0) return { mean: 0, std: 1 };
  const mean = s / n;
  const std = Math.sqrt(Math.max(0, s2 / n - mean * mean));
  return { mean, std: std > 1e-8 ? std : 1 };
}
