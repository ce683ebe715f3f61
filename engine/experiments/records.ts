/**
 * Where experiments live and what is remembered of each variant.
 *
 *   <ws>/.pipe/exp/<pipeline slug>/lock              one `pipe exp run|apply|remove` at a time per pipeline
 *   <ws>/.pipe/exp/<pipeline slug>/<variant>.json    the variant's record (below)
 *   <ws>/.pipe/exp/<pipeline slug>/<variant>/        its scratch workspace: the workspace's layout, its own .pipe/
 *
 * The records are the results (`pipe exp show` reads only them); a variant's folder is where its outputs were made
 * and stays (registered in the cache's registry, so `pipe gc` keeps what it references) until `pipe exp remove`.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StageStatus } from '../events.js';
import type { GitState } from '../git.js';
import { badVariantName } from '../dsl/experiments.js';
import { isPlainMap } from '../dsl/params.js';
import type { Pipeline } from '../model.js';
import { ownFolder, pipeDirOf, pipelineSlug } from '../workspace.js';
import { writeFileAtomicSync } from '../../cache/atomic.js';
import { ownFoldersIntact } from '../../cache/dir.js';
import { readRegularFileSync } from '../../cache/read.js';

/** A variant's record: its params, stage outcomes and metrics. One past this (or a FIFO put there) is not one. */
const MAX_VARIANT_RECORD_BYTES = 16 * 1024 * 1024;

export interface VariantRecord {
  version: 1;
  name: string;
  /** The experiment it belongs to; absent for a variant given on the command line (`pipe exp run FILE -S k=v`). */
  experiment?: string;
  /** Its position among the experiment's variants (the display order). */
  index?: number;
  /** What the variant sets: the experiment's overrides and the command line's `-S`. */
  overrides: Record<string, unknown>;
  /** Every param in force, flattened to dotted leaves (engine/experiments/params.ts). */
  params: Record<string, unknown>;
  /** The targets it brought up to date (empty: every stage). */
  targets: string[];
  /** `ok`: every selected stage ended well; else the first failure's reason. */
  status: 'ok' | 'failed' | 'cancelled';
  reason?: string;
  /** Per selected stage: how it ended, its key, how long it took. */
  stages: Record<string, { status: StageStatus; key?: string; durationMs: number; reason?: string }>;
  /** Metrics files of its selected stages (path → flattened metrics), read when it ended. */
  metrics: Record<string, Record<string, unknown>>;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  git?: GitState;
  host: string;
  pipeVersion: string;
  /** Its scratch workspace (absolute). */
  root: string;
}

/** The experiments folder of a pipeline (inside the workspace's `.pipe/`). */
export function experimentsDir(p: Pipeline): string {
  return join(pipeDirOf(p), 'exp', pipelineSlug(p));
}

/**
 * The experiments folder, for a command that writes or deletes in it (its lock, variant folders, records): `.pipe/exp`
 * and the pipeline's folder in it must be pipe's own folders. A stage's command can replace either with a link, and
 * `pipe exp remove` would then delete, and `pipe exp run` write, variant folders wherever it points: refused, naming
 * it (engine/workspace.ts ownFolder).
 */
export function ownExperimentsDir(p: Pipeline): string {
  ownFolder(join(pipeDirOf(p), 'exp'));
  return ownFolder(experimentsDir(p));
}

/**
 * Whether `.pipe/exp` and the pipeline's folder in it are still pipe's own (or not there yet): what a command reads or
 * deletes there is then pipe's. A variant's stage runs inside that folder and can replace it with a link while the
 * command runs (cache/dir.ts).
 */
function experimentsIntact(p: Pipeline): boolean {
  return ownFoldersIntact(pipeDirOf(p), 'exp', pipelineSlug(p));
}

export function variantRoot(p: Pipeline, name: string): string {
  return join(experimentsDir(p), name);
}

/**
 * Every recorded variant of the pipeline (unreadable records are skipped: they are rewritten by the next run). Throws
 * a CacheError (`not-own-folder`) when `.pipe/exp` or the pipeline's folder in it is a link.
 */
export function readRecords(p: Pipeline): VariantRecord[] {
  const dir = experimentsDir(p);
  // A link a stage put at one of the folders: refused (a CacheError naming it), never listed through.
  if (!experimentsIntact(p)) ownExperimentsDir(p);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: VariantRecord[] = [];
  for (const f of names.sort()) {
    if (!f.endsWith('.json')) continue;
    try {
      const r: unknown = JSON.parse(readRegularFileSync(join(dir, f), MAX_VARIANT_RECORD_BYTES) ?? '');
      if (isRecord(r) && `${r.name}.json` === f) out.push(r);
    } catch {
      // Half-written by a crashed process (writes are atomic, so only a foreign file), not a regular file, or over
      // the bound: not a record.
    }
  }
  return out;
}

/**
 * A record's shape, as `exp show/diff/apply/remove` use it. A record is a file a stage's command could write: one
 * named `...json` would name the variant `..`, whose folder is `.pipe/exp` itself (what `exp remove` deletes).
 */
function isRecord(r: unknown): r is VariantRecord {
  if (!isPlainMap(r)) return false;
  const maps = (v: unknown): boolean => isPlainMap(v) && Object.values(v).every(isPlainMap);
  return (
    r.version === 1 &&
    typeof r.name === 'string' &&
    badVariantName(r.name, Infinity) === undefined &&
    (r.experiment === undefined || typeof r.experiment === 'string') &&
    (r.index === undefined || Number.isInteger(r.index)) &&
    isPlainMap(r.overrides) &&
    isPlainMap(r.params) &&
    Array.isArray(r.targets) &&
    r.targets.every((t) => typeof t === 'string') &&
    (r.status === 'ok' || r.status === 'failed' || r.status === 'cancelled') &&
    (r.reason === undefined || typeof r.reason === 'string') &&
    maps(r.stages) &&
    Object.values(r.stages as Record<string, Record<string, unknown>>).every((s) => typeof s.status === 'string' && (s.key === undefined || typeof s.key === 'string')) &&
    maps(r.metrics) &&
    typeof r.startedAt === 'string' &&
    typeof r.endedAt === 'string' &&
    typeof r.durationMs === 'number'
  );
}

/**
 * Atomic: a reader sees the old record or the new one. Into pipe's own folder only: a link a variant's stage put at it
 * since the command checked is refused with a CacheError (`not-own-folder`) naming it.
 */
export function writeRecord(p: Pipeline, r: VariantRecord): void {
  const dir = ownExperimentsDir(p);
  // cache/atomic.ts: an unpredictable temp name, created exclusively (a link a stage put at a guessable one would
  // be written through).
  writeFileAtomicSync(join(dir, `${r.name}.json`), `${JSON.stringify(r, null, 2)}\n`);
}

export function removeRecord(p: Pipeline, name: string): void {
  if (experimentsIntact(p)) rmSync(join(experimentsDir(p), `${name}.json`), { force: true });
}
