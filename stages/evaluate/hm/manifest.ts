import type { StageManifest } from '../../../engine/stage-api.js';
import { bootstrapFields } from '../lib/bootstrap-fields.js';

export const manifest: StageManifest = {
  kind: 'evaluate/hm',
  description:
    'One cell of the histogram-matching experiment as the authors ran it (METHODS B.9, B.8 impact_of_hm): the threshold ' +
    're-derived from the HM-processed calibration predictions, then the FPR on VinDr-PCXR children per age bin with BCa ' +
    'intervals, and the impact value (FPR over ages 0–1, re-estimated from the counts table).',
  with: {
    model: { type: 'string', required: true, description: 'Training dataset of the model.' },
    ratio: { type: 'string', required: true, description: 'Blend ratio as in the directory name (0.25, 0.5, 0.75, 1.0).' },
    calib: { type: 'path', role: 'dep', required: true, description: "HM-processed predictions on the model's own calibration split (file or dataset directory)." },
    predictions: { type: 'path', role: 'dep', required: true, description: 'HM-processed predictions on VinDr-PCXR (file or dataset directory).' },
    eval_set: { type: 'string', default: 'vindr_pcxr', description: 'Evaluated dataset.' },
    impact_bins: { type: 'string[]', default: ['0', '1'], description: 'Age bins pooled into the impact value (the authors: 0 and 1).' },
    ...bootstrapFields,
    counts: { type: 'path', role: 'out', required: true, description: 'Counts table in the authors\' format.' },
    out: { type: 'path', role: 'out', required: true, description: 'JSON: threshold, FPR, bins, impact value.' },
  },
  resources: { cpus: 1, memBytes: 512 * 1024 ** 2, gpus: 0 },
};
