// Regressions from an adversarial probe of the SLURM executor (real cluster, test/slurm/start-cluster.sh): shell
// injection through a stage name, a stage run twice at once after a killed `pipe`, and a controller that stops
// answering while pipe reattaches or cancels. Fake squeue/scancel wrappers stand in only for an unreachable
// controller (the shared cluster is never stopped); everything else is real sbatch/squeue/scancel.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job, JobHooks } from '../../engine/executors/executor.js';
import { SlurmExecutor } from '../../engine/executors/slurm.js';
import { pipe, pipeAsync, workspace } from '../engine/helpers.js';
import { Gates, until } from '../support/gate.js';
import { hasSlurm, queuedIds, requireSlurm, startCluster } from './cluster.js';

const run = hasSlurm || requireSlurm ? describe : describe.skip;

/** The one record a killed `pipe run` left in `.pipe/slurm/jobs`. */
function onlyRecord(dir: string): { jobId: string; key: string } {
  const jobsDir = join(dir, '.pipe/slurm/jobs');
  const [f] = readdirSync(jobsDir).filter((n) => n.endsWith('.json'));
  return JSON.parse(readFileSync(join(jobsDir, f!), 'utf8')) as { jobId: string; key: string };
}

function hasRecord(dir: string): boolean {
  const jobsDir = join(dir, '.pipe/slurm/jobs');
  return existsSync(jobsDir) && readdirSync(jobsDir).some((f) => f.endsWith('.json'));
}

/** A stand-in for a SLURM command whose controller does not answer: its first `failures` calls fail as squeue does. */
function unreachable(dir: string, real: string, failures: number, label: string): string {
  const file = join(dir, `${label}-unreachable`);
  const counter = join(dir, `${label}-calls`);
  writeFileSync(
    file,
    `#!/bin/sh\nn=$(cat ${counter} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > ${counter}\n` +
      `if [ $n -le ${failures} ]; then echo "${real}: error: Unable to contact slurm controller (connect failure)" >&2; exit 1; fi\nexec ${real} "$@"\n`,
    { mode: 0o755 },
  );
  return file;
}

