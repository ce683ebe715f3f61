/**
 * Shared by every command: load and validate a pipeline (DSL), build its DAG, and turn diagnostics into exit code 2.
 */
import { existsSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { absPath } from '../../cache/paths.js';
import { formatDiagnostic, type Diagnostic } from '../dsl/diagnostics.js';
import { buildDag, outIndexOf, predecessorsOf, selectTargets, type Dag } from '../graph.js';
import { findKindManifests, knownKinds, loadKinds, resolveKind } from '../kinds.js';
import { readCachedPipeline, writeCachedPipeline, type CacheInputs, type DiskProbes } from './pipeline-cache.js';
import type { OutSpec, Pipeline, StageSpec } from '../model.js';
import type { ParsedFiles } from '../dsl/files.js';
import { isLinkNow } from '../dsl/paths.js';
import type { StageGraph } from '../run.js';
import { UsageError } from './errors.js';
import { OutPolicy } from '../out-policy.js';
import { pipeDirOf } from '../workspace.js';

export interface Loaded {
  pipeline: Pipeline;
  /** The DSL's warnings (already rendered). */
  warnings: string[];
  dag: Dag;
  graph: StageGraph;
}

export interface LoadOptions {
  overrides?: string[];
  paramsFiles?: string[];
  /** false: ignore `<name>.params.yaml` (what `pipe exp apply` wrote): the pipeline's own params. */
  appliedParams?: boolean;
  /**
   * false: a one-off load (an experiment's variant) reads the validated-pipeline cache but writes no entry: a sweep
   * of 1,000 variants would otherwise push every other pipeline's entry out of the cache's bound.
   */
  cacheWrite?: boolean;
  /**
   * The files read and parsed by this command's other loads (engine/dsl/files.ts ParsedFiles): `pipe exp run`
   * passes one to every variant's load, so each variant is expanded and validated over the same parsed files.
   */
  parsed?: ParsedFiles;
}

/** Throws DiagnosticsError (exit 2) for an invalid pipeline. */
export async function loadAll(file: string, opts: LoadOptions = {}): Promise<Loaded> {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new UsageError(`pipeline file ${file} does not exist`);
  const inputs: CacheInputs = {
    file: abs,
    overrides: opts.overrides ?? [],
    paramsFiles: (opts.paramsFiles ?? []).map((f) => resolve(f)),
    manifests: findKindManifests(),
    ...(opts.appliedParams === false ? { appliedParams: false } : {}),
  };
  let cached = readCachedPipeline(inputs);
  if (!cached) {
    // The DSL (and the yaml parser) load only on a cache miss; so do the kinds' manifests, unless a stage uses one.
    await loadKinds();
    const { loadPipeline, pipelineWarnings } = await import('../dsl/pipeline.js');
    const probes: DiskProbes = { exists: {}, links: {} };
    const loaded = await loadPipeline(abs, {
      overrides: inputs.overrides,
      paramsFiles: inputs.paramsFiles,
      resolveKind,
      knownKinds,
      fileExists: (p: string) => (probes.exists[p] = existsSync(p)),
      isLink: (p: string) => (probes.links![p] = isLinkNow(p)),
      ...(opts.appliedParams === false ? { appliedParams: false } : {}),
      ...(opts.parsed ? { parsed: opts.parsed } : {}),
    });
    if (!loaded.ok) throw new DiagnosticsError(loaded.error);
    cached = { pipeline: loaded.value, warnings: pipelineWarnings(loaded.value) };
    if (opts.cacheWrite !== false) writeCachedPipeline(inputs, loaded.value, cached.warnings, probes);
  }
  const pipeline = cached.pipeline;
  // A `uses` stage's key and dispatch need its kind's manifest and folder.
  if (pipeline.stages.some((s) => s.uses !== undefined)) await loadKinds();
  const dag = buildDag(pipeline);
  if (!dag.ok) throw new DiagnosticsError(dag.error);
  const policy = OutPolicy.of(pipeline, pipeDirOf(pipeline));
  const refused = refusedOuts(pipeline, policy);
  if (refused.length > 0) throw new DiagnosticsError(refused);
  const hidden = depsThroughLinks(pipeline, policy);
  if (hidden.length > 0) throw new DiagnosticsError(hidden);
  return { pipeline, warnings: (cached.warnings as Diagnostic[]).map((d) => formatDiagnostic(d)), dag: dag.value, graph: stageGraph(dag.value) };
}

/**
 * Outs the path policy refuses as the disk is now (engine/out-policy.ts): an out under a link that leaves the
 * workspace, or on `.pipe/`, the cache, the pipeline's own files. Located, at load time; the engine checks again
 * before touching anything (a stage may create such a link while the pipeline runs).
 */
export function refusedOuts(pipeline: Pipeline, policy: OutPolicy): Diagnostic[] {
  const out: Diagnostic[] = [];
  const placed: Placed[] = [];
  for (const s of pipeline.stages) {
    for (const o of s.outs) {
      const r = policy.placeOrRefusal(o.path);
      if ('refusal' in r) out.push({ severity: 'error', message: r.refusal.reason, span: o.span ?? s.span, stage: s.name, field: 'outs' });
      else placed.push({ stage: s, out: o, parts: r.place.split(sep) });
    }
  }
  if (out.length === 0) out.push(...overlapsThroughLinks(placed, policy));
  return out;
}

interface Placed {
  stage: StageSpec;
  out: OutSpec;
  /** Where it lands on disk, as path components. */
  parts: string[];
}

/**
 * Outs of two stages that land in one place, or one inside the other's directory, through a link (`L/x.txt` with
 * `L -> d`, and `d/`): the DSL's check compares paths as written. Each stage would delete or hash the other's
 * result, and the two would restore over each other on every run.
 */
function overlapsThroughLinks(placed: Placed[], policy: OutPolicy): Diagnostic[] {
  const cmp = (a: string[], b: string[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return a.length - b.length;
  };
  const under = (outer: string[], p: string[]): boolean => outer.length <= p.length && outer.every((x, i) => x === p[i]);
  placed.sort((a, b) => cmp(a.parts, b.parts));
  const out: Diagnostic[] = [];
  const open: Placed[] = [];
  for (const p of placed) {
    while (open.length > 0 && !under(open[open.length - 1]!.parts, p.parts)) open.pop();
    const owner = open[open.length - 1];
    if (owner && owner.stage.name !== p.stage.name) {
      const where = policy.shown(p.parts.join(sep));
      const same = owner.parts.length === p.parts.length;
      out.push({
        severity: 'error',
        message:
          `out ${p.out.path} resolves (through a symbolic link) to ${where}, ${same ? 'which' : `inside ${owner.out.path}, which`} stage \`${owner.stage.name}\` ` +
          `also writes: one stage owns a path and all that is in it (each would delete or overwrite the other's result)`,
        span: p.out.span ?? p.stage.span,
        stage: p.stage.name,
        field: 'outs',
      });
    }
    open.push(p);
  }
  return out;
}

/**
 * Deps that reach another stage's out through a symbolic link, as the disk is now: `link/a.txt` with `link -> out`,
 * a link `alias.txt -> out/a.txt`, an absolute path through a link to the workspace. The DAG matches paths as
 * written, so such a reader would have no edge to the writer: it could run before it, or be decided up to date on
 * the old content while the writer rewrites it (a stale result, exit 0). Refused, located, naming both stages and
 * the path to write instead. Only deps no stage writes as written are resolved (OutPolicy.leadsTo: each folder
 * holding them listed once for links, and its real path found once). Links met inside dep folders are checked when
 * the reader is decided (engine/run/dep-links.ts).
 */
export function depsThroughLinks(pipeline: Pipeline, policy: OutPolicy): Diagnostic[] {
  const index = outIndexOf(pipeline);
  if (index.size === 0) return [];
  /** Dep path → where it lands, workspace-relative, when a link takes it elsewhere inside the workspace. */
  const landings = new Map<string, string | undefined>();
  const landing = (dep: string): string | undefined => {
    if (landings.has(dep)) return landings.get(dep);
    const abs = absPath(pipeline.workdir, dep);
    const real = policy.leadsTo(abs);
    if (real === abs) {
      // No link on the way (the usual case): the dep is where it is written.
      landings.set(dep, undefined);
      return undefined;
    }
    const rel = policy.relInside(real);
    const r = rel !== undefined && rel !== relative(pipeline.workdir, abs).split(sep).join('/') ? rel : undefined;
    landings.set(dep, r);
    return r;
  };
  const out: Diagnostic[] = [];
  for (const s of pipeline.stages) {
    for (const d of s.deps) {
      if (index.producersOf(d.path).length > 0) continue;
      const rel = landing(d.path);
      if (rel === undefined) continue;
      const writers = index.producersOf(rel).filter((o) => o.stage !== s.name);
      if (writers.length === 0) continue;
      const named = [...new Set(writers.map((o) => `\`${o.stage}\` (${o.path})`))].join(', ');
      const write = d.path.endsWith('/') ? `${rel}/` : rel;
      out.push({
        severity: 'error',
        message:
          `dep \`${d.path}\` reaches \`${write}\` through a symbolic link, and ${writers.length > 1 ? 'stages' : 'stage'} ${named} ${writers.length > 1 ? 'write' : 'writes'} there: ` +
          `pipe orders stages by paths as written, so \`${s.name}\` could run before its writer or keep a result computed from the old content; ` +
          `write the dep as \`${write}\``,
        span: d.span ?? s.span,
        stage: s.name,
        field: 'deps',
      });
    }
  }
  return out;
}

export function stageGraph(dag: Dag): StageGraph {
  // The adjacency the DAG keeps itself: materialising graphlib's Graph costs more than the rest of a no-op load.
  return { order: dag.order, predecessors: (s) => predecessorsOf(dag, s) };
}

/** Targets (names or globs) → the stages to consider; all stages when none are given. */
export function selectStages(l: Loaded, targets: string[], downstream: boolean): Set<string> {
  const r = selectTargets(l.dag, l.pipeline, targets, { downstream });
  if (!r.ok) throw new DiagnosticsError(r.error);
  return r.value;
}

export class DiagnosticsError extends Error {
  readonly formatted: string[];
  constructor(readonly diagnostics: Diagnostic[]) {
    super(`${diagnostics.length} problem(s) in the pipeline`);
    this.formatted = diagnostics.map((d) => formatDiagnostic(d));
  }
}
