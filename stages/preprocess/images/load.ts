/**
 * One image file → size×size uint8 grayscale, the way METHODS C.5 loads images:
 *  - DICOM: the LUT chain of dicom.ts, ×255, antialiased resize, truncation to uint8;
 *  - PNG/JPEG: 8-bit as is, 16-bit divided by 256 (clamped), antialiased resize (aspect ratio not kept).
 * Resizing runs in sharp (libvips) at 16-bit precision, so the only rounding is the final truncation.
 */
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import { decodeDicom, type DecodeLimits } from './dicom.js';

export class ImageLoadError extends Error {}

export function isDicom(bytes: Uint8Array, file: string): boolean {
  if (/\.(dcm|dicom)$/i.test(file)) return true;
  return bytes.length > 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/** 16-bit grayscale raw pixels → resized 16-bit raw pixels. */
async function resize16(data: Uint16Array, width: number, height: number, size: number): Promise<Uint16Array> {
  const out = await sharp(data, { raw: { width, height, channels: 1 } })
    .resize(size, size, RESIZE)
    .toColourspace('grey16')
    .raw({ depth: 'ushort' })
    .toBuffer();
  return new Uint16Array(out.buffer, out.byteOffset, out.length / 2);
}

export async function loadDicom(bytes: Uint8Array, size: number, limits: DecodeLimits): Promise<Uint8Array> {
  const d = await decodeDicom(bytes, limits);
  const u16 = new Uint16Array(d.data.length);
  for (let i = 0; i < u16.length; i++) u16[i] = Math.round(d.data[i]! * 65535);
  const r = await resize16(u16, d.width, d.height, size);
  const out = new Uint8Array(r.length);
  // value × 255 truncated; 65535 = 255 × 257, the tiny epsilon absorbs the 16-bit rounding above.
  for (let i = 0; i < r.length; i++) out[i] = Math.min(255, Math.floor(r[i]! / 257 + 1e-6));
  return out;
}

/** Bit depth and channel count from a PNG's IHDR (no decode); null for other formats. */
export function pngHeader(bytes: Uint8Array): { depth: number; gray: boolean } | null {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 29 || sig.some((b, i) => bytes[i] !== b)) return null;
  // IHDR: length(4) "IHDR"(4) width(4) height(4) bit depth(1) colour type(1); colour type 0 = grayscale.
  return { depth: bytes[24]!, gray: bytes[25] === 0 };
}

// Resampling: libvips box-shrinks by the integer factor, then a linear kernel for the rest — an antialiased
// bilinear resize like skimage's `resize(anti_aliasing=True)` the authors used, and the fastest of sharp's kernels.
const RESIZE = { fit: 'fill', kernel: 'linear' } as const;

export async function loadRaster(bytes: Uint8Array, size: number, limits: DecodeLimits): Promise<Uint8Array> {
  // The header alone says how large the image is: refuse before decoding (sharp's own limit is the second guard).
  const meta = await sharp(bytes).metadata();
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > limits.maxPixels)
    throw new ImageLoadError(`${meta.width}×${meta.height} = ${pixels} pixels, more than the limit of ${limits.maxPixels} pixels`);
  const input = (): ReturnType<typeof sharp> => sharp(bytes, { limitInputPixels: limits.maxPixels });
  const png = pngHeader(bytes);
  const sixteen = png ? png.depth === 16 : meta.depth === 'ushort';
  if (sixteen) {
    const r = await input().toColourspace('grey16').resize(size, size, RESIZE).raw({ depth: 'ushort' }).toBuffer();
    const u16 = new Uint16Array(r.buffer, r.byteOffset, r.length / 2);
    const out = new Uint8Array(u16.length);
    for (let i = 0; i < u16.length; i++) out[i] = Math.min(255, u16[i]! >> 8); // C.5: 16-bit → ÷256, clamp
    return out;
  }
  // 'b-w' output space: one channel (sharp would otherwise emit sRGB, 3 channels, even for gray input).
  const r = await input().toColourspace('b-w').resize(size, size, RESIZE).raw().toBuffer();
  if (r.length !== size * size) throw new ImageLoadError(`decoded to ${r.length} bytes, expected ${size}×${size}`);
  return new Uint8Array(r.buffer, r.byteOffset, r.length);
}

/**
 * The whole file, refused when it is larger than `maxBytes` (checked on the open handle, so a file that grows while
 * we read is cut at the limit and refused rather than read without end).
 */
async function readBounded(file: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const { size, isFile } = await fh.stat().then((s) => ({ size: s.size, isFile: s.isFile() }));
    if (!isFile) throw new ImageLoadError(`${file}: not a regular file`);
    if (size > maxBytes) throw new ImageLoadError(`${file}: ${size} bytes, more than the limit of ${maxBytes} bytes for one image file`);
    const buf = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(buf, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === size ? buf : buf.subarray(0, at);
  } finally {
    await fh.close();
  }
}

/**
 * Bytes one image file may have for `maxPixels` pixels: 16-bit samples uncompressed, plus room for headers and
 * overlays. Compressed files are smaller; this only stops a file no sane image of that size can be.
 */
export const maxFileBytes = (maxPixels: number): number => 4 * maxPixels + 16 * 1024 * 1024;

/** Load and resize one file; errors name the file. */
export async function loadImage(file: string, size: number, limits: DecodeLimits): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readBounded(file, maxFileBytes(limits.maxPixels));
  } catch (e) {
    if (e instanceof ImageLoadError) throw e;
    throw new ImageLoadError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return isDicom(bytes, file) ? await loadDicom(bytes, size, limits) : await loadRaster(bytes, size, limits);
  } catch (e) {
    throw new ImageLoadError(`${file}: ${(e as Error).message}`);
  }
}
