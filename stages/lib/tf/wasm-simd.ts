/**
 * WebAssembly SIMD kernels that work directly in tfjs's wasm heap (the module imports the backend's own
 * WebAssembly.Memory), for the memory-bound training kernels tfjs-backend-wasm has no fast version of and plain JS
 * runs 5–20× slower than SIMD: MaxPoolGrad for 2×2/stride-2 windows, the per-channel sum behind bias gradients and
 * batch-norm statistics, the bias add, and the ReLU gradient. Each handles channel counts that are a multiple of 4
 * (every conv layer of our archs); callers fall back to the JS versions otherwise. Results are bit-identical to the
 * JS/stock kernels they replace (same operations in the same order; tested against the cpu backend).
 *
 * Written with the repo's small encoder (stages/lib/wasm-asm.ts): there is no wasm toolchain in the repo.
 */
import { encodeModule, i32c, lget, lset, ltee, op, simd, type, v, vmem, WebAssemblyApi, type FuncDef, type WasmMemory } from '../wasm-asm.js';

const { i32, v128 } = type;
const add = (a: number[], b: number[]): number[] => [...a, ...b, op.i32_add];
/** local ← local + n (bytes). */
const bump = (local: number, n: number[]): number[] => [...lget(local), ...n, op.i32_add, ...lset(local)];
/** local ← local − 1; branch to the enclosing loop (depth) while it is not 0. */
const countdown = (local: number, depth = 0): number[] => [...lget(local), ...i32c(1), op.i32_sub, ...ltee(local), op.br_if, depth];
const load = (addr: number[], offset = 0): number[] => [...addr, ...vmem(simd.v128_load, offset)];
const store = (addr: number[], value: number[], offset = 0): number[] => [...addr, ...value, ...vmem(simd.v128_store, offset)];
const loop = (body: number[]): number[] => [op.loop, type.void, ...body, op.end];

/**
 * maxpool_grad_2x2(x, g, dx, rows, ow, ch): x [rows·2, ow·2, ch] (the pool input), g [rows, ow, ch] (its gradient),
 * dx like x. Each g element goes to the first maximum of its window in row-major order (a, b / c, d), like the cpu
 * backend; the other three get 0. Pointers in bytes; rows, ow ≥ 1, ch a positive multiple of 4.
 */
function maxPoolGrad2x2(): FuncDef {
  const [X, G, DX, ROWS, OW, CH] = [0, 1, 2, 3, 4, 5];
  const [OX, K, CHB, ROWB, A, B, C, D, M, EA, EB, T] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const at = (base: number, off: number[]): number[] => (off.length ? add(lget(base), off) : lget(base));
  const colOff = lget(CHB);
  const rowOff = lget(ROWB);
  const diagOff = add(lget(ROWB), lget(CHB));
  const eq = (x: number, m: number): number[] => [...lget(x), ...lget(m), ...v(simd.f32x4_eq)];
  const windowGroup = [
    ...load(lget(X)), ...lset(A),
    ...load(at(X, colOff)), ...lset(B),
    ...load(at(X, rowOff)), ...lset(C),
    ...load(at(X, diagOff)), ...lset(D),
    ...lget(A), ...lget(B), ...v(simd.f32x4_max), ...lget(C), ...lget(D), ...v(simd.f32x4_max), ...v(simd.f32x4_max), ...lset(M),
    ...eq(A, M), ...lset(EA),
    ...eq(B, M), ...lget(EA), ...v(simd.v128_andnot), ...lset(EB),
    ...lget(EA), ...lget(EB), ...v(simd.v128_or), ...lset(T),
    // c's mask is eq(c, m) & ~(ea | eb); d takes what is left: ~(ea | eb | ec).
    ...eq(C, M), ...lget(T), ...v(simd.v128_andnot), ...lset(C),
    ...load(lget(G)), ...lset(D),
    ...store(lget(DX), [...lget(D), ...lget(EA), ...v(simd.v128_and)]),
    ...store(at(DX, colOff), [...lget(D), ...lget(EB), ...v(simd.v128_and)]),
    ...store(at(DX, rowOff), [...lget(D), ...lget(C), ...v(simd.v128_and)]),
    ...store(at(DX, diagOff), [...lget(D), ...lget(T), ...lget(C), ...v(simd.v128_or), ...v(simd.v128_andnot)]),
    ...bump(X, i32c(16)), ...bump(DX, i32c(16)), ...bump(G, i32c(16)),
  ];
  return {
    params: [i32, i32, i32, i32, i32, i32],
    results: [],
    locals: [i32, i32, i32, i32, v128, v128, v128, v128, v128, v128, v128, v128],
    export: 'maxpool_grad_2x2',
    body: [
      ...lget(CH), ...i32c(4), op.i32_mul, ...lset(CHB),
      ...lget(OW), ...i32c(2), op.i32_mul, ...lget(CHB), op.i32_mul, ...lset(ROWB),
      ...loop([
        ...lget(OW), ...lset(OX),
        ...loop([
          ...lget(CH), ...i32c(4), op.i32_div_u, ...lset(K),
          ...loop([...windowGroup, ...countdown(K)]),
          // Past the window's second column, then on to the next window.
          ...bump(X, lget(CHB)), ...bump(DX, lget(CHB)),
          ...countdown(OX),
        ]),
        // Past the window's second row.
        ...bump(X, lget(ROWB)), ...bump(DX, lget(ROWB)),
        ...countdown(ROWS),
      ]),
    ],
  };
}

