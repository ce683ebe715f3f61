// Gradient checks: the fast wasm Conv2DBackpropFilter / Conv2DBackpropInput / MaxPoolGrad kernels against the
// reference cpu backend, on seeded random shapes covering stride 1/2/3, same/valid/explicit padding, several channels.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/lib/tf/backend.js';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
interface Case { x: [number, number, number, number]; f: [number, number, number, number]; stride: number; pad: Pad }

/** Deterministic case generator (mulberry32), so a failure names a reproducible shape. */
function cases(seed: number, n: number): Case[] {
  let s = seed >>> 0;
  const rnd = (lo: number, hi: number): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (((t ^ (t >>> 14)) >>> 0) % (hi - lo + 1));
  };
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const k = [1, 2, 3, 5][rnd(0, 3)]!;
    const kw = rnd(0, 3) === 0 ? rnd(1, 4) : k;
    const h = rnd(k + 2, 14);
    const w = rnd(kw + 2, 14);
    const pad: Pad = (['same', 'valid', 'same', 'valid', 'explicit'] as const)[rnd(0, 4)] === 'explicit'
      ? [[0, 0], [rnd(0, 2), rnd(0, 2)], [rnd(0, 2), rnd(0, 2)], [0, 0]]
      : (['same', 'valid'] as const)[rnd(0, 1)]!;
    out.push({ x: [rnd(1, 3), h, w, [1, 2, 3, 8, 16][rnd(0, 4)]!], f: [k, kw, 0, [1, 4, 7, 16][rnd(0, 3)]!], stride: [1, 2, 3][rnd(0, 2)]!, pad });
    out[i]!.f[2] = out[i]!.x[3];
  }
  return out;
}

async function convGrads(backend: string, c: Case): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend(backend);
  const out = tf.tidy(() => {
    const x = tf.randomUniform(c.x, -1, 1, 'float32', 7);
    const f = tf.randomUniform(c.f, -1, 1, 'float32', 8);
    // A non-uniform upstream gradient (sin of the output) so every dy element matters.
    const g = tf.grads((...args: tf.Tensor[]) =>
      tf.sum(tf.sin(tf.conv2d(args[0] as tf.Tensor4D, args[1] as tf.Tensor4D, c.stride, c.pad as 'same'))),
    );
    const [dx, dw] = g([x, f]);
    return [dx!.dataSync() as Float32Array, dw!.dataSync() as Float32Array];
  });
  return [out[0]!, out[1]!];
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  const choice = await selectBackend('wasm');
  expect(choice.name).toBe('wasm');
});

describe('wasm conv gradient kernels vs cpu', () => {
  const all = cases(20261127, 40);
  it.each(all.map((c) => [JSON.stringify(c), c] as const))('%s', async (_name, c) => {
    const [dxCpu, dwCpu] = await convGrads('cpu', c);
    const [dxWasm, dwWasm] = await convGrads('wasm', c);
    // Sums of up to ~1,000 products of values in [-1, 1]: float32 rounding stays far below 1e-3.
    expect(maxAbsDiff(dxWasm, dxCpu)).toBeLessThan(1e-3);
    expect(maxAbsDiff(dwWasm, dwCpu)).toBeLessThan(1e-3);
  });

  // Kernels wider than the image ('same' padding shifts a whole row out) and 1-pixel images: the edge cases of the
  // stride-1 contiguous-copy im2col.
  const edge: Case[] = [
    { x: [2, 3, 3, 2], f: [5, 5, 2, 3], stride: 1, pad: 'same' },
    { x: [1, 1, 4, 1], f: [3, 3, 1, 2], stride: 1, pad: 'same' },
    { x: [3, 2, 1, 3], f: [4, 2, 3, 2], stride: 1, pad: 'same' },
    // Large enough for dW to run in several chunks (one image of 96×96 per chunk; 2 images of 64×64 per chunk).
    { x: [3, 96, 96, 2], f: [3, 3, 2, 4], stride: 1, pad: 'same' },
    { x: [5, 64, 64, 1], f: [3, 3, 1, 3], stride: 1, pad: 'same' },
    { x: [2, 128, 96, 1], f: [3, 3, 1, 2], stride: 2, pad: 'valid' },
  ];
  it.each(edge.map((c) => [JSON.stringify(c), c] as const))('edge %s', async (_name, c) => {
    const [dxCpu, dwCpu] = await convGrads('cpu', c);
    const [dxWasm, dwWasm] = await convGrads('wasm', c);
    expect(maxAbsDiff(dxWasm, dxCpu)).toBeLessThan(1e-3);
    expect(maxAbsDiff(dwWasm, dwCpu)).toBeLessThan(1e-3);
  });

  it('covers strides 1, 2 and 3 and both padding modes', () => {
    expect(new Set(all.map((c) => c.stride))).toEqual(new Set([1, 2, 3]));
    const pads = new Set(all.map((c) => (typeof c.pad === 'string' ? c.pad : 'explicit')));
    expect(pads).toEqual(new Set(['same', 'valid', 'explicit']));
  });

  it('registers a Conv2DBackpropFilter kernel that the stock wasm backend lacks', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });
});

