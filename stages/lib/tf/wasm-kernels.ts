/**
 * Fast training kernels for tfjs's `wasm` backend.
 *
 * The wasm backend (4.x) has no `Conv2DBackpropFilter` kernel at all (training a convnet throws) and its
 * `Conv2DBackpropInput` is a scalar C++ loop. Both gradients are themselves convolutions, so we express them with the
 * backend's fast forward `Conv2D` (XNNPACK, SIMD) plus cheap layout kernels (Transpose, Reverse, Pad, Slice):
 *
 *  - dX = conv(dilate(dy, stride), rot180(W) with in/out channels swapped), padded so the output is X's size
 *    (a transposed convolution; zero-insertion "dilation" of dy handles stride > 1);
 *  - dW = im2col(x)ᵀ · dy as matrix products: im2col is written (plain JS, straight into the wasm heap) as a
 *    [KH·KW·Ci, columns] matrix, in cache-sized chunks of whole images, so the fast non-transposed MatMul applies and
 *    dy keeps its NHWC layout;
 *  - MaxPoolGrad (stock: a slow scalar loop) runs over the heap: 2×2/stride-2 windows in WebAssembly SIMD
 *    (wasm-simd.ts, a module that imports the backend's own memory), other windows in JS;
 *  - forward Conv2D/FusedConv2D get tfjs-computed explicit padding (XNNPACK SAME padding disagrees for some strides);
 *  - Sum/Mean over all axes but the last (bias gradients, BN statistics) in SIMD (JS for channel counts that are
 *    not a multiple of 4), Tile (BN gradients) as memcpy; the bias Add ([…, C] + [C]) in SIMD;
 *  - the ReLU gradient (stock: Step, Cast and Multiply, three passes) as one SIMD pass;
 *  - Identity shares the data by reference count (the stock kernel copies every tensor saved for backprop).
 *
 * Kernels are composed from other wasm kernel functions (not tf ops) so nothing is recorded on the gradient tape and
 * every intermediate is freed here.
 */
import * as tf from '@tensorflow/tfjs';
import type { WasmMemory } from '../wasm-asm.js';
import { simdKernels, type SimdKernels } from './wasm-simd.js';

type TensorInfo = tf.TensorInfo;
type Backend = tf.KernelBackend & { disposeData(dataId: object, force?: boolean): boolean };
type PadAttr = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** Runs another kernel of the same backend and remembers its output for disposal. */
class KernelScope {
  private readonly temps: TensorInfo[] = [];
  constructor(private readonly backend: Backend) {}