/**
 * channel_sum(x, pixels, ch, acc): acc[c] += Σ_p x[p, c] in float64, pixels in order (the JS kernel's order, so the
 * same bits). acc: ch float64s, zeroed by the caller. ch a positive multiple of 4, pixels ≥ 1.
 */
function channelSum(): FuncDef {
  const [X, P, CH, ACC] = [0, 1, 2, 3];
  const [A, K] = [4, 5];
  const lane2 = (offset: number): number[] => [...lget(X), ...vmem(simd.v128_load64_zero, offset, 3), ...v(simd.f64x2_promote_low_f32x4)];
  const accumulate = (offset: number, value: number[]): number[] =>
    store(lget(A), [...load(lget(A), offset), ...value, ...v(simd.f64x2_add)], offset);
  return {
    params: [i32, i32, i32, i32],
    results: [],
    locals: [i32, i32],
    export: 'channel_sum',
    body: loop([
      ...lget(ACC), ...lset(A),
      ...lget(CH), ...i32c(4), op.i32_div_u, ...lset(K),
      ...loop([...accumulate(0, lane2(0)), ...accumulate(16, lane2(8)), ...bump(X, i32c(16)), ...bump(A, i32c(32)), ...countdown(K)]),
      ...countdown(P),
    ]),
  };
}

/** bias_add(x, bias, out, pixels, ch): out[p, c] = x[p, c] + bias[c]. ch a positive multiple of 4, pixels ≥ 1. */
function biasAdd(): FuncDef {
  const [X, BIAS, OUT, P, CH] = [0, 1, 2, 3, 4];
  const [BP, K] = [5, 6];
  return {
    params: [i32, i32, i32, i32, i32],
    results: [],
    locals: [i32, i32],
    export: 'bias_add',
    body: loop([
      ...lget(BIAS), ...lset(BP),
      ...lget(CH), ...i32c(4), op.i32_div_u, ...lset(K),
      ...loop([
        ...store(lget(OUT), [...load(lget(X)), ...load(lget(BP)), ...v(simd.f32x4_add)]),
        ...bump(X, i32c(16)), ...bump(OUT, i32c(16)), ...bump(BP, i32c(16)), ...countdown(K),
      ]),
      ...countdown(P),
    ]),
  };
}

/**
 * relu_grad(dy, x, dx, groups): dx = dy · step(x), four lanes per group, groups ≥ 1 — tfjs's own formula in one pass,
 * so the same bits: step(x) is 1 for x > 0, NaN for NaN, else 0 (and dy · 0 keeps the sign of zero).
 */
function reluGrad(): FuncDef {
  const [DY, X, DX, N] = [0, 1, 2, 3];
  const [XV] = [4];
  const constant = (lane: number[]): number[] => [0xfd, ...[simd.v128_const], ...lane, ...lane, ...lane, ...lane];
  const zero = constant([0, 0, 0, 0]);
  const one = constant([0x00, 0x00, 0x80, 0x3f]); // 1.0f, little endian
  const step = [
    ...lget(XV), ...zero, ...v(simd.f32x4_gt), ...one, ...v(simd.v128_and), // 1 where x > 0
    ...lget(XV), ...lget(XV), ...v(simd.f32x4_ne), ...lget(XV), ...v(simd.v128_and), // x itself (NaN) where x is NaN
    ...v(simd.v128_or),
  ];
  return {
    params: [i32, i32, i32, i32],
    results: [],
    locals: [v128],
    export: 'relu_grad',
    body: loop([
      ...load(lget(X)), ...lset(XV),
      ...store(lget(DX), [...load(lget(DY)), ...step, ...v(simd.f32x4_mul)]),
      ...bump(DY, i32c(16)), ...bump(X, i32c(16)), ...bump(DX, i32c(16)), ...countdown(N),
    ]),
  };
}

export interface SimdKernels {
  maxPoolGrad2x2(x: number, g: number, dx: number, rows: number, ow: number, ch: number): void;
  channelSum(x: number, pixels: number, ch: number, acc: number): void;
  biasAdd(x: number, bias: number, out: number, pixels: number, ch: number): void;
  reluGrad(dy: number, x: number, dx: number, groups: number): void;
}

let bytes: Uint8Array | undefined;
const instances = new WeakMap<WasmMemory, SimdKernels>();

/** The kernels bound to one wasm heap (one per tfjs wasm backend, i.e. per thread). */
export function simdKernels(memory: WasmMemory): SimdKernels {
  let k = instances.get(memory);
  if (k === undefined) {
    bytes ??= encodeModule({ funcs: [maxPoolGrad2x2(), channelSum(), biasAdd(), reluGrad()], globals: [], memoryPages: 'import' });
    const e = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(bytes), { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
    k = {
      maxPoolGrad2x2: e['maxpool_grad_2x2']!,
      channelSum: e['channel_sum']!,
      biasAdd: e['bias_add']!,
      reluGrad: e['relu_grad']!,
    };
    instances.set(memory, k);
  }
  return k;
}

