import type { StageManifest } from '../../../engine/stage-api.js';
import { BACKEND_FIELD } from '../../lib/tf/backend-field.js';

/**
 * `uses: train/classifier` — train a cardiomegaly classifier with tfjs on a packed shard set (preprocess/images)
 * following the authors' recipe (METHODS C.6) at CPU-friendly scale, data-parallel over `resources.cpus` worker
 * threads. The backend is the keyed `backend` field (auto: the best usable one); the one used, the worker count and
 * the timings go to the run record, never into the outputs.
 */
export const manifest: StageManifest = {
  kind: 'train/classifier',
  description:
    'Train a small CNN (tfjs) on a shard set: cross-entropy, AdamW (decoupled decay), MixUp, imbalanced sampler, ' +
    'gradient clipping; best-by-val-loss and last checkpoints in tfjs format; per-epoch metrics and a learning curve.',
  with: {
    shards: { type: 'path', role: 'dep', required: true, description: 'Shard set directory (preprocess/images output).' },
    splits: {
      type: 'path',
      role: 'dep',
      description: 'CSV with `id_column` and `split` columns (the split stage); default: the shards\' own `split` column.',
    },
    model: {
      type: 'path',
      role: 'out',
      required: true,
      description: 'Model directory to write: best/ and last/, each model.json + weights.bin (tfjs layers format).',
    },
    metrics: { type: 'path', role: 'out', required: true, description: 'Per-epoch metrics JSON to write.' },
    curve: {
      type: 'path',
      role: 'out',
      description: 'Learning-curve Vega-Lite spec to write (.vl.json, data inline; render it with `uses: plot`).',
    },
    epochs: { type: 'integer', default: 5, description: 'Training epochs (the authors: 50 on real data).' },
    batch_size: { type: 'integer', default: 32, description: 'Batch size (the authors: 32).' },
    micro_batch: {
      type: 'integer',
      default: 16,
      description:
        'Images per micro-batch: each batch is cut into micro-batches whose gradients are computed in parallel (one ' +
        'worker thread per micro-batch, up to resources.cpus) and added in a fixed order, so results depend on this, ' +
        'never on the number of workers; batch-norm statistics are per micro-batch. 16 keeps 2 cores busy at batch 32 ' +
        'at full speed per core; 8 uses 4 cores at ~10% less per core; batch_size means one piece per batch.',
    },
    backend: BACKEND_FIELD,
    lr: { type: 'number', default: 0.001, description: 'AdamW learning rate (the authors: 1e-4 for ConvNeXt-Base).' },
    weight_decay: { type: 'number', default: 0.0005, description: 'Decoupled weight decay (the authors: 5e-4).' },
    mixup: { type: 'boolean', default: true, description: 'MixUp on every training batch (soft targets).' },
    mixup_alpha: { type: 'number', default: 1, description: 'MixUp Beta(α, α) parameter (torchvision default 1).' },
    imbalanced_sampler: {
      type: 'boolean',
      default: true,
      description: 'Draw each epoch N images with replacement, weighted 1/count(label).',
    },
    grad_clip: { type: 'number', default: 1, description: 'Clip gradients to this global L2 norm; 0 = off.' },
    arch: {
      type: 'enum',
      values: ['small_cnn', 'tiny_cnn', 'small_cnn_bn', 'wide_cnn'],
      default: 'small_cnn',
      description: 'Network: small_cnn (4 conv blocks, default), tiny_cnn, small_cnn_bn (with batch norm), wide_cnn.',
    },
    image_size: { type: 'integer', default: 128, description: 'Network input size (shards are resized if different).' },
    seed: { type: 'integer', default: 42, description: 'Seed for weights, sampler and MixUp.' },
    label: { type: 'string', default: 'Cardiomegaly', description: 'Label column (1 positive, 0 negative).' },
    id_column: { type: 'string', default: 'image_id', description: 'Column joining rows.csv to the splits CSV.' },
    train_split: { type: 'string', default: 'train', description: 'Split value of the training rows.' },
    val_split: { type: 'string', default: 'val', description: 'Split value of the validation rows.' },
    filter_negative: {
      type: 'boolean',
      default: true,
      description: 'METHODS C.4: drop rows with another finding but no cardiomegaly from training and validation.',
    },
  },
  resources: { cpus: 2, memBytes: 4 * 1024 ** 3, gpus: 0 },
};
