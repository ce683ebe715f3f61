// The parts of watch mode one by one: what is watched (pure), the debounce, the per-directory tree watcher and the
// missing-path watch on a real file system, the screen, and a WatchSession in-process (includes, params files).
import { mkdirSync, mkdtempSync, renameSync, rmSync, stat, symlinkSync, watch as fsWatch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline, StageSpec } from '../../engine/model.js';
import { Coalescer } from '../../engine/watch/coalesce.js';
import type { WatchOutputEvent } from '../../engine/watch/events.js';
import { ignoredPaths, touchedStages, watchTargets, withDownstream } from '../../engine/watch/paths.js';
import { TreeWatcher } from '../../engine/watch/tree.js';
import { WatchSet } from '../../engine/watch/watchers.js';
import { frame, initialState, plainLines, reduce } from '../../engine/ui/watch-screen.js';
import { WatchSession } from '../../engine/watch.js';
import { until, workspace, type Ws } from './helpers.js';

type StageInit = Partial<Omit<StageSpec, 'deps' | 'outs'>> & { deps?: string[]; outs?: string[] };
function stage(name: string, s: StageInit = {}): StageSpec {
  const { deps = [], outs = [], ...rest } = s;
  return {
    name,
    declaredAs: name,
    cmd: `echo ${name}`,
    params: {},
    env: {},
    resources: { cpus: 1, memBytes: 0, gpus: 0 },
    executor: 'local',
    slurm: {},
    retries: { count: 0 },
    alwaysRun: false,
    watch: 'auto',
    span: { file: '/w/p.yaml', line: 1, col: 1 },
    ...rest,
    deps: deps.map((path) => ({ path })),
    outs: outs.map((path) => ({ path, cache: true, metric: false })),
  };
}

function pipeline(stages: StageSpec[]): Pipeline {
  return {
    file: '/w/p.yaml',
    workdir: '/w',
    name: 'p',
    params: {},
    vars: {},
    stages,
    sourceFiles: ['/w/p.yaml', '/w/inc.yaml'],
    settings: { cacheDir: '/w/.pipe/cache', restore: ['copy'], executor: 'local', slurm: {}, summary: [] },
  };
}

const p = pipeline([
  stage('prep', { deps: ['data/raw/', 'scripts/prep.py'], outs: ['out/prep/'] }),
  stage('train', { deps: ['out/prep/', 'scripts/train.py', 'out/prep/extra.csv'], outs: ['out/model.bin'], params: { lr: 0.1 } }),
  stage('plot', { uses: 'plot', deps: ['out/model.bin', 'figs/spec.vl.json'], outs: ['out/fig.svg'] }),
  stage('other', { deps: ['data/other.csv'], outs: ['out/other.csv'] }),
]);
const code = (kind: string): string[] => [`/repo/stages/${kind}`];

