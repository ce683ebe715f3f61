// The job spawner (engine/executors/spawner.ts): a job started through the Python spawner gets exactly what Node's
// own spawn would give it, says why it could not start, and dies with pipe however pipe dies. Real processes, real
// signals; each check runs through the spawner and through child_process.spawn (PIPE_SPAWNER=node).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { until } from '../support/gate.js';
import { alive } from '../support/process.js';
import { spawnerUnusedReason, startProcess, type ProcessRequest, type StartedProcess } from '../../engine/executors/spawner.js';
import { LocalExecutor } from '../../engine/executors/local.js';
import type { Job } from '../../engine/executors/executor.js';

const dir = mkdtempSync(join(tmpdir(), 'pipe-spawner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  pid?: number;
  output: string;
  code?: number | null;
  signal?: NodeJS.Signals | null;
  startFailed?: string;
  lost?: string;
}

/** Start a process and collect what happens to it; `onExit` gets its handle when it exits. */
function run(req: Partial<ProcessRequest> & { file: string }, onExit?: (p: StartedProcess) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const o: Outcome = { output: '' };
    const p: StartedProcess = startProcess(
      { args: [], cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, ...req },
      {
        started: (pid) => (o.pid = pid),
        startFailed: (e) => resolve({ ...o, startFailed: e.message }),
        output: (c) => (o.output += c.toString('utf8')),
        exited: (code, signal) => {
          Object.assign(o, { code, signal });
          onExit?.(p);
        },
        closed: () => resolve(o),
        lost: (reason) => resolve({ ...o, lost: reason }),
      },
    );
  });
}

const saved = process.env.PIPE_SPAWNER;
afterEach(() => {
  if (saved === undefined) delete process.env.PIPE_SPAWNER;
  else process.env.PIPE_SPAWNER = saved;
});

it('the spawner is what this machine uses (python3 is installed by .ci/run)', () => {
  expect(spawnerUnusedReason()).toBeUndefined();
});

