// Data-parallel training over worker-thread replicas (stages/lib/tf/data-parallel.ts), checked numerically: the
// summed micro-batch gradient equals the whole batch's gradient, every replica keeps the same weights (batch-norm
// statistics included), results do not depend on the number of workers, inference neither, and a replica's failure
// is a clear error, not a hang.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryShards, type ShardSet } from '../../stages/lib/shards.js';
import { selectBackend } from '../../stages/lib/tf/backend.js';
import { ReplicaError, ReplicaPool } from '../../stages/lib/tf/data-parallel.js';
import { toInputTensor } from '../../stages/lib/tf/images.js';
import { mixBatch } from '../../stages/lib/tf/mixup.js';
import { buildModel, type Arch } from '../../stages/lib/tf/models.js';
import { crossEntropySum, flatten, type GradBatch } from '../../stages/lib/tf/replica.js';
import { Rng } from '../../stages/lib/tf/rng.js';
import { train, type TrainConfig } from '../../stages/train/classifier/trainer.js';
import { discImage } from './fixtures.js';

const SIZE = 24;

function batchOf(n: number, seed: number, lambda: number | null): GradBatch {
  const rng = new Rng(seed);
  const labels = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const pixels = new Uint8Array(n * SIZE * SIZE);
  labels.forEach((l, i) => pixels.set(discImage(SIZE, SIZE * (l ? 0.33 : 0.18), rng), i * SIZE * SIZE));
  return { pixels, labels, height: SIZE, width: SIZE, norm: { imageSize: SIZE, mean: 0.4, std: 0.3 }, lambda };
}

/** The whole batch's gradient in this thread, the textbook way: mean cross-entropy of the mixed batch. */
function fullBatchGradient(model: tf.LayersModel, b: GradBatch): Float32Array {
  return tf.tidy(() => {
    const n = b.labels.length;
    const x0 = toInputTensor(b.pixels, n, b.height, b.width, b.norm.imageSize, b.norm.mean, b.norm.std);
    const y0 = tf.oneHot(tf.tensor1d(b.labels, 'int32'), 2).toFloat() as tf.Tensor2D;
    const { x, y } = b.lambda === null ? { x: x0, y: y0 } : mixBatch(x0, y0, b.lambda);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => crossEntropySum(model.apply(x, { training: true }) as tf.Tensor2D, y, n), vars);
    const parts = vars.map((v) => grads[v.name]!.dataSync());
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) out.set(p, (at += p.length) - p.length);
    return out;
  });
}

async function poolOf(arch: Arch, workers: number, seed = 5): Promise<{ pool: ReplicaPool; model: tf.LayersModel }> {
  const model = buildModel(arch, SIZE, seed);
  const pool = await ReplicaPool.start({ backend: 'wasm', workers, model, optimizer: { lr: 0.01, weightDecay: 5e-4 } });
  return { pool, model };
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('data-parallel gradients', () => {
  it('the sum of the micro-batch gradients (3 workers, micro-batches of 4) equals the whole batch gradient', async () => {
    const { pool, model } = await poolOf('tiny_cnn', 3);
    try {
      for (const lambda of [null, 0.7]) {
        const b = batchOf(11, 1, lambda); // 11 rows: micro-batches 4 + 4 + 3, MixUp partners across their borders
        const got = await pool.gradients(b, 4);
        const want = fullBatchGradient(model, b);
        expect(got.grads.length).toBe(want.length);
        let maxDiff = 0;
        let maxAbs = 0;
        for (let i = 0; i < want.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(got.grads[i]! - want[i]!));
          maxAbs = Math.max(maxAbs, Math.abs(want[i]!));
        }
        expect(maxAbs).toBeGreaterThan(1e-3); // a gradient that is not trivially zero
        expect(maxDiff).toBeLessThan(1e-5 * Math.max(1, maxAbs));
        expect(got.stats).toBeNull();
      }
    } finally {
      await pool.close();
    }
  });

  it('every replica holds the same weights after steps, and 1 or 3 workers give the same bits', async () => {
    const run = async (workers: number): Promise<Float32Array[]> => {
      const { pool } = await poolOf('tiny_cnn', workers);
      try {
        expect(pool.size).toBe(workers);
        for (let s = 0; s < 3; s++) await pool.step(batchOf(12, 10 + s, 0.6), 4, 1);
        return await Promise.all(Array.from({ length: pool.size }, (_, r) => pool.weights(r)));
      } finally {
        await pool.close();
      }
    };
    const three = await run(3);
    expect(three[1]).toEqual(three[0]);
    expect(three[2]).toEqual(three[0]);
    const [one] = await run(1);
    expect(one).toEqual(three[0]);
  });

  it('batch norm: moving statistics stay identical across replicas and do not depend on the worker count', async () => {
    const run = async (workers: number): Promise<Float32Array[]> => {
      const { pool, model } = await poolOf('small_cnn_bn', workers);
      try {
        const before = flatten(model.nonTrainableWeights);
        for (let s = 0; s < 2; s++) {
          const g = await pool.gradients(batchOf(8, 20 + s, 0.5), 4);
          expect(g.stats).not.toBeNull();
          expect(g.stats!.length).toBe(before.length);
          await pool.apply(g.grads, g.stats);
        }
        return await Promise.all(Array.from({ length: pool.size }, (_, r) => pool.weights(r)));
      } finally {
        await pool.close();
      }
    };
    const two = await run(2);
    expect(two[1]).toEqual(two[0]);
    expect((await run(1))[0]).toEqual(two[0]);
  });
});

