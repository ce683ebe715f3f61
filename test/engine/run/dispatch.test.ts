// Dispatch: the Job a stage becomes, and a real child run through the local executor, its output turned into events.
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { buildJob, directArgv, dispatch, lineSplitter, logTail, parseRunnerLine, retryState, type DispatchContext } from '../../../engine/run/dispatch.js';
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

describe('cmd stages without a shell (the fast path for plain commands)', () => {
  it('plain words run directly; anything the shell would interpret keeps the shell', () => {
    expect(directArgv('cp seed.txt out/1.txt')).toEqual(['cp', 'seed.txt', 'out/1.txt']);
    expect(directArgv('  python3 train.py --lr=0.1  --tag=a,b@c:d%e+f\n')).toEqual(['python3', 'train.py', '--lr=0.1', '--tag=a,b@c:d%e+f']);
    for (const cmd of [
      'cp "a b" c', "cp 'a' b", 'cp a\\ b c', 'echo $HOME', 'cp `x` y', 'cp *.txt out', 'cp a? b', 'cp [ab] c', 'cp ~/a b',
      'cp a b > log', 'cp a b 2>&1', 'cp a b < in', 'cp a b | cat', 'cp a b && true', 'cp a b; true', 'cp a b &', 'cp a b # note',
      'cp a b\ncp c d', '(cp a b)', 'X=1 cp a b', 'cp {a,b} c', '!cp a b',
      // builtins (echo -e, cd, exit behave as the shell's own) and reserved words
      'echo -e x', 'cd out', 'exit 3', 'true', 'test -f x', 'printf x', 'export A', 'set -x', 'if', 'for', 'time cp a b', 'source x', '. x', ': x',
    ]) {
      expect(directArgv(cmd), cmd).toBeUndefined();
    }
  });

  it('a job carries both forms: the shell argv (SLURM, the fallback) and the direct one', async () => {
    f = await fixture('name: j\nstages:\n  a:\n    cmd: cp in.txt out.txt\n  b:\n    cmd: cp in.txt out.txt > log\n', { 'in.txt': 'x\n' });
    for (const [name, direct] of [['a', ['cp', 'in.txt', 'out.txt']], ['b', undefined]] as const) {
      const s = f.stage(name);
      const job = await buildJob(context(f), s, await computeKey(s, f.ws), `${name}-1`, `/tmp/${name}.log`, undefined);
      expect(job.argv.slice(0, 3)).toEqual(['sh', '-e', '-c']);
      expect(job.direct).toEqual(direct);
    }
  });

  it('a direct command sees what it would under sh: the env, PWD; a missing program or a script without #! goes through sh', async () => {
    f = await fixture(
      'name: j\nstages:\n  env:\n    cmd: env\n    env: {SEED: "3"}\n  missing:\n    cmd: no-such-program-xyz arg\n  script:\n    cmd: ./plain.sh one\n',
      { 'plain.sh': 'echo "ran $1"\n' },
    );
    chmodSync(`${f.dir}/plain.sh`, 0o755);
    const run = async (name: string) => {
      const s = f.stage(name);
      const job = await buildJob(context(f), s, await computeKey(s, f.ws), `${name}-1`, `${f.dir}/.pipe/logs/${name}.log`, undefined);
      expect(job.direct).toBeDefined();
      return { job, result: await new LocalExecutor().run(job, { signal: new AbortController().signal }) };
    };
    const env = await run('env');
    expect(env.result.status).toBe('succeeded');
    const vars = new Map(f.read('.pipe/logs/env.log').trimEnd().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(vars.get('SEED')).toBe('3');
    expect(vars.get('PIPE_STAGE')).toBe('env');
    expect(realpathSync(vars.get('PWD')!)).toBe(realpathSync(f.dir));
    // The same as sh -c would give: its message in the log, exit 127 (a failure retries may repeat).
    const missing = await run('missing');
    expect(missing.result).toMatchObject({ status: 'failed', exitCode: 127, failure: 'exit' });
    expect(f.read('.pipe/logs/missing.log')).toMatch(/no-such-program-xyz: .*not found/);
    const script = await run('script');
    expect(script.result.status).toBe('succeeded');
    expect(f.read('.pipe/logs/script.log')).toBe('ran one\n');
  });
});