describe.each([
  ['the spawner', undefined],
  ['child_process.spawn', 'node'],
])('a job started through %s', (_name, mode) => {
  const use = (): void => {
    if (mode) process.env.PIPE_SPAWNER = mode;
    else delete process.env.PIPE_SPAWNER;
  };

  it('gets stdout and stderr in order, its exit code, its own process group, and the cwd', async () => {
    use();
    const o = await run({ file: 'sh', args: ['-c', 'echo one; echo two >&2; echo three; pwd; ps -o pgid= -p $$; exit 3'] });
    const lines = o.output.trim().split('\n');
    // One pipe for both through the spawner: arrival order is writing order. child_process.spawn has two pipes,
    // so stderr's line may come anywhere.
    if (!mode) expect(lines.slice(0, 3)).toEqual(['one', 'two', 'three']);
    expect(lines).toContain('two');
    const [one, three, cwd, pgid] = lines.filter((l) => l !== 'two');
    expect([one, three, cwd]).toEqual(['one', 'three', dir]);
    expect(Number(pgid)).toBe(o.pid);
    expect(o.code).toBe(3);
    expect(o.signal).toBeNull();
  });

  it('is told its signal by name when one kills it', async () => {
    use();
    const o = await run({ file: 'sh', args: ['-c', 'kill -TERM $$'] });
    expect(o.signal).toBe('SIGTERM');
    expect(o.code).toBeNull();
  });

  it('gets exactly the environment given, stdin from /dev/null, default signals, none blocked, no extra descriptors', async () => {
    use();
    const o = await run({
      file: 'sh',
      args: ['-c', 'env | sort; grep -E "^Sig(Ign|Blk)" /proc/self/status; cat; echo end'],
      env: { PATH: process.env.PATH!, ONLY_THIS: 'a b=c' },
    });
    const lines = o.output.trim().split('\n');
    expect(lines).toContain('ONLY_THIS=a b=c');
    expect(lines.filter((l) => /^[A-Z_]+=/.test(l) && !/^(PATH|ONLY_THIS|PWD|OLDPWD|SHLVL|_)=/.test(l))).toEqual([]);
    // Signals 1–31 (32 and 33 are the C library's own, set up by it in every program).
    const mask = (name: string): bigint => BigInt(`0x${lines.find((l) => l.startsWith(`${name}:`))!.split('\t')[1]}`) & 0x7fffffffn;
    expect(mask('SigIgn')).toBe(0n);
    expect(mask('SigBlk')).toBe(0n);
    expect(lines.at(-1)).toBe('end'); // `cat` read an empty stdin
    expect(o.code).toBe(0);
    // The job's descriptors: 0, 1, 2, and the one `ls` opens to list them (the job is `ls` itself: a shell would hold
    // a pipeline's pipes while it runs). child_process.spawn passes on whatever the parent left without
    // close-on-exec (under vitest, one of its worker's).
    if (!mode) expect((await run({ file: 'ls', args: ['/proc/self/fd'] })).output.split('\n').filter(Boolean)).toEqual(['0', '1', '2', '3']);
  });

  it('looks the program up on its own PATH, and says why it could not start one', async () => {
    use();
    const bin = mkdtempSync(join(dir, 'bin-'));
    writeFileSync(join(bin, 'hello-tool'), '#!/bin/sh\necho tool ran\n', { mode: 0o755 });
    expect((await run({ file: 'hello-tool', env: { PATH: `${bin}:/usr/bin:/bin` } })).output).toBe('tool ran\n');
    const missing = await run({ file: 'no-such-tool-here' });
    expect(missing.startFailed).toMatch(/no-such-tool-here|ENOENT/);
    expect(missing.pid).toBeUndefined();
    const noCwd = await run({ file: 'sh', args: ['-c', 'true'], cwd: join(dir, 'gone') });
    expect(noCwd.startFailed).toMatch(/gone|ENOENT/);
  });

  it('enters its cwd anew: a workspace removed and made again at the same path is where the next job runs', async () => {
    use();
    const ws = join(dir, `again-${mode ?? 'spawner'}`);
    mkdirSync(ws);
    expect((await run({ file: 'sh', args: ['-c', 'echo 1 > one'], cwd: ws })).code).toBe(0);
    rmSync(ws, { recursive: true });
    mkdirSync(ws);
    const o = await run({ file: 'sh', args: ['-c', 'echo 2 > two'], cwd: ws });
    expect(o.output).toBe('');
    expect(o.code).toBe(0);
    expect(readFileSync(join(ws, 'two'), 'utf8')).toBe('2\n');
  });

  it('an argument over the kernel limit: the job could not start, said so; the next one starts', async () => {
    use();
    const o = await run({ file: 'echo', args: ['x'.repeat(300_000)] });
    expect(o.startFailed).toMatch(/E2BIG|Argument list too long/);
    expect((await run({ file: 'sh', args: ['-c', 'echo next'] })).output).toBe('next\n');
  });

  it('an environment name exec cannot take (empty) is child_process.spawn\'s to handle; a running job is not disturbed', async () => {
    use();
    const long = run({ file: 'sh', args: ['-c', 'sleep 0.5; echo long'] });
    const odd = await run({ file: 'sh', args: ['-c', 'echo odd'], env: { PATH: process.env.PATH!, '': 'x' } });
    expect(odd.lost).toBeUndefined();
    const o = await long;
    expect(o.lost).toBeUndefined();
    expect(o.output).toBe('long\n');
  });

  it('a job whose output was dropped (a setsid writer held it) and two jobs started that moment: neither waits on the other', async () => {
    use();
    let quick: Promise<Outcome> | undefined;
    let slow: Promise<Outcome> | undefined;
    let droppedAt = 0;
    await run({ file: 'sh', args: ['-c', 'setsid sh -c "while :; do echo x; done" & sleep 0.2'] }, (p) => {
      // What the executor does OUTPUT_DRAIN_MS after the exit, here at once; then two jobs start in the same tick
      // (a pipe made for them may reuse the number of the one just closed).
      p.dropOutput();
      droppedAt = Date.now();
      slow = run({ file: 'sleep', args: ['3'] });
      quick = run({ file: 'sh', args: ['-c', 'echo quick'] });
    });
    const q = await quick!;
    expect(q.output).toBe('quick\n');
    expect(Date.now() - droppedAt).toBeLessThan(2000);
    expect((await slow!).code).toBe(0);
  });

  it('delivers a large output whole, in order', async () => {
    use();
    const o = await run({ file: 'sh', args: ['-c', 'seq 1 200000'] });
    const lines = o.output.trim().split('\n');
    expect(lines.length).toBe(200000);
    expect(lines[0]).toBe('1');
    expect(lines[199999]).toBe('200000');
  });
});

const helper = fileURLToPath(new URL('../../dist/engine/executors/spawner.js', import.meta.url));

