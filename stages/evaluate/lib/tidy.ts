/**
 * Tidy (long-format) tables for the figures and the report, built from the fpr/hm/threshold JSONs. One row per
 * observation; proportions (0–1) for plotting next to the percentages the authors' tables hold.
 */
import { reestimate } from './fpr.js';
import { npRound } from '../../lib/pynum.js';
import { displayName } from './names.js';
import type { FprJson, HmJson, ThresholdJson } from './results.js';

/** Percent → proportion without float noise in the CSV (inputs have ≤ 4 decimals). */
const prop = (pct: number): number => npRound(pct / 100, 6);

export type FprMethod = 'direct' | 'authors_reestimate';


const population = (f: FprJson): 'children' | 'adults' =>
  f.eval_set === 'vindr_pcxr' || f.split.includes('peds') ? 'children' : 'adults';
const source = (f: FprJson): 'children' | 'same' | 'different' =>
  population(f) === 'children' ? 'children' : f.model === f.eval_set ? 'same' : 'different';

/** The rate a headline reports under the chosen definition (%). */
export const headlineRate = (f: FprJson, method: FprMethod): number => (method === 'direct' ? f.fpr : f.fpr_reestimate);

export const BY_AGE_COLUMNS = [
  'model', 'model_name', 'model_rank', 'eval_set', 'eval_name', 'eval_rank', 'split', 'population', 'source',
  'age_bin', 'age_order', 'n', 'count', 'percentage', 'fpr', 'fpr_lower', 'fpr_upper',
];

export function byAgeRows(fprs: FprJson[], models: string[], evalSets: string[]): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const f of fprs) {
    const bins = [...f.bins].sort((a, b) => a.order - b.order);
    for (const b of bins) {
      rows.push({
        model: f.model, model_name: displayName(f.model), model_rank: models.indexOf(f.model),
        eval_set: f.eval_set, eval_name: displayName(f.eval_set), eval_rank: evalSets.indexOf(f.eval_set),
        split: f.split, population: population(f), source: source(f),
        age_bin: b.age_bin, age_order: Number.isFinite(b.order) ? b.order : '',
        n: b.n, count: b.count, percentage: b.percentage,
        fpr: prop(b.percentage), fpr_lower: prop(b.lower), fpr_upper: prop(b.upper),
      });
    }
  }
  return rows;
}

export const OVERALL_COLUMNS = [
  'model', 'model_name', 'eval_set', 'eval_name', 'split', 'population', 'source', 'n', 'positives', 'threshold',
  'fpr_direct_pct', 'fpr_reestimate_pct', 'fpr_pct', 'fpr_lower_pct', 'fpr_upper_pct', 'fpr', 'fpr_lower', 'fpr_upper', 'method',
];

export function overallRows(fprs: FprJson[], method: FprMethod): Array<Record<string, unknown>> {
  return fprs.map((f) => {
    const rate = headlineRate(f, method);
    return {
      model: f.model, model_name: displayName(f.model), eval_set: f.eval_set, eval_name: displayName(f.eval_set),
      split: f.split, population: population(f), source: source(f), n: f.n, positives: f.positives, threshold: f.threshold,
      fpr_direct_pct: f.fpr, fpr_reestimate_pct: f.fpr_reestimate, fpr_pct: rate,
      fpr_lower_pct: f.fpr_lower, fpr_upper_pct: f.fpr_upper,
      fpr: prop(rate), fpr_lower: prop(f.fpr_lower), fpr_upper: prop(f.fpr_upper), method,
    };
  });
}

/** fpr.json as the authors wrote it per experiment, here keyed by model: {model: {eval_set: {split: x}}}. */
export function fprJsonShape(fprs: FprJson[], models: string[], evalSets: string[], method: FprMethod): Record<string, Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, Record<string, number>>> = {};
  for (const m of models) {
    out[m] = {};
    for (const e of evalSets) {
      const f = fprs.find((x) => x.model === m && x.eval_set === e);
      if (f) out[m]![e] = { [f.split]: headlineRate(f, method) };
    }
  }
  return out;
}

export const HM_COLUMNS = ['model', 'model_name', 'model_rank', 'ratio', 'threshold', 'fpr', 'fpr_all_ages_pct'];

/** impact_of_hm: per model and blend ratio (0 = no HM, from the plain run), FPR over child bins 0–1. */
export function hmRows(base: FprJson[], hms: HmJson[], models: string[], impactBins = ['0', '1']): Array<Record<string, unknown>> {
  const keep = new Set(impactBins);
  const rows: Array<Record<string, unknown>> = [];
  for (const m of models) {
    const b = base.find((f) => f.model === m);
    if (b) {
      rows.push({
        model: m, model_name: displayName(m), model_rank: models.indexOf(m), ratio: 0, threshold: b.threshold,
        fpr: reestimate(b.bins.filter((x) => keep.has(x.age_bin)), { scale: 1, decimals: 4 }), fpr_all_ages_pct: b.fpr,
      });
    }
    for (const h of hms.filter((x) => x.model === m).sort((x, y) => Number(x.ratio) - Number(y.ratio))) {
      rows.push({
        model: m, model_name: displayName(m), model_rank: models.indexOf(m), ratio: Number(h.ratio), threshold: h.threshold,
        fpr: h.fpr_age_0_1, fpr_all_ages_pct: h.fpr,
      });
    }
  }
  return rows;
}

