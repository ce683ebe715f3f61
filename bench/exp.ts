/**
 * Experiments (`npm run bench -- exp`, needs `npm run build`): a 4-variant sweep of a pipeline whose upstream stage
 * (1.5 s) is common to every variant and whose per-variant stage takes 0.5 s.
 *  - exp_sweep_4: `pipe exp run` in a fresh workspace (the common stage once, the variants in parallel, -j 2);
 *    baseline: what a user without `pipe exp` does to keep the workspace's outputs: one copy of the workspace per
 *    variant, each with its own cache, `pipe run -S scale=…` in turn (the common stage 4 times);
 *  - exp_sweep_4_again: the same sweep once more (every stage restores from the shared cache);
 *  - exp_show_4: `pipe exp show` of the workspace and the 4 variants.
 * Target (2 cores): the sweep well under the copies' time (ratio > 2); the cached sweep a fraction of the fresh one.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pipeBin = fileURLToPath(new URL('../bin/pipe.js', import.meta.url));
const env = { ...process.env, CI: 'true', NO_COLOR: '1' };
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

function timed(cwd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [pipeBin, ...args], { cwd, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pipe ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const line = (figure: string, s: number, baseline?: { name: string; s: number }) =>
  console.log(`BENCH ${figure} ${s.toFixed(3)} s${baseline ? ` vs ${baseline.name} ${(baseline.s / s).toFixed(2)}` : ''}`);

const dirs: string[] = [];
try {
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
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
