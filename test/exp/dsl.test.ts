// `experiments:` in the pipeline file (issue 13): set, grid and list, validated like every other field — located
// errors, "did you mean" for unknown params, bounds — and the pipeline's own params file that `pipe exp apply` writes.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pipelineWarnings } from '../../engine/dsl/index.js';
import { variantName } from '../../engine/dsl/experiments.js';
import { load, loadErr, loadOk } from '../dsl/helpers.js';

const head = `name: e
params: {lr: 0.001, epochs: 5, model: {depth: 3, width: 16}, unused: 1}
stages:
  train:
    cmd: echo \${params.lr} \${params.epochs} \${params.model.depth} > model.txt
    outs: [model.txt]
  eval:
    cmd: cat model.txt > m.json
    deps: [model.txt]
    metrics: [m.json]
`;

describe('experiments: in the pipeline file', () => {
  it('set, grid (first axis slowest) and list become named variants with their overrides', async () => {
    const p = await loadOk(`${head}experiments:
  high-lr:
    set: {lr: 0.01}
    desc: does a higher rate help?
  sweep:
    grid: {lr: [0.0005, 0.002], model.depth: [2, 4]}
    targets: [eval]
    metric: score
  picks:
    list:
      - {lr: 0.1, epochs: 1}
      - {model.width: 32}
`);
    const [set, grid, list] = p.experiments!;
    expect(set).toMatchObject({ name: 'high-lr', kind: 'set', desc: 'does a higher rate help?', variants: [{ name: 'high-lr', overrides: { lr: 0.01 } }] });
    expect(grid!.kind).toBe('grid');
    expect(grid!.targets).toEqual(['eval']);
    expect(grid!.metric).toBe('score');
    expect(grid!.variants.map((v) => v.overrides)).toEqual([
      { lr: 0.0005, 'model.depth': 2 },
      { lr: 0.0005, 'model.depth': 4 },
      { lr: 0.002, 'model.depth': 2 },
      { lr: 0.002, 'model.depth': 4 },
    ]);
    // Stable short names: the experiment and a hash of the overrides (key order does not matter).
    expect(grid!.variants[0]!.name).toMatch(/^sweep-[0-9a-f]{6}$/);
    expect(grid!.variants[0]!.name).toBe(variantName('sweep', { 'model.depth': 2, lr: 0.0005 }));
    expect(new Set(grid!.variants.map((v) => v.name)).size).toBe(4);
    expect(list!.variants.map((v) => v.overrides)).toEqual([{ lr: 0.1, epochs: 1 }, { 'model.width': 32 }]);
    expect(p.experiments!.map((e) => e.span.line)).toEqual([12, 15, 19]);
  });

  it('values may interpolate params and vars; fragments declare experiments too', async () => {
    const p = await loadOk(`${head}vars: {rates: [0.1, 0.2]}\ninclude: [more.yaml]\nexperiments:\n  v:\n    grid: {lr: \${vars.rates}}\n`, {
      'more.yaml': 'experiments:\n  frag:\n    set: {epochs: 9}\n',
    });
    expect(p.experiments!.map((e) => e.name)).toEqual(['v', 'frag']);
    expect(p.experiments![0]!.variants.map((v) => v.overrides.lr)).toEqual([0.1, 0.2]);
  });

  it('an unknown param is a located error with "did you mean", as -S is', async () => {
    const e = await loadErr(`${head}experiments:\n  a:\n    grid: {lrr: [1, 2]}\n  b:\n    set: {model.dpth: 4}\n  c:\n    list:\n      - {lr: 1}\n      - {epoch: 2}\n  d:\n    set: {lr.x: 1}\n`);
    expect(e.located).toEqual([
      'pipeline.yaml:13:12 params have no `lrr` (did you mean `lr`?): an experiment overrides existing params (declare it under `params:` first)',
      'pipeline.yaml:15:11 `params.model` has no `dpth` (did you mean `depth`?): an experiment overrides existing params (declare it under `params:` first)',
      'pipeline.yaml:19:10 params have no `epoch` (did you mean `epochs`?): an experiment overrides existing params (declare it under `params:` first)',
      'pipeline.yaml:21:11 `params.lr` is not a mapping, so it has no `x`',
    ]);
    expect(e.errors[0]!.field).toBe('experiments.a.grid.lrr');
    expect(e.rendered).toMatch(/13 \|     grid: \{lrr: \[1, 2\]\}\n\s+\|\s+\^~~/);
  });

  it('shape errors: one of set/grid/list, non-empty lists, mappings, no repeats, unknown keys, bad targets', async () => {
    const e = await loadErr(`${head}experiments:
  none: {desc: x}
  both: {set: {lr: 1}, grid: {lr: [1]}}
  empty-grid: {grid: {lr: []}}
  scalar-axis: {grid: {lr: 0.1}}
  empty-list: {list: []}
  bad-item: {list: [3]}
  repeat: {list: [{lr: 1}, {lr: 1}]}
  twice: {grid: {lr: [1, 1]}}
  typo: {set: {lr: 1}, metrc: x}
  targets: {set: {lr: 1}, targets: [evl]}
  "bad name!": {set: {lr: 1}}
  not-a-map: 3
`);
    expect(e.lines).toEqual([
      '12:3 experiment `none` needs one of `set:` (one parameter set), `grid:` (every combination) or `list:` (listed sets)',
      '13:24 experiment `both` has `set:` and `grid:`; give exactly one of `set:`, `grid:`, `list:`',
      '14:27 grid axis `lr` is a non-empty list of values (`[0.0005, 0.002]`), not an empty list',
      '15:28 grid axis `lr` is a non-empty list of values (`[0.0005, 0.002]`), not a number',
      '16:22 `list:` is a non-empty list of parameter sets (`- {retrain.lr: 0.01}`), not an empty list',
      '17:21 a parameter set maps dotted param names to values (`{retrain.lr: 0.01}`), not a number',
      '18:28 entry 2 of `list:` repeats entry 1: each variant is a distinct parameter set',
      '19:22 grid axis `lr` lists 1 twice: each value makes distinct variants',
      '20:24 unknown key `metrc` in experiment `typo` (did you mean `metric`?)',
      '21:37 `targets` names `evl`, which matches no stage (did you mean `eval`?)',
      '22:3 experiment name `bad name!` may use only letters, digits, `_`, `.` and `-` (it names files and variants)',
      '23:14 experiment `not-a-map` is a mapping with one of `set:`, `grid:` or `list:`, not a number',
    ]);
  });

  it('a name that would collide with the experiments folder\'s own files or overflow a file name is refused', async () => {
    // `lock` is that folder's lock file (a `set:` variant named `lock` deleted the lock its own run held and left a
    // folder there: every later exp run/apply/remove refused); `<x>.json` is the record of variant `<x>`.
    const long = 'a'.repeat(194);
    const e = await loadErr(`${head}experiments:\n  lock: {set: {lr: 1}}\n  lock.break: {set: {lr: 1}}\n  high.json: {set: {lr: 2}}\n  ${long}: {set: {lr: 3}}\n`);
    expect(e.lines).toEqual([
      '12:3 experiment name `lock` is the name of the experiments\' lock file; choose another',
      '13:3 experiment name `lock.break` is the name of the experiments\' lock file; choose another',
      '14:3 experiment name `high.json` ends in `.json`, the name of a variant\'s record; choose another',
      `15:3 experiment name \`${long}\` is 194 characters long, over the limit of 193 (it names files and variants)`,
    ]);
    expect((await load(`${head}experiments:\n  locked: {set: {lr: 1}}\n  json: {set: {lr: 2}}\n  ${'a'.repeat(193)}: {set: {lr: 3}}\n`)).ok).toBe(true);
  });

  it('a grid is bounded before its variants are built (PIPE_MAX_VARIANTS)', async () => {
    const axis = `[${Array.from({ length: 40 }, (_, i) => i).join(', ')}]`;
    const e = await loadErr(`${head}experiments:\n  huge:\n    grid: {lr: ${axis}, epochs: ${axis}}\n`);
    expect(e.lines).toEqual(['13:11 `grid:` of experiment `huge` is 40 × 40 = 1,600 variants, over the limit of 1,000 per experiment; set PIPE_MAX_VARIANTS to raise it']);
    const ok = await load(`${head}experiments:\n  huge:\n    grid: {lr: ${axis}, epochs: ${axis}}\n`, {}, { limits: { variants: 2000 } });
    expect(ok.ok).toBe(true);
  });

  it('a param no stage uses is a warning: its variants would compute what the baseline does', async () => {
    const p = await loadOk(`${head}experiments:\n  pointless:\n    set: {unused: 2}\n`);
    expect(pipelineWarnings(p).map((d) => [d.span?.line, d.message])).toEqual([
      [13, 'no stage uses param `unused`: every variant of experiment `pointless` would compute what the baseline computes'],
    ]);
  });

  it('the same name twice (main file and a fragment) is an error naming both places', async () => {
    const e = await loadErr(`${head}include: [f.yaml]\nexperiments:\n  a: {set: {lr: 1}}\n`, { 'f.yaml': 'experiments:\n  a: {set: {lr: 2}}\n' });
    expect(e.located).toEqual(['f.yaml:2:3 experiment `a` is defined twice: also at pipeline.yaml:13:3']);
  });
});