export const THRESHOLD_COLUMNS = ['model', 'model_name', 'threshold', 'youden_j', 'tpr', 'fpr', 'calib_n', 'calib_positives', 'calib_negatives'];
export const AUROC_COLUMNS = ['model', 'model_name', 'calib_set', 'calib_name', 'n', 'positives', 'auroc'];

export function thresholdRows(ts: ThresholdJson[]): Array<Record<string, unknown>> {
  return ts.map((t) => ({
    model: t.model, model_name: displayName(t.model), threshold: t.threshold, youden_j: t.youden_j, tpr: t.tpr, fpr: t.fpr,
    calib_n: t.calib.n, calib_positives: t.calib.positives, calib_negatives: t.calib.negatives,
  }));
}

export function aurocRows(ts: ThresholdJson[]): Array<Record<string, unknown>> {
  return ts.flatMap((t) => t.auroc.map((a) => ({
    model: t.model, model_name: displayName(t.model), calib_set: a.set, calib_name: displayName(a.set), n: a.n, positives: a.positives, auroc: a.auroc,
  })));
}

export interface RateEntry {
  /** Headline rate (proportion) under the chosen definition, with its BCa bounds (proportions). */
  value: number;
  lo: number;
  hi: number;
  direct_pct: number;
  reestimate_pct: number;
  n: number;
  positives: number;
}

export interface Headline {
  fpr_method: FprMethod;
  definition: string;
  models: Record<string, {
    name: string;
    threshold: number;
    fpr_children?: RateEntry;
    fpr_adults_same_source?: RateEntry;
    fpr_adults: Record<string, RateEntry>;
  }>;
}

const DEFINITIONS: Record<FprMethod, string> = {
  direct: 'FPR = predicted positives / healthy rows (computed directly from the predictions)',
  authors_reestimate:
    "FPR as in the authors' fpr.json: re-estimated from the rounded per-bin counts table, bins with no positives dropped (METHODS B.7)",
};

function rateEntry(f: FprJson, method: FprMethod): RateEntry {
  return {
    value: prop(headlineRate(f, method)), lo: prop(f.fpr_lower), hi: prop(f.fpr_upper),
    direct_pct: f.fpr, reestimate_pct: f.fpr_reestimate, n: f.n, positives: f.positives,
  };
}

/** headline.json: per model its threshold and FPRs (children, own adults, every adult set) for the report. */
export function headline(fprs: FprJson[], models: string[], method: FprMethod): Headline {
  const out: Headline = { fpr_method: method, definition: DEFINITIONS[method], models: {} };
  for (const m of models) {
    const mine = fprs.filter((f) => f.model === m);
    const children = mine.find((f) => population(f) === 'children');
    const own = mine.find((f) => source(f) === 'same');
    out.models[m] = {
      name: displayName(m),
      threshold: mine[0]?.threshold ?? NaN,
      ...(children ? { fpr_children: rateEntry(children, method) } : {}),
      ...(own ? { fpr_adults_same_source: rateEntry(own, method) } : {}),
      fpr_adults: Object.fromEntries(mine.filter((f) => population(f) === 'adults').map((f) => [f.eval_set, rateEntry(f, method)])),
    };
  }
  return out;
}

export const FPR_TABLE_COLUMNS = ['Model', 'Evaluated on', 'Healthy rows', 'Predicted positive', 'FPR (%)', '95% CI low (%)', '95% CI high (%)', "Authors' fpr.json (%)"];

/** A compact table for the report: one row per model × evaluation set. */
export function fprTableRows(fprs: FprJson[], method: FprMethod): Array<Record<string, unknown>> {
  return fprs.map((f) => ({
    Model: displayName(f.model),
    'Evaluated on': `${displayName(f.eval_set)} (${population(f)})`,
    'Healthy rows': f.n,
    'Predicted positive': f.positives,
    'FPR (%)': headlineRate(f, method),
    '95% CI low (%)': f.fpr_lower,
    '95% CI high (%)': f.fpr_upper,
    "Authors' fpr.json (%)": f.fpr_reestimate,
  }));
}

/** HM table for the report: one row per model, one column per blend ratio (FPR at ages 0–1). */
export function hmTable(rows: Array<Record<string, unknown>>): { columns: string[]; rows: Array<Record<string, unknown>> } {
  const ratios = [...new Set(rows.map((r) => Number(r.ratio)))].sort((a, b) => a - b);
  const columns = ['Model', ...ratios.map((r) => (r === 0 ? 'No HM' : `Blend ${r}`))];
  const models = [...new Set(rows.map((r) => String(r.model_name)))];
  return {
    columns,
    rows: models.map((name) => {
      const row: Record<string, unknown> = { Model: name };
      for (const r of rows.filter((x) => x.model_name === name)) row[columns[1 + ratios.indexOf(Number(r.ratio))]!] = r.fpr;
      return row;
    }),
  };
}
