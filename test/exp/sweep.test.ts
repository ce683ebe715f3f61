// `pipe exp run` (issue 13): a real sweep of a small pipeline — variants in parallel, each in its own scratch
// workspace sharing the cache, the common upstream stage run once and restored everywhere else, a failing variant
// that stops only itself, the workspace's files untouched — then show, diff, apply, remove and gc.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { events, runPipe, workspace, type Ev } from '../engine/helpers.js';
import { snapshot, sweepWorkspace, type SweepWs } from './helpers.js';

let ws: SweepWs | undefined;
afterEach(() => {
  ws?.cleanup();
  ws = undefined;
});

interface Rec {
  name: string;
  experiment?: string;
  status: string;
  reason?: string;
  params: Record<string, unknown>;
  overrides: Record<string, unknown>;
  stages: Record<string, { status: string; key?: string }>;
  metrics: Record<string, Record<string, unknown>>;
  root: string;
  durationMs: number;
}

function expDir(dir: string): string {
  const base = join(dir, '.pipe', 'exp');
  return join(base, readdirSync(base)[0]!);
}

function records(dir: string): Rec[] {
  const d = expDir(dir);
  return readdirSync(d)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as Rec);
}

/** stage-end events of one variant. */
function ends(evs: Ev[], variant: string): Record<string, string> {
  return Object.fromEntries(evs.filter((e) => e.type === 'stage-end' && e.variant === variant).map((e) => [e.stage, e.status]));
}

