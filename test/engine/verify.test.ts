// `pipe verify` (issue 10, Nix's --check): re-run recorded stages in a scratch copy, name each stage and file that
// differ, exit non-zero when any does — and leave the workspace, its .pipe/ and its cache byte-for-byte untouched.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scratchOwner, scratchPrefix } from '../../engine/commands/verify.js';
import { snapshot } from '../support/snapshot.js';
import { events, pipe, pipeAsync, pipeBin, workspace, type Ws } from './helpers.js';
import { Gates, until } from '../support/gate.js';
import { alive } from '../support/process.js';

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

describe('scratch copies that a killed verify left', () => {
  const host = hostname();
  // A stage whose re-run waits at a gate; $TAG (ambient, in no key) names the file its shell's pid is written to.
  const setup = (): { gates: Gates; scratchDir: string; outside: string } => {
    shared = mkdtempSync(join(tmpdir(), 'pipe-scratch-test-'));
    const gates = new Gates(join(shared, 'gates'));
    const scratchDir = join(shared, 'scratch');
    const outside = join(shared, 'outside');
    mkdirSync(scratchDir);
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'not the scratch copy\'s\n');
    ws = workspace({
      'p.yaml': `name: v\nstages:\n  slow:\n    cmd: echo $$ > ${gates.dir}/pid$TAG; ${gates.cmd('slow', 'cat in.txt > out/s.txt')}\n    deps: [in.txt]\n    outs: [out/s.txt]\n`,
      'in.txt': 'in\n',
    });
    gates.open('slow');
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    gates.reset();
    return { gates, scratchDir, outside };
  };
  const verify = (scratchDir: string, tag: string) => pipeAsync(ws.dir, ['verify', 'p.yaml', '--scratch-dir', scratchDir], { TAG: tag });
  const sweepLines = (stderr: string): string[] => stderr.split('\n').filter((l) => /^pipe: (removed|could not remove) /.test(l));
  const removed = (path: string, pid: number): string => `pipe: removed the scratch copy ${path} that a killed pipe verify (pid ${pid}) left`;
  const deadPid = (): number => {
    const pid = spawnSync('true').pid!;
    expect(alive(pid)).toBe(false);
    return pid;
  };

  it('a name is file-name safe and names its host and pid; no other host, and nothing else, reads as the owner', () => {
    const name = `${scratchPrefix('lab/node 7 (gpu)', 4242)}aB3xY9`;
    expect(name).toBe('pipe-verify-lab%2Fnode%207%20%28gpu%29-4242-aB3xY9');
    expect(scratchOwner(name, 'lab/node 7 (gpu)')).toBe(4242);
    for (const host of ['lab', 'lab_node 7 (gpu)', 'lab/node 7 (gpu']) expect(scratchOwner(name, host)).toBeUndefined();
    for (const other of ['pipe-verify-lab-0-aB3xY9', 'pipe-verify-lab-4242-aB3xY', 'pipe-verify-lab-4242-aB3xY9.x', 'pipe-verify-lab-2-4242-aB3xY9', 'pipe-verify-kept-aB3xY9']) {
      expect(scratchOwner(other, 'lab'), other).toBeUndefined();
    }
    expect(scratchOwner('pipe-verify-lab-4242-aB3xY9', 'lab')).toBe(4242);
  });

  it('one SIGKILLed while a stage runs is removed by the next verify, which says so; a link in it is removed, not followed', async () => {
    const { gates, scratchDir, outside } = setup();
    const p = verify(scratchDir, 'killed');
    try {
      await gates.whenStarted('slow');
      const [name, ...more] = readdirSync(scratchDir);
      expect(more).toEqual([]);
      expect(scratchOwner(name!, host)).toBe(p.child.pid);
      const stale = join(scratchDir, name!);
      expect(readFileSync(join(stale, 'in.txt'), 'utf8')).toBe('in\n');
      symlinkSync(outside, join(stale, 'to-outside'));
      const before = snapshot(outside);
      const stage = Number(readFileSync(join(gates.dir, 'pidkilled'), 'utf8'));
      p.child.kill('SIGKILL');
      await p.done;
      await until(() => !alive(stage), "the killed verify's stage to be gone", 10_000);
      expect(existsSync(stale)).toBe(true); // no `finally` ran

      gates.open('slow');
      const r = pipe(ws.dir, ['verify', 'p.yaml', '--scratch-dir', scratchDir]);
      expect(r.code, r.out).toBe(0);
      expect(sweepLines(r.stderr)).toEqual([removed(stale, p.child.pid!)]);
      expect(readdirSync(scratchDir)).toEqual([]);
      expect(snapshot(outside)).toEqual(before);
    } finally {
      gates.openAll();
    }
  });

  it("leaves a live verify's copy, a live pid's, another host's or user's, a link or a file with such a name, and a kept copy", async () => {
    const { gates, scratchDir, outside } = setup();
    gates.open('slow');
    const k = pipe(ws.dir, ['verify', 'p.yaml', '--scratch-dir', scratchDir, '--keep-scratch']);
    expect(k.code, k.out).toBe(0);
    const kept = /^scratch copy kept in (.+)$/m.exec(k.stdout)?.[1];
    expect(kept !== undefined && lstatSync(kept).isDirectory(), k.stdout).toBe(true);
    gates.reset();
    const live = verify(scratchDir, 'live');
    let second: ReturnType<typeof verify> | undefined;
    try {
      await gates.whenStarted('slow');
      const liveCopy = readdirSync(scratchDir).find((n) => scratchOwner(n, host) === live.child.pid);
      expect(liveCopy).toBeDefined();
      const dead = deadPid();
      const at = (h: string, pid: number, x: string): string => join(scratchDir, `${scratchPrefix(h, pid)}${x}`);
      const alivePid = at(host, process.pid, 'alive1'); // this test's own pid: a live process
      const otherHost = at(`${host}-2`, dead, 'other1'); // its name starts with this host's
      const link = at(host, dead, 'link01');
      const file = at(host, dead, 'file01');
      const otherUser = process.getuid?.() === 0 ? at(host, dead, 'user01') : undefined; // only root can make one
      for (const dir of [alivePid, otherHost, otherUser]) if (dir) mkdirSync(dir);
      symlinkSync(outside, link);
      writeFileSync(file, 'a file\n');
      if (otherUser) chownSync(otherUser, 65534, 65534);
      const left = [alivePid, otherHost, link, file, ...(otherUser ? [otherUser] : [])];
      const before = snapshot(scratchDir, [liveCopy!]);
      const stale = at(host, dead, 'stale1');
      mkdirSync(stale);
      writeFileSync(join(stale, 'x.txt'), 'x\n');

      second = verify(scratchDir, 'second');
      await gates.until((g) => g.started().length === 2, "the second verify's re-run to start");
      // It has swept, before copying: only the dead verify's folder is gone.
      const secondCopy = readdirSync(scratchDir).filter((n) => scratchOwner(n, host) === second!.child.pid);
      expect(snapshot(scratchDir, [liveCopy!, ...secondCopy])).toEqual(before);

      gates.open('slow');
      const [a, b] = await Promise.all([live.done, second.done]);
      expect(a.code, a.out).toBe(0);
      expect(b.code, b.out).toBe(0);
      expect(sweepLines(a.stderr)).toEqual([]); // the kept copy is not a killed verify's
      expect(sweepLines(b.stderr)).toEqual([removed(stale, dead)]);
      expect(readdirSync(scratchDir).sort()).toEqual([basename(kept!), ...left.map((p) => basename(p))].sort());
      expect(readFileSync(join(outside, 'keep.txt'), 'utf8')).toBe("not the scratch copy's\n");
    } finally {
      gates.openAll();
      await Promise.all([live.done, second?.done]);
    }
  });

  it('one it cannot remove is one line of warning, and the verify goes on; the next verify removes what is left', (ctx) => {
    const { gates, scratchDir } = setup();
    gates.open('slow');
    const dead = deadPid();
    const stale = join(scratchDir, `${scratchPrefix(host, dead)}stuck1`);
    mkdirSync(join(stale, 'sub'), { recursive: true });
    writeFileSync(join(stale, 'sub', 'f'), 'f\n');
    // Root ignores permissions but not an immutable file; anyone else cannot delete from a folder without write permission.
    const root = process.getuid?.() === 0;
    const stuck = root ? spawnSync('chattr', ['+i', join(stale, 'sub', 'f')]).status === 0 : (chmodSync(join(stale, 'sub'), 0o555), true);
    if (!stuck) return ctx.skip('chattr +i is not supported on this file system');
    const unstick = (): void => {
      for (const n of readdirSync(scratchDir)) {
        if (!existsSync(join(scratchDir, n, 'sub'))) continue;
        if (root) spawnSync('chattr', ['-i', join(scratchDir, n, 'sub', 'f')]);
        else chmodSync(join(scratchDir, n, 'sub'), 0o755);
      }
    };
    try {
      const r = pipe(ws.dir, ['verify', 'p.yaml', '--scratch-dir', scratchDir]);
      expect(r.code, r.out).toBe(0);
      const lines = sweepLines(r.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/: E[A-Z]+: [^\n]*\/sub\/f'$/); // node's words for what stopped it (EPERM, seen as ENOTDIR)
      expect(lines[0]!.startsWith(`pipe: could not remove the scratch copy ${stale} that a killed pipe verify (pid ${dead}) left (what is left of it is now ${scratchDir}/`)).toBe(true);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      unstick();
      const again = pipe(ws.dir, ['verify', 'p.yaml', '--scratch-dir', scratchDir]);
      expect(again.code, again.out).toBe(0);
      expect(sweepLines(again.stderr)).toEqual([expect.stringMatching(/^pipe: removed the scratch copy \S+ that a killed pipe verify \(pid \d+\) left$/)]);
      expect(readdirSync(scratchDir)).toEqual([]);
    } finally {
      unstick();
    }
  });
});
