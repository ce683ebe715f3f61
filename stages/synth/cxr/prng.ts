/**
 * A small seeded PRNG (sfc32, seeded through splitmix32 from a string or number): same seed → same stream on every
 * platform, no dependency, and fast enough to draw per-pixel noise for thousands of images.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  uniform(lo: number, hi: number): number;
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number;
  /** Standard normal (Box–Muller; one value per call, the pair's second half is cached). */
  normal(mean?: number, sd?: number): number;
  bernoulli(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** Lower-case hex string of `n` characters (VinDr-style image ids). */
  hex(n: number): string;
  /** A child stream, independent of later draws from this one (e.g. one per image, so order does not matter). */
  fork(label: string | number): Rng;
}

/** FNV-1a over the seed's text: maps any seed to 32 bits. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createRng(seed: string | number): Rng {
  const key = String(seed);
  const sm = splitmix32(hash32(key));
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  const next32 = (): number => {
    // sfc32: passes PractRand to 2^42+ bytes; plenty for image synthesis.
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) next32();
  let spare: number | null = null;
  const rng: Rng = {
    next: () => next32() / 4294967296,
    uniform: (lo, hi) => lo + (hi - lo) * rng.next(),
    int: (lo, hi) => lo + Math.floor(rng.next() * (hi - lo + 1)),
    normal(mean = 0, sd = 1) {
      if (spare !== null) {
        const v = spare;
        spare = null;
        return mean + sd * v;
      }
      let u = 0;
      while (u === 0) u = rng.next();
      const r = Math.sqrt(-2 * Math.log(u));
      const th = 2 * Math.PI * rng.next();
      spare = r * Math.sin(th);
      return mean + sd * r * Math.cos(th);
    },
    bernoulli: (p) => rng.next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(rng.next() * items.length)]!;
    },
    hex(n) {
      let s = '';
      while (s.length < n) s += next32().toString(16).padStart(8, '0');
      return s.slice(0, n);
    },
    fork: (label) => createRng(`${key}/${String(label)}`),
  };
  return rng;
}
