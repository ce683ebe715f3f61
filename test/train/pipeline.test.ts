// The retrain fragment (pipelines/paper/retrain.yaml) through the real CLI on a temp workspace, scaled down by the
// main file's params/vars: phantom datasets → preprocess → split → train → infer → threshold/FPR → summary → figures.
// Then the cache: a second run does nothing, and an epochs change re-runs training and what follows, not the data.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runPipe, type CliResult } from '../support/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const MAIN = `name: retrain-test
workdir: ..
include: [paper/retrain.yaml]
params:
  bootstrap: { resamples: 300, seed: 42, confidence: 0.95 }
  retrain: { image_size: 32, epochs: 2, arch: tiny_cnn }
vars:
  retrain:
    root: out/retrain
    datasets:
      - { name: vindr_cxr, layout: vindr_cxr, patients: 260, seed: 11 }
      - { name: nih_cxr18, layout: nih, patients: 200, seed: 12 }
    adult_names: [vindr_cxr, nih_cxr18]
    children: { name: vindr_pcxr, layout: vindr_pcxr, patients: 90, seed: 13 }
    eval_targets:
      - { name: vindr_pcxr, dset: vindr_pcxr, split: test }
      - { name: vindr_cxr, dset: vindr_cxr, split: test_healthy_adult }
      - { name: nih_cxr18, dset: nih_cxr18, split: test_healthy_adult }
    eval_sets: [vindr_pcxr, vindr_cxr, nih_cxr18]
`;

describe('pipe run with pipelines/paper/retrain.yaml (scaled down)', () => {
  let ws: string;
  let first: CliResult;
  beforeAll(async () => {
    ws = mkdtempSync(join(tmpdir(), 'retrain-pipe-'));
    for (const d of ['pipelines/paper', 'pipelines/figures']) mkdirSync(join(ws, d), { recursive: true });
    copyFileSync(join(ROOT, 'pipelines/paper/retrain.yaml'), join(ws, 'pipelines/paper/retrain.yaml'));
    for (const f of ['eval-children.vl.json', 'eval-fig2.vl.json']) {
      copyFileSync(join(ROOT, 'pipelines/figures', f), join(ws, 'pipelines/figures', f));
    }
    writeFileSync(join(ws, 'pipelines/paper.yaml'), MAIN);
    first = await runPipe(ws, ['run', 'pipelines/paper.yaml'], {}, { timeoutMs: 240_000 });
  }, 300_000);
  afterAll(() => rmSync(ws, { recursive: true, force: true }));

  test('runs every stage and writes predictions in the authors layout, FPR tables and figures', () => {
    expect(first.code, first.out).toBe(0);
    const root = join(ws, 'out/retrain');
    for (const m of ['vindr_cxr', 'nih_cxr18']) {
      const exp = join(root, `inference/exp_cardiomegaly-${m}-mixup-imb_sampler`);
      for (const p of [`${m}/test_adult_calib`, 'vindr_pcxr/test', 'vindr_cxr/test_healthy_adult', 'nih_cxr18/test_healthy_adult']) {
        const file = join(exp, p, 'best/predictions.csv');
        expect(existsSync(file), file).toBe(true);
        expect(readFileSync(file, 'utf8').split('\n')[0]).toMatch(/,pred,prob,out,(loss,)?class_probs$/);
      }
      const metrics = JSON.parse(readFileSync(join(root, `train_metrics/${m}.json`), 'utf8'));
      expect(metrics.epochs).toHaveLength(2);
      expect(metrics.arch).toBe('tiny_cnn');
      expect(['node-gpu', 'node', 'webgpu', 'wasm', 'cpu']).toContain(metrics.backend);
      expect(existsSync(join(root, `train_runs/exp_cardiomegaly-${m}-mixup-imb_sampler/best/model.json`))).toBe(true);
      expect(existsSync(join(root, `figures/learning_curve_${m}.png`))).toBe(true);
    }
    const overall = parse(readFileSync(join(root, 'eval/fpr_overall.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(overall.map((r) => `${r['model']}/${r['eval_set']}`).sort()).toEqual(
      ['nih_cxr18/nih_cxr18', 'nih_cxr18/vindr_cxr', 'nih_cxr18/vindr_pcxr', 'vindr_cxr/nih_cxr18', 'vindr_cxr/vindr_cxr', 'vindr_cxr/vindr_pcxr'],
    );
    for (const r of overall) expect(Number(r['n'])).toBeGreaterThan(0);
    for (const f of ['children', 'fig2']) expect(existsSync(join(root, `figures/${f}.svg`))).toBe(true);
    // The backend choice is in the stage log the engine keeps.
    expect(first.out).not.toMatch(/Error|✖/);
    // Timings are provenance: in the run records under .pipe/, never in the metrics files.
    const metricsText = readFileSync(join(root, 'train_metrics/vindr_cxr.json'), 'utf8');
    expect(metricsText).not.toMatch(/seconds|per_s/);
    const records = readdirSync(join(ws, '.pipe'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath, e.name)).toString('latin1'))
      .filter((t) => t.includes('"train_img_per_s"'));
    expect(records.length).toBeGreaterThan(0);
    const rec = JSON.parse(records.find((t) => t.trimStart().startsWith('{'))!) as { extra: Record<string, unknown>; execution: Record<string, unknown> };
    expect(rec.execution).toMatchObject({ workers: expect.any(Number), train_seconds: expect.any(Number) });
    expect(JSON.stringify(rec.extra)).not.toMatch(/seconds|per_s|workers/);
  });

  test('a second run is all cache hits; changing epochs re-runs training and what follows, not the data stages', async () => {
    const again = await runPipe(ws, ['run', 'pipelines/paper.yaml'], {}, { timeoutMs: 240_000 });
    expect(again.code, again.out).toBe(0);
    expect(again.out).not.toMatch(/▶/);
    const changed = await runPipe(ws, ['run', 'pipelines/paper.yaml', '-S', 'retrain.epochs=1'], {}, { timeoutMs: 240_000 });
    expect(changed.code, changed.out).toBe(0);
    expect(changed.out).toMatch(/▶ retrain-train@vindr_cxr/);
    expect(changed.out).toMatch(/▶ retrain-infer@model=vindr_cxr,target=vindr_pcxr/);
    expect(changed.out).not.toMatch(/▶ retrain-(synth|preprocess|split)/);
    const metrics = JSON.parse(readFileSync(join(ws, 'out/retrain/train_metrics/vindr_cxr.json'), 'utf8'));
    expect(metrics.epochs).toHaveLength(1);
  });
});