describe('pipe exp run: a sweep', () => {
  it('runs the variants in parallel in scratch workspaces, the common stage once, one failing alone, the workspace untouched', async () => {
    ws = sweepWorkspace();
    const base = await runPipe(ws.dir, ['run', 'p.yaml'], ws.env());
    expect(base.code, base.stderr).toBe(0);
    ws.write('in.txt', 'v2\n'); // a new input: prep's key changes, so the sweep must run it (once)
    const logBefore = ws.log().length;
    const before = snapshot(ws.dir, ['.pipe/exp', '.pipe/cache']);

    // The barrier in train.sh lets no training finish before all three have started: only a parallel run passes.
    const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', '-j', '3', '--json'], ws.env(3));
    expect(r.code, r.stderr + r.stdout).toBe(1); // one variant failed
    const evs = events(r.stdout);
    const names = [...new Set(evs.filter((e) => typeof e.variant === 'string' && e.variant !== 'shared').map((e) => e.variant as string))];
    expect(names).toHaveLength(3);
    for (const n of names) expect(n).toMatch(/^sweep-[0-9a-f]{6}$/);

    // prep ran once (the shared run, in the first variant's folder); the others restored it from the shared cache.
    const log = ws.log().slice(logBefore);
    expect(log.filter((l) => l === 'prep')).toHaveLength(1);
    expect(ends(evs, 'shared')).toEqual({ prep: 'ran' });
    const statuses = names.map((n) => ends(evs, n));
    expect(statuses.map((s) => s.prep).sort()).toEqual(['restored', 'restored', 'up-to-date']);
    expect(log.filter((l) => l.startsWith('train ') && l.includes(' start '))).toHaveLength(3);

    // scale 0 fails in evaluate; the other two end well.
    const recs = records(ws.dir);
    const byScale = new Map(recs.map((x) => [x.params.scale, x]));
    expect(byScale.get(0)).toMatchObject({ status: 'failed', reason: 'stage evaluate failed: exit code 3', stages: { train: { status: 'ran' }, evaluate: { status: 'failed' } } });
    for (const s of [2, 3]) {
      const x = byScale.get(s)!;
      expect(x).toMatchObject({ experiment: 'sweep', status: 'ok', overrides: { scale: s }, stages: { evaluate: { status: 'ran' } } });
      expect(x.metrics['out/metrics.json']).toMatchObject({ score: 15 * s, n: 5 });
      expect(Object.values(x.stages).every((st) => /^[0-9a-f]{64}$/.test(st.key ?? ''))).toBe(true);
      // Its outputs live in its own folder, which is a workspace of its own: `pipe status` there is up to date.
      expect(readFileSync(join(x.root, 'out/model.txt'), 'utf8').split('\n')[0]).toBe(String(s));
      const st = await runPipe(x.root, ['status', 'p.yaml', '--json']);
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).not.toMatch(/"action":\s*"(run|restore)"/);
    }
    const jsonEnd = evs.at(-1)!;
    expect(jsonEnd).toMatchObject({ type: 'exp-end', ok: false });

    // Nothing of the workspace changed: its outputs, index, run records, lock file, logs (byte for byte, mtimes too).
    expect(snapshot(ws.dir, ['.pipe/exp', '.pipe/cache'])).toEqual(before);
    expect(ws.read('out/model.txt').split('\n')[0]).toBe('1');
    expect(existsSync(join(ws.dir, '.pipe/lock'))).toBe(false);
  });

  it('show (text within 80 columns, --md, --csv, --json, --sort, --only), diff, apply (bytes as the variant made them), remove and gc', async () => {
    ws = sweepWorkspace();
    expect((await runPipe(ws.dir, ['run', 'p.yaml'], ws.env())).code).toBe(0);
    const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', 'solo', '-j', '4'], ws.env(4));
    expect(r.code, r.stderr).toBe(1);
    // The closing table (stdout) and the per-variant lines (stderr).
    expect(r.stderr).toMatch(/✔ solo done in/);
    expect(r.stderr).toMatch(/✗ sweep-[0-9a-f]{6} failed: stage evaluate failed: exit code 3/);
    expect(r.stderr).toMatch(/sweep-[0-9a-f]{6} › train/);

    const show = await runPipe(ws.dir, ['exp', 'show', 'p.yaml'], { COLUMNS: '80' });
    expect(show.code, show.stderr).toBe(0);
    const lines = show.stdout.trimEnd().split('\n');
    for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(80);
    expect(lines[0]).toMatch(/^experiment\s+state\s+scale\s+score\s/);
    expect(lines[2]).toMatch(/^workspace\s+1\s+15\s/);
    expect(lines.slice(3, 6).map((l) => l.split(/\s+/)[0])).toEqual([expect.stringMatching(/^sweep-/), expect.stringMatching(/^sweep-/), expect.stringMatching(/^sweep-/)]);
    expect(lines[6]).toMatch(/^solo\s+5\s+75\s/);
    expect(show.stdout).toMatch(/^sweep-\S+\s+failed\s+0\s+-/m);
    expect(lines.at(-1)).toMatch(/^\d+ more columns?: .*\(--only picks; --md, --csv show all\)$/);

    const md = (await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--md'])).stdout.trimEnd().split('\n');
    expect(md[0]).toBe('| experiment | state | scale | score | n | rates.fpr_children_age_0_1 | rates.fpr_children_age_1_5 | rates.fpr_children_age_5_10 | rates.fpr_adults_healthy |');
    expect(md[1]).toBe('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    expect(md[2]).toBe('| workspace |  | 1 | 15 | 5 | 1 | 2 | 3 | 0.1 |');
    expect(md).toHaveLength(7);

    const csv = (await runPipe(ws.dir, ['exp', 'show', 'p.yaml', 'sweep', '--csv', '--sort', 'score', '--desc', '--only', 'score,scale'])).stdout.trimEnd().split('\n');
    expect(csv[0]).toBe('experiment,state,scale,score');
    expect(csv[1]).toBe('workspace,,1,15');
    expect(csv.slice(2).map((l) => l.split(',').slice(1).join(','))).toEqual([',3,45', ',2,30', 'failed,0,-']);

    const json = JSON.parse((await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--json'])).stdout) as {
      columns: { params: string[]; metrics: Array<{ id: string; path: string; key: string }> };
      rows: Array<{ name: string; baseline?: boolean; status: string; params: Record<string, unknown>; metrics: Record<string, unknown> }>;
    };
    expect(json.columns.params).toEqual(['scale']);
    expect(json.columns.metrics.map((m) => m.id)).toEqual(['score', 'n', 'rates.fpr_children_age_0_1', 'rates.fpr_children_age_1_5', 'rates.fpr_children_age_5_10', 'rates.fpr_adults_healthy']);
    expect(json.rows[0]).toMatchObject({ name: 'workspace', baseline: true, params: { scale: 1 }, metrics: { score: 15 } });
    expect(json.rows.map((x) => x.params.scale)).toEqual([1, 2, 3, 0, 5]);

    // Errors name what exists.
    const badSort = await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--sort', 'scor']);
    expect(badSort.code).toBe(2);
    expect(badSort.stderr).toMatch(/--sort scor: no such param or metric \(did you mean `score`\?\)/);
    expect((await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--only', 'nope'])).stderr).toMatch(/--only nope: no such param or metric column/);

    const recs = records(ws.dir);
    const three = recs.find((x) => x.params.scale === 3)!;
    const two = recs.find((x) => x.params.scale === 2)!;
    const diff = await runPipe(ws.dir, ['exp', 'diff', 'p.yaml', two.name, three.name]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/^param scale\s+2\s+3\s*$/m);
    expect(diff.stdout).toMatch(/^score\s+30\s+45\s+\+15$/m);
    expect(diff.stdout).not.toMatch(/^n\s/m); // unchanged metrics only with --all
    expect((await runPipe(ws.dir, ['exp', 'diff', 'p.yaml', two.name, three.name, '--all'])).stdout).toMatch(/^n\s+5\s+5\s+0$/m);
    const vsWs = JSON.parse((await runPipe(ws.dir, ['exp', 'diff', 'p.yaml', three.name, '--json'])).stdout) as { a: string; b: string; params: unknown[] };
    expect(vsWs).toMatchObject({ a: 'workspace', b: three.name, params: [{ name: 'scale', a: 1, b: 3 }] });

    // apply: the variant's outputs, byte for byte, from the cache; nothing runs; its params go to p.params.yaml.
    const logBefore = ws.log().length;
    const applied = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', three.name]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(new RegExp(`applied ${three.name}: 2 restored, 1 already in place; its params are in p\\.params\\.yaml`));
    expect(ws.log().length).toBe(logBefore);
    for (const f of ['out/prep.txt', 'out/model.txt', 'out/metrics.json']) expect(readFileSync(join(ws.dir, f))).toEqual(readFileSync(join(three.root, f)));
    expect(JSON.parse(ws.read('p.params.yaml').split('\n').slice(1).join('\n'))).toEqual({ scale: 3 });
    const after = await runPipe(ws.dir, ['run', 'p.yaml'], ws.env());
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(/done: 3 up-to-date/);
    expect(after.stderr).toMatch(/warning: the params of experiment variant sweep-[0-9a-f]{6} are in force/);
    expect(ws.log().length).toBe(logBefore);
    // A failed variant has nothing to apply; a hand-written params file is not overwritten.
    const failed = recs.find((x) => x.status === 'failed')!;
    expect((await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', failed.name])).stderr).toMatch(/failed \(stage evaluate failed: exit code 3\): it has no results to apply/);
    ws.write('p.params.yaml', 'scale: 2\n');
    const refused = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', two.name]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/p\.params\.yaml exists and was not written by `pipe exp apply`/);
    ws.rm('p.params.yaml');

    // remove: records, folders and registrations go; gc then frees what only those variants referenced.
    const cache = join(ws.dir, '.pipe/cache');
    const registered = () => readdirSync(join(cache, 'workspaces')).length;
    expect(registered()).toBe(1 + recs.length);
    const keep = await runPipe(ws.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']);
    expect(keep.stdout).toMatch(/kept \d+ object\(s\) for the workspace .*\.pipe\/exp\/.*\/solo, which uses this cache too/);
    const objectsBefore = countObjects(cache);
    const removed = await runPipe(ws.dir, ['exp', 'remove', 'p.yaml', 'sweep']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/^removed 3 variants: sweep-/);
    expect(records(ws.dir).map((x) => x.name)).toEqual(['solo']);
    expect(readdirSync(expDir(ws.dir)).sort()).toEqual(['lock', 'solo', 'solo.json'].filter((f) => existsSync(join(expDir(ws.dir), f))));
    expect(registered()).toBe(2);
    const gc = await runPipe(ws.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(countObjects(cache)).toBeLessThan(objectsBefore);
    expect((await runPipe(ws.dir, ['exp', 'show', 'p.yaml'])).stdout).toMatch(/^solo\s/m);
    // The workspace's own results survived (its lock file references them): a run restores or keeps them all.
    expect((await runPipe(ws.dir, ['run', 'p.yaml'], ws.env())).stderr).toMatch(/done: .*up-to-date/);
    expect((await runPipe(ws.dir, ['exp', 'remove', 'p.yaml', '--all'])).stdout).toMatch(/^removed 1 variant: solo/);
    expect(registered()).toBe(1);
  });

  it('-S makes one variant (named by its params, or --name); -j 1 holds for all variants together; --dry-run; a variant that breaks the pipeline runs nothing', async () => {
    ws = sweepWorkspace();
    const dry = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', 'solo', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^sweep-[0-9a-f]{6}  scale=2  \(3 stages\)$/m);
    expect(dry.stdout).toMatch(/^solo  scale=5  \(3 stages\)$/m);
    expect(dry.stdout).toMatch(/would run 4 variants/);
    expect(existsSync(join(ws.dir, '.pipe/exp'))).toBe(false);

    const one = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=7'], ws.env());
    expect(one.code, one.stderr).toBe(0);
    const named = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=8', '--name', 'eight', '-t', 'train'], ws.env());
    expect(named.code, named.stderr).toBe(0);
    const recs = records(ws.dir);
    expect(recs.map((x) => [x.name.replace(/[0-9a-f]{6}$/, 'HASH'), x.overrides, x.status])).toEqual([
      ['eight', { scale: 8 }, 'ok'],
      ['exp-HASH', { scale: 7 }, 'ok'],
    ]);
    expect(Object.keys(recs[0]!.stages)).toEqual(['prep', 'train']); // -t: train and its upstream only

    // -j 1: one stage at a time across every variant (one resource pool): no two trainings overlap.
    const before = ws.log().length;
    const serial = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', 'solo', '-j', '1'], ws.env(1));
    expect(serial.code, serial.stderr).toBe(1);
    const spans = new Map<string, { start?: bigint; end?: bigint }>();
    for (const l of ws.log().slice(before)) {
      const m = /^train (\S+) (start|end) (\d+)$/.exec(l);
      if (m) spans.set(m[1]!, { ...spans.get(m[1]!), [m[2]!]: BigInt(m[3]!) });
    }
    const sorted = [...spans.values()].sort((a, b) => (a.start! < b.start! ? -1 : 1));
    expect(sorted).toHaveLength(4);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.start! >= sorted[i - 1]!.end!).toBe(true);

    // An experiment name or a param that does not exist, and a value that makes a stage invalid: exit 2.
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'swep'])).stderr).toMatch(/no experiment `swep` \(did you mean `sweep`\?\)/);
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scal=3'])).stderr).toMatch(/params have no `scal` \(did you mean `scale`\?\)/);
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', '-S', 'scale=1'])).stderr).toMatch(/-S scale: experiment `sweep` sets it itself/);
    const bad = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'cpus=-1'], ws.env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/p\.yaml:\d+:\d+: error: stage `train`, field `resources.cpus`: `cpus` must be a number > 0, not `-1`/);
    expect(records(ws.dir)).toHaveLength(recs.length + 4);
  });
});

function countObjects(cache: string): number {
  let n = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else n += 1;
    }
  };
  walk(join(cache, 'objects'));
  return n;
}

