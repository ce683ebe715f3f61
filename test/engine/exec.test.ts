// Execution through the real CLI: parallelism, GPU slots, failures, Ctrl-C, workspace lock, `uses` stages.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Gates } from '../support/gate.js';
import { events, pipe, pipeAsync, runRecords, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

/** Gated stages: each waits until the test opens its gate (test/support/gate.ts), so overlap is seen, not timed. */
const gated = (g: Gates, name: string, then = ''): string => g.cmd(name, `${then}echo ok > out/${name}.txt`);

describe('parallelism and resources', () => {
  it('-j bounds how many stages run at once', async () => {
    ws = workspace();
    const g = new Gates(join(ws.dir, '.gates'));
    const stages = ['a', 'b', 'c', 'd'].map((n) => `  ${n}:\n    cmd: ${gated(g, n)}\n    outs: [out/${n}.txt]\n`).join('');
    ws.write('p.yaml', `name: j\nstages:\n${stages}`);
    let run = pipeAsync(ws.dir, ['run', 'p.yaml', '-j', '2']);
    await g.release(4, 2);
    let r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(g.maxRunning()).toBe(2);
    g.reset();
    run = pipeAsync(ws.dir, ['run', 'p.yaml', '-j', '1', '--force', '*']);
    await g.release(4, 1);
    r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(g.maxRunning()).toBe(1);
  });

  it('--gpus 0,1: three one-GPU stages never share a device and never run 3 at once', async () => {
    ws = workspace();
    const g = new Gates(join(ws.dir, '.gates'));
    const stages = ['g1', 'g2', 'g3']
      .map((n) => `  ${n}:\n    cmd: ${g.cmd(n, `echo $CUDA_VISIBLE_DEVICES > out/${n}.txt`)}\n    outs: [out/${n}.txt]\n    resources: {gpus: 1}\n`)
      .join('');
    ws.write('p.yaml', `name: g\nstages:\n${stages}  cpu:\n    cmd: echo "cpu [$CUDA_VISIBLE_DEVICES]" > out/cpu.txt\n    outs: [out/cpu.txt]\n`);
    const run = pipeAsync(ws.dir, ['run', 'p.yaml', '-j', '8', '--gpus', '0,1']);
    await g.release(3, 2);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(g.maxRunning()).toBe(2);
    const gpu = (n: string): string => ws.read(`out/${n}.txt`).trim();
    for (const n of ['g1', 'g2', 'g3']) expect(['0', '1']).toContain(gpu(n));
    expect(g.overlapping().length).toBeGreaterThan(0);
    for (const [a, b] of g.overlapping()) expect(gpu(a)).not.toBe(gpu(b));
    // A stage without GPUs sees none.
    expect(ws.read('out/cpu.txt')).toBe('cpu []\n');
  });

  it('memory and cpus: --mem 1G fits one 600M stage at a time; a cpus request beyond the machine is clamped with a warning', async () => {
    ws = workspace();
    const g = new Gates(join(ws.dir, '.gates'));
    const stages = ['m1', 'm2', 'm3'].map((n) => `  ${n}:\n    cmd: ${gated(g, n)}\n    outs: [out/${n}.txt]\n    resources: {mem: 600M}\n`).join('');
    ws.write('p.yaml', `name: m\nstages:\n${stages}  big:\n    cmd: echo $PIPE_CPUS > out/big.txt\n    outs: [out/big.txt]\n    resources: {cpus: 512}\n`);
    const run = pipeAsync(ws.dir, ['run', 'p.yaml', '-j', '8', '--mem', '1G']);
    await g.release(3, 1);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(g.maxRunning()).toBe(1);
    expect(r.stderr).toMatch(/warning: stage big asks for 512 cpus but this machine has \d+; it gets \d+/);
    expect(Number(ws.read('out/big.txt'))).toBeLessThan(512);
  });

  it('a GPU stage with no GPUs fails with a clear message', () => {
    ws = workspace({ 'p.yaml': `name: g\nstages:\n  g:\n    cmd: echo > out/g.txt\n    outs: [out/g.txt]\n    resources: {gpus: 1}\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--gpus', 'none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stage g needs 1 GPU\(s\) but no GPUs were found/);
  });
});

/** `other` is still running when `bad` fails: its gate opens once the test has seen bad's end. */
const chain = (g: Gates): string => `name: f
stages:
  bad:
    cmd: echo oops; exit 4
    outs: [out/bad.txt]
  child:
    cmd: cp out/bad.txt out/child.txt
    deps: [out/bad.txt]
    outs: [out/child.txt]
  other:
    cmd: ${g.cmd('other', 'echo ok > out/other.txt')}
    outs: [out/other.txt]
  after:
    cmd: cp out/other.txt out/after.txt
    deps: [out/other.txt]
    outs: [out/after.txt]
`;

/** Runs `chain` with -j 2: opens other's gate once bad has ended (failed). */
async function runChain(args: string[]) {
  ws = workspace();
  const g = new Gates(join(ws.dir, '.gates'));
  ws.write('p.yaml', chain(g));
  const run = pipeAsync(ws.dir, ['run', 'p.yaml', '-j', '2', '--json', ...args]);
  await g.whenStarted('other');
  await run.until((out) => out.includes('"type":"stage-end","stage":"bad"'));
  g.open('other');
  return run.done;
}

describe('failures', () => {
  it('a failed stage stops its descendants; without --keep-going nothing new starts', async () => {
    const r = await runChain([]);
    expect(r.code).toBe(1);
    const st = statuses(r.stdout);
    expect(st.bad).toBe('failed');
    expect(st.child).toBe('skipped');
    expect(st.other).toBe('ran'); // was already running: it finishes
    expect(st.after).toBe('skipped');
    const end = events(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'bad')!;
    expect(end).toMatchObject({ code: 'exit-non-zero', reason: 'exit code 4' });
    expect(end.logTail).toMatch(/oops/);
    expect(events(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'after')).toMatchObject({ code: 'stopped' });
  });

  it('--keep-going runs every branch that does not depend on the failure', async () => {
    const r = await runChain(['--keep-going']);
    expect(r.code).toBe(1);
    expect(statuses(r.stdout)).toEqual({ bad: 'failed', child: 'skipped', other: 'ran', after: 'ran' });
    expect(ws.read('out/after.txt')).toBe('ok\n');
  });

  it('retries: a failed attempt runs again (outputs of the failed attempt removed)', () => {
    ws = workspace({
      'p.yaml': `name: r\nstages:\n  flaky:\n    cmd: echo try >> tries.txt; echo half > out/f.txt; test $(wc -l < tries.txt) -ge 2 && echo ok > out/f.txt\n    outs: [out/f.txt]\n    retries: {count: 2}\n`,
    });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout).flaky).toBe('ran');
    expect(ws.read('tries.txt')).toBe('try\ntry\n');
    expect(events(r.stdout).some((e) => e.type === 'stage-state' && /attempt 2 of 3 after: exit code 1/.test(String(e.state)))).toBe(true);
    expect(ws.read('out/f.txt')).toBe('ok\n');
  });

  it('invalid pipelines exit 2 with located diagnostics; bad usage exits 2', () => {
    ws = workspace({ 'p.yaml': 'name: x\nstages:\n  a:\n    cmd: true\n    bogus: 1\n' });
    let r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/p\.yaml:5:\d+/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    r = pipe(ws.dir, ['run', 'missing.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing\.yaml does not exist/);
    ws.write('p.yaml', 'name: x\nstages:\n  a:\n    cmd: echo hi\n');
    r = pipe(ws.dir, ['run', 'p.yaml', '-j', 'zero']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-j expects a positive whole number/);
    r = pipe(ws.dir, ['run', 'p.yaml', '--frobnicate']);
    expect(r.code).toBe(2);
    r = pipe(ws.dir, ['run', 'p.yaml', 'nosuchstage']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no stage named `nosuchstage`/);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT stops the running stage: exit 130, no half output, no cache entry, next run re-runs it', async () => {
    ws = workspace({
      'p.yaml': `name: c\nstages:\n  quick:\n    cmd: echo q > out/q.txt\n    outs: [out/q.txt]\n  slow:\n    cmd: echo half > out/slow.txt; sleep 30; echo rest >> out/slow.txt\n    deps: [out/q.txt]\n    outs: [out/slow.txt]\n`,
    });
    const p = pipeAsync(ws.dir, ['run', 'p.yaml', '--json']);
    await p.until((out) => out.includes('"type":"stage-start","stage":"slow"'));
    await p.until(() => ws.exists('out/slow.txt')); // it wrote its half output
    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code).toBe(130);
    expect(statuses(r.stdout)).toEqual({ quick: 'ran', slow: 'cancelled' });
    expect(ws.exists('out/slow.txt')).toBe(false);
    expect(ws.read('out/q.txt')).toBe('q\n'); // finished stages keep their outputs
    expect(runRecords(ws.dir).map((x) => x.stage)).toEqual(['quick']);
    // The sleep (a grandchild of the CLI) is gone too.
    const ps = pipe(ws.dir, ['status', 'p.yaml']);
    expect(ps.stdout).toMatch(/slow: stale/);
    ws.write('p.yaml', ws.read('p.yaml').replace('sleep 30', 'true'));
    const again = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(again.stdout)).toEqual({ quick: 'up-to-date', slow: 'ran' });
  });
});

describe('workspace lock', () => {
  it('a second run waits for the first (saying who holds it), or exits naming it with --no-wait', async () => {
    ws = workspace();
    const g = new Gates(join(ws.dir, '.gates'));
    ws.write('p.yaml', `name: l\nstages:\n  s:\n    cmd: ${g.cmd('s', 'echo > out/s.txt')}\n    outs: [out/s.txt]\n`);
    // The first run holds the lock until the test opens the gate (no timing assumptions on a loaded machine).
    ws.write('q.yaml', `name: l2\nstages:\n  t:\n    cmd: echo > out/t.txt\n    outs: [out/t.txt]\n`);
    const first = pipeAsync(ws.dir, ['run', 'p.yaml', '--json']);
    await g.whenStarted('s');
    const nowait = pipe(ws.dir, ['run', 'q.yaml', '--no-wait']);
    expect(nowait.code).toBe(1);
    expect(nowait.stderr).toMatch(new RegExp(`locked by \`pipe run p\\.yaml --json\` \\(pid ${first.child.pid}`));
    const second = pipeAsync(ws.dir, ['run', 'q.yaml']);
    await second.until((_o, err) => /waiting for the workspace lock held by/.test(err));
    expect(ws.exists('out/t.txt')).toBe(false); // still waiting
    g.open('s');
    const [a, b] = await Promise.all([first.done, second.done]);
    expect(a.code).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(ws.exists('out/t.txt')).toBe(true);
  });
});

describe('uses stages (stage runner)', () => {
  it('runs a kind in a child runner: progress, logs, record() provenance, upstream', () => {
    ws = workspace({
      'in.txt': 'hello\n',
      'p.yaml': `name: u\nstages:\n  one:\n    uses: testing/echo\n    with: {src: in.txt, out: out/one.txt, message: first, steps: 2}\n  two:\n    uses: testing/echo\n    with: {src: out/one.txt, out: out/two.txt, message: second}\n`,
    });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const ev = events(r.stdout);
    expect(ev.filter((e) => e.type === 'stage-progress' && e.stage === 'one').map((e) => e.done)).toEqual([1, 2]);
    expect(ev.some((e) => e.type === 'stage-log' && e.stage === 'one' && e.line === 'copying in.txt to out/one.txt')).toBe(true);
    expect(ws.read('out/two.txt')).toMatch(/^hello\nfirst\n.*\nsecond\n/s);
    const recs = runRecords(ws.dir) as unknown as Array<{ stage: string; extra: { echoed: string; upstream: string[] } }>;
    const two = recs.find((x) => x.stage === 'two')!;
    expect(two.extra).toMatchObject({ echoed: 'second', upstream: ['one'] });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ one: 'up-to-date', two: 'up-to-date' });
  });

  it('StageError: one paragraph, no stack; a crash shows the stack; a partial output is removed', () => {
    ws = workspace({
      'in.txt': 'x\n',
      'p.yaml': `name: u\nstages:\n  se:\n    uses: testing/echo\n    with: {src: in.txt, out: out/se.txt, fail: stage-error}\n  cr:\n    uses: testing/echo\n    with: {src: in.txt, out: out/cr.txt, fail: crash}\n  pa:\n    uses: testing/echo\n    with: {src: in.txt, out: out/pa.txt, fail: partial}\n`,
    });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--keep-going', '--json']);
    expect(r.code).toBe(1);
    const ends = Object.fromEntries(events(r.stdout).filter((e) => e.type === 'stage-end').map((e) => [e.stage, e]));
    expect(ends.se).toMatchObject({ code: 'exit-non-zero', reason: 'exit code 1' });
    expect(ends.se!.logTail).toMatch(/this is a test of StageError/);
    expect(ends.se!.logTail).not.toMatch(/at run/);
    expect(ends.cr).toMatchObject({ code: 'exit-non-zero', reason: 'exit code 70' });
    expect(ends.cr!.logTail).toMatch(/TypeError: echo crashed on purpose\n\s+at /);
    expect(ends.pa!.status).toBe('failed');
    expect(ws.exists('out/pa.txt')).toBe(false);
    expect(runRecords(ws.dir)).toEqual([]);
  });
});
