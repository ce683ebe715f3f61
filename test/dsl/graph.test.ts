import { describe, expect, it } from 'vitest';
import { buildDag, downstreamOf, OutIndex, predecessorsOf, selectTargets, successorsOf, upstreamOf } from '../../engine/graph.js';
import type { Pipeline, StageSpec } from '../../engine/model.js';
import { loadOk } from './helpers.js';

/** A hand-built pipeline (buildDag is pure: no YAML needed). */
function pipeline(stages: Array<{ name: string; deps?: string[]; outs?: string[]; declaredAs?: string }>): Pipeline {
  const span = { file: '/x.yaml', line: 1, col: 1 };
  const specs: StageSpec[] = stages.map((s) => ({
    name: s.name,
    declaredAs: s.declaredAs ?? s.name.split('@')[0]!,
    cmd: 'true',
    deps: (s.deps ?? []).map((path) => ({ path })),
    outs: (s.outs ?? []).map((path) => ({ path, cache: true, metric: false })),
    params: {},
    env: {},
    resources: { cpus: 1, memBytes: 0, gpus: 0 },
    executor: 'local',
    slurm: {},
    retries: { count: 0 },
    alwaysRun: false,
    watch: 'auto',
    span,
  }));
  return {
    file: '/x.yaml',
    workdir: '/',
    name: 'x',
    params: {},
    vars: {},
    stages: specs,
    sourceFiles: ['/x.yaml'],
    settings: { cacheDir: '/.pipe/cache', restore: ['copy'], executor: 'local', slurm: {}, summary: [] },
  };
}

function edges(p: Pipeline): string[] {
  const d = buildDag(p);
  if (!d.ok) throw new Error(d.error.map((e) => e.message).join('\n'));
  return d.value.graph.edges().map((e) => `${e.v}->${e.w}:${(d.value.graph.edge(e) as string[]).join(',')}`).sort();
}

describe('buildDag edges (prefix-aware)', () => {
  it('exact files, a dir out feeding a file dep inside it, file outs feeding a dir dep, file vs dir spelling', () => {
    const p = pipeline([
      { name: 'dl', outs: ['data/raw/'] },
      { name: 'prep', deps: ['data/raw/vindr/a.dcm'], outs: ['data/prep/x.csv', 'data/prep/y.csv'] },
      { name: 'train', deps: ['data/prep/'], outs: ['models/m'] },
      { name: 'eval', deps: ['models/m/', 'data/prep/y.csv'], outs: ['out/e.json'] },
      { name: 'unrelated', deps: ['data/prepped/z', 'data/pre'], outs: ['u'] },
      { name: 'all', deps: ['data'], outs: ['all'] },
    ]);
    expect(edges(p)).toEqual([
      'dl->all:data',
      'dl->prep:data/raw/vindr/a.dcm',
      'prep->all:data',
      'prep->eval:data/prep/y.csv',
      'prep->train:data/prep/',
      'train->eval:models/m/',
    ]);
    const d = buildDag(p);
    if (!d.ok) throw new Error();
    expect(d.value.order).toEqual(['dl', 'unrelated', 'prep', 'train', 'all', 'eval']);
    expect(d.value.producers.get('data/prep/y.csv')).toBe('prep');
    expect(d.value.producers.get('data/raw/')).toBe('dl');
    expect(d.value.graph.node('train')).toMatchObject({ name: 'train' });
  });

  it('builds once per pipeline object (loadPipeline already built it)', () => {
    const p = pipeline([{ name: 'a', outs: ['a'] }]);
    const a = buildDag(p);
    const b = buildDag(p);
    expect(a.ok && b.ok && a.value === b.value).toBe(true);
  });

  it('a cycle is a diagnostic printing its path; each cycle once', () => {
    const p = pipeline([
      { name: 'a', deps: ['c.txt'], outs: ['a.txt'] },
      { name: 'b', deps: ['a.txt'], outs: ['b.txt'] },
      { name: 'c', deps: ['b.txt'], outs: ['c.txt'] },
      { name: 'x', deps: ['y/'], outs: ['x/'] },
      { name: 'y', deps: ['x/f'], outs: ['y/f'] },
      { name: 'free', deps: ['a.txt'], outs: ['free'] },
    ]);
    const d = buildDag(p);
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect(d.error.map((e) => e.message)).toEqual([
      'dependency cycle: `a` → `b` → `c` → `a` (`b` reads `a.txt` written by `a`; `c` reads `b.txt` written by `b`; `a` reads `c.txt` written by `c`)',
      'dependency cycle: `x` → `y` → `x` (`y` reads `x/f` written by `x`; `x` reads `y/` written by `y`)',
    ]);
  });

  it('a stage reading inside its own out makes no self edge', () => {
    expect(edges(pipeline([{ name: 'a', deps: ['work/in.txt'], outs: ['work/'] }]))).toEqual([]);
  });
});

