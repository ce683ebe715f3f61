/**
 * The bootstrap kernel in WebAssembly: numpy's PCG64 + buffered Lemire bounded integers, counting how many drawn
 * indices hit a positive. 128-bit multiplies need 64-bit integer arithmetic, which JS numbers lack (BigInt is ~50×
 * slower); wasm's i64 makes each draw a few nanoseconds with no allocation. Bit-identical to `pcg64.ts`.
 */
import { Pcg64, pcg64Seed } from './pcg64.js';
import { encodeModule, gget, gset, i32c, i64c, lget, lset, ltee, op, type } from './wasm-asm.js';

const M32 = 0xffffffffn;
const MULT_HI = 0x2360ed051fc65da4n;
const MULT_LO = 0x4385df649fccf645n;
const B0 = MULT_LO & M32;
const B1 = MULT_LO >> 32n;
// globals
const SHI = 0, SLO = 1, IHI = 2, ILO = 3, HAS = 4, BUF = 5;
// function indices
const F_NEXT64 = 0, F_NEXT32 = 1;
const { i32, i64 } = type;

/** state ← state·MULT + inc (mod 2^128); return XSL-RR output. Locals: lo hi a0 a1 p01 p10 mid. */
function next64Body(): number[] {
  const [lo, hi, a0, a1, p01, p10, mid] = [0, 1, 2, 3, 4, 5, 6];
  return [
    ...gget(SLO), ...i64c(M32), op.i64_and, ...lset(a0),
    ...gget(SLO), ...i64c(32n), op.i64_shr_u, ...lset(a1),
    ...lget(a0), ...i64c(B1), op.i64_mul, ...lset(p01),
    ...lget(a1), ...i64c(B0), op.i64_mul, ...lset(p10),
    // mid = (a0·b0 >> 32) + low32(p01) + low32(p10)
    ...lget(a0), ...i64c(B0), op.i64_mul, ...i64c(32n), op.i64_shr_u,
    ...lget(p01), ...i64c(M32), op.i64_and, op.i64_add,
    ...lget(p10), ...i64c(M32), op.i64_and, op.i64_add, ...lset(mid),
    // hi = mulhi(slo, MULT_LO) + slo·MULT_HI + shi·MULT_LO
    ...lget(a1), ...i64c(B1), op.i64_mul,
    ...lget(p01), ...i64c(32n), op.i64_shr_u, op.i64_add,
    ...lget(p10), ...i64c(32n), op.i64_shr_u, op.i64_add,
    ...lget(mid), ...i64c(32n), op.i64_shr_u, op.i64_add,
    ...gget(SLO), ...i64c(MULT_HI), op.i64_mul, op.i64_add,
    ...gget(SHI), ...i64c(MULT_LO), op.i64_mul, op.i64_add, ...lset(hi),
    // + inc, with the carry out of the low word
    ...gget(SLO), ...i64c(MULT_LO), op.i64_mul, ...gget(ILO), op.i64_add, ...ltee(lo), ...gset(SLO),
    ...lget(hi), ...gget(IHI), op.i64_add,
    ...lget(lo), ...gget(ILO), op.i64_lt_u, op.i64_extend_i32_u, op.i64_add, ...ltee(hi), ...gset(SHI),
    ...lget(hi), ...lget(lo), op.i64_xor, ...lget(hi), ...i64c(58n), op.i64_shr_u, op.i64_rotr,
  ];
}

/** numpy's pcg64_next32: low half of a fresh 64-bit output, the high half kept for the next call. */
function next32Body(): number[] {
  const v = 0;
  return [
    ...gget(HAS), op.if, i32,
    ...i32c(0), ...gset(HAS), ...gget(BUF),
    op.else,
    op.call, F_NEXT64, ...ltee(v), ...i64c(32n), op.i64_shr_u, op.i32_wrap_i64, ...gset(BUF),
    ...i32c(1), ...gset(HAS), ...lget(v), op.i32_wrap_i64,
    op.end,
  ];
}

/** m ← next32 · n (64-bit); locals given. */
const draw = (m: number, n64: number): number[] => [
  op.call, F_NEXT32, op.i64_extend_i32_u, ...lget(n64), op.i64_mul, ...ltee(m),
];

/** Lemire rejection: while low32(m) < threshold, draw again. Expects m on the stack (tee'd). */
const rejectLoop = (m: number, n64: number, thr: number): number[] => [
  op.i32_wrap_i64, ...lget(thr), op.i32_lt_u,
  op.if, type.void,
  op.block, type.void, op.loop, type.void,
  ...draw(m, n64), op.i32_wrap_i64, ...lget(thr), op.i32_ge_u, op.br_if, 1,
  op.br, 0,
  op.end, op.end,
  op.end,
];

/** integer(n) -> i32: one `Generator.integers(n)` draw (n ≥ 2). Params: n. Locals: m, thr, n64. */
function integerBody(): number[] {
  const [n, m, thr, n64] = [0, 1, 2, 3];
  return [
    ...lget(n), op.i64_extend_i32_u, ...lset(n64),
    ...i32c(0), ...lget(n), op.i32_sub, ...lget(n), op.i32_rem_u, ...lset(thr),
    ...draw(m, n64), ...rejectLoop(m, n64, thr),
    ...lget(m), ...i64c(32n), op.i64_shr_u, op.i32_wrap_i64,
  ];
}