describe('what is watched', () => {
  it('deps of the selected stages, sources and kind code; never outputs, .pipe/, the lock file', () => {
    const t = watchTargets(p, new Set(['prep', 'train', 'plot']), code);
    expect(t.files.sort()).toEqual(['/w/figs/spec.vl.json', '/w/inc.yaml', '/w/p.yaml', '/w/scripts/prep.py', '/w/scripts/train.py']);
    expect(t.trees.sort()).toEqual(['/repo/stages/plot', '/w/data/raw']);
    const ign = ignoredPaths(p);
    for (const x of ['/w/out/prep', '/w/out/prep/a/b.png', '/w/out/model.bin', '/w/.pipe/tmp/x', '/w/p.lock.yaml', '/w/.pipe/cache/ab/cd']) expect(ign(x)).toBe(true);
    for (const x of ['/w/out', '/w/data/raw/a.png', '/w/p.yaml', '/w/out/prepx']) expect(ign(x)).toBe(false);
  });

  it('a file inside a watched tree gets no watcher of its own', () => {
    const q = pipeline([stage('s', { deps: ['data/', 'data/a.csv', 'data/sub/'] })]);
    const t = watchTargets(q, new Set(['s']), code);
    expect(t.trees).toEqual(['/w/data']);
    expect(t.files.sort()).toEqual(['/w/inc.yaml', '/w/p.yaml']);
  });

  it('changed paths → the stages they touch, and downstream', () => {
    expect([...touchedStages(p, ['data/raw/img/1.png'], code)]).toEqual(['prep']);
    expect([...touchedStages(p, ['data/raw'], code)]).toEqual(['prep']);
    expect([...touchedStages(p, ['data'], code)].sort()).toEqual(['other', 'prep']); // a folder holding deps (renamed, removed)
    expect([...touchedStages(p, ['/repo/stages/plot/run.ts'], code)]).toEqual(['plot']);
    expect([...touchedStages(p, ['scripts/train.py', 'data/other.csv'], code)].sort()).toEqual(['other', 'train']);
    expect([...touchedStages(p, ['README.md'], code)]).toEqual([]);
    // Across a reload: a changed definition (param value) and a removed stage.
    const next = pipeline([p.stages[0]!, { ...p.stages[1]!, params: { lr: 0.2 } }, p.stages[2]!]);
    expect([...touchedStages(next, ['p.yaml'], code, p)].sort()).toEqual(['other', 'train']);
    const succ: Record<string, string[]> = { prep: ['train'], train: ['plot'], plot: [] };
    expect([...withDownstream(['prep'], (s) => succ[s] ?? [])].sort()).toEqual(['plot', 'prep', 'train']);
  });
});

describe('debounce', () => {
  it('a burst is one batch of distinct paths; a steady stream still fires every maxWait', async () => {
    const batches: string[][] = [];
    const c = new Coalescer(40, 300, (b) => batches.push(b));
    for (let i = 0; i < 10; i++) {
      c.push(i % 2 ? '/a' : '/b');
      await new Promise((r) => setTimeout(r, 3));
    }
    await until('the burst batch', () => batches.length === 1, 2000);
    expect(batches[0]!.sort()).toEqual(['/a', '/b']);
    const t0 = Date.now();
    const stream = setInterval(() => c.push('/c'), 10);
    await until('a batch during the stream', () => batches.length === 2, 2000);
    clearInterval(stream);
    expect(Date.now() - t0).toBeLessThan(600);
    c.close();
  });

  // The flake this fixes: under load the watching process stalled past the quiet window while a burst went on. A
  // stall inside an I/O callback is followed by the loop's timer phase, before it polls again: the expired timer
  // fired the batch before the events that had queued meanwhile were read, and the burst became two cycles.
  it('a stall past the quiet window does not split a burst: events that queued meanwhile join the batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pipe-debounce-'));
    const file = join(dir, 'a.txt');
    writeFileSync(file, '0');
    const batches: string[][] = [];
    const c = new Coalescer(40, 1000, (b) => batches.push(b));
    const watcher = fsWatch(file, () => c.push('/late'));
    const spin = (ms: number): void => {
      const t0 = Date.now();
      while (Date.now() - t0 < ms); // the process stalled: no timer, no I/O
    };
    try {
      // In an I/O callback (a stat's completion), as a watcher's or a job's output handler would be.
      await new Promise<void>((resolve) =>
        stat(file, () => {
          c.push('/first');
          spin(20);
          writeFileSync(file, '1'); // its event queues while the process cannot read it
          spin(100); // past the 40 ms quiet window
          resolve();
        }),
      );
      await until('the batch', () => batches.length > 0, 5000);
      await new Promise((r) => setTimeout(r, 150));
      expect(batches.map((b) => b.sort())).toEqual([['/first', '/late']]);
    } finally {
      watcher.close();
      c.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('raw activity keeps a pending batch open; without one it starts nothing', async () => {
    const batches: string[][] = [];
    const c = new Coalescer(40, 1000, (b) => batches.push(b));
    c.activity(); // nothing pending: no batch, no timer
    await new Promise((r) => setTimeout(r, 80));
    expect(batches).toEqual([]);
    c.push('/a');
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 20));
      c.activity(); // a watcher saw the file change again and will report it after its stat
    }
    expect(batches).toEqual([]); // 100 ms after the push, but never 40 ms quiet
    await until('the batch', () => batches.length > 0, 5000);
    expect(batches).toEqual([['/a']]);
    c.close();
  });
});

