/**
 * Experiments (`npm run bench -- exp`, needs `npm run build`): a 4-variant sweep of a pipeline whose upstream stage
 * (1.5 s) is common to every variant and whose per-variant stage takes 0.5 s.
 *  - exp_sweep_4: `pipe exp run` in a fresh workspace (the common stage once, the variants in parallel, -j 2);
 *    baseline: what a user without `pipe exp` does to keep the workspace's outputs: one copy of the workspace per
 *    variant, each with its own cache, `pipe run -S scale=…` in turn (the common stage 4 times);
 *  - exp_sweep_4_again: the same sweep once more (every stage restores from the shared cache);
 *  - exp_show_4: `pipe exp show` of the workspace and the 4 variants;
 *  - exp_dry_run_1000_variants: `pipe exp run -n` of a 40 × 25 grid over a 46-stage pipeline (two included
 *    fragments, a params file, foreach and matrix stages, params in commands): every variant is loaded and validated
 *    as a whole pipeline, nothing runs. A `#` line before it gives one `pipe run -n` of the same pipeline (the cost
 *    of one load and plan) for reference.
 * Target (2 cores): the sweep well under the copies' time (ratio > 2); the cached sweep a fraction of the fresh one.
 *
 * `npm run bench -- exp --only FIGURE` runs just that figure (and its reference line).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pipeBin = fileURLToPath(new URL('../bin/pipe.js', import.meta.url));
const env = { ...process.env, CI: 'true', NO_COLOR: '1' };
const argv = process.argv.slice(2);
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const wanted = (figure: string): boolean => only === undefined || only === figure;
const SCALES = [2, 3, 4, 5];
const PIPELINE = `name: bench-exp
params: {scale: 1}
experiments:
  sweep:
    grid: {scale: [${SCALES.join(', ')}]}
stages:
  prep:
    cmd: sleep 1.5; seq 1 1000 > prep.txt
    deps: [in.txt]
    outs: [prep.txt]
  train:
    cmd: |
      sleep 0.5; awk -v s=\${params.scale} '{t+=$1*s} END {print "{\\"score\\": " t "}"}' prep.txt > metrics.json
    deps: [prep.txt]
    metrics: [metrics.json]
    resources: {cpus: 1}
`;

function fresh(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-exp-'));
  writeFileSync(join(dir, 'p.yaml'), PIPELINE);
  writeFileSync(join(dir, 'in.txt'), 'x\n');
  return dir;
}

function timed(cwd: string, args: string[], extraEnv: Record<string, string> = {}): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [pipeBin, ...args], { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`pipe ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const line = (figure: string, s: number, baseline?: { name: string; s: number }) =>
  console.log(`BENCH ${figure} ${s.toFixed(3)} s${baseline ? ` vs ${baseline.name} ${(baseline.s / s).toFixed(2)}` : ''}`);

/**
 * A pipeline of realistic size for the dry-run figure: 46 stages over a main file, two included fragments and a
 * params file; foreach and matrix stages; params in commands, paths and vars. The experiment `grid` crosses two
 * params the training stages use: 40 × 25 = 1,000 variants.
 */