  run(name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const kernel = tf.getKernel(name, 'wasm');
    if (kernel === undefined) throw new Error(`wasm backend has no ${name} kernel`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** Frees one intermediate now (inside loops, to bound memory). */
  release(t: TensorInfo): void {
    const i = this.temps.indexOf(t);
    if (i >= 0) this.temps.splice(i, 1);
    this.backend.disposeData(t.dataId);
  }

  /** Frees every intermediate except `keep` (the kernel's result). */
  finish(keep: TensorInfo): TensorInfo {
    for (const t of this.temps) if (t !== keep) this.backend.disposeData(t.dataId);
    return keep;
  }
}

/** Pads (non-negative amounts) or crops (negative amounts) the two spatial axes of an NHWC tensor. */
function padOrCrop(
  s: KernelScope,
  x: TensorInfo,
  top: number,
  bottom: number,
  left: number,
  right: number,
): { t: TensorInfo; pad: [number, number, number, number] } {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const cropT = Math.max(0, -top);
  const cropB = Math.max(0, -bottom);
  const cropL = Math.max(0, -left);
  const cropR = Math.max(0, -right);
  let t = x;
  if (cropT + cropB + cropL + cropR > 0) {
    t = s.run('Slice', { x }, { begin: [0, cropT, cropL, 0], size: [n, h - cropT - cropB, w - cropL - cropR, c] });
  }
  return { t, pad: [Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right)] };
}

function explicit(p: [number, number, number, number]): tf.backend_util.ExplicitPadding {
  return [
    [0, 0],
    [p[0], p[1]],
    [p[2], p[3]],
    [0, 0],
  ];
}

/** Inserts stride−1 zeros after every element along H and W: [B,OH,OW,C] → [B,OH·sH,OW·sW,C]. */
function dilate(s: KernelScope, dy: TensorInfo, sH: number, sW: number): TensorInfo {
  if (sH === 1 && sW === 1) return dy;
  const [b, oh, ow, c] = dy.shape as [number, number, number, number];
  const r = s.run('Reshape', { x: dy }, { shape: [b, oh, 1, ow, 1, c] });
  const p = s.run('PadV2', { x: r }, {
    paddings: [
      [0, 0],
      [0, 0],
      [0, sH - 1],
      [0, 0],
      [0, sW - 1],
      [0, 0],
    ],
    constantValue: 0,
  });
  return s.run('Reshape', { x: p }, { shape: [b, oh * sH, ow * sW, c] });
}

interface ConvGradAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfoOf(xShape: number[], filterShape: number[], attrs: ConvGradAttrs): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat === 'NCHW') throw new Error('wasm conv gradients support only NHWC (channelsLast)');
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** dX for y = conv2d(x, W): a stride-1 convolution of the (dilated) dy with the rotated, transposed filter. */
export function conv2DBackpropInputWasm(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: Backend;
  attrs: ConvGradAttrs & { inputShape: [number, number, number, number] };
}): TensorInfo {
  const { dy, filter } = args.inputs;
  const info = convInfoOf(args.attrs.inputShape, filter.shape, args.attrs);
  const s = new KernelScope(args.backend);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sH, strideWidth: sW, inHeight: h, inWidth: w } = info;
  const rot = s.run('Reverse', { x: filter }, { dims: [0, 1] });
  const wT = s.run('Transpose', { x: rot }, { perm: [0, 1, 3, 2] });
  const dyd = dilate(s, dy, sH, sW);
  const lh = dyd.shape[1] as number;
  const lw = dyd.shape[2] as number;
  // dx[i] = Σ_k' dyd[i + pT − (KH−1) + k'] · rot(W)[k']: pad dyd by KH−1−pT on top and enough at the bottom for H rows.
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const { t, pad } = padOrCrop(s, dyd, top, h + kh - 1 - top - lh, left, w + kw - 1 - left - lw);
  const dx = s.run('Conv2D', { x: t, filter: wT }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: explicit(pad),
    dataFormat: 'NHWC',
  });
  return s.finish(dx);
}

/** The parts of the wasm backend these kernels touch: heap views and output allocation. */
interface WasmHeapBackend extends Backend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  wasm?: { asm?: { memory?: WasmMemory } };
}

/** The SIMD kernels bound to this backend's heap, or undefined where the build does not expose its memory. */
function simdOf(backend: WasmHeapBackend): SimdKernels | undefined {
  const memory = backend.wasm?.asm?.memory;
  return memory === undefined ? undefined : simdKernels(memory);
}

/** A tensor's address in the heap, in bytes (stable across heap growth, unlike views). */
const addr = (backend: WasmHeapBackend, t: TensorInfo): number => backend.typedArrayFromHeap(t).byteOffset;

/** Images of the batch per dW chunk: about this many im2col columns, so a chunk's patches stay in cache. */
const DW_CHUNK_COLUMNS = 8192;

/**
 * im2col of images [b0, b0+nb) with the patch index on rows, from x transposed to [Ci, B, H, W] (so every patch row
 * is a contiguous or strided run of one image row):
 *   A[(kh·KW + kw)·Ci + ci, (b−b0)·OH·OW + oh·OW + ow] = x[b, oh·sH + kh − pT, ow·sW + kw − pL, ci]   (0 outside).
 */