/**
 * A folder just re-created is watched again once its re-watch has run: write a new file into it every 100 ms until
 * one is reported (each write is a fresh name, so an early, unwatched one cannot count).
 */
async function eventuallySeen(seen: string[], folder: string): Promise<void> {
  let i = 0;
  await until(`a new file in ${folder}`, () => {
    if (seen.some((s) => s.startsWith(join(folder, 'probe-')))) return true;
    if (i++ % 5 === 0) writeFileSync(join(folder, `probe-${i}.txt`), 'x');
    return undefined;
  }, 5000);
}

describe('watchers on a real file system', () => {
  let dir = '';
  let ws: Ws | undefined;
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    if (dir) rmSync(dir, { recursive: true, force: true });
    ws?.cleanup();
    ws = undefined;
  });

  it('TreeWatcher: one watch per directory; sees edits, new subfolders and files in them; skips ignored ones', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pipe-tree-'));
    for (const d of ['a', 'a/b', 'skip']) mkdirSync(join(dir, d), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(dir, 'a', `f${i}.txt`), 'x');
    const seen: string[] = [];
    const t = new TreeWatcher(dir, { ignore: (p) => p.startsWith(join(dir, 'skip')), onChange: (p) => seen.push(p), onWarning: () => {} });
    closers.push(() => t.close());
    await t.start();
    expect(t.size).toBe(3); // dir, a, a/b — not skip, not the 50 files
    writeFileSync(join(dir, 'a', 'f7.txt'), 'changed');
    await until('the edit', () => seen.includes(join(dir, 'a', 'f7.txt')));
    mkdirSync(join(dir, 'a', 'b', 'new'));
    await until('the new folder watched', () => t.size === 4);
    writeFileSync(join(dir, 'a', 'b', 'new', 'deep.txt'), 'x');
    await until('a file in the new folder', () => seen.includes(join(dir, 'a', 'b', 'new', 'deep.txt')));
    writeFileSync(join(dir, 'skip', 'x.txt'), 'x');
    writeFileSync(join(dir, 'a', 'b', 'marker'), 'x');
    await until('the marker', () => seen.includes(join(dir, 'a', 'b', 'marker')));
    expect(seen.some((s) => s.includes('skip'))).toBe(false);
    // Replaced by a new folder of the same name (rm -rf b && mkdir b): the new one is watched.
    rmSync(join(dir, 'a', 'b'), { recursive: true });
    mkdirSync(join(dir, 'a', 'b'));
    await eventuallySeen(seen, join(dir, 'a', 'b'));
    rmSync(join(dir, 'a', 'b'), { recursive: true });
    await until('the removed folder unwatched', () => t.size === 2);
  });

  it('WatchSet: a directory dep removed and re-created is watched again after the next sync', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pipe-replace-'));
    const root = join(dir, 'data');
    mkdirSync(root);
    const seen: string[] = [];
    const set = new WatchSet({ onChange: (p) => seen.push(p), onWarning: () => {} });
    closers.push(() => set.close());
    await set.update({ files: [], trees: [root] }, () => false);
    rmSync(root, { recursive: true });
    mkdirSync(root);
    await until('the removal reported', () => seen.length > 0);
    await set.update({ files: [], trees: [root] }, () => false); // what the next cycle does
    await eventuallySeen(seen, root);
  });

  it('WatchSet: a link in a dep folder back to a folder above it (a cycle the hash refuses) is not followed up', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pipe-uplink-'));
    const root = join(dir, 'ws', 'data', 'd');
    mkdirSync(root, { recursive: true });
    for (let i = 0; i < 20; i++) mkdirSync(join(dir, 'other', String(i)), { recursive: true });
    symlinkSync('../../..', join(root, 'up'));
    symlinkSync('..', join(root, 'parent'));
    symlinkSync('/', join(root, 'root'));
    const seen: string[] = [];
    const set = new WatchSet({ onChange: (p) => seen.push(p), onWarning: () => {} });
    closers.push(() => set.close());
    await set.update({ files: [], trees: [root] }, () => false);
    expect(set.stats().dirs).toBe(1); // data/d alone: not the temp folder above it with its 20 others
    // One made later: reported, and not descended into either (each level of up/ws/data/d/up/... was a new folder).
    symlinkSync('../../..', join(root, 'later'));
    await until('the new link reported', () => seen.includes(join(root, 'later')));
    await set.update({ files: [], trees: [root] }, () => false);
    expect(set.stats().dirs).toBe(1);
  });

  it('WatchSet: a dep that does not exist yet (nor its folder) is reported when it appears', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pipe-missing-'));
    const seen: string[] = [];
    const set = new WatchSet({ onChange: (p) => seen.push(p), onWarning: () => {} });
    closers.push(() => set.close());
    const target = join(dir, 'later', 'sub', 'f.csv');
    await set.update({ files: [target, join(dir, 'p.yaml')], trees: [] }, () => false);
    expect(set.stats().missing).toBe(2);
    mkdirSync(join(dir, 'later', 'sub'), { recursive: true });
    writeFileSync(target, 'x');
    await until('the missing path reported', () => seen.includes(target));
    // Re-synced, it is now a plain file watch (chokidar).
    await set.update({ files: [target], trees: [] }, () => false);
    expect(set.stats()).toMatchObject({ files: 1, missing: 0 });
    writeFileSync(target, 'y');
    await until('an edit of the now existing file', () => seen.filter((s) => s === target).length >= 2);
  });

  it('WatchSet: a missing dep whose folder appears first is still seen when the file comes later; a link dep whose folder was re-made is still watched by its name', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pipe-missing-'));
    const seen: string[] = [];
    const set = new WatchSet({ onChange: (p) => seen.push(p), onWarning: () => {} });
    closers.push(() => set.close());
    const target = join(dir, 'later', 'sub', 'f.csv');
    await set.update({ files: [target], trees: [] }, () => false);
    mkdirSync(join(dir, 'later', 'sub'), { recursive: true });
    await until('the folder on its way reported', () => seen.includes(target));
    await set.update({ files: [target], trees: [] }, () => false); // the cycle that started: still missing
    seen.length = 0;
    writeFileSync(target, 'x');
    await until('the file, made later, reported', () => seen.includes(target));

    // A dep that is a link, in a folder removed and made again: retargeting the new link is seen.
    mkdirSync(join(dir, 'shared'));
    for (const f of ['u', 'v', 'w']) writeFileSync(join(dir, 'shared', f), f);
    mkdirSync(join(dir, 'data'));
    const link = join(dir, 'data', 'f');
    symlinkSync('../shared/u', link);
    await set.update({ files: [link], trees: [] }, () => false);
    rmSync(join(dir, 'data'), { recursive: true });
    mkdirSync(join(dir, 'data'));
    symlinkSync('../shared/v', link);
    await until('the re-made link reported', () => seen.includes(link));
    await set.update({ files: [link], trees: [] }, () => false);
    seen.length = 0;
    symlinkSync('../shared/w', `${link}.new`);
    renameSync(`${link}.new`, link);
    await until('the retarget reported', () => seen.includes(link));
  });

  it('WatchSession in-process: an include fragment and a params file are watched; each edit runs only its stages', async () => {
    ws = workspace({
      'p.yaml': 'name: s\ninclude: [frag.yaml]\nparams_files: [params.yaml]\nstages:\n  main:\n    cmd: echo n=${params.n} > out/main.txt\n    outs: [out/main.txt]\n',
      'frag.yaml': 'stages:\n  frag:\n    cmd: echo f=${params.f} > out/frag.txt\n    outs: [out/frag.txt]\n',
      'params.yaml': 'n: 1\nf: 1\n',
    });
    const events: WatchOutputEvent[] = [];
    const s = new WatchSession({ file: join(ws.dir, 'p.yaml'), targets: [], emit: (e) => events.push(e) });
    closers.push(() => s.stop('quit'));
    s.start();
    const started = (cycle: number): string[] =>
      events.filter((e) => e.type === 'stage-start' && 'cycle' in e && e.cycle === cycle).map((e) => (e as { stage: string }).stage).sort();
    const ended = (cycle: number) => until(`cycle ${cycle}`, () => events.some((e) => e.type === 'cycle-end' && e.cycle === cycle));
    await ended(1);
    const ready = events.find((e) => e.type === 'watch-ready') as { files: string[] };
    expect(ready.files).toEqual(['frag.yaml', 'p.yaml', 'params.yaml']);
    expect(started(1)).toEqual(['frag', 'main']);
    ws.write('params.yaml', 'n: 2\nf: 1\n');
    await ended(2);
    expect(started(2)).toEqual(['main']);
    ws.write('frag.yaml', ws.read('frag.yaml').replace('f=', 'frag f='));
    await ended(3);
    expect(started(3)).toEqual(['frag']);
    expect(ws.read('out/frag.txt')).toBe('frag f=1\n');
  });
});

