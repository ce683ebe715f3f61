/**
 * Watch mode: keep the selected stages up to date while files are edited.
 *
 * One cycle = reload the pipeline (re-resolve the DAG), re-sync the watchers, hold back stale manual stages (GPU,
 * SLURM, `watch: manual`) and what depends on them, then one `runStages` over the rest — the planner decides what
 * actually runs, so cache hits stay hits. Cycles never overlap (one writer per workspace); changes that arrive during a
 * cycle are coalesced into the next one, and stages of the running cycle that they make stale are cancelled at once
 * (engine/watch/cancel.ts) so that they restart promptly with the new inputs instead of finishing into the cache.
 *
 * A pipeline that does not load (a YAML error mid-edit) is reported as diagnostics; the watchers stay, and the next
 * save that fixes it resumes the cycles.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { unreadableLockText, workspaceLock } from '../cache/lock.js';
import { emptyCounts, type EventInput, type RunCounts } from './events.js';
import * as kinds from './kinds.js';
import type { Pipeline, StageSpec } from './model.js';
import { planStages, runStages } from './run.js';
import { openWorkspace, pipeDirOf, type Workspace } from './workspace.js';
import { successorsOf, upstreamOf } from './graph.js';
import { DiagnosticsError, loadAll, selectStages, type Loaded } from './commands/load.js';
import { UsageError } from './commands/errors.js';
import { releaseLockOnExit } from './commands/interrupts.js';
import { executorChooser, machineFor } from './commands/session.js';
import { pipeVersion } from './commands/version.js';
import { StageCanceller } from './watch/cancel.js';
import { Coalescer } from './watch/coalesce.js';
import type { CycleTrigger, PendingStage, WatchEventInput, WatchSink } from './watch/events.js';
import { ignoredPaths, relOf, touchedStages, trackableTrees, watchTargets, withDownstream, within, type WatchTargets } from './watch/paths.js';
import { WatchSet } from './watch/watchers.js';

export interface WatchOptions {
  file: string;
  targets: string[];
  /** Run manual stages (GPU, SLURM, `watch: manual`) automatically too. */
  all?: boolean;
  set?: string[];
  paramsFile?: string[];
  jobs?: string;
  gpus?: string;
  mem?: string;
  /** Debounce window: a burst of events quiet for this long is one change (default 60 ms). */
  quietMs?: number;
  emit: WatchSink;
}

/** The cycle in flight: what the change handler needs to cancel its stale stages. */
interface Current {
  cycle: number;
  loaded: Loaded;
  runSet: ReadonlySet<string>;
  finished: Set<string>;
  canceller: StageCanceller;
  restarted: Set<string>;
}

/** Cycles in a row started by files written during the previous cycle before watch mode suspects a loop. */
const LOOP_LIMIT = 5;

const PRIORITY: Record<CycleTrigger, number> = { 'follow-up': 0, start: 1, refresh: 2, change: 3, manual: 4 };

export class WatchSession {
  private readonly file: string;
  private readonly watchers: WatchSet;
  private readonly coalescer: Coalescer;
  private readonly cycleAbort = new AbortController();
  /** Aborted by a second interrupt: running stages are killed at once (no grace period), then cleaned up. */
  private readonly killAbort = new AbortController();
  private loaded: Loaded | undefined;
  private selected: Set<string> = new Set();
  private ws: Workspace | undefined;
  private wsFor = '';
  private gpuIds: string[] | undefined;
  private cycleNo = 0;
  private readonly pending = new Set<string>();
  private wanted: CycleTrigger | undefined;
  private loop: Promise<void> | undefined;
  private current: Current | undefined;
  private stopping = false;
  /** Cycles in a row started by files written while the previous cycle ran (see `looksLikeLoop`). */
  private busyStreak = 0;
  private paused = false;
  /** When the last cycle that ran stages began and ended. */
  private lastRun: { start: number; end: number } | undefined;
  private ready = false;
  private readonly t0 = Date.now();
  private lastPending = '[]';
  private lastHeld = '[]';
  private lastWarnings = '[]';

