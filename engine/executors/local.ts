/**
 * Runs a Job as a child process on this machine: `sh -c cmd` for `cmd` stages, `node runner.js spec.json` for `uses`
 * stages. The child leads its own process group, so cancelling reaches everything it started (SIGTERM to the group,
 * SIGKILL after a grace period). Output goes to the job's log file and to hooks.onOutput.
 *
 * Spawned with node:child_process directly rather than execa: with `-j 2` on 2 cores, the parent's CPU per spawn
 * bounds how fast trivial stages go, and execa 9 measured ~2x the parent CPU per spawn here (400 `sh -c cp`:
 * 0.39 s vs 0.82–0.91 s CPU, 3.1–4.3 s vs 5.4–6.4 s wall). Nothing of execa's is needed: no buffering, no
 * promise-chained pipes, just a group kill and an exit code.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, realpathSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import type { Executor, Job, JobHooks, JobResult } from './executor.js';
import { childEnv } from '../env.js';

export interface LocalExecutorOptions {
  /** How long a cancelled job gets between SIGTERM and SIGKILL (ms). */
  killGraceMs?: number;
}

export class LocalExecutor implements Executor {
  readonly name = 'local' as const;
  private readonly killGraceMs: number;
  private readonly host = hostname();

  constructor(opts: LocalExecutorOptions = {}) {
    this.killGraceMs = opts.killGraceMs ?? Number(process.env.PIPE_KILL_GRACE_MS ?? 5000);
  }

  async run(job: Job, hooks: JobHooks): Promise<JobResult> {
    const startedAt = Date.now();
    const base = { startedAt, host: this.host };
    if (hooks.signal.aborted) return { ...base, endedAt: startedAt, status: 'cancelled', exitCode: null, signal: null, failure: 'cancelled', reason: 'cancelled' };
    mkdirSync(dirname(job.logFile), { recursive: true });
    // The log is opened on the first output (most trivial stages print nothing); the previous attempt's log goes.
    rmSync(job.logFile, { force: true });
    const env = Object.assign(Object.create(null) as Record<string, string>, this.ambientFor(job.passEnv), job.env);
    if (job.direct) {
      // No shell: the program gets the PWD a shell would have exported. One it cannot start (not found, not
      // executable, a script without #!) runs through the shell after all, which says why as it always has.
      const direct = await this.spawnJob(job, job.direct, { ...env, PWD: shellPwd(job.cwd, env.PWD) }, hooks, base);
      if (direct.failure !== 'submit' || hooks.signal.aborted) return direct;
    }
    return this.spawnJob(job, job.argv, env, hooks, base);
  }

  /**
   * The ambient part of a child's environment (engine/env.ts childEnv), read from process.env once per pass-through
   * list: process.env is slow to enumerate, and pipe never changes it while jobs run.
   */
  private ambientFor(pass: readonly string[] | undefined): Readonly<Record<string, string>> {
    const key = pass === undefined ? '' : `\0${pass.join('\0')}`;
    let env = this.ambient.get(key);
    if (env === undefined) this.ambient.set(key, (env = childEnv(process.env, {}, pass)));
    return env;
  }
  private readonly ambient = new Map<string, Record<string, string>>();

