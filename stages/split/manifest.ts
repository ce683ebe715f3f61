import type { StageManifest } from '../../engine/stage-api.js';

export const manifest: StageManifest = {
  kind: 'split',
  description:
    'The authors\' split recipe (METHODS C.2–C.4) with their exact membership (numpy MT19937 RandomState draws as ' +
    'pandas `sample` makes them, sklearn StratifiedShuffleSplit for train/val): one image per patient, healthy adults ' +
    'per age bin → test_healthy_adult, 10% of positives and of no-finding rows → test_adult_calib, minors of ' +
    'NIH/PadChest → test_peds, the rest → train/val; pediatric sets → test. Rules apply per dataset (each row\'s dset).',
  with: {
    metadata: {
      type: 'path',
      role: 'dep',
      required: true,
      description: 'Metadata CSV (e.g. a shard set\'s rows.csv), or a shard set directory (its rows.csv is read).',
    },
    out: {
      type: 'path',
      role: 'out',
      required: true,
      description: 'CSV written: the kept input rows in input order, plus `row` (index in the input) and `split`.',
    },
    sizes: { type: 'path', role: 'out', description: 'JSON with split sizes, positives per split and per-bin draws, per dataset.' },
    dataset: {
      type: 'string',
      description:
        'Dataset rules for a file without a dset column (vindr_cxr, vindr_pcxr, nih_cxr18, padchest, chexbert). With a ' +
        'dset column, every row must be this dataset; leave it out to split each dataset of a mixed file by its own rules.',
    },
    healthy_prop: { type: 'number', description: 'Share per age bin drawn as healthy test (default 0.2 VinDr-CXR, else 0.1).' },
    age_bins: { type: 'number[]', default: [18, 25, 40, 60, 80, 100], description: 'Age bin edges (left-closed).' },
    calib_frac: { type: 'number', default: 0.1, description: 'Share of positives and of no-finding rows for calibration.' },
    val_frac: { type: 'number', default: 0.25, description: 'Validation share of the training rows (stratified; 0 = none).' },
    one_per_patient: { type: 'boolean', default: true, description: 'Keep one image per patient (C.2) where the dataset has the rule.' },
    seed: { type: 'integer', default: 42, description: 'Seed of every draw (numpy RandomState, 0 … 2^32 − 1).' },
    max_metadata_mb: { type: 'number', default: 1024, description: 'Largest metadata file read (MB); it is held in memory.' },
  },
};
