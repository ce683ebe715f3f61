/**
 * The training loop of `train/classifier`, following the authors' setup where it applies (METHODS C.6): softmax
 * cross-entropy (soft targets under MixUp), AdamW with decoupled weight decay, MixUp on every training batch, the
 * imbalanced sampler, gradient clipping by global norm, validation every epoch (no MixUp), the best checkpoint by
 * minimum validation loss plus the last one. It knows nothing of stage contexts: data comes in as a shard set and
 * index lists, checkpoints and progress go out through hooks, so tests drive it directly.
 *
 * The work is data-parallel over model replicas in worker threads (lib/tf/data-parallel.ts): each batch is cut into
 * micro-batches of `microBatch` images whose gradients are added in a fixed order, so the result does not depend on
 * the number of workers.
 *
 * Determinism: every random draw (initial weights, sampler, MixUp λ) is seeded. On the wasm and cpu backends (one
 * thread per replica, fixed reduction order) the same seed, data, micro-batch size and backend give bit-identical
 * weights and metrics, with any number of workers. tfjs-node (multi-threaded Eigen reductions) and GPU backends may
 * differ in the last bits from run to run, like PyTorch's non-deterministic kernels that the authors allow; different
 * backends never match bit for bit.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ShardSet } from '../../lib/shards.js';
import { runsOnOneThread, type BackendName } from '../../lib/tf/backend.js';
import { ReplicaPool } from '../../lib/tf/data-parallel.js';
import { auroc, averagePrecision } from '../../lib/tf/metrics.js';
import { sampleLambda } from '../../lib/tf/mixup.js';
import { buildModel, type Arch } from '../../lib/tf/models.js';
import { assignFlat } from '../../lib/tf/replica.js';
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
  /** Images per micro-batch: the unit of gradient work (and of batch-norm statistics). */
  microBatch: number;
}

/** Where the work runs: changes the speed, never the numbers (on one-thread backends). */
export interface TrainRuntime {
  backend: BackendName;
  /** Worker threads (replicas) wanted; capped by the micro-batches per batch. */
  workers: number;
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
  /** Replicas that shared the work. */
  workers: number;
  /**
   * Clock times, provenance only (never outputs): the whole run, the training passes alone (validation and
   * checkpoints excluded) and the images they saw, and each epoch with its validation.
   */
  timing: { totalSeconds: number; trainPassSeconds: number; images: number; epochSeconds: number[] };
}

export class TrainingAborted extends Error {}

export async function train(cfg: TrainConfig, data: TrainData, hooks: TrainHooks, runtime: TrainRuntime): Promise<TrainResult> {
  if (data.train.length === 0) throw new RangeError('no training images');
  if (data.val.length === 0) throw new RangeError('no validation images');
  const { height, width } = data.set.index;
  const rng = new Rng(cfg.seed);
  const model = buildModel(cfg.arch, cfg.imageSize, cfg.seed);
  const norm = { imageSize: cfg.imageSize, mean: data.mean, std: data.std };
  const trainLabels = data.train.map((i) => data.labels.get(i)!);
  const batchesPerEpoch = Math.ceil(data.train.length / cfg.batchSize);
  const totalBatches = batchesPerEpoch * cfg.epochs;
  const microPerBatch = Math.ceil(Math.min(cfg.batchSize, data.train.length) / cfg.microBatch);
  const history: EpochMetrics[] = [];
  const started = performance.now();
  const timing = { totalSeconds: 0, trainPassSeconds: 0, images: 0, epochSeconds: [] as number[] };
  let best: EpochMetrics | undefined;
  let lastProgress = 0;
  let pool: ReplicaPool | undefined;

  try {
    pool = await ReplicaPool.start({
      backend: runtime.backend,
      workers: Math.min(runtime.workers, microPerBatch),
      model,
      optimizer: { lr: cfg.lr, weightDecay: cfg.weightDecay },
    });
    const capped =
      runsOnOneThread(runtime.backend) && microPerBatch < runtime.workers
        ? ` (${runtime.workers} cores granted; a smaller micro_batch gives more micro-batches to share out)`
        : '';
    hooks.log(
      `data-parallel: ${pool.size} worker thread(s), ${microPerBatch} micro-batch(es) of ≤ ${cfg.microBatch} images per ` +
        `batch of ${cfg.batchSize}${capped}`,
    );
    const checkpoint = async (which: 'best' | 'last', m: EpochMetrics): Promise<void> => {
      assignFlat(model.weights, await pool!.weights());
      await hooks.checkpoint(which, model, m);
    };
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
        const lambda = cfg.mixupAlpha > 0 ? sampleLambda(cfg.mixupAlpha, rng) : null;
        const { loss, norm: gradNorm } = await pool.step(
          { pixels, labels: idx.map((i) => data.labels.get(i)!), height, width, norm, lambda },
          cfg.microBatch,
          cfg.gradClip,
        );
        lossSum += loss * idx.length;
        normSum += gradNorm;
        seen += idx.length;
        const done = (epoch - 1) * batchesPerEpoch + b + 1;
        const now = performance.now();
        if (now - lastProgress > 500 || done === totalBatches) {
          lastProgress = now;
          hooks.progress(done, totalBatches, `epoch ${epoch}/${cfg.epochs} batch ${b + 1}/${batchesPerEpoch} loss ${(lossSum / seen).toFixed(4)}`);
        }
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const val = await evaluate(pool, data, norm);
      const m: EpochMetrics = {
        epoch,
        train_loss: lossSum / seen,
        val_loss: val.loss,
        val_acc: val.acc,
        val_auroc: val.auroc,
        val_ap: val.ap,
        grad_norm: normSum / batchesPerEpoch,
      };
      history.push(m);
      timing.trainPassSeconds += trainSeconds;
      timing.images += seen;
      timing.epochSeconds.push((performance.now() - t0) / 1000);
      hooks.log(
        `epoch ${epoch}/${cfg.epochs}: train loss ${m.train_loss.toFixed(4)}, val loss ${m.val_loss.toFixed(4)}, ` +
          `val acc ${m.val_acc.toFixed(3)}, val AUROC ${m.val_auroc.toFixed(3)}, val AP ${m.val_ap.toFixed(3)}, ` +
          `${(seen / trainSeconds).toFixed(1)} img/s`,
      );
      // Strictly lower only: on ties the earlier epoch stays best (Lightning's ModelCheckpoint behaves the same).
      if (best === undefined || m.val_loss < best.val_loss || (Number.isNaN(best.val_loss) && !Number.isNaN(m.val_loss))) {
        best = m;
        await checkpoint('best', m);
      }
      await checkpoint('last', m);
    }
    timing.totalSeconds = (performance.now() - started) / 1000;
    return { epochs: history, best: best!, parameters: model.countParams(), workers: pool.size, timing };
  } finally {
    await pool?.close();
    model.dispose();
  }
}

async function evaluate(
  pool: ReplicaPool,
  data: TrainData,
  norm: { imageSize: number; mean: number; std: number },
): Promise<{ loss: number; acc: number; auroc: number; ap: number }> {
  const { probs } = await pool.predictRows(data.set, data.val, norm, 64);
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
