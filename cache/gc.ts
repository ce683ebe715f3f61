/**
 * Garbage collection of the Store and the RunCache.
 *
 * Live objects = those referenced by `keep` (the outputs recorded in the pipelines' lock files) and by run records
 * that ended within `keepRunsNewerThanMs` (default 30 days: recent runs stay restorable, e.g. switching a param back
 * after a week), each directory expanded through its manifest. Older run records are deleted with their history
 * markers, then every object that is not live is deleted.
 *
 * Safe next to a running `pipe`: an object younger than `graceMs` (default 1 hour) is never deleted, and the Store
 * refreshes the mtime of an existing object whenever it is put again, so outputs being stored right now, whose run
 * record is not yet written, survive. Temp files of crashed puts older than a day are removed too.
 */
import { lstat, readdir, rm, stat, unlink } from 'node:fs/promises';
import { isHashHex, asHash } from './brand.js';
import { readRecord } from './runs.js';
import { openStore } from './store.js';
import type { StoredOutput } from './types.js';

export interface GcOptions {
  /** Store root (e.g. `<ws>/.pipe/cache`). */
  store: string;
  /**
   * RunCache dir (e.g. `<ws>/.pipe/runs`), or several: a store shared by workspaces must be collected with all of
   * their run caches, or one workspace's gc deletes what only another's recent runs reference.
   */
  runsDir: string | readonly string[];
  /** Outputs that must survive whatever their age (from lock files). */
  keep: Iterable<StoredOutput>;
  /** Run records that ended less than this long ago keep their outputs alive. Default 30 days. */
  keepRunsNewerThanMs?: number;
  /** Objects modified less than this long ago are never deleted (a concurrent put). Default 1 hour. */
  graceMs?: number;
  /** Count what would be deleted, delete nothing. */
  dryRun: boolean;
  /** Clock, for tests. */
  now?: number;
}

export interface GcResult {
  /** Objects deleted (or that would be, with dryRun). */
  objects: number;
  /** Their bytes. */
  bytes: number;
  /** Objects kept. */
  kept: number;
  /** Run records deleted (or that would be). */
  runs: number;
}

export const DEFAULT_KEEP_RUNS_MS = 30 * 24 * 3600 * 1000;
const DEFAULT_GRACE_MS = 3600 * 1000;
const TMP_MAX_AGE_MS = 24 * 3600 * 1000;

export async function collectGarbage(opts: GcOptions): Promise<GcResult> {
  const now = opts.now ?? Date.now();
  const keepRunsMs = opts.keepRunsNewerThanMs ?? DEFAULT_KEEP_RUNS_MS;
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const store = openStore(opts.store);
  const live = new Set<string>();
  const result: GcResult = { objects: 0, bytes: 0, kept: 0, runs: 0 };

  const addOutput = async (out: StoredOutput): Promise<void> => {
    if (!isHashHex(out.hash) || live.has(out.hash)) return;
    live.add(out.hash);
    if (out.kind !== 'dir') return;
    try {
      for (const e of await store.readManifest(out.hash)) live.add(e[1]);
    } catch {
      // A missing or corrupt manifest: the directory is not restorable anyway; its files get no protection from it.
    }
  };
  for (const out of opts.keep) await addOutput(out);

  // Run records: keep recent ones' outputs, delete old ones.
  for (const runsDir of typeof opts.runsDir === 'string' ? [opts.runsDir] : opts.runsDir) {
    await collectRuns(runsDir, now, keepRunsMs, opts.dryRun, addOutput, result);
  }

  // Objects.
  const objRoot = `${opts.store}/objects`;
  for (const shard of await listDir(objRoot)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const rest of await listDir(`${objRoot}/${shard}`)) {
      const hex = shard + rest;
      const path = `${objRoot}/${shard}/${rest}`;
      if (isHashHex(hex) && live.has(asHash(hex))) {
        result.kept++;
        continue;
      }
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue; // deleted by a concurrent gc
      if (graceMs > 0 && now - st.mtimeMs < graceMs) {
        result.kept++;
        continue;
      }
      result.objects++;
      result.bytes += st.size;
      if (!opts.dryRun) await unlink(path).catch(() => undefined);
    }
  }

  // Leftovers of crashed puts.
  if (!opts.dryRun) {
    for (const name of await listDir(`${opts.store}/tmp`)) {
      const path = `${opts.store}/tmp/${name}`;
      const st = await lstat(path).catch(() => undefined);
      if (st && now - st.mtimeMs > TMP_MAX_AGE_MS) await rm(path, { force: true, recursive: true });
    }
  }
  return result;
}

/** Keep recent run records' outputs alive (through `addOutput`); delete older records and their history markers. */
async function collectRuns(
  runsDir: string,
  now: number,
  keepRunsMs: number,
  dryRun: boolean,
  addOutput: (out: StoredOutput) => Promise<void>,
  result: GcResult,
): Promise<void> {
  const deletedKeys = new Set<string>();
  for (const shard of await listDir(runsDir)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const name of await listDir(`${runsDir}/${shard}`)) {
      if (!name.endsWith('.json')) continue;
      const path = `${runsDir}/${shard}/${name}`;
      const rec = await readRecord(path);
      const ended = rec ? Date.parse(rec.endedAt) : NaN;
      const when = Number.isFinite(ended) ? ended : (await stat(path)).mtimeMs;
      if (now - when <= keepRunsMs) {
        for (const out of rec?.outputs ?? []) await addOutput(out);
        continue;
      }
      result.runs++;
      deletedKeys.add(name.slice(0, -5));
      if (!dryRun) await unlink(path).catch(() => undefined);
    }
  }
  if (!dryRun) await pruneHistory(`${runsDir}/by-stage`, deletedKeys);
}

/** Drop history markers whose record was deleted now or earlier. */
async function pruneHistory(byStage: string, deletedKeys: Set<string>): Promise<void> {
  for (const stage of await listDir(byStage)) {
    for (const marker of await listDir(`${byStage}/${stage}`)) {
      const key = marker.slice(16);
      if (!isHashHex(key)) continue;
      if (deletedKeys.has(key)) await unlink(`${byStage}/${stage}/${marker}`).catch(() => undefined);
    }
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}
