/**
 * Runs a Job as a child process on this machine: `sh -c cmd` for `cmd` stages, `node runner.js spec.json` for `uses`
 * stages. The child leads its own process group, so cancelling reaches everything it started (SIGTERM to the group,
 * SIGKILL after a grace period). Output goes to the job's log file and to hooks.onOutput.
 *
 * Processes are started by engine/executors/spawner.ts: through a small long-lived spawner process where python3 is
 * available (Node's own spawn forks all of pipe and blocks its main thread until the exec), else with
 * child_process.spawn. Not execa: with `-j 2` on 2 cores the parent's CPU per spawn bounds how fast trivial stages go,
 * and execa 9 measured ~2x the parent CPU per spawn of child_process (400 `sh -c cp`: 0.39 s vs 0.82–0.91 s CPU).
 */
import { closeSync, constants, createWriteStream, fstatSync, openSync, realpathSync, statSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import type { Executor, Job, JobHooks, JobResult } from './executor.js';
import { childEnv } from '../env.js';
import { killGroup, startProcess } from './spawner.js';
import { unlinkIfPresentSync } from '../../cache/atomic.js';
import { ownFolder } from '../workspace.js';

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
    // The log (and its folder) is made on the first output: most trivial stages print nothing. The previous
    // attempt's log goes.
    unlinkIfPresentSync(job.logFile);
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
      let group: number | undefined;
      let cancelled: NodeJS.Signals | undefined; // the signal a cancel asked for, sent as soon as there is a group
      let killTimer: NodeJS.Timeout | undefined;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const cancel = (signal: NodeJS.Signals): void => {
        cancelled = signal;
        killGroup(group, signal);
        if (signal === 'SIGTERM' && !killTimer) {
          killTimer = setTimeout(() => cancel('SIGKILL'), this.killGraceMs);
          killTimer.unref();
        }
      };
      const onAbort = (): void => cancel('SIGTERM');
      // A second Ctrl-C: no grace period left.
      const onKill = (): void => cancel('SIGKILL');
      hooks.signal.addEventListener('abort', onAbort, { once: true });
      hooks.kill?.addEventListener('abort', onKill, { once: true });
      if (hooks.kill?.aborted) onKill();
      const settle = (result: Omit<JobResult, 'startedAt' | 'host' | 'endedAt'>): void => {
        hooks.signal.removeEventListener('abort', onAbort);
        hooks.kill?.removeEventListener('abort', onKill);
        if (killTimer) clearTimeout(killTimer);
        if (group) liveGroups.delete(group);
        const r = { ...base, endedAt: Date.now(), ...(group ? { jobId: String(group) } : {}) };
        const finish = (): void => resolve({ ...r, ...result, ...(logError && result.status === 'succeeded' ? { status: 'failed', failure: 'exit', reason: `exit code 0, but ${logNote()}` } : {}) });
        // end(cb) calls back on finish or on error alike (with the error, before the 'error' event).
        if (log && !log.destroyed) {
          log.end((e?: Error | null) => {
            if (e) logError ??= e;
            finish();
          });
        } else finish();
      };
      const logNote = (): string => (logError ? `its log ${job.logFile} could not be written (${logError.message})` : '');
      const withLog = (reason: string): string => (logError ? `${reason}; ${logNote()}` : reason);

      const proc = startProcess(
        { file: file!, args, cwd: job.cwd, env },
        {
          started: (pid) => {
            group = pid;
            liveGroups.add(pid);
            if (cancelled) killGroup(pid, cancelled);
            hooks.onStart?.({ host: this.host });
          },
          startFailed: (e) =>
            cancelled
              ? settle({ status: 'cancelled', exitCode: null, signal: null, failure: 'cancelled', reason: 'cancelled' })
              : settle({ status: 'failed', exitCode: null, signal: null, failure: 'submit', reason: `could not start ${file}: ${e.message}` }),
          // stdout and stderr interleave in the log in arrival order. A log that cannot be written (a full disk)
          // fails the job with that reason; the output still reaches the engine.
          output: (chunk) => {
            if (!logError && !log) log = openLog(job.logFile, (e) => (logError ??= e));
            if (!logError) log?.write(chunk);
            hooks.onOutput?.(chunk.toString('utf8'));
          },
          // The job ends when its process exits, not when the last holder of its output lets go: a background
          // process (`server &`) would otherwise keep pipe waiting as long as it lives. Its group has gone (what
          // was written is still read); anything that left the group (setsid) gets OUTPUT_DRAIN_MS to close it.
          exited: (code, signal) => {
            exit = { code, signal };
            setTimeout(() => proc.dropOutput(), OUTPUT_DRAIN_MS).unref();
          },
          closed: () => {
            const { code, signal } = exit ?? { code: null, signal: null };
            if (cancelled) settle({ status: 'cancelled', exitCode: code, signal, failure: 'cancelled', reason: 'cancelled' });
            else if (code === 0) settle({ status: 'succeeded', exitCode: 0, signal: null, reason: 'exit code 0' });
            else if (signal) settle({ status: 'failed', exitCode: null, signal, failure: 'signal', reason: withLog(`killed by ${signal}`) });
            else settle({ status: 'failed', exitCode: code, signal: null, failure: 'exit', reason: withLog(`exit code ${code}`) });
          },
          lost: (reason) => settle({ status: 'failed', exitCode: null, signal: null, failure: 'lost', reason }),
        },
      );
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

/**
 * A job's log, its folder made first; a failure to make either goes to onError (the job then fails saying so). Never
 * through a link: a job that put one at its own log path (to a file outside the workspace) gets no write from pipe.
 */
function openLog(file: string, onError: (e: Error) => void): WriteStream | undefined {
  let fd: number;
  try {
    // The job itself may have replaced the logs folder with a link: refused (ownFolder), never written through.
    ownFolder(dirname(file));
    // Non-blocking: opened on the job's first output, by when the job may have put a FIFO at its log's name, whose
    // open for writing would wait for a reader forever (pipe's only thread with it).
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o666);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new Error('it is not a regular file: the job put something else at its name');
    }
  } catch (e) {
    onError((e as NodeJS.ErrnoException).code === 'ENXIO' ? new Error('it is a FIFO the job put at its name') : (e as Error));
    return undefined;
  }
  const log = createWriteStream(file, { fd });
  log.on('error', onError);
  return log;
}
