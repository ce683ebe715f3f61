/**
 * DICOM writing (dcmjs) with the variation real archives show, so the preprocessing path is exercised for real:
 * MONOCHROME1 (inverted) vs MONOCHROME2, 12- vs 16-bit Bits Stored, modality LUT rescale slope/intercept, and an
 * optional VOI window that the stored values only make sense through.
 *
 * `encodeDisplay` is the inverse of the preprocessing chain (METHODS C.5): given the display image we want the
 * pipeline to recover, it computes stored values such that modality LUT → VOI window → MONOCHROME1 inversion →
 * scaling gives that image back (up to quantisation).
 */
import { createRequire } from 'node:module';
import type { Rng } from './prng.js';

interface DcmjsData {
  datasetToBuffer(dataset: Record<string, unknown>): Buffer;
}
const require = createRequire(import.meta.url);
const dcmjs = require('dcmjs') as { data: DcmjsData };

interface J2KEncoder {
  getDecodedBuffer(info: { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean }): Uint8Array;
  setQuality(lossless: boolean, quality: number): void;
  encode(): void;
  getEncodedBuffer(): Uint8Array;
  delete?(): void;
}
let openjpeg: Promise<{ J2KEncoder: new () => J2KEncoder }> | null = null;

/** Lossless JPEG 2000 codestream of a 16-bit grayscale image (OpenJPEG, WebAssembly). */
export async function encodeJpeg2000(pixels: Uint16Array, size: number): Promise<Uint8Array> {
  openjpeg ??= (require('@cornerstonejs/codec-openjpeg/wasmjs') as (o: object) => Promise<{ J2KEncoder: new () => J2KEncoder }>)({
    print: () => undefined,
    printErr: () => undefined,
  });
  const enc = new (await openjpeg).J2KEncoder();
  try {
    enc.getDecodedBuffer({ width: size, height: size, bitsPerSample: 16, componentCount: 1, isSigned: false }).set(
      new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    );
    enc.setQuality(true, 0);
    enc.encode();
    return enc.getEncodedBuffer().slice();
  } finally {
    enc.delete?.();
  }
}

export interface DicomEncoding {
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  bitsStored: 12 | 16;
  slope: number;
  intercept: number;
  /** VOI window in rescaled units (DICOM's center/width convention), or null for none. */
  window: { center: number; width: number } | null;
}

/** Random but valid encoding parameters; `monochrome1Fraction` of images are stored inverted. */
export function drawEncoding(rng: Rng, monochrome1Fraction: number): DicomEncoding {
  const bitsStored = rng.bernoulli(0.5) ? 12 : 16;
  const [slope, intercept] = rng.pick([
    [1, 0],
    [1, 0],
    [2, 0],
    [1, -1024],
    [0.5, 100],
  ] as const);
  const max = 2 ** bitsStored - 1;
  const lo = Math.min(intercept, max * slope + intercept);
  const hi = Math.max(intercept, max * slope + intercept);
  let window: DicomEncoding['window'] = null;
  if (rng.bernoulli(0.7)) {
    // Window over a sub-range of the rescaled values: without applying it the image would look washed out.
    const wlo = lo + (hi - lo) * rng.uniform(0.05, 0.2);
    const whi = lo + (hi - lo) * rng.uniform(0.7, 0.9);
    window = { center: Math.round((wlo + whi) / 2 + 0.5), width: Math.round(whi - wlo + 1) };
  }
  return {
    photometric: rng.bernoulli(monochrome1Fraction) ? 'MONOCHROME1' : 'MONOCHROME2',
    bitsStored,
    slope,
    intercept,
    window,
  };
}

/** Stored values for display intensities in [0, 1] (the inverse of preprocess's DICOM chain). */
export function encodeDisplay(display: Float32Array, enc: DicomEncoding): Uint16Array {
  const maxStored = 2 ** enc.bitsStored - 1;
  const y0 = Math.min(enc.intercept, maxStored * enc.slope + enc.intercept);
  const y1 = Math.max(enc.intercept, maxStored * enc.slope + enc.intercept);
  // Preprocess maps the LUT output range [y0, y1] onto [0, 2^bits) (see stages/preprocess/images/dicom.ts).
  const scale = ((y1 - y0) * 2 ** enc.bitsStored) / maxStored;
  const out = new Uint16Array(display.length);
  for (let i = 0; i < display.length; i++) {
    let d = Math.min(1, Math.max(0, display[i]!));
    if (enc.photometric === 'MONOCHROME1') d = 1 - d;
    let y = y0 + d * scale; // value after the VOI LUT (or after the modality LUT when there is no window)
    y = Math.min(y1, y);
    let v = y; // rescaled (modality) value
    if (enc.window) {
      const { center: c, width: w } = enc.window;
      v = (((y - y0) / (y1 - y0) - 0.5) * (w - 1) + (c - 0.5));
    }
    const s = Math.round((v - enc.intercept) / enc.slope);
    out[i] = Math.min(maxStored, Math.max(0, s));
  }
  return out;
}

export interface DicomPatient {
  /** DICOM AS string ("045Y"), or null to omit the tag. */
  age: string | null;
  sex: 'M' | 'F' | 'O';
  id: string;
}

const uid = (rng: Rng): string => `2.25.${BigInt('0x' + rng.hex(30)).toString()}`;

/**
 * A DX image IOD, explicit VR little endian: uncompressed, or with `jpeg2000` (a codestream of these pixels from
 * encodeJpeg2000) as encapsulated Pixel Data in the JPEG 2000 lossless transfer syntax.
 */
export function writeDicom(
  pixels: Uint16Array,
  size: number,
  enc: DicomEncoding,
  patient: DicomPatient,
  rng: Rng,
  jpeg2000?: Uint8Array,
): Buffer {
  const ts = jpeg2000 ? '1.2.840.10008.1.2.4.90' : '1.2.840.10008.1.2.1';
  const ds: Record<string, unknown> = {
    _meta: { TransferSyntaxUID: { Value: [ts] } },
    _vrMap: { PixelData: jpeg2000 ? 'OB' : 'OW' },
    SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1',
    SOPInstanceUID: uid(rng),
    StudyInstanceUID: uid(rng),
    SeriesInstanceUID: uid(rng),
    Modality: 'DX',
    PatientID: patient.id,
    PatientSex: patient.sex,
    ViewPosition: 'PA',
    BodyPartExamined: 'CHEST',
    SamplesPerPixel: 1,
    PhotometricInterpretation: enc.photometric,
    Rows: size,
    Columns: size,
    BitsAllocated: 16,
    BitsStored: enc.bitsStored,
    HighBit: enc.bitsStored - 1,
    PixelRepresentation: 0,
    RescaleSlope: String(enc.slope),
    RescaleIntercept: String(enc.intercept),
    PixelData: jpeg2000
      ? [jpeg2000.buffer.slice(jpeg2000.byteOffset, jpeg2000.byteOffset + jpeg2000.byteLength)]
      : pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength),
  };
  if (patient.age !== null) ds['PatientAge'] = patient.age;
  if (enc.window) {
    ds['WindowCenter'] = String(enc.window.center);
    ds['WindowWidth'] = String(enc.window.width);
  }
  return dcmjs.data.datasetToBuffer(ds);
}
