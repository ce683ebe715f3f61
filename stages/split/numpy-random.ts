/**
 * numpy's legacy `np.random.RandomState(seed)` — the MT19937 generator pandas `sample(random_state=…)` and sklearn's
 * `check_random_state` build — for the calls the authors' split recipe makes: `permutation(n)` and `choice(n | array,
 * size, replace=False)`. Ported from numpy 1.24 (unchanged since 1.17, frozen by numpy's stream-compatibility policy
 * for RandomState): `mt19937_seed` (integer seeds), `mt19937_next`, `random_interval` (masked rejection) and the
 * Fisher–Yates `shuffle` that `permutation` applies to `arange(n)`.
 */

import { pyRound } from '../lib/pynum.js';

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class RandomState {
  private readonly key = new Uint32Array(N);
  private pos = N;

  /** `RandomState(seed)` with an integer seed in [0, 2^32 − 1] (numpy's `_legacy_seeding` → `mt19937_seed`). */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`Seed must be between 0 and 2**32 - 1, got ${seed}`);
    }
    let s = seed >>> 0;
    for (let i = 0; i < N; i++) {
      this.key[i] = s;
      // (1812433253 * (s ^ (s >> 30)) + i + 1) mod 2^32, with a 32-bit multiply.
      s = (Math.imul(1812433253, (s ^ (s >>> 30)) >>> 0) + i + 1) >>> 0;
    }
    this.pos = N;
  }

  private generate(): void {
    const k = this.key;
    let i = 0;
    let y: number;
    for (; i < N - M; i++) {
      y = (k[i]! & UPPER_MASK) | (k[i + 1]! & LOWER_MASK);
      k[i] = k[i + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; i < N - 1; i++) {
      y = (k[i]! & UPPER_MASK) | (k[i + 1]! & LOWER_MASK);
      k[i] = k[i + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    y = (k[N - 1]! & UPPER_MASK) | (k[0]! & LOWER_MASK);
    k[N - 1] = k[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.pos = 0;
  }

  /** `mt19937_next`: the next tempered 32-bit output. */
  nextUint32(): number {
    if (this.pos === N) this.generate();
    let y = this.key[this.pos++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** numpy `random_interval(max)`: uniform in [0, max] by rejection on the smallest covering bit mask. */
  randomInterval(max: number): number {
    if (max === 0) return 0;
    if (max > 0xffffffff) throw new RangeError('populations above 2^32 need the 64-bit path, which is not ported');
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let value: number;
    do value = (this.nextUint32() & mask) >>> 0;
    while (value > max);
    return value;
  }

  /** `shuffle(x)` of a 1-d array, in place: for i = n−1 … 1, swap x[i] with x[random_interval(i)]. */
  shuffle<T>(x: T[]): void {
    for (let i = x.length - 1; i >= 1; i--) {
      const j = this.randomInterval(i);
      const t = x[i]!;
      x[i] = x[j]!;
      x[j] = t;
    }
  }

  /** `permutation(n)`: a shuffled `arange(n)`. */
  permutation(n: number): number[] {
    const a = Array.from({ length: n }, (_, i) => i);
    this.shuffle(a);
    return a;
  }

  /** `choice(a, size, replace=False)` without weights: `a[permutation(len(a))[:size]]` (an integer `a` is arange(a)). */
  choiceWithoutReplacement<T>(a: readonly T[] | number, size: number): Array<T | number> {
    const pop = typeof a === 'number' ? a : a.length;
    if (!Number.isInteger(size) || size < 0) throw new RangeError('Negative dimensions are not allowed');
    if (size > pop) throw new RangeError("Cannot take a larger sample than population when 'replace=False'");
    const idx = this.permutation(pop).slice(0, size);
    return typeof a === 'number' ? idx : idx.map((i) => a[i]!);
  }
}

/**
 * pandas `obj.sample(n=…)` / `obj.sample(frac=…)` with `random_state=seed` (pandas 1.5 and 2.x, core/sample.py): the
 * positions, in draw order, of `RandomState(seed).choice(len, size, replace=False)`; `frac` gives size = Python
 * `round(frac * len)` (half to even).
 */
export function pandasSample(length: number, how: { n: number } | { frac: number }, seed: number): number[] {
  const size = 'n' in how ? how.n : pyRound(how.frac * length, 0);
  return new RandomState(seed).choiceWithoutReplacement(length, size) as number[];
}
