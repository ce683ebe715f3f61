// Issue 11 (items 9–11, 17) and issue 10 ("no stack traces"): every input the DSL reads has a bound, and bad bytes
// or shapes are located errors. Real files, a real FIFO, real devices, the real CLI where a flag or variable is the
// subject.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8, readText } from '../../engine/dsl/files.js';
import { readLimits } from '../../engine/dsl/limits.js';
import { parseYaml } from '../../engine/dsl/load.js';
import { pipe, pipeBin, workspace as cliWorkspace } from '../engine/helpers.js';
import { loadErr, loadOk, stage, workspace } from './helpers.js';

const CMD = '{cmd: "true", outs: [o]}';

describe('stage count bound (PIPE_MAX_STAGES)', () => {
  const nineAxes = ['stages:', '  m:', '    matrix:'];
  for (let i = 0; i < 9; i++) nineAxes.push(`      a${i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]`);
  nineAxes.push('    do: {cmd: "echo ${item.a0}", outs: ["o/${item.a0}-${item.a1}-${item.a2}-${item.a3}-${item.a4}-${item.a5}-${item.a6}-${item.a7}-${item.a8}"]}');

  it('a 9-axis × 10-value matrix is refused at its `matrix:` key, naming the product, the limit and the variable', async () => {
    // Before: 51 s, then "heap out of memory". Now refused before one combination is built.
    const e = await loadErr(nineAxes.join('\n') + '\n');
    expect(e.lines).toEqual([
      '3:5 `matrix:` of stage `m` expands to 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 = 1,000,000,000 stages, ' +
        'over the limit of 200,000 stages in one pipeline; set PIPE_MAX_STAGES to raise it',
    ]);
  });

  it('counts every declaration together; the limit can be lowered or raised', async () => {
    const yaml = `stages:\n  a: ${CMD.replace('[o]', '[a]')}\n  f:\n    foreach: [1, 2, 3]\n    do: {cmd: "true", outs: ["f\${item}"]}\n  g:\n    matrix: {x: [1, 2], y: [1, 2]}\n    do: {cmd: "true", outs: ["g\${item.x}\${item.y}"]}\n`;
    const e = await loadErr(yaml, {}, { limits: { stages: 5 } });
    expect(e.lines).toEqual([
      '7:5 `matrix:` of stage `g` expands to 2 × 2 = 4 stages (after the 4 stages declared before it), over the limit of 5 stages in one pipeline; set PIPE_MAX_STAGES to raise it',
    ]);
    const f = await loadErr(yaml, {}, { limits: { stages: 3 } });
    expect(f.lines[0]).toMatch(/^4:5 `foreach:` of stage `f` has 3 items \(after the 1 stages declared before it\), over the limit of 3 stages/);
    const one = await loadErr(`stages:\n  a: ${CMD.replace('[o]', '[a]')}\n  b: ${CMD}\n`, {}, { limits: { stages: 1 } });
    expect(one.lines).toEqual(['3:3 stage `b` is one stage more (after the 1 stages declared before it), over the limit of 1 stages in one pipeline; set PIPE_MAX_STAGES to raise it']);
    const p = await loadOk(yaml, {}, { limits: { stages: 8 } });
    expect(p.stages).toHaveLength(8);
  });

  it('the CLI reads PIPE_MAX_STAGES; a bad value is an error, not ignored', () => {
    const ws = cliWorkspace({ 'p.yaml': `stages:\n  f:\n    foreach: [1, 2, 3]\n    do: {cmd: "true", outs: ["f\${item}"]}\n` });
    try {
      const low = pipe(ws.dir, ['status', 'p.yaml'], { PIPE_MAX_STAGES: '2' });
      expect(low.code).toBe(2);
      expect(low.stderr).toContain('p.yaml:3:5: error: stage `f`: `foreach:` of stage `f` has 3 items, over the limit of 2 stages in one pipeline; set PIPE_MAX_STAGES to raise it');
      expect(low.stderr).not.toMatch(/\n\s+at /); // no stack trace
      const ok = pipe(ws.dir, ['status', 'p.yaml'], { PIPE_MAX_STAGES: '3' });
      expect(ok.code).toBe(0);
      // The validated-pipeline cache is keyed by the limits too: lowering them again is not answered from it.
      expect(pipe(ws.dir, ['status', 'p.yaml'], { PIPE_MAX_STAGES: '2' }).code).toBe(2);
      const bad = pipe(ws.dir, ['status', 'p.yaml'], { PIPE_MAX_STAGES: 'lots' });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('error: PIPE_MAX_STAGES=lots is not a whole number ≥ 1');
    } finally {
      ws.cleanup();
    }
  });

  it('limits from the environment: sizes with units, a ceiling on depth', () => {
    expect(readLimits({ PIPE_MAX_FILE_BYTES: '1G', PIPE_MAX_YAML_DEPTH: '400', PIPE_MAX_STAGES: '1000000' })).toEqual({
      limits: { fileBytes: 1024 ** 3, yamlDepth: 400, stages: 1_000_000, variants: 1_000 },
      problems: [],
    });
    expect(readLimits({ PIPE_MAX_YAML_DEPTH: '5000', PIPE_MAX_FILE_BYTES: 'big' }).problems).toEqual([
      'PIPE_MAX_FILE_BYTES=big is not a size (bytes, or a number with K, M or G)',
      'PIPE_MAX_YAML_DEPTH=5000 is above 500, the most pipe can nest without exhausting its stack',
    ]);
  });
});

