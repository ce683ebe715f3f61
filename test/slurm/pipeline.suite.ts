// `pipe run` with `executor: slurm` on the real single-node cluster: the whole path from YAML to sbatch to the cache,
// a killed `pipe` that reattaches instead of submitting twice, failures said in plain words, and `uses:` stages
// running the stage-runner inside the batch job.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pipe, pipeAsync, runRecords, workspace, type Ws } from '../engine/helpers.js';
import { hasSlurm, queuedIds, requireSlurm, startCluster } from './cluster.js';
import { Gates, until } from '../support/gate.js';

const run = hasSlurm || requireSlurm ? describe : describe.skip;

/** How many jobs SLURM has accounted under this job name (the completion log keeps every finished job). */
function submissions(name: string): number {
  const log = existsSync('/var/log/slurm/jobcomp.log') ? readFileSync('/var/log/slurm/jobcomp.log', 'utf8') : '';
  return log.split('\n').filter((l) => l.includes(` Name=${name} `)).length;
}


run('pipe run on SLURM', () => {
  let ws: Ws | undefined;
  beforeAll(() => startCluster());
  afterEach(() => ws?.cleanup());

  it('runs foreach stages as SLURM jobs, caches them, and a second run submits nothing', () => {
    const tag = `t${Date.now()}`;
    ws = workspace({
      'in.txt': 'seed\n',
      'p.yaml': [
        'name: on-slurm',
        'settings: {executor: slurm}',
        'stages:',
        `  ${tag}:`,
        '    foreach: [a, b, c]',
        '    do:',
        '      cmd: cat in.txt > out-${item}.txt && echo "${item} on $(hostname) job $SLURM_JOB_ID" >> out-${item}.txt',
        '      deps: [in.txt]',
        '      outs:',
        '        - out-${item}.txt',
        '      resources: {cpus: 1, mem: 64M}',
        '  merge:',
        '    executor: local',
        '    cmd: cat out-a.txt out-b.txt out-c.txt > all.txt',
        '    deps: [out-a.txt, out-b.txt, out-c.txt]',
        '    outs: [all.txt]',
        '',
      ].join('\n'),
    });
    const first = pipe(ws.dir, ['run', 'p.yaml']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const all = ws.read('all.txt');
    for (const item of ['a', 'b', 'c']) expect(all).toMatch(new RegExp(`${item} on \\S+ job \\d+`));
    // The three expansions went out as one job array.
    expect(submissions(`pipe:${tag}`)).toBe(3);
    const arrayIds = new Set(readdirSync(join(ws.dir, '.pipe/slurm/out')).map((f) => f.split('_')[0]));
    expect(arrayIds.size).toBe(1);
    const second = pipe(ws.dir, ['run', 'p.yaml']);
    expect(second.code).toBe(0);
    expect(second.stdout + second.stderr).toMatch(/4 up-to-date/);
    expect(submissions(`pipe:${tag}`)).toBe(3);
  });

  it("a link a stage put at a SLURM stage's log or task script is replaced, never written through: the file outside is untouched", () => {
    const tag = `l${Date.now()}`;
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(outside, 'log.txt'), 'PRECIOUS\n');
    ws = workspace({
      'p.yaml': [
        'name: links',
        'stages:',
        '  plant:',
        '    executor: local',
        `    cmd: mkdir -p .pipe/logs; ln -sf ${join(outside, 'log.txt')} .pipe/logs/${tag}.log; echo a > a.txt`,
        '    outs: [a.txt]',
        `  ${tag}:`,
        '    executor: slurm',
        '    cmd: cat a.txt > b.txt',
        '    deps: [a.txt]',
        '    outs: [b.txt]',
        '',
      ].join('\n'),
    });
    try {
      const r = pipe(ws.dir, ['run', 'p.yaml']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      // Before: pipe truncated the file the link named, and the job's log was appended to it.
      expect(readFileSync(join(outside, 'log.txt'), 'utf8')).toBe('PRECIOUS\n');
      expect(lstatSync(join(ws.dir, '.pipe/logs', `${tag}.log`)).isFile()).toBe(true);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a job record a stage rewrote to name files outside is not reattached to: never read as the exit status or printed as the log; the job is submitted anew', () => {
    const tag = `r${Date.now()}`;
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(outside, 'zero'), '0\n');
    writeFileSync(join(outside, 'secret.txt'), 'SECRET-CONTENT\n');
    ws = workspace({ 'p.yaml': ['name: forged', 'stages:', `  ${tag}:`, '    executor: slurm', '    cmd: echo ran-on-slurm; echo x > out.txt', '    outs: [out.txt]', ''].join('\n') });
    try {
      expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
      const [rec] = runRecords(ws.dir);
      // What a stage's command can write: a record for this stage's key naming a job that is not queued, a "marker"
      // that says 0 and a "log" outside. Before: "collected SLURM job 424242", the secret printed, nothing run.
      const forged = { key: rec!.key, stage: tag, jobId: '424242', marker: join(outside, 'zero'), slurmOutput: join(outside, 'x.out'), logFile: join(outside, 'secret.txt'), submittedAt: new Date().toISOString() };
      writeFileSync(join(ws.dir, '.pipe/slurm/jobs', `${rec!.key}.json`), JSON.stringify(forged));
      const before = submissions(`pipe:${tag}`);
      const r = pipe(ws.dir, ['run', 'p.yaml', '--force', tag]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain('SECRET-CONTENT');
      expect(r.stdout + r.stderr).not.toContain('424242');
      expect(submissions(`pipe:${tag}`)).toBe(before + 1);
      expect(existsSync(join(ws.dir, '.pipe/slurm/jobs', `${rec!.key}.json`))).toBe(false);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('pipe cancel passes scancel job ids only: a record a stage rewrote cannot hand it an option', async () => {
    const { cancelWorkspaceJobs } = await import('../../engine/executors/slurm.js');
    const dir = mkdtempSync(join(tmpdir(), 'pipe-cancel-'));
    try {
      mkdirSync(join(dir, 'slurm/jobs'), { recursive: true });
      const rec = (key: string, jobId: string) => JSON.stringify({ key, stage: 's', jobId, marker: 'm', slurmOutput: 'o', logFile: 'l', submittedAt: '' });
      writeFileSync(join(dir, 'slurm/jobs/a.json'), rec('a', '123_4'));
      writeFileSync(join(dir, 'slurm/jobs/b.json'), rec('b', '--user=root'));
      // A stand-in scancel that writes down the arguments it was given.
      writeFileSync(join(dir, 'scancel'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${join(dir, 'args')}\n`, { mode: 0o755 });
      await cancelWorkspaceJobs(join(dir, 'slurm'), join(dir, 'scancel'));
      expect(readFileSync(join(dir, 'args'), 'utf8')).toBe('123_4\n');
      expect(readdirSync(join(dir, 'slurm/jobs'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says why a SLURM job failed, in plain words, and exits 1', () => {
    const tag = `f${Date.now()}`;
    ws = workspace({
      'p.yaml': ['name: fails', 'stages:', `  ${tag}:`, '    executor: slurm', '    cmd: echo partial > out.txt; exit 4', '    outs: [out.txt]', ''].join('\n'),
    });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/exit code 4/);
    expect(ws.exists('out.txt')).toBe(false); // no half-written output left behind
  });

  it('reattaches to its running job after `pipe run` is killed, instead of submitting it again', async () => {
    const tag = `r${Date.now()}`;
    ws = workspace();
    // The job waits at its gate (test/support/gate.ts) until the second pipe has reattached to it.
    const gates = new Gates(join(ws.dir, '.gates'));
    ws.write('p.yaml', ['name: reattach', 'stages:', `  ${tag}:`, '    executor: slurm', `    cmd: ${gates.cmd('job', 'echo finished > out.txt')}`, '    outs: [out.txt]', ''].join('\n'));
    const killed = pipeAsync(ws.dir, ['run', 'p.yaml']);
    const jobsDir = join(ws.dir, '.pipe/slurm/jobs');
    await until(() => existsSync(jobsDir) && readdirSync(jobsDir).some((f) => f.endsWith('.json')), 'the job in the registry');
    killed.child.kill('SIGKILL');
    await killed.done;
    try {
      const running = pipeAsync(ws.dir, ['run', 'p.yaml']);
      await running.until((out, err) => /reattached to SLURM job/.test(out + err), 60_000);
      gates.open('job');
      const again = await running.done;
      expect(again.code, again.stdout + again.stderr).toBe(0);
    } finally {
      gates.openAll();
    }
    expect(ws.read('out.txt')).toBe('finished\n');
    expect(submissions(`pipe:${tag}`)).toBe(1);
  });

  it('runs a uses: stage through the stage-runner inside the batch job', () => {
    ws = workspace({
      'in.txt': 'payload\n',
      'p.yaml': ['name: kind-on-slurm', 'stages:', '  echo:', '    executor: slurm', '    uses: testing/echo', '    with: {src: in.txt, out: out/echo.txt, message: from-slurm}', ''].join('\n'),
    });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(ws.read('out/echo.txt')).toContain('payload');
    expect(ws.read('out/echo.txt')).toContain('from-slurm');
  });
});

run('pipe run on SLURM: retries and cancel', () => {
  let ws: Ws | undefined;
  beforeAll(() => startCluster());
  afterEach(() => ws?.cleanup());

  it('retries an out-of-memory job with the memory the YAML says, and says so', () => {
    ws = workspace({
      'p.yaml': [
        'name: retry-oom',
        'stages:',
        '  grow:',
        '    executor: slurm',
        '    cmd: python3 -c "import time; a = bytearray(300 * 1024 * 1024); a[::4096] = b\'x\' * len(a[::4096]); time.sleep(4); open(\'out.txt\', \'w\').write(\'ok\')"',
        '    outs: [out.txt]',
        '    resources: {mem: 100M}',
        '    retries: {count: 2, mem_factor: 8}',
        '',
      ].join('\n'),
    });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/attempt 2 of 3 after: out of memory \(limit 100M\); mem 100M → 800M/);
    expect(ws.read('out.txt')).toBe('ok');
  });

  it('pipe cancel: cancels the jobs a killed pipe left running', async () => {
    const tag = `c${Date.now()}`;
    ws = workspace({
      'p.yaml': ['name: cancel', 'stages:', `  ${tag}:`, '    executor: slurm', '    cmd: sleep 300 && touch out.txt', '    outs: [out.txt]', ''].join('\n'),
    });
    const killed = pipeAsync(ws.dir, ['run', 'p.yaml']);
    const jobsDir = join(ws.dir, '.pipe/slurm/jobs');
    await until(() => existsSync(jobsDir) && readdirSync(jobsDir).some((f) => f.endsWith('.json')), 'the job in the registry');
    const record = JSON.parse(readFileSync(join(jobsDir, readdirSync(jobsDir)[0]!), 'utf8')) as { jobId: string };
    killed.child.kill('SIGKILL');
    await killed.done;
    expect(queuedIds()).toContain(record.jobId);
    const c = pipe(ws.dir, ['cancel', 'p.yaml']);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.stdout).toContain(`cancelled SLURM job ${record.jobId} (${tag})`);
    await until(() => !queuedIds().includes(record.jobId), `job ${record.jobId} to leave the queue`);
    expect(pipe(ws.dir, ['cancel', 'p.yaml']).stdout).toMatch(/No SLURM jobs/);
  });
});
