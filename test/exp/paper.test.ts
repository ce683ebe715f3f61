// The paper pipeline ships one sweep (issue 13): `lr-sweep` in pipelines/paper/retrain.yaml is valid, makes the
// three variants the README and docs/experiments.md name, runs only up to the FPR table, and charts a metric that
// table has. (A real sweep is exercised on a small pipeline in sweep.test.ts; the paper's trains six models.)
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { flatten } from '../../engine/metrics.js';
import type { FprJson } from '../../stages/evaluate/lib/results.js';
import { fprJsonShape } from '../../stages/evaluate/lib/tidy.js';
import { repoRoot, runPipe } from '../engine/helpers.js';

let ws: string;
beforeAll(() => {
  ws = mkdtempSync(join(tmpdir(), 'pipe-exp-paper-'));
  cpSync(join(repoRoot, 'pipelines'), join(ws, 'pipelines'), { recursive: true, filter: (src) => !src.endsWith('.lock.yaml') });
  cpSync(join(repoRoot, 'data', 'seed'), join(ws, 'data', 'seed'), { recursive: true });
});
afterAll(() => rmSync(ws, { recursive: true, force: true }));

describe('pipelines/paper.yaml experiments', () => {
  it('lr-sweep: three learning rates, up to retrain-summary, named as the README says', async () => {
    const r = await runPipe(ws, ['exp', 'run', 'pipelines/paper.yaml', 'lr-sweep', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    const { variants } = JSON.parse(r.stdout) as { variants: Array<{ name: string; overrides: Record<string, unknown>; targets: string[]; stages: number }> };
    expect(variants.map((v) => [v.name, v.overrides])).toEqual([
      ['lr-sweep-8da5c1', { 'retrain.lr': 0.0005 }],
      ['lr-sweep-e76a94', { 'retrain.lr': 0.001 }],
      ['lr-sweep-8502b2', { 'retrain.lr': 0.002 }],
    ]);
    for (const v of variants) {
      expect(v.targets).toEqual(['retrain-summary']);
      // The retrain section up to the summary (synth, preprocess, split, train, infer, threshold, fpr), nothing else.
      expect(v.stages).toBe(28);
    }
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const docs = readFileSync(join(repoRoot, 'docs/experiments.md'), 'utf8');
    expect(readme).toContain('pipe exp apply pipelines/paper.yaml lr-sweep-8502b2');
    for (const v of variants) expect(docs).toContain(v.name);
  });

  it('its metric is a key of the metrics file retrain-summary writes (the summary kind\'s own shape, flattened)', () => {
    const doc = parse(readFileSync(join(ws, 'pipelines/paper/retrain.yaml'), 'utf8')) as {
      vars: { retrain: { adult_names: string[]; eval_sets: string[]; eval_targets: Array<{ dset: string; split: string }> } };
      stages: Record<string, { metrics?: string[]; with?: Record<string, unknown> }>;
      experiments: Record<string, { metric: string }>;
    };
    const v = doc.vars.retrain;
    const summary = doc.stages['retrain-summary']!;
    expect(summary.metrics).toEqual([summary.with!.out]);
    const fprs = v.adult_names.flatMap((model) => v.eval_targets.map((t) => ({ model, eval_set: t.dset, split: t.split, fpr: 1, fpr_reestimate: 1 }) as unknown as FprJson));
    const keys = Object.keys(flatten(fprJsonShape(fprs, v.adult_names, v.eval_sets, 'direct')));
    expect(keys).toContain(doc.experiments['lr-sweep']!.metric);
    expect(doc.experiments['lr-sweep']!.metric).toBe('vindr_cxr.vindr_pcxr.test');
  });

  it('a typo in the sweep is a located error in the fragment, with did-you-mean', async () => {
    const file = join(ws, 'pipelines/paper/retrain.yaml');
    const good = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, good.replace('retrain.lr: [0.0005', 'retrain.lrr: [0.0005'));
      const r = await runPipe(ws, ['exp', 'run', 'pipelines/paper.yaml', 'lr-sweep', '--dry-run']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/pipelines\/paper\/retrain\.yaml:\d+:\d+.*`params\.retrain` has no `lrr` \(did you mean `lr`\?\)/);
    } finally {
      writeFileSync(file, good);
    }
  });
});