function im2colChunk(xT: Float32Array, dst: Float32Array, info: tf.backend_util.Conv2DInfo, b0: number, nb: number): void {
  if (info.strideHeight === 1 && info.strideWidth === 1 && info.outWidth === info.inWidth) {
    im2colChunkStride1(xT, dst, info, b0, nb);
    return;
  }
  const { batchSize: nbAll, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  let o = 0;
  for (let r = 0; r < kh; r++) {
    for (let q = 0; q < kw; q++) {
      // Output columns whose input column ow·sW + q − pL lies in [0, w): [xa, xb); zeros outside (the padding).
      const xa = Math.min(ow, Math.max(0, Math.ceil((pl - q) / sw)));
      const xb = Math.max(xa, Math.min(ow, Math.floor((w - 1 + pl - q) / sw) + 1));
      for (let c = 0; c < ci; c++) {
        for (let b = b0; b < b0 + nb; b++) {
          const img = (c * nbAll + b) * h * w;
          for (let y = 0; y < oh; y++) {
            const iy = y * sh + r - pt;
            if (iy < 0 || iy >= h) {
              dst.fill(0, o, o + ow);
              o += ow;
              continue;
            }
            for (let x = 0; x < xa; x++) dst[o++] = 0;
            let at = img + iy * w + xa * sw + q - pl;
            for (let x = xa; x < xb; x++, at += sw) dst[o++] = xT[at]!;
            for (let x = xb; x < ow; x++) dst[o++] = 0;
          }
        }
      }
    }
  }
}

/**
 * The common case, stride 1 and output width = input width ('same' padding): the patch block of one (tap, channel,
 * image) is the image itself shifted by (kh − pT) rows and (kw − pL) columns, so it is ONE contiguous copy of the
 * image's valid rows followed by zeroing the columns that wrapped around from the neighbouring row.
 */
function im2colChunkStride1(xT: Float32Array, dst: Float32Array, info: tf.backend_util.Conv2DInfo, b0: number, nb: number): void {
  const { batchSize: nbAll, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const block = oh * w;
  let o = 0;
  for (let r = 0; r < kh; r++) {
    // Output rows whose input row y + r − pT lies in [0, h).
    const ya = Math.min(oh, Math.max(0, pt - r));
    const yb = Math.max(ya, Math.min(oh, h + pt - r));
    for (let q = 0; q < kw; q++) {
      const shift = q - pl;
      for (let c = 0; c < ci; c++) {
        for (let b = b0; b < b0 + nb; b++, o += block) {
          dst.fill(0, o, o + ya * w);
          dst.fill(0, o + yb * w, o + block);
          if (yb === ya) continue;
          const img = (c * nbAll + b) * h * w;
          let s0 = img + (ya + r - pt) * w + shift;
          let d0 = o + ya * w;
          let n = (yb - ya) * w;
          // Reads outside this image land only in columns zeroed below; clamp them away.
          if (s0 < img) {
            d0 += img - s0;
            n -= img - s0;
            s0 = img;
          }
          n = Math.min(n, img + h * w - s0);
          if (n > 0) dst.set(xT.subarray(s0, s0 + n), d0);
          if (shift > 0) {
            for (let y = ya; y < yb; y++) dst.fill(0, o + y * w + Math.max(0, w - shift), o + y * w + w);
          } else if (shift < 0) {
            for (let y = ya; y < yb; y++) dst.fill(0, o + y * w, o + y * w + Math.min(w, -shift));
          }
        }
      }
    }
  }
}

/**
 * dW for y = conv2d(x, W): dW = im2col(x)ᵀ · dy. im2col is written transposed ([KH·KW·Ci, columns]) so the backend's
 * fast non-transposed MatMul applies and dy keeps its NHWC layout; it is done in chunks of whole images (columns
 * ≈ DW_CHUNK_COLUMNS) whose products are summed, because one huge product streams its operands from memory once per
 * row tile and runs at half speed.
 */
export function conv2DBackpropFilterWasm(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: Backend;
  attrs: ConvGradAttrs & { filterShape: [number, number, number, number] };
}): TensorInfo {
  const { x, dy } = args.inputs;
  const backend = args.backend as WasmHeapBackend;
  const info = convInfoOf(x.shape, args.attrs.filterShape, args.attrs);
  const s = new KernelScope(backend);
  const rows = info.filterHeight * info.filterWidth * info.inChannels;
  const co = info.outChannels;
  const perImage = info.outHeight * info.outWidth;
  const imagesPerChunk = Math.max(1, Math.min(info.batchSize, Math.floor(DW_CHUNK_COLUMNS / perImage)));
  const xT = s.run('Transpose', { x }, { perm: [3, 0, 1, 2] }); // [Ci, B, H, W]
  const sum = new Float32Array(rows * co);
  let cols: TensorInfo | undefined;
  for (let b0 = 0; b0 < info.batchSize; b0 += imagesPerChunk) {
    const nb = Math.min(imagesPerChunk, info.batchSize - b0);
    if (cols === undefined || cols.shape[1] !== nb * perImage) {
      if (cols !== undefined) backend.disposeData(cols.dataId);
      cols = backend.makeOutput([rows, nb * perImage], 'float32');
    }
    // The MatMul kernel caches its packed right-hand operand by tensor id, so dy's rows go into a NEW tensor for
    // every chunk (rewriting one buffer in place would silently reuse the first chunk's packed values).
    const dyChunk = backend.makeOutput([nb * perImage, co], 'float32');
    // Heap views only after every allocation: growing the wasm heap detaches earlier views. The dy rows of these
    // images are contiguous: a memcpy (the stock Slice kernel is ~50× slower for the same copy).
    const dyRows = backend.typedArrayFromHeap(dy);
    backend.typedArrayFromHeap(dyChunk).set(dyRows.subarray(b0 * perImage * co, (b0 + nb) * perImage * co));
    im2colChunk(backend.typedArrayFromHeap(xT), backend.typedArrayFromHeap(cols), info, b0, nb);
    const prod = s.run('BatchMatMul', { a: cols, b: dyChunk }, { transposeA: false, transposeB: false });
    const p = backend.typedArrayFromHeap(prod);
    for (let i = 0; i < sum.length; i++) sum[i] += p[i]!;
    s.release(prod);
    backend.disposeData(dyChunk.dataId);
  }
  if (cols !== undefined) backend.disposeData(cols.dataId);
  const out = backend.makeOutput(args.attrs.filterShape, 'float32');
  backend.typedArrayFromHeap(out).set(sum);
  return s.finish(out);
}

/**
 * Sum / Mean over every axis but the last (bias gradients, batch-norm statistics: [B,H,W,C] → [C]) as one sequential
 * JS pass with float64 accumulators; the stock kernels transpose the whole tensor first. Other reductions go to the
 * stock kernel.
 */
function fastChannelReduce(original: tf.KernelConfig, mean: boolean): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = (args.inputs as unknown as { x: TensorInfo }).x;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
    const allButLast = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!allButLast || x.dtype !== 'float32') return original.kernelFunc(args);
    const backend = args.backend as WasmHeapBackend;
    const c = x.shape[rank - 1]!;
    const size = x.shape.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput(keepDims ? x.shape.map((d, i) => (i === rank - 1 ? d : 1)) : [c], 'float32');
    let acc: Float64Array;
    const k = size > 0 && c % 4 === 0 ? simdOf(backend) : undefined;
    if (k !== undefined) {
      // float64 accumulators in the heap (a scratch tensor of 2c float32s), summed in the JS loop's order.
      const scratch = backend.makeOutput([2 * c], 'float32');
      backend.typedArrayFromHeap(scratch).fill(0);
      k.channelSum(addr(backend, x), size / c, c, addr(backend, scratch));
      const view = backend.typedArrayFromHeap(scratch);
      acc = new Float64Array(view.buffer.slice(view.byteOffset, view.byteOffset + 8 * c));
      backend.disposeData(scratch.dataId);
    } else {
      const src = backend.typedArrayFromHeap(x);
      acc = new Float64Array(c);
      for (let i = 0; i < src.length; i += c) for (let j = 0; j < c; j++) acc[j] += src[i + j]!;
    }
    if (mean) {
      const n = size / c;
      for (let j = 0; j < c; j++) acc[j] /= n;
    }
    backend.typedArrayFromHeap(out).set(acc);
    return out;
  };
  return { ...original, kernelFunc };
}

