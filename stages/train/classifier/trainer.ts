/**
 * The training loop of `train/classifier`, following the authors' setup where it applies (METHODS C.6): softmax
 * cross-entropy (soft targets under MixUp), AdamW with decoupled weight decay, MixUp on every training batch, the
 * imbalanced sampler, gradient clipping by global norm, validation every epoch (no MixUp), the best checkpoint by
 * minimum validation loss plus the last one. It knows nothing of stage contexts: data comes in as a shard set and
 * index lists, checkpoints and progress go out through hooks, so tests drive it directly.
 *
 * Determinism: every random draw (initial weights, sampler, MixUp λ) is seeded. On the wasm and cpu backends (single
 * thread, fixed reduction order) the same seed, data and backend give bit-identical weights and metrics. tfjs-node
 * (multi-threaded Eigen reductions) and GPU backends may differ in the last bits from run to run, like PyTorch's
 * non-deterministic kernels that the authors allow; different backends never match bit for bit.
 */
import * as tf from '@tensorflow/tfjs';
import type { ShardSet } from '../../lib/shards.js';
import { AdamW, clipByGlobalNorm } from '../../lib/tf/adamw.js';
import { toInputTensor } from '../../lib/tf/images.js';
import { predictRows } from '../../lib/tf/predict.js';
import { auroc, averagePrecision } from '../../lib/tf/metrics.js';
import { mixBatch, sampleLambda } from '../../lib/tf/mixup.js';
import { buildModel, type Arch } from '../../lib/tf/models.js';
import { Rng } from '../../lib/tf/rng.js';
import { epochOrder } from '../../lib/tf/sampler.js';

export interface TrainConfig {
  arch: Arch;
  imageSize: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** MixUp α; 0 disables MixUp. */
  mixupAlpha: number;
  imbalancedSampler: boolean;
  /** Max global gradient norm; 0 disables clipping. */
  gradClip: number;
  seed: number;
}

export interface TrainData {
  set: ShardSet;
  /** Row indices (into set.rows) of the training and validation images. */
  train: number[];
  val: number[];
  /** Label (0/1) of every row index used above. */
  labels: Map<number, number>;
  /** Normalisation of pixels/255 (the training split's statistics). */
  mean: number;
  std: number;
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  val_loss: number;
  val_acc: number;
  val_auroc: number;
  val_ap: number;
  /** Global gradient norm before clipping, mean over the epoch's batches. */
  grad_norm: number;
  seconds: number;
  train_img_per_s: number;
}

export interface TrainHooks {
  progress(done: number, total: number, message: string): void;
  log(message: string): void;
  signal?: AbortSignal;
  /** Called with the model after an epoch: `best` when validation loss improved, `last` after every epoch. */
  checkpoint(which: 'best' | 'last', model: tf.LayersModel, epoch: EpochMetrics): Promise<void>;
}

export interface TrainResult {
  epochs: EpochMetrics[];
  best: EpochMetrics;
  parameters: number;
}

export class TrainingAborted extends Error {}

/** Mean softmax cross-entropy against (soft) targets [B, C]. */
export function softCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1))) as tf.Scalar);
}

