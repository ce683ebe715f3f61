// Issue 12: 100,000-stage DAGs stay linear and compact — shared structures for matrix instances, a validated-pipeline
// cache that keeps that sharing, and planning that decides every stage of a long chain correctly with a bounded
// number of decisions in flight. (Speed and memory are figures in bench/engine.ts, not assertions here.)
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_BOUNDS, pruneCachedPipelines, readCachedPipeline, writeCachedPipeline, type CacheInputs } from '../../engine/commands/pipeline-cache.js';
import { buildDag, predecessorsOf } from '../../engine/graph.js';
import type { Pipeline } from '../../engine/model.js';
import { planStages } from '../../engine/run.js';
import { openWorkspace } from '../../engine/workspace.js';
import { loadOk, stage } from './helpers.js';

const matrix = (a: number, b: number, extra = '') =>
  `stages:\n  m:\n    matrix:\n      a: [${Array.from({ length: a }, (_, i) => `a${i}`).join(', ')}]\n      b: [${Array.from({ length: b }, (_, i) => `b${i}`).join(', ')}]\n` +
  `    do:\n      cmd: cp seed.txt out/\${item.a}/\${item.b}.txt\n      deps: [seed.txt, lib/]\n      outs: [out/\${item.a}/\${item.b}.txt]\n${extra}`;

describe('a 100 × 1,000 matrix', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await loadOk(matrix(100, 1000, '      resources: {cpus: 2}\n      env: {MODE: fast}\n'), { 'seed.txt': 'x', 'lib/': '' });
  });

  it('expands to 100,000 stages in axis order (the last axis fastest)', () => {
    expect(p.stages).toHaveLength(100_000);
    expect(p.stages[0]!.name).toBe('m@a=a0,b=b0');
    expect(p.stages[1]!.name).toBe('m@a=a0,b=b1');
    expect(p.stages[1000]!.name).toBe('m@a=a1,b=b0');
    expect(p.stages[99_999]!.name).toBe('m@a=a99,b=b999');
    expect(stage(p, 'm@a=a7,b=b42').item).toEqual({ a: 'a7', b: 'b42' });
    expect(stage(p, 'm@a=a7,b=b42').outs.map((o) => o.path)).toEqual(['out/a7/b42.txt']);
  });

  it('shares every part that is equal across instances: one object, not 100,000 copies', () => {
    const first = p.stages[0]!;
    for (const s of [p.stages[1]!, p.stages[54_321]!, p.stages[99_999]!]) {
      expect(s.resources).toBe(first.resources);
      expect(s.slurm).toBe(first.slurm);
      expect(s.retries).toBe(first.retries);
      expect(s.env).toBe(first.env);
      expect(s.params).toBe(first.params);
      expect(s.span).toBe(first.span);
      expect(s.deps[0]).toBe(first.deps[0]);
      expect(s.deps[1]).toBe(first.deps[1]);
      expect(s.outs[0]!.span).toBe(first.outs[0]!.span);
      expect(s.cmd).not.toBe(first.cmd);
    }
    expect(first.resources).toEqual({ cpus: 2, memBytes: 0, gpus: 0 });
    expect(first.env).toEqual({ MODE: 'fast' });
  });

  it('has a DAG with no edges and the declaration order', () => {
    const d = buildDag(p);
    if (!d.ok) throw new Error('cycle');
    expect(d.value.order).toHaveLength(100_000);
    expect(d.value.order[12_345]).toBe(p.stages[12_345]!.name);
    expect(predecessorsOf(d.value, 'm@a=a3,b=b3')).toEqual([]);
  });
});

