/**
 * One replica of a model in one tfjs engine (a worker thread, or the stage's own thread for backends that are
 * multi-threaded themselves): the unit of data-parallel training and inference (data-parallel.ts coordinates them).
 *
 * A training step is split into MICRO-BATCHES of a fixed size (`micro_batch`): each micro-batch's gradient is the
 * gradient of (sum of its per-image losses) / (images in the whole batch), so the micro-batch gradients add up to the
 * gradient of the batch's mean loss. Which replica computes which micro-batch does not change a single bit of its
 * gradient, and the coordinator adds them in micro-batch order — so a run's numbers depend on the seed and the
 * micro-batch size, never on how many workers shared the work.
 *
 * Batch-norm layers see one micro-batch at a time (their statistics are per micro-batch, like DistributedDataParallel
 * without SyncBatchNorm); their moving averages are reset to the step's start before each micro-batch, and the
 * coordinator averages the micro-batches' updated values so every replica keeps the same ones.
 */
import * as tf from '@tensorflow/tfjs';
import { AdamW } from './adamw.js';
import { toInputTensor } from './images.js';
import { mixPair, mixPartner } from './mixup.js';
import { predictBatch, type InputNorm } from './predict.js';

/** What a replica is built from: the model's topology and every weight, plus the optimizer when it trains. */
export interface ReplicaInit {
  /** `model.toJSON(null, false)`: the layers config. */
  topology: object;
  /** Every weight of the model (model.weights order), laid end to end. */
  weights: Float32Array;
  optimizer?: { lr: number; weightDecay: number };
}

/** One training batch as the coordinator hands it to every replica (each computes only its micro-batches). */
export interface GradBatch {
  /** n × height × width uint8 pixels, the whole batch in order. */
  pixels: Uint8Array;
  /** 0/1 label of each image. */
  labels: number[];
  height: number;
  width: number;
  norm: InputNorm;
  /** MixUp λ of this batch, or null without MixUp. */
  lambda: number | null;
}

/** Rows [start, end) of the batch. */
export type MicroBatch = readonly [number, number];

export interface MicroGrad {
  /** Gradients of every trainable weight (model.trainableWeights order), laid end to end. */
  grads: Float32Array;
  /** This micro-batch's share of the batch's mean loss. */
  loss: number;
  /** Non-trainable weights (batch-norm moving statistics) after this micro-batch's forward pass; null when none. */
  stats: Float32Array | null;
}

/** Consecutive micro-batches of at most `size` rows covering a batch of `n` rows. */
export function microBatches(n: number, size: number): MicroBatch[] {
  const out: MicroBatch[] = [];
  for (let a = 0; a < n; a += size) out.push([a, Math.min(n, a + size)]);
  return out;
}

/** Every variable's values laid end to end, in the given order. */
export function flatten(vars: readonly tf.LayerVariable[]): Float32Array {
  const total = vars.reduce((s, v) => s + v.read().size, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const v of vars) {
    const d = v.read().dataSync() as Float32Array;
    out.set(d, at);
    at += d.length;
  }
  return out;
}

/** The inverse of flatten: writes consecutive slices of `flat` into the variables. */
export function assignFlat(vars: readonly tf.LayerVariable[], flat: Float32Array): void {
  let at = 0;
  for (const v of vars) {
    const { size, shape } = v.read();
    if (at + size > flat.length) throw new RangeError(`weights: ${flat.length} values for more variables than that`);
    tf.tidy(() => {
      v.write(tf.tensor(flat.subarray(at, at + size), shape, 'float32'));
    });
    at += size;
  }
  if (at !== flat.length) throw new RangeError(`weights: ${flat.length} values for ${at} variable entries`);
}

/** What a model needs to be rebuilt elsewhere (another thread): its topology and weights. */
export function replicaInit(model: tf.LayersModel, optimizer?: ReplicaInit['optimizer']): ReplicaInit {
  return { topology: model.toJSON(null, false) as object, weights: flatten(model.weights), ...(optimizer ? { optimizer } : {}) };
}

export class Replica {
  private readonly trainable: tf.LayerVariable[];
  private readonly variables: tf.Variable[];
  private readonly nonTrainable: tf.LayerVariable[];
  /** Trainable weights in all (the length of a gradient). */
  private readonly size: number;

  private constructor(
    readonly model: tf.LayersModel,
    private readonly optimizer: AdamW | undefined,
  ) {
    this.trainable = model.trainableWeights;
    this.variables = this.trainable.map((w) => w.read() as tf.Variable);
    this.nonTrainable = model.nonTrainableWeights;
    this.size = this.variables.reduce((s, v) => s + v.size, 0);
  }