/**
 * Identity shares the data (reference count + 1), as the cpu backend does, instead of copying it: tfjs clones every
 * tensor it saves for the backward pass, and tensors are immutable, so the copy buys nothing (~3% of a step).
 */
function sharedIdentity(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = (args.inputs as unknown as { x: TensorInfo }).x;
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { ...original, kernelFunc };
}

/**
 * Tile as block copies: each axis' block is written once, then doubled with copyWithin (memcpy) until it is repeated
 * `reps` times. The stock kernel computes every output element's source index; batch-norm gradients tile the
 * per-channel statistics to the full activation size, where that dominated a training step.
 */
function fastTile(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = (args.inputs as unknown as { x: TensorInfo }).x;
    const reps = (args.attrs as unknown as { reps: number[] }).reps;
    if (x.dtype === 'string' || reps.length !== x.shape.length) return original.kernelFunc(args);
    const backend = args.backend as WasmHeapBackend;
    const shape = x.shape;
    const rank = shape.length;
    const out = backend.makeOutput(shape.map((d, i) => d * reps[i]!), x.dtype);
    if (shape.some((d) => d === 0) || reps.some((r) => r === 0)) return out;
    const src = backend.typedArrayFromHeap(x) as unknown as Float32Array;
    const dst = backend.typedArrayFromHeap(out) as unknown as Float32Array;
    // Sizes of one input / output block below each axis.
    const inInner = new Array<number>(rank + 1).fill(1);
    const outInner = new Array<number>(rank + 1).fill(1);
    for (let a = rank - 1; a >= 0; a--) {
      inInner[a] = inInner[a + 1]! * shape[a]!;
      outInner[a] = outInner[a + 1]! * shape[a]! * reps[a]!;
    }
    const fill = (axis: number, inOff: number, outOff: number): void => {
      if (axis === rank) {
        dst[outOff] = src[inOff]!;
        return;
      }
      const block = outInner[axis + 1]! * shape[axis]!;
      if (axis === rank - 1) dst.set(src.subarray(inOff, inOff + shape[axis]!), outOff);
      else for (let j = 0; j < shape[axis]!; j++) fill(axis + 1, inOff + j * inInner[axis + 1]!, outOff + j * outInner[axis + 1]!);
      for (let done = 1; done < reps[axis]!; ) {
        const n = Math.min(done, reps[axis]! - done);
        dst.copyWithin(outOff + done * block, outOff, outOff + n * block);
        done += n;
      }
    };
    fill(0, 0, 0);
    return out;
  };
  return { ...original, kernelFunc };
}