describe('the validated-pipeline cache (v3: packed, shared values written once, digested)', () => {
  let home: string;
  const saved = process.env.PIPE_CACHE_HOME;
  beforeAll(() => {
    home = mkdtempSync(path.join(tmpdir(), 'pipe-cache-home-'));
    process.env.PIPE_CACHE_HOME = home;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.PIPE_CACHE_HOME;
    else process.env.PIPE_CACHE_HOME = saved;
    rmSync(home, { recursive: true, force: true });
  });

  const VARIED = `params: {lr: 0.1, __proto__: {x: 1}}
stages:
  prep: {cmd: "echo \${params.lr} > a.csv", outs: [a.csv], desc: prepare}
  eval:
    foreach: [x, y, z]
    do:
      uses: evaluate/fpr
      with: {model: a.csv, split: test, out: "out/\${item}.json", tags: ["\${item}"]}
      metrics: ["out/\${item}.json"]
      retries: {count: 2, mem_factor: 2}
  last: {cmd: "cat out/*", deps: [out/], outs: [{path: all.txt, cache: false}], always_run: true, executor: local, env: {A: "\${params.__proto__.x}"}}
`;

  async function roundTrip(yaml: string, files: Record<string, string> = {}): Promise<{ p: Pipeline; back: Pipeline | undefined; inputs: CacheInputs }> {
    const p = await loadOk(yaml, files);
    const inputs: CacheInputs = { file: p.file, overrides: [], paramsFiles: [], manifests: [] };
    // A clock 10 s ahead: the files are past the racy window (changed in the last 2 s: not cached).
    const exists = files['seed.txt'] ? { [path.join(p.workdir, 'seed.txt')]: true } : {};
    writeCachedPipeline(inputs, p, [], { exists }, Date.now() + 10_000);
    return { p, back: readCachedPipeline(inputs)?.pipeline, inputs };
  }

  it('reads back exactly the pipeline it wrote, stage by stage', async () => {
    const { p, back } = await roundTrip(VARIED);
    expect(back).toBeDefined();
    expect(JSON.parse(JSON.stringify(back))).toEqual(JSON.parse(JSON.stringify(p)));
    // Fields only some stages have come back only on those stages.
    expect(back!.stages.map((s) => s.desc ?? '-')).toEqual(p.stages.map((s) => s.desc ?? '-'));
    expect(back!.stages.map((s) => Object.keys(s))).toEqual(p.stages.map((s) => Object.keys(s)));
  });

  it('keeps matrix instances sharing one object per equal part after reading', async () => {
    const { back } = await roundTrip(matrix(4, 50), { 'seed.txt': 'x', 'lib/': '' });
    const s = back!.stages;
    expect(s).toHaveLength(200);
    expect(s[199]!.resources).toBe(s[0]!.resources);
    expect(s[199]!.deps).toBe(s[0]!.deps);
    expect(s[199]!.span).toBe(s[0]!.span);
    expect(s[199]!.outs[0]!.span).toBe(s[0]!.outs[0]!.span);
    expect(s[199]!.outs[0]!.path).toBe('out/a3/b49.txt');
  });

  it('is not used when a source file changed, or when what validation saw on disk changed', async () => {
    const { p, inputs } = await roundTrip(VARIED);
    writeFileSync(p.file, `${VARIED}# edited\n`);
    expect(readCachedPipeline(inputs)).toBeUndefined();
    // Same size and mtime, different ctime (`touch -r`-style restores cannot fool it).
    const { back } = await roundTrip(VARIED);
    expect(back).toBeDefined();
    const { inputs: again0 } = await roundTrip(VARIED);
    const t = new Date(Date.now() - 60_000);
    utimesSync(again0.file, t, t);
    expect(readCachedPipeline(again0)).toBeUndefined();
    const again = await roundTrip(matrix(2, 2), { 'seed.txt': 'x', 'lib/': '' });
    expect(again.back).toBeDefined();
    rmSync(path.join(again.p.workdir, 'seed.txt'));
    expect(readCachedPipeline(again.inputs)).toBeUndefined();
  });

  it('an entry not as pipe wrote it (another shape, one character changed) is a miss, never a crash or another pipeline', async () => {
    const { p, inputs } = await roundTrip(VARIED);
    const dir = path.join(process.env.PIPE_CACHE_HOME!, 'pipelines');
    const file = readdirSync(dir)
      .map((n) => path.join(dir, n))
      .find((f) => readFileSync(f, 'utf8').includes(JSON.stringify(p.file)))!;
    const good = readFileSync(file, 'utf8');
    expect(readCachedPipeline(inputs)).toBeDefined();
    const [header, body] = [good.slice(0, good.indexOf('\n')), good.slice(good.indexOf('\n') + 1, good.lastIndexOf('\n', good.length - 2))];
    const variants: Array<[string, string]> = [
      // Each crashed `loadAll` with a TypeError (a stack trace, exit 70) before the entry had a digest.
      ['header null', `null\n${body}\n`],
      ['header without its maps', `{"v":3}\n${body}\n`],
      ['body null', `${header}\nnull\n`],
      ['body a list', `${header}\n[]\n`],
      ['stages.list [5]', `${header}\n${body.replace(/"list":\[.*?\],"spans"/, '"list":[5],"spans"')}\n`],
      // Valid JSON of the right shape, one character changed: a command pipe would have run though no YAML says so.
      ['a command changed', good.replace('> a.csv', '> b.csv')],
      ['the digest alone changed', good.replace(/[0-9a-f]\n$/, (c) => `${c[0] === '0' ? '1' : '0'}\n`)],
      ['no digest', `${header}\n${body}\n`],
    ];
    for (const [what, text] of variants) {
      expect(text, what).not.toBe(good);
      writeFileSync(file, text);
      expect(() => readCachedPipeline(inputs), what).not.toThrow();
      expect(readCachedPipeline(inputs), what).toBeUndefined();
    }
    writeFileSync(file, good);
    expect(readCachedPipeline(inputs)?.pipeline.stages[0]!.cmd).toContain('> a.csv');
  });

  it('stays within its bounds: a write removes the least recently used entries (a hit keeps its own recent), and nothing that is not an entry', async () => {
    const home = mkdtempSync(path.join(tmpdir(), 'pipe-cache-home-'));
    const before = process.env.PIPE_CACHE_HOME;
    process.env.PIPE_CACHE_HOME = home;
    try {
      const dir = path.join(home, 'pipelines');
      const entries = (): string[] => readdirSync(dir).filter((n) => /^[0-9a-f]{32}\.json$/.test(n));
      const at = (f: string, ms: number): void => utimesSync(f, ms / 1000, ms / 1000);
      const day = 86_400_000;
      // An entry in use: written long ago (the oldest of all), then hit, which makes it recent again.
      const used = await roundTrip(VARIED);
      const usedFile = path.join(dir, entries()[0]!);
      at(usedFile, Date.now() - 30 * day);
      expect(readCachedPipeline(used.inputs)).toBeDefined();
      expect(statSync(usedFile).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
      // 250 entries of other pipelines and variants, a day apart from 20 days ago; a file of the user's; a temp of
      // a write interrupted yesterday, and one being written now.
      const other = (i: number): string => path.join(dir, `${i.toString(16).padStart(32, '0')}.json`);
      for (let i = 0; i < 250; i++) {
        writeFileSync(other(i), 'an entry');
        at(other(i), Date.now() - 20 * day + i * 60_000);
      }
      writeFileSync(path.join(dir, 'notes.txt'), 'not an entry');
      const deadTemp = path.join(dir, `${'f'.repeat(32)}.json.tmp-1-000000000001`);
      const liveTemp = path.join(dir, `${'e'.repeat(32)}.json.tmp-1-000000000002`);
      writeFileSync(deadTemp, 'half');
      at(deadTemp, Date.now() - day);
      writeFileSync(liveTemp, 'half');
      expect(entries()).toHaveLength(251);

      // A write past the bound (200 entries) removes the oldest down to 3/4 of it.
      const fresh = await roundTrip(matrix(2, 2), { 'seed.txt': 'x', 'lib/': '' });
      expect(CACHE_BOUNDS.entries).toBe(200);
      expect(entries()).toHaveLength(150);
      expect(fresh.back).toBeDefined();
      expect(readCachedPipeline(used.inputs)).toBeDefined();
      const kept = Array.from({ length: 250 }, (_, i) => i).filter((i) => existsSync(other(i)));
      expect(kept).toEqual(Array.from({ length: 148 }, (_, i) => 102 + i)); // the 102 oldest went
      expect(readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('not an entry');
      expect(existsSync(deadTemp)).toBe(false);
      expect(existsSync(liveTemp)).toBe(true);
      // Within the bounds, a write removes nothing.
      expect(pruneCachedPipelines(dir)).toBe(0);
      // The byte bound alone: 150 entries over 100 bytes go down to 75 bytes.
      expect(pruneCachedPipelines(dir, { entries: 1000, bytes: 100 })).toBeGreaterThan(140);
    } finally {
      if (before === undefined) delete process.env.PIPE_CACHE_HOME;
      else process.env.PIPE_CACHE_HOME = before;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('never writes, prunes or touches through a link: at its pipelines folder (nothing written or removed where it points), or at an entry (its target keeps its times)', async () => {
    const home = mkdtempSync(path.join(tmpdir(), 'pipe-cache-home-'));
    const outside = mkdtempSync(path.join(tmpdir(), 'pipe-outside-'));
    const before = process.env.PIPE_CACHE_HOME;
    process.env.PIPE_CACHE_HOME = home;
    try {
      const dir = path.join(home, 'pipelines');
      const day = 86_400_000;
      const old = (f: string): void => utimesSync(f, (Date.now() - 30 * day) / 1000, (Date.now() - 30 * day) / 1000);
      // An entry in use whose file was moved outside and linked back: a hit would refresh its recency through the link.
      const used = await roundTrip(VARIED);
      const [name] = readdirSync(dir);
      renameSync(path.join(dir, name!), path.join(outside, name!));
      symlinkSync(path.join(outside, name!), path.join(dir, name!));
      old(path.join(outside, name!));
      const mtime = statSync(path.join(outside, name!)).mtimeMs;
      readCachedPipeline(used.inputs);
      expect(statSync(path.join(outside, name!)).mtimeMs).toBe(mtime);
      // The folder itself a link to a folder of the user's holding files named as entries, past the bound.
      rmSync(dir, { recursive: true });
      symlinkSync(outside, dir);
      const names = Array.from({ length: 250 }, (_, i) => `${i.toString(16).padStart(32, '0')}.json`);
      for (const n of names) {
        writeFileSync(path.join(outside, n), 'KEEP');
        old(path.join(outside, n));
      }
      const listed = readdirSync(outside).sort();
      await roundTrip(matrix(2, 2), { 'seed.txt': 'x', 'lib/': '' });
      expect(pruneCachedPipelines(dir)).toBe(0);
      expect(readdirSync(outside).sort()).toEqual(listed);
      for (const n of names) expect(readFileSync(path.join(outside, n), 'utf8')).toBe('KEEP');
    } finally {
      if (before === undefined) delete process.env.PIPE_CACHE_HOME;
      else process.env.PIPE_CACHE_HOME = before;
      rmSync(home, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('planning a chain longer than the pool of decisions in flight', () => {
  it('decides every stage, in order, each after its upstream', async () => {
    // 300 stages: s0 → s1 → … → s299, plus a wide fan of 200 readers of s0's out.
    const lines = ['stages:'];
    for (let i = 0; i < 300; i++) lines.push(`  s${i}: {cmd: "true", ${i ? `deps: [c/${i - 1}.txt], ` : ''}outs: [c/${i}.txt]}`);
    lines.push('  fan:', '    foreach: ${vars.n}', '    do: {cmd: "true", deps: [c/0.txt], outs: ["f/${item}.txt"]}');
    const yaml = `vars: {n: [${Array.from({ length: 200 }, (_, i) => i).join(', ')}]}\n${lines.join('\n')}\n`;
    const p = await loadOk(yaml);
    const d = buildDag(p);
    if (!d.ok) throw new Error('cycle');
    const ws = await openWorkspace(p);
    const order: string[] = [];
    const decisions = await planStages({
      pipeline: p,
      graph: { order: d.value.order, predecessors: (s) => predecessorsOf(d.value, s) },
      workspace: ws,
      selected: new Set(p.stages.map((s) => s.name)),
      emit: (e) => void (e.type === 'plan' && order.push(e.stage)),
      pipeVersion: 'test',
    });
    expect(decisions.size).toBe(500);
    expect([...decisions.keys()]).toEqual(d.value.order);
    expect(decisions.get('s0')!.reasons).toEqual([{ code: 'never-ran', text: 'new stage (never ran)' }]);
    expect(decisions.get('s299')!.reasons).toEqual([{ code: 'upstream-will-run', text: 'upstream stage s298 will re-run' }]);
    expect(decisions.get('fan@199')!.reasons).toEqual([{ code: 'upstream-will-run', text: 'upstream stage s0 will re-run' }]);
    // Each stage was decided after its upstream.
    for (let i = 1; i < 300; i++) expect(order.indexOf(`s${i}`)).toBeGreaterThan(order.indexOf(`s${i - 1}`));
  });
});
