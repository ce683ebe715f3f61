import { describe, expect, it } from 'vitest';
import { ISSUE_EXAMPLE, loadErr, loadOk, stage } from './helpers.js';

const ISSUE_FILES = { 'train.js': '', 'data/vindr_cxr/': '', 'data/padchest/': '' };

describe('the issue example', () => {
  it('loads verbatim and expands foreach and matrix', async () => {
    const p = await loadOk(ISSUE_EXAMPLE, ISSUE_FILES);
    expect(p.name).toBe('demo');
    expect(p.stages.map((s) => s.name)).toEqual([
      'train@vindr_cxr',
      'train@padchest',
      'eval@model=vindr_cxr,split=test',
      'eval@model=vindr_cxr,split=calib',
      'eval@model=padchest,split=test',
      'eval@model=padchest,split=calib',
    ]);
    const t = stage(p, 'train@padchest');
    expect(t.declaredAs).toBe('train');
    expect(t.item).toBe('padchest');
    expect(t.cmd).toBe('node train.js --data data/padchest --lr 0.001 --out models/padchest');
    expect(t.deps.map((d) => d.path)).toEqual(['train.js', 'data/padchest/']);
    expect(t.outs).toMatchObject([{ path: 'models/padchest/', cache: true, metric: false }]);
    expect(t.params).toEqual({ lr: 0.001 });
    expect(t.resources).toEqual({ cpus: 1, memBytes: 8 * 1024 ** 3, gpus: 1 });
    expect(t.watch).toBe('manual'); // GPU stage
    expect(t.span).toMatchObject({ line: 5, col: 3 });
    expect(t.deps[1]!.span).toMatchObject({ line: 11, col: 11 });

    const e = stage(p, 'eval@model=padchest,split=calib');
    expect(e.uses).toBe('evaluate/fpr');
    expect(e.item).toEqual({ model: 'padchest', split: 'calib' });
    expect(e.with).toEqual({
      model: 'models/padchest/',
      split: 'calib',
      out: 'out/fpr-padchest-calib.json',
      threshold: 0.5,
      seeds: 1,
      extra_inputs: [],
      verbose: false,
    });
    expect(e.deps.map((d) => d.path)).toEqual(['models/padchest/']);
    expect(e.outs.map((o) => o.path)).toEqual(['out/fpr-padchest-calib.json']);
    expect(e.resources).toEqual({ cpus: 2, memBytes: 0, gpus: 0 }); // manifest default cpus
    expect(e.watch).toBe('auto');
    expect(e.executor).toBe('local');
    expect(e.retries).toEqual({ count: 0 });
  });
});

describe('foreach', () => {
  it('over a mapping names stages by key and exposes ${key} and ${item}', async () => {
    const p = await loadOk(`
stages:
  fetch:
    foreach:
      vindr: {url: "http://x/v.zip", size: 3}
      chex: {url: "http://x/c.zip", size: 5}
    do:
      cmd: fetch \${item.url} \${key} \${item.size}
      outs: [raw/\${key}.zip]
`);
    expect(p.stages.map((s) => s.name)).toEqual(['fetch@vindr', 'fetch@chex']);
    expect(stage(p, 'fetch@chex').cmd).toBe('fetch http://x/c.zip chex 5');
    expect(stage(p, 'fetch@chex').item).toEqual({ url: 'http://x/c.zip', size: 5 });
  });

  it('over list objects uses their `name`, else the index', async () => {
    const p = await loadOk(`
stages:
  a:
    foreach: [{name: small, n: 1}, {name: big, n: 9}]
    do: {cmd: "run \${item.n}", outs: ["a-\${item.name}"]}
  b:
    foreach: [{n: 1}, {n: 2}]
    do: {cmd: "run \${item.n}", outs: ["b-\${item.n}"]}
`);
    expect(p.stages.map((s) => s.name)).toEqual(['a@small', 'a@big', 'b@0', 'b@1']);
  });

  it('over ${vars.x} from a mapping, and vars may use params', async () => {
    const p = await loadOk(`
params: {tag: v2}
vars:
  sets: {a: 1, b: 2}
  root: runs/\${params.tag}
stages:
  s:
    foreach: \${vars.sets}
    do:
      cmd: echo \${item}
      outs: [\${vars.root}/\${key}.txt]
`);
    expect(p.stages.map((s) => s.outs[0]!.path)).toEqual(['runs/v2/a.txt', 'runs/v2/b.txt']);
    expect(p.vars).toEqual({ sets: { a: 1, b: 2 }, root: 'runs/v2' });
    // The stage uses `vars.root`, built from `params.tag`: it depends on that param.
    expect(p.stages[0]!.params).toEqual({ tag: 'v2' });
  });

  it('expands 10,000 items', async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => `i${i}`);
    const p = await loadOk(`
vars: {items: [${items.join(', ')}]}
stages:
  t:
    foreach: \${vars.items}
    do: {cmd: "touch out/\${item}", outs: ["out/\${item}"]}
`);
    expect(p.stages).toHaveLength(10_000);
    expect(p.stages[9_999]!.name).toBe('t@i9999');
  });
});