describe('wasm MaxPoolGrad vs cpu', () => {
  const pools: Array<[[number, number, number, number], number, number, 'same' | 'valid']> = [
    [[2, 8, 8, 3], 2, 2, 'valid'], // the tiled 2×2 fast path (JS: channels not a multiple of 4)
    [[2, 8, 8, 4], 2, 2, 'valid'], // the tiled 2×2 fast path in SIMD
    [[3, 16, 12, 16], 2, 2, 'valid'],
    [[2, 9, 7, 4], 2, 2, 'valid'], // odd size: last row/column outside every window
    [[1, 9, 9, 2], 3, 2, 'same'], // overlapping windows with padding
    [[3, 6, 10, 5], 3, 1, 'valid'],
  ];
  it.each(pools)('x %j window %i stride %i %s', async (shape, size, stride, pad) => {
    const grad = async (backend: string): Promise<Float32Array> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
        // Weight each pooled output differently so a gradient routed to the wrong window shows.
        const g = tf.grad((a: tf.Tensor) => {
          const y = tf.maxPool(a as tf.Tensor4D, size, stride, pad);
          return tf.sum(tf.mul(y, tf.range(1, 1 + y.size).reshape(y.shape)));
        });
        return g(x).dataSync() as Float32Array;
      });
    };
    expect(maxAbsDiff(await grad('wasm'), await grad('cpu'))).toBeLessThan(1e-5);
  });
});

describe('wasm MaxPoolGrad on ReLU outputs (ties: the first maximum of the window gets the gradient)', () => {
  it.each([[[2, 8, 8, 4]], [[1, 6, 10, 12]], [[2, 4, 4, 3]]])('x %j', async (shape) => {
    const grad = async (backend: string): Promise<number[]> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        // Rounded ReLU outputs: many windows hold several equal maxima (zeros, equal integers).
        const x = tf.relu(tf.round(tf.randomNormal(shape, 0, 1.5, 'float32', 11)));
        const g = tf.grad((a: tf.Tensor) => {
          const y = tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid');
          return tf.sum(tf.mul(y, tf.range(1, 1 + y.size).reshape(y.shape)));
        });
        return Array.from(g(x).dataSync());
      });
    };
    expect(await grad('wasm')).toEqual(await grad('cpu'));
  });
});

describe('wasm bias Add and ReLU gradient (SIMD) vs cpu, bit for bit', () => {
  it.each([[[2, 5, 6, 8]], [[3, 4]], [[2, 3, 3, 6]], [[7, 12]]])('bias add, x %j', async (shape) => {
    const sum = async (backend: string): Promise<number[]> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 12);
        const b = tf.randomNormal([shape[shape.length - 1]!], 0, 1, 'float32', 13);
        return Array.from(tf.add(x, b).dataSync());
      });
    };
    expect(await sum('wasm')).toEqual(await sum('cpu'));
  });

  it.each([[[3, 5, 7]], [[2, 8, 8, 16]], [[1]]])('relu gradient, x %j (sizes with and without a tail of < 4)', async (shape) => {
    const grad = async (backend: string): Promise<number[]> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.round(tf.randomNormal(shape, 0, 2, 'float32', 14)); // exact zeros included: step(0) = 0
        const w = tf.randomNormal(shape, 0, 1, 'float32', 15);
        return Array.from(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), w)))(x).dataSync());
      });
    };
    expect(await grad('wasm')).toEqual(await grad('cpu'));
  });
});

describe('wasm Sum and Mean over all axes but the last (bias gradients, BN statistics) vs cpu', () => {
  it.each([[[4, 6, 5, 3]], [[2, 7]], [[3, 1, 9, 16]], [[5, 7, 12]], [[1, 4]]])('x %j', async (shape) => {
    const sums = async (backend: string): Promise<[Float32Array, number[]]> => {
      await tf.setBackend(backend);
      let keepShape: number[] = [];
      const values = tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 5);
        const axes = shape.slice(0, -1).map((_, i) => i);
        keepShape = tf.sum(x, axes, true).shape;
        expect(tf.mean(x, axes, true).shape).toEqual(keepShape);
        return Float32Array.from([...tf.sum(x, axes).dataSync(), ...tf.mean(x, axes).dataSync()]);
      });
      return [values, keepShape];
    };
    const [w, wShape] = await sums('wasm');
    const [c, cShape] = await sums('cpu');
    expect(maxAbsDiff(w, c)).toBeLessThan(1e-4);
    expect(wShape).toEqual(cShape);
  });
});

describe('wasm Tile vs cpu', () => {
  const cases: Array<[number[], number[], 'float32' | 'int32' | 'bool']> = [
    [[1, 1, 1, 5], [2, 3, 4, 1], 'float32'], // batch-norm statistics to activation size
    [[2, 3], [3, 2], 'float32'],
    [[3, 1, 2], [1, 4, 3], 'int32'],
    [[4], [5], 'bool'],
    [[2, 2, 2], [1, 1, 1], 'float32'],
    [[2, 0], [3, 2], 'float32'],
  ];
  it.each(cases)('x %j reps %j %s', async (shape, reps, dtype) => {
    const tiled = async (backend: string): Promise<number[]> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const n = shape.reduce((p, d) => p * d, 1);
        const x = tf.tensor(Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 2 : i * 1.5 - 3)), shape, dtype);
        const t = tf.tile(x, reps);
        return [...t.shape, ...Array.from(t.dataSync())];
      });
    };
    expect(await tiled('wasm')).toEqual(await tiled('cpu'));
  });
});

describe('wasm Identity shares data', () => {
  it('a clone outlives its disposed original and a reassigned variable', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const c = tf.clone(x);
    x.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3]);
    const v = tf.variable(tf.tensor1d([4, 5]));
    const snap = tf.clone(v);
    v.assign(tf.tensor1d([6, 7]));
    expect(Array.from(snap.dataSync())).toEqual([4, 5]);
    expect(Array.from(v.dataSync())).toEqual([6, 7]);
    c.dispose();
    snap.dispose();
    v.dispose();
  });
});
