import type { StageManifest } from '../../../engine/stage-api.js';

export const manifest: StageManifest = {
  kind: 'synth/cxr',
  description:
    'Procedural chest-radiograph phantoms (seeded) written in the layout of a real dataset (VinDr-CXR, VinDr-PCXR, ' +
    'NIH, PadChest): images as PNG (8/16-bit) or DICOM and the metadata CSVs with real age formats. Healthy children ' +
    'have physiologically larger cardiothoracic ratios than adults (see stages/synth/cxr/README.md).',
  with: {
    out: { type: 'path', role: 'out', required: true, description: 'Dataset root directory to create.' },
    layout: {
      type: 'enum',
      values: ['vindr_cxr', 'vindr_pcxr', 'nih', 'padchest'],
      required: true,
      description: 'Which real dataset layout (file names, CSVs, age format) to imitate.',
    },
    patients: { type: 'integer', default: 200, description: 'Number of patients (NIH/PadChest have more images).' },
    seed: { type: 'integer', default: 42, description: 'Random seed: same seed and parameters → identical bytes.' },
    size: { type: 'integer', default: 256, description: 'Image width and height in pixels.' },
    format: {
      type: 'enum',
      values: ['png8', 'png16', 'dicom'],
      description: 'Image format; default: dicom for VinDr layouts, png8 for NIH, png16 for PadChest.',
    },
    cardiomegaly_prevalence: {
      type: 'number',
      description: 'Share of patients with cardiomegaly (default per layout: 0.12 VinDr-CXR, 0.1 NIH, 0.12 PadChest, 0 VinDr-PCXR).',
    },
    finding_prevalence: {
      type: 'number',
      description: 'Share of patients without cardiomegaly with another finding (nodule, effusion, opacity).',
    },
    ages: {
      type: 'object',
      description:
        'Age distribution overrides: {min, max, mean, sd, infant_fraction, minor_fraction, missing_fraction} (years; ' +
        'defaults per layout: adults 18–90+ with a dataset-specific mix, VinDr-PCXR 0–10 with 35% infants).',
    },
    images_per_patient: { type: 'number', description: 'Mean images per patient (follow-ups/laterals); default per layout.' },
    test_fraction: { type: 'number', default: 0.17, description: 'Share of images in the official test split (VinDr).' },
    compression: {
      type: 'enum',
      values: ['none', 'jpeg2000'],
      default: 'none',
      description: 'DICOM only: store pixel data uncompressed or as lossless JPEG 2000 (encapsulated).',
    },
    monochrome1_fraction: {
      type: 'number',
      default: 0.3,
      description: 'DICOM only: share of images stored as MONOCHROME1 (inverted).',
    },
  },
  resources: { cpus: 1 },
};