export async function train(cfg: TrainConfig, data: TrainData, hooks: TrainHooks): Promise<TrainResult> {
  if (data.train.length === 0) throw new RangeError('no training images');
  if (data.val.length === 0) throw new RangeError('no validation images');
  const { height, width } = data.set.index;
  const rng = new Rng(cfg.seed);
  const model = buildModel(cfg.arch, cfg.imageSize, cfg.seed);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = new AdamW({ lr: cfg.lr, weightDecay: cfg.weightDecay });
  const trainLabels = data.train.map((i) => data.labels.get(i)!);
  const batchesPerEpoch = Math.ceil(data.train.length / cfg.batchSize);
  const totalBatches = batchesPerEpoch * cfg.epochs;
  const history: EpochMetrics[] = [];
  let best: EpochMetrics | undefined;
  let lastProgress = 0;

  try {
    for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
      const t0 = performance.now();
      const order = epochOrder(trainLabels, cfg.imbalancedSampler, rng).map((k) => data.train[k]!);
      let lossSum = 0;
      let normSum = 0;
      let seen = 0;
      // Read the next batch from disk while the current one trains.
      let pending = data.set.readBatch(order.slice(0, cfg.batchSize));
      for (let b = 0; b < batchesPerEpoch; b++) {
        if (hooks.signal?.aborted) throw new TrainingAborted('training cancelled');
        const idx = order.slice(b * cfg.batchSize, (b + 1) * cfg.batchSize);
        const pixels = await pending;
        if (b + 1 < batchesPerEpoch) pending = data.set.readBatch(order.slice((b + 1) * cfg.batchSize, (b + 2) * cfg.batchSize));
        const lambda = cfg.mixupAlpha > 0 ? sampleLambda(cfg.mixupAlpha, rng) : 1;
        const { loss, norm } = trainStep(model, variables, optimizer, cfg, {
          pixels,
          labels: idx.map((i) => data.labels.get(i)!),
          height,
          width,
          mean: data.mean,
          std: data.std,
          lambda,
        });
        lossSum += loss * idx.length;
        normSum += norm;
        seen += idx.length;
        const done = (epoch - 1) * batchesPerEpoch + b + 1;
        const now = performance.now();
        if (now - lastProgress > 500 || done === totalBatches) {
          lastProgress = now;
          hooks.progress(done, totalBatches, `epoch ${epoch}/${cfg.epochs} batch ${b + 1}/${batchesPerEpoch} loss ${(lossSum / seen).toFixed(4)}`);
        }
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const val = await evaluate(model, data, cfg);
      const m: EpochMetrics = {
        epoch,
        train_loss: lossSum / seen,
        val_loss: val.loss,
        val_acc: val.acc,
        val_auroc: val.auroc,
        val_ap: val.ap,
        grad_norm: normSum / batchesPerEpoch,
        seconds: (performance.now() - t0) / 1000,
        train_img_per_s: seen / trainSeconds,
      };
      history.push(m);
      hooks.log(
        `epoch ${epoch}/${cfg.epochs}: train loss ${m.train_loss.toFixed(4)}, val loss ${m.val_loss.toFixed(4)}, ` +
          `val acc ${m.val_acc.toFixed(3)}, val AUROC ${m.val_auroc.toFixed(3)}, val AP ${m.val_ap.toFixed(3)}, ` +
          `${m.train_img_per_s.toFixed(1)} img/s`,
      );
      // Strictly lower only: on ties the earlier epoch stays best (Lightning's ModelCheckpoint behaves the same).
      if (best === undefined || m.val_loss < best.val_loss || (Number.isNaN(best.val_loss) && !Number.isNaN(m.val_loss))) {
        best = m;
        await hooks.checkpoint('best', model, m);
      }
      await hooks.checkpoint('last', model, m);
    }
    return { epochs: history, best: best!, parameters: model.countParams() };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

interface StepBatch {
  pixels: Uint8Array;
  labels: number[];
  height: number;
  width: number;
  mean: number;
  std: number;
  lambda: number;
}

/** One optimisation step; returns the (MixUp) loss and the gradient norm before clipping. */
export function trainStep(
  model: tf.LayersModel,
  variables: tf.Variable[],
  optimizer: AdamW,
  cfg: Pick<TrainConfig, 'imageSize' | 'gradClip' | 'mixupAlpha'>,
  batch: StepBatch,
): { loss: number; norm: number } {
  return tf.tidy(() => {
    const n = batch.labels.length;
    const x0 = toInputTensor(batch.pixels, n, batch.height, batch.width, cfg.imageSize, batch.mean, batch.std);
    const y0 = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), 2).toFloat() as tf.Tensor2D;
    const { x, y } = cfg.mixupAlpha > 0 ? mixBatch(x0, y0, batch.lambda) : { x: x0, y: y0 };
    const { value, grads } = tf.variableGrads(
      () => softCrossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, y),
      variables,
    );
    const clipped = cfg.gradClip > 0 ? clipByGlobalNorm(grads, cfg.gradClip) : { grads, norm: globalNorm(grads) };
    optimizer.applyGradients(clipped.grads, variables);
    return { loss: value.dataSync()[0]!, norm: clipped.norm };
  });
}

function globalNorm(grads: tf.NamedTensorMap): number {
  return tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))))).dataSync()[0]!;
}

async function evaluate(
  model: tf.LayersModel,
  data: TrainData,
  cfg: TrainConfig,
): Promise<{ loss: number; acc: number; auroc: number; ap: number }> {
  const { probs } = await predictRows(model, data.set, data.val, { imageSize: cfg.imageSize, mean: data.mean, std: data.std }, 64);
  const labels = data.val.map((i) => data.labels.get(i)!);
  const scores: number[] = [];
  let loss = 0;
  let correct = 0;
  labels.forEach((l, k) => {
    const p0 = probs[2 * k]!;
    const p1 = probs[2 * k + 1]!;
    loss -= Math.log(Math.max(l === 1 ? p1 : p0, 1e-12));
    if ((p1 > p0 ? 1 : 0) === l) correct++;
    scores.push(p1);
  });
  return { loss: loss / labels.length, acc: correct / labels.length, auroc: auroc(labels, scores), ap: averagePrecision(labels, scores) };
}
