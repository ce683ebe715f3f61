import type { StageManifest } from '../../../engine/stage-api.js';

export const manifest: StageManifest = {
  kind: 'preprocess/images',
  description:
    'Read a chest X-ray dataset in its published layout (metadata per METHODS C.2), load every image (PNG/JPEG ' +
    '8/16-bit via sharp; DICOM with modality LUT, VOI window, MONOCHROME1 inversion and bit-depth scaling per C.5), ' +
    'resize to size×size and write a packed uint8 shard set (index.json with mean/std, rows.csv, shard-*.bin).',
  with: {
    dataset: { type: 'path', role: 'dep', required: true, description: 'Dataset root directory (trailing /).' },
    layout: {
      type: 'enum',
      values: ['vindr_cxr', 'vindr_pcxr', 'nih', 'padchest', 'chexpert', 'table'],
      required: true,
      description: 'Published layout of the dataset; `table` reads `metadata` (a CSV with a `path` column).',
    },
    metadata: {
      type: 'path',
      role: 'dep',
      description: 'For layout `table`: metadata CSV whose `path` column is relative to `dataset`.',
    },
    out: { type: 'path', role: 'out', required: true, description: 'Shard set directory to write (trailing /).' },
    size: { type: 'integer', default: 224, description: 'Output width and height (e.g. 128 or 224).' },
    skip_unreadable: {
      type: 'boolean',
      default: false,
      description:
        'Drop images that cannot be decoded or interpreted (an unreadable window, constant pixel data, over the pixel ' +
        'limit; each logged with its reason) instead of failing the stage.',
    },
    max_image_pixels: {
      type: 'integer',
      default: 8192 * 8192,
      description:
        'Most pixels (width × height) one source image may have; larger ones fail (or are skipped) by name before ' +
        'they are decoded. Bounds memory per worker (~10 bytes per pixel).',
    },
    max_metadata_mb: {
      type: 'number',
      default: 1024,
      description: 'Largest metadata table read (MB, unzipped for a .csv.gz); it is held in memory.',
    },
  },
  resources: { cpus: 2 },
};
