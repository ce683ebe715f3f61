import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { bootstrapOptions } from '../lib/bootstrap-options.js';
import { formatCountsCsv } from '../lib/counts-csv.js';
import { evaluateFpr } from '../lib/fpr.js';
import { stringField } from '../lib/io.js';
import { writeFileAtomicSync } from '../../lib/atomic-write.js';
import { loadEvalRows } from '../lib/load.js';
import { defaultSplit } from '../lib/names.js';
import { fprToJson } from '../lib/results.js';
import { thresholdFrom } from '../lib/threshold-input.js';

export interface FprWith {
  model: string;
  eval_set: string;
  predictions: string;
  split: string;
  threshold?: string;
  threshold_value?: number;
  resamples: number;
  seed: number;
  confidence: number;
  counts: string;
  out: string;
}

export async function run(ctx: StageContext<FprWith>): Promise<void> {
  const w = ctx.with;
  const model = stringField(ctx.stage, 'model', w.model);
  const evalSet = stringField(ctx.stage, 'eval_set', w.eval_set);
  const split = !w.split || w.split === 'auto' ? defaultSplit(evalSet) : w.split;
  const boot = bootstrapOptions(ctx.stage, w);
  const threshold = thresholdFrom(ctx.stage, ctx.resolve, w);

  const { rows, file } = loadEvalRows(ctx.workspace, ctx.resolve(w.predictions), w.predictions, evalSet, split);
  if (rows.n === 0) throw new StageError(`Stage ${ctx.stage}: no rows of ${file} survive the filters for ${evalSet}/${split} (METHODS B.2).`);
  const result = evaluateFpr(rows, threshold, boot, (label, done, total) => {
    ctx.progress({ done, total, unit: 'bins', message: `bootstrap bin ${label}` });
  });
  writeFileAtomicSync(ctx.resolve(w.counts), formatCountsCsv(result.bins));
  const json = fprToJson(result, { model, evalSet, file, ...boot });
  writeFileAtomicSync(ctx.resolve(w.out), JSON.stringify(json, null, 2) + '\n');
  ctx.log(`${model} on ${evalSet}/${rows.split}: FPR ${result.fpr}% [${result.ci.lower}, ${result.ci.upper}] (authors' re-estimate ${result.fprReestimate}%), n = ${rows.n}, ${result.bins.length} bins`);
  ctx.record({ n: rows.n, fpr: result.fpr });
}
