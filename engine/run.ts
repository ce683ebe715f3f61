/**
 * The run loop: bring a selected set of stages up to date. Each stage, when everything it waits for has ended, is
 * decided (engine/run/decide.ts), then either ends at once (up to date, restored, skipped) or waits for resources
 * and is dispatched to its executor (engine/run/dispatch.ts); what it leaves is committed (engine/run/commit.ts)
 * and every end is reported (engine/run/report.ts). Reusable by watch mode: it takes an executor chooser, an event
 * sink and an AbortSignal, and never prints.
 *
 * This file is only the loop: readiness (ReadyTracker), the resource queue (WaitQueue/ResourcePool), and the stop
 * policy (a failure without --keep-going, or Ctrl-C, starts nothing new).
 */
import type { RunRecord } from '../cache/types.js';
import type { Executor } from './executors/executor.js';
import type { StageSpec } from './model.js';
import { computeKey, decide, DepMemo, disagreementText, type StageKeyInfo } from './plan.js';
import { fitRequest, ReadyTracker, ResourcePool, WaitQueue, type Grant, type Machine } from './scheduler.js';
import type { UpstreamRun } from './stage-api.js';
import { Committer } from './run/commit.js';
import { DepLinks } from './run/dep-links.js';
import { ancestorsOf, lazyLock, missingDeps, missingDepsReason, upstreamBlock, waitsForOf, type EngineOptions } from './run/decide.js';
import { dispatch, logFileOf, logTail, type DispatchContext } from './run/dispatch.js';
import { errorReason, reasonText, RunReport, type EndDetails, type RunSummary, type StageOutcome } from './run/report.js';
import { planEvent, type EndCode, type Reason } from './events.js';

export { planStages, type EngineOptions, type StageGraph } from './run/decide.js';
export type { RunSummary, StageOutcome } from './run/report.js';

export interface RunOptions extends EngineOptions {
  machine: Machine;
  executorFor: (stage: StageSpec) => Executor;
  signal: AbortSignal;
  /** Aborted on a second Ctrl-C: running stages are killed at once (no grace period). */
  kill?: AbortSignal;
  keepGoing: boolean;
  /** What a forced stage's plan says instead of `--force` (`pipe verify`: code `verify`). */
  forceReason?: Reason;
  /** Another commit policy (`pipe verify` compares instead of storing); default: store, record, index, lock file. */
  committer?: (memo: DepMemo) => Committer;
  /** A pool shared with other runs (`pipe exp run`: its variants together stay within `machine`); default its own. */
  pool?: ResourcePool;
}

interface Waiting {
  stage: StageSpec;
  info: StageKeyInfo;
  /** Why it runs (the plan's reasons, or why its restore failed). */
  reasons: Reason[];
  executor: Executor;
}

