// BCa pieces against numpy/scipy. Expected values: numpy 2.4 / scipy 1.17 (percentile, ndtr, ndtri) and an
// emulation of arch 8's IIDBootstrap.conf_int(np.mean, method="bca") in numpy (printed, pasted here).
import { describe, expect, it } from 'vitest';
import { bcaInterval, jackknifeAcceleration } from '../../stages/evaluate/lib/bootstrap.js';
import { normCdf, normPpf } from '../../stages/evaluate/lib/normal.js';
import { percentileSorted } from '../../stages/evaluate/lib/percentile.js';
import { pandasNumber } from '../../stages/lib/pandas-csv.js';
import { npRound, rint } from '../../stages/lib/pynum.js';

const boot = (resamples: number, seed = 42, confidence = 0.95) => ({ resamples, seed, confidence });
const bits = (xs: number[]) => Uint8Array.from(xs);

describe('rounding as numpy', () => {
  it('rounds half to even', () => {
    expect([rint(0.5), rint(1.5), rint(2.5), rint(-0.5), rint(-1.5), rint(2.4)]).toEqual([0, 2, 2, -0, -2, 2]);
    expect(npRound(0.26515, 4)).toBe(0.2652); // 0.26515 is stored just above the tie
    expect(npRound(100 * (1768 / 5816), 2)).toBe(30.4);
  });
  it('writes floats like Python', () => {
    const f = (x: number) => pandasNumber(x, 'float');
    expect([f(0), f(100), f(30.4), f(6.9767)]).toEqual(['0.0', '100.0', '30.4', '6.9767']);
    // Python repr switches to exponent form below 1e-4 (a tiny CI bound), where JavaScript still writes 0.00005.
    expect([f(5e-5), f(0.0001), f(1.2e-7), f(1e16)]).toEqual(['5e-05', '0.0001', '1.2e-07', '1e+16']);
  });
});

describe('normal distribution', () => {
  it('ppf matches scipy.special.ndtri', () => {
    const cases: Array<[number, number]> = [
      [0.025, -1.9599639845400545], [0.975, 1.959963984540054], [0.3, -0.5244005127080409], [0.5, 0],
      [1e-5, -4.264890793922825], [0.999, 3.090232306167813],
    ];
    for (const [p, z] of cases) expect(normPpf(p)).toBeCloseTo(z, 13);
    expect(normPpf(0)).toBe(-Infinity);
    expect(normPpf(1)).toBe(Infinity);
  });
  it('cdf matches scipy.special.ndtr', () => {
    const cases: Array<[number, number]> = [
      [-1.959963984540054, 0.025], [0.3, 0.6179114221889526], [2.1, 0.9821355794371834], [5, 0.9999997133484281],
    ];
    for (const [z, p] of cases) expect(normCdf(z)).toBeCloseTo(p, 14);
    expect(normCdf(-3.5) / 0.00023262907903552502).toBeCloseTo(1, 12);
    expect(normCdf(-8) / 6.22096057427174e-16).toBeCloseTo(1, 10);
  });
});

describe('numpy percentile (linear)', () => {
  it('matches np.percentile(np.arange(10)**2, q)', () => {
    const a = Array.from({ length: 10 }, (_, i) => i * i);
    const got = [0, 2.5, 33.3, 50, 97.5, 100].map((q) => percentileSorted(a, q));
    expect(got).toEqual([0, 0.225, 8.985, 20.5, 77.17500000000001, 81]);
    expect(percentileSorted(a, 0.0003)).toBe(2.6999999999999996e-5);
    expect(percentileSorted(a, 99.9997)).toBe(80.99954100000001);
    const b = Array.from({ length: 12000 }, (_, i) => i * 0.37);
    expect([2.4999, 97.5001, 13.33333, 0.001].map((q) => percentileSorted(b, q))).toEqual([
      110.98631036999998, 4328.64368963, 591.950518679, 0.04439630000000001,
    ]);
  });
});

describe('BCa interval (arch IIDBootstrap, seed 42, 12,000 resamples)', () => {
  it('matches arch on small known cases', () => {
    const n333 = Array.from({ length: 333 }, (_, i) => ((i * 31) % 97 < 60 ? 1 : 0));
    expect(bcaInterval(bits(n333), boot(12000))).toEqual({ lower: 56.1562, upper: 66.6667 });
    const n200 = Array.from({ length: 200 }, (_, i) => ((i * 7919) % 11 < 2 ? 1 : 0));
    expect(bcaInterval(bits(n200), boot(12000))).toEqual({ lower: 13, upper: 23.5 });
    expect(bcaInterval(bits(n200), boot(2000, 123, 0.9))).toEqual({ lower: 14, upper: 22.5 });
    expect(bcaInterval(bits([1, 0, 0, 1, 0, 0, 0, 1, 0, 0]), boot(12000))).toEqual({ lower: 0, upper: 50 });
    const n43 = [...Array(20).fill(0), 1, ...Array(22).fill(0)];
    expect(bcaInterval(bits(n43), boot(12000))).toEqual({ lower: 0, upper: 6.9767 });
  });
  it('depends on seed and number of resamples', () => {
    expect(bcaInterval(bits([1, 1, 0, 1, 1]), boot(12000))).toEqual({ lower: 0, upper: 100 });
    expect(bcaInterval(bits([1, 1, 0, 1, 1]), boot(1000, 7))).toEqual({ lower: 20, upper: 100 });
  });
  it('degenerate bins give (point, point)', () => {
    expect(bcaInterval(bits(Array(37).fill(0)), boot(12000))).toEqual({ lower: 0, upper: 0, degenerate: 'bias' });
    expect(bcaInterval(bits(Array(12).fill(1)), boot(12000))).toEqual({ lower: 100, upper: 100, degenerate: 'bias' });
    expect(bcaInterval(bits([1]), boot(100))).toEqual({ lower: 100, upper: 100, degenerate: 'bias' });
    expect(jackknifeAcceleration(10, 0)).toBeUndefined();
    expect(jackknifeAcceleration(10, 10)).toBeUndefined();
  });
  it('lower ≤ point ≤ upper on many random bins', () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let t = 0; t < 40; t++) {
      const n = 5 + Math.floor(rand() * 300);
      const p = rand();
      const x = Uint8Array.from({ length: n }, () => (rand() < p ? 1 : 0));
      const k = x.reduce((a, b) => a + b, 0);
      const ci = bcaInterval(x, boot(500, t));
      const point = (100 * k) / n;
      expect(ci.lower).toBeLessThanOrEqual(point + 1e-9);
      expect(ci.upper).toBeGreaterThanOrEqual(point - 1e-9);
      expect(ci.lower).toBeGreaterThanOrEqual(0);
      expect(ci.upper).toBeLessThanOrEqual(100);
    }
  });
  it('jackknife acceleration equals the O(n²) leave-one-out computation', () => {
    const x = [1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0];
    const n = x.length;
    const theta = x.map((_, i) => (100 * x.filter((_, j) => j !== i).reduce((a, b) => a + b, 0)) / (n - 1));
    const mean = theta.reduce((a, b) => a + b, 0) / n;
    const u = theta.map((t) => mean - t);
    const a = u.reduce((s, v) => s + v ** 3, 0) / (6 * u.reduce((s, v) => s + v ** 2, 0) ** 1.5);
    expect(jackknifeAcceleration(n, 4)).toBeCloseTo(a, 14);
  });
});
