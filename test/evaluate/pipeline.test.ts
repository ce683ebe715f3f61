// The evaluation fragment through the real CLI (`node bin/pipe.js`, built by the global setup) on a temp workspace
// laid out like the repo (data linked): one model's threshold and FPR stage, the cache, and what a param change re-runs.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pipe } from '../support/cli.js';
import { fragmentWorkspace } from './full-run.js';

const TARGET = 'eval-fpr@model=vindr_cxr,eval=vindr_cxr';

let ws: string;
beforeAll(() => {
  ws = fragmentWorkspace(mkdtempSync(join(tmpdir(), 'eval-pipe-')));
});
afterAll(() => rmSync(ws, { recursive: true, force: true }));

describe('pipe run with pipelines/paper/evaluate.yaml', () => {
  test('the fragment validates and expands to 46 stages', () => {
    const r = pipe(ws, ['run', 'pipelines/paper.yaml', '--dry-run']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.match(/would run/g)?.length, r.out).toBe(4 + 20 + 16 + 1 + 4 + 1);
    expect(r.out).toContain('eval-fpr@model=padchest,eval=vindr_pcxr');
    expect(r.out).toContain('eval-hm@model=chexbert,ratio=1.0');
  });

  test('runs a model\'s threshold and FPR stage; the counts table is the authors\'', () => {
    const r = pipe(ws, ['run', 'pipelines/paper.yaml', TARGET]);
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(readFileSync(join(ws, 'out/eval/threshold/vindr_cxr.json'), 'utf8')).threshold).toBe(0.2652);
    expect(readFileSync(join(ws, 'out/eval/counts/vindr_cxr/vindr_cxr/cardiomegaly_calib_counts.csv'), 'utf8')).toBe(
      'age_bin,Pred. Count,Pred. Percentage,fpr_lower,fpr_upper\n"[18, 25)",0,0.0,0.0,0.0\n"[25, 40)",11,9.24,4.2017,14.2857\n' +
        '"[40, 60)",20,19.23,11.5385,26.9231\n"[60, 80)",9,31.03,13.7931,44.8276\n',
    );
  });

  test('a second run is all cache hits; a bootstrap param re-runs the FPR stage, not the threshold', () => {
    const again = pipe(ws, ['run', 'pipelines/paper.yaml', TARGET]);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/2 up-to-date/);
    const status = pipe(ws, ['status', 'pipelines/paper.yaml', TARGET, '-S', 'bootstrap.seed=7']);
    expect(status.out).toMatch(new RegExp(`${TARGET.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: stale`));
    expect(status.out).toMatch(/param bootstrap\.seed: 42 → 7/);
    expect(status.out).not.toMatch(/eval-threshold@vindr_cxr: stale/);
    const changed = pipe(ws, ['run', 'pipelines/paper.yaml', TARGET, '-S', 'bootstrap.seed=7']);
    expect(changed.code, changed.out).toBe(0);
    const fpr = JSON.parse(readFileSync(join(ws, 'out/eval/fpr/vindr_cxr/vindr_cxr.json'), 'utf8'));
    expect(fpr.bootstrap.seed).toBe(7);
    expect(fpr.fpr).toBe(15.04);
  });
});