/**
 * MaxPool gradient in plain JS over the wasm heap (the built-in kernel is a slow scalar loop): each dy element goes
 * to the first maximum of its window, as the cpu backend does.
 */
export function maxPoolGradWasm(args: {
  inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
  backend: Backend;
  attrs: {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: PadAttr;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
}): TensorInfo {
  const { dy, input } = args.inputs;
  const backend = args.backend as WasmHeapBackend;
  const a = args.attrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const out = backend.makeOutput(input.shape, 'float32');
  if (isTiled2x2(info) && info.inChannels > 0 && info.inChannels % 4 === 0 && info.batchSize * info.outHeight * info.outWidth > 0) {
    const k = simdOf(backend);
    if (k !== undefined) {
      k.maxPoolGrad2x2(addr(backend, input), addr(backend, dy), addr(backend, out), info.batchSize * info.outHeight, info.outWidth, info.inChannels);
      return out;
    }
  }
  const dx = backend.typedArrayFromHeap(out);
  const xs = backend.typedArrayFromHeap(input);
  const g = backend.typedArrayFromHeap(dy);
  if (isTiled2x2(info)) {
    maxPoolGrad2x2(xs, g, dx, info);
    return out;
  }
  dx.fill(0);
  const { batchSize: nb, inHeight: h, inWidth: w, inChannels: ch, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  let gi = 0;
  for (let b = 0; b < nb; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = Math.max(0, y * sh - pt);
      const y1 = Math.min(h, y * sh - pt + fh);
      for (let x = 0; x < ow; x++) {
        const x0 = Math.max(0, x * sw - pl);
        const x1 = Math.min(w, x * sw - pl + fw);
        for (let c = 0; c < ch; c++, gi++) {
          let best = -Infinity;
          let at = -1;
          for (let iy = y0; iy < y1; iy++) {
            const rowBase = (b * h + iy) * w;
            for (let ix = x0; ix < x1; ix++) {
              const idx = (rowBase + ix) * ch + c;
              const v = xs[idx]!;
              if (v > best || at < 0) {
                best = v;
                at = idx;
              }
            }
          }
          if (at >= 0) dx[at] += g[gi]!;
        }
      }
    }
  }
  return out;
}

/** 2×2 windows, stride 2, no padding, even sizes: windows tile the input exactly (the common CNN pooling). */
function isTiled2x2(i: tf.backend_util.Conv2DInfo): boolean {
  return (
    i.filterHeight === 2 && i.filterWidth === 2 && i.strideHeight === 2 && i.strideWidth === 2 &&
    i.padInfo.top === 0 && i.padInfo.left === 0 && i.inHeight === 2 * i.outHeight && i.inWidth === 2 * i.outWidth
  );
}

/** Fast path: every input pixel is in exactly one window, so each is written once (no zero fill, no +=). */
function maxPoolGrad2x2(xs: Float32Array, g: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize: nb, inWidth: w, inChannels: ch, outHeight: oh, outWidth: ow } = info;
  const rowStride = w * ch;
  let gi = 0;
  for (let b = 0; b < nb; b++) {
    for (let y = 0; y < oh; y++) {
      let i00 = (b * 2 * oh + 2 * y) * rowStride;
      for (let x = 0; x < ow; x++, i00 += 2 * ch) {
        for (let c = 0; c < ch; c++, gi++) {
          const a = i00 + c;
          const bb = a + ch;
          const cc = a + rowStride;
          const d = cc + ch;
          // First maximum in row-major window order, like the cpu backend.
          let at = a;
          let best = xs[a]!;
          if (xs[bb]! > best) { best = xs[bb]!; at = bb; }
          if (xs[cc]! > best) { best = xs[cc]!; at = cc; }
          if (xs[d]! > best) at = d;
          dx[a] = 0; dx[bb] = 0; dx[cc] = 0; dx[d] = 0;
          dx[at] = g[gi]!;
        }
      }
    }
  }
}

