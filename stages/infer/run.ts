/**
 * `infer`: load a train/classifier checkpoint (tfjs files, no tfjs-node), run it on the selected rows in eval mode
 * with the TRAINING set's normalisation stored in the model — batches spread over `resources.cpus` model replicas in
 * worker threads (lib/tf/data-parallel.ts), results independent of their number — and write predictions.csv
 * atomically.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { StageContext } from '../../engine/stage-api.js';
import { StageError } from '../../engine/stage-api.js';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { useBackend, type BackendSetting } from '../lib/tf/backend.js';
import { ReplicaPool } from '../lib/tf/data-parallel.js';
import { loadModel, MODEL_JSON, ModelLoadError } from '../lib/tf/model-io.js';
import { joinSplits, openStageShards, parseLabel, RowSetError, selectSplit } from '../lib/tf/rowset.js';
import { predictionsCsv, type RowPrediction } from './format.js';

export interface InferWith {
  model: string;
  checkpoint: 'best' | 'last';
  shards: string;
  splits?: string;
  split?: string;
  out: string;
  label: string;
  id_column: string;
  batch_size: number;
  backend: BackendSetting;
}

/** `model` may be the train stage's model directory (best/ + last/) or a checkpoint directory itself. */
export function checkpointDir(modelAbs: string, checkpoint: string): string {
  const nested = join(modelAbs, checkpoint);
  return existsSync(join(nested, MODEL_JSON)) ? nested : modelAbs;
}

export async function run(ctx: StageContext<InferWith>): Promise<void> {
  const w = ctx.with;
  if (!Number.isInteger(w.batch_size) || w.batch_size < 1) {
    throw new StageError(`stage ${ctx.stage}: with.batch_size must be an integer ≥ 1, got ${w.batch_size}.`);
  }
  const backend = await useBackend(ctx, w.backend);

  const dir = checkpointDir(ctx.resolve(w.model), w.checkpoint);
  let loaded;
  try {
    loaded = await loadModel(dir);
  } catch (e) {
    if (e instanceof ModelLoadError) throw new StageError(`stage ${ctx.stage}: ${e.message}.`);
    throw e;
  }
  const { model, metadata } = loaded;
  ctx.log(`model ${w.model} (${metadata.arch}, epoch ${metadata.epoch ?? '?'}, trained on ${metadata.backend ?? '?'})`);

  const set = await openStageShards(ctx, w.shards);
  let pool: ReplicaPool | undefined;
  try {
    let rows = set.rows;
    let columns = [...set.index.columns];
    if (w.splits !== undefined) {
      try {
        rows = await joinSplits(rows, ctx.resolve(w.splits), w.splits, w.id_column);
      } catch (e) {
        if (e instanceof RowSetError) throw new StageError(`stage ${ctx.stage}: ${e.message}.`);
        throw e;
      }
      if (!columns.includes('split')) columns.push('split');
    }
    if (w.split !== undefined && rows.length > 0 && !('split' in rows[0]!)) {
      throw new StageError(
        `stage ${ctx.stage}: with.split is "${w.split}" but ${w.shards}/rows.csv has no "split" column; give with.splits.`,
      );
    }
    const selected = selectSplit(rows, w.split === undefined ? [] : [w.split]);
    if (selected.length === 0) {
      throw new StageError(`stage ${ctx.stage}: no rows of ${w.splits ?? w.shards} have split "${w.split}".`);
    }
    // C.7: a dataset without the label column gets one filled with −1.
    if (!columns.includes(w.label)) columns.push(w.label);
    const outRows = selected.map((i) => ({ ...rows[i]!, [w.label]: rows[i]![w.label] ?? '-1' }));
    const labels = outRows.map((r) => parseLabel(r[w.label]));

    const batches = Math.ceil(selected.length / w.batch_size);
    pool = await ReplicaPool.start({ backend: backend.name, workers: Math.min(ctx.resources.cpus, availableParallelism(), batches), model });
    const t0 = performance.now();
    const { probs, logits } = await pool.predictRows(
      set,
      selected,
      { imageSize: metadata.imageSize, mean: metadata.mean, std: metadata.std },
      w.batch_size,
      (done) => ctx.progress({ done, total: selected.length, unit: 'images' }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const preds: RowPrediction[] = selected.map((_, k) => ({
      probs: [probs[2 * k]!, probs[2 * k + 1]!],
      logits: [logits[2 * k]!, logits[2 * k + 1]!],
      label: labels[k]!,
    }));
    await writeFileAtomic(ctx.resolve(w.out), predictionsCsv(columns, outRows, preds));
    const positives = preds.filter((p) => p.probs[1] > p.probs[0]).length;
    ctx.log(`${selected.length} predictions (${positives} predicted positive at argmax) → ${w.out}`);
    ctx.record({ rows: selected.length });
    ctx.recordExecution({
      workers: pool.size,
      infer_seconds: Number(seconds.toFixed(3)),
      infer_img_per_s: Number((selected.length / Math.max(seconds, 1e-9)).toFixed(2)),
    });
  } finally {
    await pool?.close();
    model.dispose();
    await set.close();
  }
}
