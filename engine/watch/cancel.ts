/**
 * Per-stage cancellation without touching the engine: the engine runs every job through the executor the chooser
 * returns, so wrapping the chooser lets watch mode cancel one stage (its job gets an AbortSignal of its own, tied to
 * the cycle's) while the other stages of the cycle go on. A cancelled job resolves as `cancelled`; the engine then
 * removes its outputs and records nothing, exactly as for Ctrl-C.
 */
import type { Executor, Job, JobHooks, JobResult } from '../executors/executor.js';
import type { StageSpec } from '../model.js';

export class StageCanceller {
  private readonly running = new Map<string, AbortController>();
  /** Stages made stale before their job started: refused when it starts (they re-run in the next cycle). */
  private readonly stale = new Set<string>();
  private readonly wrapped = new WeakMap<Executor, Executor>();

  constructor(private readonly choose: (s: StageSpec) => Executor) {}

  /** The chooser to hand to the engine. */
  readonly executorFor = (s: StageSpec): Executor => {
    const inner = this.choose(s);
    let w = this.wrapped.get(inner);
    if (!w) {
      w = this.wrap(inner);
      this.wrapped.set(inner, w);
    }
    return w;
  };

  /** Cancel a running stage now, or refuse its job if it has not started yet. True if it was running. */
  cancel(stage: string): boolean {
    const c = this.running.get(stage);
    if (c) {
      c.abort();
      return true;
    }
    this.stale.add(stage);
    return false;
  }

  isRunning(stage: string): boolean {
    return this.running.has(stage);
  }

  private wrap(inner: Executor): Executor {
    return {
      name: inner.name,
      run: async (job: Job, hooks: JobHooks): Promise<JobResult> => {
        if (this.stale.delete(job.stage)) {
          const now = Date.now();
          return { status: 'cancelled', exitCode: null, signal: null, failure: 'cancelled', reason: 'cancelled: a change made it stale before it started', startedAt: now, endedAt: now };
        }
        const mine = new AbortController();
        this.running.set(job.stage, mine);
        try {
          return await inner.run(job, { ...hooks, signal: AbortSignal.any([hooks.signal, mine.signal]) });
        } finally {
          if (this.running.get(job.stage) === mine) this.running.delete(job.stage);
        }
      },
      close: () => inner.close(),
    };
  }
}
