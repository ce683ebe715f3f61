/**
 * The bootstrap kernel in WebAssembly: numpy's PCG64 + buffered Lemire bounded integers, counting how many drawn
 * indices hit a positive. 128-bit multiplies need 64-bit integer arithmetic, which JS numbers lack (BigInt is ~50×
 * slower); wasm's i64 makes each draw a few nanoseconds with no allocation. Bit-identical to `pcg64.ts`.
 */
import { Pcg64, pcg64Seed } from './pcg64.js';
import { encodeModule, gget, gset, i32c, i64c, lget, lset, ltee, op, type, WebAssemblyApi as WebAssembly, type WasmMemory } from '../../../lib/wasm-asm.js';

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

/** Where the generator state lives: the module's globals (single draws) or a function's locals (the hot loop). */
interface StateAccess {
  shi: { get: number[]; set: number[] };
  slo: { get: number[]; set: number[] };
  ihi: number[];
  ilo: number[];
  has: { get: number[]; set: number[] };
  buf: { get: number[]; set: number[] };
}

const globalState: StateAccess = {
  shi: { get: gget(SHI), set: gset(SHI) },
  slo: { get: gget(SLO), set: gset(SLO) },
  ihi: gget(IHI),
  ilo: gget(ILO),
  has: { get: gget(HAS), set: gset(HAS) },
  buf: { get: gget(BUF), set: gset(BUF) },
};

/** Scratch i64 locals the step needs (7, starting at `base`). */
interface Scratch {
  lo: number; hi: number; a0: number; a1: number; p01: number; p10: number; mid: number;
}
const scratchAt = (base: number): Scratch => ({ lo: base, hi: base + 1, a0: base + 2, a1: base + 3, p01: base + 4, p10: base + 5, mid: base + 6 });

/** state ← state·MULT + inc (mod 2^128); leaves the XSL-RR output (i64) on the stack. */
function next64Code(S: StateAccess, t: Scratch): number[] {
  return [
    ...S.slo.get, ...i64c(M32), op.i64_and, ...lset(t.a0),
    ...S.slo.get, ...i64c(32n), op.i64_shr_u, ...lset(t.a1),
    ...lget(t.a0), ...i64c(B1), op.i64_mul, ...lset(t.p01),
    ...lget(t.a1), ...i64c(B0), op.i64_mul, ...lset(t.p10),
    // mid = (a0·b0 >> 32) + low32(p01) + low32(p10)
    ...lget(t.a0), ...i64c(B0), op.i64_mul, ...i64c(32n), op.i64_shr_u,
    ...lget(t.p01), ...i64c(M32), op.i64_and, op.i64_add,
    ...lget(t.p10), ...i64c(M32), op.i64_and, op.i64_add, ...lset(t.mid),
    // hi = mulhi(slo, MULT_LO) + slo·MULT_HI + shi·MULT_LO
    ...lget(t.a1), ...i64c(B1), op.i64_mul,
    ...lget(t.p01), ...i64c(32n), op.i64_shr_u, op.i64_add,
    ...lget(t.p10), ...i64c(32n), op.i64_shr_u, op.i64_add,
    ...lget(t.mid), ...i64c(32n), op.i64_shr_u, op.i64_add,
    ...S.slo.get, ...i64c(MULT_HI), op.i64_mul, op.i64_add,
    ...S.shi.get, ...i64c(MULT_LO), op.i64_mul, op.i64_add, ...lset(t.hi),
    // + inc, with the carry out of the low word
    ...S.slo.get, ...i64c(MULT_LO), op.i64_mul, ...S.ilo, op.i64_add, ...ltee(t.lo), ...S.slo.set,
    ...lget(t.hi), ...S.ihi, op.i64_add,
    ...lget(t.lo), ...S.ilo, op.i64_lt_u, op.i64_extend_i32_u, op.i64_add, ...ltee(t.hi), ...S.shi.set,
    ...lget(t.hi), ...lget(t.lo), op.i64_xor, ...lget(t.hi), ...i64c(58n), op.i64_shr_u, op.i64_rotr,
  ];
}

/** numpy's pcg64_next32: low half of a fresh 64-bit output, the high half kept for the next call. */
function next32Code(S: StateAccess, t: Scratch): number[] {
  // t.lo holds the fresh output after next64Code, so it doubles as the temporary here.
  return [
    ...S.has.get, op.if, i32,
    ...i32c(0), ...S.has.set, ...S.buf.get,
    op.else,
    ...next64Code(S, t), ...ltee(t.mid), ...i64c(32n), op.i64_shr_u, op.i32_wrap_i64, ...S.buf.set,
    ...i32c(1), ...S.has.set, ...lget(t.mid), op.i32_wrap_i64,
    op.end,
  ];
}

/** m ← next32 · n (64-bit), left on the stack too. */
const drawCode = (next32: number[], m: number, n64: number): number[] => [
  ...next32, op.i64_extend_i32_u, ...lget(n64), op.i64_mul, ...ltee(m),
];

