import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyOverride, parseOverride } from '../../engine/dsl/params.js';
import { load, loadErr, loadOk, stage, workspace } from './helpers.js';
import { loadPipeline } from '../../engine/dsl/index.js';
import { resolveKind } from './helpers.js';

const BASE = `
params:
  lr: 0.001
  model: {depth: 3, opt: {name: adam, beta: 0.9}}
  tag: base
stages:
  s:
    cmd: train --lr \${params.lr} --depth \${params.model.depth} --opt \${params.model.opt.name} --tag \${params.tag}
    outs: [m]
`;

describe('params overrides (-S)', () => {
  it('set nested keys by dotted name; values are YAML scalars', async () => {
    const p = await loadOk(BASE, {}, { overrides: ['lr=0.01', 'model.depth=5', 'model.opt.name=sgd', 'tag=123abc'] });
    expect(p.params).toEqual({ lr: 0.01, model: { depth: 5, opt: { name: 'sgd', beta: 0.9 } }, tag: '123abc' });
    expect(stage(p, 's').cmd).toBe('train --lr 0.01 --depth 5 --opt sgd --tag 123abc');
    expect(stage(p, 's').params).toEqual({ lr: 0.01, 'model.depth': 5, 'model.opt.name': 'sgd', tag: '123abc' });
  });

  it('an unknown key is an error with a suggestion; `+key=` adds it', async () => {
    const e = await loadErr(BASE, {}, { overrides: ['lrr=0.1', 'model.dpeth=4', 'lr.x=1', 'novalue'] });
    expect(e.lines).toEqual([
      '- `-S lrr=0.1`: params have no `lrr` (did you mean `lr`?); write `-S +lrr=...` to add a new param',
      '- `-S model.dpeth=4`: `params.model` has no `dpeth` (did you mean `depth`?); write `-S +model.dpeth=...` to add a new param',
      '- `-S lr.x=1`: `params.lr` is not a mapping, so it has no `x`',
      '- `-S novalue`: expected `key=value` (e.g. `-S lr=0.01`, `-S model.depth=3`)',
    ]);
    const p = await loadOk(BASE, {}, { overrides: ['+extra.seed=7', '+tag2=[a, b]'] });
    expect(p.params.extra).toEqual({ seed: 7 });
    expect(p.params.tag2).toEqual(['a', 'b']);
  });

  it('does not mutate the defaults (pure)', () => {
    const params = { a: { b: 1 } };
    const o = parseOverride('a.b=2');
    if (typeof o === 'string') throw new Error(o);
    const r = applyOverride(params, o);
    expect(r).toEqual({ params: { a: { b: 2 } } });
    expect(params).toEqual({ a: { b: 1 } });
  });
});

describe('params files', () => {
  it('params_files (relative to the YAML) then --params files (YAML or JSON) merge deeply, then -S', async () => {
    const { dir, file } = workspace(
      BASE.replace('params:', 'params_files: [conf/base.yaml]\nparams:'),
      { 'conf/base.yaml': 'model: {opt: {beta: 0.5}}\ntag: from-file\n' },
    );
    const json = path.join(dir, 'exp.json');
    writeFileSync(json, JSON.stringify({ model: { depth: 8 }, new: { x: 1 } }));
    const r = await loadPipeline(file, { resolveKind, paramsFiles: [json], overrides: ['tag=cli'] });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.params).toEqual({
      lr: 0.001,
      model: { depth: 8, opt: { name: 'adam', beta: 0.5 } },
      tag: 'cli',
      new: { x: 1 },
    });
    expect(r.value.sourceFiles).toEqual([file, path.join(dir, 'conf/base.yaml'), json]);
  });

  it('a missing params file is an error at its line', async () => {
    const e = await loadErr(BASE.replace('params:', 'params_files: [nope.yaml]\nparams:'));
    expect(e.lines).toEqual(['2:16 cannot read nope.yaml: no such file']);
  });
});

