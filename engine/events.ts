/**
 * Everything the engine has to say, as typed values. The engine never prints: renderers (engine/ui/) subscribe to
 * these events and decide how they look (live TTY, plain CI lines, JSON lines, the watch screen).
 */

import type { ChangeField } from './why.js';

/** What happened to one stage in one run. */
export type StageStatus = 'ran' | 'up-to-date' | 'restored' | 'failed' | 'cancelled' | 'skipped';

/** The plan's verdict for one stage (see engine/plan.ts). */
export type PlanAction = 'up-to-date' | 'restore' | 'run' | 'blocked';

/**
 * Reasons are codes plus words, as wireit's `Failure` and `NotFreshReason`: tools and renderers switch on the code
 * (a closed union, checked by the compiler), people read the words beside it (which name the param, the file, the
 * hash). `--json` carries both.
 */
export interface Reason<C extends string = PlanCode> {
  code: C;
  text: string;
}

/** A key field that differs from the nearest earlier run of the stage (engine/why.ts): `param-changed`, `dep-changed`… */
export type ChangeCode = `${ChangeField}-changed`;

/** Why a stage runs, or is restored from the cache (plan events, `pipe status`, `pipe why`). */
export type PlanCode =
  | ChangeCode
  /** `--force`. */
  | 'forced'
  /** `pipe verify` re-runs it to compare with its recorded run. */
  | 'verify'
  | 'always-run'
  /** No run of this stage was ever recorded. */
  | 'never-ran'
  /** An earlier run had exactly these inputs, but its outputs are gone from the cache. */
  | 'outputs-evicted'
  | 'output-missing'
  /** An output differs from what the last run left. */
  | 'output-modified'
  /** A recorded run with these inputs cannot provide the outputs (`cache: false`, not stored, object gone). */
  | 'not-restorable'
  /** Restore: an earlier run had these inputs. */
  | 'same-inputs'
  /** Restore: the lock file names other output hashes for this key (said, not followed). */
  | 'lock-disagrees'
  /** The restore failed (a damaged or vanished object): the stage runs instead. */
  | 'restore-failed'
  /** Plan only: an upstream stage would run first, so the deps are not known yet. */
  | 'upstream-will-run'
  /** An out resolves outside the workspace or onto pipe's own files (engine/out-policy.ts). */
  | 'out-refused'
  /** A link inside a dep folder leads into an out of a stage that is not upstream (engine/run/dep-links.ts). */
  | 'dep-through-link'
  /** Plan only: a dep cannot be hashed as it is on disk (a broken link, a link cycle, a FIFO); the run would fail. */
  | 'dep-unreadable';

/** How a job failed, from its executor's `JobResult.failure` (engine/executors/executor.ts). */
export type JobFailureCode =
  | 'exit-non-zero'
  | 'killed'
  | 'out-of-memory'
  | 'time-limit'
  | 'node-failure'
  | 'cancelled'
  | 'start-failed'
  | 'job-lost';

/** Why a stage ended as it did (stage-end events). A stage that ran or was restored carries its plan's first code. */
export type EndCode =
  | PlanCode
  | JobFailureCode
  | 'up-to-date'
  /** Not started: an upstream stage failed. */
  | 'upstream-failed'
  /** Not started: an upstream stage was skipped or cancelled. */
  | 'upstream-incomplete'
  /** Not started: another stage failed and the run stops (no `--keep-going`). */
  | 'stopped'
  /** Not started: Ctrl-C, or watch mode cancelled the cycle. */
  | 'interrupted'
  /** A dep does not exist. */
  | 'dep-missing'
  /** The stage asks for GPUs this machine does not have. */
  | 'gpus-unavailable'
  /** A dep changed while the stage ran: its outputs were discarded. */
  | 'dep-changed-mid-run'
  /** The stage ended without writing a declared out. */
  | 'out-not-written'
  /** An output could not be put in the cache (a full disk, a read-only store). */
  | 'store-failed'
  /** Anything unforeseen (a bug, a file system error): the words say what. */
  | 'error';

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
  /** The code of each reason, in the same order. */
  codes: PlanCode[];
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
  /** Why it ran / was skipped / failed: the code, and in plain words. */
  code: EndCode;
  reason: string;
  durationMs: number;
  key?: string;
  logFile?: string;
  /** The end of the stage's log when it did not succeed. */
  logTail?: string;
  at: number;
}

/** What a warning is about (the run goes on either way). */
export type WarningCode =
  /** A restore failed; the stage runs instead. */
  | 'restore-failed'
  /** A stage asks for more cpus or memory than the machine has; it gets what there is. */
  | 'resources-reduced'
  /** Same inputs, other output bytes than an earlier run (plan.ts disagreementText). */
  | 'nondeterministic'
  /** The index, hash memo or lock file could not be saved at the end of a run. */
  | 'not-saved'
  /** Watch mode: a watcher could not watch something (its words say what). */
  | 'watcher'
  /** Watch mode: a cycle ended with an error; the next change starts another. */
  | 'cycle-failed'
  /** Watch mode paused: cycle after cycle was started by files the previous one wrote. */
  | 'watch-paused'
  /** Another pipe holds the workspace lock; waiting for it. */
  | 'lock-wait'
  /** Watch mode: the workspace lock is a file pipe cannot read (no process will release it); this cycle ran nothing. */
  | 'lock-unreadable'
  /** Watch mode: the pipeline file cannot be read (missing, unreadable); waiting for it. */
  | 'pipeline-unreadable';

export interface WarningEvent {
  type: 'warning';
  stage?: string;
  code: WarningCode;
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

/** Why `pipe verify` could not verify a stage (or the re-run's end code when it failed). */
export type VerifyCode =
  | EndCode
  /** A command or `with:` value names the workspace's absolute path: re-run elsewhere it would write the workspace. */
  | 'names-workspace'
  /** No recorded run has the stage's current inputs (the workspace is not up to date for it). */
  | 'no-record'
  /**
   * Reproduced, but a `cache: false` output could not be compared: no record holds its content, and the workspace's
   * last run of the stage (whose index holds its hash) had other inputs. `reason` names the outputs.
   */
  | 'not-compared';

/** `pipe verify`: how one stage's re-run in the scratch copy compares with its recorded run. */
export interface VerifyStageEvent {
  type: 'verify-stage';
  stage: string;
  /**
   * `reproduced`: every recorded output came out byte-identical (a `cache: false` output is compared with the hash
   * the workspace's last run of the same inputs left; code `not-compared` names those it could not be);
   * `differs`: some did not (named in `outputs`);
   * `failed`: the re-run failed (`reason`); `unverified`: it could not be re-run (`reason`: no record, …).
   */
  verdict: 'reproduced' | 'differs' | 'failed' | 'unverified';
  code?: VerifyCode;
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

/** The plan event of a decision (the words and the codes of its reasons, side by side). */
export function planEvent(stage: string, action: PlanAction, reasons: readonly Reason[], key?: string): EventInput {
  return { type: 'plan', stage, action, reasons: reasons.map((r) => r.text), codes: reasons.map((r) => r.code), ...(key ? { key } : {}) };
}

export function emptyCounts(): RunCounts {
  return { ran: 0, 'up-to-date': 0, restored: 0, failed: 0, cancelled: 0, skipped: 0 };
}