  private spawnJob(job: Job, argv: string[], env: Record<string, string>, hooks: JobHooks, base: { startedAt: number; host: string }): Promise<JobResult> {
    let log: WriteStream | undefined;
    let logError: Error | undefined;
    const [file, ...args] = argv;

    return new Promise<JobResult>((resolve) => {
      let spawnError: Error | undefined;
      let wasCancelled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const child = spawn(file!, args, {
        cwd: job.cwd,
        env,
        detached: true, // own process group: a group kill reaches grandchildren (sh → python → workers)
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const group = child.pid;
      if (group) liveGroups.add(group);
      const onAbort = (): void => {
        wasCancelled = true;
        killGroup(group, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(group, 'SIGKILL'), this.killGraceMs);
        killTimer.unref();
      };
      // A second Ctrl-C: no grace period left.
      const onKill = (): void => {
        wasCancelled = true;
        killGroup(group, 'SIGKILL');
      };
      hooks.signal.addEventListener('abort', onAbort, { once: true });
      hooks.kill?.addEventListener('abort', onKill, { once: true });
      if (hooks.kill?.aborted) onKill();
      if (group) hooks.onStart?.({ host: this.host });
      // stdout and stderr interleave in the log in arrival order. A log that cannot be written (a full disk) fails
      // the job with that reason; the output still reaches the engine.
      const onData = (chunk: Buffer): void => {
        if (!logError) {
          if (!log) {
            log = createWriteStream(job.logFile);
            log.on('error', (e) => (logError ??= e));
          }
          log.write(chunk);
        }
        hooks.onOutput?.(chunk.toString('utf8'));
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.stdout.on('error', (e) => (logError ??= e));
      child.stderr.on('error', (e) => (logError ??= e));
      child.on('error', (e) => (spawnError = e));
      // The job ends when its process exits, not when the last holder of its stdout lets go: a background process
      // (`server &`) would otherwise keep pipe waiting as long as it lives. Its group goes at once (what was
      // written to the pipes is still read); anything that left the group (setsid) gets OUTPUT_DRAIN_MS to close
      // them, then they are closed from this side.
      child.on('exit', () => {
        killGroup(group, 'SIGKILL');
        setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, OUTPUT_DRAIN_MS).unref();
      });
      child.on('close', (code, signal) => {
        hooks.signal.removeEventListener('abort', onAbort);
        hooks.kill?.removeEventListener('abort', onKill);
        if (killTimer) clearTimeout(killTimer);
        // Nothing of a job outlives it: whatever it left running in its group (a background process, a worker a
        // cancelled stage did not stop) is killed.
        killGroup(group, 'SIGKILL');
        if (group) liveGroups.delete(group);
        const done = (): void => {
          const r = { ...base, endedAt: Date.now(), ...(group ? { jobId: String(group) } : {}) };
          const logNote = logError ? `its log ${job.logFile} could not be written (${logError.message})` : '';
          if (wasCancelled) resolve({ ...r, status: 'cancelled', exitCode: code, signal, failure: 'cancelled', reason: 'cancelled' });
          else if (spawnError && (group === undefined || (code === null && !signal))) {
            resolve({ ...r, status: 'failed', exitCode: null, signal: null, failure: 'submit', reason: `could not start ${file}: ${spawnError.message}` });
          } else if (code === 0 && logError) resolve({ ...r, status: 'failed', exitCode: 0, signal: null, failure: 'exit', reason: `exit code 0, but ${logNote}` });
          else if (code === 0) resolve({ ...r, status: 'succeeded', exitCode: 0, signal: null, reason: 'exit code 0' });
          else if (signal) resolve({ ...r, status: 'failed', exitCode: null, signal, failure: 'signal', reason: `killed by ${signal}${logNote ? `; ${logNote}` : ''}` });
          else resolve({ ...r, status: 'failed', exitCode: code, signal: null, failure: 'exit', reason: `exit code ${code}${logNote ? `; ${logNote}` : ''}` });
        };
        // end(cb) calls back on finish or on error alike (with the error, before the 'error' event).
        if (log && !log.destroyed) {
          log.end((e?: Error | null) => {
            if (e) logError ??= e;
            done();
          });
        } else done();
      });
    });
  }

  async close(): Promise<void> {}
}

/** How long the pipes of an exited job may stay open (held by a process outside its group) before pipe closes them. */
const OUTPUT_DRAIN_MS = 2000;

/**
 * The PWD `sh` exports to what it runs (dash, Debian's sh): the inherited PWD when it names the working directory,
 * else the directory's physical path. Memoised per (cwd, inherited PWD): every job of a run shares one.
 */
function shellPwd(cwd: string, inherited: string | undefined): string {
  const memoKey = `${cwd}\0${inherited ?? ''}`;
  let pwd = pwds.get(memoKey);
  if (pwd === undefined) {
    pwd = realpathSync.native(cwd);
    if (inherited?.startsWith('/')) {
      const a = statSync(inherited, { throwIfNoEntry: false });
      const b = statSync(cwd);
      if (a && a.dev === b.dev && a.ino === b.ino) pwd = inherited;
    }
    pwds.set(memoKey, pwd);
  }
  return pwd;
}
const pwds = new Map<string, string>();

/**
 * Process groups of jobs still running. If pipe itself ends without having stopped them (a bug, a third Ctrl-C), the
 * 'exit' hook kills them: no stage outlives pipe.
 */
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const g of liveGroups) killGroup(g, 'SIGKILL');
});

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
