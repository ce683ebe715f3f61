// `pipe verify` (issue 10, Nix's --check): re-run recorded stages in a scratch copy, name each stage and file that
// differ, exit non-zero when any does — and leave the workspace, its .pipe/ and its cache byte-for-byte untouched.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { snapshot } from '../support/snapshot.js';
import { events, pipe, pipeAsync, pipeBin, workspace, type Ws } from './helpers.js';
import { until } from '../support/gate.js';

let ws: Ws;
let shared: string | undefined;
afterEach(() => {
  ws?.cleanup();
  if (shared) rmSync(shared, { recursive: true, force: true });
  shared = undefined;
});


const pipeline = (cacheDir: string) => `name: v
settings: {cache_dir: ${cacheDir}}
stages:
  a:
    cmd: cat in.txt in.txt > out/a.txt
    deps: [in.txt]
    outs: [out/a.txt]
  rnd:
    cmd: mkdir -p out/d && echo same > out/d/same.txt && head -c 16 /dev/urandom > out/d/noise.bin
    deps: [out/a.txt]
    outs: [out/d/]
  b:
    cmd: cat out/d/same.txt out/a.txt > out/b.txt
    deps: [out/d/same.txt, out/a.txt]
    outs: [out/b.txt]
  e:
    uses: testing/echo
    with: {src: out/b.txt, out: out/e.txt}
`;

interface VerifyEv {
  type: string;
  stage?: string;
  verdict?: string;
  code?: string;
  reason?: string;
  outputs?: Array<{ path: string; recorded: string; now: string | null; files?: { changed: string[]; added: string[]; removed: string[] } }>;
  ok?: boolean;
}

const verdicts = (stdout: string) => Object.fromEntries((events(stdout) as VerifyEv[]).filter((e) => e.type === 'verify-stage').map((e) => [e.stage, e]));