/** Lemire rejection: while low32(m) < threshold, draw again. Expects m on the stack. */
const rejectCode = (next32: number[], m: number, n64: number, thr: number): number[] => [
  op.i32_wrap_i64, ...lget(thr), op.i32_lt_u,
  op.if, type.void,
  op.block, type.void, op.loop, type.void,
  ...drawCode(next32, m, n64), op.i32_wrap_i64, ...lget(thr), op.i32_ge_u, op.br_if, 1,
  op.br, 0,
  op.end, op.end,
  op.end,
];

/** integer(n) -> i32: one `Generator.integers(n)` draw (n ≥ 2). Params: n. Locals: m, thr, n64. */
function integerBody(): number[] {
  const [n, m, thr, n64] = [0, 1, 2, 3];
  const next32 = [op.call, F_NEXT32];
  return [
    ...lget(n), op.i64_extend_i32_u, ...lset(n64),
    ...i32c(0), ...lget(n), op.i32_sub, ...lget(n), op.i32_rem_u, ...lset(thr),
    ...drawCode(next32, m, n64), ...rejectCode(next32, m, n64, thr),
    ...lget(m), ...i64c(32n), op.i64_shr_u, op.i32_wrap_i64,
  ];
}

/**
 * boot(n, reps, pred, out): for each of `reps` resamples draw n indices and store (i32, at out + 4·r) how many
 * hit pred[idx] = 1 (bytes at `pred`). The generator state is copied into locals for the loop (V8 keeps them in
 * registers; globals and calls cost ~2× here) and written back at the end.
 * Locals: 4 r, 5 i, 6 k, 7 m, 8 thr, 9 n64, 10 shi, 11 slo, 12 ihi, 13 ilo, 14 has, 15 buf, 16–22 scratch.
 */
const BOOT_LOCALS = [i32, i32, i32, i64, i32, i64, i64, i64, i64, i64, i32, i32, i64, i64, i64, i64, i64, i64, i64];
function bootBody(): number[] {
  const [n, reps, pred, out, r, i, k, m, thr, n64] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [shi, slo, ihi, ilo, has, buf] = [10, 11, 12, 13, 14, 15];
  const L: StateAccess = {
    shi: { get: lget(shi), set: lset(shi) },
    slo: { get: lget(slo), set: lset(slo) },
    ihi: lget(ihi),
    ilo: lget(ilo),
    has: { get: lget(has), set: lset(has) },
    buf: { get: lget(buf), set: lset(buf) },
  };
  const next32 = next32Code(L, scratchAt(16));
  return [
    ...gget(SHI), ...lset(shi), ...gget(SLO), ...lset(slo), ...gget(IHI), ...lset(ihi), ...gget(ILO), ...lset(ilo),
    ...gget(HAS), ...lset(has), ...gget(BUF), ...lset(buf),
    ...lget(n), op.i64_extend_i32_u, ...lset(n64),
    ...i32c(0), ...lget(n), op.i32_sub, ...lget(n), op.i32_rem_u, ...lset(thr),
    ...i32c(0), ...lset(r),
    op.block, type.void, op.loop, type.void,
    ...lget(r), ...lget(reps), op.i32_ge_u, op.br_if, 1,
    ...i32c(0), ...lset(k), ...i32c(0), ...lset(i),
    op.block, type.void, op.loop, type.void,
    ...lget(i), ...lget(n), op.i32_ge_u, op.br_if, 1,
    ...drawCode(next32, m, n64), ...rejectCode(next32, m, n64, thr),
    ...lget(k), ...lget(pred), ...lget(m), ...i64c(32n), op.i64_shr_u, op.i32_wrap_i64, op.i32_add,
    op.i32_load8_u, 0, 0, op.i32_add, ...lset(k),
    ...lget(i), ...i32c(1), op.i32_add, ...lset(i),
    op.br, 0,
    op.end, op.end,
    ...lget(out), ...lget(r), ...i32c(2), op.i32_shl, op.i32_add, ...lget(k), op.i32_store, 2, 0,
    ...lget(r), ...i32c(1), op.i32_add, ...lset(r),
    op.br, 0,
    op.end, op.end,
    ...lget(shi), ...gset(SHI), ...lget(slo), ...gset(SLO), ...lget(has), ...gset(HAS), ...lget(buf), ...gset(BUF),
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
    { params: [], results: [i64], locals: [i64, i64, i64, i64, i64, i64, i64], body: next64Code(globalState, scratchAt(0)), export: 'next64' },
    { params: [], results: [i32], locals: [i64, i64, i64, i64, i64, i64, i64], body: next32Code(globalState, scratchAt(0)), export: 'next32' },
    { params: [i64, i64, i64, i64], results: [], locals: [], body: setStateBody(), export: 'setState' },
    { params: [i32], results: [i32], locals: [i64, i32, i64], body: integerBody(), export: 'integer' },
    { params: [i32, i32, i32, i32], results: [], locals: BOOT_LOCALS, body: bootBody(), export: 'boot' },
  ],
});

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
