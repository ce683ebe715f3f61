// `dir` and `dir/` are one output everywhere (issue 10.4): graph, store, restore, status, why, lock file, gc.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, posix, resolve } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { absPath, outPathKey, resolvePath, sameOutPath } from '../../cache/paths.js';
import { ends, pipe, reasons, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

const yaml = (out: string) =>
  `name: d\nstages:\n  s:\n    cmd: mkdir -p d && echo hi > d/x && echo ho > d/y\n    outs: [${out}]\n  t:\n    cmd: cat d/x > t.txt\n    deps: [d/x]\n    outs: [t.txt]\n`;

describe('dir and dir/', () => {
  it('one normalise function', () => {
    expect(['d', 'd/', './d', 'd//'].map(outPathKey)).toEqual(['d', 'd', 'd', 'd']);
    expect(sameOutPath('a/b/', 'a/b')).toBe(true);
    expect(sameOutPath('a/b', 'a/bc')).toBe(false);
  });

  it('the already-normal fast path answers what posix.normalize (less a trailing slash) answers, for any path', () => {
    const slow = (p: string): string => {
      const n = posix.normalize(p);
      return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
    };
    const piece = fc.constantFrom('', '.', '..', '...', 'a', 'b.c', '.d', 'e..', '/', '//', 'f g', 'x\\y');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.boolean(), (parts, absolute) => {
        const p = `${absolute ? '/' : ''}${parts.join('/')}`;
        expect(outPathKey(p)).toBe(slow(p));
      }),
      { numRuns: 5000 },
    );
    for (const p of ['', '.', '/', '//', 'a/.', 'a/..', './a', 'a/./b', '.a/b', 'a/.b', 'a..', '..a', 'a/b/']) expect(outPathKey(p)).toBe(slow(p));
  });

  it('resolvePath and absPath answer what path.resolve and join answer, fast path or not', () => {
    const piece = fc.constantFrom('', '.', '..', 'a', 'b.c', '.d', '/', 'e f');
    const path = fc.tuple(fc.array(piece, { maxLength: 6 }), fc.boolean()).map(([parts, absolute]) => `${absolute ? '/' : ''}${parts.join('/')}`);
    fc.assert(
      fc.property(path, path, (root, rel) => {
        expect(resolvePath(root)).toBe(resolve(root));
        const absRoot = resolve(root);
        const key = outPathKey(rel);
        expect(absPath(absRoot, rel)).toBe(isAbsolute(key) ? key : join(absRoot, key));
        expect(absPath(`${absRoot}/`, rel)).toBe(isAbsolute(key) ? key : join(`${absRoot}/`, key));
      }),
      { numRuns: 5000 },
    );
  });

  it('outs: [d] (no slash) feeds a dep inside it, is restored after rm -rf, and respelling it as d/ re-runs nothing', () => {
    ws = workspace({ 'p.yaml': yaml('d') });
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout)).toEqual({ s: 'ran', t: 'ran' });
    // The lock file knows d is a directory (gc expands it through its manifest).
    expect(ws.read('p.lock.yaml')).toMatch(/path: d\n\s+hash: [0-9a-f]{64}\n\s+size: 6\n\s+files: 2/);

    ws.rm('d');
    r = pipe(ws.dir, ['status', 'p.yaml']);
    expect(r.stdout).toMatch(/output d missing/);
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.stdout)).toEqual({ s: 'restored', t: 'up-to-date' });
    expect(ws.read('d/y')).toBe('ho\n');

    ws.write('p.yaml', yaml('d/'));
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout)).toEqual({ s: 'up-to-date', t: 'up-to-date' });
    r = pipe(ws.dir, ['why', 'p.yaml', 's']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/up to date/);

    // gc keeps the directory's files (the lock file references it), so a later restore still works.
    r = pipe(ws.dir, ['gc', 'p.yaml', '--keep-days', '0', '--grace-seconds', '0']);
    expect(r.code, r.stderr).toBe(0);
    ws.rm('d');
    ws.write('p.yaml', yaml('d'));
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout).s, JSON.stringify(reasons(r.stdout))).toBe('restored');
    expect(ws.read('d/x')).toBe('hi\n');
  });

  it('a dep spelled ../<workspace>/out/a.txt (leaving and re-entering the workspace) feeds from the stage writing out/a.txt', () => {
    ws = workspace({ 'in.txt': 'v1\n', 'out/a.txt': 'old\n' });
    const name = ws.dir.split('/').at(-1)!;
    ws.write(
      'p.yaml',
      `stages:\n  a:\n    cmd: mkdir -p out && cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n` +
        `  b:\n    cmd: cat out/a.txt > b.txt\n    deps: [../${name}/out/a.txt]\n    outs: [b.txt]\n`,
    );
    expect(pipe(ws.dir, ['dag', 'p.yaml']).stdout).toMatch(/b\s+← a/);
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.out).toBe(0);
    expect(ws.read('b.txt')).toBe('v1\n');
    // b is decided only after a has rewritten out/a.txt: never 'up-to-date' on the old content.
    ws.write('in.txt', 'v2\n');
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.out).toBe(0);
    expect(statuses(r.stdout)).toEqual({ a: 'ran', b: 'ran' });
    expect(ws.read('b.txt')).toBe('v2\n');
  });

  it('a dep that reaches another stage\'s out through a symbolic link is refused, naming both stages and the path to write', () => {
    ws = workspace({ 'in.txt': 'v1\n', 'out/a.txt': 'old\n' });
    symlinkSync('out', join(ws.dir, 'link'));
    symlinkSync('out/a.txt', join(ws.dir, 'alias.txt'));
    const yaml = (dep: string) =>
      `stages:\n  a:\n    cmd: mkdir -p out && cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n` +
      `  b:\n    cmd: cat out/a.txt > b.txt\n    deps: [${dep}]\n    outs: [b.txt]\n`;
    // [dep as written, as the message names it, the path to write instead]
    const cases = [['link/a.txt', 'link/a.txt', 'out/a.txt'], ['alias.txt', 'alias.txt', 'out/a.txt'], ['link/', 'link/', 'out/'], [`${ws.dir}/link/a.txt`, 'link/a.txt', 'out/a.txt']];
    for (const [dep, shown, write] of cases) {
      ws.write('p.yaml', yaml(dep));
      for (const cmd of ['dag', 'run']) {
        const r = pipe(ws.dir, [cmd, 'p.yaml']);
        expect(r.code, `${cmd} ${dep}: ${r.out}`).toBe(2);
        expect(r.stderr).toContain(`stage \`b\`, field \`deps\`: dep \`${shown}\` reaches \`${write}\` through a symbolic link, and stage \`a\` (out/a.txt) writes there`);
        expect(r.stderr).toContain(`write the dep as \`${write}\``);
      }
    }
    expect(ws.read('out/a.txt')).toBe('old\n');
    // Written as the writer's path, the edge is there and the reader follows the writer.
    ws.write('p.yaml', yaml('out/a.txt'));
    let r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.out).toBe(0);
    ws.write('in.txt', 'v2\n');
    r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.out).toBe(0);
    expect(ws.read('b.txt')).toBe('v2\n');
  });

  it('a dep folder holding a link into another stage\'s out is refused before its result is used; declared, the out orders the two', () => {
    // `data/x -> ../out/a.txt` (a file out) and `data/o -> ../gen` (a folder holding an out): the walk of `data/`
    // reads both writers' outs, and no declared path joins `b` to them.
    ws = workspace({ 'in.txt': 'v1\n', 'out/a.txt': 'old\n', 'gen/g.txt': 'old\n', 'data/p.txt': 'plain\n' });
    symlinkSync('../out/a.txt', join(ws.dir, 'data/x'));
    const yaml = (deps: string, extra = '') =>
      `stages:\n  a:\n    cmd: sleep 0.2 && cp in.txt out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n` +
      `  g:\n    cmd: cp in.txt gen/g.txt\n    deps: [in.txt]\n    outs: [gen/g.txt]\n` +
      `  b:\n    cmd: cat data/x${extra} > b.txt\n    deps: [${deps}]\n    outs: [b.txt]\n`;
    ws.write('p.yaml', yaml('data/'));
    let r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.out).toBe(1);
    const why = "dep `data/` holds a symbolic link `data/x` that leads to `out/a.txt`, and stage `a` (out/a.txt) writes there without being upstream of `b`";
    expect(ends(r.stdout).b).toMatchObject({ status: 'failed', code: 'dep-through-link' });
    expect(ends(r.stdout).b!.reason).toContain(why);
    expect(ends(r.stdout).b!.reason).toContain('declare `out/a.txt` as a dep of `b`');
    expect(ws.exists('b.txt')).toBe(false);
    // Said by `pipe status` too, and in words on a terminal; and the same when the out is not there yet (the walk
    // meets a broken link: the cause is the missing order, not a link to fix).
    for (const present of [true, false]) {
      if (!present) rmSync(join(ws.dir, 'out/a.txt'));
      r = pipe(ws.dir, ['status', 'p.yaml']);
      expect(r.code, r.out).toBe(0);
      expect(r.stdout).toContain(`refused: ${why}`);
      r = pipe(ws.dir, ['run', 'p.yaml', 'b']);
      expect(r.code).toBe(1);
      expect(r.out).toContain(why);
    }

    // A link to a folder that holds another stage's out.
    rmSync(join(ws.dir, 'data/x'));
    symlinkSync('../gen', join(ws.dir, 'data/o'));
    ws.write('p.yaml', yaml('data/').replace('cat data/x', 'cat data/o/g.txt'));
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.out).toBe(1);
    expect(ends(r.stdout).b!.reason).toContain("dep `data/` holds a symbolic link `data/o` that leads to `gen`, and stage `g` (gen/g.txt) writes there");

    // Declared, the writer is upstream: the reader waits for it and follows its new content.
    rmSync(join(ws.dir, 'data/o'));
    symlinkSync('../out/a.txt', join(ws.dir, 'data/x'));
    ws.write('p.yaml', yaml('data/, out/a.txt'));
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.out).toBe(0);
    expect(ws.read('b.txt')).toBe('v1\n');
    ws.write('in.txt', 'v2\n');
    r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(r.code, r.out).toBe(0);
    expect(statuses(r.stdout).b).toBe('ran');
    expect(ws.read('b.txt')).toBe('v2\n');

    // Links that lead to no out are followed as before: a source file of the workspace, and a folder outside it.
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    try {
      writeFileSync(join(outside, 'e.txt'), 'outside\n');
      rmSync(join(ws.dir, 'data/x'));
      symlinkSync('../in.txt', join(ws.dir, 'data/x'));
      symlinkSync(outside, join(ws.dir, 'data/ext'));
      ws.write('p.yaml', yaml('data/', ' data/ext/e.txt'));
      r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
      expect(r.code, r.out).toBe(0);
      expect(ws.read('b.txt')).toBe('v2\noutside\n');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }

    // Several links into outs (two into one folder, one into another): the first is named, the others counted.
    rmSync(join(ws.dir, 'data/ext'));
    symlinkSync('../out/a.txt', join(ws.dir, 'data/y'));
    symlinkSync('../out/a.txt', join(ws.dir, 'data/z'));
    symlinkSync('../gen/g.txt', join(ws.dir, 'data/w'));
    ws.write('p.yaml', yaml('data/'));
    r = pipe(ws.dir, ['run', 'p.yaml', 'b', '--json']);
    expect(r.code, r.out).toBe(1);
    expect(ends(r.stdout).b!.reason).toContain('dep `data/` holds a symbolic link `data/w` (and 2 more links into outs like it) that leads to `gen/g.txt`, and stage `g` (gen/g.txt) writes there');
  });

  it('pipe status, run -n and why decide a stage whose dep folder holds a broken link: no internal error', () => {
    // The writer declared upstream (the way the refusal asks for), its outs gone but restorable: the plan cannot hash
    // `data/` before the restore, which is not a reason to crash.
    ws = workspace({ 'in.txt': 'v1\n', 'data/p.txt': 'plain\n' });
    symlinkSync('../out/a.txt', join(ws.dir, 'data/x'));
    ws.write(
      'p.yaml',
      `stages:\n  a:\n    cmd: mkdir -p out && cp in.txt out/a.txt && echo side > out/side.txt\n    deps: [in.txt]\n    outs: [out/a.txt, out/side.txt]\n` +
        `  m:\n    cmd: cp out/side.txt m.txt\n    deps: [out/side.txt]\n    outs: [m.txt]\n` +
        `  b:\n    cmd: cat data/x m.txt > b.txt\n    deps: [data/, m.txt]\n    outs: [b.txt]\n`,
    );
    let r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.out).toBe(0);
    rmSync(join(ws.dir, 'out'), { recursive: true });
    for (const args of [['status', 'p.yaml'], ['run', '-n', 'p.yaml'], ['why', 'p.yaml', 'b']]) {
      r = pipe(ws.dir, args);
      expect(r.out).not.toContain('internal error');
      expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
    }
    expect(pipe(ws.dir, ['status', 'p.yaml']).stdout).toContain('upstream stage a will be restored first');
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    expect(ws.read('b.txt')).toBe('v1\nside\n');

    // Not ordered: `pipe why` gives the refusal, as `pipe status` does.
    ws.write('p.yaml', ws.read('p.yaml').replace('deps: [data/, m.txt]', 'deps: [data/]'));
    rmSync(join(ws.dir, 'out'), { recursive: true });
    r = pipe(ws.dir, ['why', 'p.yaml', 'b']);
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toContain("refused: dep `data/` holds a symbolic link `data/x` that leads to `out/a.txt`");

    // A link to nothing at all: said as what the run will say, for the stage.
    rmSync(join(ws.dir, 'data/x'));
    symlinkSync('../nowhere', join(ws.dir, 'data/z'));
    for (const args of [['status', 'p.yaml'], ['run', '-n', 'p.yaml'], ['why', 'p.yaml', 'b']]) {
      r = pipe(ws.dir, args);
      expect(r.out).not.toContain('internal error');
      expect(r.code, `${args.join(' ')}: ${r.out}`).toBe(0);
      expect(r.stdout).toContain('data/z is a broken symbolic link');
    }
  });
});
