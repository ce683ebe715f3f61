// One path policy for outputs (issue 11.1/11.3/11.4): nothing pipe writes, deletes, restores or hashes as an out may
// resolve outside the workspace — through real symlinks, made before or during the run — or onto .pipe/, the cache
// or the pipeline's own files. Files outside must survive byte-identical.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutPolicy, realOf } from '../../engine/out-policy.js';
import { events, pipe, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
let outside: string;
const precious = Buffer.from('precious bytes \u00e9\n');

beforeEach(() => {
  outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
  writeFileSync(join(outside, 'x.txt'), precious);
  writeFileSync(join(outside, 'secret.txt'), precious);
});
afterEach(() => {
  ws?.cleanup();
  rmSync(outside, { recursive: true, force: true });
});

const intact = () => {
  expect(readFileSync(join(outside, 'x.txt'))).toEqual(precious);
  expect(readFileSync(join(outside, 'secret.txt'))).toEqual(precious);
  expect(readdirSync(outside).sort()).toEqual(['secret.txt', 'x.txt']);
};

/** Every object in the workspace's store, as bytes. */
function storedObjects(dir: string): Buffer[] {
  const root = join(dir, '.pipe', 'cache', 'objects');
  const out: Buffer[] = [];
  let shards: string[] = [];
  try {
    shards = readdirSync(root);
  } catch {
    return out;
  }
  for (const s of shards) for (const f of readdirSync(join(root, s))) out.push(readFileSync(join(root, s, f)));
  return out;
}

describe('load time: located errors, nothing runs', () => {
  it('an out under a directory link to outside; .pipe/; the cache; the pipeline file, an include, the lock file', () => {
    ws = workspace({
      'conf/more.yaml': 'stages:\n  m:\n    cmd: echo > m.txt\n    outs: [m.txt]\n',
      'p.yaml':
        'name: p\ninclude: [conf/more.yaml]\nsettings: {cache_dir: store}\nstages:\n' +
        '  a:\n    cmd: echo hi > L/x.txt\n    outs: [L/x.txt]\n' +
        '  b:\n    cmd: echo > .pipe/runs/x\n    outs: [.pipe/]\n' +
        '  c:\n    cmd: echo > p.yaml\n    outs: [p.yaml]\n' +
        '  d:\n    cmd: rm -rf conf\n    outs: [conf/]\n' +
        '  e:\n    cmd: echo > store/objects/x\n    outs: [store/objects/x]\n' +
        '  f:\n    cmd: echo > p.lock.yaml\n    outs: [p.lock.yaml]\n',
    });
    symlinkSync(outside, join(ws.dir, 'L'));
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/p\.yaml:7:12: error: stage `a`, field `outs`: out L\/x\.txt resolves \(through a symbolic link\) to .*pipe-outside-.*\/x\.txt, which is outside the workspace/);
    expect(r.stderr).toMatch(/stage `b`, field `outs`: out \.pipe\/ is pipe's own folder \.pipe\/ itself/);
    expect(r.stderr).toMatch(/stage `c`, field `outs`: out p\.yaml is the pipeline file p\.yaml itself/);
    expect(r.stderr).toMatch(/stage `d`, field `outs`: out conf\/ is a folder holding the pipeline's file conf\/more\.yaml/);
    expect(r.stderr).toMatch(/stage `e`, field `outs`: out store\/objects\/x is inside the cache directory store\//);
    expect(r.stderr).toMatch(/stage `f`, field `outs`: out p\.lock\.yaml is the lock file p\.lock\.yaml itself/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    intact();
    expect(ws.exists('conf/more.yaml')).toBe(true);
  });
});

describe('load time: two stages writing one place through a link', () => {
  it('`L/x.txt` with L -> d, and `d/` of another stage: a located error (they would restore over each other forever)', () => {
    ws = workspace({
      'p.yaml':
        'name: p\nstages:\n' +
        '  a:\n    cmd: mkdir -p d && echo a > d/a.txt\n    outs: [d/]\n' +
        '  b:\n    cmd: echo b > L/x.txt\n    outs: [L/x.txt]\n' +
        '  c:\n    cmd: echo c > M/y.txt\n    outs: [M/y.txt]\n' +
        '  e:\n    cmd: mkdir -p e && echo e > e/y.txt\n    outs: [e/y.txt]\n',
    });
    symlinkSync('d', join(ws.dir, 'L'));
    mkdirSync(join(ws.dir, 'e'));
    symlinkSync('e', join(ws.dir, 'M'));
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/p\.yaml:8:12: error: stage `b`, field `outs`: out L\/x\.txt resolves \(through a symbolic link\) to d\/x\.txt, inside d\/, which stage `a` also writes/);
    expect(r.stderr).toMatch(/stage `(c|e)`, field `outs`: out (M|e)\/y\.txt resolves \(through a symbolic link\) to e\/y\.txt, which stage `(c|e)` also writes/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(ws.exists('d')).toBe(false);
  });
});

describe('run time: links made while the pipeline runs', () => {
  it('a stage that creates a folder link to outside: the stage writing through it is refused before anything is deleted', () => {
    ws = workspace({
      'p.yaml':
        'name: p\nstages:\n' +
        `  mk:\n    cmd: ln -s ${outside} L && echo made > made.txt\n    outs: [made.txt]\n` +
        '  use:\n    cmd: echo clobbered > L/x.txt\n    deps: [made.txt]\n    outs: [L/x.txt]\n',
    });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code).toBe(1);
    expect(statuses(r.stdout)).toEqual({ mk: 'ran', use: 'failed' });
    const end = events(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'use')!;
    expect(end.code).toBe('out-refused');
    expect(end.reason).toMatch(/^out L\/x\.txt resolves \(through a symbolic link\) to .*\/x\.txt, which is outside the workspace/);
    intact();
    // Next time the load itself says so.
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(2);
    intact();
  });

  it('a stage that makes its out a link to a file outside: refused, the link removed, the target neither deleted nor stored', () => {
    ws = workspace({ 'p.yaml': `name: p\nstages:\n  s:\n    cmd: ln -s ${join(outside, 'secret.txt')} out.txt\n    outs: [out.txt]\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code).toBe(1);
    expect(events(r.stdout).find((e) => e.type === 'stage-end')!.code).toBe('out-refused');
    expect(events(r.stdout).find((e) => e.type === 'stage-end')!.reason).toMatch(/^out out\.txt resolves \(it is a symbolic link\) to .*secret\.txt, which is outside the workspace/);
    expect(ws.exists('out.txt')).toBe(false);
    intact();
    expect(storedObjects(ws.dir).some((b) => b.equals(precious))).toBe(false);
  });

  it('a stage that puts a link to a file outside at its own log path: pipe writes nothing through it, and says so', () => {
    const victim = join(outside, 'x.txt');
    ws = workspace({ 'p.yaml': `name: p\nstages:\n  s:\n    cmd: mkdir -p .pipe/logs && ln -s ${victim} .pipe/logs/s.log && echo output-that-goes-to-the-log\n` });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code).toBe(1);
    expect(events(r.stdout).find((e) => e.type === 'stage-end')!.reason).toMatch(/^exit code 0, but its log .*s\.log could not be written \(ELOOP/);
    intact();
  });

  it('an out replaced by a link to outside after it was cached is neither hashed, restored through, nor deleted', () => {
    ws = workspace({ 'p.yaml': 'name: p\nstages:\n  s:\n    cmd: mkdir -p d && echo mine > d/x.txt\n    outs: [d/]\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    ws.rm('d');
    symlinkSync(outside, join(ws.dir, 'd'));
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    // The out itself is the link: refused at run time, before decide hashes it (load only checks folders).
    expect(r.code).toBe(1);
    expect(events(r.stdout).find((e) => e.type === 'stage-end')!.code).toBe('out-refused');
    expect(events(r.stdout).find((e) => e.type === 'stage-end')!.reason).toMatch(/^out d\/ resolves \(it is a symbolic link\) to .*pipe-outside-/);
    intact();
    const st = pipe(ws.dir, ['status', 'p.yaml']);
    expect(st.stdout).toMatch(/refused: out d\//);
    intact();
  });
});

describe('realOf', () => {
  it('resolves the deepest existing ancestor, following dangling links to where they point', () => {
    ws = workspace();
    mkdirSync(join(ws.dir, 'real'));
    symlinkSync(join(ws.dir, 'real'), join(ws.dir, 'link'));
    symlinkSync(join(outside, 'not-yet', 'deeper'), join(ws.dir, 'dangling'));
    const root = realOf(ws.dir);
    expect(realOf(join(ws.dir, 'link', 'a', 'b'))).toBe(join(root, 'real', 'a', 'b'));
    expect(realOf(join(ws.dir, 'dangling', 'f'))).toBe(join(realOf(outside), 'not-yet', 'deeper', 'f'));
    const policy = new OutPolicy(ws.dir, []);
    expect(policy.check('dangling/f')?.reason).toMatch(/outside the workspace/);
    expect(policy.check('link/a/b')).toBeUndefined();
  });

  it('a workspace given as a relative path: `.`, `..` and what climbs out are refused as with an absolute one', () => {
    ws = workspace();
    mkdirSync(join(ws.dir, 'a'));
    const cwd = process.cwd();
    // The same workspace spelt from inside it, from a folder below it, and absolutely.
    const spellings: Array<[string, string]> = [[ws.dir, '.'], [ws.dir, ws.dir], [join(ws.dir, 'a'), '..'], [join(ws.dir, 'a'), '../a/..']];
    try {
      for (const [at, workdir] of spellings) {
        process.chdir(at);
        const policy = new OutPolicy(workdir, []);
        for (const out of ['.', '..', 'a/..', 'a/../..', '../x', 'a/../../x']) expect(policy.check(out)?.reason, `${workdir}: ${out}`).toMatch(/outside the workspace/);
        expect(policy.check('a/x')).toBeUndefined();
        expect(policy.check('a/../b')).toBeUndefined();
      }
    } finally {
      process.chdir(cwd);
    }
  });
});
