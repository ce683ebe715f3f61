// `pipe exp run` with `executor: slurm` on the real single-node cluster (issue 13): each variant's stage is a SLURM
// job run in that variant's scratch workspace, the common local stage runs once, a failing job fails only its
// variant, and the workspace's own files are untouched.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runPipe, workspace, type Ws } from '../engine/helpers.js';
import { snapshot } from '../exp/helpers.js';
import { hasSlurm, requireSlurm, startCluster } from './cluster.js';

const run = hasSlurm || requireSlurm ? describe : describe.skip;

interface Rec {
  name: string;
  status: string;
  reason?: string;
  root: string;
  stages: Record<string, { status: string }>;
  metrics: Record<string, Record<string, unknown>>;
}

run('pipe exp run on SLURM', () => {
  let ws: Ws | undefined;
  beforeAll(() => startCluster());
  afterEach(() => ws?.cleanup());

  it('runs each variant\'s slurm stage as a job in its own scratch workspace; one failing job fails only its variant', async () => {
    const tag = `x${Date.now()}`;
    ws = workspace({
      'in.txt': '3\n4\n',
      // The score, and the id of the SLURM job that computed it; scale 0 fails.
      'score.sh': 'test "$1" -ne 0 || exit 1\nawk -v s="$1" -v j="$SLURM_JOB_ID" \'{t+=$1*s} END {printf "{\\"score\\": %d, \\"job\\": %d}\\n", t, j}\' prepared.txt > metrics.json\n',
      'p.yaml': [
        'name: exp-on-slurm',
        'params: {scale: 1}',
        'experiments:',
        '  sweep:',
        '    grid: {scale: [2, 5, 0]}',
        'stages:',
        '  prep:',
        '    cmd: sort -n in.txt > prepared.txt',
        '    deps: [in.txt]',
        '    outs: [prepared.txt]',
        `  ${tag}:`,
        '    executor: slurm',
        '    cmd: sh score.sh ${params.scale}',
        '    deps: [prepared.txt, score.sh]',
        '    outs: [{path: metrics.json, metric: true}]',
        '    resources: {cpus: 1, mem: 64M}',
        '',
      ].join('\n'),
    });
    const base = await runPipe(ws.dir, ['run', 'p.yaml']);
    expect(base.code, base.stdout + base.stderr).toBe(0);
    const before = snapshot(ws.dir, ['.pipe']);

    const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(1); // scale 0 fails its job
    const end = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; variants?: Rec[] }).find((e) => e.type === 'exp-end')!;
    expect(end.variants!.map((v) => v.status).sort()).toEqual(['failed', 'ok', 'ok']);

    const dir = join(ws.dir, '.pipe/exp');
    const show = await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--json']);
    expect(show.code, show.stderr).toBe(0);
    const rows = (JSON.parse(show.stdout) as { rows: Array<{ name: string; status: string; params: Record<string, unknown>; metrics: Record<string, unknown> }> }).rows;
    expect(rows.map((x) => [x.params.scale, x.status, x.metrics.score])).toEqual([
      [1, 'workspace', 7],
      [2, 'ok', 14],
      [5, 'ok', 35],
      [0, 'failed', undefined],
    ]);
    // Each ok variant's score came from a SLURM job (its id recorded by the job itself), a different job each.
    const jobs = rows.filter((x) => x.status === 'ok').map((x) => x.metrics.job as number);
    expect(jobs.every((j) => Number.isInteger(j) && j > 0)).toBe(true);
    expect(new Set(jobs).size).toBe(2);
    const failed = rows.find((x) => x.status === 'failed')!;
    const rec = JSON.parse(readFileSync(join(dir, readdirOne(dir), `${failed.name}.json`), 'utf8')) as Rec;
    expect(rec.reason).toMatch(new RegExp(`stage ${tag} failed: .*exit code 1`));
    // The workspace's own files (its metrics.json from the baseline run included) are as they were.
    expect(snapshot(ws.dir, ['.pipe'])).toEqual(before);
    expect(JSON.parse(ws.read('metrics.json')).score).toBe(7);
  });
});

function readdirOne(dir: string): string {
  const subs = readdirSync(dir).filter((f) => f !== 'lock');
  expect(subs).toHaveLength(1);
  return subs[0]!;
}
