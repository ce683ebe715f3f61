// `pipe watch` through the real CLI: stages in flight when their input changes, manual (GPU / watch: manual) stages,
// keys on stdin, Ctrl-C.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gates } from '../support/gate.js';
import { startWatch, until, watchWorkspace, type Watcher, type Ws } from './helpers.js';

// Each test's workspace and watcher are torn down when it ends (watchWorkspace).
let ws: Ws;
let w: Watcher;

/** `slow` and `other` are gated (test/support/gate.ts): each runs until the test opens its gate. */
const slow = (g: Gates): string => `name: s
stages:
  slow:
    cmd: cat data/in.txt > out/s.txt; ${g.cmd('slow')}
    deps: [data/in.txt]
    outs: [out/s.txt]
  other:
    cmd: ${g.cmd('other', 'echo other > out/o.txt')}
    outs: [out/o.txt]
`;

/** A watched workspace with the gated pipeline. */
function slowWorkspace(): { ws: Ws; g: Gates } {
  const ws = watchWorkspace({ 'data/in.txt': 'v1\n' });
  const g = new Gates(join(ws.dir, '.gates'));
  ws.write('p.yaml', slow(g));
  return { ws, g };
}

describe('pipe watch: in flight', () => {
  it('a stage whose dep is edited while it runs is cancelled at once and restarted on the new input', async () => {
    let g: Gates;
    ({ ws, g } = slowWorkspace());
    w = startWatch(ws.dir, ['p.yaml']);
    const start1 = await w.next('slow started', (e) => e.type === 'stage-start' && e.stage === 'slow');
    await g.whenStarted('slow');
    await g.whenStarted('other');
    ws.write('data/in.txt', 'v2\n');
    const cancel = await w.next('watch-cancel', (e) => e.type === 'watch-cancel');
    expect(cancel.stages).toEqual(['slow']); // `other` does not read in.txt: running too, but left alone
    const end1 = await w.next('slow cancelled', (e) => e.type === 'stage-end' && e.stage === 'slow' && e.cycle === 1);
    expect(end1.status).toBe('cancelled');
    expect(end1.at - start1.at).toBeLessThan(4000); // promptly: its gate was never opened
    g.open('other', 'slow'); // other finishes; the restarted slow goes through
    const c1 = await w.cycle(1);
    expect(c1.find((e) => e.type === 'stage-end' && e.stage === 'other')!.status).toBe('ran');
    expect(c1.find((e) => e.type === 'cycle-end')!.restarted).toEqual(['slow']);

    await w.cycle(2);
    expect(w.started(2)).toEqual(['slow']);
    const end2 = w.ofCycle(2).find((e) => e.type === 'stage-end' && e.stage === 'slow')!;
    expect(end2.status).toBe('ran');
    expect(ws.read('out/s.txt')).toBe('v2\n');
  });

  it('Ctrl-C mid-stage exits 130 and leaves no half-written output', async () => {
    let g: Gates;
    ({ ws, g } = slowWorkspace());
    w = startWatch(ws.dir, ['p.yaml']);
    await g.whenStarted('slow'); // it wrote its output, and waits at its gate (never opened)
    const t0 = Date.now();
    const r = await w.stop('SIGINT');
    expect(r.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(ws.exists('out/s.txt')).toBe(false);
    expect(w.events.find((e) => e.type === 'stage-end' && e.stage === 'slow')!.status).toBe('cancelled');
    expect(w.events.at(-1)!.type).toBe('watch-stop');
  });

  it('SIGHUP mid-stage (its terminal closed) stops like Ctrl-C: exit 130, lock released, no half-written output', async () => {
    let g: Gates;
    ({ ws, g } = slowWorkspace());
    w = startWatch(ws.dir, ['p.yaml']);
    await g.whenStarted('slow');
    const r = await w.stop('SIGHUP');
    expect(r).toEqual({ code: 130, signal: null });
    expect(ws.exists('out/s.txt')).toBe(false);
    expect(ws.exists('.pipe/lock')).toBe(false);
    expect(w.events.at(-1)!.type).toBe('watch-stop');
  });

  it('a second Ctrl-C kills a stage that ignores SIGTERM at once, then cleans up: lock released, no half output', async () => {
    ws = watchWorkspace({ 'data/in.txt': 'v1\n', '.marks/.keep': '' });
    // It notes each SIGTERM and goes on; only SIGKILL ends it.
    ws.write('p.yaml', `name: s
stages:
  stubborn:
    cmd: trap 'echo term >> .marks/term' TERM; cat data/in.txt > out/s.txt; echo > .marks/started; while :; do sleep 0.2 & wait $! || :; done
    deps: [data/in.txt]
    outs: [out/s.txt]
`);
    // A grace period no test waits out: only the second Ctrl-C can end the stage in time.
    w = startWatch(ws.dir, ['p.yaml'], { PIPE_KILL_GRACE_MS: '600000' });
    await until('the stage to start', () => ws.exists('.marks/started'));
    w.child.kill('SIGINT');
    await until('the stage to get SIGTERM', () => ws.exists('.marks/term'));
    w.child.kill('SIGINT');
    const r = await w.done;
    expect(r).toEqual({ code: 130, signal: null });
    expect(ws.exists('out/s.txt')).toBe(false);
    expect(ws.exists('.pipe/lock')).toBe(false);
    expect(w.events.find((e) => e.type === 'stage-end' && e.stage === 'stubborn')?.status).toBe('cancelled');
  });
});

const manual = `name: m
stages:
  prep:
    cmd: cat data/a.txt > out/prep.txt
    deps: [data/a.txt]
    outs: [out/prep.txt]
  train:
    cmd: cat out/prep.txt > out/model.txt; echo "gpu=$CUDA_VISIBLE_DEVICES" >> out/model.txt
    deps: [out/prep.txt]
    outs: [out/model.txt]
    resources: {gpus: 1}
  report:
    cmd: cat out/model.txt > out/report.txt
    deps: [out/model.txt]
    outs: [out/report.txt]
  sweep:
    cmd: echo swept > out/sweep.txt
    outs: [out/sweep.txt]
    watch: manual
`;

describe('pipe watch: manual stages', () => {
  it('GPU and watch: manual stages are marked stale, not run, until the `a` key; `q` quits with 0', async () => {
    ws = watchWorkspace({ 'p.yaml': manual, 'data/a.txt': 'a1\n' });
    w = startWatch(ws.dir, ['p.yaml', '--gpus', '0']);
    await w.cycle(1);
    expect(w.started(1)).toEqual(['prep']);
    const pending = await w.next('manual-pending', (e) => e.type === 'manual-pending');
    expect((pending.stages as Array<{ stage: string }>).map((s) => s.stage).sort()).toEqual(['sweep', 'train']);
    expect(pending.held).toEqual(['report']);
    expect(ws.exists('out/model.txt')).toBe(false);

    w.key('a');
    const c2 = await w.cycle(2);
    expect(c2.find((e) => e.type === 'cycle-start')!.trigger).toBe('manual');
    expect(w.started(2).sort()).toEqual(['report', 'sweep', 'train']);
    expect(ws.read('out/report.txt')).toBe('a1\ngpu=0\n');
    await w.next('nothing pending', (e) => e.type === 'manual-pending' && (e.stages as unknown[]).length === 0);

    // An edit upstream of the GPU stage: prep re-runs, train is stale again and waits, report with it.
    const n = w.events.length;
    ws.write('data/a.txt', 'a2\n');
    await w.cycle(3);
    expect(w.started(3)).toEqual(['prep']);
    const again = await w.next('train pending again', (e) => e.type === 'manual-pending' && (e.stages as unknown[]).length > 0, n);
    expect((again.stages as Array<{ stage: string }>).map((s) => s.stage)).toEqual(['train']);
    expect(ws.read('out/report.txt')).toBe('a1\ngpu=0\n');

    // `r`: a re-check without a change; nothing is stale but the held GPU stage.
    w.key('r');
    const c4 = await w.cycle(4);
    expect(c4.find((e) => e.type === 'cycle-start')!.trigger).toBe('refresh');
    expect(w.started(4)).toEqual([]);

    w.key('q');
    const r = await w.done;
    expect(r.code).toBe(0);
  });

  it('a manual stage held for an upstream re-run is released when that re-run leaves its input unchanged', async () => {
    const yaml = manual.replace('cmd: cat data/a.txt > out/prep.txt', "cmd: grep -v '^#' data/a.txt > out/prep.txt");
    ws = watchWorkspace({ 'p.yaml': yaml, 'data/a.txt': 'a1\n' });
    w = startWatch(ws.dir, ['p.yaml', '--gpus', '0', '--all']);
    await w.cycle(1);
    await w.stop();
    // Now without --all: everything is up to date, nothing waits.
    w = startWatch(ws.dir, ['p.yaml', '--gpus', '0']);
    await w.cycle(1);
    expect(w.started(1)).toEqual([]);
    // A comment line: prep re-runs (its dep changed), its output does not: train and report stay up to date.
    ws.write('data/a.txt', '# a note\na1\n');
    const c2 = await w.cycle(2);
    expect(w.started(2)).toEqual(['prep']);
    expect(c2.find((e) => e.type === 'cycle-start')!.stages).toEqual(['prep', 'sweep']); // train, report held for now
    const c3 = await w.cycle(3); // the follow-up: held stages are free again
    expect(c3.find((e) => e.type === 'cycle-start')!.trigger).toBe('follow-up');
    expect(w.started(3)).toEqual([]);
    expect(c3.filter((e) => e.type === 'stage-end' && e.status === 'up-to-date').map((e) => e.stage)).toEqual(expect.arrayContaining(['train', 'report']));
    expect(w.events.some((e) => e.type === 'manual-pending' && (e.stages as unknown[]).length > 0)).toBe(false);
  });

  it('--all runs manual stages automatically', async () => {
    ws = watchWorkspace({ 'p.yaml': manual, 'data/a.txt': 'a1\n' });
    w = startWatch(ws.dir, ['p.yaml', '--gpus', '0', '--all']);
    await w.cycle(1);
    expect(w.started(1).sort()).toEqual(['prep', 'report', 'sweep', 'train']);
    ws.write('data/a.txt', 'a2\n');
    await w.cycle(2);
    expect(w.started(2)).toEqual(['prep', 'train', 'report']);
    expect(ws.read('out/report.txt')).toBe('a2\ngpu=0\n');
    expect(w.events.some((e) => e.type === 'manual-pending')).toBe(false);
  });
});

describe('pipe watch: stage-kind code', () => {
  const kindFiles = (ws: Ws, tag: string): void => {
    ws.write(
      'kinds/local/copy/manifest.js',
      `export const manifest = { kind: 'local/copy', description: 'test', with: { src: { type: 'path', role: 'dep', required: true, description: '' }, out: { type: 'path', role: 'out', required: true, description: '' } } };\n`,
    );
    ws.write(
      'kinds/local/copy/run.js',
      `import { readFileSync, writeFileSync } from 'node:fs';\nexport async function run(ctx) { writeFileSync(ctx.resolve(ctx.with.out), readFileSync(ctx.resolve(ctx.with.src), 'utf8') + '${tag}'); }\n`,
    );
  };
  const yaml = 'name: k\nstages:\n  c:\n    uses: local/copy\n    with: {src: in.txt, out: out/c.txt}\n  d:\n    cmd: cat in.txt > out/d.txt\n    deps: [in.txt]\n    outs: [out/d.txt]\n';

  it("a kind's implementation folder is watched: editing it starts a cycle", async () => {
    ws = watchWorkspace({ 'p.yaml': yaml, 'in.txt': 'x\n' });
    kindFiles(ws, 'v1');
    w = startWatch(ws.dir, ['p.yaml'], { PIPE_KINDS_PATH: join(ws.dir, 'kinds') });
    const ready = await w.next('watch-ready', (e) => e.type === 'watch-ready');
    expect(ready.trees).toEqual(['kinds/local/copy/']);
    await w.cycle(1);
    expect(ws.read('out/c.txt')).toBe('x\nv1');
    kindFiles(ws, 'v2');
    const c2 = await w.cycle(2);
    expect(c2.find((e) => e.type === 'cycle-start')!.files).toEqual(['kinds/local/copy/manifest.js', 'kinds/local/copy/run.js']);
    expect(w.started(2)).not.toContain('d');
  });

  // The engine memoises kind hashes per process; watch mode drops the memo each cycle.
  it('an edited kind re-runs the stages using it, and only them', async () => {
    ws = watchWorkspace({ 'p.yaml': yaml, 'in.txt': 'x\n' });
    kindFiles(ws, 'v1');
    w = startWatch(ws.dir, ['p.yaml'], { PIPE_KINDS_PATH: join(ws.dir, 'kinds') });
    await w.cycle(1);
    kindFiles(ws, 'v2');
    const c2 = await w.cycle(2);
    expect(w.started(2)).toEqual(['c']);
    expect(c2.find((e) => e.type === 'plan' && e.stage === 'c')!.codes).toEqual(['implementation-changed']);
    expect(ws.read('out/c.txt')).toBe('x\nv2');
  });
});
