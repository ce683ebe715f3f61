// SlurmExecutor against a real single-node SLURM (test/slurm/start-cluster.sh): every verdict below comes from
// real sbatch/squeue/scontrol/scancel and real processes killed by slurmstepd.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, JobHooks, JobResult } from '../../engine/executors/executor.js';
import { runWithRetries } from '../../engine/executors/retry.js';
import { SlurmExecutor, cancelWorkspaceJobs } from '../../engine/executors/slurm.js';
import { Gates, until } from '../support/gate.js';
import { hasSlurm, queuedIds, requireSlurm, setNodeState, startCluster } from './cluster.js';

const MB = 1024 * 1024;
let ws: string;
let gates: Gates;
let n = 0;

function job(stage: string, script: string, over: Partial<Job> = {}): Job {
  n++;
  return {
    id: `${stage.replace(/[^a-z0-9]/gi, '_')}-${n}`,
    stage,
    group: over.group ?? stage,
    key: over.key ?? `key-${stage}-${n}-${Date.now()}`,
    argv: ['sh', '-c', script],
    cwd: ws,
    env: { PIPE_TEST_VALUE: 'it works; really' },
    resources: { cpus: 1, memBytes: 200 * MB, gpus: 0 },
    gpuIds: [],
    logFile: join(ws, '.pipe', 'logs', `${stage}-${n}.log`),
    slurm: {},
    ...over,
  };
}

function hooks(extra: Partial<JobHooks> = {}): JobHooks & { states: string[]; output: string[] } {
  const states: string[] = [];
  const output: string[] = [];
  return {
    signal: new AbortController().signal,
    onState: (s) => states.push(s),
    onOutput: (c) => output.push(c),
    ...extra,
    states,
    output,
  };
}

function executor(): SlurmExecutor {
  return new SlurmExecutor({ stateDir: join(ws, '.pipe', 'slurm'), pollMinMs: 100, pollMaxMs: 1000, arrayWindowMs: 150 });
}

const run = hasSlurm || requireSlurm ? describe : describe.skip;