/**
 * The stock wasm Conv2D/FusedConv2D hand 'same' padding to XNNPACK's TensorFlow-SAME mode, which disagrees with tfjs
 * for some stride > 1 shapes (e.g. 6×8 input, 2×2 kernel, stride 3). Passing the padding tfjs itself computes as
 * explicit amounts gives the reference result, so wrap both kernels to do that.
 */
function withExplicitSamePadding(name: 'Conv2D' | 'FusedConv2D'): tf.KernelConfig {
  const original = tf.getKernel(name, 'wasm');
  if (original === undefined) throw new Error(`wasm backend has no ${name} kernel`);
  const kernelFunc: tf.KernelFunc = (args) => {
    const attrs = args.attrs as unknown as ConvGradAttrs & { dilations: number | [number, number] };
    const inputs = args.inputs as unknown as { x: TensorInfo; filter: TensorInfo };
    if (attrs.pad !== 'same' && typeof attrs.pad !== 'number') return original.kernelFunc(args);
    const info = tf.backend_util.computeConv2DInfo(
      inputs.x.shape as [number, number, number, number],
      inputs.filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      tf.backend_util.convertConv2DDataFormat(attrs.dataFormat),
    );
    const p = info.padInfo;
    const pad = explicit([p.top, p.bottom, p.left, p.right]);
    return original.kernelFunc({ ...args, attrs: { ...args.attrs, pad } as unknown as tf.NamedAttrMap });
  };
  return { ...original, kernelFunc };
}

/**
 * Add of a per-channel bias ([…, C] + [C], both float32, C a multiple of 4) in SIMD: what every conv and dense layer
 * does after its product. The stock kernel's generic broadcasting loop is several times slower. Same IEEE additions,
 * same bits; every other Add goes to the stock kernel.
 */
