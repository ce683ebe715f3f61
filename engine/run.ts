/**
 * The orchestration: run a selected set of stages of a pipeline — decide each when it becomes ready, restore or
 * schedule it, execute it through the executor the chooser picks, and commit its outputs (store, run record,
 * index, lock file). Reusable by watch mode and the SLURM executor: it takes an executor chooser, an event sink and
 * an AbortSignal, and never prints.
 *
 * `planStages` is the "what would run and why" half (no processes, nothing written but the hash memo).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { hostname } from 'node:os';
import type { Hash, RunRecord, StoredOutput } from '../cache/types.js';
import { emptyCounts, type Emit, type RunCounts, type StageStatus } from './events.js';
import type { Executor, Job, JobResult } from './executors/executor.js';
import { runWithRetries } from './executors/retry.js';
import { engineDistDir, kindRoot } from './kinds.js';
import { lockPath, readLockAsync, stageDigest, writeLock, type LockFile, type LockStage } from './lockfile.js';
import type { Pipeline, StageSpec } from './model.js';
import { absPath, computeKey, decide, DepMemo, disagreementText, hashOutputs, type Decision, type StageKeyInfo } from './plan.js';
import { fitRequest, ReadyTracker, ResourcePool, WaitQueue, type Grant, type Machine } from './scheduler.js';
import type { UpstreamRun } from './stage-api.js';
import type { IndexedOutput, Workspace } from './workspace.js';
import { PIPE_LINE, type RunnerMessage, type RunnerSpec } from './runner.js';

/** The DAG as the engine needs it: a topological order and each stage's direct upstream stages. */
export interface StageGraph {
  order: readonly string[];
  predecessors(stage: string): readonly string[];
}

export interface EngineOptions {
  pipeline: Pipeline;
  graph: StageGraph;
  workspace: Workspace;
  /** The stages to consider (targets and their upstream), from selectTargets. */
  selected: ReadonlySet<string>;
  /** `--force`: run these even when up to date. */
  force?: (stage: string) => boolean;
  emit: Emit;
  pipeVersion: string;
}

export interface RunOptions extends EngineOptions {
  machine: Machine;
  executorFor: (stage: StageSpec) => Executor;
  signal: AbortSignal;
  keepGoing: boolean;
}

export interface StageOutcome {
  stage: string;
  status: StageStatus;
  reason: string;
  durationMs: number;
  key?: string;
  record?: RunRecord;
}

export interface RunSummary {
  ok: boolean;
  interrupted: boolean;
  counts: RunCounts;
  outcomes: Map<string, StageOutcome>;
}

/** Each selected stage's nearest selected ancestors (through unselected stages): what it must wait for. */
function waitsForOf(graph: StageGraph, selected: ReadonlySet<string>): (s: string) => string[] {
  const memo = new Map<string, string[]>();
  const walk = (s: string): string[] => {
    let r = memo.get(s);
    if (r) return r;
    const found = new Set<string>();
    for (const p of graph.predecessors(s)) {
      if (selected.has(p)) found.add(p);
      else for (const q of walk(p)) found.add(q);
    }
    r = [...found];
    memo.set(s, r);
    return r;
  };
  return walk;
}

/** Transitive upstream of a stage in topological order. */
function ancestorsOf(graph: StageGraph, stage: string): string[] {
  const seen = new Set<string>();
  const stack = [...graph.predecessors(stage)];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    stack.push(...graph.predecessors(s));
  }
  return graph.order.filter((s) => seen.has(s));
}

// ───────────────────────────── plan only ─────────────────────────────

/**
 * Decide every selected stage without running anything. A stage whose upstream would run cannot know its dep
 * hashes, so its decision is "run: upstream stage X will re-run"; an upstream that would be restored supplies the
 * hashes of its recorded outputs.
 */
