/**
 * numpy's `SeedSequence` (numpy/random/bit_generator.pyx), enough of it to turn an integer seed into the
 * 128-bit state and increment that `np.random.default_rng(seed)` gives PCG64. The authors' bootstrap used
 * `default_rng(42)`; porting this is what makes our BCa bounds bit-identical to theirs.
 */
const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XSHIFT = 16;
const POOL_SIZE = 4;

/** A seed (non-negative integer, any size) as little-endian 32-bit words, as numpy's `_coerce_to_uint32_array`. */
export function seedWords(seed: number | bigint): number[] {
  let s = BigInt(seed);
  if (s < 0n) throw new RangeError(`seed must be non-negative, got ${seed}`);
  if (s === 0n) return [0];
  const words: number[] = [];
  while (s > 0n) {
    words.push(Number(s & 0xffffffffn));
    s >>= 32n;
  }
  return words;
}

function mix(x: number, y: number): number {
  let r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
  r = (r ^ (r >>> XSHIFT)) >>> 0;
  return r;
}

/** The entropy pool (4 × uint32) numpy computes for `SeedSequence(seed)`. */
export function seedPool(seed: number | bigint): Uint32Array {
  const entropy = seedWords(seed);
  const pool = new Uint32Array(POOL_SIZE);
  let hashConst = INIT_A;
  const hashmix = (value: number): number => {
    let v = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    v = Math.imul(v, hashConst) >>> 0;
    return (v ^ (v >>> XSHIFT)) >>> 0;
  };
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < entropy.length ? entropy[i]! : 0);
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst]!, hashmix(pool[src]!));
    }
  }
  for (let src = POOL_SIZE; src < entropy.length; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst]!, hashmix(entropy[src]!));
  }
  return pool;
}

/** `SeedSequence(seed).generate_state(nWords, np.uint64)`. */
export function generateState64(seed: number | bigint, nWords: number): bigint[] {
  const pool = seedPool(seed);
  const words32: number[] = [];
  let hashConst = INIT_B;
  for (let i = 0; i < nWords * 2; i++) {
    let v = (pool[i % POOL_SIZE]! ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_B) >>> 0;
    v = Math.imul(v, hashConst) >>> 0;
    words32.push((v ^ (v >>> XSHIFT)) >>> 0);
  }
  const out: bigint[] = [];
  for (let i = 0; i < nWords; i++) out.push(BigInt(words32[2 * i]!) | (BigInt(words32[2 * i + 1]!) << 32n));
  return out;
}