function fastBiasAdd(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as unknown as { a: TensorInfo; b: TensorInfo };
    const c = b.shape[0]!;
    const simple =
      a.dtype === 'float32' && b.dtype === 'float32' && b.shape.length === 1 && a.shape.length >= 2 && a.shape[a.shape.length - 1] === c && c % 4 === 0;
    const backend = args.backend as WasmHeapBackend;
    const k = simple ? simdOf(backend) : undefined;
    const pixels = a.shape.reduce((x, y) => x * y, 1) / Math.max(c, 1);
    if (k === undefined || pixels === 0) return original.kernelFunc(args);
    const out = backend.makeOutput(a.shape, 'float32');
    k.biasAdd(addr(backend, a), addr(backend, b), addr(backend, out), pixels, c);
    return out;
  };
  return { ...original, kernelFunc };
}

/** The ReLU gradient in one SIMD pass: dx = dy · step(x), the stock formula's bits (a wasm kernel of its own). */
export const RELU_GRAD = 'PipeReluGrad';
function reluGradWasm(args: { inputs: { dy: TensorInfo; x: TensorInfo }; backend: Backend }): TensorInfo {
  const { dy, x } = args.inputs;
  const backend = args.backend as WasmHeapBackend;
  const out = backend.makeOutput(x.shape, 'float32');
  const n = x.shape.reduce((a, b) => a * b, 1);
  const k = simdOf(backend);
  const groups = k === undefined ? 0 : Math.floor(n / 4);
  if (groups > 0) k!.reluGrad(addr(backend, dy), addr(backend, x), addr(backend, out), groups);
  const g = backend.typedArrayFromHeap(dy);
  const xs = backend.typedArrayFromHeap(x);
  const dx = backend.typedArrayFromHeap(out);
  for (let i = groups * 4; i < n; i++) dx[i] = g[i]! * (xs[i]! > 0 ? 1 : Number.isNaN(xs[i]!) ? NaN : 0);
  return out;
}

/**
 * tfjs's ReLU gradient is mul(dy, cast(step(x))): three full passes over the activation. On wasm it becomes one pass
 * of RELU_GRAD; every other backend keeps the stock formula (a gradient is registered per kernel, for all backends).
 */
function registerReluGradient(): void {
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      return {
        x: () =>
          tf.getBackend() === 'wasm' && g.dtype === 'float32' && x.dtype === 'float32'
            ? (tf.engine().runKernel(RELU_GRAD, { dy: g, x }) as tf.Tensor)
            : tf.mul(g, tf.cast(tf.step(x), 'float32')),
      };
    },
  });
}

let registered = false;

/** Registers the fast gradient kernels on the `wasm` backend (idempotent; replaces the slow built-in dX kernel). */
export function registerWasmConvGradients(): void {
  if (registered) return;
  const sum = tf.getKernel('Sum', 'wasm');
  const mean = tf.getKernel('Mean', 'wasm');
  const tile = tf.getKernel('Tile', 'wasm');
  const identity = tf.getKernel('Identity', 'wasm');
  const addKernel = tf.getKernel('Add', 'wasm');
  const wrapped = [
    ...(identity ? [sharedIdentity(identity)] : []),
    ...(addKernel ? [fastBiasAdd(addKernel)] : []),
    ...(['Conv2D', 'FusedConv2D'] as const).map(withExplicitSamePadding),
    ...(sum ? [fastChannelReduce(sum, false)] : []),
    ...(mean ? [fastChannelReduce(mean, true)] : []),
    ...(tile ? [fastTile(tile)] : []),
  ];
  for (const k of wrapped) {
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel(k);
  }
  for (const name of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad']) {
    if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
  }
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: conv2DBackpropFilterWasm as unknown as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: conv2DBackpropInputWasm as unknown as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: 'MaxPoolGrad',
    backendName: 'wasm',
    kernelFunc: maxPoolGradWasm as unknown as tf.KernelFunc,
  });
  tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc: reluGradWasm as unknown as tf.KernelFunc });
  registerReluGradient();
  registered = true;
}
