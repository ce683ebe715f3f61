/**
 * Grayscale PNG encode/decode through sharp, keeping 16-bit depth when the file has it (sharp would otherwise
 * hand back 8-bit sRGB by default).
 */
import sharp from 'sharp';

export interface GrayImage {
  width: number;
  height: number;
  /** 8 or 16 bits per sample. */
  depth: 8 | 16;
  data: Uint8Array | Uint16Array;
}

/** Encode a single-channel image as an 8-bit or 16-bit grayscale PNG. */
export async function encodeGrayPng(img: GrayImage, compressionLevel = 6): Promise<Buffer> {
  const input = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 1 } });
  return img.depth === 16
    ? input.toColourspace('grey16').png({ compressionLevel }).toBuffer()
    : input.toColourspace('b-w').png({ compressionLevel }).toBuffer();
}

/** Quantise display intensities in [0, 1] to 8- or 16-bit samples (rounding to nearest). */
export function quantize(values: Float32Array, depth: 8 | 16): Uint8Array | Uint16Array {
  const max = depth === 16 ? 65535 : 255;
  const out = depth === 16 ? new Uint16Array(values.length) : new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, values[i]!)) * max);
  return out;
}
