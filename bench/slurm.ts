// bench/slurm.ts — pipe's overhead on SLURM: 100 short jobs through `pipe run` (executor: slurm) against a plain
// loop of `sbatch --wait`, on the real single-node cluster of test/slurm/start-cluster.sh.
//   npm run bench -- slurm [--jobs 100]
// Prints: BENCH slurm_pipe_100_jobs <s> s, BENCH slurm_sbatch_wait_loop_100_jobs <s> s, vs sbatch_wait_loop <ratio>
// (ratio = baseline time / pipe time: above 1 means pipe finishes the same jobs sooner), plus the executor's
// squeue calls per poll measured on the same job set through the executor API.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlurmExecutor } from '../engine/executors/slurm.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const jobsArg = process.argv.indexOf('--jobs');
const N = jobsArg > 0 ? Number(process.argv[jobsArg + 1]) : 100;

execFileSync('bash', [join(root, 'test/slurm/start-cluster.sh')], { stdio: 'inherit' });

function pipeline(dir: string): string {
  const items = Array.from({ length: N }, (_, i) => i);
  const yaml = [
    'name: slurm-bench',
    'settings: {executor: slurm}',
    `vars: {items: [${items.join(', ')}]}`,
    'stages:',
    '  job:',
    '    foreach: ${vars.items}',
    '    do:',
    '      cmd: echo ${item} > out/${item}.txt',
    '      outs:',
    '        - out/${item}.txt',
    '      resources: {cpus: 1, mem: 64M}',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'pipeline.yaml'), yaml);
  return join(dir, 'pipeline.yaml');
}

function timeIt(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

// pipe: the full CLI, first run (everything submitted, nothing cached).
const ws = mkdtempSync(join(tmpdir(), 'pipe-bench-slurm-'));
const file = pipeline(ws);
const pipeSeconds = timeIt(() => {
  const r = spawnSync(process.execPath, [join(root, 'bin/pipe.js'), 'run', file], { cwd: ws, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    throw new Error('pipe run failed');
  }
});

// Baseline: the loop a researcher writes by hand.
const base = mkdtempSync(join(tmpdir(), 'pipe-bench-sbatch-'));
mkdirSync(join(base, 'out'));
const baseSeconds = timeIt(() => {
  for (let i = 0; i < N; i++) {
    execFileSync('sbatch', ['--wait', '--quiet', `--chdir=${base}`, '--mem=64M', `--output=${join(base, `slurm-${i}.out`)}`, `--wrap=echo ${i} > out/${i}.txt`]);
  }
});

console.log(`BENCH slurm_pipe_${N}_jobs ${pipeSeconds.toFixed(2)} s`);
console.log(`BENCH slurm_sbatch_wait_loop_${N}_jobs ${baseSeconds.toFixed(2)} s`);
console.log(`vs sbatch_wait_loop ${(baseSeconds / pipeSeconds).toFixed(2)}`);

// Status queries per poll, through the executor API on the same number of jobs (one group each, so no arrays).
const exWs = mkdtempSync(join(tmpdir(), 'pipe-bench-slurm-ex-'));
const ex = new SlurmExecutor({ stateDir: join(exWs, '.pipe/slurm'), arrayWindowMs: 0 });
const signal = new AbortController().signal;
await Promise.all(
  Array.from({ length: N }, (_, i) =>
    ex.run(
      {
        id: `j${i}`, stage: `job@${i}`, group: `job${i}`, key: `bench-${Date.now()}-${i}`, argv: ['sh', '-c', `echo ${i}`], cwd: exWs, env: {},
        resources: { cpus: 1, memBytes: 64 * 1024 * 1024, gpus: 0 }, gpuIds: [], logFile: join(exWs, `log-${i}.txt`), slurm: {},
      },
      { signal },
    ),
  ),
);
await ex.close();
console.log(`BENCH slurm_squeue_calls_per_poll ${(ex.stats.squeueCalls / ex.stats.polls).toFixed(2)} calls`);
console.log(`BENCH slurm_polls_for_${N}_jobs ${ex.stats.polls} polls`);

for (const d of [ws, base, exWs]) rmSync(d, { recursive: true, force: true });
