/**
 * `pipe exp run`: each variant runs in its own scratch workspace (engine/scratch.ts) under the workspace's
 * `.pipe/exp/`, sharing the workspace's cache, so nothing of the workspace's own outputs, index, run records or lock
 * file is written.
 *
 *   1. every variant's folder is made afresh and gets copies of the sources its stages read (deps no selected stage
 *      writes), its pipeline files and its params (`<name>.params.yaml`): `pipe run` there computes the variant;
 *   2. the stages every variant has in common — same command, kind, `with:`, params, deps, outs and env, and only
 *      such stages upstream — run (or restore) once, in the first variant's folder;
 *   3. then every variant runs at once, all of them within one resource pool (the machine's `-j`, cpus, memory,
 *      GPUs): their common stages restore from the shared cache, a failure in one variant stops only that one;
 *   4. each variant is recorded (engine/experiments/records.ts): params, per-stage status and key, metrics, timings,
 *      the git commit.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { CacheError } from '../../cache/errors.js';
import { unregisterWorkspace } from '../../cache/registry.js';
import type { Loaded } from '../commands/load.js';
import { appliedParamsPath } from '../dsl/params.js';
import type { Emit } from '../events.js';
import type { GitState } from '../git.js';
import { readOutMetrics } from '../metrics.js';
import type { Pipeline, StageSpec } from '../model.js';
import { runStages, type RunSummary } from '../run.js';
import { ResourcePool, type Machine } from '../scheduler.js';
import { copyInputs, scratchPipeline, sourceDepsOf } from '../scratch.js';
import { openWorkspace, type Workspace } from '../workspace.js';
import type { Executor } from '../executors/executor.js';
import { changedParams, flattenParams, paramsFileText } from './params.js';
import { variantRoot, writeRecord, type VariantRecord } from './records.js';

/** One variant, loaded and selected, ready to run. */
export interface VariantPlan {
  name: string;
  experiment?: string;
  index?: number;
  overrides: Record<string, unknown>;
  /** The pipeline with the variant's params (the workspace's paths: re-rooted when it runs). */
  loaded: Loaded;
  selected: ReadonlySet<string>;
  targets: string[];
}

export interface ExpRunOptions {
  /** The workspace's pipeline, as loaded for this command. */
  workspace: Pipeline;
  /** The pipeline's own params (without `<name>.params.yaml`): what a variant's params file is written against. */
  defaults: Record<string, unknown>;
  variants: VariantPlan[];
  machine: Machine;
  pipeVersion: string;
  signal: AbortSignal;
  kill?: AbortSignal;
  keepGoing: boolean;
  /** The event sink of one variant (or of `shared`, the common stages' run). */
  emitFor(label: string): Emit;
  /** Executors of a run in a workspace; closed when that run ends. */
  executors(p: Pipeline, stages: StageSpec[], pipeDir: string): Promise<{ choose: (s: StageSpec) => Executor; close: () => Promise<void> }>;
  /** Called once every variant's inputs are copied: the workspace may be unlocked from here on. */
  onCopied?: () => Promise<void> | void;
  git?: GitState;
}

export interface ExpRunResult {
  records: VariantRecord[];
  interrupted: boolean;
  /** Why the records could not be written (the experiments folder is no longer pipe's own), when they could not. */
  unrecorded?: string;
}

/** The label of the common stages' run in events and output. */
export const SHARED = 'shared';

interface Prepared {
  plan: VariantPlan;
  root: string;
  pipeline: Pipeline;
  ws: Workspace;
}

export async function runVariants(opts: ExpRunOptions): Promise<ExpRunResult> {
  const real = opts.workspace;
  const prepared: Prepared[] = [];
  for (const plan of opts.variants) prepared.push(await prepare(real, plan, opts.defaults));
  await opts.onCopied?.();
  // Every workspace is opened before anything runs (opening one points the kinds' memo at it).
  for (const p of prepared) p.ws = await openWorkspace(p.pipeline);

  const pool = new ResourcePool(opts.machine);
  const common = prepared.length > 1 ? commonStages(opts.variants) : new Set<string>();
  let sharedFailure: string | undefined;
  if (common.size > 0) {
    const first = prepared[0]!;
    const summary = await runOne(first, common, SHARED, pool, opts);
    const bad = [...summary.outcomes.values()].find((o) => o.status !== 'ran' && o.status !== 'restored' && o.status !== 'up-to-date');
    if (summary.interrupted) sharedFailure = 'interrupted';
    else if (bad) sharedFailure = `stage ${bad.stage}, common to every variant, ${bad.status === 'failed' ? `failed: ${bad.reason}` : `did not complete (${bad.reason})`}`;
  }

  const records = await Promise.all(
    prepared.map(async (p) => {
      const startedAt = Date.now();
      if (sharedFailure) return record(p, opts, { startedAt, failure: sharedFailure });
      const summary = await runOne(p, p.plan.selected, p.plan.name, pool, opts);
      return record(p, opts, { startedAt, summary });
    }),
  );
  // Every variant is recorded, a cancelled one too: its folder was made afresh, so an older record would describe
  // outputs that are no longer there.
  for (const r of records) {
    try {
      writeRecord(real, r);
    } catch (e) {
      if (!(e instanceof CacheError && e.code === 'not-own-folder')) throw e;
      return { records, interrupted: opts.signal.aborted, unrecorded: e.message };
    }
  }
  return { records, interrupted: opts.signal.aborted };
}

/**
 * A fresh scratch workspace for the variant: the folder of an earlier run of it is forgotten by the cache's
 * registry and deleted; the sources its stages read are copied in, with the pipeline's files and its params file.
 */
