import type { StageManifest } from '../../../engine/stage-api.js';

export const manifest: StageManifest = {
  kind: 'evaluate/summary',
  description:
    'Collects the per-model results into the headline fpr.json (authors\' shape, keyed by model) and tidy CSVs for ' +
    'figures and report: FPR by age, overall FPR (true and re-estimated), thresholds, AUROC, impact of histogram matching. ' +
    'fpr_method picks the headline definition: `direct` = positives / rows (the correct FPR); `authors_reestimate` = ' +
    "the published fpr.json value, re-estimated from the rounded per-bin table with zero-count bins dropped (METHODS B.7).",
  with: {
    fpr_dir: { type: 'path', role: 'dep', required: true, description: 'Directory of evaluate/fpr JSONs, laid out `<model>/<eval_set>.json`.' },
    models: { type: 'string[]', required: true, description: 'Models (training datasets), in display order.' },
    eval_sets: { type: 'string[]', required: true, description: 'Evaluation sets, in display order.' },
    fpr_method: { type: 'enum', values: ['direct', 'authors_reestimate'], default: 'direct', description: 'Which FPR definition the headline fpr.json reports.' },
    threshold_dir: { type: 'path', role: 'dep', description: 'Directory of evaluate/threshold JSONs (`<model>.json`), for the thresholds and AUROC tables.' },
    hm_dir: { type: 'path', role: 'dep', description: 'Directory of evaluate/hm JSONs, laid out `<model>/<ratio>.json`.' },
    hm_ratios: { type: 'string[]', default: [], description: 'Blend ratios to collect from hm_dir (ratio 0 comes from the plain run).' },
    hm_eval_set: { type: 'string', default: 'vindr_pcxr', description: 'The children evaluation set the HM experiment used.' },
    out: { type: 'path', role: 'out', required: true, description: 'Headline JSON in the shape of the authors\' fpr.json, keyed by model.' },
    by_age: { type: 'path', role: 'out', required: true, description: 'Tidy CSV: one row per model × eval set × age bin (counts, FPR, BCa bounds).' },
    overall: { type: 'path', role: 'out', required: true, description: 'Tidy CSV: one row per model × eval set (true and re-estimated FPR, BCa bounds).' },
    headline: { type: 'path', role: 'out', description: 'headline.json for the report: per model its threshold and FPRs (proportions with BCa bounds, both definitions).' },
    fpr_table: { type: 'path', role: 'out', description: 'Compact CSV for the report: FPR per model × evaluation set with its interval and the authors\' value.' },
    hm_table: { type: 'path', role: 'out', description: 'Compact CSV for the report: FPR at ages 0–1 per model (rows) and blend ratio (columns); needs hm_dir.' },
    thresholds: { type: 'path', role: 'out', description: 'CSV of thresholds per model (needs threshold_dir).' },
    auroc: { type: 'path', role: 'out', description: 'CSV of AUROC per model × calibration set (needs threshold_dir).' },
    hm_impact: { type: 'path', role: 'out', description: 'CSV of the impact of histogram matching (needs hm_dir).' },
  },
  resources: { cpus: 1, memBytes: 256 * 1024 ** 2, gpus: 0 },
};