  constructor(private readonly opts: WatchOptions) {
    this.file = resolve(opts.file);
    this.watchers = new WatchSet({
      onChange: (p) => this.coalescer.push(p),
      onActivity: () => this.coalescer.activity(),
      onWarning: (m) => this.say({ type: 'warning', code: 'watcher', message: m }),
      // Incremental directory hashing (cache/state.ts `track`): the events name what changed, so a big dep folder
      // is re-checked path by path instead of re-stat'ed whole; a folder no longer watched in full is walked again.
      onRaw: (p) => this.ws?.state.changed(p),
      onTreeLost: (root) => this.ws?.state.untrack(root),
    });
    this.coalescer = new Coalescer(opts.quietMs ?? 60, 1000, (paths) => this.onBatch(paths));
  }

  /** Load, watch, and start the first cycle (returns at once; `idle()` waits for it). */
  start(): void {
    if (!existsSync(this.file)) throw new UsageError(`pipeline file ${this.opts.file} does not exist`);
    this.request('start');
  }

  /** Run the stale manual stages (and what waits for them) now: the `a` key. */
  runManual(): void {
    this.resume();
    this.request('manual');
  }

  /** A cycle without a change: the `r` key (e.g. after fixing something outside the watched files). */
  refresh(): void {
    this.resume();
    this.request('refresh');
  }

  private resume(): void {
    this.paused = false;
    this.busyStreak = 0;
  }

  /** Resolves when no cycle runs and none is wanted. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** Stop: cancel the running cycle, wait until the engine has cleaned up (no half-written outputs), unwatch. */
  async stop(reason: 'quit' | 'interrupt'): Promise<void> {
    if (this.stopping) return this.idle();
    this.stopping = true;
    this.coalescer.close();
    this.cycleAbort.abort();
    await this.idle();
    await this.watchers.close();
    this.say({ type: 'watch-stop', reason });
  }

  /** A second Ctrl-C while stopping: kill what still runs now; the engine still removes its half-written outputs. */
  kill(): void {
    this.killAbort.abort();
  }

  // ───────────────────────────── events in ─────────────────────────────

  private onBatch(paths: string[]): void {
    if (this.stopping) return;
    const root = this.loaded?.pipeline.workdir ?? dirname(this.file);
    const files = [...new Set(paths.map((p) => relOf(root, p)))].sort();
    for (const f of files) this.pending.add(f);
    this.say({ type: 'watch-change', files });
    if (this.current) void this.cancelStale(this.current, files);
    if (!this.paused) this.request('change');
  }

  /**
   * Cancel the stages of the running cycle that `files` made stale: those whose deps, kind code or definition
   * changed, and everything downstream of them (their inputs are about to change too).
   */
  private async cancelStale(cur: Current, files: string[]): Promise<void> {
    const before = cur.loaded.pipeline;
    let now = before;
    let previous: Pipeline | undefined;
    // Source files, or a file inside a globbed include folder (sourceFiles may list folders).
    const sources = before.sourceFiles.map((f) => relOf(before.workdir, f));
    if (files.some((f) => sources.some((src) => within(f, src)))) {
      try {
        now = (await this.load()).pipeline;
        previous = before;
      } catch {
        // Broken mid-edit: the next cycle reports it; nothing to compare with.
      }
    }
    if (this.current !== cur) return;
    const touched = touchedStages(now, files, codeDirs, previous);
    const known = new Set(cur.loaded.pipeline.stages.map((s) => s.name));
    const affected = withDownstream(touched, (s) => (known.has(s) ? successorsOf(cur.loaded.dag, s) : []));
    const hit = [...affected].filter((s) => cur.runSet.has(s) && !cur.finished.has(s) && !cur.restarted.has(s));
    if (hit.length === 0) return;
    for (const s of hit) {
      cur.restarted.add(s);
      cur.canceller.cancel(s);
    }
    this.say({ type: 'watch-cancel', cycle: cur.cycle, stages: hit, files });
  }

  // ───────────────────────────── cycles ─────────────────────────────

  private request(trigger: CycleTrigger): void {
    if (this.stopping) return;
    if (!this.wanted || PRIORITY[trigger] > PRIORITY[this.wanted]) this.wanted = trigger;
    this.kick();
  }

  private kick(): void {
    if (this.loop || this.stopping) return;
    // The body starts on a later microtask, so `this.loop` is assigned before its `finally` can clear it (a body
    // that finished synchronously would otherwise leave a settled promise behind and block every later kick).
    this.loop = Promise.resolve().then(async () => {
      try {
        while (this.wanted && !this.stopping) {
          const trigger = this.wanted;
          this.wanted = undefined;
          const files = [...this.pending].sort();
          this.pending.clear();
          if (trigger === 'change' && this.looksLikeLoop(files)) {
            for (const f of files) this.pending.add(f); // kept for the cycle `r` starts
            break;
          }
          try {
            await this.cycle(trigger, files);
          } catch (e) {
            // Disk full, permissions: say it and keep watching (the next save retries).
            this.say({ type: 'warning', code: 'cycle-failed', message: `cycle failed: ${e instanceof Error ? e.message : String(e)}` });
          }
        }
      } finally {
        this.loop = undefined;
      }
      if (this.wanted && !this.stopping) this.kick();
    });
  }