describe('pipe verify', () => {
  it('names the nondeterministic stage and file, checks the stages below against recorded inputs, and touches nothing', () => {
    shared = mkdtempSync(join(tmpdir(), 'pipe-shared-cache-'));
    ws = workspace({ 'p.yaml': pipeline(shared), 'in.txt': 'in\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    const before = { ws: snapshot(ws.dir), cache: snapshot(shared) };
    const pipeListing = readdirSync(join(ws.dir, '.pipe')).sort();

    const r = pipe(ws.dir, ['verify', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const v = verdicts(r.stdout);
    expect(v.a!.verdict).toBe('reproduced');
    expect(v.b!.verdict).toBe('reproduced'); // ran on the recorded out/d/, not on rnd's new noise
    // A uses stage: same key, same bytes — its ctx.upstream names rnd's recorded out/d/ (noise.bin included, a file
    // no stage reads, so the scratch copy lacks it), as the recorded run saw it.
    expect(v.e!.verdict).toBe('reproduced');
    expect(v.rnd!.verdict).toBe('differs');
    expect(v.rnd!.outputs).toHaveLength(1);
    expect(v.rnd!.outputs![0]).toMatchObject({ path: 'out/d/', files: { changed: ['noise.bin'], added: [], removed: [] } });
    expect((events(r.stdout) as VerifyEv[]).at(-1)).toMatchObject({ type: 'verify-end', ok: false });

    // The workspace, its .pipe/ and the (shared) cache: byte for byte, entry for entry, as before.
    expect(snapshot(ws.dir)).toEqual(before.ws);
    expect(readdirSync(join(ws.dir, '.pipe')).sort()).toEqual(pipeListing);
    expect(snapshot(shared)).toEqual(before.cache);

    // Plain output names the stage and the file; targets limit it to a stage and its upstream.
    const plain = pipe(ws.dir, ['verify', 'p.yaml', 'b']);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toMatch(/^verify: 2 reproduced, 1 differ, 0 failed, 0 not verified$/m);
    expect(plain.stdout).toMatch(/✗ rnd: outputs differ from the recorded run\n\s+out\/d\/: recorded [0-9a-f]{12}…, now [0-9a-f]{12}…\n\s+changed noise\.bin/);
    expect(plain.stdout).not.toMatch(/\be:/);
    const onlyA = pipe(ws.dir, ['verify', 'p.yaml', 'a']);
    expect(onlyA.code, onlyA.stdout).toBe(0);
    expect(onlyA.stdout).toMatch(/^verify: 1 reproduced, 0 differ, 0 failed, 0 not verified$/m);
    expect(snapshot(ws.dir)).toEqual(before.ws);
    expect(snapshot(shared)).toEqual(before.cache);
  });

  it('a stage the workspace is not up to date for is not verified (exit 1); a re-run that fails (an undeclared input) is named', () => {
    ws = workspace({
      'p.yaml': 'name: v\nstages:\n  a:\n    cmd: cat in.txt > out/a.txt\n    deps: [in.txt]\n    outs: [out/a.txt]\n  sneaky:\n    cmd: cat notes.txt > out/s.txt\n    outs: [out/s.txt]\n',
      'in.txt': '1\n',
      'notes.txt': 'undeclared\n',
    });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    ws.write('in.txt', '2\n');
    const r = pipe(ws.dir, ['verify', 'p.yaml', '--json']);
    expect(r.code).toBe(1);
    const v = verdicts(r.stdout);
    expect(v.a).toMatchObject({ verdict: 'unverified', code: 'no-record' });
    expect(v.a!.reason).toMatch(/pipe run/); // says what to do
    expect(v.sneaky).toMatchObject({ verdict: 'failed', code: 'exit-non-zero', reason: 'exit code 1' });
    expect(ws.read('out/a.txt')).toBe('1\n');
  });

  it('Ctrl-C: exit 130, and the stages it stopped are not verified, not failed re-runs', async () => {
    // `hold` is an ambient variable (not in any key): only the verify's re-run of `slow` waits, until it is interrupted.
    ws = workspace({
      'p.yaml':
        'name: v\nstages:\n  quick:\n    cmd: echo q > out/q.txt\n    outs: [out/q.txt]\n' +
        '  slow:\n    cmd: if [ -n "$HOLD" ]; then touch "$HOLD/started"; sleep 300; fi; echo s > out/s.txt\n    deps: [out/q.txt]\n    outs: [out/s.txt]\n' +
        '  below:\n    cmd: cat out/s.txt > out/b.txt\n    deps: [out/s.txt]\n    outs: [out/b.txt]\n',
    });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    const hold = mkdtempSync(join(tmpdir(), 'pipe-verify-hold-'));
    try {
      const p = pipeAsync(ws.dir, ['verify', 'p.yaml', '--json'], { HOLD: hold });
      await until(() => readdirSync(hold).includes('started'), 'the re-run of slow to start');
      p.child.kill('SIGINT');
      const r = await p.done;
      expect(r.code).toBe(130);
      const v = verdicts(r.stdout);
      expect(v.quick).toMatchObject({ verdict: 'reproduced' });
      expect(v.slow).toMatchObject({ verdict: 'unverified' });
      expect(v.slow!.reason).toMatch(/interrupted/);
      expect(v.below).toMatchObject({ verdict: 'unverified' });
      const end = (events(r.stdout) as Array<VerifyEv & { counts?: Record<string, number> }>).find((e) => e.type === 'verify-end');
      expect(end?.counts).toEqual({ reproduced: 1, differs: 0, failed: 0, unverified: 2 });
    } finally {
      rmSync(hold, { recursive: true, force: true });
    }
  });

  it('compares a cache: false output with what the last run of the same inputs left, and names it when it cannot', () => {
    shared = mkdtempSync(join(tmpdir(), 'pipe-shared-cache-'));
    const yaml = (scratch: string) =>
      `name: v\nsettings: {cache_dir: ${shared}}\nstages:\n  s:\n    cmd: mkdir -p out && cat in.txt > out/kept.txt && ${scratch}\n` +
      '    deps: [in.txt]\n    outs: [out/kept.txt, {path: out/scratch.txt, cache: false}]\n';
    ws = workspace({ 'p.yaml': yaml('cat in.txt in.txt > out/scratch.txt'), 'in.txt': 'a\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    let r = pipe(ws.dir, ['verify', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(verdicts(r.stdout).s).toMatchObject({ verdict: 'reproduced' });
    expect(verdicts(r.stdout).s!.code).toBeUndefined();

    // The uncached output is the nondeterministic one: it is named, the cached one is not.
    ws.write('p.yaml', yaml('head -c 16 /dev/urandom > out/scratch.txt'));
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    r = pipe(ws.dir, ['verify', 'p.yaml', '--json']);
    expect(r.code).toBe(1);
    expect(verdicts(r.stdout).s).toMatchObject({ verdict: 'differs' });
    expect(verdicts(r.stdout).s!.outputs!.map((o) => o.path)).toEqual(['out/scratch.txt']);

    // Back to inputs recorded earlier, but the workspace last ran other ones: nothing holds the uncached output's
    // hash for these inputs, and the verdict says so.
    ws.write('p.yaml', yaml('cat in.txt in.txt > out/scratch.txt'));
    ws.write('in.txt', 'b\n');
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    ws.write('in.txt', 'a\n');
    r = pipe(ws.dir, ['verify', 'p.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(verdicts(r.stdout).s).toMatchObject({ verdict: 'reproduced', code: 'not-compared' });
    expect(verdicts(r.stdout).s!.reason).toMatch(/not compared: out\/scratch\.txt \(cache: false/);
    r = pipe(ws.dir, ['verify', 'p.yaml']);
    expect(r.stdout).toMatch(/^~ s: every recorded output reproduced; not compared: out\/scratch\.txt/m);
  });

  it('refuses a scratch folder inside the workspace or its cache (exit 2, naming the option): nothing is written there', () => {
    shared = mkdtempSync(join(tmpdir(), 'pipe-shared-cache-'));
    ws = workspace({ 'p.yaml': `name: v\nsettings: {cache_dir: ${shared}}\nstages:\n  a:\n    cmd: cat data/d/* > out/a.txt\n    deps: [data/d/]\n    outs: [out/a.txt]\n`, 'data/d/x.txt': 'x\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    const before = { ws: snapshot(ws.dir), cache: snapshot(shared) };
    symlinkSync(join(ws.dir, 'out'), join(shared, 'into-out')); // a way into the workspace from outside it
    for (const dir of ['data/d', 'out', '.', join(shared, 'into-out'), shared]) {
      const r = pipe(ws.dir, ['verify', 'p.yaml', '--scratch-dir', dir]);
      expect(r.code, `${dir}: ${r.out}`).toBe(2);
      expect(r.stderr).toMatch(/--scratch-dir .* is inside the (workspace|cache)/);
      expect(r.stderr).not.toMatch(/EINVAL|    at /);
    }
    rmSync(join(shared, 'into-out'));
    expect({ ws: snapshot(ws.dir), cache: snapshot(shared) }).toEqual(before);
  });

  it('shows progress on a terminal', () => {
    ws = workspace({ 'p.yaml': 'name: v\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n' });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    const r = spawnSync('script', ['-qec', `stty cols 120; ${process.execPath} ${pipeBin} verify p.yaml`, '/dev/null'], {
      cwd: ws.dir,
      encoding: 'utf8',
      env: { ...process.env, CI: '', TERM: 'xterm' },
      timeout: 60_000,
    });
    const text = r.stdout.replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '');
    expect(r.status, text).toBe(0);
    expect(text).toMatch(/✔ a .*done in/);
    expect(text).toMatch(/verify: 1 reproduced, 0 differ, 0 failed, 0 not verified/);
  });
});
