// What `pipe exp run` records of a variant (issue 13): its params, per-stage keys and status, metrics, duration,
// and the git commit it ran at (with whether the tree was dirty) when the workspace is a git repository.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pipe, runPipe, workspace } from '../engine/helpers.js';
import { git, sweepWorkspace, type SweepWs } from './helpers.js';

let ws: SweepWs | undefined;
afterEach(() => {
  ws?.cleanup();
  ws = undefined;
});

interface Rec {
  name: string;
  status: string;
  overrides: Record<string, unknown>;
  params: Record<string, unknown>;
  stages: Record<string, { status: string; key?: string; durationMs: number }>;
  metrics: Record<string, Record<string, unknown>>;
  durationMs: number;
  git?: { commit: string; dirty: boolean };
}

function record(dir: string, name: string): Rec {
  const exp = join(dir, '.pipe/exp');
  const [slug] = readdirSync(exp).filter((f) => f !== 'lock');
  return JSON.parse(readFileSync(join(exp, slug!, `${name}.json`), 'utf8')) as Rec;
}

describe('a variant\'s record', () => {
  it('params, stage keys, metrics, duration; the git commit and whether the tree was dirty; none outside git', async () => {
    ws = sweepWorkspace();
    const outside = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=2', '--name', 'nogit'], ws.env());
    expect(outside.code, outside.stderr).toBe(0);
    const a = record(ws.dir, 'nogit');
    expect(a).toMatchObject({ name: 'nogit', status: 'ok', overrides: { scale: 2 }, metrics: { 'out/metrics.json': { score: 30, n: 5 } } });
    expect(a.params).toMatchObject({ scale: 2, cpus: 0.5 });
    expect(Object.keys(a.stages).sort()).toEqual(['evaluate', 'prep', 'train']);
    for (const s of Object.values(a.stages)) expect(s.key).toMatch(/^[0-9a-f]{64}$/);
    expect(a.durationMs).toBeGreaterThan(0);
    expect(a.git).toBeUndefined();

    git(ws.dir, 'init', '-q');
    git(ws.dir, 'add', 'p.yaml', 'in.txt', 'train.sh', 'eval.sh');
    git(ws.dir, 'commit', '-qm', 'pipeline');
    const head = git(ws.dir, 'rev-parse', 'HEAD').trim();
    const clean = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=3', '--name', 'clean'], ws.env());
    expect(clean.code, clean.stderr).toBe(0);
    expect(record(ws.dir, 'clean').git).toEqual({ commit: head, dirty: false });

    ws.write('in.txt', 'v2\n'); // a tracked file edited, not committed
    const dirty = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=3', '--name', 'dirty'], ws.env());
    expect(dirty.code, dirty.stderr).toBe(0);
    expect(record(ws.dir, 'dirty').git).toEqual({ commit: head, dirty: true });
  });
});

describe('a record file named `...json` or `..json`, or of another shape', () => {
  it('is not a record: exp show does not list it and exp remove never deletes the experiments folder or its parent', async () => {
    // A record is a file any stage's command could write. Named `...json` it said its variant was `..`, whose folder
    // is `.pipe/exp` itself: `pipe exp remove p.yaml ..` (or --all) deleted every pipeline's experiments.
    ws = sweepWorkspace();
    ws.write('q.yaml', readFileSync(join(ws.dir, 'p.yaml'), 'utf8'));
    for (const f of ['p.yaml', 'q.yaml']) expect((await runPipe(ws.dir, ['exp', 'run', f, '-S', 'scale=2', '--name', 'two', '-t', 'train'], ws.env())).code).toBe(0);
    const exp = join(ws.dir, '.pipe/exp');
    const slug = readdirSync(exp).find((f) => f.startsWith('p.yaml-'))!;
    for (const name of ['..', '.']) {
      writeFileSync(join(exp, slug, `${name}.json`), JSON.stringify({ version: 1, name, status: 'ok', overrides: {}, params: {}, targets: [], stages: {}, metrics: {} }));
    }
    // Nor is a file of another shape (a record is JSON any stage could write): exp show crashed on one without
    // `startedAt` (internal error, a stack trace).
    writeFileSync(join(exp, slug, 'odd.json'), JSON.stringify({ version: 1, name: 'odd', status: 'ok', params: 3, metrics: [] }));
    const show = await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--json']);
    expect(show.code, show.stderr).toBe(0);
    const shown = JSON.parse(show.stdout) as { rows: Array<{ name: string }> };
    expect(shown.rows.map((r) => r.name)).toEqual(['workspace', 'two']);
    const r = await runPipe(ws.dir, ['exp', 'remove', 'p.yaml', '--all']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^removed 1 variant: two;/);
    expect(readdirSync(exp).sort()).toEqual([slug, readdirSync(exp).find((f) => f.startsWith('q.yaml-'))!].sort());
    expect(readdirSync(join(exp, readdirSync(exp).find((f) => f.startsWith('q.yaml-'))!))).toContain('two.json');
  });
});

describe('the experiments folder replaced by a link while the variants run', () => {
  it('no record is written, listed or deleted through it: the run says so and exits 1, the outside folder untouched', () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    // The variant's stage runs inside .pipe/exp/<pipeline>/<variant>/: it moves that pipeline folder away and puts a
    // link to an outside folder at its name.
    const w = workspace({
      'p.yaml': [
        'name: e',
        'params: {x: 1}',
        'experiments:',
        '  sw:',
        '    grid: {x: [2]}',
        'stages:',
        '  a:',
        `    cmd: d=$(cd .. && pwd) && mv "$d" "$d.moved" && ln -s ${outside} "$d" && echo \${params.x} > out.txt`,
        '    outs: [out.txt]',
        '',
      ].join('\n'),
    });
    try {
      const r = pipe(w.dir, ['exp', 'run', 'p.yaml', 'sw']);
      // Before: exit 0 with the variant's record written to the outside folder (and listed from there by exp show).
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toMatch(/pipe: the variants ran, but no record of them was written: .*\.pipe\/exp\/p\.yaml-\w+ is a link, not the folder pipe keeps its files in/);
      expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
      expect(readdirSync(outside)).toEqual([]);
      writeFileSync(join(outside, 'sw-planted.json'), '{}');
      const show = pipe(w.dir, ['exp', 'show', 'p.yaml']);
      expect(show.code).toBe(1);
      expect(show.stderr).toMatch(/\.pipe\/exp\/p\.yaml-\w+ is a link, not the folder pipe keeps its files in/);
      expect(show.stdout).not.toContain('sw-');
      expect(pipe(w.dir, ['exp', 'remove', 'p.yaml', '--all']).code).toBe(1);
      expect(readdirSync(outside)).toEqual(['sw-planted.json']);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
