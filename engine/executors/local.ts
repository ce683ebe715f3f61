/**
 * Runs a Job as a child process on this machine (execa): `sh -c cmd` for `cmd` stages, `node runner.js spec.json`
 * for `uses` stages. The child leads its own process group, so cancelling reaches everything it started
 * (SIGTERM to the group, SIGKILL after a grace period). Output goes to the job's log file and to hooks.onOutput.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import type { Executor, Job, JobHooks, JobResult } from './executor.js';

export interface LocalExecutorOptions {
  /** How long a cancelled job gets between SIGTERM and SIGKILL (ms). */
  killGraceMs?: number;
}

type Execa = typeof import('execa').execa;
let execaFn: Promise<Execa> | undefined;
/** Loaded on first use: no-op runs never pay for it. */
function loadExeca(): Promise<Execa> {
  return (execaFn ??= import('execa').then((m) => m.execa));
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
    if (hooks.signal.aborted) return cancelled(startedAt, this.host);
    const execa = await loadExeca();
    mkdirSync(dirname(job.logFile), { recursive: true });
    const log = createWriteStream(job.logFile);
    const [file, ...args] = job.argv;
    const child = execa(file!, args, {
      cwd: job.cwd,
      env: job.env,
      extendEnv: true,
      detached: true, // own process group: a group kill reaches grandchildren (sh → python → workers)
      cleanup: false,
      stdin: 'ignore',
      buffer: false,
      reject: false,
      all: true,
      stripFinalNewline: false,
    });
    hooks.onStart?.({ host: this.host });

    let killTimer: NodeJS.Timeout | undefined;
    let wasCancelled = false;
    const onAbort = (): void => {
      wasCancelled = true;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), this.killGraceMs);
      killTimer.unref();
    };
    hooks.signal.addEventListener('abort', onAbort, { once: true });

    child.all?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      hooks.onOutput?.(chunk.toString('utf8'));
    });

    let result: { exitCode?: number; signal?: string; failed: boolean; code?: string; message: string };
    try {
      result = (await child) as unknown as typeof result;
    } catch (e) {
      result = { failed: true, message: e instanceof Error ? e.message : String(e) };
    }
    hooks.signal.removeEventListener('abort', onAbort);
    if (killTimer) clearTimeout(killTimer);
    if (wasCancelled) killGroup(child.pid, 'SIGKILL'); // nothing of a cancelled job may outlive it
    await new Promise<void>((r) => log.end(r));
    const endedAt = Date.now();
    const base = { startedAt, endedAt, host: this.host, ...(child.pid ? { jobId: String(child.pid) } : {}) };

    if (wasCancelled) {
      return { ...base, status: 'cancelled', exitCode: result.exitCode ?? null, signal: result.signal ?? null, failure: 'cancelled', reason: 'cancelled' };
    }
    if (result.exitCode === 0) return { ...base, status: 'succeeded', exitCode: 0, signal: null, reason: 'exit code 0' };
    if (result.signal) {
      return { ...base, status: 'failed', exitCode: null, signal: result.signal, failure: 'signal', reason: `killed by ${result.signal}` };
    }
    if (result.exitCode === undefined) {
      return { ...base, status: 'failed', exitCode: null, signal: null, failure: 'submit', reason: `could not start ${file}: ${firstLine(result.message)}` };
    }
    return { ...base, status: 'failed', exitCode: result.exitCode, signal: null, failure: 'exit', reason: `exit code ${result.exitCode}` };
  }

  async close(): Promise<void> {}
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function cancelled(at: number, host: string): JobResult {
  return { status: 'cancelled', exitCode: null, signal: null, failure: 'cancelled', reason: 'cancelled', startedAt: at, endedAt: at, host };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
