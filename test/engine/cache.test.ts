// Cache hits and misses for every key field, run-cache restore, and output verification — through the real CLI.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pipe, reasons, runRecords, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

const yaml = (o: { cmd?: string; env?: string; outs?: string; params?: string; deps?: string } = {}): string => `name: keys
params: ${o.params ?? '{lr: 0.1, unused: 1}'}
stages:
  s:
    cmd: ${o.cmd ?? 'cat in.txt data/*.txt > out/s.txt; echo ${params.lr} >> out/s.txt; echo "$FOO" >> out/s.txt'}
    deps: ${o.deps ?? '[in.txt, data/]'}
    outs: ${o.outs ?? '[out/s.txt]'}
    env: ${o.env ?? '{FOO: bar}'}
`;

function run(args: string[] = []) {
  const r = pipe(ws.dir, ['run', 'p.yaml', '--json', ...args]);
  if (r.code !== 0) throw new Error(`pipe run failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  const st = Object.values(statuses(r.stdout))[0];
  return { status: st, reasons: Object.values(reasons(r.stdout))[0] ?? [], out: r.stdout };
}

describe('cache key fields', () => {
  it('hits when nothing changed and misses for each field, naming it', () => {
    ws = workspace({ 'p.yaml': yaml(), 'in.txt': 'a\n', 'data/1.txt': 'one\n' });
    expect(run().status).toBe('ran');
    expect(run().status).toBe('up-to-date');
    // touch without a change: content hashes, not mtimes
    ws.write('in.txt', 'a\n');
    expect(run().status).toBe('up-to-date');

    // dep content
    ws.write('in.txt', 'b\n');
    let r = run();
    expect(r.status).toBe('ran');
    expect(r.reasons.join()).toMatch(/dep in\.txt changed \(hash [0-9a-f]{8}→[0-9a-f]{8}\)/);

    // dep directory content (Merkle): a new file inside data/
    ws.write('data/2.txt', 'two\n');
    r = run();
    expect(r.status).toBe('ran');
    expect(r.reasons.join()).toMatch(/dep data\/ changed/);
    expect(run().status).toBe('up-to-date');

    // param used by the stage
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.reasons).toContain('param lr: 0.1 → 0.2');
    // an unused param does not invalidate
    expect(run(['-S', 'lr=0.2', '-S', 'unused=7']).status).toBe('up-to-date');

    // cmd
    ws.write('p.yaml', yaml({ cmd: 'cat in.txt > out/s.txt; echo ${params.lr} >> out/s.txt' }));
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.reasons.join()).toMatch(/command changed/);

    // env
    ws.write('p.yaml', yaml({ env: '{FOO: baz}' }));
    run(['-S', 'lr=0.2']);
    ws.write('p.yaml', yaml({ env: '{FOO: qux}' }));
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.reasons).toContain('env FOO changed: baz → qux');
    expect(ws.read('out/s.txt')).toMatch(/qux/);

    // outs declaration (cache flag)
    ws.write('p.yaml', yaml({ env: '{FOO: qux}', outs: '[{path: out/s.txt, cache: false}]' }));
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.reasons).toContain('out out/s.txt: cache true → false');
  });

  it('re-runs a kind whose implementation changed (PIPE_KINDS_PATH kind)', () => {
    ws = workspace({ 'in.txt': 'x\n' });
    const kinds = join(ws.dir, 'kinds', 'local', 'copy');
    mkdirSync(kinds, { recursive: true });
    writeFileSync(
      join(kinds, 'manifest.js'),
      `export const manifest = { kind: 'local/copy', description: 'test', with: { src: { type: 'path', role: 'dep', required: true, description: '' }, out: { type: 'path', role: 'out', required: true, description: '' } } };\n`,
    );
    const runJs = (tag: string) =>
      `import { readFileSync, writeFileSync } from 'node:fs';\nexport async function run(ctx) { writeFileSync(ctx.resolve(ctx.with.out), readFileSync(ctx.resolve(ctx.with.src), 'utf8') + '${tag}'); }\n`;
    writeFileSync(join(kinds, 'run.js'), runJs('v1'));
    ws.write('p.yaml', 'name: k\nstages:\n  c:\n    uses: local/copy\n    with: {src: in.txt, out: out/c.txt}\n');
    const env = { PIPE_KINDS_PATH: join(ws.dir, 'kinds') };
    const go = () => pipe(ws.dir, ['run', 'p.yaml', '--json'], env);
    let r = go();
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout).c).toBe('ran');
    expect(ws.read('out/c.txt')).toBe('x\nv1');
    expect(statuses(go().stdout).c).toBe('up-to-date');
    writeFileSync(join(kinds, 'run.js'), runJs('v2'));
    r = go();
    expect(statuses(r.stdout).c).toBe('ran');
    expect(reasons(r.stdout).c).toContain('implementation of local/copy changed: PIPE_KINDS_PATH/local/copy/run.js');
    expect(ws.read('out/c.txt')).toBe('x\nv2');
  });
});

describe('run cache', () => {
  it('param A → B → A runs twice and restores once', () => {
    ws = workspace({
      'p.yaml': `name: rc\nparams: {lr: 1}\nstages:\n  t:\n    cmd: echo \${params.lr} > out/t.txt; echo run >> count.txt\n    outs: [out/t.txt]\n`,
    });
    expect(run(['-S', 'lr=1']).status).toBe('ran');
    expect(run(['-S', 'lr=2']).status).toBe('ran');
    const back = run(['-S', 'lr=1']);
    expect(back.status).toBe('restored');
    expect(back.reasons.join()).toMatch(/param lr: 2 → 1/);
    expect(ws.read('out/t.txt')).toBe('1\n');
    expect(ws.read('count.txt')).toBe('run\nrun\n');
    expect(run(['-S', 'lr=2']).status).toBe('restored');
    expect(ws.read('out/t.txt')).toBe('2\n');
  });

  it('restores a deleted or modified output without running', () => {
    ws = workspace({ 'p.yaml': `name: del\nstages:\n  t:\n    cmd: mkdir -p out/d && echo a > out/d/a.txt && echo b > out/f.txt && echo run >> count.txt\n    outs: [out/d/, out/f.txt]\n` });
    expect(run().status).toBe('ran');
    ws.rm('out/d');
    let r = run();
    expect(r.status).toBe('restored');
    expect(r.reasons).toContain('output out/d/ missing');
    expect(ws.read('out/d/a.txt')).toBe('a\n');
    ws.write('out/f.txt', 'edited\n');
    r = run();
    expect(r.status).toBe('restored');
    expect(r.reasons).toContain('output out/f.txt modified');
    expect(ws.read('out/f.txt')).toBe('b\n');
    expect(ws.read('count.txt')).toBe('run\n');
    // A restored file is not an alias of the cache object: editing it leaves the cache intact.
    ws.write('out/f.txt', 'edited again\n');
    expect(run().status).toBe('restored');
    expect(ws.read('out/f.txt')).toBe('b\n');
  });

  it('falls back to running when a cache object cannot be restored', () => {
    ws = workspace({ 'p.yaml': `name: rf\nstages:\n  t:\n    cmd: echo hi > out/t.txt; echo run >> count.txt\n    outs: [out/t.txt]\n` });
    expect(run().status).toBe('ran');
    const objects = readdirSync(join(ws.dir, '.pipe/cache/objects'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(objects).toHaveLength(1);
    const obj = join(objects[0]!.parentPath, objects[0]!.name);
    rmSync(obj);
    mkdirSync(obj); // present (so restorable on paper) but unreadable as a file
    ws.rm('out/t.txt');
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout).t).toBe('ran');
    expect(r.stdout).toMatch(/could not restore t from the cache/);
    expect(ws.read('out/t.txt')).toBe('hi\n');
    expect(ws.read('count.txt')).toBe('run\nrun\n');
  });

  it('writes a deterministic lock file next to the YAML', () => {
    ws = workspace({ 'pipelines/p.yaml': `name: lk\nworkdir: ..\nparams: {n: 2}\nstages:\n  b:\n    cmd: cp out/a.txt out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n  a:\n    cmd: echo \${params.n} > out/a.txt\n    outs: [out/a.txt]\n` });
    const r = pipe(ws.dir, ['run', 'pipelines/p.yaml']);
    expect(r.code, r.stderr).toBe(0);
    const lock = ws.read('pipelines/p.lock.yaml');
    expect(lock.indexOf('  a:')).toBeLessThan(lock.indexOf('  b:'));
    expect(lock).toMatch(/params:\n\s+"?n"?: 2/);
    expect(lock).toMatch(/path: out\/a.txt\n\s+hash: [0-9a-f]{64}\n\s+size: 2/);
    pipe(ws.dir, ['run', 'pipelines/p.yaml']);
    expect(ws.read('pipelines/p.lock.yaml')).toBe(lock);
    expect(ws.exists('out/b.txt')).toBe(true);
  });
});

describe('atomicity', () => {
  it('a crashing stage leaves no outputs and no run record', () => {
    ws = workspace({ 'p.yaml': `name: c\nstages:\n  s:\n    cmd: echo partial > out/x.txt; exit 3\n    outs: [out/x.txt]\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/s failed: exit code 3/);
    expect(ws.exists('out/x.txt')).toBe(false);
    expect(runRecords(ws.dir)).toEqual([]);
  });

  it('a stale output from an earlier run is removed before the stage runs', () => {
    ws = workspace({ 'p.yaml': `name: c\nstages:\n  s:\n    cmd: test ! -e out/x.txt && echo fresh > out/x.txt\n    outs: [out/x.txt]\n`, 'out/x.txt': 'stale\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    expect(ws.read('out/x.txt')).toBe('fresh\n');
  });

  it('a declared output the stage did not write fails it', () => {
    ws = workspace({ 'p.yaml': `name: c\nstages:\n  s:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt, out/y.txt]\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stage s said it writes out\/y\.txt but did not/);
    expect(ws.exists('out/a.txt')).toBe(false);
  });

  it('a dep changed while the stage ran fails it and caches nothing', () => {
    ws = workspace({ 'dep.txt': 'v1\n', 'p.yaml': `name: m\nstages:\n  s:\n    cmd: cp dep.txt out/x.txt; sleep 0.2; echo v2 >> dep.txt\n    deps: [dep.txt]\n    outs: [out/x.txt]\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/dep dep\.txt changed while the stage ran/);
    expect(ws.exists('out/x.txt')).toBe(false);
    expect(runRecords(ws.dir)).toEqual([]);
  });
});