export async function planStages(opts: EngineOptions): Promise<Map<string, Decision>> {
  const { pipeline, graph, selected, workspace: ws } = opts;
  const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
  const waitsFor = waitsForOf(graph, selected);
  const order = graph.order.filter((s) => selected.has(s));
  const decisions = new Map<string, Decision>();
  const known = new Map<string, Hash>();
  const lockOf = lazyLock(pipeline);
  const memo = new DepMemo(ws);
  const done = new Map<string, Promise<void>>();
  const decideOne = async (name: string): Promise<void> => {
    const ups = waitsFor(name);
    await Promise.all(ups.map((u) => done.get(u)));
    const stage = byName.get(name)!;
    const running = ups.filter((u) => decisions.get(u)?.action === 'run');
    let d: Decision;
    if (running.length > 0 && !opts.force?.(name)) {
      const named = running.length <= 3 ? running.join(', ') : `${running.slice(0, 2).join(', ')} and ${running.length - 2} more`;
      d = { action: 'run', reasons: [`upstream stage${running.length > 1 ? 's' : ''} ${named} will re-run`], changes: [] };
    } else {
      d = await decide(stage, ws, { force: opts.force?.(name) ?? false, known, lockEntry: lockOf, memo });
    }
    if (d.action === 'restore') for (const o of d.record.outputs) known.set(o.path, o.hash);
    decisions.set(name, d);
    opts.emit({ type: 'plan', stage: name, action: d.action, reasons: d.reasons, ...(d.info ? { key: d.info.key } : {}) });
  };
  for (const name of order) done.set(name, decideOne(name));
  await Promise.all(done.values());
  await ws.state.flush();
  return new Map(order.map((n) => [n, decisions.get(n)!]));
}

// ───────────────────────────── run ─────────────────────────────

