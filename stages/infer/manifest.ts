import type { StageManifest } from '../../engine/stage-api.js';
import { BACKEND_FIELD } from '../lib/tf/backend-field.js';

/**
 * `uses: infer` — apply a model trained by train/classifier to a shard set (or one split of it) and write the
 * authors' predictions.csv (METHODS B.1/C.7), which the evaluate/* stages read as-is. Batches run on `resources.cpus`
 * worker threads; the keyed `backend` field picks tfjs's backend (auto: the best usable one, recorded).
 */
export const manifest: StageManifest = {
  kind: 'infer',
  description:
    "Run a trained tfjs classifier on a shard set's rows (optionally one split) and write predictions.csv in the " +
    "authors' format: metadata columns, then pred, prob, out, [loss,] class_probs.",
  with: {
    model: {
      type: 'path',
      role: 'dep',
      required: true,
      description: 'Model directory from train/classifier (containing best/ and last/), or one checkpoint directory.',
    },
    checkpoint: {
      type: 'enum',
      values: ['best', 'last'],
      default: 'best',
      description: 'Which checkpoint to use when `model` holds both (the authors infer with "best").',
    },
    shards: { type: 'path', role: 'dep', required: true, description: 'Shard set directory (preprocess/images output).' },
    splits: {
      type: 'path',
      role: 'dep',
      description: "CSV with `id_column` and `split` columns (the split stage); default: the shards' own `split` column.",
    },
    split: {
      type: 'string',
      description: 'Only rows of this split (e.g. test_adult_calib); default: every row of the shard set.',
    },
    out: {
      type: 'path',
      role: 'out',
      required: true,
      description: 'predictions.csv to write, e.g. <root>/<exp>/<dset>/<split>/best/predictions.csv (the authors\' layout).',
    },
    label: {
      type: 'string',
      default: 'Cardiomegaly',
      description: 'Label column; added with −1 when the rows lack it (VinDr-PCXR), which also drops the loss column.',
    },
    id_column: { type: 'string', default: 'image_id', description: 'Column joining rows.csv to the splits CSV.' },
    batch_size: {
      type: 'integer',
      default: 64,
      description: 'Images per forward pass; batches are spread over resources.cpus worker threads (results depend on neither).',
    },
    backend: BACKEND_FIELD,
  },
  resources: { cpus: 2, memBytes: 2 * 1024 ** 3, gpus: 0 },
};