  /**
   * A stage that writes into a watched dep (an undeclared output: a log, a timestamp) changes it while it runs, and
   * that change starts the next cycle, which runs it again: a loop. Its sign: every file of the change was last
   * written while the previous cycle ran its stages. A person's saves rarely all land inside cycle after cycle, so
   * after LOOP_LIMIT such cycles in a row, stop starting cycles on changes and say why. `r` or `a` resumes.
   */
  private looksLikeLoop(files: string[]): boolean {
    const run = this.lastRun;
    const root = this.loaded?.pipeline.workdir ?? dirname(this.file);
    const during = (f: string): boolean => {
      try {
        const m = statSync(resolve(root, f)).mtimeMs;
        return run !== undefined && m >= run.start && m <= run.end + 5;
      } catch {
        return false;
      }
    };
    this.busyStreak = files.length > 0 && files.every(during) ? this.busyStreak + 1 : 0;
    if (this.busyStreak < LOOP_LIMIT) return false;
    this.paused = true;
    this.say({
      type: 'warning',
      code: 'watch-paused',
      message: `paused: the last ${LOOP_LIMIT} cycles were each started by files written while the previous one ran (${files.slice(0, 3).join(', ')}): does a stage write into its own deps? Declare such files as outs. Press r to resume.`,
    });
    return true;
  }

  private async load(): Promise<Loaded> {
    return loadAll(this.file, { overrides: this.opts.set ?? [], paramsFiles: this.opts.paramsFile ?? [] });
  }

  private async cycle(trigger: CycleTrigger, files: string[]): Promise<void> {
    const started = Date.now();
    // 1. Reload: the YAML, its includes and params files may have changed; kinds' code too.
    let loaded: Loaded;
    let selected: Set<string>;
    try {
      loaded = await this.load();
      selected = selectStages(loaded, this.opts.targets, false);
    } catch (e) {
      await this.invalid(e);
      return;
    }
    if (this.stopping) return;
    this.loaded = loaded;
    this.selected = selected;
    const p = loaded.pipeline;
    // The DSL's warnings once, and again only when they change (not on every save).
    const warnings = JSON.stringify(loaded.warnings);
    if (warnings !== this.lastWarnings) {
      this.lastWarnings = warnings;
      if (loaded.warnings.length > 0) this.say({ type: 'diagnostics', formatted: loaded.warnings, diagnostics: [] });
    }
    // The engine memoises kinds' implementation hashes per process; a watcher lives for hours and kinds get edited.
    kinds.resetImplementationHashes();
    const ws = await this.workspace(p);

    // 2. Watch exactly what this pipeline reads.
    const targets = watchTargets(p, selected, codeDirs);
    await this.watchers.update(targets, ignoredPaths(p));
    for (const tree of trackableTrees(p, this.watchers.fullTrees())) ws.state.track(tree);
    if (!this.ready) {
      this.ready = true;
      this.sayReady(p);
    }

    // 3. Hold back stale manual stages and their downstream unless asked to run them.
    const runAll = this.opts.all === true || trigger === 'manual';
    const hold = runAll ? { pending: [], held: new Set<string>() } : await this.manualHold(loaded, selected, ws);
    if (this.stopping) return;
    const runSet = new Set([...selected].filter((s) => !hold.held.has(s)));
    const order = loaded.graph.order.filter((s) => runSet.has(s));
    const cycle = ++this.cycleNo;
    this.say({ type: 'cycle-start', cycle, trigger, files, stages: order });

    // 4. Run.
    const counts: RunCounts = emptyCounts();
    let ok = true;
    const restarted = new Set<string>();
    if (order.length > 0) {
      const r = await this.run(cycle, loaded, ws, runSet, restarted);
      Object.assign(counts, r.counts);
      // Stages cancelled (and their downstream skipped) for a change are not failures: they run again next.
      ok = r.counts.failed === 0;
    }
    this.say({ type: 'cycle-end', cycle, ok, counts, restarted: [...restarted], durationMs: Date.now() - started });
    if (this.stopping) return;
    if (order.length > 0) this.lastRun = { start: started, end: Date.now() };

    // 5. What manual stages wait now (an upstream that re-ran may have left them up to date after all).
    if (!runAll && p.stages.some((s) => selected.has(s.name) && s.watch === 'manual')) {
      const after = await this.manualHold(loaded, selected, ws);
      this.sayPending(after);
      // Held stages that are no longer blocked can run now.
      if ([...hold.held].some((s) => !after.held.has(s))) this.request('follow-up');
    } else if (this.lastPending !== '[]' && runAll) {
      this.sayPending({ pending: [], held: new Set() });
    }
  }