export async function runStages(opts: RunOptions): Promise<RunSummary> {
  const { pipeline, graph, selected, workspace: ws, emit, signal } = opts;
  const started = Date.now();
  const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
  const order = graph.order.filter((s) => selected.has(s));
  const waitsFor = waitsForOf(graph, selected);
  const tracker = new ReadyTracker(order, waitsFor);
  const pool = new ResourcePool(opts.machine);
  const queue = new WaitQueue<{ stage: StageSpec; info: StageKeyInfo; reason: string; executor: Executor }>();
  const outcomes = new Map<string, StageOutcome>();
  const lockEntries = new Map<string, LockStage>();
  const lockOf = lazyLock(pipeline);
  const memo = new DepMemo(ws);
  const forgetOutputs = (stage: StageSpec): void => {
    for (const o of stage.outs) memo.forget(o.path);
  };
  let stopping: string | undefined; // why no new stage starts (failure without --keep-going, or Ctrl-C)
  let remaining = order.length;
  let finishAll!: () => void;
  const allDone = new Promise<void>((r) => (finishAll = r));
  if (remaining === 0) finishAll();

  emit({ type: 'run-start', pipeline: pipeline.file, stages: order, jobs: opts.machine.jobs, dryRun: false });

  const finish = (o: StageOutcome, extra: { logFile?: string; logTail?: string } = {}): void => {
    if (outcomes.has(o.stage)) return; // an error after a stage ended must not end it twice
    outcomes.set(o.stage, o);
    emit({
      type: 'stage-end',
      stage: o.stage,
      status: o.status,
      reason: o.reason,
      durationMs: o.durationMs,
      ...(o.key ? { key: o.key } : {}),
      ...extra,
    });
    if (o.status === 'failed' && !opts.keepGoing && !stopping) {
      stopping = `not started: stage ${o.stage} failed (use --keep-going to run independent stages)`;
      for (const w of queue.drain()) finish({ stage: w.stage.name, status: 'skipped', reason: stopping, durationMs: 0 });
    }
    remaining -= 1;
    // A microtask, not a call: a failure at the head of a 10,000-stage chain skips the rest without deep recursion.
    for (const next of tracker.complete(o.stage)) queueMicrotask(() => void onReady(next));
    if (remaining === 0) finishAll();
  };

  const onAbort = (): void => {
    stopping = 'cancelled before it started';
    for (const w of queue.drain()) finish({ stage: w.stage.name, status: 'cancelled', reason: stopping, durationMs: 0 });
  };
  signal.addEventListener('abort', onAbort, { once: true });

  const pump = (): void => {
    for (const { item, grant } of queue.take(pool)) void execute(item.stage, item.info, item.reason, item.executor, grant);
  };

  const onReady = async (name: string): Promise<void> => {
    const stage = byName.get(name)!;
    const t0 = Date.now();
    try {
      const bad = waitsFor(name).find((u) => {
        const s = outcomes.get(u)?.status;
        return s === 'failed' || s === 'cancelled' || s === 'skipped';
      });
      if (bad) {
        // Name the root cause (the failed stage), not the skipped stage in between.
        const up = outcomes.get(bad)!;
        const reason = up.status === 'failed' ? `upstream stage ${bad} failed` : up.reason.startsWith('upstream stage') ? up.reason : `upstream stage ${bad} did not complete`;
        return finish({ stage: name, status: signal.aborted ? 'cancelled' : 'skipped', reason, durationMs: 0 });
      }
      if (stopping) return finish({ stage: name, status: signal.aborted ? 'cancelled' : 'skipped', reason: stopping, durationMs: 0 });

      const d = await decide(stage, ws, { force: opts.force?.(name) ?? false, lockEntry: lockOf, memo });
      emit({ type: 'plan', stage: name, action: d.action, reasons: d.reasons, ...(d.info ? { key: d.info.key } : {}) });
      if (d.action === 'up-to-date') {
        const entry = ws.index.get(name);
        if (d.record || !entry || entry.key !== d.info.key) {
          ws.index.set(name, { key: d.info.key, outputs: await indexedOutputs(stage, ws) });
        }
        lockEntries.set(name, lockEntry(stage, d.info, ws.index.get(name)!.outputs));
        return finish({ stage: name, status: 'up-to-date', reason: 'up to date', durationMs: Date.now() - t0, key: d.info.key, ...(d.record ? { record: d.record } : {}) });
      }
      let reasons = d.reasons;
      if (d.action === 'restore') {
        if (stopping) return finish({ stage: name, status: signal.aborted ? 'cancelled' : 'skipped', reason: stopping, durationMs: 0 });
        forgetOutputs(stage);
        try {
          await restore(stage, d.record);
          forgetOutputs(stage);
          const outputs = await indexedOutputs(stage, ws);
          ws.index.set(name, { key: d.info.key, outputs });
          lockEntries.set(name, lockEntry(stage, d.info, outputs));
          return finish({ stage: name, status: 'restored', reason: d.reasons.join('; '), durationMs: Date.now() - t0, key: d.info.key, record: d.record });
        } catch (e) {
          // A damaged or vanished cache object: running the stage is always a correct fallback.
          removeOutputs(stage, ws.root);
          forgetOutputs(stage);
          emit({ type: 'warning', stage: name, message: `could not restore ${name} from the cache (${errorText(e)}); running it instead` });
          reasons = [`restore failed: ${errorText(e)}`];
        }
      }
      // Run.
      const info = d.info ?? (await computeKey(stage, ws));
      const executor = opts.executorFor(stage);
      const missing = stage.deps.filter((dep) => info.depHashes[dep.path] === null).map((dep) => dep.path);
      if (missing.length > 0) {
        return finish({ stage: name, status: 'failed', reason: `dep ${missing.join(', ')} does not exist${producedBy(missing[0]!)}`, durationMs: 0, key: info.key });
      }
      let req = stage.resources;
      if (executor.name === 'local') {
        const fit = fitRequest(name, stage.resources, opts.machine);
        if (!fit.ok) return finish({ stage: name, status: 'failed', reason: fit.error, durationMs: 0, key: info.key });
        for (const w of fit.warnings) emit({ type: 'warning', stage: name, message: w });
        req = fit.request;
      }
      if (stopping) return finish({ stage: name, status: signal.aborted ? 'cancelled' : 'skipped', reason: stopping, durationMs: 0 });
      if (executor.name === 'local') {
        queue.push({ stage, info, reason: reasons.join('; '), executor }, req);
        pump();
      } else {
        // Remote executors bring their own resources: no local slot is taken.
        void execute(stage, info, reasons.join('; '), executor, undefined);
      }
    } catch (e) {
      finish({ stage: name, status: 'failed', reason: errorText(e), durationMs: Date.now() - t0 });
    }
  };

  const producedBy = (path: string): string => {
    const p = pipeline.stages.find((s) => s.outs.some((o) => o.path === path || (o.path.endsWith('/') && path.startsWith(o.path))));
    return p ? ` (stage ${p.name} produces it: run it first or select it)` : '';
  };

  const restore = async (stage: StageSpec, record: RunRecord): Promise<void> => {
    for (const out of record.outputs) {
      const dest = absPath(ws.root, out.path);
      mkdirSync(dirname(dest), { recursive: true });
      await ws.store.restore(out, dest, pipeline.settings.restore);
    }
  };

  const execute = async (stage: StageSpec, info: StageKeyInfo, reason: string, executor: Executor, grant: Grant | undefined): Promise<void> => {
    const name = stage.name;
    const t0 = Date.now();
    const jobId = `${safeName(name)}-${info.key.slice(0, 12)}`;
    const logFile = join(ws.logsDir, `${safeName(name)}.log`);
    let outcome: StageOutcome;
    let logTail: string | undefined;
    forgetOutputs(stage);
    try {
      removeOutputs(stage, ws.root);
      for (const o of stage.outs) mkdirSync(dirname(absPath(ws.root, o.path)), { recursive: true });
      const extra: Record<string, unknown> = {};
      const job = await buildJob(stage, info, jobId, logFile, grant);
      emit({ type: 'stage-start', stage: name, executor: executor.name, gpuIds: grant?.gpuIds ?? [], cpus: grant?.cpus ?? stage.resources.cpus, logFile });
      const lines = lineSplitter((line) => {
        if (line.startsWith(PIPE_LINE)) {
          const msg = parseRunnerLine(line);
          if (!msg) return;
          if (msg.type === 'log') emit({ type: 'stage-log', stage: name, line: msg.message });
          else if (msg.type === 'progress') {
            const { type: _t, ...p } = msg;
            emit({ type: 'stage-progress', stage: name, ...p });
          } else Object.assign(extra, msg.info);
        } else emit({ type: 'stage-log', stage: name, line });
      });
      // retries: a failed attempt (not a cancellation) runs again, with more memory/time after OOM/timeout kills.
      let previous = job;
      const result: JobResult = await runWithRetries(
        executor,
        job,
        stage.retries,
        { signal, onOutput: lines.push, onState: (state) => emit({ type: 'stage-state', stage: name, state }) },
        (next) => {
          removeOutputs(stage, ws.root);
          const before = previous.resources;
          const after = next.job.resources;
          previous = next.job;
          const mb = (b: number) => `${Math.round(b / (1024 * 1024))}M`;
          const escalated = [
            after.memBytes !== before.memBytes ? `mem ${mb(before.memBytes)} → ${mb(after.memBytes)}` : '',
            after.timeSec !== before.timeSec ? `time ${before.timeSec}s → ${after.timeSec}s` : '',
          ].filter(Boolean);
          emit({ type: 'stage-state', stage: name, state: `attempt ${next.attempt} of ${stage.retries.count + 1} after: ${next.result.reason}${escalated.length ? `; ${escalated.join(', ')}` : ''}` });
        },
      );
      lines.end();
      outcome = await commit(stage, info, result, executor, extra, job, t0, reason);
      if (outcome.status !== 'ran') logTail = tail(logFile);
    } catch (e) {
      removeOutputs(stage, ws.root);
      outcome = { stage: name, status: signal.aborted ? 'cancelled' : 'failed', reason: errorText(e), durationMs: Date.now() - t0, key: info.key };
    } finally {
      forgetOutputs(stage);
      if (grant) pool.release(grant);
    }
    finish(outcome, { logFile, ...(logTail ? { logTail } : {}) });
    pump();
  };

  const buildJob = async (stage: StageSpec, info: StageKeyInfo, jobId: string, logFile: string, grant: Grant | undefined): Promise<Job> => {
    const env: Record<string, string> = { ...stage.env, PIPE_STAGE: stage.name, PIPE_WORKSPACE: ws.root };
    const gpuIds = grant?.gpuIds ?? [];
    // Hide every device not granted, so two stages never share one (a stage with gpus: 0 sees none).
    if (grant && (opts.machine.gpuIds.length > 0 || stage.resources.gpus > 0)) env.CUDA_VISIBLE_DEVICES = gpuIds.join(',');
    const cpus = grant?.cpus ?? stage.resources.cpus;
    env.PIPE_CPUS = String(cpus);
    const resources = { ...stage.resources, cpus, ...(grant ? { memBytes: grant.memBytes } : {}) };
    let argv: string[];
    if (stage.cmd !== undefined) argv = ['sh', '-c', stage.cmd];
    else {
      mkdirSync(ws.tmpDir, { recursive: true });
      const specFile = join(ws.tmpDir, `${jobId}.json`);
      const spec: RunnerSpec = {
        stage: stage.name,
        kind: stage.uses!,
        with: stage.with ?? {},
        params: pipeline.params,
        workspace: ws.root,
        key: info.key,
        depHashes: Object.fromEntries(Object.entries(info.depHashes).filter((e): e is [string, Hash] => e[1] !== null)),
        upstream: await upstreamRuns(stage.name),
        pipeline: { file: relative(ws.root, pipeline.file), name: pipeline.name, pipeVersion: opts.pipeVersion },
        resources: { ...resources, gpuIds },
        resultFile: join(ws.tmpDir, `${jobId}.result.json`),
        tmpDir: join(ws.tmpDir, `${jobId}.scratch`),
        stagesRoot: kindRoot(stage.uses!),
      };
      rmSync(spec.resultFile, { force: true });
      writeFileSync(specFile, JSON.stringify(spec));
      argv = [process.execPath, join(engineDistDir, 'runner.js'), specFile];
    }
    return {
      id: jobId,
      stage: stage.name,
      group: stage.declaredAs,
      key: info.key,
      argv,
      cwd: ws.root,
      env,
      resources,
      gpuIds,
      logFile,
      slurm: stage.slurm,
    };
  };

  const upstreamRuns = async (name: string): Promise<UpstreamRun[]> => {
    const runs: UpstreamRun[] = [];
    for (const up of ancestorsOf(graph, name)) {
      let rec = outcomes.get(up)?.record;
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
        endedAt: rec.endedAt,
      });
    }
    return runs;
  };

  /** After the job: verify deps and outs, store outputs, write the run record. Anything wrong removes the outputs. */
  const commit = async (
    stage: StageSpec,
    info: StageKeyInfo,
    result: JobResult,
    executor: Executor,
    extra: Record<string, unknown>,
    job: Job,
    t0: number,
    reason: string,
  ): Promise<StageOutcome> => {
    const name = stage.name;
    const fail = (status: 'failed' | 'cancelled', why: string): StageOutcome => {
      removeOutputs(stage, ws.root);
      return { stage: name, status, reason: why, durationMs: Date.now() - t0, key: info.key };
    };
    if (result.status === 'cancelled' || signal.aborted) return fail('cancelled', result.status === 'succeeded' ? 'cancelled' : result.reason);
    if (result.status !== 'succeeded') return fail('failed', result.reason);
    // Deps must be what the key says: a dep rewritten mid-run makes the outputs belong to no key.
    const after = await computeKey(stage, ws);
    const changed = stage.deps.filter((d) => after.depHashes[d.path] !== info.depHashes[d.path]).map((d) => d.path);
    if (changed.length > 0) {
      return fail('failed', `dep ${changed.join(', ')} changed while the stage ran; its outputs were discarded (run again)`);
    }
    const missing = stage.outs.filter((o) => !existsSync(absPath(ws.root, o.path))).map((o) => o.path);
    if (missing.length > 0) return fail('failed', `stage ${name} said it writes ${missing.join(', ')} but did not`);
    if (stage.uses !== undefined) {
      const resultFile = join(ws.tmpDir, `${job.id}.result.json`);
      try {
        Object.assign(extra, (JSON.parse(readFileSync(resultFile, 'utf8')) as { extra?: Record<string, unknown> }).extra ?? {});
      } catch {
        // Streamed record lines already collected it.
      }
      rmSync(resultFile, { force: true });
      rmSync(join(ws.tmpDir, `${job.id}.json`), { force: true });
    }
    const stored: StoredOutput[] = [];
    for (const o of stage.outs) if (o.cache) stored.push(await ws.store.put(absPath(ws.root, o.path), o.path));
    const record: RunRecord = {
      key: info.key,
      stage: name,
      fields: info.fields as unknown as Record<string, unknown>,
      outputs: stored,
      startedAt: new Date(result.startedAt).toISOString(),
      endedAt: new Date(result.endedAt).toISOString(),
      durationMs: result.endedAt - result.startedAt,
      host: result.host ?? hostname(),
      executor: executor.name,
      ...(result.jobId ? { jobId: result.jobId } : {}),
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
      pipeVersion: opts.pipeVersion,
    };
    // Same key, different bytes is news, not an overwrite: the first result stays in force (put back here).
    const put = await ws.runs.put(record, { replace: stage.alwaysRun });
    for (const d of put.disagreements) emit({ type: 'warning', stage: name, message: disagreementText(d) });
    if (put.record !== record) await restore(stage, put.record);
    const outputs = await indexedOutputs(stage, ws);
    ws.index.set(name, { key: info.key, outputs });
    lockEntries.set(name, lockEntry(stage, info, outputs));
    return { stage: name, status: 'ran', reason, durationMs: Date.now() - t0, key: info.key, record: put.record };
  };

  for (const name of tracker.initial()) void onReady(name);
  await allDone;
  signal.removeEventListener('abort', onAbort);

  await persist(pipeline, ws, lockEntries);
  const counts = emptyCounts();
  for (const o of outcomes.values()) counts[o.status] += 1;
  const ok = counts.failed === 0 && counts.cancelled === 0 && counts.skipped === 0;
  emit({ type: 'run-end', ok, interrupted: signal.aborted, counts, durationMs: Date.now() - started });
  return { ok, interrupted: signal.aborted, counts, outcomes };
}

