/**
 * Everything the engine has to say, as typed values. The engine never prints: renderers (engine/ui/) subscribe to
 * these events and decide how they look (live TTY, plain CI lines, JSON lines, the watch screen).
 */

/** What happened to one stage in one run. */
export type StageStatus = 'ran' | 'up-to-date' | 'restored' | 'failed' | 'cancelled' | 'skipped';

/** The plan's verdict for one stage (see engine/plan.ts). */
export type PlanAction = 'up-to-date' | 'restore' | 'run' | 'blocked';

export interface RunStartEvent {
  type: 'run-start';
  pipeline: string;
  /** Stages considered (targets and their upstream), in topological order. */
  stages: string[];
  jobs: number;
  dryRun: boolean;
  at: number;
}

export interface PlanEvent {
  type: 'plan';
  stage: string;
  action: PlanAction;
  /** Plain-words reasons ("param lr: 0.001 → 0.01"); empty when up to date. */
  reasons: string[];
  key?: string;
  at: number;
}

export interface StageStartEvent {
  type: 'stage-start';
  stage: string;
  executor: string;
  /** Granted GPU ids (local) and cpus. */
  gpuIds: string[];
  cpus: number;
  logFile: string;
  at: number;
}

export interface StageProgressEvent {
  type: 'stage-progress';
  stage: string;
  done?: number;
  total?: number;
  unit?: string;
  message?: string;
  at: number;
}

export interface StageLogEvent {
  type: 'stage-log';
  stage: string;
  /** One line of the stage's output (stdout/stderr or ctx.log). */
  line: string;
  at: number;
}

export interface StageStateEvent {
  type: 'stage-state';
  stage: string;
  /** Executor state changes worth showing (queued, reattached...). */
  state: string;
  at: number;
}

export interface StageEndEvent {
  type: 'stage-end';
  stage: string;
  status: StageStatus;
  /** Why it ran / was skipped / failed, in plain words. */
  reason: string;
  durationMs: number;
  key?: string;
  logFile?: string;
  /** The end of the stage's log when it did not succeed. */
  logTail?: string;
  at: number;
}

export interface WarningEvent {
  type: 'warning';
  stage?: string;
  message: string;
  at: number;
}

export interface DiagnosticsEvent {
  type: 'diagnostics';
  /** Each diagnostic rendered by the DSL's formatDiagnostic (file:line:col, the YAML line, a marker). */
  formatted: string[];
  /** The raw diagnostics, for `--json`. */
  diagnostics: unknown[];
  at: number;
}

export type RunCounts = Record<StageStatus, number>;

export interface RunEndEvent {
  type: 'run-end';
  ok: boolean;
  interrupted: boolean;
  counts: RunCounts;
  durationMs: number;
  at: number;
}

/** `pipe verify`: how one stage's re-run in the scratch copy compares with its recorded run. */
export interface VerifyStageEvent {
  type: 'verify-stage';
  stage: string;
  /**
   * `reproduced`: every recorded output came out byte-identical; `differs`: some did not (named in `outputs`);
   * `failed`: the re-run failed (`reason`); `unverified`: it could not be re-run (`reason`: no record, …).
   */
  verdict: 'reproduced' | 'differs' | 'failed' | 'unverified';
  reason?: string;
  /** Outputs that differ: the recorded and the new hash; for a directory, the files that differ in it. */
  outputs?: Array<{ path: string; recorded: string; now: string | null; files?: { changed: string[]; added: string[]; removed: string[] } }>;
  at: number;
}

export type PipeEvent =
  | VerifyStageEvent
  | RunStartEvent
  | PlanEvent
  | StageStartEvent
  | StageProgressEvent
  | StageLogEvent
  | StageStateEvent
  | StageEndEvent
  | WarningEvent
  | DiagnosticsEvent
  | RunEndEvent;

/** Distributive Omit, so callers can emit without a timestamp. */
export type EventInput = PipeEvent extends infer E ? (E extends PipeEvent ? Omit<E, 'at'> : never) : never;

export type Emit = (event: EventInput) => void;

/** A tiny fan-out bus: renderers subscribe, the engine emits. */
export class EventBus {
  private readonly listeners: Array<(e: PipeEvent) => void> = [];
  subscribe(listener: (e: PipeEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
  readonly emit: Emit = (event) => {
    const full = { ...event, at: Date.now() } as PipeEvent;
    for (const l of this.listeners) l(full);
  };
}

export function emptyCounts(): RunCounts {
  return { ran: 0, 'up-to-date': 0, restored: 0, failed: 0, cancelled: 0, skipped: 0 };
}
