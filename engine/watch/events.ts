/**
 * What watch mode says on top of the engine's own events (engine/events.ts): when it is ready, what changed, when a
 * cycle starts and ends, which in-flight stages a change cancelled, which manual stages wait for a key press.
 * Renderers (engine/ui/watch-screen.ts) draw both kinds; `--json` prints both as JSON lines.
 */
import type { PipeEvent, PlanCode, RunCounts } from '../events.js';

/** Why a cycle started. */
export type CycleTrigger = 'start' | 'change' | 'refresh' | 'manual' | 'follow-up';

export interface WatchReadyEvent {
  type: 'watch-ready';
  pipeline: string;
  /** Paths watched (workspace-relative where possible): files, and directory trees (ending in `/`). */
  files: string[];
  trees: string[];
  /** Deps that do not exist yet: their nearest existing folder is watched until they appear. */
  missing: string[];
  /** Directories under watch (one fs.watch each) inside the trees. */
  watchedDirs: number;
  /** Time to set the watchers up. */
  startupMs: number;
  at: number;
}

export interface WatchChangeEvent {
  type: 'watch-change';
  /** Changed paths since the last cycle (workspace-relative), coalesced over the debounce window. */
  files: string[];
  at: number;
}

export interface CycleStartEvent {
  type: 'cycle-start';
  cycle: number;
  /** start: the first; change: saved files; refresh: the `r` key; manual: the `a` key; follow-up: held stages freed. */
  trigger: CycleTrigger;
  /** The changes that started it (workspace-relative). */
  files: string[];
  /** Stages this cycle considers (selected minus held manual stages), topological order. */
  stages: string[];
  at: number;
}

export interface CycleEndEvent {
  type: 'cycle-end';
  cycle: number;
  ok: boolean;
  counts: RunCounts;
  /** Stages cancelled because a change made them stale mid-run (they run again in the next cycle). */
  restarted: string[];
  durationMs: number;
  at: number;
}

export interface WatchCancelEvent {
  type: 'watch-cancel';
  cycle: number;
  /** In-flight (or queued) stages the change made stale, cancelled now and restarted in the next cycle. */
  stages: string[];
  files: string[];
  at: number;
}

/** A stale manual stage: the words of its plan's reasons and their codes, side by side (as in a plan event). */
export interface PendingStage {
  stage: string;
  reasons: string[];
  codes: PlanCode[];
}

export interface ManualPendingEvent {
  type: 'manual-pending';
  /** Manual stages (GPU, SLURM, `watch: manual`) that are stale, with why (words and codes); empty when none waits. */
  stages: PendingStage[];
  /** Stages downstream of them, held back until they run. */
  held: string[];
  at: number;
}

export interface WatchInvalidEvent {
  type: 'watch-invalid';
  /** The pipeline did not load; the formatted diagnostics were sent as a `diagnostics` event. Still watching. */
  problems: number;
  at: number;
}

export interface WatchStopEvent {
  type: 'watch-stop';
  /** `quit` (q key), `interrupt` (Ctrl-C, SIGTERM). */
  reason: 'quit' | 'interrupt';
  at: number;
}

export type WatchEvent =
  | WatchReadyEvent
  | WatchChangeEvent
  | CycleStartEvent
  | CycleEndEvent
  | WatchCancelEvent
  | ManualPendingEvent
  | WatchInvalidEvent
  | WatchStopEvent;

/** Engine events carry the cycle they belong to. */
export type WatchOutputEvent = WatchEvent | (PipeEvent & { cycle?: number });

type Input<E> = E extends { at: number } ? Omit<E, 'at'> : never;
export type WatchEventInput = Input<WatchEvent>;

export type WatchSink = (e: WatchOutputEvent) => void;
