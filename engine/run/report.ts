/**
 * Report: the run's ledger. Every stage ends exactly once; its end is a `stage-end` event, and the run's end is the
 * counts of those ends (`run-end`). Knows nothing of scheduling, the cache or processes.
 */
import { emptyCounts, type Emit, type EndCode, type Reason, type RunCounts, type StageEndEvent } from '../events.js';
import type { RunRecord } from '../../cache/types.js';

/** How a stage ended: its stage-end event's fields, and the record it ran or was restored from. */
export type StageOutcome = Pick<StageEndEvent, 'stage' | 'status' | 'code' | 'reason' | 'durationMs' | 'key'> & { record?: RunRecord };

export interface RunSummary {
  ok: boolean;
  interrupted: boolean;
  counts: RunCounts;
  outcomes: Map<string, StageOutcome>;
}

/** Extra fields of a stage-end event (the log of a stage that ran). */
export type EndDetails = Pick<StageEndEvent, 'logFile' | 'logTail'>;

/** An expected failure with its end code (an out the policy refuses…); any other error ends a stage as `error`. */
export class ReasonError extends Error {
  constructor(readonly code: EndCode, message: string) {
    super(message);
    this.name = 'ReasonError';
  }
}

/** The end code and words of an error a stage ended with. */
export function errorReason(e: unknown): Reason<EndCode> {
  return { code: e instanceof ReasonError ? e.code : 'error', text: e instanceof Error ? e.message : String(e) };
}

/** The words of several reasons, as one line. */
export function reasonText(reasons: readonly Reason<string>[]): string {
  return reasons.map((r) => r.text).join('; ');
}

export class RunReport {
  readonly outcomes = new Map<string, StageOutcome>();
  private readonly started = Date.now();

  constructor(private readonly emit: Emit) {}

  /**
   * Record a stage's outcome and emit its `stage-end`. Returns false (and emits nothing) when the stage already
   * ended: an error after a stage ended must not end it twice.
   */
  end(o: StageOutcome, details: EndDetails = {}): boolean {
    if (this.outcomes.has(o.stage)) return false;
    this.outcomes.set(o.stage, o);
    this.emit({
      type: 'stage-end',
      stage: o.stage,
      status: o.status,
      code: o.code,
      reason: o.reason,
      durationMs: o.durationMs,
      ...(o.key ? { key: o.key } : {}),
      ...details,
    });
    return true;
  }

  get(stage: string): StageOutcome | undefined {
    return this.outcomes.get(stage);
  }

  counts(): RunCounts {
    const counts = emptyCounts();
    for (const o of this.outcomes.values()) counts[o.status] += 1;
    return counts;
  }

  /** The run's summary, announced as `run-end`: ok when nothing failed, was cancelled or skipped (and `saved`). */
  close(interrupted: boolean, saved = true): RunSummary {
    const counts = this.counts();
    const ok = saved && counts.failed === 0 && counts.cancelled === 0 && counts.skipped === 0;
    this.emit({ type: 'run-end', ok, interrupted, counts, durationMs: Date.now() - this.started });
    return { ok, interrupted, counts, outcomes: this.outcomes };
  }
}
