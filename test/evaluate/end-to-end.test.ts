// The fragment's stages run in order (threshold → fpr → hm → summary) on the vendored predictions, for one model;
// its rows of the tidy tables must equal those of the committed full-run fixtures (12,000 resamples, seed 42).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EVAL_SETS, HM_RATIOS, MODELS, REPO, fullRun, makeWorkspace } from './full-run.js';

const ws = makeWorkspace(mkdtempSync(join(tmpdir(), 'pipe-eval-e2e-')));
afterAll(() => rmSync(ws, { recursive: true, force: true }));

const rowsOf = (text: string, model: string) => text.trim().split('\n').filter((l) => l.startsWith(`${model},`));

describe('evaluation end to end (VinDr-CXR model)', () => {
  it('reproduces the full run\'s tables', async () => {
    const stages: string[] = [];
    await fullRun(ws, {
      resamples: 12000, models: ['vindr_cxr'], evalSets: ['vindr_pcxr', 'vindr_cxr'], hmRatios: ['0.25'], fprMethod: 'authors_reestimate',
      onStage: (s) => stages.push(s),
    });
    expect(stages).toEqual([
      'eval-threshold@vindr_cxr', 'eval-fpr@model=vindr_cxr,eval=vindr_pcxr', 'eval-fpr@model=vindr_cxr,eval=vindr_cxr',
      'eval-hm@model=vindr_cxr,ratio=0.25', 'eval-summary',
    ]);
    const out = join(ws, 'out/eval');
    const fixture = readFileSync(new URL('./fixtures/fpr_by_age.csv', import.meta.url), 'utf8');
    const mine = readFileSync(join(out, 'fpr_by_age.csv'), 'utf8');
    const wanted = rowsOf(fixture, 'vindr_cxr').filter((l) => /,(vindr_pcxr|vindr_cxr),[^,]*,\d+,test/.test(l));
    expect(wanted.length).toBe(11 + 4);
    expect(rowsOf(mine, 'vindr_cxr')).toEqual(wanted);
    expect(rowsOf(readFileSync(join(out, 'hm_impact.csv'), 'utf8'), 'vindr_cxr')).toEqual(
      rowsOf(readFileSync(new URL('./fixtures/hm_impact.csv', import.meta.url), 'utf8'), 'vindr_cxr').slice(0, 2),
    );
    const fprJson = JSON.parse(readFileSync(join(out, 'fpr.json'), 'utf8'));
    expect(fprJson).toEqual({ vindr_cxr: { vindr_pcxr: { test: 30.4 }, vindr_cxr: { test_healthy_adult: 15.87 } } });
    // AUROC on each calibration set (cross-checked with scipy's rankdata on the same filtered rows).
    expect(readFileSync(join(out, 'auroc.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').slice(2).join(','))).toEqual([
      'vindr_cxr,VinDr-CXR,1452,213,0.9632', 'nih_cxr18,NIH,1884,150,0.8109', 'padchest,PadChest,2678,525,0.8836', 'chexbert,CheXBERT,593,225,0.8255',
    ]);
    const head = JSON.parse(readFileSync(join(out, 'headline.json'), 'utf8'));
    expect(head.fpr_method).toBe('authors_reestimate');
    expect(head.models.vindr_cxr.threshold).toBe(0.2652);
    expect(head.models.vindr_cxr.fpr_children).toEqual({
      value: 0.304, lo: 0.292125, hi: 0.315681, direct_pct: 30.4, reestimate_pct: 30.4, n: 5816, positives: 1768,
    });
    expect(head.models.vindr_cxr.fpr_adults_same_source).toMatchObject({ value: 0.1587, direct_pct: 15.04, reestimate_pct: 15.87, n: 266 });
    expect(readFileSync(join(out, 'fpr_table.csv'), 'utf8').split('\n').slice(0, 2)).toEqual([
      "Model,Evaluated on,Healthy rows,Predicted positive,FPR (%),95% CI low (%),95% CI high (%),Authors' fpr.json (%)",
      'VinDr-CXR,VinDr-PCXR (children),5816,1768,30.4,29.2125,31.5681,30.4',
    ]);
    expect(readFileSync(join(out, 'hm_table.csv'), 'utf8')).toBe('Model,No HM,Blend 0.25\nVinDr-CXR,0.4337,0.5938\n');
    expect(readFileSync(join(out, 'counts/vindr_cxr/vindr_cxr/cardiomegaly_calib_counts.csv'), 'utf8')).toBe(
      'age_bin,Pred. Count,Pred. Percentage,fpr_lower,fpr_upper\n"[18, 25)",0,0.0,0.0,0.0\n"[25, 40)",11,9.24,4.2017,14.2857\n' +
        '"[40, 60)",20,19.23,11.5385,26.9231\n"[60, 80)",9,31.03,13.7931,44.8276\n',
    );
  });

  it('the pipeline fragment wires the same stages over the same lists', () => {
    const doc = parse(readFileSync(join(REPO, 'pipelines/paper/evaluate.yaml'), 'utf8'));
    expect(doc.vars.eval.models).toEqual(MODELS);
    expect(doc.vars.eval.eval_sets).toEqual(EVAL_SETS);
    expect(doc.vars.eval.hm_ratios).toEqual(HM_RATIOS);
    expect(doc.params.bootstrap).toEqual({ resamples: 12000, seed: 42, confidence: 0.95 });
    expect(doc.params.threshold.method).toBe('youden');
    expect(doc.stages['eval-fpr'].matrix).toEqual({ model: '${vars.eval.models}', eval: '${vars.eval.eval_sets}' });
    expect(doc.stages['eval-fpr'].do.uses).toBe('evaluate/fpr');
    expect(doc.stages['eval-fpr'].do.with.resamples).toBe('${params.bootstrap.resamples}');
    expect(doc.stages['eval-threshold'].do.with.method).toBe('${params.threshold.method}');
    for (const fig of doc.vars.eval.figures) {
      expect(() => readFileSync(join(REPO, `pipelines/figures/eval-${fig}.vl.json`))).not.toThrow();
    }
  });
});