describe('<name>.params.yaml, the params `pipe exp apply` writes', () => {
  it('is merged after params_files and before -S; it names the applied variant in a warning; appliedParams: false ignores it', async () => {
    const r = await load(head, { 'pipeline.params.yaml': '# Written by `pipe exp apply sweep-1a2b3c` (now): ...\n{"lr": 0.5, "model": {"depth": 7}}\n' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.pipeline.params).toMatchObject({ lr: 0.5, epochs: 5, model: { depth: 7, width: 16 } });
    expect(r.pipeline.sourceFiles).toContain(path.join(r.dir, 'pipeline.params.yaml'));
    expect(pipelineWarnings(r.pipeline).map((d) => [d.span?.line, d.message])).toEqual([
      [1, expect.stringMatching(/^the params of experiment variant sweep-1a2b3c are in force \(written by `pipe exp apply`\); delete \S*pipeline\.params\.yaml to return to the pipeline's own$/)],
    ]);
    const { loadPipeline } = await import('../../engine/dsl/index.js');
    const over = await loadPipeline(r.file, { resolveKind: () => undefined, overrides: ['lr=0.9'] });
    expect(over.ok && over.value.params.lr).toBe(0.9);
    const plain = await loadPipeline(r.file, { resolveKind: () => undefined, appliedParams: false });
    expect(plain.ok && plain.value.params.lr).toBe(0.001);
    // A hand-written params file is merged too, without the warning.
    writeFileSync(path.join(r.dir, 'pipeline.params.yaml'), 'epochs: 2\n');
    const hand = await loadPipeline(r.file, { resolveKind: () => undefined });
    expect(hand.ok && hand.value.params.epochs).toBe(2);
    expect(hand.ok && pipelineWarnings(hand.value)).toEqual([]);
  });
});
