/**
 * The evaluation fragment (pipelines/paper/evaluate.yaml) run in-process, stage by stage, with the same `with:`
 * values the fragment interpolates — for the bench and the end-to-end test, independent of the engine.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fakeContext } from '../support/context.js';
import { run as runThreshold } from '../../stages/evaluate/threshold/run.js';
import { run as runFpr } from '../../stages/evaluate/fpr/run.js';
import { run as runHm } from '../../stages/evaluate/hm/run.js';
import { run as runSummary } from '../../stages/evaluate/summary/run.js';

export const REPO = new URL('../..', import.meta.url).pathname;
export const MODELS = ['vindr_cxr', 'nih_cxr18', 'padchest', 'chexbert'];
export const EVAL_SETS = ['vindr_pcxr', 'vindr_cxr', 'padchest', 'nih_cxr18', 'chexbert'];
export const HM_RATIOS = ['0.25', '0.5', '0.75', '1.0'];

export interface FullRunOptions {
  resamples: number;
  models?: string[];
  evalSets?: string[];
  hmRatios?: string[];
  /** Headline definition of the summary (the paper pipeline: direct). */
  fprMethod?: 'direct' | 'authors_reestimate';
  /** Called after each stage with its name and milliseconds. */
  onStage?: (stage: string, ms: number) => void;
}

/** A workspace whose `data` points at the repo's vendored data. */
export function makeWorkspace(dir: string): string {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'data'))) symlinkSync(join(REPO, 'data'), join(dir, 'data'));
  return dir;
}

/**
 * A workspace laid out like the repo for the engine: `data` linked, the evaluate fragment and its figure specs
 * copied, and a main file `pipelines/paper.yaml` including the fragment (the CLI test and bench/eval run it).
 */
export function fragmentWorkspace(dir: string): string {
  makeWorkspace(dir);
  mkdirSync(join(dir, 'pipelines/paper'), { recursive: true });
  mkdirSync(join(dir, 'pipelines/figures'), { recursive: true });
  copyFileSync(join(REPO, 'pipelines/paper/evaluate.yaml'), join(dir, 'pipelines/paper/evaluate.yaml'));
  for (const f of readdirSync(join(REPO, 'pipelines/figures')).filter((f) => f.startsWith('eval-'))) {
    copyFileSync(join(REPO, 'pipelines/figures', f), join(dir, 'pipelines/figures', f));
  }
  writeFileSync(join(dir, 'pipelines/paper.yaml'), 'name: paper\nworkdir: ..\ninclude: [paper/evaluate.yaml]\n');
  return dir;
}

export async function fullRun(ws: string, o: FullRunOptions): Promise<void> {
  const models = o.models ?? MODELS;
  const evalSets = o.evalSets ?? EVAL_SETS;
  const ratios = o.hmRatios ?? HM_RATIOS;
  const root = 'data/seed/predictions';
  const out = 'out/eval';
  const exp = (m: string) => `exp_cardiomegaly-${m}-mixup-imb_sampler`;
  const boot = { resamples: o.resamples, seed: 42, confidence: 0.95 };
  const step = async (stage: string, f: () => Promise<void>) => {
    const t = performance.now();
    await f();
    o.onStage?.(stage, performance.now() - t);
  };
  for (const m of models) {
    await step(`eval-threshold@${m}`, () => runThreshold(fakeContext(ws, {
      model: m, method: 'youden', split: 'test_adult_calib', calib: `${root}/${exp(m)}/${m}/`, auroc_dir: `${root}/${exp(m)}/`,
      auroc_sets: MODELS, out: `${out}/threshold/${m}.json`,
    }, { stage: `eval-threshold@${m}` })));
  }
  for (const m of models) {
    for (const e of evalSets) {
      const stage = `eval-fpr@model=${m},eval=${e}`;
      await step(stage, () => runFpr(fakeContext(ws, {
        model: m, eval_set: e, split: 'auto', predictions: `${root}/${exp(m)}/${e}/`, threshold: `${out}/threshold/${m}.json`,
        ...boot, counts: `${out}/counts/${m}/${e}/cardiomegaly_calib_counts.csv`, out: `${out}/fpr/${m}/${e}.json`,
      }, { stage: stage })));
    }
  }
  for (const m of models) {
    for (const r of ratios) {
      const stage = `eval-hm@model=${m},ratio=${r}`;
      await step(stage, () => runHm(fakeContext(ws, {
        model: m, ratio: r, calib: `${root}/hm-${r}/${exp(m)}/${m}/`, predictions: `${root}/hm-${r}/${exp(m)}/vindr_pcxr/`,
        eval_set: 'vindr_pcxr', impact_bins: ['0', '1'], ...boot,
        counts: `${out}/hm/counts/${m}/${r}/cardiomegaly_calib_counts.csv`, out: `${out}/hm/${m}/${r}.json`,
      }, { stage: stage })));
    }
  }
  await step('eval-summary', () => runSummary(fakeContext(ws, {
    fpr_dir: `${out}/fpr/`, threshold_dir: `${out}/threshold/`, hm_dir: `${out}/hm/`, models, eval_sets: evalSets,
    hm_ratios: ratios, hm_eval_set: 'vindr_pcxr', fpr_method: o.fprMethod ?? 'direct',
    out: `${out}/fpr.json`, by_age: `${out}/fpr_by_age.csv`, overall: `${out}/fpr_overall.csv`,
    headline: `${out}/headline.json`, fpr_table: `${out}/fpr_table.csv`, hm_table: `${out}/hm_table.csv`,
    thresholds: `${out}/thresholds.csv`, auroc: `${out}/auroc.csv`, hm_impact: `${out}/hm_impact.csv`,
  }, { stage: 'eval-summary' })));
}