function bigPipeline(dir: string): void {
  const lrs = Array.from({ length: 40 }, (_, i) => (0.0001 * (i + 1)).toFixed(4));
  const epochs = Array.from({ length: 25 }, (_, i) => i + 1);
  mkdirSync(join(dir, 'parts'));
  mkdirSync(join(dir, 'data'));
  for (const d of ['a', 'b', 'c', 'd']) writeFileSync(join(dir, 'data', `${d}.csv`), `${d}\n`);
  writeFileSync(join(dir, 'defaults.params.yaml'), 'prep: {size: 64, norm: true}\nreport: {title: sweep}\n');
  writeFileSync(
    join(dir, 'p.yaml'),
    `name: bench-exp-big
params:
  train: {lr: 0.001, epochs: 5, batch: 32, arch: small}
  eval: {threshold: 0.5}
params_files: [defaults.params.yaml]
vars:
  datasets: [a, b, c, d]
  seeds: [1, 2, 3]
  root: out/\${params.train.arch}
include: [parts/train.yaml, parts/report.yaml]
experiments:
  grid:
    grid:
      train.lr: [${lrs.join(', ')}]
      train.epochs: [${epochs.join(', ')}]
stages:
  prep:
    foreach: \${vars.datasets}
    do:
      cmd: echo \${params.prep.size} \${params.prep.norm} > out/prep/\${item}.txt; cat data/\${item}.csv >> out/prep/\${item}.txt
      deps: [data/\${item}.csv]
      outs: [out/prep/\${item}.txt]
`,
  );
  writeFileSync(
    join(dir, 'parts', 'train.yaml'),
    `stages:
  train:
    matrix:
      data: \${vars.datasets}
      seed: \${vars.seeds}
    do:
      cmd: echo lr=\${params.train.lr} epochs=\${params.train.epochs} batch=\${params.train.batch} seed=\${item.seed} > \${vars.root}/model-\${item.data}-\${item.seed}.txt
      deps: [out/prep/\${item.data}.txt]
      outs: [\${vars.root}/model-\${item.data}-\${item.seed}.txt]
      resources: {cpus: 1, mem: 1G}
  eval:
    matrix:
      data: \${vars.datasets}
      seed: \${vars.seeds}
    do:
      cmd: "echo fpr=\${params.eval.threshold} > out/eval/\${item.data}-\${item.seed}.json"
      deps: [\${vars.root}/model-\${item.data}-\${item.seed}.txt]
      metrics: [out/eval/\${item.data}-\${item.seed}.json]
`,
  );
  const steps = Array.from({ length: 17 }, (_, i) => i);
  writeFileSync(
    join(dir, 'parts', 'report.yaml'),
    `stages:
${steps
  .map(
    (i) => `  step${i}:
    cmd: echo \${params.report.title} \${params.train.lr} ${i} > out/steps/${i}.txt${i ? `; cat out/steps/${i - 1}.txt >> out/steps/${i}.txt` : ''}
    deps: [${i ? `out/steps/${i - 1}.txt` : 'out/eval/a-1.json'}]
    outs: [out/steps/${i}.txt]
    env: {STEP: "${i}"}`,
  )
  .join('\n')}
  report:
    cmd: cat out/steps/16.txt > out/report.txt
    deps: [out/steps/16.txt]
    outs: [out/report.txt]
`,
  );
}

const dirs: string[] = [];
try {
  if (wanted('exp_dry_run_1000_variants')) {
    const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-exp-big-'));
    dirs.push(dir);
    bigPipeline(dir);
    // Its own validated-pipeline cache: the reference `run -n` is a miss, as each variant's load is.
    const home = { PIPE_CACHE_HOME: join(dir, '.cache-home') };
    console.log(`# pipe run -n of the same pipeline (46 stages, one load): ${timed(dir, ['run', 'p.yaml', '-n'], home).toFixed(3)} s`);
    line('exp_dry_run_1000_variants', timed(dir, ['exp', 'run', 'p.yaml', 'grid', '-n'], home));
  }
  // The three sweep figures build on each other: naming one runs them all.
  if (['exp_sweep_4', 'exp_sweep_4_again', 'exp_show_4'].some(wanted)) {
    // Baseline: one workspace copy per variant, each its own cache, run in turn.
    const template = fresh();
    dirs.push(template);
    let copies = 0;
    for (const s of SCALES) {
      const copy = mkdtempSync(join(tmpdir(), 'pipe-bench-exp-copy-'));
      dirs.push(copy);
      cpSync(template, copy, { recursive: true });
      copies += timed(copy, ['run', 'p.yaml', '-S', `scale=${s}`, '-j', '2']);
    }

    const ws = fresh();
    dirs.push(ws);
    timed(ws, ['run', 'p.yaml', '-j', '2']); // the workspace's own baseline (scale 1): not timed
    writeFileSync(join(ws, 'in.txt'), 'y\n'); // a new input: the sweep must run the common stage (once)
    line('exp_sweep_4', timed(ws, ['exp', 'run', 'p.yaml', 'sweep', '-j', '2']), { name: 'copies_sequential', s: copies });
    line('exp_sweep_4_again', timed(ws, ['exp', 'run', 'p.yaml', 'sweep', '-j', '2']));
    line('exp_show_4', timed(ws, ['exp', 'show', 'p.yaml']));
  }
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