  /** One engine run over `runSet` under the workspace lock; nothing (zero counts) when stopping first. */
  private async run(cycle: number, loaded: Loaded, ws: Workspace, runSet: Set<string>, restarted: Set<string>): Promise<{ counts: RunCounts }> {
    const p = loaded.pipeline;
    const stages = p.stages.filter((s) => runSet.has(s.name));
    const lock = workspaceLock(pipeDirOf(p), `pipe watch ${this.opts.file}`);
    const got = await lock.acquire({
      wait: true,
      signal: this.cycleAbort.signal,
      onWait: (h) => this.say({ type: 'warning', code: 'lock-wait', message: `waiting for the workspace lock held by \`${h.command}\` (pid ${h.pid} on ${h.host})` }),
    });
    if (!got.ok) {
      // Stopped while waiting; or a lock file no process will release: said, and the next change tries again.
      const unreadable = unreadableLockText(got.holder);
      if (unreadable) this.say({ type: 'warning', code: 'lock-unreadable', message: unreadable });
      return { counts: emptyCounts() };
    }
    if (this.stopping) {
      await got.release();
      return { counts: emptyCounts() };
    }
    // A third Ctrl-C exits at once: the exit hook still removes the lock.
    const undoExitHook = releaseLockOnExit(ws.pipeDir);
    const executors = await executorChooser(p, stages, ws.pipeDir);
    const canceller = new StageCanceller(executors.choose);
    const cur: Current = { cycle, loaded, runSet, finished: new Set(), canceller, restarted };
    this.current = cur;
    // Changes that arrived while this cycle was loading and planning: their stages must not run on stale inputs.
    if (this.pending.size > 0) void this.cancelStale(cur, [...this.pending]);
    try {
      const summary = await runStages({
        pipeline: p,
        graph: loaded.graph,
        workspace: ws,
        selected: runSet,
        emit: (e) => {
          if (e.type === 'stage-end') cur.finished.add(e.stage);
          this.say({ ...e, cycle });
        },
        pipeVersion: pipeVersion(),
        machine: this.machine(stages),
        executorFor: canceller.executorFor,
        signal: this.cycleAbort.signal,
        kill: this.killAbort.signal,
        keepGoing: true,
      });
      return { counts: summary.counts };
    } finally {
      this.current = undefined;
      await executors.close();
      await got.release();
      undoExitHook();
    }
  }

  /** Stale manual stages (the plan says `run`) and the selected stages downstream of them. */
  private async manualHold(loaded: Loaded, selected: Set<string>, ws: Workspace): Promise<{ pending: PendingStage[]; held: Set<string> }> {
    const manual = loaded.pipeline.stages.filter((s) => selected.has(s.name) && s.watch === 'manual');
    if (manual.length === 0) return { pending: [], held: new Set() };
    // Only the manual stages and their upstream need a decision (a big unrelated dataset is not re-stated).
    const scope = new Set(manual.map((s) => s.name));
    for (const m of manual) for (const u of upstreamOf(loaded.dag, m.name)) if (selected.has(u)) scope.add(u);
    const decisions = await planStages({ pipeline: loaded.pipeline, graph: loaded.graph, workspace: ws, selected: scope, emit: () => {}, pipeVersion: pipeVersion() });
    const pending = manual
      .filter((s) => decisions.get(s.name)?.action === 'run')
      .map((s): PendingStage => {
        const { reasons } = decisions.get(s.name)!;
        return { stage: s.name, reasons: reasons.map((r) => r.text), codes: reasons.map((r) => r.code) };
      });
    const held = withDownstream(
      pending.map((x) => x.stage),
      (s) => successorsOf(loaded.dag, s),
    );
    return { pending, held: new Set([...held].filter((s) => selected.has(s))) };
  }