run('SlurmExecutor on a real cluster', () => {
  beforeAll(() => {
    startCluster();
    ws = mkdtempSync(join(tmpdir(), 'pipe-slurm-'));
    gates = new Gates(join(ws, '.gates'));
  });
  afterAll(() => {
    gates.openAll();
    rmSync(ws, { recursive: true, force: true });
  });

  it('runs a job to success, with its env and output in the log', async () => {
    const ex = executor();
    const h = hooks();
    const j = job('ok', 'echo "value=$PIPE_TEST_VALUE"; echo done');
    const r = await ex.run(j, h);
    await ex.close();
    expect(r.status).toBe('succeeded');
    expect(r.jobId).toMatch(/^\d+$/);
    const log = readFileSync(j.logFile, 'utf8');
    expect(log).toContain('value=it works; really');
    expect(h.output.join('')).toContain('done');
    expect(h.states.some((s) => s.startsWith('submitted as SLURM job'))).toBe(true);
  });

  it('reports a non-zero exit code in plain words', async () => {
    const ex = executor();
    const r = await ex.run(job('fails', 'echo about to fail >&2; exit 3'), hooks());
    await ex.close();
    expect(r).toMatchObject({ status: 'failed', failure: 'exit', exitCode: 3, reason: 'exit code 3' });
  });

  it('cancels a running job with scancel when aborted', async () => {
    const ex = executor();
    const ac = new AbortController();
    let started = false;
    const h = hooks({ signal: ac.signal, onStart: () => { started = true; ac.abort(); } });
    const j = job('cancel-me', 'sleep 120');
    const r = await ex.run(j, h);
    await ex.close();
    expect(started).toBe(true);
    expect(r.status).toBe('cancelled');
    expect(queuedIds()).not.toContain(r.jobId);
  });

  it('tells an out-of-memory kill apart from a failure', async () => {
    const ex = executor();
    const script = `python3 -c "
import time
a = bytearray(600*1024*1024)
for i in range(0, len(a), 4096): a[i] = 1
time.sleep(20)
"`;
    const r = await ex.run(job('oom', script, { resources: { cpus: 1, memBytes: 100 * MB, gpus: 0 } }), hooks());
    await ex.close();
    expect(r.status).toBe('failed');
    expect(r.failure).toBe('oom');
    expect(r.reason).toBe('out of memory (limit 100M)');
  });

  it('retries an out-of-memory failure with escalated memory', async () => {
    const ex = executor();
    const script = `python3 -c "
import time
a = bytearray(300*1024*1024)
for i in range(0, len(a), 4096): a[i] = 1
time.sleep(4)
print('allocated')
"`;
    const retried: number[] = [];
    const r = await runWithRetries(ex, job('oom-retry', script, { resources: { cpus: 1, memBytes: 100 * MB, gpus: 0 } }), { count: 2, memFactor: 8 }, hooks(), (a) => retried.push(a.job.resources.memBytes));
    await ex.close();
    expect(r.status).toBe('succeeded');
    expect(r.attempts.map((a) => a.result.failure ?? 'ok')).toEqual(['oom', 'ok']);
    expect(retried).toEqual([800 * MB]);
  });

  it('reports a node failure, not a job failure', async () => {
    const ex = executor();
    const ac = new AbortController();
    // The node goes down while the job is running (it said so), and the job's gate is never opened.
    const h = hooks({ signal: ac.signal, onStart: () => void gates.whenStarted('node-fail').then(() => setNodeState('down', 'pipe node-failure test')) });
    try {
      const r = await ex.run(job('node-fail', gates.cmd('node-fail')), h);
      expect(r.status).toBe('failed');
      expect(r.failure).toBe('node_fail');
      expect(r.reason).toMatch(/^node failure/);
    } finally {
      setNodeState('resume');
      await ex.close();
    }
  });

  it('groups jobs of one declaration with equal resources into one job array', async () => {
    const ex = executor();
    const jobs = [0, 1, 2].map((i) => job('train@x', `echo task ${i}; exit ${i === 2 ? 5 : 0}`, { group: 'train', key: `arr-${i}-${Date.now()}` }));
    const results = await Promise.all(jobs.map((j) => ex.run(j, hooks())));
    await ex.close();
    expect(ex.stats.sbatchCalls).toBe(1);
    const base = results[0]!.jobId!.split('_')[0];
    // One array, one task per job (task order follows arrival, which async work may permute).
    expect(results.map((r) => r.jobId).sort()).toEqual([`${base}_0`, `${base}_1`, `${base}_2`]);
    expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'failed']);
    expect(results[2]!.reason).toBe('exit code 5');
    expect(readFileSync(jobs[1]!.logFile, 'utf8')).toContain('task 1');
  });

  it('polls with one squeue call for all jobs', async () => {
    const ex = executor();
    const jobs = Array.from({ length: 6 }, (_, i) => job(`poll${i}`, gates.cmd(`poll${i}`), { group: `g${i}`, resources: { cpus: 1, memBytes: 50 * MB, gpus: 0 } }));
    const pending = Promise.all(jobs.map((j) => ex.run(j, hooks())));
    // The jobs end only after the executor polled at least twice while they were all in the queue.
    await until(() => ex.stats.polls >= 2, 'two polls');
    gates.open(...jobs.map((_, i) => `poll${i}`));
    const results = await pending;
    await ex.close();
    expect(results.every((r) => r.status === 'succeeded')).toBe(true);
    expect(ex.stats.polls).toBeGreaterThan(1);
    expect(ex.stats.squeueCalls).toBe(ex.stats.polls);
  });

  it('gives each GPU job its own device through --gres', async () => {
    const ex = executor();
    const jobs = [0, 1].map((i) => job(`gpu${i}`, gates.cmd(`gpu${i}`, 'echo "gpu=$CUDA_VISIBLE_DEVICES"'), { group: `gpu${i}`, resources: { cpus: 1, memBytes: 50 * MB, gpus: 1 } }));
    const pending = Promise.all(jobs.map((j) => ex.run(j, hooks())));
    // Both hold their device at the same time before either ends.
    await gates.whenStarted('gpu0');
    await gates.whenStarted('gpu1');
    gates.open('gpu0', 'gpu1');
    const results = await pending;
    await ex.close();
    expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    const ids = jobs.map((j) => /gpu=(\S+)/.exec(readFileSync(j.logFile, 'utf8'))?.[1]);
    expect(ids.every((id) => id === '0' || id === '1')).toBe(true);
    expect(new Set(ids).size).toBe(2);
  });

  it('reattaches to a job submitted by an earlier process instead of submitting it again', async () => {
    const first = executor();
    const j = job('reattach', gates.cmd('reattach', 'echo finished-once'));
    const h1 = hooks();
    const abandoned = first.run(j, h1);
    // Once it is submitted (and in the registry), drop the executor as if pipe had been killed.
    await until(() => h1.states.some((s) => s.startsWith('submitted as SLURM job')), 'the job to be submitted');
    await first.close();
    void abandoned;
    const second = executor();
    const h = hooks();
    const again = second.run({ ...j, id: `${j.id}-again` }, h);
    gates.open('reattach');
    const r: JobResult = await again;
    await second.close();
    expect(second.stats.sbatchCalls).toBe(0);
    expect(h.states.some((s) => s.startsWith('reattached to SLURM job') || s.startsWith('collected SLURM job'))).toBe(true);
    expect(r.status).toBe('succeeded');
    expect(readFileSync(j.logFile, 'utf8').match(/finished-once/g)).toHaveLength(1);
  });

  it('pipe cancel: scancels every job this workspace submitted', async () => {
    const ex = executor();
    const hs = [hooks(), hooks()];
    const results = [0, 1].map((i) => ex.run(job(`bg${i}`, gates.cmd(`bg${i}`), { group: `bg${i}` }), hs[i]!));
    // Both submitted and in the registry: what `pipe cancel` reads.
    await until(() => hs.every((h) => h.states.some((s) => s.startsWith('submitted as SLURM job'))), 'both jobs to be submitted');
    const cancelled = await cancelWorkspaceJobs(join(ws, '.pipe', 'slurm'));
    expect(cancelled).toHaveLength(2);
    const rs = await Promise.all(results);
    await ex.close();
    // Cancelled by another pipe process, not by this one: a failure that says so.
    expect(rs.map((r) => r.failure)).toEqual(['cancelled', 'cancelled']);
    expect(rs[0]!.reason).toMatch(/cancelled outside pipe/);
  });

  it('kills a job at its time limit and says so', async () => {
    const ex = executor();
    const r = await ex.run(job('timeout', 'sleep 300', { resources: { cpus: 1, memBytes: 50 * MB, gpus: 0, timeSec: 60 } }), hooks());
    await ex.close();
    expect(r.status).toBe('failed');
    expect(r.failure).toBe('timeout');
    expect(r.reason).toMatch(/^time limit/);
  }, 240_000);
});
