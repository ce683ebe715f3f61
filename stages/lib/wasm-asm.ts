/**
 * Just enough of a WebAssembly binary encoder to write small kernels by hand (no toolchain in the repo; the kernels
 * are tens of instructions): evaluate's PCG64 bootstrap and tfjs's SIMD training kernels (stages/lib/tf/wasm-simd.ts).
 * Opcode names follow the spec's text format.
 */
export const op = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, br_if: 0x0d, call: 0x10,
  local_get: 0x20, local_set: 0x21, local_tee: 0x22, global_get: 0x23, global_set: 0x24,
  i32_load8_u: 0x2d, i32_store: 0x36, i32_const: 0x41, i64_const: 0x42,
  f32_load: 0x2a, f32_store: 0x38, f64_load: 0x2b, f64_store: 0x39,
  i32_eqz: 0x45, i32_ge_u: 0x4f, i32_lt_u: 0x49, i32_lt_s: 0x48, i32_ne: 0x47, i64_lt_u: 0x54,
  i32_add: 0x6a, i32_sub: 0x6b, i32_mul: 0x6c, i32_div_u: 0x6e, i32_rem_u: 0x70, i32_shl: 0x74,
  i64_add: 0x7c, i64_mul: 0x7e, i64_and: 0x83, i64_xor: 0x85, i64_shr_u: 0x88, i64_rotr: 0x8a,
  i32_wrap_i64: 0xa7, i64_extend_i32_u: 0xad,
} as const;

// The project's lib settings (ES2023, no DOM) carry no WebAssembly typings; this is the part we use.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export const WebAssemblyApi = (globalThis as unknown as {
  WebAssembly: {
    Module: new (bytes: Uint8Array) => object;
    Instance: new (module: object, imports: object) => { exports: unknown };
  };
}).WebAssembly;

export const type = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, void: 0x40 } as const;

/** SIMD (0xfd-prefixed) opcodes used here. */
export const simd = {
  v128_load: 0x00, v128_load64_zero: 0x5d, v128_store: 0x0b, v128_const: 0x0c,
  f32x4_splat: 0x13, f32x4_eq: 0x41, f32x4_ne: 0x42, f32x4_gt: 0x44, f32x4_mul: 0xe6,
  v128_not: 0x4d, v128_and: 0x4e, v128_andnot: 0x4f, v128_or: 0x50,
  f32x4_max: 0xe9, f32x4_add: 0xe4, f64x2_add: 0xf0, f64x2_promote_low_f32x4: 0x5f,
} as const;

/** A SIMD instruction without immediates. */
export const v = (opcode: number): number[] => [0xfd, ...uleb(opcode)];
/** A SIMD load/store with its memarg: alignment log2 (4 = 16 bytes) and a constant byte offset. */
export const vmem = (opcode: number, offset = 0, alignLog2 = 2): number[] => [0xfd, ...uleb(opcode), ...uleb(alignLog2), ...uleb(offset)];
/** A scalar load/store memarg. */
export const mem = (opcode: number, offset = 0, alignLog2 = 2): number[] => [opcode, ...uleb(alignLog2), ...uleb(offset)];

export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: bigint | number): number[] {
  let v = BigInt.asIntN(64, BigInt(value));
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

export const i32c = (v: number): number[] => [op.i32_const, ...sleb(v)];
export const i64c = (v: bigint): number[] => [op.i64_const, ...sleb(v)];
export const lget = (i: number): number[] => [op.local_get, ...uleb(i)];
export const lset = (i: number): number[] => [op.local_set, ...uleb(i)];
export const ltee = (i: number): number[] => [op.local_tee, ...uleb(i)];
export const gget = (i: number): number[] => [op.global_get, ...uleb(i)];
export const gset = (i: number): number[] => [op.global_set, ...uleb(i)];

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}
function name(s: string): number[] {
  const bytes = [...Buffer.from(s, 'utf8')];
  return [...uleb(bytes.length), ...bytes];
}

export interface FuncDef {
  params: number[];
  results: number[];
  /** Extra locals, by value type, after the params. */
  locals: number[];
  body: number[];
  export?: string;
}

export interface ModuleDef {
  funcs: FuncDef[];
  /** Mutable globals, zero-initialised, by value type. */
  globals: number[];
  /** Its own memory of this many pages (exported as `memory`), or an imported `env.memory` (another module's heap). */
  memoryPages: number | 'import';
}

/** Encode a module: one type per function; its own memory exported as `memory`, or `env.memory` imported. */
export function encodeModule(def: ModuleDef): Uint8Array {
  const types = def.funcs.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]);
  const funcs = def.funcs.map((_, i) => uleb(i));
  const imported = def.memoryPages === 'import';
  const memory = imported ? [] : [[0x00, ...uleb(def.memoryPages as number)]];
  const imports = imported ? [[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(0)]] : [];
  const globals = def.globals.map((t) => [t, 0x01, ...(t === type.i64 ? i64c(0n) : i32c(0)), op.end]);
  const exports = imported ? [] : [[...name('memory'), 0x02, 0x00]];
  def.funcs.forEach((f, i) => {
    if (f.export) exports.push([...name(f.export), 0x00, ...uleb(i)]);
  });
  const codes = def.funcs.map((f) => {
    const locals = vec(f.locals.map((t) => [0x01, t]));
    const body = [...locals, ...f.body, op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...(imported ? section(2, vec(imports)) : []),
    ...section(3, vec(funcs)),
    ...(imported ? [] : section(5, vec(memory))),
    ...(def.globals.length > 0 ? section(6, vec(globals)) : []),
    ...section(7, vec(exports)),
    ...section(10, vec(codes)),
  ]);
}
