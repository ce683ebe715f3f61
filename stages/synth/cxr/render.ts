/** One phantom image: render it and encode it in the requested format (used inline and by worker.ts). */
import { encodeGrayPng, quantize } from '../../lib/png.js';
import { formatAgeString, type SynthImage } from './cohort.js';
import { drawEncoding, encodeDisplay, encodeJpeg2000, writeDicom } from './dicom.js';
import type { ImageFormat } from './layouts.js';
import { renderPhantom } from './phantom.js';
import { createRng } from './prng.js';

/** Render one image and encode it in the requested format; returns the file bytes and the measured CTR. */
export async function synthesizeImage(
  img: SynthImage,
  size: number,
  format: ImageFormat,
  monochrome1Fraction: number,
  seed: string,
  compression: 'none' | 'jpeg2000' = 'none',
): Promise<{ bytes: Buffer; measuredCtr: number; photometric?: string }> {
  const rng = createRng(seed).fork(`render/${img.index}`);
  const ph = renderPhantom({ size, anatomy: img.anatomy, findings: img.findings, exposure: img.exposure }, rng);
  if (format === 'dicom') {
    const enc = drawEncoding(rng, monochrome1Fraction);
    const stored = encodeDisplay(ph.image, enc);
    const age = img.ageDays === null ? null : formatAgeString(img.ageDays);
    const j2k = compression === 'jpeg2000' ? await encodeJpeg2000(stored, size) : undefined;
    const bytes = writeDicom(stored, size, enc, { age, sex: img.sex, id: img.patientId }, rng, j2k);
    return { bytes, measuredCtr: ph.measuredCtr, photometric: enc.photometric };
  }
  const depth = format === 'png16' ? 16 : 8;
  const bytes = await encodeGrayPng({ width: size, height: size, depth, data: quantize(ph.image, depth) });
  return { bytes, measuredCtr: ph.measuredCtr };
}