  private sayPending(h: { pending: PendingStage[]; held: Set<string> }): void {
    const names = h.pending.map((x) => x.stage);
    const held = [...h.held].filter((s) => !names.includes(s));
    const key = JSON.stringify(h.pending);
    const heldKey = JSON.stringify(held);
    if (key === this.lastPending && heldKey === this.lastHeld) return;
    this.lastPending = key;
    this.lastHeld = heldKey;
    this.say({ type: 'manual-pending', stages: h.pending, held });
  }

  /** The pipeline does not load: show why, keep (or start) watching its files so that the fix is seen. */
  private async invalid(e: unknown): Promise<void> {
    this.lastWarnings = '[]';
    if (e instanceof DiagnosticsError) {
      this.say({ type: 'diagnostics', formatted: e.formatted, diagnostics: e.diagnostics });
      this.say({ type: 'watch-invalid', problems: e.diagnostics.length });
    } else if (e instanceof UsageError) {
      this.say({ type: 'warning', code: 'pipeline-unreadable', message: `${e.message}; waiting for it to appear` });
      this.say({ type: 'watch-invalid', problems: 1 });
    } else if (isFsError(e)) {
      // Unreadable mid-save (permissions, a file swapped out): say so, keep watching.
      this.say({ type: 'warning', code: 'pipeline-unreadable', message: `cannot load ${this.opts.file}: ${e.message}` });
      this.say({ type: 'watch-invalid', problems: 1 });
    } else throw e;
    const prev: WatchTargets = this.loaded ? watchTargets(this.loaded.pipeline, this.selected, codeDirs) : { files: [], trees: [] };
    const files = new Set([...prev.files, this.file]);
    // The files the diagnostics point at, and the deps they miss (waited for: their appearance is the fix).
    if (e instanceof DiagnosticsError) {
      for (const d of e.diagnostics) {
        if (d.span?.file) files.add(resolve(d.span.file));
        if (d.missing) files.add(d.missing.endsWith('/') ? d.missing.slice(0, -1) : d.missing);
      }
    }
    const ignore = this.loaded ? ignoredPaths(this.loaded.pipeline) : () => false;
    const targets = { files: [...files], trees: prev.trees };
    await this.watchers.update(targets, ignore);
    if (!this.ready) {
      this.ready = true;
      this.sayReady(undefined);
    }
  }

  private sayReady(p: Pipeline | undefined): void {
    const root = p?.workdir ?? dirname(this.file);
    const w = this.watchers.watched();
    const rel = (xs: string[], suffix = ''): string[] => xs.map((f) => `${relOf(root, f)}${suffix}`).sort();
    this.say({
      type: 'watch-ready',
      pipeline: this.file,
      files: rel(w.files),
      trees: rel(w.trees, '/'),
      missing: rel(w.missing),
      watchedDirs: this.watchers.stats().dirs,
      startupMs: Date.now() - this.t0,
    });
  }

  private async workspace(p: Pipeline): Promise<Workspace> {
    const id = `${p.workdir}\0${p.settings.cacheDir}\0${p.file}`;
    if (!this.ws || this.wsFor !== id) {
      // A new hash state tracks nothing yet: it walks each folder once, then follows the events again.
      this.ws = await openWorkspace(p);
      this.wsFor = id;
    }
    return this.ws;
  }

  /** The machine; GPUs are detected (nvidia-smi) once, not every cycle. */
  private machine(stages: StageSpec[]): ReturnType<typeof machineFor> {
    if (this.opts.gpus !== undefined) return machineFor(this.opts, stages);
    if (this.gpuIds === undefined && stages.some((s) => s.executor === 'local' && s.resources.gpus > 0)) {
      this.gpuIds = machineFor(this.opts, stages).gpuIds;
    }
    return machineFor({ ...this.opts, gpus: this.gpuIds && this.gpuIds.length > 0 ? this.gpuIds.join(',') : 'none' }, stages);
  }

  private say(e: WatchEventInput | EventInput | (EventInput & { cycle: number })): void {
    this.opts.emit({ ...e, at: Date.now() } as Parameters<WatchSink>[0]);
  }
}

/** The files and folders whose edits can change a `uses` kind's key (engine/kinds.ts `kindWatchPaths`). */
export function codeDirs(kind: string): string[] {
  return kinds.kindWatchPaths(kind);
}

function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}
