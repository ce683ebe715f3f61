// Commit: what a stage's end leaves behind (outputs removed on any failure; stored, recorded, indexed on success).
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Committer } from '../../../engine/run/commit.js';
import { computeKey, DepMemo } from '../../../engine/plan.js';
import type { Job, JobResult } from '../../../engine/executors/executor.js';
import { lockPath } from '../../../engine/lockfile.js';
import { fixture, type Fixture } from './fixture.js';

let f: Fixture;
afterEach(() => f?.cleanup());

const yaml = 'name: c\nstages:\n  a:\n    cmd: cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n';
const ok: JobResult = { status: 'succeeded', exitCode: 0, signal: null, reason: 'exit code 0', startedAt: 1_000, endedAt: 2_000, host: 'h' };
const none = () => ({ extra: {}, execution: {} });
const job = (id: string): Job => ({ id, stage: 'a', group: 'a', key: 'k', argv: [], cwd: '/', env: {}, resources: { cpus: 1, memBytes: 1, gpus: 0 }, gpuIds: [], logFile: '/dev/null', slurm: {} });

async function setup(): Promise<{ commit: Committer }> {
  f = await fixture(yaml, { 'in.txt': 'input\n', 'out/a.txt': 'stale\n' });
  return { commit: new Committer(f.pipeline, f.ws, new DepMemo(f.ws), 'test') };
}

describe('Committer', () => {
  it('prepare deletes a stale output and creates its folder', async () => {
    const { commit } = await setup();
    f.write('out/a.txt', 'stale\n');
    commit.prepare(f.stage('a'));
    expect(f.exists('out/a.txt')).toBe(false);
    expect(existsSync(join(f.dir, 'out'))).toBe(true);
  });

  it('a failed or cancelled job: outputs removed, nothing recorded', async () => {
    const { commit } = await setup();
    const a = f.stage('a');
    const info = await computeKey(a, f.ws);
    const v = await commit.ran(a, info, job('j'), { ...ok, status: 'failed', exitCode: 3, failure: 'exit', reason: 'exit code 3' }, none(), 'local', false);
    expect(v).toEqual({ status: 'failed', code: 'exit-non-zero', reason: 'exit code 3' });
    expect(f.exists('out/a.txt')).toBe(false);
    const oom = await commit.ran(a, info, job('j'), { ...ok, status: 'failed', exitCode: null, failure: 'oom', reason: 'out of memory (limit 1G)' }, none(), 'local', false);
    expect(oom).toEqual({ status: 'failed', code: 'out-of-memory', reason: 'out of memory (limit 1G)' });
    f.write('out/a.txt', 'half\n');
    expect(await commit.ran(a, info, job('j'), ok, none(), 'local', true)).toEqual({ status: 'cancelled', code: 'cancelled', reason: 'cancelled' });
    expect(f.exists('out/a.txt')).toBe(false);
    expect(await f.ws.runs.get(info.key)).toBeUndefined();
  });

  it('a declared output not written, or a dep changed during the run, fails the stage', async () => {
    const { commit } = await setup();
    const a = f.stage('a');
    const info = await computeKey(a, f.ws);
    commit.prepare(a);
    expect(await commit.ran(a, info, job('j'), ok, none(), 'local', false)).toEqual({ status: 'failed', code: 'out-not-written', reason: 'stage a said it writes out/a.txt but did not' });
    f.write('out/a.txt', 'output\n');
    f.write('in.txt', 'edited during the run\n');
    const v = await commit.ran(a, info, job('j'), ok, none(), 'local', false);
    expect(v).toMatchObject({ status: 'failed', code: 'dep-changed-mid-run' });
    expect(f.exists('out/a.txt')).toBe(false);
  });

  it('success: stored, recorded, indexed, in the lock file; a deleted output is restored from the store', async () => {
    const { commit } = await setup();
    const a = f.stage('a');
    const info = await computeKey(a, f.ws);
    f.write('out/a.txt', 'output\n');
    const v = await commit.ran(a, info, job('j'), ok, { extra: { backend: 'wasm' }, execution: { seconds: 3 } }, 'local', false);
    expect(v.status).toBe('ran');
    const rec = await f.ws.runs.get(info.key);
    expect(rec).toMatchObject({ stage: 'a', executor: 'local', host: 'h', durationMs: 1000, extra: { backend: 'wasm' }, execution: { seconds: 3 } });
    expect(f.ws.index.get('a')?.key).toBe(info.key);
    await commit.persist();
    expect(readFileSync(lockPath(f.pipeline.file), 'utf8')).toContain(info.key);

    f.write('out/a.txt', 'clobbered\n');
    await commit.restore(a, info, rec!);
    expect(f.read('out/a.txt')).toBe('output\n');
  });
});