describe('OutIndex', () => {
  it('finds producers by exact path, enclosing dir, and contained outs; lists conflicts', () => {
    const idx = new OutIndex([
      { stage: 'a', path: 'd/' },
      { stage: 'b', path: 'd/x/y.csv' },
      { stage: 'c', path: 'e.csv' },
      { stage: 'd', path: 'e.csv' },
      { stage: 'e', path: 'dd' },
    ]);
    expect(idx.producersOf('d/x/').map((o) => o.stage).sort()).toEqual(['a', 'b']);
    expect(idx.producersOf('d').map((o) => o.stage).sort()).toEqual(['a', 'b']);
    expect(idx.producersOf('e.csv').map((o) => o.stage)).toEqual(['c']);
    expect(idx.producersOf('nothing')).toEqual([]);
    expect(idx.conflicts().map(([x, y]) => `${x.stage}:${x.path}|${y.stage}:${y.path}`)).toEqual([
      'a:d/|b:d/x/y.csv',
      'c:e.csv|d:e.csv',
    ]);
  });
});

describe('selectTargets, upstreamOf, downstreamOf', () => {
  const p = pipeline([
    { name: 'dl@a', declaredAs: 'dl', outs: ['raw/a/'] },
    { name: 'dl@b', declaredAs: 'dl', outs: ['raw/b/'] },
    { name: 'train@a', declaredAs: 'train', deps: ['raw/a/'], outs: ['m/a/'] },
    { name: 'train@b', declaredAs: 'train', deps: ['raw/b/'], outs: ['m/b/'] },
    { name: 'fpr@model=a,split=test', declaredAs: 'fpr', deps: ['m/a/'], outs: ['o/a-test'] },
    { name: 'fpr@model=b,split=test', declaredAs: 'fpr', deps: ['m/b/'], outs: ['o/b-test'] },
    { name: 'report', deps: ['o/'], outs: ['report.html'] },
  ]);
  const dag = (() => {
    const d = buildDag(p);
    if (!d.ok) throw new Error('cycle');
    return d.value;
  })();
  const sel = (t: string[], downstream = false) => {
    const r = selectTargets(dag, p, t, { downstream });
    if (!r.ok) return r.error.map((e) => e.message);
    return [...r.value].sort();
  };

  it('a name selects it and everything upstream', () => {
    expect(sel(['train@a'])).toEqual(['dl@a', 'train@a']);
  });
  it('a declaration name selects all its expansions', () => {
    expect(sel(['train'])).toEqual(['dl@a', 'dl@b', 'train@a', 'train@b']);
  });
  it('globs match expanded names', () => {
    expect(sel(['fpr@model=b*'])).toEqual(['dl@b', 'fpr@model=b,split=test', 'train@b']);
    expect(sel(['dl@?'])).toEqual(['dl@a', 'dl@b']);
    expect(sel(['train@[!a]'])).toEqual(['dl@b', 'train@b']);
  });
  it('downstream selects the targets and what depends on them', () => {
    expect(sel(['train@a'], true)).toEqual(['fpr@model=a,split=test', 'report', 'train@a']);
    expect(sel(['dl'], true).length).toBe(7);
  });
  it('no targets means every stage; an unknown target is a diagnostic with a suggestion', () => {
    expect(sel([]).length).toBe(7);
    expect(sel(['trian', 'zzz*'])).toEqual([
      'no stage named `trian` in /x.yaml (did you mean `train`?)',
      'no stage matches `zzz*` in /x.yaml',
    ]);
  });
  it('upstreamOf / downstreamOf return topological order without the stage itself', () => {
    expect(upstreamOf(dag, 'report')).toEqual(['dl@a', 'dl@b', 'train@a', 'train@b', 'fpr@model=a,split=test', 'fpr@model=b,split=test']);
    expect(downstreamOf(dag, 'dl@b')).toEqual(['train@b', 'fpr@model=b,split=test', 'report']);
    expect(upstreamOf(dag, 'dl@a')).toEqual([]);
  });
  it('predecessorsOf / successorsOf agree with the graphlib graph', () => {
    for (const n of dag.order) {
      expect([...predecessorsOf(dag, n)].sort()).toEqual([...(dag.graph.predecessors(n) ?? [])].sort());
      expect([...successorsOf(dag, n)].sort()).toEqual([...(dag.graph.successors(n) ?? [])].sort());
    }
    expect(predecessorsOf(dag, 'report').length).toBe(2);
  });
});

describe('from YAML', () => {
  it('uses: path fields become edges', async () => {
    const p = await loadOk(`
stages:
  train:
    uses: train/cnn
    with: {data: data/, out: models/m/, epochs: 1}
  fpr:
    uses: evaluate/fpr
    with: {model: models/m/, split: test, out: out/fpr.json}
`, { 'data/': '' });
    const d = buildDag(p);
    if (!d.ok) throw new Error();
    expect(d.value.graph.edges().map((e) => `${e.v}->${e.w}`)).toEqual(['train->fpr']);
  });

  it('a 10,000-stage fan-in builds without quadratic matching', async () => {
    const outs = Array.from({ length: 10_000 }, (_, i) => ({ name: `s${i}`, outs: [`parts/p${i}.txt`] }));
    const p = pipeline([...outs, { name: 'merge', deps: ['parts/'], outs: ['all.txt'] }]);
    const d = buildDag(p);
    expect(d.ok && d.value.graph.predecessors('merge')!.length).toBe(10_000);
    expect(d.ok && d.value.order.at(-1)).toBe('merge');
  });
});
