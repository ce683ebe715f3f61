// Dispatch: the Job a stage becomes, and a real child run through the local executor, its output turned into events.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { buildJob, dispatch, lineSplitter, logTail, parseRunnerLine, retryState, type DispatchContext } from '../../../engine/run/dispatch.js';
import { LocalExecutor } from '../../../engine/executors/local.js';
import { computeKey } from '../../../engine/plan.js';
import type { RunnerSpec } from '../../../engine/runner.js';
import { fixture, recorder, type Fixture } from './fixture.js';

let f: Fixture;
afterEach(() => f?.cleanup());

function context(fx: Fixture, emit = recorder().emit, gpuIds: string[] = []): DispatchContext {
  return {
    pipeline: fx.pipeline,
    ws: fx.ws,
    machine: { jobs: 2, cpus: 2, memBytes: 1 << 30, gpuIds },
    pipeVersion: 'test',
    emit,
    signal: new AbortController().signal,
    upstreamOf: async () => [],
  };
}

describe('lines', () => {
  it('splits chunks into lines (CRLF too) and flushes the last one', () => {
    const got: string[] = [];
    const s = lineSplitter((l) => got.push(l));
    s.push('a\r\nb');
    s.push('c\nd');
    expect(got).toEqual(['a', 'bc']);
    s.end();
    expect(got).toEqual(['a', 'bc', 'd']);
  });

  it('parses runner protocol lines, and ignores broken ones', () => {
    expect(parseRunnerLine('::pipe::{"type":"log","message":"hi"}')).toEqual({ type: 'log', message: 'hi' });
    expect(parseRunnerLine('::pipe::{not json')).toBeUndefined();
  });

  it('says how a retry escalated', () => {
    const r = { cpus: 1, gpus: 0, memBytes: 512 * 1024 * 1024, timeSec: 60 };
    expect(retryState(2, 3, 'out of memory', r, { ...r, memBytes: 1024 * 1024 * 1024 })).toBe('attempt 2 of 3 after: out of memory; mem 512M → 1024M');
    expect(retryState(2, 2, 'exit code 1', r, r)).toBe('attempt 2 of 2 after: exit code 1');
  });
});

describe('jobs', () => {
  it('a cmd stage is sh -c with the declared env, the stage name and its cpus; GPUs hidden unless granted', async () => {
    f = await fixture('name: j\nstages:\n  a:\n    cmd: echo hi\n    env: {SEED: "3"}\n');
    const a = f.stage('a');
    const info = await computeKey(a, f.ws);
    const job = await buildJob(context(f, undefined, ['0']), a, info, 'a-1', '/tmp/a.log', { slots: 1, cpus: 1, memBytes: 100, gpuIds: [] });
    expect(job.argv.slice(0, 3)).toEqual(['sh', '-e', '-c']);
    expect(job.argv.at(-1)).toContain('echo hi');
    expect(job.env).toMatchObject({ SEED: '3', PIPE_STAGE: 'a', PIPE_WORKSPACE: f.dir, PIPE_CPUS: '1', CUDA_VISIBLE_DEVICES: '' });
    expect(job.cwd).toBe(f.dir);
  });

  it('a uses stage runs the stage runner with a spec file', async () => {
    f = await fixture('name: j\nstages:\n  e:\n    uses: testing/echo\n    with: {src: in.txt, out: out/e.txt}\n', { 'in.txt': 'x\n' });
    const e = f.stage('e');
    const info = await computeKey(e, f.ws);
    const job = await buildJob(context(f), e, info, 'e-1', '/tmp/e.log', undefined);
    expect(job.argv[1]).toMatch(/dist\/engine\/runner\.js$/);
    const spec = JSON.parse(readFileSync(job.argv[2]!, 'utf8')) as RunnerSpec;
    expect(spec).toMatchObject({ stage: 'e', kind: 'testing/echo', key: info.key, workspace: f.dir, pipeline: { file: 'p.yaml', name: 'j' } });
  });

  it('the runner refuses a spec whose key names another Node (a SLURM node with a different runtime)', async () => {
    f = await fixture('name: j\nstages:\n  e:\n    uses: testing/echo\n    with: {src: in.txt, out: out/e.txt}\n', { 'in.txt': 'x\n' });
    const e = f.stage('e');
    const info = await computeKey(e, f.ws);
    const job = await buildJob(context(f), e, info, 'e-1', '/tmp/e.log', undefined);
    const spec = JSON.parse(readFileSync(job.argv[2]!, 'utf8')) as RunnerSpec;
    expect(spec.toolchain).toEqual({ node: process.version, platform: `${process.platform}-${process.arch}` });
    writeFileSync(job.argv[2]!, JSON.stringify({ ...spec, toolchain: { ...spec.toolchain, node: 'v0.1.0' } }));
    const r = spawnSync(job.argv[0]!, job.argv.slice(1), { cwd: f.dir, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/stage e: this runner is Node v\d+.* but the stage's key was computed for Node v0\.1\.0/);
    expect(f.exists('out/e.txt')).toBe(false);
  });

  it('runs a real child: stage-start, log lines and runner progress become events; the log keeps the output', async () => {
    f = await fixture(`name: j\nstages:\n  a:\n    cmd: echo hello; echo '::pipe::{"type":"progress","done":1,"total":2}'; echo '::pipe::{"type":"record","info":{"k":1}}'\n`);
    const r = recorder();
    const a = f.stage('a');
    const info = await computeKey(a, f.ws);
    const d = await dispatch(context(f, r.emit), a, info, new LocalExecutor(), undefined, () => {});
    expect(d.result.status).toBe('succeeded');
    expect(d.recorded).toEqual({ extra: { k: 1 }, execution: {} });
    expect(r.events.map((e) => e.type)).toEqual(['stage-start', 'stage-log', 'stage-progress']);
    expect(r.events[1]).toMatchObject({ line: 'hello' });
    expect(r.events[2]).toMatchObject({ done: 1, total: 2 });
    expect(logTail(d.job.logFile)).toBe('hello');
  });
});