export async function runStages(opts: RunOptions): Promise<RunSummary> {
  const { pipeline, graph, selected, workspace: ws, emit, signal } = opts;
  const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
  const order = graph.order.filter((s) => selected.has(s));
  const waitsFor = waitsForOf(graph, selected);
  const tracker = new ReadyTracker(order, waitsFor);
  const pool = opts.pool ?? new ResourcePool(opts.machine);
  const queue = new WaitQueue<Waiting>();
  const report = new RunReport(emit);
  const lockOf = lazyLock(pipeline);
  const memo = new DepMemo(ws);
  const depLinks = new DepLinks(pipeline, ws, (s) => new Set(ancestorsOf(graph, s)));
  const commit = opts.committer?.(memo) ?? new Committer(pipeline, ws, memo, opts.pipeVersion);
  const jobs: DispatchContext = {
    pipeline,
    ws,
    machine: opts.machine,
    pipeVersion: opts.pipeVersion,
    emit,
    signal,
    ...(opts.kill ? { kill: opts.kill } : {}),
    upstreamOf: (name) => upstreamRuns(name),
  };
  let stopping: Reason<EndCode> | undefined; // why no new stage starts (failure without --keep-going, or Ctrl-C)
  let remaining = order.length;
  let finishAll!: () => void;
  const allDone = new Promise<void>((r) => (finishAll = r));
  if (remaining === 0) finishAll();

  emit({ type: 'run-start', pipeline: pipeline.file, stages: order, jobs: opts.machine.jobs, dryRun: false });

  const finish = (o: StageOutcome, details: EndDetails = {}): void => {
    if (!report.end(o, details)) return;
    if (o.status === 'failed' && !opts.keepGoing && !stopping) {
      stopping = { code: 'stopped', text: `not started: stage ${o.stage} failed (use --keep-going to run independent stages)` };
      for (const w of queue.drain()) finish({ stage: w.stage.name, status: 'skipped', code: stopping.code, reason: stopping.text, durationMs: 0 });
    }
    remaining -= 1;
    // A microtask, not a call: a failure at the head of a 10,000-stage chain skips the rest without deep recursion.
    for (const next of tracker.complete(o.stage)) queueMicrotask(() => void onReady(next));
    if (remaining === 0) finishAll();
  };
  const notStarted = (name: string, why: Reason<EndCode>): void =>
    finish({ stage: name, status: signal.aborted ? 'cancelled' : 'skipped', code: why.code, reason: why.text, durationMs: 0 });
  const failed = (name: string, why: Reason<EndCode>, key?: string): void =>
    finish({ stage: name, status: 'failed', code: why.code, reason: why.text, durationMs: 0, ...(key ? { key } : {}) });

  const onAbort = (): void => {
    stopping = { code: 'interrupted', text: 'cancelled before it started' };
    for (const w of queue.drain()) finish({ stage: w.stage.name, status: 'cancelled', code: stopping.code, reason: stopping.text, durationMs: 0 });
  };
  signal.addEventListener('abort', onAbort, { once: true });

  const pump = (): void => {
    for (const { item, grant } of queue.take(pool)) void execute(item, grant);
  };

  const onReady = async (name: string): Promise<void> => {
    const stage = byName.get(name)!;
    const t0 = Date.now();
    try {
      const blocked = upstreamBlock(waitsFor(name), (u) => report.get(u));
      if (blocked) return notStarted(name, blocked);
      if (stopping) return notStarted(name, stopping);
      // Outs that resolve outside the workspace, or onto pipe's own files, are neither hashed nor touched.
      const refused = ws.outs.checkStage(stage);
      if (refused) return failed(name, { code: 'out-refused', text: refused.reason });

      const forced = opts.force?.(name) ?? false;
      const d = await decide(stage, ws, { force: forced, lockEntry: lockOf, memo });
      const linked = d.info?.depLinks && depLinks.refusal(stage, d.info.depLinks);
      if (linked) return failed(name, linked, d.info!.key);
      if (forced && opts.forceReason && d.action === 'run') d.reasons = [opts.forceReason];
      emit(planEvent(name, d.action, d.reasons, d.info?.key));
      if (d.action === 'up-to-date') {
        await commit.upToDate(stage, d.info, d.record);
        return finish({ stage: name, status: 'up-to-date', code: 'up-to-date', reason: 'up to date', durationMs: Date.now() - t0, key: d.info.key, ...(d.record ? { record: d.record } : {}) });
      }
      let reasons = d.reasons;
      if (d.action === 'restore') {
        if (stopping) return notStarted(name, stopping);
        try {
          await commit.restore(stage, d.info, d.record);
          return finish({ stage: name, status: 'restored', code: d.reasons[0]?.code ?? 'same-inputs', reason: reasonText(d.reasons), durationMs: Date.now() - t0, key: d.info.key, record: d.record });
        } catch (e) {
          // A damaged or vanished cache object: running the stage is always a correct fallback.
          commit.discard(stage);
          emit({ type: 'warning', stage: name, code: 'restore-failed', message: `could not restore ${name} from the cache (${errorText(e)}); running it instead` });
          reasons = [{ code: 'restore-failed', text: `restore failed: ${errorText(e)}` }];
        }
      }
      const info = d.info ?? (await computeKey(stage, ws));
      const executor = opts.executorFor(stage);
      const missing = missingDeps(stage, info);
      if (missing.length > 0) return failed(name, { code: 'dep-missing', text: missingDepsReason(pipeline, missing) }, info.key);
      let req = stage.resources;
      if (executor.name === 'local') {
        const fit = fitRequest(name, stage.resources, opts.machine);
        if (!fit.ok) return failed(name, { code: 'gpus-unavailable', text: fit.error }, info.key);
        for (const w of fit.warnings) emit({ type: 'warning', stage: name, code: 'resources-reduced', message: w });
        req = fit.request;
      }
      if (stopping) return notStarted(name, stopping);
      const waiting: Waiting = { stage, info, reasons, executor };
      if (executor.name === 'local') {
        queue.push(waiting, req);
        pump();
      } else {
        // Remote executors bring their own resources: no local slot is taken.
        void execute(waiting, undefined);
      }
    } catch (e) {
      const why = depLinks.brokenLink(stage, e) ?? errorReason(e);
      finish({ stage: name, status: 'failed', code: why.code, reason: why.text, durationMs: Date.now() - t0 });
    }
  };

  const execute = async ({ stage, info, reasons, executor }: Waiting, grant: Grant | undefined): Promise<void> => {
    const name = stage.name;
    const t0 = Date.now();
    const logFile = logFileOf(ws, name);
    let outcome: StageOutcome;
    let tail: string | undefined;
    commit.forget(stage);
    ws.outs.forget(); // a running stage may turn folders into links
    try {
      commit.prepare(stage);
      const { job, result, recorded, lastLines } = await dispatch(jobs, stage, info, executor, grant, () => commit.discard(stage));
      // The job's process has ended: its slot is free while pipe records the result, and the next job can start.
      if (grant) {
        pool.release(grant);
        grant = undefined;
        pump();
      }
      const verdict = await commit.ran(stage, info, job, result, recorded, executor.name, signal.aborted);
      if (verdict.status === 'ran') for (const d of verdict.disagreements) emit({ type: 'warning', stage: name, code: 'nondeterministic', message: disagreementText(d) });
      const base = { stage: name, durationMs: Date.now() - t0, key: info.key };
      outcome =
        verdict.status === 'ran'
          ? { ...base, status: 'ran', code: reasons[0]?.code ?? 'never-ran', reason: reasonText(reasons), record: verdict.record }
          : { ...base, status: verdict.status, code: verdict.code, reason: verdict.reason };
      if (outcome.status !== 'ran') tail = logTail(logFile) ?? (lastLines.length > 0 ? lastLines.join('\n') : undefined);
    } catch (e) {
      commit.discard(stage);
      const why: Reason<EndCode> = signal.aborted ? { code: 'cancelled', text: errorText(e) } : errorReason(e);
      outcome = { stage: name, status: signal.aborted ? 'cancelled' : 'failed', code: why.code, reason: why.text, durationMs: Date.now() - t0, key: info.key };
    } finally {
      commit.forget(stage);
      ws.outs.forget();
      if (grant) pool.release(grant);
    }
    finish(outcome, { logFile, ...(tail ? { logTail: tail } : {}) });
    pump();
  };

  const upstreamRuns = async (name: string): Promise<UpstreamRun[]> => {
    const runs: UpstreamRun[] = [];
    for (const up of ancestorsOf(graph, name)) {
      let rec = report.get(up)?.record;
      const entry = ws.index.get(up);
      if (!rec && entry) rec = await ws.runs.get(entry.key as RunRecord['key']);
      if (!rec) continue;
      const s = byName.get(up);
      runs.push({
        stage: up,
        key: rec.key,
        outputs: (entry?.outputs ?? rec.outputs).filter((o) => o.hash).map((o) => ({ path: o.path, hash: o.hash as string })),
        ...(s?.uses ? { uses: s.uses } : {}),
        ...(s?.cmd ? { cmd: s.cmd } : {}),
        ...(rec.extra ? { extra: rec.extra } : {}),
      });
    }
    return runs;
  };

  // A shared pool freed by another run may now fit what waits here.
  const unsubscribe = opts.pool?.onRelease(() => queueMicrotask(pump));
  for (const name of tracker.initial()) void onReady(name);
  await allDone;
  unsubscribe?.();
  signal.removeEventListener('abort', onAbort);

  try {
    await commit.persist();
  } catch (e) {
    // The stages' results are in the store and the run cache; only the index, memo or lock file could not be saved.
    emit({ type: 'warning', code: 'not-saved', message: `could not save the run's index and lock file (${errorText(e)}); the next run finds the results in the cache` });
    return report.close(signal.aborted, false);
  }
  return report.close(signal.aborted);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
