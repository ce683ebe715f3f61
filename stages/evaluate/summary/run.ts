import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { recordsCsv } from '../../lib/pandas-csv.js';
import { readJson, stringList } from '../lib/io.js';
import { writeFileAtomicSync } from '../../lib/atomic-write.js';
import type { FprJson, HmJson, ThresholdJson } from '../lib/results.js';
import {
  AUROC_COLUMNS, BY_AGE_COLUMNS, FPR_TABLE_COLUMNS, HM_COLUMNS, OVERALL_COLUMNS, THRESHOLD_COLUMNS, aurocRows, byAgeRows,
  fprJsonShape, fprTableRows, headline, hmRows, hmTable, overallRows, thresholdRows, type FprMethod,
} from '../lib/tidy.js';

export interface SummaryWith {
  fpr_dir: string;
  models: string[];
  eval_sets: string[];
  fpr_method: FprMethod;
  threshold_dir?: string;
  hm_dir?: string;
  hm_ratios: string[];
  hm_eval_set: string;
  out: string;
  by_age: string;
  overall: string;
  headline?: string;
  fpr_table?: string;
  hm_table?: string;
  thresholds?: string;
  auroc?: string;
  hm_impact?: string;
}

export async function run(ctx: StageContext<SummaryWith>): Promise<void> {
  const w = ctx.with;
  const models = stringList(ctx.stage, 'models', w.models);
  const evalSets = stringList(ctx.stage, 'eval_sets', w.eval_sets);
  const method: FprMethod = w.fpr_method ?? 'direct';
  if (method !== 'direct' && method !== 'authors_reestimate') {
    throw new StageError(`Stage ${ctx.stage}, field with.fpr_method: expected direct or authors_reestimate, got ${JSON.stringify(method)}.`);
  }
  const need = <T>(rel: string): T => {
    if (!existsSync(ctx.resolve(rel))) throw new StageError(`Stage ${ctx.stage}: missing ${rel} (is its producing stage in the pipeline?).`);
    return readJson<T>(ctx.resolve(rel), rel, ctx.stage);
  };
  const fprs: FprJson[] = [];
  for (const m of models) for (const e of evalSets) fprs.push(need<FprJson>(join(w.fpr_dir, m, `${e}.json`)));

  writeFileAtomicSync(ctx.resolve(w.out), JSON.stringify(fprJsonShape(fprs, models, evalSets, method), null, 4));
  writeFileAtomicSync(ctx.resolve(w.by_age), recordsCsv(byAgeRows(fprs, models, evalSets), BY_AGE_COLUMNS));
  writeFileAtomicSync(ctx.resolve(w.overall), recordsCsv(overallRows(fprs, method), OVERALL_COLUMNS));
  if (w.headline) writeFileAtomicSync(ctx.resolve(w.headline), JSON.stringify(headline(fprs, models, method), null, 2) + '\n');
  if (w.fpr_table) writeFileAtomicSync(ctx.resolve(w.fpr_table), recordsCsv(fprTableRows(fprs, method), FPR_TABLE_COLUMNS));

  if (w.thresholds || w.auroc) {
    if (!w.threshold_dir) throw new StageError(`Stage ${ctx.stage}: with.thresholds/with.auroc need with.threshold_dir.`);
    const ts = models.map((m) => need<ThresholdJson>(join(w.threshold_dir!, `${m}.json`)));
    if (w.thresholds) writeFileAtomicSync(ctx.resolve(w.thresholds), recordsCsv(thresholdRows(ts), THRESHOLD_COLUMNS));
    if (w.auroc) writeFileAtomicSync(ctx.resolve(w.auroc), recordsCsv(aurocRows(ts), AUROC_COLUMNS));
  }
  if (w.hm_impact || w.hm_table) {
    if (!w.hm_dir) throw new StageError(`Stage ${ctx.stage}: with.hm_impact/with.hm_table need with.hm_dir.`);
    const ratios = stringList(ctx.stage, 'hm_ratios', w.hm_ratios);
    const hmSet = w.hm_eval_set ?? 'vindr_pcxr';
    const base = fprs.filter((f) => f.eval_set === hmSet);
    const hms = models.flatMap((m) => ratios.map((r) => need<HmJson>(join(w.hm_dir!, m, `${r}.json`))));
    const rows = hmRows(base, hms, models);
    if (w.hm_impact) writeFileAtomicSync(ctx.resolve(w.hm_impact), recordsCsv(rows, HM_COLUMNS));
    if (w.hm_table) {
      const t = hmTable(rows);
      writeFileAtomicSync(ctx.resolve(w.hm_table), recordsCsv(t.rows, t.columns));
    }
  }
  const children = fprs.filter((f) => f.eval_set === 'vindr_pcxr');
  ctx.log(`headline (${method}) FPR on healthy children: ${children.map((f) => `${f.model} ${method === 'direct' ? f.fpr : f.fpr_reestimate}%`).join(', ')}`);
  ctx.record({ fpr_method: method, models: models.length, eval_sets: evalSets.length });
}
