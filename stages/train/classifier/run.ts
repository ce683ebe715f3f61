/**
 * `train/classifier`: the thin layer between the stage context and the training loop (trainer.ts): reads the shard
 * set and splits, picks the tfjs backend, trains, and writes checkpoints, the metrics JSON and the learning curve.
 */
import { availableParallelism } from 'node:os';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '../../../engine/stage-api.js';
import { StageError } from '../../../engine/stage-api.js';
import { writeFileAtomic } from '../../lib/atomic-write.js';
import { useBackend, type BackendSetting } from '../../lib/tf/backend.js';
import { ReplicaError } from '../../lib/tf/data-parallel.js';
import { pixelStats } from '../../lib/tf/images.js';
import { learningCurveSpec } from '../../lib/tf/learning-curve.js';
import { saveModel, type ModelMetadata } from '../../lib/tf/model-io.js';
import { ARCHS, type Arch } from '../../lib/tf/models.js';
import { joinSplits, openStageShards, parseLabel, RowSetError, selectSplit, trainable } from '../../lib/tf/rowset.js';
import { train, TrainingAborted, type EpochMetrics, type TrainConfig } from './trainer.js';

export interface TrainWith {
  shards: string;
  splits?: string;
  model: string;
  metrics: string;
  curve?: string;
  epochs: number;
  batch_size: number;
  micro_batch: number;
  backend: BackendSetting;
  lr: number;
  weight_decay: number;
  mixup: boolean;
  mixup_alpha: number;
  imbalanced_sampler: boolean;
  grad_clip: number;
  arch: Arch;
  image_size: number;
  seed: number;
  label: string;
  id_column: string;
  train_split: string;
  val_split: string;
  filter_negative: boolean;
}

function checkRanges(stage: string, w: TrainWith): void {
  const bad = (field: string, why: string): never => {
    throw new StageError(`stage ${stage}: with.${field} ${why}.`);
  };
  if (!Number.isInteger(w.epochs) || w.epochs < 1) bad('epochs', `must be an integer ≥ 1, got ${w.epochs}`);
  if (!Number.isInteger(w.batch_size) || w.batch_size < 1) bad('batch_size', `must be an integer ≥ 1, got ${w.batch_size}`);
  if (!Number.isInteger(w.micro_batch) || w.micro_batch < 1) bad('micro_batch', `must be an integer ≥ 1, got ${w.micro_batch}`);
  if (!(w.lr > 0)) bad('lr', `must be > 0, got ${w.lr}`);
  if (!(w.weight_decay >= 0)) bad('weight_decay', `must be ≥ 0, got ${w.weight_decay}`);
  if (!(w.mixup_alpha > 0)) bad('mixup_alpha', `must be > 0, got ${w.mixup_alpha}`);
  if (!(w.grad_clip >= 0)) bad('grad_clip', `must be ≥ 0 (0 = no clipping), got ${w.grad_clip}`);
  if (!Number.isInteger(w.image_size) || w.image_size < 16) bad('image_size', `must be an integer ≥ 16, got ${w.image_size}`);
  if (!(ARCHS as readonly string[]).includes(w.arch)) bad('arch', `must be one of ${ARCHS.join(', ')}, got ${w.arch}`);
}

const writeJsonAtomic = (abs: string, value: unknown): Promise<void> => writeFileAtomic(abs, JSON.stringify(value, null, 2) + '\n');