describe('YAML depth bound (PIPE_MAX_YAML_DEPTH)', () => {
  const flow = (n: number) => `stages:\n  a:\n    cmd: x\n    outs: [o]\n    env: {X: ${'['.repeat(n)}${']'.repeat(n)}}\n`;
  const block = (n: number) => {
    const lines = ['stages:', '  a:', '    cmd: x', '    outs: [o]', '    desc:'];
    for (let i = 0; i < n; i++) lines.push(`${'  '.repeat(i + 3)}k:`);
    return `${lines.join('\n')}\n`;
  };

  it('4,000-deep flow and block nesting are located errors, not "Maximum call stack size exceeded"', async () => {
    const f = await loadErr(flow(4000));
    expect(f.lines).toEqual([
      '5:111 YAML nested more than 100 levels deep (mappings and lists inside each other); set PIPE_MAX_YAML_DEPTH to raise it (at most 500)',
    ]);
    const b = await loadErr(block(4000));
    expect(b.lines[0]).toMatch(/^103:\d+ YAML nested more than 100 levels deep/);
    // The same through the yaml package (an anchor keeps the fast parser out) and through an alias.
    const viaYaml = await loadErr(flow(4000).replace('cmd: x', 'cmd: &c x'));
    expect(viaYaml.lines[0]).toMatch(/^5:111 YAML nested more than 100 levels deep/);
    const alias = ['x0: &x0 [a]'];
    for (let i = 1; i <= 120; i++) alias.push(`x${i}: &x${i} [*x${i - 1}]`);
    const viaAlias = await loadErr(`${alias.join('\n')}\nstages: {}\n`);
    expect(viaAlias.lines[0]).toMatch(/YAML nested more than 100 levels deep .*, counting what aliases expand to$/);
  });

  it('the limit is exact (100 levels load, 101 do not) and may be raised up to its ceiling without exhausting the stack', async () => {
    // The root mapping, `stages`, `a` and `env` are 4 levels: 96 more lists make 100.
    expect(stage(await loadOk(flow(96)), 'a').env.X).toBe('['.repeat(96) + ']'.repeat(96));
    expect((await loadErr(flow(97))).lines[0]).toMatch(/YAML nested more than 100 levels deep/);
    const at = (n: number) => parseYaml('/t.yaml', `${'['.repeat(n)}${']'.repeat(n)}\n`, { maxDepth: 100 }).diagnostics;
    expect(at(100)).toEqual([]);
    expect(at(101)).toHaveLength(1);
    // At the ceiling, through the yaml package's recursive composer (an anchor keeps the fast parser out) and
    // through the whole pipeline (interpolation, params merging, keys): no stack is exhausted.
    for (const [open, close] of [['[', ']'], ['{k: ', '}']]) {
      const text = `params:\n  deep: &d ${open.repeat(497)}1${close.repeat(497)}\nstages:\n  a: {cmd: "echo \${params.deep}", outs: [o]}\n`;
      const p = await loadOk(text, {}, { limits: { yamlDepth: 500 } });
      expect(stage(p, 'a').cmd).toContain('1');
      expect(parseYaml('/t.yaml', text.replace(' &d', ''), { maxDepth: 500 }).diagnostics).toEqual([]);
    }
    expect(parseYaml('/t.yaml', block(497), { maxDepth: 500 }).diagnostics).toEqual([]);
  });

  it('a -S value is bounded the same way', async () => {
    const e = await loadErr(`params: {x: 1}\nstages:\n  a: ${CMD}\n`, {}, { overrides: [`x=${'['.repeat(3000)}${']'.repeat(3000)}`] });
    expect(e.lines).toEqual([
      '- `-S x=…`: the value is YAML nested more than 100 levels deep (mappings and lists inside each other); set PIPE_MAX_YAML_DEPTH to raise it (at most 500)',
    ]);
  });
});