describe('globbed includes', () => {
  let ws: Ws | undefined;
  let s: WatchSession | undefined;
  afterEach(async () => {
    await s?.stop('quit');
    ws?.cleanup();
  });

  it('a fragment added to a globbed include folder is loaded and its stages run', async () => {
    ws = workspace({
      'p.yaml': 'name: g\ninclude: [frags/*.yaml]\nstages:\n  main:\n    cmd: echo m > out/m.txt\n    outs: [out/m.txt]\n',
      'frags/one.yaml': 'stages:\n  one:\n    cmd: echo 1 > out/one.txt\n    outs: [out/one.txt]\n',
    });
    const events: WatchOutputEvent[] = [];
    s = new WatchSession({ file: join(ws.dir, 'p.yaml'), targets: [], emit: (e) => events.push(e) });
    s.start();
    const ended = (cycle: number) => until(`cycle ${cycle}`, () => events.some((e) => e.type === 'cycle-end' && e.cycle === cycle));
    await ended(1);
    const ready = events.find((e) => e.type === 'watch-ready') as { trees: string[] };
    expect(ready.trees).toContain('frags/');
    ws.write('frags/two.yaml', 'stages:\n  two:\n    cmd: echo 2 > out/two.txt\n    outs: [out/two.txt]\n');
    await ended(2);
    const started = events.filter((e) => e.type === 'stage-start' && 'cycle' in e && e.cycle === 2).map((e) => (e as { stage: string }).stage);
    expect(started).toEqual(['two']);
    expect(ws.read('out/two.txt')).toBe('2\n');
  });
});

