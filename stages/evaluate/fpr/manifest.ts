import type { StageManifest } from '../../../engine/stage-api.js';
import { bootstrapFields } from '../lib/bootstrap-fields.js';

export const manifest: StageManifest = {
  kind: 'evaluate/fpr',
  description:
    'False-positive rate of one thresholded model on one healthy evaluation set, overall and per age bin, each with a ' +
    "95% BCa bootstrap interval (METHODS B.2–B.7); writes the authors' cardiomegaly_calib_counts.csv table and a JSON.",
  with: {
    model: { type: 'string', required: true, description: 'Training dataset of the model (e.g. padchest).' },
    eval_set: { type: 'string', required: true, description: 'Evaluated dataset (vindr_pcxr for children, or an adult dataset).' },
    predictions: {
      type: 'path',
      role: 'dep',
      required: true,
      description: "The model's predictions on eval_set: a CSV (.csv/.csv.gz) or a dataset directory in the vendored or authors' layout.",
    },
    split: {
      type: 'string',
      default: 'auto',
      description: 'Split to evaluate; auto = `test` for vindr_pcxr, `test_healthy_adult` otherwise.',
    },
    threshold: { type: 'path', role: 'dep', description: 'Threshold JSON from evaluate/threshold (or give threshold_value).' },
    threshold_value: { type: 'number', description: 'A fixed threshold instead of a threshold JSON.' },
    ...bootstrapFields,
    counts: { type: 'path', role: 'out', required: true, description: 'Per-bin counts table, the authors\' cardiomegaly_calib_counts.csv format.' },
    out: { type: 'path', role: 'out', required: true, description: 'JSON: overall FPR (true and re-estimated), its interval, and the bins.' },
  },
  resources: { cpus: 1, memBytes: 512 * 1024 ** 2, gpus: 0 },
};