/** The lock file's stage entries, parsed on first use (never on a no-op run). */
function lazyLock(pipeline: Pipeline): (stage: string) => Promise<LockStage | undefined> {
  let stages: Promise<Record<string, LockStage>> | undefined;
  return async (stage) => (await (stages ??= readLockAsync(lockPath(pipeline.file)).then((l) => l?.stages ?? {})))[stage];
}

/**
 * Save the hash memo, the index and the lock file (completed stages updated; others kept as they were). The lock
 * file is neither read nor rendered when it is exactly as pipe last wrote it and no entry changed (no-op runs).
 */
async function persist(pipeline: Pipeline, ws: Workspace, entries: Map<string, LockStage>): Promise<void> {
  await ws.state.flush();
  const file = lockPath(pipeline.file);
  const names = new Set(pipeline.stages.map((s) => s.name));
  const meta = ws.index.lock;
  const digests = new Map([...entries].map(([n, e]) => [n, stageDigest(n, e)]));
  if (meta && Object.keys(meta.entries).every((n) => names.has(n)) && [...digests].every(([n, d]) => meta.entries[n] === d)) {
    let st: { size: number; mtimeMs: number } | undefined;
    try {
      st = statSync(file);
    } catch {
      // Deleted: rewrite below.
    }
    if (st && st.size === meta.size && st.mtimeMs === meta.mtimeMs) return ws.index.save();
  }
  const old = await readLockAsync(file);
  const stages: Record<string, LockStage> = {};
  for (const [n, s] of Object.entries(old?.stages ?? {})) if (names.has(n)) stages[n] = s;
  for (const [n, s] of entries) stages[n] = s;
  if (Object.keys(stages).length === 0 && !old) return ws.index.save();
  const lock: LockFile = { schema: 1, pipeline: pipeline.name, stages };
  const st = writeLock(file, lock);
  ws.index.lock = { ...st, entries: Object.fromEntries(Object.entries(stages).map(([n, e]) => [n, digests.get(n) ?? stageDigest(n, e)])) };
  ws.index.save();
}