describe('the screen', () => {
  const at = 1000;
  const seq: WatchOutputEvent[] = [
    { type: 'watch-ready', pipeline: '/w/p.yaml', files: ['p.yaml'], trees: ['data/'], missing: [], watchedDirs: 3, startupMs: 40, at },
    { type: 'cycle-start', cycle: 2, trigger: 'change', files: ['data/a.csv'], stages: ['a', 'b'], at },
    { type: 'plan', stage: 'a', action: 'run', reasons: ['dep data/a.csv changed'], codes: ['dep-changed'], at, cycle: 2 },
    { type: 'stage-start', stage: 'a', executor: 'local', gpuIds: [], cpus: 1, logFile: '/w/.pipe/logs/a.log', at, cycle: 2 },
    { type: 'stage-end', stage: 'a', status: 'failed', code: 'exit-non-zero', reason: 'exit code 3', durationMs: 10, logFile: '/w/.pipe/logs/a.log', logTail: 'line 1\nTraceback: boom', at, cycle: 2 },
    { type: 'stage-end', stage: 'b', status: 'restored', code: 'same-inputs', reason: 'restored', durationMs: 2, at, cycle: 2 },
    { type: 'cycle-end', cycle: 2, ok: false, counts: { ran: 0, 'up-to-date': 3, restored: 1, failed: 1, cancelled: 0, skipped: 0 }, restarted: [], durationMs: 1500, at },
    { type: 'manual-pending', stages: [{ stage: 'train', reasons: ['dep out/x changed'], codes: ['dep-changed'] }], held: ['report'], at },
  ];

  it('frame: what changed, what ran, cache hits, failures with their log tail, time per cycle, manual stages waiting', () => {
    const s = initialState(true);
    for (const e of seq) reduce(s, e);
    const f = frame(s, at + 10, 120);
    expect(f).toContain('changed: data/a.csv');
    expect(f).toMatch(/✗ a .*exit code 3/);
    expect(f).toContain('│ Traceback: boom');
    expect(f).toMatch(/↺ b +cache hit/);
    expect(f).toContain('cycle 2: 1 cache hit, 3 up to date, 1 failed in 1.5s');
    expect(f).toMatch(/manual, stale: train .*holding report/);
    expect(f).toContain('a run manual stages');
  });

  it('plain lines: one per event worth a line; a cancelled-for-restart stage is not a failure', () => {
    const s = initialState(false);
    const lines: string[] = [];
    const more: WatchOutputEvent[] = [
      { type: 'cycle-start', cycle: 3, trigger: 'change', files: ['in.txt'], stages: ['slow'], at },
      { type: 'stage-start', stage: 'slow', executor: 'local', gpuIds: [], cpus: 1, logFile: 'l', at, cycle: 3 },
      { type: 'watch-cancel', cycle: 3, stages: ['slow'], files: ['in.txt'], at },
      { type: 'stage-end', stage: 'slow', status: 'cancelled', code: 'cancelled', reason: 'cancelled', durationMs: 5, at, cycle: 3 },
      // Failed by the engine's own check (a save landed mid-run): it restarts, it is not a failure of the stage.
      { type: 'stage-start', stage: 'mid', executor: 'local', gpuIds: [], cpus: 1, logFile: 'l', at, cycle: 3 },
      { type: 'stage-end', stage: 'mid', status: 'failed', code: 'dep-changed-mid-run', reason: 'dep in.txt changed while the stage ran; its outputs were discarded (run again)', durationMs: 5, at, cycle: 3 },
      // Below it, the stages that did not complete get no line of their own.
      { type: 'stage-end', stage: 'below', status: 'skipped', code: 'upstream-incomplete', reason: 'upstream stage mid did not complete', durationMs: 0, at, cycle: 3 },
      { type: 'warning', code: 'watch-paused', message: 'paused: the last 5 cycles were each started by files written while the previous one ran', at },
    ];
    for (const e of [...seq, ...more]) {
      reduce(s, e);
      lines.push(...plainLines(s, e));
    }
    const text = lines.join('\n');
    expect(text).toContain('── cycle 2 (data/a.csv)');
    expect(text).toContain('▶ a (dep data/a.csv changed)');
    expect(text).toContain('↺ b cache hit');
    expect(text).toMatch(/⏸ manual, stale .*run with --all\): train \(dep out\/x changed\); holding report/);
    expect(text).toContain('⟲ slow: made stale by in.txt — cancelled, restarting');
    expect(text).toContain('⟲ slow stale: restarts next cycle');
    expect(text).toContain('⟲ mid stale: restarts next cycle');
    expect(text).not.toContain('below');
    expect(s.failures).toEqual([]);
    expect(s.paused).toBe(true);
  });
});