describe('file bound (PIPE_MAX_FILE_BYTES) and regular files only', () => {
  it('`include: [/dev/zero]` and a directory are refused at the include entry without reading them', async () => {
    const e = await loadErr(`include: [/dev/zero, sub]\nstages:\n  a: ${CMD}\n`, { 'sub/': '' });
    expect(e.located).toEqual([
      'pipeline.yaml:1:11 cannot read /dev/zero: it is a character device; pipeline, include and params files must be regular files',
      'pipeline.yaml:1:22 cannot read sub: it is a directory; pipeline, include and params files must be regular files',
    ]);
  });

  it('a FIFO include does not hang: it is refused (no writer is ever opened)', async () => {
    const { dir, file } = workspace(`include: [parts/fifo.yaml]\nstages:\n  a: ${CMD}\n`);
    mkdirSync(path.join(dir, 'parts'));
    execFileSync('mkfifo', [path.join(dir, 'parts', 'fifo.yaml')]);
    const r = readText(path.join(dir, 'parts', 'fifo.yaml'));
    expect(r).toEqual({ error: `cannot read ${path.join(dir, 'parts', 'fifo.yaml')}: it is a FIFO (named pipe); pipeline, include and params files must be regular files` });
    const cli = pipe(dir, ['status', path.basename(file)]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('pipeline.yaml:1:11: error: cannot read parts/fifo.yaml: it is a FIFO (named pipe)');
  });

  it('`--params-file /dev/urandom` is refused naming the flag; an oversized file names the limit and the variable', () => {
    const ws = cliWorkspace({ 'p.yaml': `params: {x: 1}\nstages:\n  a: ${CMD}\n`, 'big.yaml': `x: ${'y'.repeat(3000)}\n` });
    try {
      const r = pipe(ws.dir, ['status', 'p.yaml', '--params-file', '/dev/urandom']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('error: `--params-file /dev/urandom`: cannot read /dev/urandom: it is a character device');
      const big = pipe(ws.dir, ['status', 'p.yaml', '--params-file', 'big.yaml'], { PIPE_MAX_FILE_BYTES: '2K' });
      expect(big.code).toBe(2);
      expect(big.stderr).toContain(
        'error: `--params-file big.yaml`: big.yaml is 2.9 KiB, over the limit of 2 KiB for one pipeline, include or params file (set PIPE_MAX_FILE_BYTES to raise it, e.g. PIPE_MAX_FILE_BYTES=256M)',
      );
      expect(pipe(ws.dir, ['status', 'p.yaml', '--params-file', 'big.yaml'], { PIPE_MAX_FILE_BYTES: '4K' }).code).toBe(0);
      const main = pipe(ws.dir, ['status', 'big.yaml'], { PIPE_MAX_FILE_BYTES: '1000' });
      expect(main.stderr).toContain('error: big.yaml is 2.9 KiB, over the limit of 1000 bytes');
    } finally {
      ws.cleanup();
    }
  });

  it('a file whose size stat does not tell (procfs) is still read only up to the limit', () => {
    const r = readText('/proc/self/maps', 100);
    expect('error' in r && r.error).toMatch(/^\/proc\/self\/maps grew while it was read, past the limit of 100 bytes/);
  });
});

describe('invalid UTF-8 is a located error, never U+FFFD', () => {
  const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

  it('in the pipeline, an include and a params file: file:line:col of the first bad byte', async () => {
    const { dir, file } = workspace('');
    writeFileSync(file, bytes('stages:\n  a: {cmd: "echo é', [0xff, 0xfe], '", outs: [o]}\n'));
    const { loadPipeline } = await import('../../engine/dsl/index.js');
    const r = await loadPipeline(file, { resolveKind: () => undefined });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.map((d) => `${path.relative(dir, d.span!.file)}:${d.span!.line}:${d.span!.col} ${d.message}`)).toEqual([
      'pipeline.yaml:2:19 not valid UTF-8: byte 0xff at byte offset 27 does not belong to a UTF-8 character; pipeline, include and params files must be UTF-8 text (pipe neither guesses encodings nor replaces bytes)',
    ]);
    writeFileSync(file, `include: [part.yaml]\nparams_files: [p.yaml]\nstages:\n  a: ${CMD}\n`);
    writeFileSync(path.join(dir, 'part.yaml'), bytes('params:\n  x: ', [0xc0, 0x80], '\n')); // an overlong NUL
    writeFileSync(path.join(dir, 'p.yaml'), bytes('y: ok\nz: ', [0xed, 0xa0, 0x80], '\n')); // a UTF-16 surrogate
    const r2 = await loadPipeline(file, { resolveKind: () => undefined });
    expect(r2.ok).toBe(false);
    if (r2.ok) return;
    expect(r2.error.map((d) => `${path.relative(dir, d.span!.file)}:${d.span!.line}:${d.span!.col}`).sort()).toEqual(['p.yaml:2:4', 'part.yaml:2:6']);
  });

  it('the validator agrees with the WHATWG decoder on every 1–3 byte tail', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const valid = (b: Uint8Array) => {
      try {
        decoder.decode(b);
        return true;
      } catch {
        return false;
      }
    };
    const sample = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xa0, 0xed, 0x9f, 0xef, 0xf0, 0x90, 0xf4, 0x8f, 0xf5, 0xff];
    for (const a of sample) for (const b of sample) for (const c of sample) {
      for (const seq of [[a], [a, b], [a, b, c], [0xf0, a, b, c]]) {
        const buf = Uint8Array.from(seq);
        expect(firstInvalidUtf8(buf) === -1, seq.map((x) => x.toString(16)).join(' ')).toBe(valid(buf));
      }
    }
  });

  it('valid multi-byte text and a BOM still load', async () => {
    const p = await loadOk(`\uFEFFparams: {greeting: "grüß 👋"}\nstages:\n  a: {cmd: "echo \${params.greeting}", outs: [o]}\n`);
    expect(stage(p, 'a').cmd).toBe("echo 'grüß 👋'");
  });
});