async function prepare(real: Pipeline, plan: VariantPlan, defaults: Record<string, unknown>): Promise<Prepared> {
  const root = variantRoot(real, plan.name);
  await unregisterWorkspace(real.settings.cacheDir, join(root, '.pipe'));
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const stages = plan.loaded.pipeline.stages.filter((s) => plan.selected.has(s.name));
  copyInputs(real.workdir, sourceDepsOf(stages), root);
  const pipeline = scratchPipeline(plan.loaded.pipeline, root, { cacheDir: plan.loaded.pipeline.settings.cacheDir });
  mkdirSync(dirname(pipeline.file), { recursive: true });
  // Its definition, so that `pipe run` inside the folder is this variant: the YAML files, and its params.
  for (const f of [real.file, ...real.sourceFiles]) {
    const rel = relative(real.workdir, f);
    if (rel.startsWith('..') || isAbsolute(rel) || !existsSync(f) || f === appliedParamsPath(real.file)) continue;
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    try {
      copyFileSync(f, join(root, rel));
    } catch {
      // A folder (an include glob's): its files are listed too.
    }
  }
  const changed = changedParams(flattenParams(plan.loaded.pipeline.params), flattenParams(defaults));
  if (Object.keys(changed).length > 0) {
    writeFileSync(appliedParamsPath(pipeline.file), paramsFileText(`Written by \`pipe exp run\`: the params of variant ${plan.name} over the pipeline's own.`, changed));
  }
  return { plan, root, pipeline, ws: undefined as unknown as Workspace };
}

/**
 * Stages with the same definition in every variant, selected in each, whose upstream stages are all common too:
 * their keys are equal everywhere, so one run serves every variant.
 */
export function commonStages(variants: readonly VariantPlan[]): Set<string> {
  const maps = variants.map((v) => new Map(v.loaded.pipeline.stages.map((s) => [s.name, s])));
  const common = new Set<string>();
  for (const name of variants[0]!.loaded.graph.order) {
    if (!variants.every((v) => v.selected.has(name))) continue;
    const id = definition(maps[0]!.get(name)!);
    if (!maps.every((m) => m.has(name) && definition(m.get(name)!) === id)) continue;
    if (!variants.every((v) => v.loaded.graph.predecessors(name).every((u) => common.has(u)))) continue;
    common.add(name);
  }
  return common;
}

/** What a stage's key is made of, as far as the definition says (dep contents come from upstream: compared there). */
function definition(s: StageSpec): string {
  return JSON.stringify([s.cmd, s.uses, s.with, s.params, s.deps.map((d) => d.path), s.outs.map((o) => [o.path, o.cache]), s.env, s.alwaysRun]);
}

async function runOne(p: Prepared, selected: ReadonlySet<string>, label: string, pool: ResourcePool, opts: ExpRunOptions): Promise<RunSummary> {
  const stages = p.pipeline.stages.filter((s) => selected.has(s.name));
  const executors = await opts.executors(p.pipeline, stages, p.ws.pipeDir);
  try {
    return await runStages({
      pipeline: p.pipeline,
      graph: p.plan.loaded.graph,
      workspace: p.ws,
      selected,
      emit: opts.emitFor(label),
      pipeVersion: opts.pipeVersion,
      machine: opts.machine,
      pool,
      executorFor: executors.choose,
      signal: opts.signal,
      ...(opts.kill ? { kill: opts.kill } : {}),
      keepGoing: opts.keepGoing,
    });
  } finally {
    await executors.close();
  }
}

function record(p: Prepared, opts: ExpRunOptions, r: { startedAt: number; summary?: RunSummary; failure?: string }): VariantRecord {
  const ended = Date.now();
  const stages: VariantRecord['stages'] = {};
  let status: VariantRecord['status'] = 'ok';
  let reason = r.failure;
  if (r.failure) status = r.failure === 'interrupted' ? 'cancelled' : 'failed';
  for (const o of r.summary?.outcomes.values() ?? []) {
    stages[o.stage] = { status: o.status, durationMs: o.durationMs, ...(o.key ? { key: o.key } : {}), ...(o.status === 'failed' ? { reason: o.reason } : {}) };
    if (status === 'ok' && (o.status === 'failed' || o.status === 'cancelled')) {
      status = o.status;
      reason = `stage ${o.stage} ${o.status === 'failed' ? 'failed' : 'was cancelled'}: ${o.reason}`;
    }
  }
  if (status === 'ok' && r.summary && !r.summary.ok) {
    status = r.summary.interrupted ? 'cancelled' : 'failed';
    reason ??= r.summary.interrupted ? 'interrupted' : 'the run could not save its results';
  }
  const metrics: VariantRecord['metrics'] = {};
  if (status === 'ok') {
    for (const s of p.pipeline.stages) {
      if (!p.plan.selected.has(s.name)) continue;
      for (const o of s.outs) {
        if (!o.metric || o.path.endsWith('/')) continue;
        const m = readOutMetrics(p.ws.outs, p.root, o.path);
        if ('metrics' in m) metrics[o.path] = m.metrics;
      }
    }
  }
  return {
    version: 1,
    name: p.plan.name,
    ...(p.plan.experiment !== undefined ? { experiment: p.plan.experiment } : {}),
    ...(p.plan.index !== undefined ? { index: p.plan.index } : {}),
    overrides: p.plan.overrides,
    params: flattenParams(p.plan.loaded.pipeline.params),
    targets: p.plan.targets,
    status,
    ...(reason !== undefined ? { reason } : {}),
    stages,
    metrics,
    startedAt: new Date(r.startedAt).toISOString(),
    endedAt: new Date(ended).toISOString(),
    durationMs: ended - r.startedAt,
    ...(opts.git ? { git: opts.git } : {}),
    host: hostname(),
    pipeVersion: opts.pipeVersion,
    root: p.root,
  };
}