  static async create(init: ReplicaInit): Promise<Replica> {
    const model = await tf.models.modelFromJSON(init.topology as tf.io.ModelJSON['modelTopology'] as never);
    assignFlat(model.weights, init.weights);
    const optimizer = init.optimizer ? new AdamW(init.optimizer) : undefined;
    return new Replica(model, optimizer);
  }

  /** Gradients of the given micro-batches of `batch`, each on its own (see the file comment). */
  gradients(batch: GradBatch, micro: readonly MicroBatch[]): MicroGrad[] {
    const n = batch.labels.length;
    const hw = batch.height * batch.width;
    const start = this.nonTrainable.length > 0 ? this.nonTrainable.map((v) => tf.keep(v.read().clone())) : [];
    try {
      return micro.map(([a, b], k) => {
        if (k > 0) start.forEach((t, i) => this.nonTrainable[i]!.write(t));
        const m = b - a;
        const flat = new Float32Array(this.size);
        // The tidy returns a plain number: tfjs walks whatever a tidy returns, element by element for typed arrays.
        const loss = tf.tidy(() => {
          const x0 = toInputTensor(batch.pixels.subarray(a * hw, b * hw), m, batch.height, batch.width, batch.norm.imageSize, batch.norm.mean, batch.norm.std);
          const y0 = tf.oneHot(tf.tensor1d(batch.labels.slice(a, b), 'int32'), 2).toFloat() as tf.Tensor2D;
          let x = x0;
          let y = y0;
          if (batch.lambda !== null) {
            const partners = Array.from({ length: m }, (_, i) => mixPartner(a + i, n));
            const px = new Uint8Array(m * hw);
            partners.forEach((p, i) => px.set(batch.pixels.subarray(p * hw, (p + 1) * hw), i * hw));
            const xp = toInputTensor(px, m, batch.height, batch.width, batch.norm.imageSize, batch.norm.mean, batch.norm.std);
            const yp = tf.oneHot(tf.tensor1d(partners.map((p) => batch.labels[p]!), 'int32'), 2).toFloat() as tf.Tensor2D;
            x = mixPair(x0, xp, batch.lambda);
            y = mixPair(y0, yp, batch.lambda);
          }
          const { value, grads } = tf.variableGrads(() => crossEntropySum(this.model.apply(x, { training: true }) as tf.Tensor2D, y, n), this.variables);
          let at = 0;
          for (const v of this.variables) {
            const g = grads[v.name]!.dataSync();
            flat.set(g, at);
            at += g.length;
          }
          return value.dataSync()[0]!;
        });
        return { grads: flat, loss, stats: this.nonTrainable.length > 0 ? flatten(this.nonTrainable) : null };
      });
    } finally {
      for (const t of start) t.dispose();
    }
  }

  /** One optimizer step with the batch's (summed, clipped) gradient; `stats` replaces the moving statistics. */
  apply(grads: Float32Array, stats: Float32Array | null): void {
    if (this.optimizer === undefined) throw new Error('this replica was built without an optimizer');
    const named: tf.NamedTensorMap = {};
    let at = 0;
    for (const v of this.variables) {
      named[v.name] = tf.tensor(grads.subarray(at, at + v.size), v.shape, 'float32');
      at += v.size;
    }
    if (at !== grads.length) throw new RangeError(`gradients: ${grads.length} values for ${at} weights`);
    try {
      this.optimizer.applyGradients(named, this.variables);
    } finally {
      for (const t of Object.values(named)) t.dispose();
    }
    if (stats !== null) assignFlat(this.nonTrainable, stats);
  }

  weights(): Float32Array {
    return flatten(this.model.weights);
  }

  predict(pixels: Uint8Array, n: number, height: number, width: number, norm: InputNorm): { probs: Float32Array; logits: Float32Array } {
    return predictBatch(this.model, pixels, n, height, width, norm);
  }

  dispose(): void {
    this.optimizer?.dispose();
    this.model.dispose();
  }
}

/**
 * Softmax cross-entropy against (soft) targets [B, C], summed over the rows and divided by `divisor` (the whole
 * batch's size): the micro-batches' values add up to the batch's mean loss.
 */
export function crossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor2D, divisor: number): tf.Scalar {
  return tf.tidy(() => tf.div(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)))), divisor) as tf.Scalar);
}
