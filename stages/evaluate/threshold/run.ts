import { join } from 'node:path';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { stringField, stringList } from '../lib/io.js';
import { writeFileAtomicSync } from '../../lib/atomic-write.js';
import { loadEvalRows } from '../lib/load.js';
import type { AurocEntry, ThresholdJson } from '../lib/results.js';
import { npRound } from '../../lib/pynum.js';
import { auroc, youdenThreshold } from '../lib/threshold.js';

export interface ThresholdWith {
  model: string;
  calib: string;
  split: string;
  method: 'youden';
  auroc_dir?: string;
  auroc_sets: string[];
  out: string;
}

export async function run(ctx: StageContext<ThresholdWith>): Promise<void> {
  const w = ctx.with;
  const model = stringField(ctx.stage, 'model', w.model);
  const split = stringField(ctx.stage, 'split', w.split ?? 'test_adult_calib');
  const sets = stringList(ctx.stage, 'auroc_sets', w.auroc_sets);
  if (sets.length > 0 && !w.auroc_dir) throw new StageError(`Stage ${ctx.stage}: with.auroc_sets is given but with.auroc_dir is not.`);

  const own = loadEvalRows(ctx.workspace, ctx.resolve(w.calib), w.calib, model, split);
  let t;
  try {
    t = youdenThreshold(own.rows.score, own.rows.label);
  } catch (err) {
    throw new StageError(`Stage ${ctx.stage}: cannot fit a threshold on ${own.file}: ${(err as Error).message}.`);
  }
  const positives = own.rows.label.reduce((a, b) => a + b, 0);
  const entry = (set: string, rows: typeof own.rows, file: string): AurocEntry => ({
    set,
    file,
    n: rows.n,
    positives: rows.label.reduce((a, b) => a + b, 0),
    auroc: npRound(auroc(rows.score, rows.label), 4),
  });
  const aurocs: AurocEntry[] = [entry(model, own.rows, own.file)];
  sets.forEach((set, i) => {
    ctx.progress({ done: i, total: sets.length, unit: 'sets', message: `AUROC on ${set}` });
    if (set === model) return;
    const rel = join(w.auroc_dir!, set);
    const loaded = loadEvalRows(ctx.workspace, ctx.resolve(rel), rel, set, split);
    aurocs.push(entry(set, loaded.rows, loaded.file));
  });
  const result: ThresholdJson = {
    kind: 'evaluate/threshold',
    model,
    method: 'youden',
    threshold: t.threshold,
    threshold_raw: t.raw,
    youden_j: t.youdenJ,
    tpr: t.tpr,
    fpr: t.fpr,
    calib: { file: own.file, n: own.rows.n, positives, negatives: own.rows.n - positives },
    auroc: aurocs,
  };
  writeFileAtomicSync(ctx.resolve(w.out), JSON.stringify(result, null, 2) + '\n');
  ctx.log(`${model}: threshold ${t.threshold} (J ${t.youdenJ.toFixed(4)}) on ${own.rows.n} calibration rows; AUROC ${aurocs[0]!.auroc}`);
  ctx.record({ threshold: t.threshold, calib_rows: own.rows.n });
}
