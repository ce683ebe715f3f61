/**
 * What watch mode watches, what it never watches, and which stages a set of changed paths makes stale. Pure
 * functions of the pipeline: no disk, no clock.
 *
 * Watched: every dep of the selected stages that no stage produces, the pipeline's source files (YAML, includes,
 * params files) and the implementation folders of the `uses` kinds. Never watched: any stage's declared outputs,
 * the workspace's `.pipe/`, the cache directory and the lock file — the engine writes those, and watching them would
 * make every cycle start the next one.
 */
import { isAbsolute, join, relative, sep } from 'node:path';
import { lockPath } from '../lockfile.js';
import type { Pipeline, StageSpec } from '../model.js';

export interface WatchTargets {
  /** Absolute paths watched as single files (a path that turns out to be a directory is watched as a tree). */
  files: string[];
  /** Absolute directory trees watched recursively. */
  trees: string[];
}

/** A workspace-relative path without its trailing slash. */
export function bare(rel: string): string {
  return rel.endsWith('/') ? rel.slice(0, -1) : rel;
}

/** `a` is `b` or inside it (both workspace-relative or both absolute, no trailing slashes). */
export function within(a: string, b: string): boolean {
  return a === b || b === '' || b === '.' || a.startsWith(`${b}/`);
}

/** Absolute path of a workspace-relative one. */
export function absOf(root: string, rel: string): string {
  const b = bare(rel);
  return isAbsolute(b) ? b : join(root, b);
}

/** Workspace-relative, `/`-separated (paths outside the workspace stay absolute). */
export function relOf(root: string, abs: string): string {
  const r = relative(root, abs);
  if (r === '') return '.';
  if (r.startsWith('..') || isAbsolute(r)) return abs;
  return r.split(sep).join('/');
}

/** Every declared output of every stage (workspace-relative, bare): produced by the pipeline, never watched. */
export function producedPaths(p: Pipeline): string[] {
  return p.stages.flatMap((s) => s.outs.map((o) => bare(o.path)));
}

/** The absolute paths the watcher ignores (see ignoredPaths). */
function ignoredRoots(p: Pipeline): string[] {
  const outs = producedPaths(p).map((o) => absOf(p.workdir, o));
  const fixed = [join(p.workdir, '.pipe'), p.settings.cacheDir, lockPath(p.file)].map((x) => (x.endsWith(sep) ? x.slice(0, -1) : x));
  return [...fixed, ...outs];
}

/**
 * The watched folder trees whose hash may be kept incrementally from the watcher's events: those with nothing
 * ignored inside them (an output or the cache in a dep folder changes without an event reaching its hash).
 */
export function trackableTrees(p: Pipeline, trees: readonly string[]): string[] {
  const ignored = ignoredRoots(p);
  return trees.filter((t) => !ignored.some((x) => x !== t && within(x, t)));
}

/**
 * The predicate that keeps the engine's own writes out of the watcher: outputs, `.pipe/`, the cache directory,
 * the lock file. Takes absolute paths.
 */
export function ignoredPaths(p: Pipeline): (abs: string) => boolean {
  const all = ignoredRoots(p);
  return (abs) => {
    const a = abs.endsWith(sep) && abs.length > 1 ? abs.slice(0, -1) : abs;
    return all.some((x) => within(a, x));
  };
}

/**
 * The watch list for the selected stages. `codeDirs(kind)` gives a `uses` kind's implementation folders (absolute):
 * editing a stage kind re-runs the stages using it.
 */
export function watchTargets(p: Pipeline, selected: ReadonlySet<string>, codeDirs: (kind: string) => string[]): WatchTargets {
  const produced = producedPaths(p);
  const ignore = ignoredPaths(p);
  const files = new Set<string>(p.sourceFiles);
  const trees = new Set<string>();
  for (const s of p.stages) {
    if (!selected.has(s.name)) continue;
    for (const d of s.deps) {
      const rel = bare(d.path);
      // An upstream stage's output (or something inside one) changes only when the engine writes it.
      if (produced.some((o) => within(rel, o))) continue;
      const abs = absOf(p.workdir, rel);
      if (ignore(abs)) continue;
      if (d.path.endsWith('/')) trees.add(abs);
      else files.add(abs);
    }
    if (s.uses) for (const dir of codeDirs(s.uses)) trees.add(dir);
  }
  // A file inside a watched tree needs no watcher of its own.
  const treeList = [...trees].filter((t) => ![...trees].some((u) => u !== t && within(t, u)));
  return { files: [...files].filter((f) => !treeList.some((t) => within(f, t))), trees: treeList };
}

/** What of a stage decides its outputs (the key's inputs bar dep contents): compared across a YAML reload. */
export function stageSignature(s: StageSpec): string {
  return JSON.stringify([s.cmd, s.uses, s.with, s.deps.map((d) => d.path), s.outs.map((o) => [o.path, o.cache]), s.params, s.env, s.alwaysRun]);
}

/**
 * Stages a change touches directly: a changed dep (a file, or anything inside a dep directory, or a directory
 * holding a dep), a changed implementation folder, or — across a reload — a changed definition.
 * `changed` are workspace-relative (or absolute outside the workspace), `codeDirs` absolute.
 */
export function touchedStages(
  p: Pipeline,
  changed: readonly string[],
  codeDirs: (kind: string) => string[],
  previous?: Pipeline,
): Set<string> {
  const out = new Set<string>();
  const bareChanged = changed.map(bare);
  const absChanged = bareChanged.map((c) => absOf(p.workdir, c));
  for (const s of p.stages) {
    const hit =
      s.deps.some((d) => {
        const dep = bare(d.path);
        return bareChanged.some((c) => within(c, dep) || within(dep, c));
      }) || (s.uses !== undefined && codeDirs(s.uses).some((dir) => absChanged.some((c) => within(c, dir))));
    if (hit) out.add(s.name);
  }
  if (previous) {
    const before = new Map(previous.stages.map((s) => [s.name, stageSignature(s)]));
    for (const s of p.stages) if (before.get(s.name) !== stageSignature(s)) out.add(s.name);
    const now = new Set(p.stages.map((s) => s.name));
    for (const name of before.keys()) if (!now.has(name)) out.add(name);
  }
  return out;
}

/** `names` and everything downstream of them, following `successors`. */
export function withDownstream(names: Iterable<string>, successors: (s: string) => readonly string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...names];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    stack.push(...successors(s));
  }
  return seen;
}