describe('matrix', () => {
  it('takes the product in axis declaration order, with object values named by `name`', async () => {
    const p = await loadOk(`
vars: {models: [{name: m1, arch: resnet}, {name: m2, arch: vit}]}
stages:
  fpr:
    matrix:
      model: \${vars.models}
      split: [test, calib]
      seed: [1, 2]
    do:
      cmd: fpr --arch \${item.model.arch} --split \${item.split} --seed \${item.seed}
      outs: [out/\${item.model.name}-\${item.split}-\${item.seed}.json]
`);
    expect(p.stages.map((s) => s.name)).toEqual([
      'fpr@model=m1,split=test,seed=1',
      'fpr@model=m1,split=test,seed=2',
      'fpr@model=m1,split=calib,seed=1',
      'fpr@model=m1,split=calib,seed=2',
      'fpr@model=m2,split=test,seed=1',
      'fpr@model=m2,split=test,seed=2',
      'fpr@model=m2,split=calib,seed=1',
      'fpr@model=m2,split=calib,seed=2',
    ]);
    expect(stage(p, 'fpr@model=m2,split=calib,seed=1').cmd).toBe('fpr --arch vit --split calib --seed 1');
  });
});

describe('interpolation', () => {
  it('keeps the type of a whole ${...} and stringifies inside longer strings', async () => {
    const p = await loadOk(`
params: {t: 0.25, n: 3, on: true, tags: [x, y], spec: {a: 1}}
stages:
  e:
    uses: evaluate/fpr
    with:
      model: m/
      split: test
      out: o.json
      threshold: \${params.t}
      seeds: \${params.n}
      verbose: \${params.on}
      tags: \${params.tags}
      spec: \${params.spec}
      label: t=\${params.t} spec=\${params.spec}
`, { 'm/': '' });
    const e = stage(p, 'e');
    expect(e.with).toMatchObject({ threshold: 0.25, seeds: 3, verbose: true, tags: ['x', 'y'], spec: { a: 1 }, label: 't=0.25 spec={"a":1}' });
    expect(e.params).toEqual({ t: 0.25, n: 3, on: true, tags: ['x', 'y'], spec: { a: 1 } });
  });

  it('records nested params by dotted name, plus the `params:` list', async () => {
    const p = await loadOk(`
params: {model: {lr: 0.1, depth: 4}, data: {root: d}, seed: 7}
stages:
  s:
    cmd: train --lr \${params.model.lr}
    params: [data.root, seed]
    env: {DEPTH: \${params.model.depth}}
    outs: [m]
`);
    expect(stage(p, 's').params).toEqual({ 'model.lr': 0.1, 'model.depth': 4, 'data.root': 'd', seed: 7 });
    expect(stage(p, 's').env).toEqual({ DEPTH: '4' });
  });

  it('interpolates env, resources, list indexes, and $${ escapes a literal ${', async () => {
    const p = await loadOk(`
params: {mem: 2G, cpus: 4, dirs: [a, b]}
stages:
  s:
    cmd: echo $\${HOME} \${params.dirs[1]} \${params.dirs.0}
    env: {OUT: \${params.dirs}, LIT: "x$\${y}"}
    resources: {mem: \${params.mem}, cpus: \${params.cpus}, time: 1h30m}
    outs: [o]
`);
    const s = stage(p, 's');
    expect(s.cmd).toBe('echo ${HOME} b a');
    expect(s.env).toEqual({ OUT: '["a","b"]', LIT: 'x${y}' });
    expect(s.resources).toEqual({ cpus: 4, memBytes: 2 * 1024 ** 3, gpus: 0, timeSec: 5400 });
  });

  it('does not key params read only by where and how a stage runs (resources, executor, slurm, retries, watch, desc)', async () => {
    const p = await loadOk(`
params: {ex: slurm, gpus: 1, part: gpu, tries: 2, w: manual, what: training, lr: 0.1}
stages:
  s:
    desc: \${params.what}
    cmd: train --lr \${params.lr}
    executor: \${params.ex}
    resources: {gpus: \${params.gpus}}
    slurm: {partition: \${params.part}}
    retries: \${params.tries}
    watch: \${params.w}
    outs: [m]
`);
    const s = stage(p, 's');
    expect(s.params).toEqual({ lr: 0.1 });
    expect([s.executor, s.resources.gpus, s.slurm.partition, s.retries.count, s.watch, s.desc]).toEqual(['slurm', 1, 'gpu', 2, 'manual', 'training']);
  });

  it('`with:` may be a whole mapping from vars or the item', async () => {
    const p = await loadOk(`
vars:
  runs:
    - {model: m/, split: test, out: a.json}
    - {model: m/, split: calib, out: b.json, threshold: 0.7}
stages:
  e:
    foreach: \${vars.runs}
    do: {uses: evaluate/fpr, with: \${item}}
`, { 'm/': '' });
    expect(p.stages.map((s) => [s.name, s.with!.threshold, s.outs[0]!.path])).toEqual([
      ['e@0', 0.5, 'a.json'],
      ['e@1', 0.7, 'b.json'],
    ]);
  });

  it('a list in cmd becomes one quoted word per element', async () => {
    const p = await loadOk(`
params: {files: [a.txt, "b c.txt"]}
stages:
  s: {cmd: "cat \${params.files}", outs: [o]}
`);
    expect(stage(p, 's').cmd).toBe(`cat a.txt 'b c.txt'`);
  });
});