describe('includes', () => {
  const MAIN = `
name: main
include: [parts/a.yaml, parts/b.yaml]
params: {lr: 0.5, shared: {x: main}}
vars: {who: main}
stages:
  top:
    cmd: cat a.txt b.txt > top.txt
    deps: [a.txt, b.txt]
    outs: [top.txt]
`;
  const A = `
params: {lr: 0.1, a_only: 1, shared: {x: a, y: a}}
vars: {who: a, a_var: va}
stages:
  a:
    cmd: echo \${params.a_only} \${vars.a_var} \${vars.who} > a.txt
    outs: [a.txt]
`;
  const B = `
include: [c.yaml]
stages:
  b:
    cmd: echo \${params.shared.y} \${params.c_only} > b.txt
    outs: [b.txt]
`;
  const C = `
params: {c_only: 3}
`;

  it('merge params and vars (the including file wins) and collect stages and source files', async () => {
    const p = await loadOk(MAIN, { 'parts/a.yaml': A, 'parts/b.yaml': B, 'parts/c.yaml': C });
    expect(p.params).toEqual({ lr: 0.5, a_only: 1, shared: { x: 'main', y: 'a' }, c_only: 3 });
    expect(p.vars).toEqual({ who: 'main', a_var: 'va' });
    expect(p.stages.map((s) => s.name)).toEqual(['top', 'a', 'b']);
    expect(stage(p, 'a').cmd).toBe('echo 1 va main > a.txt');
    expect(stage(p, 'b').cmd).toBe('echo a 3 > b.txt');
    expect(stage(p, 'a').span.file).toBe(path.join(path.dirname(p.file), 'parts/a.yaml'));
    expect(p.sourceFiles.map((f) => path.relative(path.dirname(p.file), f))).toEqual([
      'parts/a.yaml',
      'parts/c.yaml',
      'parts/b.yaml',
      'pipeline.yaml',
    ]);
  });

  it('a stage defined twice is an error naming both places; fragments may not hold settings', async () => {
    const e = await loadErr(MAIN, {
      'parts/a.yaml': A,
      'parts/b.yaml': `settings: {executor: slurm}\nstages:\n  a:\n    cmd: x\n    outs: [z]\n`,
    });
    // The main file's problems first, then the fragments' in include order.
    expect(e.located).toEqual([
      'pipeline.yaml:9:19 dep `b.txt` does not exist and no stage writes it (did you mean `a.txt`, written by `a`?) (looked for b.txt)',
      'parts/b.yaml:1:1 unknown key `settings` in fragment parts/b.yaml (`settings:` is only allowed in the main pipeline file)',
      'parts/b.yaml:3:3 stage `a` is defined twice: also at parts/a.yaml:5:3 (stage names are unique across all included files)',
    ]);
  });

  it('include globs expand to the matching files, sorted; a glob matching nothing is a warning', async () => {
    const p = await loadOk(`include: [parts/*.yaml, none/*.yaml]\nstages: {}\n`, {
      'parts/b.yaml': 'stages:\n  b: {cmd: x, outs: [b]}\n',
      'parts/a.yaml': 'stages:\n  a: {cmd: x, outs: [a]}\n',
      'parts/c.yml': 'stages:\n  c: {cmd: x, outs: [c]}\n',
    });
    expect(p.stages.map((s) => s.name)).toEqual(['a', 'b']);
    expect(p.sourceFiles.map((f) => path.relative(path.dirname(p.file), f) || '.')).toEqual(['parts/a.yaml', 'parts/b.yaml', 'pipeline.yaml', 'parts']);
    const { pipelineWarnings } = await import('../../engine/dsl/index.js');
    expect(pipelineWarnings(p).map((d) => d.message)).toEqual(['`include: none/*.yaml` matches no file']);
  });

  it('an include cycle and a missing include are errors', async () => {
    const e = await loadErr(`include: [x.yaml, missing.yaml]\nstages: {}\n`, { 'x.yaml': 'include: [pipeline.yaml]\n' });
    expect(e.located).toEqual([
      'pipeline.yaml:1:19 cannot read missing.yaml: no such file',
      'x.yaml:1:11 include cycle: pipeline.yaml → x.yaml → pipeline.yaml',
    ]);
  });
});

describe('load options', () => {
  it('fileExists is consulted for deps no stage writes (and for the pipeline\'s own params file)', async () => {
    const asked: string[] = [];
    const r = await load(`stages:\n  s: {cmd: x, deps: [virtual.csv], outs: [o]}\n`, {}, {
      fileExists: (p) => {
        asked.push(p);
        return p.endsWith('virtual.csv');
      },
    });
    expect(r.ok).toBe(true);
    expect(asked).toEqual([path.join(r.dir, 'pipeline.params.yaml'), path.join(r.dir, 'virtual.csv')]);
  });
});
