// Each evaluate kind's run(ctx) on a temp workspace holding plain predictions.csv files in the authors' layout
// (`<exp>/<dset>/<split>/best/predictions.csv`), as the retrain part of the pipeline will write them.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageError, type StageManifest } from '../../engine/stage-api.js';
import { fakeContext } from '../support/context.js';
import { run as runThreshold } from '../../stages/evaluate/threshold/run.js';
import { run as runFpr } from '../../stages/evaluate/fpr/run.js';
import { run as runHm } from '../../stages/evaluate/hm/run.js';
import { run as runSummary } from '../../stages/evaluate/summary/run.js';
import { manifest as thresholdManifest } from '../../stages/evaluate/threshold/manifest.js';
import { manifest as fprManifest } from '../../stages/evaluate/fpr/manifest.js';
import { manifest as hmManifest } from '../../stages/evaluate/hm/manifest.js';
import { manifest as summaryManifest } from '../../stages/evaluate/summary/manifest.js';

let ws: string;
const EXP = 'preds/exp_cardiomegaly-toy-mixup-imb_sampler';

function writePreds(rel: string, header: string[], rows: Array<Array<string | number>>): void {
  const abs = join(ws, rel);
  mkdirSync(join(abs, '..'), { recursive: true });
  const q = (v: string | number) => (/[",]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  writeFileSync(abs, [header.join(','), ...rows.map((r) => r.map(q).join(','))].join('\n') + '\n');
}
const probs = (p: number) => `[${(1 - p).toFixed(4)}, ${p.toFixed(4)}]`;

beforeAll(() => {
  ws = mkdtempSync(join(tmpdir(), 'pipe-eval-kinds-'));
  const adultHeader = ['dset', 'split', 'image_id', 'age_years', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'loss', 'class_probs'];
  // Calibration: positives 0.8 0.7 0.6, negatives 0.65 0.5 0.2 0.1, one other-finding row (dropped by B.2).
  // Youden: t = 0.6 gives TPR 1, FPR 1/4 (J 0.75), the best.
  const calib: Array<[number, number, number]> = [[1, 1, 0.8], [1, 1, 0.7], [1, 1, 0.6], [0, 0, 0.65], [0, 0, 0.5], [0, 0, 0.2], [0, 0, 0.1], [1, 0, 0.99]];
  writePreds(`${EXP}/toy/test_adult_calib/best/predictions.csv`, adultHeader,
    calib.map(([h, c, p], i) => ['toy', 'test_adult_calib', `c${i}`, 50, h, c, 0, 0.5, 0, 0, probs(p)]));
  // Healthy adults: 6 rows, ages in three bins, one without age (dropped).
  const healthy: Array<[string | number, number]> = [[20, 0.7], [22, 0.1], [30, 0.61], [45, 0.59], [70, 0.9], [85, 0.2], ['', 0.99]];
  writePreds(`${EXP}/toy/test_healthy_adult/best/predictions.csv`, adultHeader,
    healthy.map(([a, p], i) => ['toy', 'test_healthy_adult', `h${i}`, a, 0, 0, 0, 0.5, 0, 0, probs(p)]));
  // Children: raw DICOM ages; "011Y", "abc", "" and the sick child are dropped (B.2).
  const childHeader = ['image_id', 'dset', 'split', 'age', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'class_probs'];
  const kids: Array<[string, number, number]> = [['001Y', 0, 0.9], ['010M', 0, 0.7], ['020D', 0, 0.1], ['002Y', 0, 0.3], ['010Y', 0, 0.65],
    ['011Y', 0, 0.9], ['abc', 0, 0.9], ['', 0, 0.9], ['003Y', 1, 0.9]];
  const kidRows = kids.map(([a, h, p], i) => [`k${i}`, 'vindr_pcxr', 'test', a, h, -1, 0, 0.5, 0, probs(p)]);
  writePreds(`${EXP}/vindr_pcxr/test/best/predictions.csv`, childHeader, kidRows);
  writePreds(`preds/hm-0.5/exp_cardiomegaly-toy-mixup-imb_sampler/vindr_pcxr/test/best/predictions.csv`, childHeader, kidRows);
  writePreds(`preds/hm-0.5/exp_cardiomegaly-toy-mixup-imb_sampler/toy/test_adult_calib/best/predictions.csv`, adultHeader,
    calib.map(([h, c, p], i) => ['toy', 'test_adult_calib', `c${i}`, 50, h, c, 0, 0.5, 0, 0, probs(p)]));
});
afterAll(() => rmSync(ws, { recursive: true, force: true }));

const boot = { resamples: 500, seed: 42, confidence: 0.95 };

describe('evaluate kinds on the authors\' plain-CSV layout', () => {
  it('threshold: Youden J on the calibration split, AUROC', async () => {
    const ctx = fakeContext(ws, {
      model: 'toy', calib: `${EXP}/toy/`, split: 'test_adult_calib', method: 'youden' as const, auroc_sets: ['toy'],
      auroc_dir: `${EXP}/`, out: 'out/threshold/toy.json',
    }, { stage: 'eval-threshold@toy' });
    await runThreshold(ctx);
    const t = JSON.parse(readFileSync(join(ws, 'out/threshold/toy.json'), 'utf8'));
    expect(t.threshold).toBe(0.6);
    expect(t.calib).toEqual({ file: `${EXP}/toy/test_adult_calib/best/predictions.csv`, n: 7, positives: 3, negatives: 4 });
    expect(t.auroc).toEqual([{ set: 'toy', file: t.calib.file, n: 7, positives: 3, auroc: 0.9167 }]);
    expect(ctx.logs.join('\n')).toMatch(/threshold 0\.6/);
  });

  it('fpr: children by year, counts table in the authors\' format, JSON', async () => {
    const ctx = fakeContext(ws, {
      model: 'toy', eval_set: 'vindr_pcxr', split: 'auto', predictions: `${EXP}/vindr_pcxr/`, threshold: 'out/threshold/toy.json',
      ...boot, counts: 'out/counts/toy/vindr_pcxr.csv', out: 'out/fpr/toy/vindr_pcxr.json',
    }, { stage: 'eval-fpr@model=toy,eval=vindr_pcxr' });
    await runFpr(ctx);
    // Kept: 001Y (0.9 → +), 010M (age 0, 0.7 → +), 020D (age 0, 0.1), 002Y (0.3), 010Y (0.65 → +).
    const counts = readFileSync(join(ws, 'out/counts/toy/vindr_pcxr.csv'), 'utf8').trim().split('\n');
    expect(counts[0]).toBe('age_bin,Pred. Count,Pred. Percentage,fpr_lower,fpr_upper');
    expect(counts.slice(1).map((l) => l.split(',').slice(0, 3).join(','))).toEqual(['0,1,50.0', '1,1,100.0', '10,1,100.0', '2,0,0.0']);
    const f = JSON.parse(readFileSync(join(ws, 'out/fpr/toy/vindr_pcxr.json'), 'utf8'));
    expect(f).toMatchObject({ model: 'toy', eval_set: 'vindr_pcxr', split: 'test', n: 5, positives: 3, fpr: 60, threshold: 0.6 });
    // Re-estimate: the zero-count bin "2" drops out of the denominator → 3 / (2 + 1 + 1) = 75 %.
    expect(f.fpr_reestimate).toBe(75);
    expect(f.fpr_lower).toBeLessThanOrEqual(60);
    expect(f.fpr_upper).toBeGreaterThanOrEqual(60);
    expect(f.bootstrap).toEqual({ ...boot, rng: 'numpy-pcg64' });
    expect(ctx.progressUpdates.length).toBe(4);
  });

  it('fpr: adults by decade bins, with a literal threshold', async () => {
    await runFpr(fakeContext(ws, {
      model: 'toy', eval_set: 'toy', split: 'auto', predictions: `${EXP}/toy/`, threshold_value: 0.6,
      ...boot, counts: 'out/counts/toy/toy.csv', out: 'out/fpr/toy/toy.json',
    }, { stage: 'eval-fpr@model=toy,eval=toy' }));
    const lines = readFileSync(join(ws, 'out/counts/toy/toy.csv'), 'utf8').trim().split('\n');
    expect(lines.slice(1).map((l) => l.replace(/,[^,]*,[^,]*$/, ''))).toEqual([
      '"[18, 25)",1,50.0', '"[25, 40)",1,100.0', '"[40, 60)",0,0.0', '"[60, 80)",1,100.0', '"[80, 100)",0,0.0',
    ]);
  });

  it('hm: threshold re-derived from the HM calibration predictions, impact over ages 0–1', async () => {
    await runHm(fakeContext(ws, {
      model: 'toy', ratio: '0.5', calib: 'preds/hm-0.5/exp_cardiomegaly-toy-mixup-imb_sampler/toy/',
      predictions: 'preds/hm-0.5/exp_cardiomegaly-toy-mixup-imb_sampler/vindr_pcxr/', eval_set: 'vindr_pcxr', impact_bins: ['0', '1'],
      ...boot, counts: 'out/hm/counts/toy/0.5.csv', out: 'out/hm/toy/0.5.json',
    }, { stage: 'eval-hm@model=toy,ratio=0.5' }));
    const h = JSON.parse(readFileSync(join(ws, 'out/hm/toy/0.5.json'), 'utf8'));
    expect(h).toMatchObject({ kind: 'evaluate/hm', ratio: '0.5', threshold: 0.6, fpr_age_0_1: 0.6667 });
  });

  it('summary: fpr.json (either definition), tidy CSVs', async () => {
    const base = {
      fpr_dir: 'out/fpr/', threshold_dir: 'out/threshold/', hm_dir: 'out/hm/', models: ['toy'], eval_sets: ['vindr_pcxr', 'toy'],
      hm_ratios: ['0.5'], hm_eval_set: 'vindr_pcxr', by_age: 'out/fpr_by_age.csv', overall: 'out/fpr_overall.csv',
      thresholds: 'out/thresholds.csv', auroc: 'out/auroc.csv', hm_impact: 'out/hm_impact.csv',
    };
    await runSummary(fakeContext(ws, { ...base, fpr_method: 'direct' as const, out: 'out/fpr-direct.json' }, { stage: 'eval-summary' }));
    await runSummary(fakeContext(ws, { ...base, fpr_method: 'authors_reestimate' as const, out: 'out/fpr.json' }, { stage: 'eval-summary' }));
    expect(readFileSync(join(ws, 'out/fpr-direct.json'), 'utf8')).toBe(
      '{\n    "toy": {\n        "vindr_pcxr": {\n            "test": 60\n        },\n        "toy": {\n            "test_healthy_adult": 50\n        }\n    }\n}',
    );
    expect(JSON.parse(readFileSync(join(ws, 'out/fpr.json'), 'utf8')).toy.vindr_pcxr.test).toBe(75);
    const byAge = readFileSync(join(ws, 'out/fpr_by_age.csv'), 'utf8').trim().split('\n');
    expect(byAge[0]).toBe(readFileSync(new URL('./fixtures/fpr_by_age.csv', import.meta.url), 'utf8').split('\n')[0]);
    expect(byAge.length).toBe(1 + 4 + 5);
    // Bins in numeric age order for plotting (the counts CSV keeps the authors' string order).
    expect(byAge.slice(1, 5).map((l) => l.split(',')[9])).toEqual(['0', '1', '2', '10']);
    const hm = readFileSync(join(ws, 'out/hm_impact.csv'), 'utf8').trim().split('\n');
    expect(hm[0]).toBe('model,model_name,model_rank,ratio,threshold,fpr,fpr_all_ages_pct');
    expect(hm.slice(1).map((l) => l.split(',').slice(3, 6).join(','))).toEqual(['0,0.6,0.6667', '0.5,0.6,0.6667']);
    expect(readFileSync(join(ws, 'out/auroc.csv'), 'utf8')).toContain('toy,toy,toy,toy,7,3,0.9167');
  });
});

describe('bad input is one clear StageError', () => {
  const fprWith = (predictions: string) => ({
    model: 'toy', eval_set: 'toy', split: 'test_healthy_adult', predictions, threshold_value: 0.5, ...boot,
    counts: 'out/bad/counts.csv', out: 'out/bad/fpr.json',
  });
  it('names a missing file', async () => {
    await expect(runFpr(fakeContext(ws, fprWith('preds/nope/'), { stage: 's' }))).rejects.toThrow(/preds\/nope\/ does not exist/);
  });
  it('names file and column of a missing column', async () => {
    writePreds('preds/bad1.csv', ['age_years', 'Has Finding', 'Cardiomegaly'], [[40, 0, 0]]);
    const err = await runFpr(fakeContext(ws, fprWith('preds/bad1.csv'), { stage: 's' })).catch((e) => e);
    expect(err).toBeInstanceOf(StageError);
    expect(err.message).toMatch(/preds\/bad1\.csv has no column "class_probs"/);
  });
  it('names file, line and column of a malformed cell', async () => {
    writePreds('preds/bad2.csv', ['age_years', 'Has Finding', 'Cardiomegaly', 'class_probs'], [[40, 0, 0, '[0.5, 0.5]'], [41, 0, 0, '[0.5]']]);
    const err = await runFpr(fakeContext(ws, fprWith('preds/bad2.csv'), { stage: 's' })).catch((e) => e);
    expect(err).toBeInstanceOf(StageError);
    expect(err.message).toMatch(/preds\/bad2\.csv, line 3, column "class_probs" \(4\)/);
  });
  it('names a truncated gzip file', async () => {
    const gz = gzipSync(Buffer.from('age_years,Has Finding,Cardiomegaly,class_probs\n40,0,0,"[0.5, 0.5]"\n'));
    writeFileSync(join(ws, 'preds/cut.csv.gz'), gz.subarray(0, gz.length - 6));
    await expect(runFpr(fakeContext(ws, fprWith('preds/cut.csv.gz'), { stage: 's' }))).rejects.toThrow(/preds\/cut\.csv\.gz looks gzip-compressed but cannot be decompressed/);
  });
  it('names the stage and field of a bad with: value, and writes nothing', async () => {
    // An interpolated param can arrive as any string; the kind checks it itself.
    const bad = { ...fprWith(`${EXP}/toy/`), resamples: 'many' as unknown as number };
    const err = await runFpr(fakeContext(ws, bad, { stage: 'eval-fpr@x' })).catch((e) => e);
    expect(err).toBeInstanceOf(StageError);
    expect(err.message).toMatch(/Stage eval-fpr@x, field with\.resamples: expected an integer/);
    expect(existsSync(join(ws, 'out/bad/fpr.json'))).toBe(false);
  });
  it('needs a threshold', async () => {
    const { threshold_value: _unused, ...noThreshold } = fprWith(`${EXP}/toy/`);
    await expect(runFpr(fakeContext(ws, noThreshold, { stage: 's' }))).rejects.toThrow(/give with\.threshold/);
  });
});

describe('manifests', () => {
  const manifests: Array<[string, StageManifest]> = [
    ['threshold', thresholdManifest], ['fpr', fprManifest], ['hm', hmManifest], ['summary', summaryManifest],
  ];
  it.each(manifests)('%s: kind = folder, path fields have roles, no hand-kept implementation list', (name, m) => {
    expect(m.kind).toBe(`evaluate/${name}`);
    // The shared lib is in the key through the import closure (engine/kinds.ts), not a manual list.
    expect(m).not.toHaveProperty('implementation');
    for (const [field, spec] of Object.entries(m.with)) {
      if (spec.type === 'path' || spec.type === 'path[]') expect(spec.role, field).toMatch(/^(dep|out)$/);
      expect(spec.description.length, field).toBeGreaterThan(10);
    }
    expect(Object.values(m.with).some((f) => f.role === 'out')).toBe(true);
  });
  it('manifest modules import nothing heavy', () => {
    for (const [name] of manifests) {
      const src = readFileSync(new URL(`../../stages/evaluate/${name}/manifest.ts`, import.meta.url), 'utf8');
      const imports = [...src.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      expect(imports.every((i) => i === '../../../engine/stage-api.js' || i === '../lib/bootstrap-fields.js'), name).toBe(true);
    }
  });
});

describe('scores that are not finite probabilities are refused by every kind that reads predictions (issue 16)', () => {
  const header = ['dset', 'split', 'image_id', 'age_years', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'loss', 'class_probs'];
  // The issue's case: 120 separable calibration rows (positives score 0.8+, negatives 0.3−), 15 negatives "[0, 0]".
  function issueCalib(rel: string, bad = '[0, 0]'): void {
    const rows = Array.from({ length: 120 }, (_, i) => {
      const positive = i % 4 === 0;
      const p = positive ? 0.8 + (i % 7) / 100 : 0.3 - (i % 11) / 100;
      const cell = !positive && i % 8 === 1 ? bad : probs(p);
      return ['iss', 'test_adult_calib', `c${i}`, 40 + (i % 30), positive ? 1 : 0, positive ? 1 : 0, 0, 0.5, 0, 0, cell];
    });
    writePreds(rel, header, rows);
  }
  it('threshold: 15 of 120 calibration rows "[0, 0]" — refused, naming file, line and value (was: accepted, 0/0 scores sorted in)', async () => {
    issueCalib('preds/issue/iss/test_adult_calib.csv');
    const ok = 'preds/issue-clean/iss/test_adult_calib.csv';
    issueCalib(ok, probs(0.1));
    const w = { model: 'iss', split: 'test_adult_calib', method: 'youden' as const, auroc_sets: [], out: 'out/issue/t.json' };
    await runThreshold(fakeContext(ws, { ...w, calib: ok }, { stage: 'eval-threshold@iss' }));
    expect(JSON.parse(readFileSync(join(ws, 'out/issue/t.json'), 'utf8'))).toMatchObject({ youden_j: 1, auroc: [{ auroc: 1 }] });
    const err = await runThreshold(fakeContext(ws, { ...w, calib: 'preds/issue/iss/', out: 'out/issue/t2.json' }, { stage: 'eval-threshold@iss' })).catch((e) => e);
    expect(err).toBeInstanceOf(StageError);
    expect(err.message).toBe(
      'Predictions CSV preds/issue/iss/test_adult_calib.csv, line 3 (row 2), column "class_probs": "[0, 0]" sums to 0, so the ' +
        'normalised score p1 / (p0 + p1) is 0/0; every score must be a pair of finite probabilities in [0, 1], not both 0. ' +
        'Re-run the inference that wrote the file.',
    );
    expect(existsSync(join(ws, 'out/issue/t2.json'))).toBe(false);
  });
  it.each([
    ['[nan, 0.5]', 'holds NaN'],
    ['[0.2, Infinity]', 'holds infinity'],
    ['[-0.5, 1.5]', 'holds -0.5, outside [0, 1]'],
    ['[0.3, 1.7]', 'holds 1.7, outside [0, 1]'],
  ])('fpr: a healthy row with %s', async (cell, problem) => {
    writePreds('preds/degenerate/toy/test_healthy_adult.csv', header, [
      ['toy', 'test_healthy_adult', 'a', 30, 0, 0, 0, 0.5, 0, 0, probs(0.4)],
      ['toy', 'test_healthy_adult', 'b', 31, 0, 0, 0, 0.5, 0, 0, cell],
    ]);
    const err = await runFpr(fakeContext(ws, {
      model: 'toy', eval_set: 'toy', split: 'auto', predictions: 'preds/degenerate/toy/', threshold_value: 0.5, ...boot,
      counts: 'out/degenerate/c.csv', out: 'out/degenerate/f.json',
    }, { stage: 'eval-fpr@x' })).catch((e) => e);
    expect(err).toBeInstanceOf(StageError);
    expect(err.message).toContain(`preds/degenerate/toy/test_healthy_adult.csv, line 3 (row 2), column "class_probs": "${cell}" ${problem}`);
  });
  it('hm: a degenerate calibration row or a degenerate child row', async () => {
    const hmWith = (calib: string, predictions: string) => ({
      model: 'toy', ratio: '0.5', calib, predictions, eval_set: 'vindr_pcxr', impact_bins: ['0', '1'], ...boot,
      counts: 'out/hm-bad/c.csv', out: 'out/hm-bad/h.json',
    });
    issueCalib('preds/hm-bad/toy/test_adult_calib.csv');
    const rows = readFileSync(join(ws, 'preds/hm-bad/toy/test_adult_calib.csv'), 'utf8').replaceAll('iss,', 'toy,');
    writeFileSync(join(ws, 'preds/hm-bad/toy/test_adult_calib.csv'), rows);
    await expect(runHm(fakeContext(ws, hmWith('preds/hm-bad/toy/', 'preds/hm-0.5/exp_cardiomegaly-toy-mixup-imb_sampler/vindr_pcxr/'), { stage: 'eval-hm@x' })))
      .rejects.toThrow(/preds\/hm-bad\/toy\/test_adult_calib\.csv, line 3 \(row 2\), column "class_probs": "\[0, 0\]" sums to 0/);
    const childHeader = ['image_id', 'dset', 'split', 'age', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'class_probs'];
    writePreds('preds/hm-bad/vindr_pcxr/test.csv', childHeader, [['k0', 'vindr_pcxr', 'test', '001Y', 0, -1, 0, 0.5, 0, '[1.2, -0.2]']]);
    await expect(runHm(fakeContext(ws, hmWith('preds/hm-0.5/exp_cardiomegaly-toy-mixup-imb_sampler/toy/', 'preds/hm-bad/vindr_pcxr/'), { stage: 'eval-hm@x' })))
      .rejects.toThrow(/preds\/hm-bad\/vindr_pcxr\/test\.csv, line 2 \(row 1\), column "class_probs": "\[1\.2, -0\.2\]" holds 1\.2, outside \[0, 1\]/);
  });
});

describe('predictions that would be quietly misread are refused (issue 16, same class of bug)', () => {
  const header = ['dset', 'split', 'image_id', 'age_years', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'loss', 'class_probs'];
  const fpr = (predictions: string, extra: Record<string, unknown> = {}) => runFpr(fakeContext(ws, {
    model: 'toy', eval_set: 'toy', split: 'auto', predictions, threshold_value: 0.5, ...boot, counts: 'out/mis/c.csv', out: 'out/mis/f.json', ...extra,
  }, { stage: 'eval-fpr@x' }));
  it('a file mixing splits (its filters follow the first row\'s)', async () => {
    writePreds('preds/mis/mixed.csv', header, [
      ['toy', 'test_healthy_adult', 'a', 30, 0, 0, 0, 0.5, 0, 0, probs(0.4)],
      ['toy', 'test_adult_calib', 'b', 31, 1, 0, 0, 0.5, 0, 0, probs(0.4)],
    ]);
    await expect(fpr('preds/mis/mixed.csv')).rejects.toThrow(
      'Predictions CSV preds/mis/mixed.csv, line 3, column "split": "test_adult_calib" where line 2 has "test_healthy_adult"; a predictions file holds one dataset and one split',
    );
  });
  it('a file of another split or dataset than the stage asks for', async () => {
    writePreds('preds/mis/calib.csv', header, [['toy', 'test_adult_calib', 'a', 30, 0, 0, 0, 0.5, 0, 0, probs(0.4)]]);
    await expect(fpr('preds/mis/calib.csv')).rejects.toThrow(
      'Predictions CSV preds/mis/calib.csv: its split column says "test_adult_calib" but the stage reads it as split "test_healthy_adult"',
    );
    writePreds('preds/mis/other.csv', header, [['padchest', 'test_healthy_adult', 'a', 30, 0, 0, 0, 0.5, 0, 0, probs(0.4)]]);
    await expect(fpr('preds/mis/other.csv')).rejects.toThrow('its dset column says "padchest" but the stage reads it as dset "toy"');
  });
  it.each([
    ['age_years', 'sixty', 'is not an age in years'],
    ['age_years', '-3', 'is a negative age'],
    ['Has Finding', 'yes', 'is not a 0/1 label'],
    ['Cardiomegaly', '0x1', 'is not a label (1, 0, −1)'],
  ])('%s = %s', async (column, value, problem) => {
    const row: Array<string | number> = ['toy', 'test_healthy_adult', 'a', 30, 0, 0, 0, 0.5, 0, 0, probs(0.4)];
    row[header.indexOf(column)] = value;
    writePreds('preds/mis/cell.csv', header, [row]);
    await expect(fpr('preds/mis/cell.csv')).rejects.toThrow(`Predictions CSV preds/mis/cell.csv, line 2, column "${column}" (${header.indexOf(column) + 1}): "${value}" ${problem}`);
  });
});

describe('calibration rows with a finding and an uncertain label (the authors count them as negatives)', () => {
  it.each([['-1', '"-1"'], ['', 'missing']])('Cardiomegaly %j is refused, naming the line', async (label, shown) => {
    const header = ['dset', 'split', 'image_id', 'age_years', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'loss', 'class_probs'];
    writePreds('preds/uncertain/toy/test_adult_calib.csv', header, [
      ['toy', 'test_adult_calib', 'a', 50, 1, 1, 0, 0.5, 0, 0, probs(0.9)],
      ['toy', 'test_adult_calib', 'b', 50, 0, 0, 0, 0.5, 0, 0, probs(0.1)],
      ['toy', 'test_adult_calib', 'c', 50, 1, label, 0, 0.5, 0, 0, probs(0.95)],
      ['toy', 'test_adult_calib', 'd', 50, 1, 0, 0, 0.5, 0, 0, probs(0.95)], // another finding: dropped, as B.2 says
    ]);
    await expect(runThreshold(fakeContext(ws, {
      model: 'toy', calib: 'preds/uncertain/toy/', split: 'test_adult_calib', method: 'youden' as const, auroc_sets: [], out: 'out/unc.json',
    }, { stage: 'eval-threshold@toy' }))).rejects.toThrow(`Predictions CSV preds/uncertain/toy/test_adult_calib.csv, line 4, column "Cardiomegaly": a calibration row with a finding has the label ${shown}`);
  });
});
