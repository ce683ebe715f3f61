/**
 * Scratch workspaces: a pipeline re-rooted in another folder, with copies of the inputs it reads from the real
 * workspace. `pipe verify` re-runs recorded stages in one (its own cache: it compares, never records);
 * `pipe exp run` runs each experiment variant in one (the workspace's cache, shared: common stages restore).
 * Either way nothing is written to the workspace: the copies share no inode with it.
 */
import { constants, cpSync, existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { outPathKey } from '../cache/paths.js';
import type { Pipeline, StageSpec } from './model.js';

/**
 * Copy `paths` (workspace-relative; absolute ones are read where they are) from `workdir` into `scratch`: links
 * followed (a dep hashes as what it points to), directories whole, a path inside a directory already copied once.
 * Copies, never links (a copy-on-write clone where the filesystem has them): a stage writing its input in place in
 * the scratch cannot reach the workspace. Missing paths are skipped (the stage that needs one says so).
 */
export function copyInputs(workdir: string, paths: Iterable<string>, scratch: string): void {
  const rels = [...new Set([...paths].map(outPathKey).filter((p) => !isAbsolute(p)))].sort();
  let lastDir: string | undefined;
  for (const rel of rels) {
    if (lastDir !== undefined && rel.startsWith(`${lastDir}/`)) continue;
    const src = join(workdir, rel);
    if (!existsSync(src)) continue;
    const dst = join(scratch, rel);
    mkdirSync(dirname(dst), { recursive: true });
    cpSync(src, dst, { recursive: true, dereference: true, force: true, preserveTimestamps: true, mode: constants.COPYFILE_FICLONE });
    lastDir = rel;
  }
}

/** Every dep of the stages (what `pipe verify` copies: the recorded outputs of upstream stages included). */
export function depsOf(stages: readonly StageSpec[]): string[] {
  return stages.flatMap((s) => s.deps.map((d) => d.path));
}

/**
 * Deps of the stages that none of them writes: the sources a scratch run needs from the workspace (what the stages
 * write is run or restored from the cache there).
 */
export function sourceDepsOf(stages: readonly StageSpec[]): string[] {
  const written = stages.flatMap((s) => s.outs.map((o) => outPathKey(o.path)));
  const producedBy = (p: string): boolean => written.some((o) => p === o || p.startsWith(`${o}/`));
  return depsOf(stages).filter((d) => !producedBy(outPathKey(d)));
}

export interface ScratchOptions {
  /** The cache the scratch uses: its own (`pipe verify`), or the workspace's, shared. Default: its own. */
  cacheDir?: string;
  /** Restore modes; default the pipeline's. */
  restore?: Pipeline['settings']['restore'];
}

/**
 * The pipeline as it runs in `scratch`: its workspace and `.pipe/` there, the YAML (and so its lock file) at the
 * same place relative to the workspace, and no source files (nothing to watch or protect there).
 */
export function scratchPipeline(p: Pipeline, scratch: string, opts: ScratchOptions = {}): Pipeline {
  const rel = relative(p.workdir, p.file);
  const file = rel.startsWith('..') || isAbsolute(rel) ? join(scratch, basename(p.file)) : join(scratch, rel);
  return {
    ...p,
    file,
    workdir: scratch,
    sourceFiles: [],
    settings: { ...p.settings, cacheDir: opts.cacheDir ?? join(scratch, '.pipe', 'cache'), restore: opts.restore ?? p.settings.restore },
  };
}

/** Which field of a stage spells out the workspace's absolute path, if any (run elsewhere, it would write there). */
export function namesWorkspace(stage: StageSpec, workdir: string): string | undefined {
  // The path itself, not a sibling that starts with its characters (`/data/ws.log` beside the workspace `/data/ws`):
  // what follows it must not continue a file name.
  const re = new RegExp(`${workdir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.\\-])`);
  if (stage.cmd !== undefined && re.test(stage.cmd)) return 'command';
  if (Object.values(stage.env).some((v) => re.test(v))) return 'env';
  if (re.test(JSON.stringify(stage.with ?? {}))) return '`with:`';
  return undefined;
}
