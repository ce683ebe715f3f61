// Unit tests of the training building blocks: AdamW's decoupled decay, gradient clipping, MixUp, the imbalanced
// sampler and the seeded RNG, validation metrics, and the authors' number format in predictions.csv.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { pyRound4, predictionCells } from '../../stages/infer/format.js';
import { AdamW, clipByGlobalNorm } from '../../stages/lib/tf/adamw.js';
import { selectBackend } from '../../stages/lib/tf/backend.js';
import { auroc, averagePrecision } from '../../stages/lib/tf/metrics.js';
import { mixBatch, sampleLambda } from '../../stages/lib/tf/mixup.js';
import { Rng } from '../../stages/lib/tf/rng.js';
import { epochOrder, inverseFrequencyWeights, weightedDraw } from '../../stages/lib/tf/sampler.js';

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('AdamW', () => {
  it('decays weights directly (decoupled): with zero gradients w shrinks by exactly 1 − lr·wd per step', () => {
    const w = tf.variable(tf.tensor1d([10, -4, 0.5]), true, 'adamw_w1');
    const opt = new AdamW({ lr: 0.1, weightDecay: 0.5 });
    for (let i = 0; i < 3; i++) opt.applyGradients({ adamw_w1: tf.zeros([3]) }, [w]);
    const f = 0.95 ** 3;
    const got = Array.from(w.dataSync());
    [10 * f, -4 * f, 0.5 * f].forEach((want, i) => expect(got[i]).toBeCloseTo(want, 5));
    // Coupled L2 (decay folded into the gradient, then Adam-normalised) would move every weight by ~lr per step
    // whatever its size: 10 → ~9.7, not 10·0.95³ ≈ 8.57.
    expect(w.dataSync()[0]).toBeLessThan(8.6);
  });

  it('one step = decay then Adam: w1 = w0(1 − lr·wd) − lr·g/(|g| + ε)', () => {
    const w = tf.variable(tf.tensor1d([2, -3]), true, 'adamw_w2');
    const opt = new AdamW({ lr: 0.01, weightDecay: 0.1 });
    opt.applyGradients({ adamw_w2: tf.tensor1d([0.5, -2]) }, [w]);
    const [a, b] = Array.from(w.dataSync());
    expect(a).toBeCloseTo(2 * (1 - 0.001) - 0.01, 6);
    expect(b).toBeCloseTo(-3 * (1 - 0.001) + 0.01, 6);
  });

  it('rejects a non-positive learning rate', () => {
    expect(() => new AdamW({ lr: 0, weightDecay: 0 })).toThrow(/learning rate must be > 0/);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales all gradients together when the global norm exceeds the limit, and leaves them otherwise', () => {
    const g = Float32Array.from([3, 4]);
    expect(clipByGlobalNorm(g, 1)).toBeCloseTo(5, 6);
    expect(g[0]).toBeCloseTo(0.6, 5);
    expect(g[1]).toBeCloseTo(0.8, 5);
    const small = Float32Array.from([0.3, 0.4]);
    expect(clipByGlobalNorm(small, 1)).toBeCloseTo(0.5, 6);
    expect(Array.from(small)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    const off = Float32Array.from([30, 40]);
    expect(clipByGlobalNorm(off, 0)).toBeCloseTo(50, 6); // 0 = no clipping
    expect(Array.from(off)).toEqual([30, 40]);
  });
});

describe('MixUp', () => {
  it('draws the same λ sequence for the same seed and a different one for another seed', () => {
    const seq = (seed: number): number[] => {
      const r = new Rng(seed);
      return Array.from({ length: 5 }, () => sampleLambda(1, r));
    };
    expect(seq(42)).toEqual(seq(42));
    expect(seq(42)).not.toEqual(seq(43));
    expect(seq(42).every((l) => l > 0 && l < 1)).toBe(true);
  });

  it('mixes each image with its predecessor in the batch, targets likewise (soft targets sum to 1)', () => {
    const x = tf.tensor4d([1, 2, 3], [3, 1, 1, 1]);
    const y = tf.tensor2d([[1, 0], [0, 1], [0, 1]]);
    const m = mixBatch(x, y, 0.75);
    expect(Array.from(m.x.dataSync())).toEqual([0.75 * 1 + 0.25 * 3, 0.75 * 2 + 0.25 * 1, 0.75 * 3 + 0.25 * 2]);
    const ys = m.y.arraySync();
    expect(ys[1]).toEqual([0.25, 0.75]);
    for (const row of ys) expect(row[0]! + row[1]!).toBeCloseTo(1, 6);
  });

  it('Beta(α, α) from the seeded Rng has the right mean (α = 1 and α = 0.4), Beta(2, 5) too', () => {
    const r = new Rng(7);
    const mean = (f: () => number): number => Array.from({ length: 20000 }, f).reduce((s, v) => s + v, 0) / 20000;
    expect(mean(() => r.beta(1, 1))).toBeCloseTo(0.5, 1);
    expect(mean(() => r.beta(0.4, 0.4))).toBeCloseTo(0.5, 1);
    expect(mean(() => r.beta(2, 5))).toBeCloseTo(2 / 7, 1);
  });
});

describe('imbalanced sampler', () => {
  const labels = Array.from({ length: 200 }, (_, i) => (i < 20 ? 1 : 0)); // 10 % positives

  it('weights each image 1/count(label)', () => {
    const w = inverseFrequencyWeights(labels);
    expect(w[0]).toBeCloseTo(1 / 20);
    expect(w[199]).toBeCloseTo(1 / 180);
  });

  it('draws N indices with replacement, both classes about equally often, reproducibly by seed', () => {
    const a = epochOrder(labels, true, new Rng(1));
    expect(a).toHaveLength(200);
    expect(epochOrder(labels, true, new Rng(1))).toEqual(a);
    expect(epochOrder(labels, true, new Rng(2))).not.toEqual(a);
    const many = weightedDraw(inverseFrequencyWeights(labels), 20000, new Rng(3));
    const posShare = many.filter((i) => labels[i] === 1).length / many.length;
    expect(posShare).toBeGreaterThan(0.47);
    expect(posShare).toBeLessThan(0.53);
    expect(new Set(a).size).toBeLessThan(200); // with replacement: repeats
  });

  it('without the sampler an epoch is a seeded permutation of every image', () => {
    const p = epochOrder(labels, false, new Rng(5));
    expect([...p].sort((x, y) => x - y)).toEqual(labels.map((_, i) => i));
    expect(epochOrder(labels, false, new Rng(5))).toEqual(p);
  });
});

describe('validation metrics', () => {
  it('AUROC and average precision match sklearn on its documented example', () => {
    // sklearn.metrics.roc_auc_score / average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75 / 0.8333
    expect(auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBeCloseTo(0.75, 10);
    expect(averagePrecision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBeCloseTo(0.8333333, 6);
    expect(auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])).toBe(0.5); // ties: average ranks
    expect(auroc([1, 1], [0.2, 0.9])).toBeNaN();
  });
});

describe("the authors' number format", () => {
  it('writes Python reprs of values rounded to 4 dp', () => {
    expect([0.74214, 1, 0, 0.5, -0.25049, 12.34564, 0.00004, -0.00004].map(pyRound4)).toEqual(
      ['0.7421', '1.0', '0.0', '0.5', '-0.2505', '12.3456', '0.0', '-0.0'],
    );
  });

  it('pred/prob/out/loss/class_probs of one row', () => {
    // loss = −ln 0.40131234 = 0.91302… → "0.913" (Python drops the trailing zero).
    expect(predictionCells({ logits: [-0.1, 0.3], probs: [0.40131234, 0.59868766], label: 0 }, true)).toEqual(
      ['1', '0.5987', '0.3', '0.913', '[0.4013, 0.5987]'],
    );
    expect(predictionCells({ logits: [2, -1], probs: [0.95, 0.05], label: -1 }, false)).toEqual(['0', '0.95', '2.0', '[0.95, 0.05]']);
  });
});
