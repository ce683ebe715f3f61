/**
 * DICOM → display intensities, as METHODS C.5 describes the authors' pydicom chain:
 *   modality LUT (rescale slope/intercept) → VOI LUT (linear window) → bit depth (Bits Stored, or 8 when the maximum
 *   is below 256) → MONOCHROME1 inverted (2^bits − value) → divided by 2^bits.
 *
 * Generalisation (documented): the value range after the LUTs is [y0, y1] = the modality LUT applied to the stored
 * range; we map it onto [0, 2^bits) before inverting. With slope 1 and intercept 0 (y0 = 0) this is exactly the
 * authors' arithmetic; with other rescales their chain would exceed 2^bits and raise, ours stays in range.
 */
import { createRequire } from 'node:module';
import type { DataSet, Element } from 'dicom-parser';

const require = createRequire(import.meta.url);
/** dicom-parser is a UMD bundle: loaded through require, typed by the package's own index.d.ts. */
const dicomParser = require('dicom-parser') as typeof import('dicom-parser');

/** Transfer syntaxes whose pixel data is stored raw (implicit/explicit little endian, deflated is not). */
const UNCOMPRESSED = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);
/** JPEG 2000 (lossless only / lossy) via OpenJPEG (WebAssembly); JPEG baseline 8-bit via sharp. */
const JPEG2000 = new Set(['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91']);
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const SUPPORTED = 'explicit/implicit VR little endian, JPEG 2000 (1.2.840.10008.1.2.4.90/.91), JPEG baseline (1.2.840.10008.1.2.4.50)';

interface J2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete?(): void;
}
type OpenJpegModule = { J2KDecoder: new () => J2KDecoder };
let openjpeg: Promise<OpenJpegModule> | null = null;
/** The OpenJPEG WebAssembly module, loaded once per thread on first use (its console chatter silenced). */
function loadOpenJpeg(): Promise<OpenJpegModule> {
  openjpeg ??= (require('@cornerstonejs/codec-openjpeg/decodewasmjs') as (o: object) => Promise<OpenJpegModule>)({
    print: () => undefined,
    printErr: () => undefined,
  });
  return openjpeg;
}

/** Decompressed samples of the first frame, with their type's signedness already applied. */
async function decompress(ds: DataSet, el: Element, ts: string, n: number): Promise<Int32Array> {
  const frags = el.fragments;
  if (!el.encapsulatedPixelData || !frags?.length) throw new DicomError(`transfer syntax ${ts} needs encapsulated Pixel Data`);
  const frame = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, frags.length);
  const out = new Int32Array(n);
  if (ts === JPEG_BASELINE) {
    const { default: sharp } = await import('sharp');
    const raw = await sharp(frame).toColourspace('b-w').raw().toBuffer();
    if (raw.length !== n) throw new DicomError(`JPEG frame decodes to ${raw.length} samples, expected ${n}`);
    for (let i = 0; i < n; i++) out[i] = raw[i]!;
    return out;
  }
  const m = await loadOpenJpeg();
  const dec = new m.J2KDecoder();
  try {
    dec.getEncodedBuffer(frame.length).set(frame);
    dec.decode();
    const info = dec.getFrameInfo();
    if (info.width * info.height !== n || info.componentCount !== 1)
      throw new DicomError(`JPEG 2000 frame is ${info.width}×${info.height}×${info.componentCount}, expected ${n} grayscale samples`);
    const bytes = dec.getDecodedBuffer().slice();
    const view =
      info.bitsPerSample > 8
        ? info.isSigned
          ? new Int16Array(bytes.buffer, 0, n)
          : new Uint16Array(bytes.buffer, 0, n)
        : info.isSigned
          ? new Int8Array(bytes.buffer, 0, n)
          : bytes.subarray(0, n);
    out.set(view);
    return out;
  } catch (e) {
    if (e instanceof DicomError) throw e;
    throw new DicomError(`JPEG 2000 pixel data could not be decoded (${typeof e === 'number' ? `OpenJPEG error ${e}` : (e as Error).message})`);
  } finally {
    dec.delete?.();
  }
}

export class DicomError extends Error {}

export interface DicomDisplay {
  width: number;
  height: number;
  /** Display intensities in [0, 1] (dense = bright), float. */
  data: Float32Array;
  photometric: string;
  bits: number;
}

/** pydicom's linear VOI function (PS3.3 C.11.2.1.2.1) onto [y0, y1]. */
export function applyWindow(x: number, center: number, width: number, y0: number, y1: number): number {
  if (width <= 1) return x <= center - 0.5 ? y0 : y1;
  const lo = center - 0.5 - (width - 1) / 2;
  const hi = center - 0.5 + (width - 1) / 2;
  if (x <= lo) return y0;
  if (x > hi) return y1;
  return ((x - (center - 0.5)) / (width - 1) + 0.5) * (y1 - y0) + y0;
}

/** Limits a decode keeps to; the stage names the with: field that raises each. */
export interface DecodeLimits {
  /** Most pixels (Rows × Columns) an image may have. */
  maxPixels: number;
}

/** Tag (gggg,eeee) as DICOM writes it, from dicom-parser's xggggeeee. */
const tagName = (tag: string): string => `(${tag.slice(1, 5)},${tag.slice(5, 9)})`.toUpperCase();

/**
 * A decimal-string (DS) value, strictly: absent or empty → undefined; anything that is not a finite number ("abc",
 * "12abc", "NaN") is an error naming the attribute, instead of dicom-parser's parseFloat leniency.
 */
function decimal(ds: DataSet, tag: string, name: string, index = 0): number | undefined {
  if (ds.elements[tag] === undefined) return undefined;
  const raw = ds.string(tag, index)?.trim();
  if (raw === undefined || raw === '') return undefined;
  const v = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(v)) throw new DicomError(`${name} ${tagName(tag)} is "${raw}", not a number`);
  return v;
}