describe('stage fields and defaults', () => {
  it('normalises paths and reads outs/metrics objects, cache: false and settings', async () => {
    const p = await loadOk(`
workdir: ws
settings:
  cache_dir: .cache/pipe
  restore: [hardlink, copy]
  executor: slurm
  slurm: {partition: gpu, gpu_flag: gpus, extra: [--exclusive]}
stages:
  s:
    cmd: run
    deps: [./in.csv, sub//dir/, sub/a/../b.txt, ../outside.csv]
    outs:
      - ./out/
      - {path: big.bin, cache: false}
    metrics: [m.json, {path: n.json, cache: false}]
    retries: {count: 2, mem_factor: 1.5}
    slurm: {qos: high}
    always_run: true
    watch: auto
    desc: A stage.
  t:
    cmd: run
    cache: false
    executor: local
    outs: [t1, t2/]
    retries: 3
`, { 'ws/in.csv': '', 'ws/sub/dir/': '', 'ws/sub/b.txt': '', 'outside.csv': '' });
    const root = p.file.replace(/\/pipeline\.yaml$/, '');
    expect(p.workdir).toBe(`${root}/ws`);
    const s = stage(p, 's');
    // A dep outside the workspace stays absolute.
    expect(s.deps.map((d) => d.path)).toEqual(['in.csv', 'sub/dir/', 'sub/b.txt', `${root}/outside.csv`]);
    expect(s.outs).toMatchObject([
      { path: 'out/', cache: true, metric: false },
      { path: 'big.bin', cache: false, metric: false },
      { path: 'm.json', cache: true, metric: true },
      { path: 'n.json', cache: false, metric: true },
    ]);
    expect(s.executor).toBe('slurm');
    expect(s.slurm).toEqual({ partition: 'gpu', gpuFlag: 'gpus', extra: ['--exclusive'], qos: 'high' });
    expect(s.retries).toEqual({ count: 2, memFactor: 1.5 });
    expect(s.alwaysRun).toBe(true);
    expect(s.watch).toBe('auto');
    const t = stage(p, 't');
    expect(t.outs.every((o) => !o.cache)).toBe(true);
    expect(t.executor).toBe('local');
    expect(t.watch).toBe('auto');
    expect(t.retries).toEqual({ count: 3 });
    expect(p.settings).toEqual({
      cacheDir: `${root}/ws/.cache/pipe`,
      restore: ['hardlink', 'copy'],
      executor: 'slurm',
      slurm: { partition: 'gpu', gpuFlag: 'gpus', extra: ['--exclusive'] },
      summary: [],
      env: 'inherit',
    });
  });

  it('defaults: name from the file, cache under the workspace, local executor, manual watch on slurm', async () => {
    const p = await loadOk(`
stages:
  a: {cmd: x, outs: [a]}
  b: {cmd: x, outs: [b], executor: slurm}
  c: {uses: train/cnn, with: {data: a, out: models/c/, epochs: 2}}
`);
    expect(p.name).toBe('pipeline');
    expect(p.settings).toEqual({ cacheDir: `${p.workdir}/.pipe/cache`, restore: ['reflink', 'copy'], executor: 'local', slurm: {}, summary: [], env: 'inherit' });
    expect(stage(p, 'a').watch).toBe('auto');
    expect(stage(p, 'b').watch).toBe('manual');
    // Manifest resources (gpus: 1) apply to the uses stage, so it is manual too.
    expect(stage(p, 'c').resources).toEqual({ cpus: 1, memBytes: 4 * 1024 ** 3, gpus: 1 });
    expect(stage(p, 'c').watch).toBe('manual');
    expect(stage(p, 'c').with).toEqual({ data: 'a', out: 'models/c/', lr: 0.001, epochs: 2 });
    expect(p.sourceFiles).toEqual([p.file]);
  });

  it('settings.summary names main outputs: outs of stages (directories included), each located when it is not one', async () => {
    const p = await loadOk(`
params: {out: out}
settings:
  summary: [./\${params.out}/report.html, out/figs/a.svg]
stages:
  report: {cmd: x, outs: [out/report.html]}
  figs: {cmd: x, outs: [out/figs/]}
`);
    expect(p.settings.summary).toEqual(['out/report.html', 'out/figs/a.svg']);
    const e = await loadErr(`
settings:
  summary: [out/report.html, out/nothing.html, ../elsewhere.html]
stages:
  report: {cmd: x, outs: [out/report.html]}
`);
    expect(e.lines).toEqual([
      '3:30 `settings.summary` names `out/nothing.html`, which no stage writes; list outputs of stages (their `outs` or `with:` out fields)',
      '3:48 `summary` lists output paths inside the workspace, not `../elsewhere.html`',
    ]);
    expect((await loadErr('settings: {summary: out/report.html}\nstages:\n  a: {cmd: x, outs: [out/report.html]}\n')).lines).toEqual([
      '1:21 `summary` must be a list of output paths (e.g. `[out/report.html]`), not a string',
    ]);
  });

  it('a list cmd runs its commands in sequence', async () => {
    const p = await loadOk(`
stages:
  s:
    cmd: [mkdir -p o, "touch o/x"]
    outs: [o/]
`);
    expect(stage(p, 's').cmd).toBe('{ mkdir -p o\n}\n{ touch o/x\n}');
  });

  it('merge keys and anchors are resolved', async () => {
    const p = await loadOk(`
vars:
  common: &common
    resources: {cpus: 2}
    env: {A: "1"}
stages:
  s:
    <<: *common
    cmd: run
    outs: [o]
`);
    expect(stage(p, 's').resources.cpus).toBe(2);
    expect(stage(p, 's').env).toEqual({ A: '1' });
  });
});
