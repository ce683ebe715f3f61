/**
 * Evaluation benchmarks (`npm run bench -- eval`):
 *  - bootstrap_n5816_r12000: one BCa interval, VinDr-CXR model on the 5,816 VinDr-PCXR children (target < 1 s);
 *    baseline: the same computation the way arch does it (numpy, one resample per loop turn), when python3+numpy exist;
 *  - bootstrap_all: every BCa interval of the paper (4 models × 5 evaluation sets, overall + per bin), inputs preloaded;
 *  - bootstrap_all_hm: the same for the 16 histogram-matching runs;
 *  - eval_from_scratch: the whole evaluation fragment (thresholds, 20 fpr, 16 hm, summary) into an empty workspace,
 *    stage by stage in this process;
 *  - eval_pipeline_from_scratch / eval_pipeline_noop: `pipe run` of pipelines/paper/evaluate.yaml (with its 5 figures)
 *    in a fresh workspace through the real engine (needs `npm run build`), then the all-cache-hits second run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bcaInterval } from '../stages/evaluate/lib/bootstrap.js';
import { filterPredictions, type EvalRows } from '../stages/evaluate/lib/filters.js';
import { evaluateFpr, predictPositive } from '../stages/evaluate/lib/fpr.js';
import { loadPredictions, resolvePredictionsFile } from '../stages/evaluate/lib/predictions.js';
import { youdenThreshold } from '../stages/evaluate/lib/threshold.js';
import { EVAL_SETS, HM_RATIOS, MODELS, REPO, fragmentWorkspace, fullRun, makeWorkspace } from '../test/evaluate/full-run.js';

const ROOT = join(REPO, 'data/seed/predictions');
const BOOT = { resamples: 12000, seed: 42, confidence: 0.95 };
const exp = (m: string, hm = '') => join(ROOT, hm ? `hm-${hm}` : '', `exp_cardiomegaly-${m}-mixup-imb_sampler`);
const load = (dir: string, split: string): EvalRows => filterPredictions(loadPredictions(resolvePredictionsFile(dir, split)));
const threshold = (m: string, hm = '') => {
  const c = load(join(exp(m, hm), m), 'test_adult_calib');
  return youdenThreshold(c.score, c.label).threshold;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = (f: () => void) => {
  const t = performance.now();
  f();
  return performance.now() - t;
};

// 1. One interval, n = 5,816.
const children = load(join(exp('vindr_cxr'), 'vindr_pcxr'), 'test');
const pred = predictPositive(children, threshold('vindr_cxr'));
bcaInterval(pred, BOOT); // warm-up (wasm compile)
const cpuMs = (f: () => void) => {
  const c = process.cpuUsage();
  f();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1000;
};
const oneMs = median([0, 1, 2].map(() => time(() => bcaInterval(pred, BOOT))));
console.log(`BENCH bootstrap_n5816_r12000 ${oneMs.toFixed(1)} ms`);
// CPU time of this process: what the figure would be on an idle core when other jobs share the machine.
console.log(`BENCH bootstrap_n5816_r12000_cpu ${median([0, 1, 2].map(() => cpuMs(() => bcaInterval(pred, BOOT)))).toFixed(1)} ms`);

const py = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
if (py.status === 0) {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-eval-'));
  writeFileSync(join(dir, 'pred.txt'), Array.from(pred).join('\n'));
  // arch's IIDBootstrap: a Python loop over resamples, each drawing n indices and applying the statistic.
  const script = `
import numpy as np, time
x = 100.0 * np.loadtxt(${JSON.stringify(join(dir, 'pred.txt'))})
n = len(x); t = time.perf_counter(); g = np.random.default_rng(42)
res = np.empty(12000)
for r in range(12000):
    res[r] = np.mean(x[g.integers(n, size=n)])
print((time.perf_counter() - t) * 1000)`;
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  const baseMs = Number(r.stdout.trim());
  if (r.status === 0 && Number.isFinite(baseMs)) console.log(`vs numpy_resample_loop ${(baseMs / oneMs).toFixed(2)}`);
}

// 2. Every interval of the paper, inputs preloaded.
const jobs: Array<{ rows: EvalRows; t: number }> = [];
const hmJobs: Array<{ rows: EvalRows; t: number }> = [];
for (const m of MODELS) {
  const t = threshold(m);
  for (const e of EVAL_SETS) jobs.push({ rows: load(join(exp(m), e), e === 'vindr_pcxr' ? 'test' : 'test_healthy_adult'), t });
  for (const r of HM_RATIOS) hmJobs.push({ rows: load(join(exp(m, r), 'vindr_pcxr'), 'test'), t: threshold(m, r) });
}
let intervals = 0;
let allCpu = 0;
const allMs = time(() => {
  allCpu = cpuMs(() => {
    for (const j of jobs) intervals += 1 + evaluateFpr(j.rows, j.t, BOOT).bins.length;
  });
});
console.log(`BENCH bootstrap_all ${allMs.toFixed(0)} ms (${intervals} intervals, ${jobs.length} model × set pairs)`);
console.log(`BENCH bootstrap_all_cpu ${allCpu.toFixed(0)} ms`);
const hmMs = time(() => {
  for (const j of hmJobs) evaluateFpr(j.rows, j.t, BOOT);
});
console.log(`BENCH bootstrap_all_hm ${hmMs.toFixed(0)} ms (${hmJobs.length} model × ratio runs)`);

// 3. The whole evaluation from scratch, stage by stage in one process.
const ws = makeWorkspace(mkdtempSync(join(tmpdir(), 'pipe-bench-eval-ws-')));
const t0 = performance.now();
await fullRun(ws, { resamples: 12000 });
console.log(`BENCH eval_from_scratch ${(performance.now() - t0).toFixed(0)} ms (4 threshold + 20 fpr + 16 hm + summary stages)`);
rmSync(ws, { recursive: true, force: true });

// 4. The fragment through the real engine.
const cli = join(REPO, 'bin/pipe.js');
if (existsSync(join(REPO, 'dist/engine/cli.js'))) {
  const pws = fragmentWorkspace(mkdtempSync(join(tmpdir(), 'pipe-bench-eval-pipe-')));
  const runPipe = () => {
    const t = performance.now();
    const r = spawnSync(process.execPath, [cli, 'run', 'pipelines/paper.yaml'], { cwd: pws, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    if (r.status !== 0) throw new Error(`pipe run failed:\n${r.stdout}${r.stderr}`);
    return performance.now() - t;
  };
  console.log(`BENCH eval_pipeline_from_scratch ${runPipe().toFixed(0)} ms (46 stages incl. 5 figures, pipe run)`);
  console.log(`BENCH eval_pipeline_noop ${runPipe().toFixed(0)} ms`);
  rmSync(pws, { recursive: true, force: true });
} else {
  console.log('(eval_pipeline_* skipped: run `npm run build` first)');
}
