/**
 * numpy's PCG64 (XSL-RR 128/64) and `Generator.integers(n)` for n ≤ 2^32 (Lemire's bounded method on the 32-bit
 * halves of each 64-bit output, low half first). BigInt reference implementation: exact and easy to audit, too
 * slow for 70 M draws; the bootstrap uses the WebAssembly twin in `pcg64-wasm.ts`, tested against this one.
 */
import { generateState64 } from './seed-sequence.js';

const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
export const PCG_MULT = (0x2360ed051fc65da4n << 64n) | 0x4385df649fccf645n;

export interface Pcg64State {
  state: bigint;
  inc: bigint;
}

/** The state `np.random.default_rng(seed)` starts from (pcg64_srandom: step, add seed, step). */
export function pcg64Seed(seed: number | bigint): Pcg64State {
  const [s0, s1, i0, i1] = generateState64(seed, 4) as [bigint, bigint, bigint, bigint];
  const initState = (s0 << 64n) | s1;
  const initSeq = (i0 << 64n) | i1;
  const inc = ((initSeq << 1n) | 1n) & MASK128;
  let state = (0n * PCG_MULT + inc) & MASK128;
  state = (state + initState) & MASK128;
  state = (state * PCG_MULT + inc) & MASK128;
  return { state, inc };
}

export class Pcg64 {
  state: bigint;
  readonly inc: bigint;
  private hasUint32 = false;
  private uinteger = 0;

  constructor(seed: number | bigint) {
    const s = pcg64Seed(seed);
    this.state = s.state;
    this.inc = s.inc;
  }

  next64(): bigint {
    this.state = (this.state * PCG_MULT + this.inc) & MASK128;
    const hi = this.state >> 64n;
    const lo = this.state & MASK64;
    const rot = Number(this.state >> 122n);
    const x = hi ^ lo;
    return ((x >> BigInt(rot)) | (x << BigInt((64 - rot) & 63))) & MASK64;
  }

  next32(): number {
    if (this.hasUint32) {
      this.hasUint32 = false;
      return this.uinteger;
    }
    const v = this.next64();
    this.hasUint32 = true;
    this.uinteger = Number(v >> 32n);
    return Number(v & 0xffffffffn);
  }

  /** `Generator.random()`: 53-bit double in [0, 1). */
  random(): number {
    return Number(this.next64() >> 11n) * 2 ** -53;
  }

  /** One draw of `Generator.integers(n)` (0 ≤ x < n, 1 < n ≤ 2^32), numpy's buffered Lemire rejection. */
  integer(n: number): number {
    if (n === 1) return 0; // numpy draws nothing for a range of one value
    const u = this.next32();
    let m = BigInt(u) * BigInt(n);
    let leftover = Number(m & 0xffffffffn);
    if (leftover < n) {
      const threshold = (2 ** 32 - n) % n;
      while (leftover < threshold) {
        m = BigInt(this.next32()) * BigInt(n);
        leftover = Number(m & 0xffffffffn);
      }
    }
    return Number(m >> 32n);
  }
}