function lockEntry(stage: StageSpec, info: StageKeyInfo, outputs: IndexedOutput[]): LockStage {
  return {
    key: info.key,
    ...(stage.cmd !== undefined ? { cmd: stage.cmd } : {}),
    ...(stage.uses !== undefined ? { uses: stage.uses, with: stage.with ?? {} } : {}),
    params: stage.params,
    deps: Object.entries(info.depHashes).map(([path, hash]) => ({ path, hash })),
    outs: outputs.map((o) => ({ path: o.path, hash: o.hash, size: o.size, ...(o.path.endsWith('/') ? { files: o.files } : {}) })),
  };
}

async function indexedOutputs(stage: StageSpec, ws: Workspace): Promise<IndexedOutput[]> {
  const now = await hashOutputs(stage, ws);
  return stage.outs.map((o) => {
    const h = now.get(o.path)!;
    return { path: o.path, hash: h.hash, size: h.size, files: h.files };
  });
}

/** Declared outputs must not survive a run that did not complete: stale files could pass as results. */
function removeOutputs(stage: StageSpec, root: string): void {
  for (const o of stage.outs) rmSync(absPath(root, o.path), { recursive: true, force: true });
}

function safeName(stage: string): string {
  return stage.replace(/[^\w.@=,-]/g, '_');
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function parseRunnerLine(line: string): RunnerMessage | undefined {
  try {
    return JSON.parse(line.slice(PIPE_LINE.length)) as RunnerMessage;
  } catch {
    return undefined;
  }
}

/** Chunks → lines (a chunk may end mid-line). */
function lineSplitter(onLine: (line: string) => void): { push: (chunk: string) => void; end: () => void } {
  let buf = '';
  return {
    push: (chunk) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    },
    end: () => {
      if (buf) onLine(buf);
      buf = '';
    },
  };
}

/** The last lines of a log, for failed stages. */
function tail(file: string, lines = 15): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    if (!text) return undefined;
    return text
      .split('\n')
      .filter((l) => !l.startsWith(PIPE_LINE))
      .slice(-lines)
      .join('\n');
  } catch {
    return undefined;
  }
}