/**
 * boot(n, reps, pred, out): for each of `reps` resamples draw n indices and store (i32, at out + 4·r) how many
 * hit pred[idx] = 1 (bytes at `pred`). Locals: r, i, k, m, thr, n64.
 */
function bootBody(): number[] {
  const [n, reps, pred, out, r, i, k, m, thr, n64] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  return [
    ...lget(n), op.i64_extend_i32_u, ...lset(n64),
    ...i32c(0), ...lget(n), op.i32_sub, ...lget(n), op.i32_rem_u, ...lset(thr),
    ...i32c(0), ...lset(r),
    op.block, type.void, op.loop, type.void,
    ...lget(r), ...lget(reps), op.i32_ge_u, op.br_if, 1,
    ...i32c(0), ...lset(k), ...i32c(0), ...lset(i),
    op.block, type.void, op.loop, type.void,
    ...lget(i), ...lget(n), op.i32_ge_u, op.br_if, 1,
    ...draw(m, n64), ...rejectLoop(m, n64, thr),
    ...lget(k), ...lget(pred), ...lget(m), ...i64c(32n), op.i64_shr_u, op.i32_wrap_i64, op.i32_add,
    op.i32_load8_u, 0, 0, op.i32_add, ...lset(k),
    ...lget(i), ...i32c(1), op.i32_add, ...lset(i),
    op.br, 0,
    op.end, op.end,
    ...lget(out), ...lget(r), ...i32c(2), op.i32_shl, op.i32_add, ...lget(k), op.i32_store, 2, 0,
    ...lget(r), ...i32c(1), op.i32_add, ...lset(r),
    op.br, 0,
    op.end, op.end,
  ];
}

function setStateBody(): number[] {
  return [...lget(0), ...gset(SHI), ...lget(1), ...gset(SLO), ...lget(2), ...gset(IHI), ...lget(3), ...gset(ILO),
    ...i32c(0), ...gset(HAS), ...i32c(0), ...gset(BUF)];
}

export const kernelBytes = encodeModule({
  memoryPages: 1,
  globals: [i64, i64, i64, i64, i32, i32],
  funcs: [
    { params: [], results: [i64], locals: [i64, i64, i64, i64, i64, i64, i64], body: next64Body(), export: 'next64' },
    { params: [], results: [i32], locals: [i64], body: next32Body(), export: 'next32' },
    { params: [i64, i64, i64, i64], results: [], locals: [], body: setStateBody(), export: 'setState' },
    { params: [i32], results: [i32], locals: [i64, i32, i64], body: integerBody(), export: 'integer' },
    { params: [i32, i32, i32, i32], results: [], locals: [i32, i32, i32, i64, i32, i64], body: bootBody(), export: 'boot' },
  ],
});

// The project's lib settings (ES2023, no DOM) carry no WebAssembly typings; this is the part we use.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

interface KernelExports {
  memory: WasmMemory;
  next64(): bigint;
  next32(): number;
  setState(shi: bigint, slo: bigint, ihi: bigint, ilo: bigint): void;
  integer(n: number): number;
  boot(n: number, reps: number, pred: number, out: number): void;
}

let kernelModule: object | undefined;

/** A fresh numpy-compatible generator (`default_rng(seed)`) backed by the wasm kernel. */
export class Pcg64Kernel {
  private readonly k: KernelExports;

  constructor(seed: number | bigint) {
    kernelModule ??= new WebAssembly.Module(kernelBytes);
    this.k = new WebAssembly.Instance(kernelModule, {}).exports as unknown as KernelExports;
    const { state, inc } = pcg64Seed(seed);
    const u = (x: bigint): bigint => BigInt.asIntN(64, x);
    this.k.setState(u(state >> 64n), u(state & 0xffffffffffffffffn), u(inc >> 64n), u(inc & 0xffffffffffffffffn));
  }

  next64(): bigint {
    return BigInt.asUintN(64, this.k.next64());
  }

  next32(): number {
    return this.k.next32() >>> 0;
  }

  integer(n: number): number {
    return n === 1 ? 0 : this.k.integer(n) >>> 0;
  }

  /**
   * Positives per resample: for each of `reps` resamples of n = pred.length indices drawn like numpy's
   * `integers(n, size=n)`, the number of i with pred[idx_i] = 1.
   */
  resampleCounts(pred: Uint8Array, reps: number): Int32Array {
    const n = pred.length;
    const counts = new Int32Array(reps);
    if (n === 0 || reps === 0) return counts;
    if (n === 1) return counts.fill(pred[0]!); // numpy consumes no randomness for a one-value range
    const outPtr = (n + 7) & ~7;
    const need = outPtr + reps * 4;
    const mem = this.k.memory;
    if (need > mem.buffer.byteLength) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    new Uint8Array(mem.buffer, 0, n).set(pred);
    this.k.boot(n, reps, 0, outPtr);
    counts.set(new Int32Array(mem.buffer, outPtr, reps));
    return counts;
  }
}

export { Pcg64 };