export async function decodeDicom(bytes: Uint8Array, limits: DecodeLimits): Promise<DicomDisplay> {
  let ds: DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (e) {
    // dicom-parser throws strings, Errors, or {exception, dataSet} objects.
    const why = e instanceof Error ? e.message : typeof e === 'string' ? e : String((e as { exception?: unknown })?.exception ?? 'unknown error');
    throw new DicomError(`not a readable DICOM file (${why})`);
  }
  const ts = ds.string('x00020010')?.trim() ?? '1.2.840.10008.1.2';
  if (!UNCOMPRESSED.has(ts) && !JPEG2000.has(ts) && ts !== JPEG_BASELINE)
    throw new DicomError(`transfer syntax ${ts} is not supported (supported: ${SUPPORTED}); convert with e.g. gdcmconv --raw`);
  const rows = ds.uint16('x00280010');
  const cols = ds.uint16('x00280011');
  const bitsAllocated = ds.uint16('x00280100') ?? 16;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const signed = ds.uint16('x00280103') === 1;
  const samples = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? 'MONOCHROME2').trim();
  const pixel = ds.elements['x7fe00010'];
  if (!rows || !cols || !pixel) throw new DicomError('missing Rows, Columns or Pixel Data (or Rows/Columns is 0)');
  const n = rows * cols;
  if (n > limits.maxPixels)
    throw new DicomError(`Rows × Columns = ${rows}×${cols} = ${n} pixels, more than the limit of ${limits.maxPixels} pixels`);
  if (samples !== 1 || (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2'))
    throw new DicomError(`photometric interpretation ${photometric} is not a grayscale radiograph (MONOCHROME1/2 expected)`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new DicomError(`Bits Allocated ${bitsAllocated} is not supported`);
  if (bitsStored < 1 || bitsStored > bitsAllocated)
    throw new DicomError(`Bits Stored ${bitsStored} does not fit Bits Allocated ${bitsAllocated}`);
  const compressed = !UNCOMPRESSED.has(ts);
  if (!compressed && pixel.length < n * (bitsAllocated / 8))
    throw new DicomError(`Pixel Data is shorter than Rows × Columns (${rows}×${cols})`);

  // Every LUT parameter must be a number the chain can use; a value that cannot be interpreted fails the file
  // (pydicom raises too) rather than turning every pixel into the same garbage value.
  const slope = decimal(ds, 'x00281053', 'Rescale Slope') ?? 1;
  const intercept = decimal(ds, 'x00281052', 'Rescale Intercept') ?? 0;
  if (slope === 0) throw new DicomError('Rescale Slope (0028,1053) is 0: every pixel would have the same value');
  const center = decimal(ds, 'x00281050', 'Window Center');
  const width = decimal(ds, 'x00281051', 'Window Width');
  if ((center === undefined) !== (width === undefined))
    throw new DicomError(`${center === undefined ? 'Window Width (0028,1051)' : 'Window Center (0028,1050)'} is given without its partner: the VOI window cannot be applied`);
  if (width !== undefined && width < 1)
    throw new DicomError(`Window Width (0028,1051) is ${width}; a linear VOI window needs a width of at least 1`);
  const decoded = compressed ? await decompress(ds, pixel, ts, n) : null;

  const buf = ds.byteArray;
  const view = compressed ? null : new DataView(buf.buffer, buf.byteOffset + pixel.dataOffset, n * (bitsAllocated / 8));
  const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;

  // Stored value range, then its image under the modality LUT: the range the VOI output also spans (pydicom).
  const sMin = signed ? -(2 ** (bitsStored - 1)) : 0;
  const sMax = signed ? 2 ** (bitsStored - 1) - 1 : mask;
  const y0 = Math.min(sMin * slope + intercept, sMax * slope + intercept);
  const y1 = Math.max(sMin * slope + intercept, sMax * slope + intercept);

  const out = new Float32Array(n);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    let s: number;
    if (decoded) s = decoded[i]!;
    else {
      s = bitsAllocated === 16 ? view!.getUint16(i * 2, true) : view!.getUint8(i);
      s &= mask;
      if (signed && s > sMax) s -= 2 ** bitsStored;
    }
    let v = s * slope + intercept;
    if (center !== undefined && width !== undefined) v = applyWindow(v, center, width, y0, y1);
    out[i] = v;
    if (v > max) max = v;
    if (v < min) min = v;
  }
  // An image that is one value after the LUTs (all-zero pixel data, a window that maps everything to one end) holds
  // nothing to learn from and is almost surely a broken export: fail (or, with skip_unreadable, skip) it by name.
  if (!(max > min))
    throw new DicomError(
      `pixel data is unusable: every pixel is ${Number.isFinite(min) ? min : 'not a number'} after the modality LUT` +
        `${center !== undefined ? ` and the VOI window (center ${center}, width ${width})` : ''}`,
    );
  // C.5: bit depth = Bits Stored, but 8 if the maximum is below 256; the LUT range [y0, y1] maps onto [0, 2^bits),
  // which with slope 1 / intercept 0 is the authors' division by 2^bits.
  const eightBit = y0 === 0 && max < 256;
  const bits = eightBit ? 8 : bitsStored;
  const scale = eightBit ? 256 : ((y1 - y0) * 2 ** bits) / (2 ** bits - 1);
  const invert = photometric === 'MONOCHROME1';
  for (let i = 0; i < n; i++) {
    let d = (out[i]! - y0) / scale;
    if (invert) d = 1 - d;
    out[i] = d < 0 ? 0 : d > 1 ? 1 : d;
  }
  return { width: cols, height: rows, data: out, photometric, bits };
}
