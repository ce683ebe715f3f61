// numpy compatibility of the bootstrap's random numbers. Expected values were printed by numpy 2.4
// (np.random.SeedSequence(42), np.random.default_rng(42)...) and are pasted here as fixtures.
import { describe, expect, it } from 'vitest';
import { generateState64, seedPool } from '../../stages/evaluate/lib/rng/seed-sequence.js';
import { Pcg64, pcg64Seed } from '../../stages/evaluate/lib/rng/pcg64.js';
import { Pcg64Kernel } from '../../stages/evaluate/lib/rng/pcg64-wasm.js';

describe('SeedSequence(42)', () => {
  it('has numpy\'s entropy pool', () => {
    expect(Array.from(seedPool(42))).toEqual([1662858758, 128880814, 1875164712, 753753205]);
  });
  it('generate_state(4, uint64) matches numpy', () => {
    expect(generateState64(42, 4).map((x) => x.toString(16))).toEqual([
      '9f1e2e6dcd540ab7', 'd57873dc79fb94b6', '7d282a1b64d420b7', '336579714692d5ff',
    ]);
  });
  it('seeds PCG64 with numpy\'s state and increment', () => {
    const s = pcg64Seed(42);
    expect(s.state).toBe(274674114334540486603088602300644985544n);
    expect(s.inc).toBe(332724090758049132448979897138935081983n);
  });
});

describe('PCG64 (BigInt reference)', () => {
  it('default_rng(42).random() = 0.7739560485559633', () => {
    expect(new Pcg64(42).random()).toBe(0.7739560485559633);
  });
  it('random_raw(3)', () => {
    const g = new Pcg64(42);
    expect([g.next64(), g.next64(), g.next64()].map((x) => x.toString(16))).toEqual([
      'c621fbcd16d92688', '705a5661a791ffc1', 'dbcd12c26eda1624',
    ]);
  });
  it('integers(5816, size=10) and two consecutive integers(7, size=7) calls', () => {
    const g = new Pcg64(42);
    expect(Array.from({ length: 10 }, () => g.integer(5816))).toEqual([519, 4501, 3806, 2552, 2518, 4993, 499, 4055, 1171, 547]);
    const h = new Pcg64(42);
    // The 32-bit half left over from one call is used by the next: numpy keeps it in the bit generator.
    expect(Array.from({ length: 14 }, () => h.integer(7))).toEqual([0, 5, 4, 3, 3, 6, 0, 4, 1, 0, 3, 6, 5, 5]);
  });
});

describe('PCG64 wasm kernel', () => {
  it('produces the reference\'s 64- and 32-bit streams', () => {
    const a = new Pcg64(2024);
    const b = new Pcg64Kernel(2024);
    for (let i = 0; i < 1000; i++) expect(b.next64()).toBe(a.next64());
    for (let i = 0; i < 1001; i++) expect(b.next32()).toBe(a.next32());
  });
  it('bounded integers agree, including ranges where Lemire rejects often', () => {
    for (const n of [2, 3, 7, 5816, 1_000_003, 3 * 2 ** 30, 2 ** 31 + 1]) {
      const a = new Pcg64(42);
      const b = new Pcg64Kernel(42);
      for (let i = 0; i < 2000; i++) expect(b.integer(n)).toBe(a.integer(n));
    }
  });
  it('resample counts equal counting positives among reference draws', () => {
    const pred = Uint8Array.from({ length: 97 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    const counts = new Pcg64Kernel(42).resampleCounts(pred, 50);
    const ref = new Pcg64(42);
    for (let r = 0; r < 50; r++) {
      let k = 0;
      for (let i = 0; i < pred.length; i++) k += pred[ref.integer(pred.length)]!;
      expect(counts[r]).toBe(k);
    }
  });
  it('a one-row sample draws nothing (numpy returns the constant without touching the generator)', () => {
    expect(Array.from(new Pcg64Kernel(42).resampleCounts(Uint8Array.of(1), 3))).toEqual([1, 1, 1]);
  });
});