run('SLURM trust probe', () => {
  let dir: string;
  let n = 0;
  beforeAll(() => {
    startCluster();
    dir = mkdtempSync(join(tmpdir(), 'pipe-slurm-trust-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function job(gates: Gates, name: string, then: string): Job {
    n++;
    return {
      id: `trust-${n}`,
      stage: `trust${n}`,
      group: `trust${n}`,
      key: `key-trust-${n}-${Date.now()}`,
      argv: ['sh', '-c', gates.cmd(name, then)],
      cwd: dir,
      env: {},
      resources: { cpus: 1, memBytes: 64 * 1024 * 1024, gpus: 0 },
      gpuIds: [],
      logFile: join(dir, '.pipe', 'logs', `trust-${n}.log`),
      slurm: {},
    };
  }
  const hooks = (signal = new AbortController().signal): JobHooks & { states: string[] } => {
    const states: string[] = [];
    return { signal, onState: (s) => states.push(s), states };
  };
  const executor = (commands: Partial<Record<'squeue' | 'scancel', string>> = {}) =>
    new SlurmExecutor({ stateDir: join(dir, '.pipe', 'slurm'), pollMinMs: 100, pollMaxMs: 1000, arrayWindowMs: 0, commands });
  /** Each test starts with no job records, and leaves none queued. */
  afterEach(() => {
    const jobsDir = join(dir, '.pipe/slurm/jobs');
    const ids = existsSync(jobsDir) ? readdirSync(jobsDir).map((f) => (JSON.parse(readFileSync(join(jobsDir, f), 'utf8')) as { jobId: string }).jobId) : [];
    if (ids.length > 0) execFileSync('scancel', ids);
    rmSync(jobsDir, { recursive: true, force: true });
  });

  it('a foreach item with a newline stays in the task script comment: never run as a command or read as #SBATCH', () => {
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const ws = workspace({
      'p.yaml': [
        'name: injection',
        'stages:',
        '  s:',
        `    foreach: ["a\\n#SBATCH --time=0\\ntouch ${join(outside, 'injected')}\\n#"]`,
        '    do:',
        '      executor: slurm',
        '      cmd: echo ok > out.txt',
        '      outs: [out.txt]',
        '',
      ].join('\n'),
    });
    try {
      const r = pipe(ws.dir, ['run', 'p.yaml']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(existsSync(join(outside, 'injected'))).toBe(false);
      expect(ws.read('out.txt')).toBe('ok\n');
    } finally {
      ws.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('reattaching while the controller does not answer: waits for it, never submits the stage a second time beside its running job', async () => {
    const gates = new Gates(join(dir, `.gates-${Date.now()}`));
    try {
      const j = job(gates, 'a', 'true');
      const first = executor();
      void first.run(j, hooks());
      await until(() => hasRecord(dir), 'the job in the registry');
      const { jobId } = onlyRecord(dir);
      await first.close(); // the pipe that submitted it is gone; the job goes on
      // squeue fails 3 times, then the controller is back.
      const second = executor({ squeue: unreachable(dir, 'squeue', 3, 'squeue-3') });
      const h = hooks();
      const done = second.run(j, h);
      await until(() => h.states.some((s) => s.startsWith('reattached') || s.startsWith('submitted')), 'reattach or a new submission');
      gates.open('a');
      const r = await done;
      await second.close();
      // Before: squeue's failure read as "the job is gone", and the stage was submitted again beside it.
      expect(h.states.join('\n')).toContain(`reattached to SLURM job ${jobId}`);
      expect(r.jobId).toBe(jobId);
      expect(second.stats.sbatchCalls).toBe(0);
      expect(r.status).toBe('succeeded');

      // A controller that stays away: the stage fails saying so, the record stays, nothing is submitted.
      await until(() => !hasRecord(dir), 'the finished job to leave the registry');
      const k = job(gates, 'b', 'true');
      const third = executor();
      void third.run(k, hooks());
      await until(() => hasRecord(dir), 'the job in the registry');
      const left = onlyRecord(dir).jobId;
      await third.close();
      const fourth = executor({ squeue: unreachable(dir, 'squeue', 1000, 'squeue-always') });
      const r2 = await fourth.run(k, hooks());
      await fourth.close();
      expect(r2.status).toBe('failed');
      expect(r2.reason).toMatch(new RegExp(`could not ask SLURM whether job ${left}, submitted by an earlier pipe run, is still queued \\(.*Unable to contact`));
      expect(fourth.stats.sbatchCalls).toBe(0);
      expect(onlyRecord(dir).jobId).toBe(left);
    } finally {
      gates.openAll();
    }
  });

  it('a job submitted while its record folder was turned into a link: scancelled and the stage failed saying so, nothing written outside', async () => {
    const gates = new Gates(join(dir, `.gates-${Date.now()}`));
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    const jobsDir = join(dir, '.pipe/slurm/jobs');
    const submitted = join(dir, 'submitted-id');
    // A real sbatch, after which a running job (here: this stand-in) puts a link at the records' folder.
    const sbatch = join(dir, 'sbatch-then-link');
    writeFileSync(sbatch, `#!/bin/sh
id=$(sbatch "$@") || exit 1
echo "$id" > ${submitted}
rm -rf ${jobsDir} && ln -s ${outside} ${jobsDir}
echo "$id"
`, { mode: 0o755 });
    const ex = new SlurmExecutor({ stateDir: join(dir, '.pipe', 'slurm'), pollMinMs: 100, pollMaxMs: 1000, arrayWindowMs: 0, commands: { sbatch } });
    try {
      const r = await Promise.race([ex.run(job(gates, 'rec', 'true'), hooks()), new Promise<'hung'>((res) => setTimeout(() => res('hung'), 30_000))]);
      // Before: the record was written through the link (outside the workspace), and the job went on unwatched.
      expect(readdirSync(outside)).toEqual([]);
      expect(r).not.toBe('hung');
      if (r === 'hung') return;
      const jobId = readFileSync(submitted, 'utf8').trim();
      expect(r.status).toBe('failed');
      expect(r.reason).toContain(`SLURM job ${jobId} was submitted but could not be recorded, so pipe scancelled it: ${jobsDir} is a link`);
      await until(() => !queuedIds().includes(jobId), 'the job to leave the queue');
    } finally {
      await ex.close();
      gates.openAll();
      rmSync(jobsDir, { force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('Ctrl-C while the controller does not answer: the job is reported cancelled at once (not waited for forever), its record kept for `pipe cancel`', async () => {
    const gates = new Gates(join(dir, `.gates-${Date.now()}`));
    try {
      const j = job(gates, 'c', 'true');
      const down = join(dir, 'controller-down');
      const flaky = (real: string) => {
        const file = join(dir, `${real}-flaky`);
        writeFileSync(file, `#!/bin/sh\nif [ -e ${down} ]; then echo "${real}: error: Unable to contact slurm controller (connect failure)" >&2; exit 1; fi\nexec ${real} "$@"\n`, { mode: 0o755 });
        return file;
      };
      const ex = executor({ squeue: flaky('squeue'), scancel: flaky('scancel') });
      const ctrlC = new AbortController();
      const h = hooks(ctrlC.signal);
      const done = ex.run(j, h);
      await until(() => existsSync(join(gates.dir, 'c.started')), 'the job to start');
      const { jobId } = onlyRecord(dir);
      writeFileSync(down, '');
      ctrlC.abort();
      // Before: scancel's failure was ignored and pipe polled a silent controller forever.
      const r = await Promise.race([done, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 30_000))]);
      await ex.close();
      rmSync(down);
      expect(r).not.toBe('hung');
      if (r === 'hung') return;
      expect(r.status).toBe('cancelled');
      expect(r.reason).toMatch(new RegExp(`scancel of SLURM job ${jobId} failed .*pipe cancel`));
      expect(onlyRecord(dir).jobId).toBe(jobId);
    } finally {
      gates.openAll();
    }
  });

  it('a job whose log grows by gigabytes between two polls: streamed bounded, with a note, never read whole into one string', async () => {
    const gates = new Gates(join(dir, `.gates-${Date.now()}`));
    const j = job(gates, 'big', 'truncate -s 700M /proc/self/fd/1; echo last-line');
    j.argv = ['sh', '-c', 'truncate -s 700M /proc/self/fd/1; echo last-line']; // a sparse log: no disk written
    const ex = executor();
    const output: string[] = [];
    try {
      // Before: Buffer.toString threw ERR_STRING_TOO_LONG inside the poll, and pipe died with a stack trace.
      const r = await ex.run(j, { ...hooks(), onOutput: (c) => output.push(c) });
      expect(r.status, r.reason).toBe('succeeded');
      const shown = output.join('');
      expect(shown.length).toBeLessThan(16 * 1024 * 1024);
      expect(shown).toMatch(/\[pipe: \d+ bytes of this job's log are not shown here; they are in .*trust-\d+\.log\]/);
      expect(shown).toContain('last-line');
    } finally {
      await ex.close();
      rmSync(j.logFile, { force: true });
    }
  });

  for (const [what, make] of [
    ['a link to a file outside', (log: string, outside: string) => `ln -s ${outside} ${log}`],
    ['a folder', (log: string) => `mkdir ${log}`],
    ['a FIFO', (log: string) => `mkfifo ${log}`],
  ] as const) {
    it(`a job that replaces its own log with ${what}: nothing outside is shown, the poll neither throws nor blocks`, async () => {
      const gates = new Gates(join(dir, `.gates-${Date.now()}`));
      const outside = join(mkdtempSync(join(tmpdir(), 'pipe-outside-')), 'secret.txt');
      writeFileSync(outside, 'OUTSIDE-SECRET\n');
      const j = job(gates, 'log', 'true');
      // The job's own output still goes to the first log (its descriptor is open); the name now holds something else.
      j.argv = ['sh', '-c', `rm -f ${j.logFile}; ${make(j.logFile, outside)}; ${gates.cmd('log')}; echo done`];
      const ex = executor();
      const output: string[] = [];
      try {
        const done = ex.run(j, { ...hooks(), onOutput: (c) => output.push(c) });
        await until(() => existsSync(join(gates.dir, 'log.started')), 'the job to replace its log');
        gates.open('log');
        // Before: the link was followed (the secret shown as the job's output), a folder threw EISDIR out of the poll
        // (pipe died with a stack trace), and a FIFO's open never returned (pipe hung).
        const r = await Promise.race([done, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 30_000))]);
        expect(r).not.toBe('hung');
        if (r === 'hung') return;
        expect(r.status, r.reason).toBe('succeeded');
        expect(output.join('')).not.toContain('OUTSIDE-SECRET');
      } finally {
        await ex.close();
        rmSync(j.logFile, { recursive: true, force: true });
        rmSync(dirname(outside), { recursive: true, force: true });
        gates.openAll();
      }
    });
  }

  it('pipe cancel while the controller does not answer: says so and exits 1, keeping the records (never "cancelled" for a job still running)', async () => {
    const tag = `k${Date.now()}`;
    const ws = workspace();
    const gates = new Gates(join(ws.dir, '.gates'));
    const bin = mkdtempSync(join(tmpdir(), 'pipe-bin-'));
    writeFileSync(join(bin, 'scancel'), '#!/bin/sh\necho "scancel: error: Unable to contact slurm controller (connect failure)" >&2\nexit 1\n', { mode: 0o755 });
    try {
      ws.write('p.yaml', ['name: cancel-down', 'stages:', `  ${tag}:`, '    executor: slurm', `    cmd: ${gates.cmd('job', 'echo x > out.txt')}`, '    outs: [out.txt]', ''].join('\n'));
      const killed = pipeAsync(ws.dir, ['run', 'p.yaml']);
      await until(() => hasRecord(ws.dir), 'the job in the registry');
      const { jobId } = onlyRecord(ws.dir);
      killed.child.kill('SIGKILL');
      await killed.done;
      const c = pipe(ws.dir, ['cancel', 'p.yaml'], { PATH: `${bin}:${process.env.PATH}` });
      // Before: "cancelled SLURM job N", exit 0, and the record gone while the job went on running.
      expect(c.code, c.stdout + c.stderr).toBe(1);
      expect(c.stderr).toContain(`scancel of SLURM job ${jobId} failed (scancel: error: Unable to contact slurm controller`);
      expect(c.stdout).not.toContain('cancelled SLURM job');
      expect(onlyRecord(ws.dir).jobId).toBe(jobId);
      expect(queuedIds()).toContain(jobId);
      const again = pipe(ws.dir, ['cancel', 'p.yaml']);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toContain(`cancelled SLURM job ${jobId}`);
      await until(() => !queuedIds().includes(jobId), `job ${jobId} to leave the queue`);
    } finally {
      gates.openAll();
      ws.cleanup();
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("a declaration with more ready expansions than the cluster's MaxArraySize allows goes out as several arrays, never one sbatch refuses", async () => {
    // The cluster's own configuration, but saying MaxArraySize=3 (indexes 0-2): 5 jobs make arrays of 2, 2 and 1.
    const scontrol = join(dir, 'scontrol-small-arrays');
    writeFileSync(scontrol, `#!/bin/bash\nif [ "$1 $2" = "show config" ]; then scontrol "$@" | sed -E 's/^MaxArraySize( *)= *[0-9]+/MaxArraySize\\1= 3/'; exit \${PIPESTATUS[0]}; fi\nexec scontrol "$@"\n`, { mode: 0o755 });
    const gates = new Gates(join(dir, `.gates-${Date.now()}`));
    const ex = new SlurmExecutor({ stateDir: join(dir, '.pipe', 'slurm'), pollMinMs: 100, pollMaxMs: 1000, arrayWindowMs: 300, commands: { scontrol } });
    try {
      const jobs = [1, 2, 3, 4, 5].map(() => ({ ...job(gates, 'unused', 'true'), argv: ['true'], group: `wide-${dir}` }));
      // Before: one `--array=0-4`, which sbatch refuses on a cluster whose MaxArraySize is 3 (this one's is larger).
      const results = await Promise.all(jobs.map((j) => ex.run(j, hooks())));
      expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
      expect(ex.stats.sbatchCalls).toBe(3);
      expect(new Set(results.map((r) => r.jobId!.split('_')[0])).size).toBe(3);
    } finally {
      await ex.close();
    }
  });

  it("a workspace whose path holds a '%' keeps SLURM's output file inside it: never expanded by sbatch into another folder", () => {
    const parent = mkdtempSync(join(tmpdir(), 'pipe-pct-'));
    // `%u` is SLURM's pattern for the user name: before, SLURM wrote the job's output into <parent>/ws-<user>/...
    const inside = join(parent, 'ws-%u');
    const expanded = join(parent, `ws-${userInfo().username}`, '.pipe', 'slurm', 'out');
    mkdirSync(inside);
    mkdirSync(expanded, { recursive: true });
    try {
      writeFileSync(join(inside, 'p.yaml'), ['name: percent', 'stages:', '  s:', '    executor: slurm', '    cmd: echo x > out.txt', '    outs: [out.txt]', ''].join('\n'));
      const r = pipe(inside, ['run', 'p.yaml']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(readdirSync(expanded)).toEqual([]);
      expect(readdirSync(join(inside, '.pipe/slurm/out')).length).toBe(1);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  for (const how of ['edited', 'switched to local'] as const) {
    it(`the job a killed pipe left for a stage that is then ${how} is cancelled before the stage runs again: it never writes the outputs late`, async () => {
      const tag = `s${Date.now()}`;
      const ws = workspace();
      const gates = new Gates(join(ws.dir, '.gates'));
      try {
        const yaml = (cmd: string) => ['name: superseded', 'params: {ex: slurm}', 'stages:', `  ${tag}:`, '    executor: ${params.ex}', `    cmd: ${cmd}`, '    outs: [out.txt]', ''].join('\n');
        ws.write('p.yaml', yaml(gates.cmd('old', 'echo OLD > out.txt')));
        const killed = pipeAsync(ws.dir, ['run', 'p.yaml']);
        await until(() => hasRecord(ws.dir), 'the job in the registry');
        const { jobId } = onlyRecord(ws.dir);
        killed.child.kill('SIGKILL');
        await killed.done;
        ws.write('p.yaml', yaml('echo NEW > out.txt'));
        const r = pipe(ws.dir, ['run', 'p.yaml', ...(how === 'edited' ? [] : ['-S', 'ex=local'])]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout + r.stderr).toContain(`cancelling SLURM job ${jobId}`);
        // Before: the old job stayed queued; once its gate opened it overwrote the new result with OLD.
        expect(queuedIds()).not.toContain(jobId);
        gates.openAll();
        expect(ws.read('out.txt')).toBe('NEW\n');
        expect(hasRecord(ws.dir)).toBe(false);
      } finally {
        gates.openAll();
        ws.cleanup();
      }
    });
  }
});