export async function run(ctx: StageContext<TrainWith>): Promise<void> {
  const w = ctx.with;
  checkRanges(ctx.stage, w);
  const backend = await useBackend(ctx, w.backend);

  const set = await openStageShards(ctx, w.shards);
  try {
    let rows = set.rows;
    if (w.splits !== undefined) {
      try {
        rows = await joinSplits(rows, ctx.resolve(w.splits), w.splits, w.id_column);
      } catch (e) {
        if (e instanceof RowSetError) throw new StageError(`stage ${ctx.stage}: ${e.message}.`);
        throw e;
      }
    } else if (rows.length > 0 && !('split' in rows[0]!)) {
      throw new StageError(
        `stage ${ctx.stage}: the shard set ${w.shards} has no "split" column in rows.csv; give with.splits (the split stage's CSV).`,
      );
    }
    if (rows.length > 0 && !(w.label in rows[0]!)) {
      throw new StageError(`stage ${ctx.stage}: with.label "${w.label}" is not a column of ${w.shards}/rows.csv.`);
    }
    const pick = (split: string): number[] =>
      selectSplit(rows, [split]).filter((i) => trainable(rows[i]!, w.label, w.filter_negative));
    const trainRows = pick(w.train_split);
    const valRows = pick(w.val_split);
    const labels = new Map<number, number>();
    for (const i of [...trainRows, ...valRows]) labels.set(i, parseLabel(rows[i]![w.label]));
    for (const [name, list, field] of [['training', trainRows, 'train_split'], ['validation', valRows, 'val_split']] as const) {
      const pos = list.filter((i) => labels.get(i) === 1).length;
      if (list.length === 0) {
        throw new StageError(
          `stage ${ctx.stage}: no ${name} images: no row of ${w.splits ?? w.shards} has split "${w[field]}" with a 0/1 ` +
            `"${w.label}" label (with.${field}).`,
        );
      }
      ctx.log(`${name}: ${list.length} images (${pos} positive, ${list.length - pos} negative)`);
    }
    if (trainRows.every((i) => labels.get(i) === labels.get(trainRows[0]!))) {
      throw new StageError(`stage ${ctx.stage}: every training image has the same "${w.label}" label; nothing to learn.`);
    }
    const stats = await pixelStats((idx) => set.readBatch(idx), trainRows);
    ctx.log(`training-set normalisation: mean ${stats.mean.toFixed(4)}, std ${stats.std.toFixed(4)} (pixels/255)`);

    const cfg: TrainConfig = {
      arch: w.arch,
      imageSize: w.image_size,
      epochs: w.epochs,
      batchSize: w.batch_size,
      lr: w.lr,
      weightDecay: w.weight_decay,
      mixupAlpha: w.mixup ? w.mixup_alpha : 0,
      imbalancedSampler: w.imbalanced_sampler,
      gradClip: w.grad_clip,
      seed: w.seed,
      microBatch: w.micro_batch,
    };
    const modelDir = ctx.resolve(w.model);
    await rm(modelDir, { recursive: true, force: true });
    const meta = (m: EpochMetrics): ModelMetadata => ({
      arch: w.arch,
      imageSize: w.image_size,
      mean: stats.mean,
      std: stats.std,
      labelColumn: w.label,
      classes: [`no ${w.label}`, w.label],
      epoch: m.epoch,
      valLoss: m.val_loss,
      backend: backend.name,
    });
    let result;
    try {
      result = await train(
        cfg,
        { set, train: trainRows, val: valRows, labels, mean: stats.mean, std: stats.std },
        {
          progress: (done, total, message) => ctx.progress({ done, total, unit: 'batches', message }),
          log: (m) => ctx.log(m),
          signal: ctx.signal,
          checkpoint: (which, model, m) => saveModel(model, join(modelDir, which), meta(m)),
        },
        { backend: backend.name, workers: Math.max(1, Math.min(ctx.resources.cpus, availableParallelism())) },
      );
    } catch (e) {
      if (e instanceof TrainingAborted) throw new StageError(`stage ${ctx.stage}: training cancelled.`);
      if (e instanceof ReplicaError && /memory/i.test(e.message)) {
        throw new StageError(`stage ${ctx.stage}: a training worker ran out of memory (${e.message}); lower with.micro_batch or with.image_size.`);
      }
      throw e;
    }
    const last = result.epochs[result.epochs.length - 1]!;
    await writeJsonAtomic(ctx.resolve(w.metrics), {
      backend: backend.name,
      arch: w.arch,
      parameters: result.parameters,
      seed: w.seed,
      config: cfg,
      train_images: trainRows.length,
      val_images: valRows.length,
      normalisation: stats,
      best_epoch: result.best.epoch,
      best_val_loss: result.best.val_loss,
      best_val_auroc: result.best.val_auroc,
      final_val_loss: last.val_loss,
      final_val_auroc: last.val_auroc,
      epochs: result.epochs,
    });
    if (w.curve !== undefined) {
      await writeJsonAtomic(ctx.resolve(w.curve), learningCurveSpec(result.epochs, `${ctx.stage}: ${w.arch} on ${w.shards}`));
    }
    // Clock-dependent figures and the worker count are facts of this execution (the run record), never output
    // bytes nor provenance stages below see: a bit-identical retrain must leave everything downstream bit-identical.
    const { totalSeconds, trainPassSeconds, images, epochSeconds } = result.timing;
    ctx.record({ best_epoch: result.best.epoch, best_val_loss: result.best.val_loss });
    ctx.recordExecution({
      workers: result.workers,
      // Whole training (validation and checkpoints included); the rate counts the training passes alone.
      train_seconds: Number(totalSeconds.toFixed(3)),
      train_img_per_s: Number((images / Math.max(trainPassSeconds, 1e-9)).toFixed(2)),
      epoch_seconds: epochSeconds.map((t) => Number(t.toFixed(3))),
    });
  } finally {
    await set.close();
  }
}