it('a spawner that cannot start (PIPE_SPAWNER names a program that exits at once): its jobs run in pipe after all, one it cannot start says so', () => {
  const script = `
    import { spawnerUnusedReason, startProcess } from ${JSON.stringify(helper)};
    startProcess({ file: 'echo', args: ['x'.repeat(300000)], cwd: ${JSON.stringify(dir)}, env: { PATH: process.env.PATH } }, {
      started() {}, startFailed(e) { console.log('too long:', e.message); }, exited() {}, lost(r) { console.log('lost', r); }, output() {}, closed() {},
    });
    for (const n of [1, 2]) startProcess({ file: 'sh', args: ['-c', 'echo ran ' + n], cwd: ${JSON.stringify(dir)}, env: { PATH: process.env.PATH } }, {
      started() {}, startFailed(e) { console.log('failed', e.message); }, exited() {}, lost(r) { console.log('lost', r); },
      output(c) { process.stdout.write(c); }, closed() { if (n === 2) console.log('why:', spawnerUnusedReason()); },
    });
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PIPE_SPAWNER: '/bin/false' } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/too long: spawn E2BIG/);
  expect(r.stdout).toMatch(/ran 1\n[^]*ran 2\n/);
  expect(r.stdout).toMatch(/why: the job spawner \(\/bin\/false\) did not start \(exit code 1\)/);
});

describe('the spawner takes its jobs with it', () => {
  // A process that starts `sh` (which starts `sleep`) through the spawner, prints both pids, and is then killed.
  async function startThenKill(kill: (p: { pid: number; spawner: number }) => void): Promise<number[]> {
    const script = `
      import { startProcess } from ${JSON.stringify(helper)};
      import { execFileSync } from 'node:child_process';
      startProcess({ file: 'sh', args: ['-c', 'sleep 300 & echo $$ $!; wait'], cwd: ${JSON.stringify(dir)}, env: { PATH: process.env.PATH } }, {
        started() {}, startFailed(e) { console.log('failed', e.message); }, exited() {}, closed() {}, lost() {},
        output(c) {
          const kids = execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' }).trim();
          console.log('pids', c.toString().trim(), 'spawner', kids);
        },
      });
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await until(() => /^pids \d+ \d+ spawner \d+/m.test(out), 'the job to start');
    const [, sh, sleep, spawner] = /^pids (\d+) (\d+) spawner (\d+)/m.exec(out)!.map(Number);
    expect([sh!, sleep!, spawner!].every(alive)).toBe(true);
    kill({ pid: child.pid!, spawner: spawner! });
    return [sh!, sleep!, spawner!];
  }

  it('when pipe is SIGKILLed (no exit hook runs), the job and what it started die', async () => {
    delete process.env.PIPE_SPAWNER;
    const pids = await startThenKill(({ pid }) => process.kill(pid, 'SIGKILL'));
    await until(() => !pids.some(alive), 'the job, its sleep and the spawner to end');
  });

  it('when the spawner is killed under a running job, the job is reported lost and its group killed', async () => {
    delete process.env.PIPE_SPAWNER;
    const pidFile = join(dir, 'lost.pid');
    const job = run({ file: 'sh', args: ['-c', `sleep 300 & echo $! > ${pidFile}; wait`] });
    await until(() => readFileSync(pidFile, { flag: 'a+' }).length > 0, 'the job to start its sleep');
    const sleep = Number(readFileSync(pidFile, 'utf8'));
    // The spawner serving this test file: this process's child whose program is the spawner script.
    const spawner = Number(execFileSync('pgrep', ['-P', String(process.pid), '-f', 'posix_spawn'], { encoding: 'utf8' }).trim());
    process.kill(spawner, 'SIGKILL');
    const o = await job;
    expect(o.lost).toMatch(/spawner exited \(killed by SIGKILL\).*processes were killed/);
    await until(() => !alive(sleep), 'the orphaned sleep to be killed');
    // The next job starts a new spawner.
    expect((await run({ file: 'sh', args: ['-c', 'echo again'] })).output).toBe('again\n');
  });
});

it('a job cancelled as it starts, whose program cannot start: cancelled, not a start failure', async () => {
  const ac = new AbortController();
  const job = {
    id: 'c-1', stage: 'c', group: 'c', key: 'k', argv: ['no-such-program-xyz'], cwd: dir, env: { PATH: process.env.PATH! },
    resources: { cpus: 1, mem: '0', gpus: 0 }, gpuIds: [], logFile: join(dir, 'c.log'), slurm: {},
  } as unknown as Job;
  const result = new LocalExecutor().run(job, { signal: ac.signal });
  ac.abort();
  expect(await result).toMatchObject({ status: 'cancelled', failure: 'cancelled' });
});
