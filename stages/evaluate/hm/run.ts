import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { bootstrapOptions } from '../lib/bootstrap-options.js';
import { formatCountsCsv } from '../lib/counts-csv.js';
import { evaluateFpr, reestimate } from '../lib/fpr.js';
import { stringField, stringList } from '../lib/io.js';
import { writeFileAtomicSync } from '../../lib/atomic-write.js';
import { loadEvalRows } from '../lib/load.js';
import { defaultSplit } from '../lib/names.js';
import { fprToJson, type HmJson } from '../lib/results.js';
import { npRound } from '../../lib/pynum.js';
import { auroc, youdenThreshold } from '../lib/threshold.js';

export interface HmWith {
  model: string;
  ratio: string;
  calib: string;
  predictions: string;
  eval_set: string;
  impact_bins: string[];
  resamples: number;
  seed: number;
  confidence: number;
  counts: string;
  out: string;
}

export async function run(ctx: StageContext<HmWith>): Promise<void> {
  const w = ctx.with;
  const model = stringField(ctx.stage, 'model', w.model);
  const ratio = stringField(ctx.stage, 'ratio', w.ratio);
  const evalSet = stringField(ctx.stage, 'eval_set', w.eval_set ?? 'vindr_pcxr');
  const impactBins = new Set(stringList(ctx.stage, 'impact_bins', w.impact_bins ?? ['0', '1']));
  const boot = bootstrapOptions(ctx.stage, w);

  const cal = loadEvalRows(ctx.workspace, ctx.resolve(w.calib), w.calib, model, 'test_adult_calib');
  let threshold: number;
  try {
    threshold = youdenThreshold(cal.rows.score, cal.rows.label).threshold;
  } catch (err) {
    throw new StageError(`Stage ${ctx.stage}: cannot fit a threshold on ${cal.file}: ${(err as Error).message}.`);
  }
  const { rows, file } = loadEvalRows(ctx.workspace, ctx.resolve(w.predictions), w.predictions, evalSet, defaultSplit(evalSet));
  if (rows.n === 0) throw new StageError(`Stage ${ctx.stage}: no rows of ${file} survive the filters (METHODS B.2).`);
  const result = evaluateFpr(rows, threshold, boot, (label, done, total) =>
    ctx.progress({ done, total, unit: 'bins', message: `bootstrap bin ${label}` }));
  const impact = reestimate(result.bins.filter((b) => impactBins.has(b.ageBin)), { scale: 1, decimals: 4 });
  const json: HmJson = {
    ...fprToJson(result, { model, evalSet, file, ...boot }),
    kind: 'evaluate/hm',
    ratio,
    fpr_age_0_1: impact,
    auroc_calib: npRound(auroc(cal.rows.score, cal.rows.label), 4),
  };
  writeFileAtomicSync(ctx.resolve(w.counts), formatCountsCsv(result.bins));
  writeFileAtomicSync(ctx.resolve(w.out), JSON.stringify(json, null, 2) + '\n');
  ctx.log(`${model} HM ${ratio}: threshold ${threshold}, FPR ${result.fpr}%, ages 0–1: ${impact}`);
  ctx.record({ threshold, fpr: result.fpr, fpr_age_0_1: impact });
}