describe('pipe exp run --params-file', () => {
  it('is part of the variant: the same -S over two params files is two variants (neither replaces the other), and a params file alone is one', async () => {
    ws = sweepWorkspace();
    writeFileSync(join(ws.dir, 'two.yaml'), 'scale: 2\n');
    writeFileSync(join(ws.dir, 'three.yaml'), 'scale: 3\n');
    const a = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'cpus=0.25', '--params-file', 'two.yaml'], ws.env());
    expect(a.code, a.stderr).toBe(0);
    const b = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'cpus=0.25', '--params-file', 'three.yaml'], ws.env());
    expect(b.code, b.stderr).toBe(0);
    const c = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '--params-file', 'two.yaml'], ws.env());
    expect(c.code, c.stderr).toBe(0);
    const recs = records(ws.dir);
    expect(recs).toHaveLength(3);
    expect(new Set(recs.map((r) => r.name)).size).toBe(3);
    expect(recs.map((r) => [r.params.scale, r.params.cpus]).sort()).toEqual([[2, 0.25], [2, 0.5], [3, 0.25]]);
  });
});

describe('pipe exp run and the validated-pipeline cache', () => {
  it('a variant\'s load writes no entry of its own: a sweep of three adds no entry to the cache (whose bound they would fill)', async () => {
    ws = sweepWorkspace();
    const home = mkdtempSync(join(tmpdir(), 'pipe-exp-cache-home-'));
    try {
      // Past the racy window of the files just written (a pipeline read from a file changed in the last 2 s is not
      // cached at all): a clock, not an event, decides it.
      await new Promise((r) => setTimeout(r, 2100));
      const entries = (): number => readdirSync(join(home, 'pipelines')).filter((f) => f.endsWith('.json')).length;
      const one = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'solo'], { ...ws.env(), PIPE_CACHE_HOME: home });
      expect(one.code, one.stderr).toBe(0);
      const after = entries(); // the pipeline's own loads (with and without an applied params file)
      const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep'], { ...ws.env(), PIPE_CACHE_HOME: home });
      expect(r.code, r.stderr).toBe(1); // scale 0 fails, as in the sweep above
      expect(records(ws.dir)).toHaveLength(4);
      expect(entries()).toBe(after);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('pipe exp run --name', () => {
  it('refuses a name that is the experiments\' lock, a record, or too long for a file name; nothing is written', async () => {
    ws = sweepWorkspace();
    for (const [name, why] of [
      ['lock', /is the name of the experiments' lock file/],
      ['two.json', /ends in `\.json`, the name of a variant's record/],
      ['b'.repeat(201), /is 201 characters long, over the limit of 200/],
    ] as const) {
      const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=2', '--name', name], ws.env());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(join(ws.dir, '.pipe', 'exp'))).toBe(false);
    }
    // The longest name works end to end: its folder, its record and the record's temp file fit NAME_MAX.
    const longest = 'b'.repeat(200);
    const ok = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=2', '--name', longest, '-t', 'train'], ws.env());
    expect(ok.code, ok.stderr).toBe(0);
    expect(records(ws.dir).map((r) => r.name)).toEqual([longest]);
  });
});

// The workspace row is the workspace as it is: its own params (not the -S of the exp run that prints it), and
// metrics files a stale stage left are said to be from an earlier run (`lr: 2` beside the score lr 1 computed was
// served as what lr 2 gives, exit 0).
const SCORED = `name: scored
params: {lr: 1}
stages:
  s:
    cmd: 'mkdir -p out && echo "{\\"score\\": \${params.lr}0}" > out/m.json'
    metrics: [out/m.json]
`;

describe('the workspace row of exp run, show and diff', () => {
  it('has the workspace\'s own params, and is marked stale when a stage writing its metrics is not up to date', async () => {
    const w = workspace({ 'p.yaml': SCORED });
    try {
      expect((await runPipe(w.dir, ['run', 'p.yaml'])).code).toBe(0);
      const run = await runPipe(w.dir, ['exp', 'run', 'p.yaml', '-S', 'lr=3', '--name', 'three']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout.split('\n').slice(2, 4).map((l) => l.split(/\s+/))).toEqual([
        ['workspace', '1', '10'],
        ['three', '3', '30'],
      ]);
      const fresh = await runPipe(w.dir, ['exp', 'show', 'p.yaml']);
      expect(fresh.stdout).not.toMatch(/stale/);

      w.write('p.yaml', SCORED.replace('lr: 1', 'lr: 3')); // edited, not run: out/m.json is lr 1's
      const show = await runPipe(w.dir, ['exp', 'show', 'p.yaml']);
      expect(show.code).toBe(0);
      expect(show.stdout.split('\n').slice(2, 4).map((l) => l.split(/\s+/))).toEqual([
        ['workspace', 'stale', '10'],
        ['three', '30'],
      ]);
      expect(show.stderr).toMatch(/workspace: stage s is not up to date \(param lr: 1 → 3\); its metrics are from an earlier run, not what its params compute: `pipe run p\.yaml`/);
      const json = JSON.parse((await runPipe(w.dir, ['exp', 'show', 'p.yaml', '--json'])).stdout) as { rows: Array<{ name: string; status: string; reason?: string }> };
      expect(json.rows[0]).toMatchObject({ name: 'workspace', status: 'stale', reason: expect.stringMatching(/stage s is not up to date/) });
      const diff = await runPipe(w.dir, ['exp', 'diff', 'p.yaml', 'three']);
      expect(diff.code).toBe(0);
      expect(diff.stderr).toMatch(/workspace: stage s is not up to date/);

      expect((await runPipe(w.dir, ['run', 'p.yaml'])).code).toBe(0);
      const after = await runPipe(w.dir, ['exp', 'diff', 'p.yaml', 'three']);
      expect(after.stdout).toMatch(/workspace and three have the same params and metrics/);
      expect(after.stderr).toBe('');
    } finally {
      w.cleanup();
    }
  });
});
