import type { StageManifest } from '../../../engine/stage-api.js';

export const manifest: StageManifest = {
  kind: 'evaluate/threshold',
  description:
    "Decision threshold of one model: Youden's J on the model's own calibration split (sklearn det_curve " +
    'candidates, ties → lowest threshold, rounded to 4 dp; METHODS B.3), and AUROC on each calibration set.',
  with: {
    model: { type: 'string', required: true, description: 'Training dataset of the model (e.g. vindr_cxr).' },
    calib: {
      type: 'path',
      role: 'dep',
      required: true,
      description:
        "The model's own calibration predictions: a predictions CSV (.csv or .csv.gz), or a dataset directory holding " +
        '`<split>.csv.gz` (vendored) or `<split>/best/predictions.csv` (authors\' layout).',
    },
    split: { type: 'string', default: 'test_adult_calib', description: 'Calibration split name.' },
    method: { type: 'enum', values: ['youden'], default: 'youden', description: 'Threshold rule (Youden J, as the authors).' },
    auroc_dir: {
      type: 'path',
      role: 'dep',
      description: 'Experiment directory with one sub-directory per dataset; AUROC is computed on `<auroc_dir>/<set>/<split>` for each of auroc_sets.',
    },
    auroc_sets: { type: 'string[]', default: [], description: 'Calibration sets (dataset names) to report AUROC on.' },
    out: { type: 'path', role: 'out', required: true, description: 'Threshold JSON (threshold, J, TPR/FPR at it, AUROC per set).' },
  },
  resources: { cpus: 1, memBytes: 512 * 1024 ** 2, gpus: 0 },
};