describe('shapes that used to pass silently', () => {
  it('an `outs` item that is not a path string is an error at the item', async () => {
    const e = await loadErr(`stages:\n  a: {cmd: x, outs: [[a, b]]}\n  b: {cmd: x, outs: [{path: [c]}]}\n  c: {cmd: x, outs: [{path: {d: 1}}, true]}\n  d: {cmd: x, deps: [[e]], outs: [f]}\n`);
    expect(e.lines).toEqual([
      '2:22 `outs` entries are path strings, not a list',
      '3:29 `outs` entries are path strings, not a list',
      '4:29 `outs` entries are path strings, not a mapping',
      '4:38 `outs` entries are path strings, not a boolean',
      '5:22 `deps` entries are path strings, not a list',
    ]);
    // A `${...}` giving a list still gives several paths.
    const p = await loadOk(`vars: {files: [x, y]}\nstages:\n  a: {cmd: x, outs: ["\${vars.files}"]}\n`);
    expect(stage(p, 'a').outs.map((o) => o.path)).toEqual(['x', 'y']);
  });

  it('an empty pipeline file says so (not "nothing to do")', async () => {
    expect((await loadErr('')).located).toEqual(['pipeline.yaml:1:1 pipeline.yaml is empty: a pipeline declares its stages under `stages:` (see docs/pipeline-yaml.md)']);
    expect((await loadErr('# just a comment\n\n')).lines).toEqual(['1:1 pipeline.yaml is empty (only comments): a pipeline declares its stages under `stages:` (see docs/pipeline-yaml.md)']);
    const ws = cliWorkspace({ 'empty.yaml': '\n' });
    try {
      const r = pipe(ws.dir, ['run', 'empty.yaml']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('empty.yaml:1:1: error: empty.yaml is empty');
    } finally {
      ws.cleanup();
    }
  });
});
