// Cache hits and misses for every key field, run-cache restore, and output verification — through the real CLI.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { Gates } from '../support/gate.js';
import { codes, events, pipe, pipeAsync, reasons, runRecords, statuses, workspace, type Ws } from './helpers.js';

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
  return { status: st, codes: Object.values(codes(r.stdout))[0] ?? [], reasons: Object.values(reasons(r.stdout))[0] ?? [], out: r.stdout };
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
    expect(r.codes).toEqual(['dep-changed']);
    expect(r.reasons[0]).toMatch(/^dep in\.txt changed \(hash [0-9a-f]{8}→[0-9a-f]{8}\)$/); // names the file and both hashes

    // dep directory content (Merkle): a new file inside data/
    ws.write('data/2.txt', 'two\n');
    r = run();
    expect(r.status).toBe('ran');
    expect(r.codes).toEqual(['dep-changed']);
    expect(run().status).toBe('up-to-date');

    // param used by the stage
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.codes).toEqual(['param-changed']);
    expect(r.reasons).toEqual(['param lr: 0.1 → 0.2']);
    // an unused param does not invalidate
    expect(run(['-S', 'lr=0.2', '-S', 'unused=7']).status).toBe('up-to-date');

    // cmd
    ws.write('p.yaml', yaml({ cmd: 'cat in.txt > out/s.txt; echo ${params.lr} >> out/s.txt' }));
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.codes).toEqual(['cmd-changed']);

    // env
    ws.write('p.yaml', yaml({ env: '{FOO: baz}' }));
    run(['-S', 'lr=0.2']);
    ws.write('p.yaml', yaml({ env: '{FOO: qux}' }));
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.codes).toEqual(['env-changed']);
    expect(r.reasons).toEqual(['env FOO changed: baz → qux']);
    expect(ws.read('out/s.txt')).toMatch(/qux/);

    // outs declaration (cache flag)
    ws.write('p.yaml', yaml({ env: '{FOO: qux}', outs: '[{path: out/s.txt, cache: false}]' }));
    r = run(['-S', 'lr=0.2']);
    expect(r.status).toBe('ran');
    expect(r.codes).toEqual(['outs-changed']);
    expect(r.reasons).toEqual(['out out/s.txt: cache true → false']);
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
    expect(codes(r.stdout).c).toEqual(['implementation-changed']);
    expect(reasons(r.stdout).c).toEqual(['implementation of local/copy changed: PIPE_KINDS_PATH/local/copy/run.js']);
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
    expect(back.codes).toEqual(['param-changed', 'same-inputs']);
    expect(back.reasons[0]).toBe('param lr: 2 → 1');
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
    expect(r.codes).toEqual(['output-missing']);
    expect(r.reasons).toEqual(['output out/d/ missing']);
    expect(ws.read('out/d/a.txt')).toBe('a\n');
    ws.write('out/f.txt', 'edited\n');
    r = run();
    expect(r.status).toBe('restored');
    expect(r.codes).toEqual(['output-modified']);
    expect(r.reasons).toEqual(['output out/f.txt modified']);
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
    // Seen at planning time now (an object that is not a regular file is no object), and repaired by the run.
    expect(codes(r.stdout).t).toEqual(['output-missing', 'not-restorable']);
    expect(ws.read('out/t.txt')).toBe('hi\n');
    expect(ws.read('count.txt')).toBe('run\nrun\n');
    expect(statSync(obj).isFile()).toBe(true);
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
    ws = workspace({ 'dep.txt': 'v1\n', 'p.yaml': `name: m\nstages:\n  s:\n    cmd: cp dep.txt out/x.txt; echo v2 >> dep.txt\n    deps: [dep.txt]\n    outs: [out/x.txt]\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/dep dep\.txt changed while the stage ran/);
    expect(ws.exists('out/x.txt')).toBe(false);
    expect(runRecords(ws.dir)).toEqual([]);
  });
});

// ───────────── trust: nothing at rest is served unverified (issues 10, 11, 16) ─────────────

/** Every object file in a store with its mode. */
function objectFiles(cache: string): string[] {
  if (!existsSync(`${cache}/objects`)) return [];
  return readdirSync(`${cache}/objects`).flatMap((s) => readdirSync(`${cache}/objects/${s}`).map((o) => `${cache}/objects/${s}/${o}`));
}

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');
const objectOf = (dir: string, content: string): string => `${dir}/.pipe/cache/objects/${sha(content).slice(0, 2)}/${sha(content).slice(2)}`;

describe('hard-linked restores (restore: [hardlink, copy])', () => {
  const hl = (cmd: string, outs = '[out/a.txt]') => `name: hl\nsettings:\n  restore: [hardlink, copy]\nstages:\n  a:\n    cmd: ${cmd}\n    outs: ${outs}\n  b:\n    cmd: tr a-z A-Z < out/a.txt > out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n`;

  it('a restored link is read-only; an in-place edit of it never poisons the cache: the stage runs again', () => {
    ws = workspace({ 'p.yaml': hl('echo hello > out/a.txt; echo run >> count.txt') });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout).a).toBe('ran');
    ws.rm('out/a.txt');
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout).a).toBe('restored');
    const st = statSync(join(ws.dir, 'out/a.txt'));
    expect(st.ino).toBe(statSync(objectOf(ws.dir, 'hello\n')).ino);
    expect(st.mode & 0o222).toBe(0);
    // The user (root ignores modes; others chmod first) edits the restored output in place, same size.
    chmodSync(join(ws.dir, 'out/a.txt'), 0o644);
    writeFileSync(join(ws.dir, 'out/a.txt'), 'HELLO\n');
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout).a).toBe('ran'); // the object was found edited, evicted, and the stage re-ran
    expect(r.stdout).toMatch(/could not restore a from the cache \(cache object .* is corrupt/);
    expect(ws.read('out/a.txt')).toBe('hello\n');
    expect(ws.read('count.txt')).toBe('run\nrun\n');
    // ... and the cache holds the right bytes again: a later restore serves them.
    ws.rm('out/a.txt');
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout).a).toBe('restored');
    expect(ws.read('out/a.txt')).toBe('hello\n');
    expect(ws.read('out/b.txt')).toBe('HELLO\n');
  });

  it('a flipped byte in a cache object is never restored: the stage re-runs, the consumer and the lock file see the right bytes', () => {
    ws = workspace({ 'p.yaml': hl('echo hello > out/a.txt') });
    pipe(ws.dir, ['run', 'p.yaml']);
    const obj = objectOf(ws.dir, 'hello\n');
    chmodSync(obj, 0o644);
    writeFileSync(obj, 'hellp\n');
    ws.rm('out');
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout)).toEqual({ a: 'ran', b: 'restored' });
    expect(ws.read('out/a.txt')).toBe('hello\n');
    expect(ws.read('out/b.txt')).toBe('HELLO\n');
    expect(ws.read('p.lock.yaml')).toContain(sha('hello\n'));
    expect(ws.read('p.lock.yaml')).not.toContain(sha('hellp\n'));
    expect(pipe(ws.dir, ['status', 'p.yaml']).stdout).toMatch(/All 2 stage\(s\) are up to date/);
  });
});

describe('malformed objects and records', () => {
  it('a directory manifest object replaced by a directory: the stage re-runs (no EISDIR on every later run)', () => {
    ws = workspace({ 'p.yaml': `name: m\nstages:\n  d:\n    cmd: mkdir -p out/d && echo x > out/d/x.txt && echo run >> count.txt\n    outs: [out/d/]\n` });
    pipe(ws.dir, ['run', 'p.yaml']);
    const rec = runRecords(ws.dir)[0] as unknown as { outputs: Array<{ hash: string }> };
    const manifest = `${ws.dir}/.pipe/cache/objects/${rec.outputs[0]!.hash.slice(0, 2)}/${rec.outputs[0]!.hash.slice(2)}`;
    rmSync(manifest);
    mkdirSync(`${manifest}/junk`, { recursive: true });
    ws.rm('out/d');
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout).d).toBe('ran');
    expect(statSync(manifest).isFile()).toBe(true); // a proper object again
    ws.rm('out/d');
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout).d).toBe('restored');
    expect(ws.read('out/d/x.txt')).toBe('x\n');
    expect(ws.read('count.txt')).toBe('run\nrun\n');
  });

  it('a lock file is a record, never a source of content: an out hash edited to another object restores nothing wrong', () => {
    ws = workspace({ 'p.yaml': `name: l\nstages:\n  a:\n    cmd: echo right > out/a.txt\n    outs: [out/a.txt]\n  z:\n    cmd: echo other > out/z.txt\n    outs: [out/z.txt]\n` });
    pipe(ws.dir, ['run', 'p.yaml']);
    // The lock file says a's output is z's bytes (another valid object); the workspace's records are gone, as in a
    // fresh clone sharing this cache.
    ws.write('p.lock.yaml', ws.read('p.lock.yaml').replace(sha('right\n'), sha('other\n')));
    ws.rm('.pipe/runs');
    ws.rm('.pipe/index');
    ws.rm('out');
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(ws.read('out/a.txt')).toBe('right\n'); // restored through the store's own record of the key
    expect(statuses(r.stdout).a).toBe('restored');
    expect(codes(r.stdout).a).toEqual(['same-inputs', 'lock-disagrees']);
    expect(ws.read('p.lock.yaml')).toContain(sha('right\n')); // rewritten from what was restored
    // Without any record of the key (the store's gone too), the lock file alone restores nothing: the stage runs.
    ws.write('p.lock.yaml', ws.read('p.lock.yaml').replace(sha('right\n'), sha('other\n')));
    for (const p of ['.pipe/runs', '.pipe/index', '.pipe/cache/runs', 'out']) ws.rm(p);
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout).a).toBe('ran');
    expect(ws.read('out/a.txt')).toBe('right\n');
  });

  it('a record naming outputs the stage does not declare (`../x`, the pipeline file) restores only the declared outs', () => {
    ws = workspace({ 'p.yaml': `name: r\nstages:\n  a:\n    cmd: echo right > out/a.txt\n    outs: [out/a.txt]\n` });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    const pipeline = ws.read('p.yaml');
    const outsideName = `pipe-audit-escape-${process.pid}-${Date.now()}.txt`;
    const outside = join(ws.dir, '..', outsideName);
    // Records are data at rest (the store's shared ones are writable by every workspace using it): add entries
    // pointing outside the workspace and at the pipeline file, both with a valid object.
    const records = [`${ws.dir}/.pipe/runs`, `${ws.dir}/.pipe/cache/runs`].flatMap((d) =>
      readdirSync(d).filter((x) => /^[0-9a-f]{2}$/.test(x)).flatMap((x) => readdirSync(join(d, x)).map((f) => join(d, x, f))),
    );
    expect(records.length).toBe(2);
    for (const f of records) {
      const rec = JSON.parse(readFileSync(f, 'utf8')) as { outputs: Array<{ path: string }> };
      rec.outputs.push({ ...rec.outputs[0]!, path: `../${outsideName}` }, { ...rec.outputs[0]!, path: 'p.yaml' });
      writeFileSync(f, JSON.stringify(rec));
    }
    ws.rm('out');
    ws.rm('.pipe/index');
    try {
      const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(outside)).toBe(false);
      expect(ws.read('p.yaml')).toBe(pipeline);
      // A record whose outputs leave the workspace is no record at all: the stage runs.
      expect(statuses(r.stdout).a).toBe('ran');
      expect(ws.read('out/a.txt')).toBe('right\n');
    } finally {
      rmSync(outside, { force: true });
    }
    // Only an extra path inside the workspace, in the store's record (a fresh clone sharing the store): the declared
    // out is restored, the pipeline file is left alone.
    const shared = records.find((f) => f.includes('/.pipe/cache/runs/'))!;
    const rec = JSON.parse(readFileSync(shared, 'utf8')) as { outputs: Array<{ path: string }> };
    rec.outputs = rec.outputs.filter((o) => !o.path.startsWith('..'));
    expect(rec.outputs.map((o) => o.path)).toEqual(['out/a.txt', 'p.yaml']);
    writeFileSync(shared, JSON.stringify(rec));
    for (const p of ['out', '.pipe/index', '.pipe/runs']) ws.rm(p);
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout).a).toBe('restored');
    expect(ws.read('out/a.txt')).toBe('right\n');
    expect(ws.read('p.yaml')).toBe(pipeline);
  });

  it('cache objects never widen the permissions of the file they came from', () => {
    ws = workspace({ 'p.yaml': `name: p\nstages:\n  s:\n    cmd: umask 077 && echo token > out/secret.txt && echo hi > out/public.txt && chmod 644 out/public.txt\n    outs: [out/secret.txt, out/public.txt]\n` });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    expect(statSync(objectOf(ws.dir, 'token\n')).mode & 0o777).toBe(0o400);
    expect(statSync(objectOf(ws.dir, 'hi\n')).mode & 0o777).toBe(0o444);
    ws.rm('out');
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout).s).toBe('restored');
    expect(statSync(join(ws.dir, 'out/secret.txt')).mode & 0o777).toBe(0o600);
  });
});

describe('symlinks inside a directory output', () => {
  it('a link leaving the workspace fails the stage, naming it; nothing of its target reaches the cache', () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    try {
      writeFileSync(join(outside, 'shadow'), 'root:$6$secret', { mode: 0o600 });
      ws = workspace({ 'p.yaml': `name: s\nstages:\n  d:\n    cmd: mkdir -p out/d && echo ok > out/d/ok.txt && ln -s ${join(outside, 'shadow')} out/d/s\n    outs: [out/d/]\n` });
      const r = pipe(ws.dir, ['run', 'p.yaml']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/out\/d\/s is a symbolic link to .*shadow, which is outside the workspace/);
      for (const o of objectFiles(join(ws.dir, '.pipe/cache'))) expect(readFileSync(o, 'utf8')).not.toContain('secret');
      expect(runRecords(ws.dir)).toEqual([]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a link inside is stored and restored as a link (never copied from its target)', () => {
    ws = workspace({ 'p.yaml': `name: s\nstages:\n  d:\n    cmd: mkdir -p out/d/v1 && echo w > out/d/v1/m.bin && ln -s v1 out/d/latest && ln -s ../../in.txt out/d/input\n    deps: [in.txt]\n    outs: [out/d/]\n`, 'in.txt': 'input\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    ws.rm('out');
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout).d).toBe('restored');
    expect(readlinkSync(join(ws.dir, 'out/d/latest'))).toBe('v1');
    expect(readlinkSync(join(ws.dir, 'out/d/input'))).toBe('../../in.txt');
    expect(ws.read('out/d/latest/m.bin')).toBe('w\n');
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout).d).toBe('up-to-date');
  });
});

describe('outputs declared without a trailing slash', () => {
  it('`outs: [out/d]` (a directory) is restored after rm -rf', () => {
    ws = workspace({ 'p.yaml': `name: d\nstages:\n  d:\n    cmd: mkdir -p out/d && echo a > out/d/a.txt && echo run >> count.txt\n    outs: [out/d]\n` });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout).d).toBe('ran');
    ws.rm('out/d');
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout).d).toBe('restored');
    expect(ws.read('out/d/a.txt')).toBe('a\n');
    expect(ws.read('count.txt')).toBe('run\n');
  });
});

describe('same key, different bytes', () => {
  it('keeps the first result, warns, and status / why name the stage and file as nondeterministic', () => {
    ws = workspace({ 'p.yaml': `name: n\nstages:\n  r:\n    cmd: od -An -N8 -tx1 /dev/urandom > out/r.txt; echo fixed > out/f.txt\n    outs: [out/r.txt, out/f.txt]\n` });
    pipe(ws.dir, ['run', 'p.yaml']);
    const first = ws.read('out/r.txt');
    const r = pipe(ws.dir, ['run', 'p.yaml', '--force', 'r', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/nondeterministic: out\/r\.txt came out as [0-9a-f]{12}… where an earlier run with the same inputs gave [0-9a-f]{12}….*the first result is kept/);
    expect(r.stdout).not.toMatch(/nondeterministic: out\/f\.txt/);
    expect(ws.read('out/r.txt')).toBe(first); // the first result, put back
    expect(ws.read('p.lock.yaml')).toContain(sha(first));
    const st = pipe(ws.dir, ['status', 'p.yaml']);
    expect(st.stdout).toMatch(/^r: up to date \(nondeterministic\)$/m);
    expect(st.stdout).toMatch(/nondeterministic: out\/r\.txt came out as/);
    const js = JSON.parse(pipe(ws.dir, ['status', 'p.yaml', '--json']).stdout) as { stages: Array<{ nondeterministic?: Array<{ path: string; stage: string }> }> };
    expect(js.stages[0]!.nondeterministic).toEqual([expect.objectContaining({ stage: 'r', path: 'out/r.txt' })]);
    expect(pipe(ws.dir, ['why', 'p.yaml', 'r']).stdout).toMatch(/nondeterministic: out\/r\.txt came out as/);
  });
});

describe('a cache shared by two workspaces (settings.cache_dir)', () => {
  /** `n` stages writing `name-i`; with `gates`, each waits for its gate first. */
  const shared = (cache: string, name: string, n: number, gates?: Gates) =>
    `name: ${name}\nsettings:\n  cache_dir: ${cache}\nstages:\n${Array.from({ length: n }, (_, i) => {
      const write = `echo ${name}-${i} > out/s${i}.txt`;
      return `  s${i}:\n    cmd: ${gates ? gates.cmd(`s${i}`, write) : write}\n    outs: [out/s${i}.txt]\n`;
    }).join('')}`;

  it('gc in one workspace keeps what the other references, reports it, and drops workspaces that are gone', () => {
    const cache = mkdtempSync(join(tmpdir(), 'pipe-shared-cache-'));
    const a = workspace({ 'p.yaml': shared(cache, 'a', 1) });
    const b = workspace({ 'p.yaml': shared(cache, 'b', 2) });
    const c = workspace({ 'p.yaml': shared(cache, 'c', 1) });
    try {
      for (const w of [a, b, c]) expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      c.cleanup(); // a workspace deleted by its owner
      const g = pipe(a.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']);
      expect(g.code, g.stderr).toBe(0);
      expect(g.stdout).toContain(`kept 2 object(s) for the workspace ${b.dir}, which uses this cache too`);
      expect(g.stdout).toContain(`dropped the workspace ${c.dir} from the cache's registry: it no longer exists`);
      expect(g.stdout).toMatch(/removed 1 object\(s\)/); // c's output, referenced by no one now
      // b's results survived a's gc: nothing of b re-runs.
      b.rm('out');
      const r = pipe(b.dir, ['run', 'p.yaml', '--json']);
      expect(statuses(r.stdout)).toEqual({ s0: 'restored', s1: 'restored' });
      expect(b.read('out/s1.txt')).toBe('b-1\n');
    } finally {
      for (const w of [a, b, c]) w.cleanup();
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('a FIFO planted at the pipeline\'s own lock file does not hang the run: it is replaced by the lock file', () => {
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const lock = join(w.dir, 'p.lock.yaml');
      const text = readFileSync(lock, 'utf8');
      rmSync(lock);
      expect(spawnSync('mkfifo', [lock]).status).toBe(0);
      // A plain read of the FIFO waits for a writer that never comes: the run would hang until the timeout kills it.
      const r = pipe(w.dir, ['run', 'p.yaml', '--json'], {}, { timeoutMs: 30_000 });
      expect(r.signal).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      expect(statuses(r.stdout)).toEqual({ a: 'up-to-date' });
      expect(lstatSync(lock).isFile()).toBe(true);
      expect(readFileSync(lock, 'utf8')).toBe(text);
    } finally {
      w.cleanup();
    }
  });

  it("a lock file larger than any pipe writes is replaced by the run, never read whole", () => {
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const lock = join(w.dir, 'p.lock.yaml');
      const text = readFileSync(lock, 'utf8');
      // 600 MB (sparse: no disk): past what one string holds, under the old 1 GiB bound. Read whole, its text threw,
      // and every run ended with "could not save the run's index and lock file", exit 1, at 1.2 GB of memory.
      spawnSync('truncate', ['-s', '600M', lock]);
      const r = pipe(w.dir, ['run', 'p.yaml', '--json'], {}, { timeoutMs: 60_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(statuses(r.stdout)).toEqual({ a: 'up-to-date' });
      expect(readFileSync(lock, 'utf8')).toBe(text);
    } finally {
      w.cleanup();
    }
  });

  it("a workspace whose lock file or run record was replaced by a FIFO does not hang the other's run or gc", () => {
    const cache = mkdtempSync(join(tmpdir(), 'pipe-shared-cache-'));
    const a = workspace({ 'p.yaml': shared(cache, 'a', 1) });
    const b = workspace({ 'p.yaml': shared(cache, 'b', 1) });
    try {
      for (const w of [a, b]) expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      // b's lock file: gc in a reads it through the store's registry. A plain read of a FIFO blocks forever.
      rmSync(join(b.dir, 'p.lock.yaml'));
      expect(spawnSync('mkfifo', [join(b.dir, 'p.lock.yaml')]).status).toBe(0);
      // a's record in the shared store: a run of a reads it to restore.
      const rec = readdirSync(join(cache, 'runs'), { recursive: true })
        .map(String)
        .find((f) => f.endsWith('.json') && readFileSync(join(cache, 'runs', f), 'utf8').includes(createHash('sha256').update('a-0\n').digest('hex')));
      expect(rec).toBeDefined();
      const g = pipe(a.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']);
      expect(g.code, g.stderr).toBe(0);
      expect(g.signal).toBeNull();
      rmSync(join(cache, 'runs', rec!));
      expect(spawnSync('mkfifo', [join(cache, 'runs', rec!)]).status).toBe(0);
      rmSync(join(a.dir, '.pipe/runs'), { recursive: true, force: true });
      a.rm('out');
      const r = pipe(a.dir, ['run', 'p.yaml', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(statuses(r.stdout)).toEqual({ s0: 'ran' });
      expect(a.read('out/s0.txt')).toBe('a-0\n');
    } finally {
      for (const w of [a, b]) w.cleanup();
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('gc in one workspace while another runs (real processes): the running workspace loses nothing', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'pipe-shared-cache-'));
    const a = workspace({ 'p.yaml': shared(cache, 'a', 1) });
    const b = workspace();
    const gates = new Gates(join(b.dir, '.gates'));
    b.write('p.yaml', shared(cache, 'b', 6, gates));
    try {
      expect(pipe(a.dir, ['run', 'p.yaml']).code).toBe(0);
      const run = pipeAsync(b.dir, ['run', 'p.yaml', '-j', '1', '--json']);
      // A gc while each stage of b runs, after the ones before it were stored (and before b's lock file is written).
      // -j 1 runs one stage at a time, in whatever order their keys are ready: follow the one that started.
      for (let i = 0; i < 6; i++) {
        await gates.until((g) => g.started().length === i + 1, `stage ${i + 1} of 6 to start`);
        const g = pipe(a.dir, ['gc', 'p.yaml', '--keep-days', '0']);
        expect(g.code, g.stderr).toBe(0);
        gates.open(gates.started()[i]!);
      }
      const done = await run.done;
      expect(done.code, done.stderr).toBe(0);
      // Then a gc with no grace at all: b's lock file (registered in the cache) keeps all of its outputs.
      expect(pipe(a.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']).code).toBe(0);
      b.rm('out');
      const r = pipe(b.dir, ['run', 'p.yaml', '--json']);
      expect(Object.values(statuses(r.stdout))).toEqual(Array(6).fill('restored'));
      expect(b.read('out/s5.txt')).toBe('b-5\n');
    } finally {
      gates.openAll();
      for (const w of [a, b]) w.cleanup();
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

// Any stage's command can write .pipe: what pipe reads there is read bounded and non-blocking (cache/read.ts).
describe("pipe's own files under .pipe, replaced by a stage", () => {
  /** Runs p.yaml (it must succeed) and returns the key `stage` ended with. */
  const keyOfRun = (dir: string, stage: string): string => {
    const r = pipe(dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const key = (events(r.stdout).find((e) => e.type === 'stage-end' && e.stage === stage) as { key?: string } | undefined)?.key ?? '';
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    return key;
  };

  it("FIFOs at pipe's own state files (index, hash state, kinds memo, workspace id) hang neither run nor status: each is a cache, ignored and rewritten", () => {
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  a:\n    cmd: cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n', 'in.txt': 'a\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const index = readdirSync(join(w.dir, '.pipe/index')).map((f) => `.pipe/index/${f}`);
      expect(index).toHaveLength(1);
      for (const rel of [index[0]!, '.pipe/hashstate', '.pipe/kinds.json', '.pipe/workspace.json']) {
        const file = join(w.dir, rel);
        rmSync(file, { force: true });
        expect(spawnSync('mkfifo', [file]).status).toBe(0);
        // A plain read of the FIFO waits for a writer that never comes: the command would hang until killed.
        const st = pipe(w.dir, ['status', 'p.yaml'], {}, { timeoutMs: 30_000 });
        expect(st.signal, `status with a FIFO at ${rel}`).toBeNull();
        expect(st.code, `${rel}: ${st.stderr}`).toBe(0);
        const r = pipe(w.dir, ['run', 'p.yaml', '--json'], {}, { timeoutMs: 30_000 });
        expect(r.signal, `run with a FIFO at ${rel}`).toBeNull();
        expect(r.code, `${rel}: ${r.stderr}`).toBe(0);
        expect(statuses(r.stdout)).toEqual({ a: 'up-to-date' });
        // The index is saved by every run that decided a stage without it (the others are saved when they change).
        if (rel === index[0]) expect(lstatSync(file).isFile(), `${rel} rewritten`).toBe(true);
        rmSync(file, { force: true });
        expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      }
    } finally {
      w.cleanup();
    }
  });

  it('a FIFO at the workspace lock is reported as an unreadable lock, not waited on and not deleted', () => {
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      mkdirSync(join(w.dir, '.pipe'), { recursive: true });
      expect(spawnSync('mkfifo', [join(w.dir, '.pipe/lock')]).status).toBe(0);
      const r = pipe(w.dir, ['run', 'p.yaml'], {}, { timeoutMs: 30_000 });
      expect(r.signal).toBeNull();
      expect(r.code).not.toBe(0);
      const said = `the workspace is locked by an unreadable lock file ${join(w.dir, '.pipe/lock')} (not a regular file): not a lock pipe wrote, so no process will ever release it`;
      expect(r.stderr).toContain(said);
      expect(r.stderr).not.toMatch(/\n\s+at /); // one paragraph, no stack trace
      // Every command that takes the lock says the same, at once (verify used to exit 130 as if interrupted).
      for (const cmd of [['verify', 'p.yaml'], ['gc', 'p.yaml']]) {
        const c = pipe(w.dir, cmd, {}, { timeoutMs: 30_000 });
        expect(c.signal, cmd[0]).toBeNull();
        expect(c.code, cmd[0]).toBe(1);
        expect(c.stderr, cmd[0]).toContain(said);
      }
      expect(lstatSync(join(w.dir, '.pipe/lock')).isFIFO()).toBe(true);
    } finally {
      w.cleanup();
    }
  });

  it('a logs or tmp folder a stage replaced with a link is never written or read through: refused, naming it', () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(outside, 'victim.txt'), 'UNTOUCHED\n');
    const w = workspace({
      'p.yaml':
        'name: f\nstages:\n' +
        // Replaces the logs folder, then prints: the log would be created in the folder the link points to.
        `  logs:\n    cmd: rm -rf .pipe/logs; ln -s ${outside} .pipe/logs; echo printed\n    outs: [out/l.txt]\n`,
      'in.txt': 'x\n',
    });
    try {
      const r = pipe(w.dir, ['run', 'p.yaml', '--json'], {}, { timeoutMs: 30_000 });
      expect(statuses(r.stdout)).toEqual({ logs: 'failed' });
      expect(r.stdout).toContain(`${join(w.dir, '.pipe/logs')} is a link, not the folder pipe keeps its files in`);
      expect(readdirSync(outside)).toEqual(['victim.txt']);
      // The next run refuses before its job starts.
      const again = pipe(w.dir, ['run', 'p.yaml', '--json'], {}, { timeoutMs: 30_000 });
      expect(statuses(again.stdout)).toEqual({ logs: 'failed' });
      expect(readdirSync(outside)).toEqual(['victim.txt']);

      // A uses stage's spec file: a link at its name (or at .pipe/tmp itself) is replaced or refused, never written through.
      rmSync(join(w.dir, '.pipe/logs'));
      w.write('p.yaml', 'name: f\nstages:\n  e:\n    uses: testing/echo\n    with: {src: in.txt, out: out/e.txt}\n');
      const key = keyOfRun(w.dir, 'e');
      symlinkSync(join(outside, 'victim.txt'), join(w.dir, `.pipe/tmp/e-${key.slice(0, 12)}.json`));
      const forced = pipe(w.dir, ['run', 'p.yaml', '--json', '--force', 'e'], {}, { timeoutMs: 30_000 });
      expect(forced.code, forced.stderr).toBe(0);
      expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('UNTOUCHED\n');
      rmSync(join(w.dir, '.pipe/tmp'), { recursive: true, force: true });
      symlinkSync(outside, join(w.dir, '.pipe/tmp'));
      const linked = pipe(w.dir, ['run', 'p.yaml', '--json', '--force', 'e'], {}, { timeoutMs: 30_000 });
      expect(statuses(linked.stdout)).toEqual({ e: 'failed' });
      expect(linked.stdout).toContain(`${join(w.dir, '.pipe/tmp')} is a link, not the folder pipe keeps its files in`);
      expect(readdirSync(outside)).toEqual(['victim.txt']);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a tmp folder a stage moved outside and linked back while a uses stage ran: its runner's files there are neither read nor deleted, the stage fails naming the link", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({
      'p.yaml':
        'name: f\nstages:\n' +
        '  e:\n    uses: testing/echo\n    with: {src: in.txt, out: out/e.txt}\n' +
        // Runs beside e: as soon as e's spec file is written (before its runner has started), the folder goes.
        `  m:\n    cmd: 'while ! ls .pipe/tmp | grep -q "json$"; do sleep 0.002; done; mv .pipe/tmp ${outside}/tmp; ln -s ${outside}/tmp .pipe/tmp; echo m > out/m.txt'\n    outs: [out/m.txt]\n`,
      'in.txt': 'x\n',
    });
    try {
      const r = pipe(w.dir, ['run', 'p.yaml', '--json', '--keep-going'], {}, { timeoutMs: 60_000 });
      expect(r.signal).toBeNull();
      expect(statuses(r.stdout)).toEqual({ e: 'failed', m: 'ran' });
      expect(r.stdout).toContain(`${join(w.dir, '.pipe/tmp')} is a link, not the folder pipe keeps its files in`);
      // The spec file the stage moved out is still there: before, pipe deleted it (and the runner's result file)
      // through the link after reading the result as the stage's record.
      expect(readdirSync(join(outside, 'tmp')).filter((n) => /^e-[0-9a-f]{12}\.json$/.test(n))).toHaveLength(1);
      // Nor did the runner write its result there (it checks the folder too: before, it wrote through the link).
      expect(readdirSync(join(outside, 'tmp')).filter((n) => n.endsWith('.result.json'))).toEqual([]);
      expect(existsSync(join(w.dir, 'out/e.txt'))).toBe(false);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a link put at a uses stage's scratch folder is removed as a link: what it points to outside the workspace is untouched", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(outside, 'precious.txt'), 'KEEP\n');
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  e:\n    uses: testing/echo\n    with: {src: in.txt, out: out/e.txt}\n', 'in.txt': 'x\n' });
    try {
      const key = keyOfRun(w.dir, 'e');
      // The runner empties its scratch folder before the stage runs, and removes it after: both remove the link.
      symlinkSync(outside, join(w.dir, `.pipe/tmp/e-${key.slice(0, 12)}.scratch`));
      const r = pipe(w.dir, ['run', 'p.yaml', '--json', '--force', 'e']);
      expect(statuses(r.stdout)).toEqual({ e: 'ran' });
      expect(readdirSync(outside)).toEqual(['precious.txt']);
      expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('KEEP\n');
      expect(readdirSync(join(w.dir, '.pipe/tmp'))).toEqual([]);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a link a stage put at the store's fan-out or tmp folder is never followed: nothing outside is written, served, evicted or collected", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  a:\n    cmd: cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n', 'in.txt': 'a\n' });
    const refused = (at: string) => `${at} is a link, not the folder pipe keeps its files in`;
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const hash = createHash('sha256').update('a\n').digest('hex');
      const fanOut = join(w.dir, '.pipe/cache/objects', hash.slice(0, 2));
      // Outside: a file named as the object, not its bytes (an eviction would delete it), and a file of the store's
      // names in each folder gc collects (old enough to be collected).
      const unrelated = 'c'.repeat(62);
      const files = { [hash.slice(2)]: 'NOT THE OBJECT\n', [unrelated]: 'KEEP\n', '12345-0123456789abcdef': 'KEEP TOO\n' };
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(join(outside, name), text);
        utimesSync(join(outside, name), new Date(Date.now() - 3 * 86_400_000), new Date(Date.now() - 3 * 86_400_000));
      }
      const untouched = () => {
        expect(readdirSync(outside).sort()).toEqual(Object.keys(files).sort());
        for (const [name, text] of Object.entries(files)) expect(readFileSync(join(outside, name), 'utf8')).toBe(text);
      };
      rmSync(fanOut, { recursive: true });
      symlinkSync(outside, fanOut);
      w.rm('out/a.txt');
      // The object reads as missing (never as the file outside, never evicted there): the stage runs again, and
      // storing its result into the linked folder is refused, naming it. No half result stays in the workspace.
      const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(refused(fanOut));
      expect(existsSync(join(w.dir, 'out/a.txt'))).toBe(false);
      expect(lstatSync(fanOut).isSymbolicLink()).toBe(true); // the link is not pipe's to remove
      untouched();
      // gc lists no folder through a link: the files outside carry the store's names, and stay.
      symlinkSync(outside, join(w.dir, '.pipe/cache/objects/cc'));
      rmSync(join(w.dir, '.pipe/cache/tmp'), { recursive: true, force: true });
      symlinkSync(outside, join(w.dir, '.pipe/cache/tmp'));
      expect(pipe(w.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']).code).toBe(0);
      untouched();
      // Once the fan-out link is gone, a put into the linked tmp folder is refused: no temp object is written outside.
      rmSync(fanOut);
      const t = pipe(w.dir, ['run', 'p.yaml', '--json']);
      expect(t.code).toBe(1);
      expect(t.stdout).toContain(refused(join(w.dir, '.pipe/cache/tmp')));
      untouched();
      // Removed, as the message says: the next run works.
      rmSync(join(w.dir, '.pipe/cache/tmp'));
      expect(statuses(pipe(w.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran' });
      expect(readFileSync(join(fanOut, hash.slice(2)), 'utf8')).toBe('a\n');
      untouched();
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('an experiments folder a stage replaced with a link is refused by exp run, remove and apply: nothing outside is written or deleted', () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({ 'p.yaml': 'name: f\nparams:\n  x: 1\nstages:\n  a:\n    cmd: echo ${params.x} > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['exp', 'run', 'p.yaml', '-S', 'x=2']).code).toBe(0);
      const exp = join(w.dir, '.pipe/exp');
      const [slug] = readdirSync(exp);
      const [record] = readdirSync(join(exp, slug!)).filter((f) => f.endsWith('.json'));
      const variant = record!.slice(0, -5);
      // What a stage's command could leave outside: a record of the variant and a folder of its name (exp remove
      // deletes that folder; exp run would make its variants beside it).
      mkdirSync(join(outside, slug!, variant), { recursive: true });
      writeFileSync(join(outside, slug!, record!), readFileSync(join(exp, slug!, record!)));
      writeFileSync(join(outside, slug!, variant, 'precious.txt'), 'KEEP\n');
      const before = readdirSync(join(outside, slug!)).sort();
      // The pipeline's experiments folder, then `.pipe/exp` itself, a link to the folder outside.
      for (const [linkAt, target] of [[join(exp, slug!), join(outside, slug!)], [exp, outside]] as const) {
        rmSync(exp, { recursive: true, force: true });
        mkdirSync(exp);
        rmSync(linkAt, { recursive: true, force: true });
        symlinkSync(target, linkAt);
        for (const cmd of [['exp', 'remove', 'p.yaml', variant], ['exp', 'run', 'p.yaml', '-S', 'x=3'], ['exp', 'apply', 'p.yaml', variant]]) {
          const r = pipe(w.dir, cmd);
          expect(r.code, `${cmd.join(' ')}: ${r.stdout}${r.stderr}`).toBe(1);
          expect(r.stderr).toContain(`${linkAt} is a link, not the folder pipe keeps its files in`);
          expect(r.stderr).not.toMatch(/\n\s+at /);
        }
        expect(readdirSync(join(outside, slug!)).sort()).toEqual(before);
        expect(readFileSync(join(outside, slug!, variant, 'precious.txt'), 'utf8')).toBe('KEEP\n');
      }
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("run records, history markers, the index and the store's registry and records: never written through a link a stage put at their folders' names", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  a:\n    cmd: cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n', 'in.txt': '1\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const records = join(w.dir, '.pipe/runs');
      const [fan] = readdirSync(records).filter((n) => /^[0-9a-f]{2}$/.test(n));
      // What a stage's command can do to pipe's folders (here by hand, between two runs), one at a time; each run
      // has something to record (a new input) and fails naming the folder, with nothing written outside.
      const fanOuts = Array.from({ length: 256 }, (_, n) => n.toString(16).padStart(2, '0'));
      const folders = ['.pipe/runs', `.pipe/runs/${fan}`, '.pipe/runs/by-stage', '.pipe/runs/by-stage/a', '.pipe/index', '.pipe/cache/runs', '.pipe/cache/workspaces'];
      for (const [i, rel] of folders.entries()) {
        const at = join(w.dir, rel);
        const moved = `${at}.moved`;
        if (existsSync(at)) renameSync(at, moved);
        symlinkSync(outside, at);
        w.write('in.txt', `${i + 2}\n`);
        // A fan-out folder holds only the records whose keys start with its name: every other one is a link too.
        const planted = rel === `.pipe/runs/${fan}` ? fanOuts.filter((n) => n !== fan && !existsSync(join(records, n))) : [];
        for (const n of planted) symlinkSync(outside, join(records, n));
        const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
        expect(r.code, `${rel}: ${r.stdout}${r.stderr}`).toBe(rel === '.pipe/cache/workspaces' ? 0 : 1);
        if (rel !== '.pipe/cache/workspaces') expect(r.stdout).toContain('is a link, not the folder pipe keeps its files in');
        expect(readdirSync(outside), rel).toEqual([]);
        for (const n of planted) rmSync(join(records, n));
        rmSync(at);
        if (existsSync(moved)) renameSync(moved, at);
      }
      // The registry is written best effort (a read-only store is not an error): the link was left, and nothing
      // written through it. With every folder back, the run records as always.
      w.write('in.txt', '42\n');
      expect(statuses(pipe(w.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran' });
      expect(runRecords(w.dir).length).toBeGreaterThan(1);
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it(".pipe, the store's root or a variant's .pipe replaced with a link by a stage while pipe runs: nothing is written through it (the user's own links there still work)", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const mine = { hashstate: 'MINE\n', 'notes.txt': 'KEEP\n' };
    for (const [name, text] of Object.entries(mine)) writeFileSync(join(outside, name), text);
    const untouched = (what: string) => {
      expect(readdirSync(outside).sort(), what).toEqual(Object.keys(mine).sort());
      for (const [name, text] of Object.entries(mine)) expect(readFileSync(join(outside, name), 'utf8'), what).toBe(text);
    };
    // a moves the folder named by $AT away and links its name to the folder outside; b runs after it.
    const yamlFor = (settings: string) =>
      `name: f\nparams:\n  x: 1\n${settings}stages:\n` +
      `  a:\n    cmd: 'echo \${params.x} > out/a.txt; if [ -n "$AT" ]; then mv "$AT" moved-away; ln -s ${outside} "$AT"; fi'\n    outs: [out/a.txt]\n` +
      '  b:\n    cmd: cat out/a.txt > out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n';
    const w = workspace({ 'p.yaml': yamlFor('') });
    try {
      const refused = (r: { code: number | null; stdout: string; stderr: string }, at: string, what: string) => {
        expect(r.signal, what).toBeNull();
        expect(r.code, `${what}: ${r.stdout}${r.stderr}`).not.toBe(0);
        // (the default store lies in `.pipe`: the first write refused may be a store's)
        expect(r.stdout + r.stderr, what).toMatch(new RegExp(`${at}(/cache)? was replaced while pipe ran`));
        expect(r.stdout + r.stderr, what).not.toMatch(/\n\s+at /);
        untouched(what);
      };
      // `.pipe` itself: before, b's log, both run records, the index and the hash memo went to the folder outside
      // (its `hashstate` replaced).
      refused(pipe(w.dir, ['run', 'p.yaml', '--json'], { AT: '.pipe' }), join(w.dir, '.pipe'), '.pipe');
      // A variant's `.pipe` under `pipe exp run` (the stage runs in the variant's folder).
      w.rm('.pipe');
      w.rm('moved-away');
      const exp = pipe(w.dir, ['exp', 'run', 'p.yaml', '-S', 'x=2', '--name', 'v'], { AT: '.pipe' });
      expect(exp.stdout + exp.stderr).toContain('was replaced while pipe ran');
      untouched('a variant');
      // The store's root, inside the workspace.
      w.rm('.pipe');
      w.write('p.yaml', yamlFor('settings: {cache_dir: store}\n'));
      refused(pipe(w.dir, ['run', 'p.yaml', '--json'], { AT: 'store' }), join(w.dir, 'store'), 'the store');
      // A link the user put there before the command is theirs: pipe's files go where it points.
      for (const at of ['.pipe', 'store']) {
        w.rm(at);
        w.rm('moved-away');
        mkdirSync(join(outside, '..', `${basename(outside)}-${at}`));
        symlinkSync(join(outside, '..', `${basename(outside)}-${at}`), join(w.dir, at));
      }
      w.write('p.yaml', yamlFor('settings: {cache_dir: store}\n').replace('x: 1', 'x: 3'));
      expect(statuses(pipe(w.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran', b: 'ran' });
      expect(readdirSync(join(outside, '..', `${basename(outside)}-.pipe`))).toContain('runs');
      expect(readdirSync(join(outside, '..', `${basename(outside)}-store`))).toContain('objects');
    } finally {
      w.cleanup();
      for (const at of ['', '-.pipe', '-store']) rmSync(`${outside}${at}`, { recursive: true, force: true });
    }
  });

  it("the pipeline's folder moved outside the workspace by a stage and linked back: its lock file is not written there", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({
      'pl/p.yaml': `name: f\nworkdir: ..\nstages:\n  a:\n    cmd: 'echo a > out/a.txt; mv pl ${outside}/pl; ln -s ${outside}/pl pl'\n    outs: [out/a.txt]\n`,
    });
    try {
      const r = pipe(w.dir, ['run', 'pl/p.yaml', '--json']);
      expect(r.signal).toBeNull();
      expect(statuses(r.stdout)).toEqual({ a: 'ran' });
      expect(r.stdout + r.stderr).toContain(`could not save the run's index and lock file (${join(w.dir, 'pl')} was replaced while pipe ran`);
      expect(r.stdout + r.stderr).not.toMatch(/\n\s+at /);
      // Before: pl/p.lock.yaml was written beside the pipeline file, now outside the workspace.
      expect(readdirSync(join(outside, 'pl'))).toEqual(['p.yaml']);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("the store's registry folder replaced with a link: exp run and exp remove forget a variant without deleting through it", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({ 'p.yaml': 'name: f\nparams:\n  x: 1\nstages:\n  a:\n    cmd: echo ${params.x} > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['exp', 'run', 'p.yaml', '-S', 'x=2', '--name', 'v']).code).toBe(0);
      // The registry moved outside (a stage's `mv`) and linked back: outside, each workspace's folder is named by the
      // id in its workspace.json, the variant's too, and forgetting the variant removes the folder of that name.
      const registry = join(w.dir, '.pipe/cache/workspaces');
      const variantId = (JSON.parse(readFileSync(join(w.dir, '.pipe/exp', readdirSync(join(w.dir, '.pipe/exp'))[0]!, 'v/.pipe/workspace.json'), 'utf8')) as { id: string }).id;
      renameSync(registry, join(outside, 'workspaces'));
      symlinkSync(join(outside, 'workspaces'), registry);
      const before = readdirSync(join(outside, 'workspaces')).sort();
      expect(before).toContain(variantId);
      // Running the variant again forgets its old folder first; removing it forgets it too.
      for (const cmd of [['exp', 'run', 'p.yaml', '-S', 'x=2', '--name', 'v'], ['exp', 'remove', 'p.yaml', 'v']]) {
        const r = pipe(w.dir, cmd);
        expect(r.code, `${cmd.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
        expect(readdirSync(join(outside, 'workspaces')).sort(), cmd.join(' ')).toEqual(before);
      }
      expect(lstatSync(registry).isSymbolicLink()).toBe(true); // not pipe's to remove
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a link a re-run put at verify's stash folder is never followed: no file outside is moved into the scratch (and deleted with it)", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    // Named as the stash names a stage's first output.
    writeFileSync(join(outside, '0'), 'KEEP\n');
    const w = workspace({
      'p.yaml':
        'name: f\nstages:\n' +
        // Only under verify (its stash exists): the stage replaces its own stash folder with a link to outside.
        `  a:\n    cmd: 'echo a > out/a.txt; if [ -d .pipe/verify-stash ]; then rm -rf .pipe/verify-stash/a; ln -s ${outside} .pipe/verify-stash/a; fi'\n    outs: [out/a.txt]\n` +
        '  b:\n    cmd: cat out/a.txt > out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n',
    });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      // The stage removed its stashed output, so b has no input to re-run with (it fails, saying so); before, verify
      // moved the file outside into the scratch as a's output, b read it and differed, and the scratch took it along.
      const r = pipe(w.dir, ['verify', 'p.yaml']);
      expect(r.signal).toBeNull();
      expect(r.stdout).toContain('1 reproduced, 0 differ');
      expect(readdirSync(outside)).toEqual(['0']);
      expect(readFileSync(join(outside, '0'), 'utf8')).toBe('KEEP\n');
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a re-run that turned its out's folder into a link to outside: verify neither deletes nor puts back the stashed output there", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(outside, 'a.txt'), 'VICTIM\n');
    const w = workspace({
      'p.yaml':
        'name: f\nstages:\n' +
        // Only under verify: the stage replaces its out's folder with a link to outside and writes nothing there.
        `  a:\n    cmd: 'if [ -d .pipe/verify-stash ]; then rm -rf out; ln -s ${outside} out; exit 0; fi; mkdir -p out; echo a > out/a.txt'\n    outs: [out/a.txt]\n` +
        // b makes verify copy out/a.txt into the scratch, so a's recorded output is stashed while it re-runs.
        '  b:\n    cmd: cat out/a.txt > b.txt\n    deps: [out/a.txt]\n    outs: [b.txt]\n',
    });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const r = pipe(w.dir, ['verify', 'p.yaml']);
      expect(r.signal).toBeNull();
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain('outside the workspace');
      // Before: the refused out's path was deleted and the stashed output renamed there, through the link.
      expect(readdirSync(outside)).toEqual(['a.txt']);
      expect(readFileSync(join(outside, 'a.txt'), 'utf8')).toBe('VICTIM\n');
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a user's own file at a name the store keeps a folder at (cache_dir: a folder they keep files in) is refused, naming it, never deleted", () => {
    const home = mkdtempSync(join(tmpdir(), 'pipe-home-'));
    for (const name of ['objects', 'runs', 'workspaces']) writeFileSync(join(home, name), `MY ${name}\n`);
    const w = workspace({ 'p.yaml': `name: f\nsettings: {cache_dir: ${home}}\nstages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n` });
    try {
      const r = pipe(w.dir, ['run', 'p.yaml']);
      expect(r.signal).toBeNull();
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/pipe-home-\w+\/(objects|runs) is not a folder/);
      // Before: each was removed to make the store's folder in its place.
      for (const name of ['objects', 'runs', 'workspaces']) expect(readFileSync(join(home, name), 'utf8')).toBe(`MY ${name}\n`);
    } finally {
      w.cleanup();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("a FIFO a job put at its own log's name before its first output is not opened for writing (that open waits for a reader forever): the stage fails saying so", () => {
    const w = workspace({ 'p.yaml': 'name: f\nstages:\n  late:\n    cmd: rm -f .pipe/logs/late.log; mkfifo .pipe/logs/late.log; echo printed\n    outs: [out/l.txt]\n' });
    try {
      const r = pipe(w.dir, ['run', 'p.yaml', '--json'], {}, { timeoutMs: 30_000 });
      expect(r.signal).toBeNull();
      expect(statuses(r.stdout)).toEqual({ late: 'failed' });
      expect(r.stdout).toContain('late.log could not be written (it is a FIFO the job put at its name)');
    } finally {
      w.cleanup();
    }
  });

  it("a failed stage's log turned into a FIFO or a link is not read through: the failure is reported at once, without the linked file", () => {
    const secret = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(secret, 'secret.txt'), 'OUTSIDE-THE-WORKSPACE\n');
    const w = workspace({
      'p.yaml':
        'name: f\nstages:\n' +
        '  fifo:\n    cmd: echo one; rm -f .pipe/logs/fifo.log; mkfifo .pipe/logs/fifo.log; exit 3\n    outs: [out/f.txt]\n' +
        `  link:\n    cmd: echo two; rm -f .pipe/logs/link.log; ln -s ${join(secret, 'secret.txt')} .pipe/logs/link.log; exit 4\n    outs: [out/l.txt]\n`,
    });
    try {
      const r = pipe(w.dir, ['run', 'p.yaml', '--keep-going', '--json'], {}, { timeoutMs: 30_000 });
      expect(r.signal).toBeNull();
      expect(r.code).not.toBe(0);
      expect(statuses(r.stdout)).toEqual({ fifo: 'failed', link: 'failed' });
      expect(r.stdout + r.stderr).not.toContain('OUTSIDE-THE-WORKSPACE');
    } finally {
      w.cleanup();
      rmSync(secret, { recursive: true, force: true });
    }
  });
});

// Valid JSON or YAML where pipe keeps its own files, but not of the shape pipe writes: a stage's command (or a hand
// edit, or a merge) can leave any text there. Each is read as absent or refused by name; none may crash a command
// with a stack trace, hang it, or make it serve anything.
describe('JSON of another shape in pipe\'s own files', () => {
  const noStack = (r: { stdout: string; stderr: string }, what: string): void => {
    expect(r.stdout + r.stderr, what).not.toMatch(/internal error|\n\s+at /);
  };

  it('a workspace or experiments lock naming no holder is refused at once, naming it, and left in place', () => {
    const w = workspace({
      'p.yaml': 'name: l\nparams: {x: 1}\nexperiments:\n  e:\n    set: {x: 2}\nstages:\n  a:\n    cmd: echo ${params.x} > out/a.txt\n    outs: [out/a.txt]\n',
    });
    try {
      expect(pipe(w.dir, ['exp', 'run', 'p.yaml', 'e']).code).toBe(0);
      const lock = join(w.dir, '.pipe/lock');
      for (const text of ['[]', '{}', '5']) {
        writeFileSync(lock, text);
        // Read as held by pid 0 on no host: never stale, never released, so `pipe run` waited until killed.
        for (const cmd of [['run', 'p.yaml'], ['gc', 'p.yaml']]) {
          const r = pipe(w.dir, cmd, {}, { timeoutMs: 30_000 });
          expect(r.signal, `${cmd[0]} with ${text}`).toBeNull();
          expect(r.code, `${cmd[0]} with ${text}`).toBe(1);
          expect(r.stderr).toContain(`unreadable lock file ${lock} (JSON, but no pid and host): not a lock pipe wrote`);
          noStack(r, text);
        }
        expect(readFileSync(lock, 'utf8')).toBe(text);
      }
      rmSync(lock);
      const expLock = join(w.dir, '.pipe/exp', readdirSync(join(w.dir, '.pipe/exp'))[0]!, 'lock');
      writeFileSync(expLock, '[1, 2]');
      const a = pipe(w.dir, ['exp', 'apply', 'p.yaml', 'e'], {}, { timeoutMs: 30_000 });
      expect(a.signal).toBeNull();
      expect(a.code).toBe(1);
      expect(a.stderr).toContain(`unreadable lock file ${expLock} (JSON, but no pid and host)`);
    } finally {
      w.cleanup();
    }
  });

  it('a stage index entry of another shape is no entry: status and run plan from the run records, and the run saves the index anew', () => {
    const w = workspace({
      'p.yaml': 'name: i\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n  b:\n    cmd: cat out/a.txt > out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n',
    });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const file = join(w.dir, '.pipe/index', readdirSync(join(w.dir, '.pipe/index'))[0]!);
      const good = JSON.parse(readFileSync(file, 'utf8')) as { stages: Record<string, Record<string, unknown>>; lock: Record<string, unknown> };
      const b = good.stages.b!;
      const bad: Array<[string, unknown]> = [
        ...[5, null, 'x', {}, [5], [{ path: 5, hash: null, size: 1, files: 1 }], [[[]]]].map((o): [string, unknown] => [`outputs ${JSON.stringify(o)}`, { ...good, stages: { ...good.stages, b: { ...b, outputs: o } } }]),
        ['key "x"', { ...good, stages: { ...good.stages, b: { ...b, key: 'x' } } }],
        ['entry 5', { ...good, stages: { ...good.stages, b: 5 } }],
        ['stages []', { ...good, stages: [] }],
        ['lock 5', { ...good, lock: 5 }],
        ['lock.entries null', { ...good, lock: { ...good.lock, entries: null } }],
      ];
      for (const [what, index] of bad) {
        writeFileSync(file, JSON.stringify(index));
        // Before: `pipe status` crashed (recorded.map is not a function), `pipe run` failed b, and the run's save
        // failed on the lock part ("could not save the run's index and lock file"), so it stayed that way.
        const st = pipe(w.dir, ['status', 'p.yaml']);
        expect(st.code, `${what}: ${st.stdout}${st.stderr}`).toBe(0);
        noStack(st, what);
        const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
        expect(r.code, `${what}: ${r.stdout}${r.stderr}`).toBe(0);
        expect(statuses(r.stdout), what).toEqual({ a: 'up-to-date', b: 'up-to-date' });
        w.rm('out/b.txt');
        writeFileSync(file, JSON.stringify(index));
        const again = pipe(w.dir, ['run', 'p.yaml', '--json']);
        expect(again.code, `${what}: ${again.stdout}${again.stderr}`).toBe(0);
        expect(statuses(again.stdout), what).toEqual({ a: 'up-to-date', b: 'restored' });
        expect(w.read('out/b.txt')).toBe('a\n');
        expect(JSON.parse(readFileSync(file, 'utf8')), what).toMatchObject({ stages: { b: { key: b.key } } });
      }
    } finally {
      w.cleanup();
    }
  });

  it('stages named __proto__ and constructor keep index entries of their own', () => {
    const w = workspace({
      'p.yaml': 'name: o\nstages:\n  constructor:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n  __proto__:\n    cmd: cat out/a.txt > out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n',
    });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      // Assigned by name, `__proto__`'s entry set the index object's prototype: it was never saved, and an index
      // that checks its entries are its own would not find it.
      const index = readFileSync(join(w.dir, '.pipe/index', readdirSync(join(w.dir, '.pipe/index'))[0]!), 'utf8');
      expect(Object.keys((JSON.parse(index) as { stages: object }).stages).sort()).toEqual(['__proto__', 'constructor']);
      expect(statuses(pipe(w.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ constructor: 'up-to-date', __proto__: 'up-to-date' });
      w.rm('out/b.txt');
      const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(reasons(r.stdout).__proto__).toEqual(['output out/b.txt missing']);
    } finally {
      w.cleanup();
    }
  });

  it("a run record whose key fields are of another shape is compared as far as they hold: pipe why says what differs, never crashes", () => {
    const w = workspace({ 'p.yaml': 'name: r\nparams: {n: 1}\nstages:\n  a:\n    cmd: echo ${params.n} > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const shard = readdirSync(join(w.dir, '.pipe/runs')).find((f) => /^[0-9a-f]{2}$/.test(f))!;
      const file = join(w.dir, '.pipe/runs', shard, readdirSync(join(w.dir, '.pipe/runs', shard))[0]!);
      const rec = JSON.parse(readFileSync(file, 'utf8')) as { fields: Record<string, unknown> };
      const cases: Array<[string, unknown]> = [
        ['cmd null', { ...rec.fields, cmd: null }],
        ['outs 5', { ...rec.fields, outs: 5 }],
        ['outs [null]', { ...rec.fields, outs: [null] }],
        ['params "x"', { ...rec.fields, params: 'x' }],
        ['deps null', { ...rec.fields, deps: null }],
      ];
      for (const [i, [what, fields]] of cases.entries()) {
        writeFileSync(file, JSON.stringify({ ...rec, fields }));
        // Another key each time: `pipe why` compares it with every recorded run of the stage, this one included.
        w.write('p.yaml', w.read('p.yaml').replace(/\{n: \d+\}/, `{n: ${i + 2}}`));
        // Before: TypeError with a stack trace (`(b.outs ?? []).map is not a function`, `null.length`).
        const r = pipe(w.dir, ['why', 'p.yaml', 'a']);
        expect(r.code, `${what}: ${r.stdout}${r.stderr}`).toBe(0);
        noStack(r, what);
        expect(r.stdout, what).toContain('a: will run');
        const run = pipe(w.dir, ['run', 'p.yaml', '--json']);
        expect(run.code, `${what}: ${run.stdout}${run.stderr}`).toBe(0);
        expect(statuses(run.stdout)).toEqual({ a: 'ran' });
      }
      // A record whose end time is not a string (metrics --all and the history show it) reads as absent.
      writeFileSync(file, JSON.stringify({ ...rec, endedAt: {} }));
      const m = pipe(w.dir, ['metrics', 'p.yaml', '--all']);
      expect(m.code, m.stdout + m.stderr).toBe(0);
      noStack(m, 'endedAt {}');
    } finally {
      w.cleanup();
    }
  });

  it("run history, records and the stage index are read only through pipe's own folders: a file there is no history, a link is not followed", () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const w = workspace({ 'p.yaml': 'name: h\nparams: {n: 1}\nstages:\n  a:\n    cmd: echo ${params.n} > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      w.write('p.yaml', w.read('p.yaml').replace('{n: 1}', '{n: 2}'));
      const history = join(w.dir, '.pipe/runs/by-stage/a');
      // A file at the stage's history folder: the listing failed with ENOTDIR, and `pipe why` and `pipe status` exited 1.
      renameSync(history, join(outside, 'a'));
      writeFileSync(history, 'x');
      for (const cmd of [['why', 'p.yaml', 'a'], ['status', 'p.yaml']]) {
        const r = pipe(w.dir, cmd);
        expect(r.code, `${cmd[0]}: ${r.stdout}${r.stderr}`).toBe(0);
        expect(r.stdout + r.stderr, cmd[0]).not.toContain('ENOTDIR');
      }
      // A link to a folder holding the stage's history: not followed, so no earlier run to compare with.
      rmSync(history);
      symlinkSync(join(outside, 'a'), history);
      const why = pipe(w.dir, ['why', 'p.yaml', 'a']);
      expect(why.code, why.stdout + why.stderr).toBe(0);
      expect(why.stdout).toContain('never ran');
      rmSync(history);
      renameSync(join(outside, 'a'), history);
      expect(pipe(w.dir, ['why', 'p.yaml', 'a']).stdout).toContain('param n: 1 → 2');
      // The record's fan-out folder moved out and linked back: not read (the store's shared copy is removed too).
      const shard = readdirSync(join(w.dir, '.pipe/runs')).find((f) => /^[0-9a-f]{2}$/.test(f))!;
      renameSync(join(w.dir, '.pipe/runs', shard), join(outside, shard));
      symlinkSync(join(outside, shard), join(w.dir, '.pipe/runs', shard));
      rmSync(join(w.dir, '.pipe/cache/runs'), { recursive: true });
      expect(pipe(w.dir, ['why', 'p.yaml', 'a']).stdout).toContain('never ran');
      // The index folder moved out and linked back, with an entry vouching for an output a stage edited since: read
      // through the link, the edited output was up to date; not read, the run record says it was modified.
      w.write('p.yaml', w.read('p.yaml').replace('{n: 2}', '{n: 1}'));
      rmSync(join(w.dir, '.pipe/runs', shard));
      renameSync(join(outside, shard), join(w.dir, '.pipe/runs', shard));
      const index = join(w.dir, '.pipe/index');
      const file = readdirSync(index)[0]!;
      const entry = JSON.parse(readFileSync(join(index, file), 'utf8')) as { stages: { a: { outputs: Array<{ hash: string }> } } };
      w.write('out/a.txt', 'edited\n');
      entry.stages.a.outputs[0]!.hash = createHash('sha256').update('edited\n').digest('hex');
      mkdirSync(join(outside, 'index'));
      writeFileSync(join(outside, 'index', file), JSON.stringify(entry));
      rmSync(index, { recursive: true });
      symlinkSync(join(outside, 'index'), index);
      const st = pipe(w.dir, ['status', 'p.yaml']);
      expect(st.code, st.stdout + st.stderr).toBe(0);
      expect(st.stdout).toContain('a: stale, restorable from the cache');
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a kinds memo of another shape is recomputed: uses: stages stay up to date, their keys unchanged', () => {
    const w = workspace({ 'p.yaml': 'name: m\nstages:\n  e:\n    uses: testing/echo\n    with: {src: in.txt, out: out/e.txt}\n', 'in.txt': 'x\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const file = join(w.dir, '.pipe/kinds.json');
      const memo = JSON.parse(readFileSync(file, 'utf8')) as { scans: Record<string, unknown>; packages: Record<string, unknown> };
      const each = (o: Record<string, unknown>, v: unknown) => Object.fromEntries(Object.keys(o).map((k) => [k, v]));
      const cases: Array<[string, unknown]> = [
        ['scans 5', { ...memo, scans: 5 }],
        ['scans "x"', { ...memo, scans: 'x' }],
        ['each scan {}', { ...memo, scans: each(memo.scans, {}) }],
        ['each scan 5', { ...memo, scans: each(memo.scans, 5) }],
        ['imports null', { ...memo, scans: each(memo.scans, { imports: null, located: [], packages: [] }) }],
        ['packages "x"', { ...memo, packages: each(memo.packages, 'x') }],
        ['packages [1]', { ...memo, packages: each(memo.packages, [1]) }],
      ];
      for (const [what, bad] of cases) {
        writeFileSync(file, JSON.stringify(bad));
        rmSync(join(w.dir, '.pipe/index'), { recursive: true, force: true });
        // Before: `refs.imports is not iterable` (a stack trace), or a string taken for the package versions, which
        // changed the stage's key ("package 0: (unset) → x").
        const st = pipe(w.dir, ['status', 'p.yaml']);
        expect(st.code, `${what}: ${st.stdout}${st.stderr}`).toBe(0);
        noStack(st, what);
        expect(st.stdout, what).toContain('All 1 stage(s) are up to date');
        const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
        expect(statuses(r.stdout), `${what}: ${r.stderr}`).toEqual({ e: 'up-to-date' });
      }
    } finally {
      w.cleanup();
    }
  });

  it("a store's run record that lacks the stage's outputs does not fail the stage's runs: the run's own result replaces it", () => {
    const w = workspace({ 'p.yaml': 'name: s\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const shared = join(w.dir, '.pipe/cache/runs');
      const shard = readdirSync(shared).find((f) => /^[0-9a-f]{2}$/.test(f))!;
      const file = join(shared, shard, readdirSync(join(shared, shard))[0]!);
      // Well-formed, but no outputs: kept in force as "the first result", it was put back in place of every run's
      // result, and the stage failed ("the recorded run of a did not store out/a.txt") until someone found the file.
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), outputs: [] }));
      for (const f of ['.pipe/runs', '.pipe/index', 'out']) rmSync(join(w.dir, f), { recursive: true, force: true });
      const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(statuses(r.stdout)).toEqual({ a: 'ran' });
      expect(w.read('out/a.txt')).toBe('a\n');
      for (const f of ['.pipe/runs', '.pipe/index', 'out']) rmSync(join(w.dir, f), { recursive: true, force: true });
      expect(statuses(pipe(w.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'restored' });
    } finally {
      w.cleanup();
    }
  });

  it('a lock file entry of another shape (hand-edited, merged) is read as no entry: plan, status and run go on, and the entry is written anew', () => {
    const w = workspace({
      'p.yaml': 'name: k\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n  b:\n    cmd: cat out/a.txt > out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n',
    });
    try {
      expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
      const lock = join(w.dir, 'p.lock.yaml');
      const good = readFileSync(lock, 'utf8');
      const entries = parseYaml(good) as { stages: Record<string, Record<string, unknown>> };
      for (const bad of [5, null, 'x', {}, [5], [{ path: 5, hash: null, size: 1 }], [{ path: 'out/b.txt', hash: null }]]) {
        entries.stages.b!.outs = bad;
        writeFileSync(lock, stringifyYaml(entries));
        // A fresh clone sharing the store: planning compares the store's record with the lock entry's outs
        // (`entry.outs.filter is not a function`: status crashed with a stack trace, run failed the stage).
        rmSync(join(w.dir, '.pipe/runs'), { recursive: true, force: true });
        rmSync(join(w.dir, '.pipe/index'), { recursive: true, force: true });
        rmSync(join(w.dir, 'out'), { recursive: true, force: true });
        const st = pipe(w.dir, ['status', 'p.yaml']);
        expect(st.code, `${JSON.stringify(bad)}: ${st.stdout}${st.stderr}`).toBe(0);
        noStack(st, JSON.stringify(bad));
        const r = pipe(w.dir, ['run', 'p.yaml', '--json']);
        expect(r.code, `${JSON.stringify(bad)}: ${r.stdout}${r.stderr}`).toBe(0);
        expect(statuses(r.stdout)).toEqual({ a: 'restored', b: 'restored' });
        expect(w.read('out/b.txt')).toBe('a\n');
        expect(readFileSync(lock, 'utf8')).toBe(good);
        // A run of `a` alone keeps the entries of the stages it did not compute: one of another shape is dropped
        // (it used to stop every such run from saving: "could not save the run's index and lock file", exit 1).
        writeFileSync(lock, stringifyYaml(entries));
        const only = pipe(w.dir, ['run', 'p.yaml', 'a']);
        expect(only.code, `${JSON.stringify(bad)}: ${only.stdout}${only.stderr}`).toBe(0);
        expect(parseYaml(readFileSync(lock, 'utf8'))).toMatchObject({ stages: { a: {} } });
        expect(pipe(w.dir, ['run', 'p.yaml']).code).toBe(0);
        expect(readFileSync(lock, 'utf8')).toBe(good);
      }
    } finally {
      w.cleanup();
    }
  });
});

// Inputs the key did not see, so a skip or a restore was not what a fresh run (fresh workspace, fresh cache)
// computes: an adversarial probe of the key found them; each is now refused at load, naming why.
describe('what a fresh run would compute', () => {
  it('a param a cmd reads from its own params file (`params: [lr]`), set where the command cannot read it: refused, never recorded under a value the command did not see', () => {
    ws = workspace({
      'p.yaml': 'name: pf\nparams_files: [params.yaml]\nstages:\n  t:\n    cmd: grep lr params.yaml > model.txt\n    params: [lr]\n    outs: [model.txt]\n',
      'params.yaml': 'lr: 0.001\n',
      'other.yaml': 'lr: 0.5\n',
    });
    expect(run().status).toBe('ran');
    // Before: -S ran the command (which read 0.001 from params.yaml) and recorded its result under lr=0.5; once
    // params.yaml said 0.5, that result was served as up to date.
    for (const args of [['-S', 'lr=0.5'], ['--params-file', 'other.yaml']]) {
      const r = pipe(ws.dir, ['run', 'p.yaml', ...args]);
      expect(r.code, r.out).toBe(2);
      expect(r.stderr).toContain(`\`params\` lists \`lr\`, which the command reads from a file itself, but ${args.join(' ')} sets it for pipe only: the command would still read 0.001 from its file`);
      expect(r.stderr).toMatch(/p\.yaml:6:14/);
    }
    ws.write('p.params.yaml', 'lr: 0.5\n'); // as `pipe exp apply` writes it
    const applied = pipe(ws.dir, ['run', 'p.yaml']);
    expect(applied.code, applied.out).toBe(2);
    expect(applied.stderr).toContain('but the params `pipe exp apply` wrote to p.params.yaml sets it for pipe only');
    ws.rm('p.params.yaml');
    expect(ws.read('model.txt')).toBe('lr: 0.001\n');
    // The same value as the file's, or a param the command is handed, is fine.
    expect(pipe(ws.dir, ['run', 'p.yaml', '-S', 'lr=0.001']).code).toBe(0);
    ws.write('params.yaml', 'lr: 0.5\n');
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    expect(ws.read('model.txt')).toBe('lr: 0.5\n');
    ws.write('p.yaml', 'name: pf\nparams_files: [params.yaml]\nstages:\n  t:\n    cmd: echo ${params.lr} > model.txt\n    params: [lr]\n    outs: [model.txt]\n');
    expect(pipe(ws.dir, ['run', 'p.yaml', '-S', 'lr=0.7']).code).toBe(0);
    expect(ws.read('model.txt')).toBe('0.7\n');
  });

  it("a dep or out whose `..` comes after a symbolic link: refused at load, naming the link (pipe would hash or record another file than the command reads or writes)", async () => {
    ws = workspace({ 'in.txt': 'top\n', 'sub/in.txt': 'sub\n', 'p.yaml': 'name: dd\nstages:\n  a:\n    cmd: cat link/../in.txt > out.txt\n    deps: [link/../in.txt]\n    outs: [out.txt]\n' });
    mkdirSync(join(ws.dir, 'sub', 'dir'));
    symlinkSync('sub/dir', join(ws.dir, 'link')); // link/.. is sub/ on disk; lexically it is the workspace root
    // Before: the key hashed in.txt while the command read sub/in.txt: an edit of sub/in.txt stayed "up to date".
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.out).toBe(2);
    expect(r.stderr).toContain('p.yaml:5:12: error: stage `a`, field `deps[0]`: `link/../in.txt`: `link` is a symbolic link, so `link/..` is the folder above its target, not the one `link` is in: the command would read another file than the `in.txt` pipe hashes');
    expect(existsSync(join(ws.dir, 'out.txt'))).toBe(false);
    ws.write('p.yaml', 'name: dd\nstages:\n  a:\n    cmd: echo x > sub/link2/../o.txt\n    outs: [sub/link2/../o.txt]\n');
    symlinkSync('dir', join(ws.dir, 'sub', 'link2'));
    expect(pipe(ws.dir, ['run', 'p.yaml']).stderr).toContain('`sub/link2/../o.txt`: `sub/link2` is a symbolic link');
    // Without a link on the way, `..` is only spelling.
    ws.write('p.yaml', `name: dd\nstages:\n  a:\n    cmd: cat sub/dir/../in.txt > out.txt\n    deps: [sub/dir/../in.txt, ../${basename(ws.dir)}/in.txt]\n    outs: [out.txt]\n`);
    await new Promise((r) => setTimeout(r, 2100)); // past the racy window (its ctime too): the validated pipeline is kept
    const ok = pipe(ws.dir, ['run', 'p.yaml']);
    expect(ok.code, ok.out).toBe(0);
    expect(ws.read('out.txt')).toBe('sub\n');
    // The same YAML once sub/dir has become a link: the kept validated pipeline is not used (its answer changed).
    rmSync(join(ws.dir, 'sub', 'dir'), { recursive: true });
    mkdirSync(join(ws.dir, 'elsewhere', 'deeper'), { recursive: true });
    symlinkSync('../elsewhere/deeper', join(ws.dir, 'sub', 'dir'));
    const later = pipe(ws.dir, ['run', 'p.yaml']);
    expect(later.code, later.out).toBe(2);
    expect(later.stderr).toContain('`sub/dir/../in.txt`: `sub/dir` is a symbolic link');
  });
});

describe('executable outputs: a restore gives back the bit the stage gave (docs/cache.md "File modes")', () => {
  const TOOL = "printf '#!/bin/sh\\necho hi\\n' > tool.sh && chmod +x tool.sh";
  const BIN = "mkdir -p bin && printf '#!/bin/sh\\necho hi\\n' > bin/run.sh && chmod +x bin/run.sh && echo data > bin/data.txt";
  /** An execute bit wherever the file is readable (what `chmod +x` under the umask gives), or none. */
  const isExec = (rel: string): boolean => {
    const m = statSync(join(ws.dir, rel)).mode & 0o777;
    if ((m & 0o111) !== 0) expect(m & 0o111, rel).toBe((m & 0o444) >> 2);
    return (m & 0o111) !== 0;
  };
  const record = (stage: string) => runRecords(ws.dir).find((r) => r.stage === stage) as unknown as { outputs: Array<Record<string, unknown>> };
  const index = () => {
    const dir = join(ws.dir, '.pipe', 'index');
    return (JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8')) as { stages: Record<string, { outputs: Array<Record<string, unknown>> }> }).stages;
  };

  it('a restored output keeps the executable bit its stage gave it: the stage below that runs it works as after a fresh run', () => {
    ws = workspace({
      'p.yaml': `name: x\nstages:\n  a:\n    cmd: ${TOOL}\n    outs: [tool.sh]\n  b:\n    cmd: ./tool.sh > out.txt\n    deps: [tool.sh]\n    outs: [out.txt]\n`,
    });
    expect(run().status).toBe('ran');
    ws.rm('tool.sh');
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'restored', b: 'up-to-date' });
    expect(isExec('tool.sh')).toBe(true);
    const r = pipe(ws.dir, ['run', 'p.yaml', '--force', 'b', '--json']);
    expect(statuses(r.stdout).b, r.stdout).toBe('ran'); // before: exit code 126 (tool.sh restored as 0644)
    expect(ws.read('out.txt')).toBe('hi\n');
  });

  it('a folder out: its executable file comes back executable, the others as they were', () => {
    ws = workspace({
      'p.yaml': `name: x\nstages:\n  a:\n    cmd: ${BIN}\n    outs: [bin/]\n  b:\n    cmd: bin/run.sh > out.txt\n    deps: [bin/]\n    outs: [out.txt]\n`,
    });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran', b: 'ran' });
    expect(record('a').outputs[0]!.executables).toEqual(['run.sh']);
    ws.rm('bin');
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'restored', b: 'up-to-date' });
    expect(isExec('bin/run.sh')).toBe(true);
    expect(isExec('bin/data.txt')).toBe(false);
    const r = pipe(ws.dir, ['run', 'p.yaml', '--force', 'b', '--json']);
    expect(statuses(r.stdout).b, r.stdout).toBe('ran');
    expect(ws.read('out.txt')).toBe('hi\n');
  });

  it('hard-linked restores (restore: [hardlink]): an executable output is its own executable file, the object and the other links untouched', () => {
    ws = workspace({
      // data.txt holds tool.sh's bytes: one object, linked for data.txt, copied for tool.sh.
      'p.yaml': `name: x\nsettings:\n  restore: [hardlink]\nstages:\n  a:\n    cmd: ${TOOL} && cp tool.sh data.txt && chmod -x data.txt\n    outs: [tool.sh, data.txt]\n  b:\n    cmd: ./tool.sh > out.txt\n    deps: [tool.sh]\n    outs: [out.txt]\n`,
    });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran', b: 'ran' });
    ws.rm('tool.sh');
    ws.rm('data.txt');
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout), r.stderr).toEqual({ a: 'restored', b: 'up-to-date' });
    const obj = objectOf(ws.dir, '#!/bin/sh\necho hi\n');
    expect(statSync(obj).mode & 0o777).toBe(0o444); // no execute (or write) bit reached the store
    expect(statSync(join(ws.dir, 'data.txt')).ino).toBe(statSync(obj).ino); // still a hard link
    expect(statSync(join(ws.dir, 'data.txt')).mode & 0o777).toBe(0o444);
    expect(statSync(join(ws.dir, 'tool.sh')).ino).not.toBe(statSync(obj).ino); // its own file
    expect(isExec('tool.sh')).toBe(true);
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--force', 'b', '--json']).stdout).b).toBe('ran');
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'up-to-date', b: 'up-to-date' });
  });

  it('`chmod -x` on an up-to-date output is not what a fresh run gives: status says so, and the next run puts the bit back', () => {
    ws = workspace({
      'p.yaml': `name: x\nstages:\n  a:\n    cmd: ${TOOL} && echo run >> count.txt\n    outs: [tool.sh]\n  d:\n    cmd: ${BIN}\n    outs: [bin/]\n`,
    });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran', d: 'ran' });
    chmodSync(join(ws.dir, 'tool.sh'), 0o644);
    chmodSync(join(ws.dir, 'bin/run.sh'), 0o644);
    expect(pipe(ws.dir, ['status', 'p.yaml']).stdout).toMatch(/output tool\.sh lost its executable bit/);
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout)).toEqual({ a: 'restored', d: 'restored' });
    expect(reasons(r.stdout)).toEqual({ a: ['output tool.sh lost its executable bit'], d: ['output bin/ lost the executable bit of run.sh'] });
    expect(isExec('tool.sh')).toBe(true);
    expect(isExec('bin/run.sh')).toBe(true);
    expect(ws.read('count.txt')).toBe('run\n'); // restored, not run again
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'up-to-date', d: 'up-to-date' });
    // Without the index (a fresh clone's first run), the record says the same.
    ws.rm('.pipe/index');
    chmodSync(join(ws.dir, 'tool.sh'), 0o644);
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout)).toEqual({ a: 'restored', d: 'up-to-date' });
    expect(isExec('tool.sh')).toBe(true);
    // Only a lost bit counts: an index or record without the fields may be an earlier version's, which never
    // recorded bits, and restoring "none" over a file its stage made executable would take the bit away.
    const file = join(ws.dir, '.pipe', 'index', readdirSync(join(ws.dir, '.pipe', 'index'))[0]!);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/,"executables?":(true|\[[^\]]*\])/g, ''));
    expect(readFileSync(file, 'utf8')).not.toMatch(/executable/);
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'up-to-date', d: 'up-to-date' });
    expect(isExec('tool.sh')).toBe(true);
  });

  it('records, the index and the lock file name executable outputs; outputs without the bit are recorded exactly as before', () => {
    ws = workspace({
      'p.yaml': `name: x\nstages:\n  a:\n    cmd: ${TOOL} && echo plain > plain.txt && mkdir -p d && echo x > d/x.txt\n    outs: [tool.sh, plain.txt, d/]\n  b:\n    cmd: ${BIN}\n    outs: [bin/]\n`,
    });
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'ran', b: 'ran' });
    const keys = (o: Record<string, unknown>) => Object.keys(o);
    const [tool, plain, d] = ['tool.sh', 'plain.txt', 'd/'].map((p) => record('a').outputs.find((o) => o.path === p)!);
    expect(keys(tool!)).toEqual(['path', 'kind', 'hash', 'size', 'files', 'executable']);
    expect(tool!.executable).toBe(true);
    // What main writes for outputs without the bit: the same fields in the same order (the JSON is byte-identical).
    expect(keys(plain!)).toEqual(['path', 'kind', 'hash', 'size', 'files']);
    expect(keys(d!)).toEqual(['path', 'kind', 'hash', 'size', 'files']);
    expect(record('b').outputs[0]!.executables).toEqual(['run.sh']);
    // The store's shared copy of the record too.
    const shared = join(ws.dir, '.pipe', 'cache', 'runs');
    const sharedRecs = readdirSync(shared).flatMap((s) => readdirSync(join(shared, s)).map((f) => JSON.parse(readFileSync(join(shared, s, f), 'utf8')) as { stage: string; outputs: Array<Record<string, unknown>> }));
    expect(sharedRecs.find((r) => r.stage === 'a')!.outputs.map((o) => o.executable ?? null)).toEqual(record('a').outputs.map((o) => o.executable ?? null));
    // The index: the same rule.
    const ix = index();
    expect(ix.a!.outputs.map(keys)).toEqual([['path', 'hash', 'size', 'files', 'executable'], ['path', 'hash', 'size', 'files'], ['path', 'hash', 'size', 'files', 'dir']]);
    expect(ix.b!.outputs[0]!.executables).toEqual(['run.sh']);
    // The lock file: a line for executable outputs, none for the others (their entries read as before).
    const lock = ws.read('p.lock.yaml');
    expect(lock).toMatch(/- path: tool\.sh\n {8}hash: [0-9a-f]{64}\n {8}size: \d+\n {8}executable: true\n/);
    expect(lock).toMatch(/- path: plain\.txt\n {8}hash: [0-9a-f]{64}\n {8}size: \d+\n {6}- path/);
    expect(lock).toMatch(/- path: bin\/\n {8}hash: [0-9a-f]{64}\n {8}size: \d+\n {8}files: 2\n {8}executables: \["run\.sh"\]\n/);
    expect(lock.match(/executable/g)).toHaveLength(2);
    // A no-op run leaves the lock file as it is.
    const before = statSync(join(ws.dir, 'p.lock.yaml')).mtimeMs;
    expect(statuses(pipe(ws.dir, ['run', 'p.yaml', '--json']).stdout)).toEqual({ a: 'up-to-date', b: 'up-to-date' });
    expect(statSync(join(ws.dir, 'p.lock.yaml')).mtimeMs).toBe(before);
  });
});