describe('data-parallel training and inference', () => {
  let set: ShardSet;
  beforeAll(() => {
    const rng = new Rng(3);
    const rows = Array.from({ length: 60 }, (_, i) => ({ image_id: `i${i}`, split: i < 40 ? 'train' : 'val', Cardiomegaly: String(i % 2) }));
    set = memoryShards({ width: SIZE, height: SIZE }, rows, rows.map((_, i) => discImage(SIZE, SIZE * (i % 2 ? 0.33 : 0.18), rng)));
  });
  afterAll(async () => set.close());

  it('train(): the same seed gives the same metrics and weights with 1 or 3 workers', async () => {
    const cfg: TrainConfig = {
      arch: 'tiny_cnn', imageSize: SIZE, epochs: 2, batchSize: 12, lr: 0.003, weightDecay: 5e-4, mixupAlpha: 1,
      imbalancedSampler: true, gradClip: 1, seed: 9, microBatch: 4,
    };
    const labels = new Map(set.rows.map((r, i) => [i, Number(r['Cardiomegaly'])]));
    const data = { set, train: [...Array(40).keys()], val: [...Array(20).keys()].map((i) => 40 + i), labels, mean: 0.4, std: 0.3 };
    const go = async (workers: number): Promise<{ metrics: unknown; weights: Float32Array; workers: number }> => {
      let weights = new Float32Array();
      const r = await train(cfg, data, {
        progress: () => undefined,
        log: () => undefined,
        checkpoint: async (which, model) => {
          if (which === 'last') weights = flatten(model.weights);
        },
      }, { backend: 'wasm', workers });
      return { metrics: r.epochs, weights, workers: r.workers };
    };
    const one = await go(1);
    const three = await go(3);
    expect(one.workers).toBe(1);
    expect(three.workers).toBe(3);
    expect(three.metrics).toEqual(one.metrics);
    expect(three.weights).toEqual(one.weights);
  });

  it('predictions do not depend on the number of workers or the batch size', async () => {
    const model = buildModel('tiny_cnn', SIZE, 4);
    const rows = [...Array(60).keys()].reverse();
    const norm = { imageSize: SIZE, mean: 0.4, std: 0.3 };
    const predict = async (workers: number, batch: number): Promise<Float32Array> => {
      const pool = await ReplicaPool.start({ backend: 'wasm', workers, model });
      try {
        const done: number[] = [];
        const r = await pool.predictRows(set, rows, norm, batch, (d) => done.push(d));
        expect(done[done.length - 1]).toBe(60);
        return r.probs;
      } finally {
        await pool.close();
      }
    };
    const ref = await predict(1, 64);
    expect(await predict(3, 7)).toEqual(ref);
  });

  it("a replica's failure is a clear error naming it, and the pool still closes", async () => {
    const { pool } = await poolOf('tiny_cnn', 2);
    try {
      const err = await pool.apply(new Float32Array(3), null).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ReplicaError);
      expect((err as Error).message).toMatch(/^replica \d: /);
      await expect(pool.weights(7)).rejects.toThrow(/no replica 7 \(pool of 2\)/);
    } finally {
      await pool.close();
    }
  });
});
