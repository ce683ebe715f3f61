/**
 * Decide: what happens to a stage once everything it waits for has ended — skipped (an upstream did not complete, or
 * the run is stopping), up to date, restored, or run and why (engine/plan.ts `decide`). Also `planStages`: the same
 * decisions for every selected stage without running anything (`--dry-run`, `pipe status`, `pipe why`).
 */
import type { Hash } from '../../cache/types.js';
import { CacheError } from '../../cache/errors.js';
import { outPathKey } from '../../cache/paths.js';
import { lockPath, readLockAsync, wellFormedStages, type LockStage } from '../lockfile.js';
import type { Pipeline } from '../model.js';
import { decide, DepMemo, type Decision, type StageKeyInfo } from '../plan.js';
import type { StageSpec } from '../model.js';
import type { Workspace } from '../workspace.js';
import { planEvent, type Emit, type EndCode, type Reason } from '../events.js';
import type { StageOutcome } from './report.js';
import { DepLinks } from './dep-links.js';
import { fewNamed } from '../why.js';

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

const NO_STAGES: string[] = Object.freeze([]) as unknown as string[];

/** At most this many plan decisions in flight: 100,000 concurrent ones would hold 100,000 pending reads in memory. */
const PLAN_CONCURRENCY = 64;

/** Each selected stage's nearest selected ancestors (through unselected stages): what it must wait for. */
export function waitsForOf(graph: StageGraph, selected: ReadonlySet<string>): (s: string) => string[] {
  const memo = new Map<string, string[]>();
  const walk = (s: string): string[] => {
    let r = memo.get(s);
    if (r) return r;
    if (graph.predecessors(s).length === 0) return NO_STAGES; // most stages of a wide matrix: no Set, no array, no memo entry
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
export function ancestorsOf(graph: StageGraph, stage: string): string[] {
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

/**
 * Why a stage cannot start because of what it waits for, or undefined. Names the root cause (the failed stage), not
 * a skipped stage in between.
 */
export function upstreamBlock(waitsFor: readonly string[], outcomeOf: (stage: string) => StageOutcome | undefined): Reason<EndCode> | undefined {
  const bad = waitsFor.find((u) => {
    const s = outcomeOf(u)?.status;
    return s === 'failed' || s === 'cancelled' || s === 'skipped';
  });
  if (!bad) return undefined;
  const up = outcomeOf(bad)!;
  if (up.status === 'failed') return { code: 'upstream-failed', text: `upstream stage ${bad} failed` };
  if (up.code === 'upstream-failed' || up.code === 'upstream-incomplete') return { code: up.code, text: up.reason };
  return { code: 'upstream-incomplete', text: `upstream stage ${bad} did not complete` };
}

/** Deps that do not exist (a stage cannot run without them), or an empty list. */
export function missingDeps(stage: StageSpec, info: StageKeyInfo): string[] {
  return stage.deps.filter((dep) => info.depHashes[dep.path] === null).map((dep) => dep.path);
}

/** The failure reason for missing deps, naming the stage that produces the first one when there is one. */
export function missingDepsReason(pipeline: Pipeline, missing: readonly string[]): string {
  const first = missing[0]!;
  const dep = outPathKey(first);
  const p = pipeline.stages.find((s) => s.outs.some((o) => outPathKey(o.path) === dep || dep.startsWith(`${outPathKey(o.path)}/`)));
  return `dep ${missing.join(', ')} does not exist${p ? ` (stage ${p.name} produces it: run it first or select it)` : ''}`;
}

/** The lock file's stage entries, parsed on first use (never on a no-op run). */
export function lazyLock(pipeline: Pipeline): (stage: string) => Promise<LockStage | undefined> {
  let stages: Promise<Record<string, LockStage>> | undefined;
  return async (stage) => (await (stages ??= readLockAsync(lockPath(pipeline.file)).then(wellFormedStages)))[stage];
}

/** "upstream stage a will be restored first; its deps are known then". */
function restoredFirst(stages: readonly string[]): string {
  return `upstream stage${stages.length > 1 ? 's' : ''} ${fewNamed(stages)} will be restored first; its deps are known then`;
}

/**
 * The outputs a plan would restore, to say which deps it cannot hash yet. A dep that is a restored out (in any
 * spelling: `o` for `o/`) is known from the record; one inside a restored folder (`o/x`) or a folder holding a
 * restored out (`parts/` of `parts/1.csv`) is on disk as it was before the restore, so a plan that hashed it there
 * would decide on bytes the run will have replaced (a stage called up to date that the run then restores or runs).
 * Lookups walk a dep's ancestors, never the list of outs: a plan of 100,000 stages stays linear.
 */
class RestoredOuts {
  /** Restored out (outPathKey) → the stage restoring it. */
  private readonly outs = new Map<string, string>();
  /** Each folder above a restored out → the stages restoring something below it. */
  private readonly above = new Map<string, Set<string>>();

  add(out: string, stage: string): void {
    this.outs.set(out, stage);
    for (let i = out.lastIndexOf('/'); i > 0; i = out.lastIndexOf('/', i - 1)) {
      const dir = out.slice(0, i);
      let by = this.above.get(dir);
      if (!by) this.above.set(dir, (by = new Set()));
      by.add(stage);
    }
  }

  /** The stages restoring something strictly inside or around one of `stage`'s deps (none, usually). */
  around(stage: StageSpec): readonly string[] {
    if (this.outs.size === 0) return NO_STAGES;
    const found = new Set<string>();
    for (const dep of stage.deps) {
      const key = outPathKey(dep.path);
      for (const s of this.above.get(key) ?? []) found.add(s);
      for (let i = key.lastIndexOf('/'); i > 0; i = key.lastIndexOf('/', i - 1)) {
        const s = this.outs.get(key.slice(0, i));
        if (s !== undefined) found.add(s);
      }
    }
    return found.size === 0 ? NO_STAGES : [...found];
  }
}

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
  // The outputs upstream stages would restore: their recorded hashes stand in for the disk (by outPathKey), and a dep
  // inside or around one of them is known only after the restore (RestoredOuts).
  const known = new Map<string, Hash>();
  const restored = new RestoredOuts();
  const lockOf = lazyLock(pipeline);
  const memo = new DepMemo(ws, { planOnly: true });
  const depLinks = new DepLinks(pipeline, ws, (s) => new Set(ancestorsOf(graph, s)));
  const done = new Map<string, Promise<void>>();
  const decideOne = async (name: string): Promise<void> => {
    const ups = waitsFor(name);
    if (ups.length > 0) await Promise.all(ups.map((u) => done.get(u)));
    const stage = byName.get(name)!;
    const running = ups.filter((u) => decisions.get(u)?.action === 'run');
    const restoring = running.length === 0 && !opts.force?.(name) ? restored.around(stage) : NO_STAGES;
    let d: Decision;
    const refused = ws.outs.checkStage(stage);
    if (refused) d = { action: 'run', reasons: [{ code: 'out-refused', text: `refused: ${refused.reason}` }], changes: [] };
    else if (running.length > 0 && !opts.force?.(name)) {
      d = { action: 'run', reasons: [{ code: 'upstream-will-run', text: `upstream stage${running.length > 1 ? 's' : ''} ${fewNamed(running)} will re-run` }], changes: [] };
    } else if (restoring.length > 0) {
      d = { action: 'run', reasons: [{ code: 'upstream-will-run', text: restoredFirst(restoring) }], changes: [] };
    } else {
      // A link in a dep folder into an out not upstream: said as a refusal, as the run would refuse it.
      const refusedBy = (r: Reason<EndCode>): Decision => ({ action: 'run', reasons: [{ code: 'dep-through-link', text: `refused: ${r.text}` }], changes: [] });
      d = await decide(stage, ws, { force: opts.force?.(name) ?? false, known, lockEntry: lockOf, memo }).then(
        (d) => {
          const linked = d.info?.depLinks && depLinks.refusal(stage, d.info.depLinks);
          return linked ? refusedBy(linked) : d;
        },
        (e: unknown) => {
          const linked = depLinks.brokenLink(stage, e);
          if (linked) return refusedBy(linked);
          if (!(e instanceof CacheError)) throw e;
          // A dep as it is on disk cannot be hashed (a broken link, a cycle, a FIFO): a restore upstream may put
          // the missing target back first; else the run fails with these words, and the plan says so.
          const restoring = ancestorsOf(graph, name).filter((u) => decisions.get(u)?.action === 'restore');
          if (restoring.length > 0) return { action: 'run', reasons: [{ code: 'upstream-will-run', text: restoredFirst(restoring) }], changes: [] };
          return { action: 'run', reasons: [{ code: 'dep-unreadable', text: `will fail: ${e.message}` }], changes: [] };
        },
      );
    }
    if (d.action === 'restore') {
      // The outs it declares: a restore writes nothing else, whatever else a record names.
      const declared = new Set(stage.outs.map((o) => outPathKey(o.path)));
      for (const o of d.record.outputs) {
        const path = outPathKey(o.path);
        if (!declared.has(path)) continue;
        known.set(path, o.hash);
        restored.add(path, name);
      }
    }
    decisions.set(name, d);
    // Plan events go out in the pipeline's topological order (a listing diffs the same every time), each as soon as
    // it and every stage before it are decided: decisions finish in whatever order their reads do.
    for (; emitted < order.length && decisions.has(order[emitted]!); emitted++) {
      const n = order[emitted]!;
      const e = decisions.get(n)!;
      opts.emit(planEvent(n, e.action, e.reasons, e.info?.key));
    }
  };
  let emitted = 0;
  // A pool of workers taking stages in topological order: every upstream stage was started before (its promise is
  // in `done` until it is decided), and only PLAN_CONCURRENCY decisions are in flight at once.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < order.length) {
      const name = order[next++]!;
      const p = decideOne(name);
      done.set(name, p);
      await p;
      done.delete(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PLAN_CONCURRENCY, order.length) }, worker));
  await ws.state.flush();
  return new Map(order.map((n) => [n, decisions.get(n)!]));
}
