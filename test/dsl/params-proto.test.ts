// Issue 11.16: a param named `constructor`, `toString`, `__proto__` (any Object.prototype name) is an ordinary key
// everywhere params flow — YAML, params files, -S, interpolation, stage keys, run records, `pipe status`/`why` — and
// never breaks a later run.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyFields, stageKey } from '../../engine/fingerprint.js';
import { loadPipeline } from '../../engine/dsl/index.js';
import { applyOverride, deepMerge, parseOverride } from '../../engine/dsl/params.js';
import { pipe, workspace as cliWorkspace } from '../engine/helpers.js';
import { loadErr, loadOk, resolveKind, stage, workspace } from './helpers.js';

const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

describe('params are null-prototype maps', () => {
  it('YAML params named after Object.prototype members are plain keys, interpolated and keyed', async () => {
    const p = await loadOk(`
params:
  constructor: 1
  toString: two
  hasOwnProperty: 3
  __proto__: {x: 5}
  valueOf: [a, b]
vars:
  __proto__: {v: 6}
stages:
  a:
    cmd: echo \${params.constructor} \${params.toString} \${params.hasOwnProperty} \${params.__proto__.x} \${params.valueOf} \${vars.__proto__.v}
    outs: [o]
    params: [toString]
`);
    expect(Object.getPrototypeOf(p.params)).toBeNull();
    expect(own(p.params, '__proto__') && own(p.params, 'constructor')).toBe(true);
    expect((p.params as Record<string, { x: number }>)['__proto__']!.x).toBe(5);
    const a = stage(p, 'a');
    expect(a.cmd).toBe('echo 1 two 3 5 a b 6');
    expect(Object.keys(a.params).sort()).toEqual(['__proto__.x', 'constructor', 'hasOwnProperty', 'toString', 'valueOf']);
    expect(({} as Record<string, unknown>).x).toBeUndefined(); // nothing leaked into Object.prototype
  });

  it('an undefined `${params.constructor}` is an undefined variable, not Object', async () => {
    const e = await loadErr(`params: {lr: 1}\nstages:\n  a: {cmd: "echo \${params.constructor} \${params.toString}", outs: [o]}\n`);
    expect(e.lines).toEqual([
      '3:18 undefined variable `${params.constructor}`: `params` has no `constructor`',
      '3:40 undefined variable `${params.toString}`: `params` has no `toString`',
    ]);
  });

  it('-S sets and adds such keys, params files merge them, and nothing is polluted', async () => {
    const { dir, file } = workspace(`params: {constructor: 1, nested: {a: 1}}\nstages:\n  a: {cmd: "echo \${params}", outs: [o]}\n`);
    writeFileSync(path.join(dir, 'p.json'), '{"__proto__": {"polluted": true}, "toString": "f"}');
    const r = await loadPipeline(file, {
      resolveKind,
      paramsFiles: [path.join(dir, 'p.json')],
      overrides: ['constructor=7', '+__proto__.y=2', '+nested.__proto__={z: 1}', '+valueOf=[1]'],
    });
    if (!r.ok) throw new Error(r.error.map((d) => d.message).join('\n'));
    const params = r.value.params as Record<string, unknown>;
    expect(params.constructor).toBe(7);
    expect(params['__proto__']).toEqual({ polluted: true, y: 2 });
    expect((params.nested as Record<string, unknown>)['__proto__']).toEqual({ z: 1 });
    expect(params.toString).toBe('f');
    expect(params.valueOf).toEqual([1]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).y).toBeUndefined();
    // Setting a key that does not exist is still an error, even when Object.prototype has it.
    const e = await loadErr('params: {lr: 1}\nstages:\n  a: {cmd: x, outs: [o]}\n', {}, { overrides: ['toString=1', 'lr.constructor=2'] });
    expect(e.lines).toEqual([
      '- `-S toString=1`: params have no `toString`; write `-S +toString=...` to add a new param',
      '- `-S lr.constructor=2`: `params.lr` is not a mapping, so it has no `constructor`',
    ]);
  });

  it('deepMerge and applyOverride never change a prototype', () => {
    const merged = deepMerge({ a: 1 }, JSON.parse('{"__proto__": {"b": 2}}') as Record<string, unknown>);
    expect(Object.getPrototypeOf(merged)).toBeNull();
    expect(merged['__proto__']).toEqual({ b: 2 });
    const o = parseOverride('+__proto__.c=3');
    if (typeof o === 'string') throw new Error(o);
    const r = applyOverride({}, o);
    if ('error' in r) throw new Error(r.error);
    expect(Object.getPrototypeOf(r.params)).toBeNull();
    expect(r.params['__proto__']).toEqual({ c: 3 });
  });

  it('a `__proto__` param is part of the stage key (it used to vanish from it)', async () => {
    const yaml = (x: number) => `params: {__proto__: {x: ${x}}}\nstages:\n  a: {cmd: "echo \${params.__proto__}", outs: [o]}\n`;
    const key = async (x: number) => {
      const s = stage(await loadOk(yaml(x)), 'a');
      const f = keyFields(s, {}, undefined);
      expect(Object.keys(f.params)).toEqual(['__proto__']);
      return stageKey(f);
    };
    expect(await key(1)).not.toBe(await key(2));
  });
});

describe('the CLI with such params: later runs, status and why keep working', () => {
  it('run, change, status, why, and another pipeline sharing the stage name in the same workspace', () => {
    const ws = cliWorkspace({
      'p.yaml': 'params: {constructor: 1, toString: 2, __proto__: {x: 5}}\nstages:\n  a: {cmd: "echo ${params.constructor} ${params.toString} ${params.__proto__.x} > o.txt", outs: [o.txt]}\n',
      'q.yaml': 'params: {lr: 1}\nstages:\n  a: {cmd: "echo ${params.lr} > o.txt", outs: [o.txt]}\n',
    });
    try {
      const run = (file: string, ...args: string[]) => {
        const r = pipe(ws.dir, [...args.slice(0, 1), file, ...args.slice(1)]);
        expect(r.stderr, r.stderr).not.toMatch(/internal error|\n\s+at /);
        return r;
      };
      expect(run('p.yaml', 'run').code).toBe(0);
      expect(ws.read('o.txt')).toBe('1 2 5\n');
      expect(run('p.yaml', 'status').stdout).toContain('All 1 stage(s) are up to date.');
      expect(run('p.yaml', 'run', '-S', 'constructor=7', '-S', '__proto__.x=9').code).toBe(0);
      expect(ws.read('o.txt')).toBe('7 2 9\n');
      const st = run('p.yaml', 'status');
      expect(st.stdout).toContain('param constructor: 7 → 1');
      expect(st.stdout).toContain('param __proto__.x: 9 → 5');
      const why = run('p.yaml', 'why', 'a', '-S', '+hasOwnProperty=1');
      expect(why.code).toBe(0);
      // The other pipeline's `a` is compared with records whose params hold `constructor` and `toString`.
      expect(run('q.yaml', 'status').code).toBe(0);
      const whyQ = run('q.yaml', 'why', 'a');
      expect(whyQ.code).toBe(0);
      expect(whyQ.stdout).toMatch(/param constructor no longer used|param lr now used/);
      expect(run('q.yaml', 'run').code).toBe(0);
      expect(run('p.yaml', 'run').code).toBe(0);
      expect(ws.read('o.txt')).toBe('1 2 5\n');
    } finally {
      ws.cleanup();
    }
  });
});
