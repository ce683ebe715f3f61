/**
 * Garbage collection of the Store and the RunCache.
 *
 * Live objects = those referenced by
 *  - `keep` (the outputs recorded in the given pipelines' lock files), and the run records of this workspace that
 *    ended within `keepRunsNewerThanMs` (default 30 days: recent runs stay restorable, e.g. switching a param back
 *    after a week);
 *  - with `readLock`, every workspace registered in the store (cache/registry.ts) that is visible from here: the lock
 *    files of all its pipelines and its recent run records. A store shared by several workspaces never loses what
 *    another one still references. A registered workspace that no longer exists is dropped from the registry; one
 *    on another host that cannot be seen from here makes gc delete no object at all (it says so);
 *  - the store's shared run records (cache/runs.ts) that are recent or whose key a visible lock file names.
 * Each directory is expanded through its manifest. Older run records of THIS workspace are deleted with their
 * history markers (other workspaces' records are theirs), and so are the store's shared records no one needs; then
 * every object that is not live.
 *
 * Safe next to a running `pipe`: an object younger than `graceMs` (default 1 hour) is never deleted, and the Store
 * refreshes the mtime of an existing object whenever it is put again, so outputs being stored right now, whose run
 * record is not yet written, survive. Temp files of crashed puts older than a day are removed too.
 */
import { lstat, open, rm, stat, unlink } from 'node:fs/promises';
import { asHash, isHashHex } from './brand.js';
import { listDir, ownFoldersIntact } from './dir.js';
import { isLinkEntry } from './manifest.js';
import { dropLock, dropWorkspace, listWorkspaces, type RegisteredWorkspace } from './registry.js';
import { readRecord, sharedRunsDir } from './runs.js';
import { openStore, type LocalStore } from './store.js';
import type { RunRecord } from './types.js';

/** What one lock file references: its stages' keys and outputs (`dir` unknown: the object is looked at). */
export interface LockRefs {
  keys: string[];
  outputs: Array<{ hash: string; dir?: boolean }>;
}

export interface GcOptions {
  /** Store root (e.g. `<ws>/.pipe/cache`). */
  store: string;
  /**
   * This workspace's RunCache dir (e.g. `<ws>/.pipe/runs`), or several: their recent records keep objects alive and
   * their old records are deleted.
   */
  runsDir: string | readonly string[];
  /** Outputs that must survive whatever their age (from lock files). */
  keep: Iterable<{ hash: string; kind?: 'file' | 'dir' }>;
  /**
   * Reads a lock file's references (the lock file format is the engine's). Given, gc consults the store's registry
   * of workspaces; without it only `keep` and `runsDir` are live (and shared records by age).
   */
  readLock?: (file: string) => Promise<LockRefs | undefined>;
  /** This workspace's `.pipe` folder: its registry entry is this workspace, not another one. */
  self?: string;
  /** Run records that ended less than this long ago keep their outputs alive. Default 30 days. */
  keepRunsNewerThanMs?: number;
  /** Objects modified less than this long ago are never deleted (a concurrent put). Default 1 hour. */
  graceMs?: number;
  /** Count what would be deleted, delete nothing. */
  dryRun: boolean;
  /** Clock, for tests. */
  now?: number;
  /**
   * Ctrl-C: stop at the next record, workspace or object. What was deleted stays deleted; nothing else is. A sweep
   * stopped half way ends the collection there: objects are only judged against complete live sets.
   */
  signal?: AbortSignal;
}

export interface WorkspaceRef {
  root: string;
  host: string;
}

export interface GcResult {
  /** Objects deleted (or that would be, with dryRun). */
  objects: number;
  /** Their bytes. */
  bytes: number;
  /** Objects kept. */
  kept: number;
  /** Run records of this workspace deleted (or that would be). */
  runs: number;
  /** Shared run records deleted from the store (or that would be). */
  sharedRuns: number;
  /** Objects kept only because other workspaces using the store reference them, per workspace. */
  keptFor: Array<WorkspaceRef & { objects: number }>;
  /** Registered workspaces that no longer exist, dropped from the store's registry (or that would be). */
  dropped: WorkspaceRef[];
  /** Registered workspaces on other hosts that cannot be seen from here: while any, no object is deleted. */
  unknown: WorkspaceRef[];
  /** Stopped by `signal` before the end: the counts are what was deleted until then. */
  interrupted?: boolean;
}

export const DEFAULT_KEEP_RUNS_MS = 30 * 24 * 3600 * 1000;
const DEFAULT_GRACE_MS = 3600 * 1000;
const TMP_MAX_AGE_MS = 24 * 3600 * 1000;

/** A set of live hashes, directories expanded through their (verified) manifests. */
class LiveSet {
  readonly hashes = new Set<string>();
  constructor(private readonly store: LocalStore) {}

  /** `dir` undefined: the object itself says (a manifest parses as one; anything else is a file). */
  async add(hash: string, dir: boolean | undefined): Promise<void> {
    if (!isHashHex(hash) || this.hashes.has(hash)) return;
    this.hashes.add(hash);
    if (dir === false) return;
    if (dir === undefined && !(await startsLikeManifest(this.store.objectPath(asHash(hash))))) return;
    try {
      for (const e of await this.store.readManifest(asHash(hash))) if (!isLinkEntry(e)) this.hashes.add(e[1]);
    } catch {
      // Missing, corrupt or not a manifest: no files to protect through it.
    }
  }

  async addRecord(rec: RunRecord): Promise<void> {
    for (const o of rec.outputs) await this.add(o.hash, o.kind === 'dir');
  }
}

export async function collectGarbage(opts: GcOptions): Promise<GcResult> {
  const now = opts.now ?? Date.now();
  const keepRunsMs = opts.keepRunsNewerThanMs ?? DEFAULT_KEEP_RUNS_MS;
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  const store = openStore(opts.store);
  const result: GcResult = { objects: 0, bytes: 0, kept: 0, runs: 0, sharedRuns: 0, keptFor: [], dropped: [], unknown: [] };
  const stopped = (): boolean => opts.signal?.aborted === true;
  const interrupted = (): GcResult => ({ ...result, interrupted: true });
  const recent = (rec: RunRecord | undefined, mtimeMs: number): boolean => {
    const ended = rec ? Date.parse(rec.endedAt) : NaN;
    return now - (Number.isFinite(ended) ? ended : mtimeMs) <= keepRunsMs;
  };

  // This workspace: what its lock files and recent runs reference; its old run records go.
  const own = new LiveSet(store);
  for (const out of opts.keep) await own.add(out.hash, out.kind === undefined ? undefined : out.kind === 'dir');
  for (const runsDir of typeof opts.runsDir === 'string' ? [opts.runsDir] : opts.runsDir) {
    await sweepRuns(runsDir, recent, opts.dryRun, own, () => result.runs++, stopped);
  }
  if (stopped()) return interrupted();

  // Every other workspace using the store: what they reference stays.
  const lockKeys = new Set<string>();
  const others: Array<{ ws: RegisteredWorkspace; live: LiveSet }> = [];
  if (opts.readLock) {
    for (const ws of await listWorkspaces(opts.store)) {
      if (stopped()) return interrupted();
      const self = opts.self !== undefined && ws.pipeDir === opts.self;
      if (ws.state === 'gone') {
        result.dropped.push({ root: ws.root, host: ws.host });
        if (!opts.dryRun) await dropWorkspace(ws);
        continue;
      }
      if (ws.state === 'unknown') {
        if (!self) result.unknown.push({ root: ws.root, host: ws.host });
        continue;
      }
      const live = self ? own : new LiveSet(store);
      for (const { pipeline, lock } of ws.pipelines) {
        const refs = await opts.readLock(lock);
        if (refs === undefined) {
          // No lock file: not written yet (a first run in progress), or the pipeline is gone (deleted or renamed,
          // its lock file with it): then it is forgotten.
          if (!opts.dryRun && !(await exists(lock)) && !(await exists(pipeline))) dropLock(ws, lock);
          continue;
        }
        for (const k of refs.keys) lockKeys.add(k);
        for (const o of refs.outputs) await live.add(o.hash, o.dir);
      }
      if (!self) {
        await sweepRuns(`${ws.pipeDir}/runs`, recent, true, live, () => undefined, stopped);
        others.push({ ws, live });
      }
    }
  }

  // The store's shared run records: kept while recent, named by a lock file, or just written (a run in another
  // workspace whose lock file does not name them yet: the objects' grace period, for records).
  const shared = new LiveSet(store);
  await sweepRuns(
    sharedRunsDir(opts.store),
    (rec, mtime) => (rec !== undefined && lockKeys.has(rec.key)) || recent(rec, mtime) || (graceMs > 0 && now - mtime < graceMs),
    opts.dryRun,
    shared,
    () => result.sharedRuns++,
    stopped,
    true,
  );
  if (stopped()) return interrupted();

  // Objects.
  const keptFor = new Map<RegisteredWorkspace, number>();
  const deleting = result.unknown.length === 0;
  const objRoot = `${opts.store}/objects`;
  for (const shard of await listDir(objRoot)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const rest of await listDir(`${objRoot}/${shard}`)) {
      if (stopped()) {
        result.keptFor = [...keptFor].map(([ws, objects]) => ({ root: ws.root, host: ws.host, objects }));
        return interrupted();
      }
      if (!OBJECT_NAME.test(rest)) continue; // not an object name: not the store's to delete
      const hex = shard + rest;
      const path = `${objRoot}/${shard}/${rest}`;
      if (own.hashes.has(hex)) {
        result.kept++;
        continue;
      }
      const users = others.filter((o) => o.live.hashes.has(hex));
      if (users.length > 0 || shared.hashes.has(hex)) {
        result.kept++;
        for (const u of users) keptFor.set(u.ws, (keptFor.get(u.ws) ?? 0) + 1);
        continue;
      }
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue; // deleted by a concurrent gc
      if (!deleting || (graceMs > 0 && now - st.mtimeMs < graceMs)) {
        result.kept++;
        continue;
      }
      result.objects++;
      result.bytes += st.size;
      if (!opts.dryRun) await rm(path, { force: true, recursive: true }).catch(() => undefined);
    }
  }
  result.keptFor = [...keptFor].map(([ws, objects]) => ({ root: ws.root, host: ws.host, objects }));

  // Leftovers of crashed puts.
  if (!opts.dryRun) {
    for (const name of await listDir(`${opts.store}/tmp`)) {
      if (stopped()) return interrupted();
      // Only names a put writes: a cache_dir set to a folder that already had a tmp/ ($HOME) keeps its files.
      if (!TEMP_NAME.test(name)) continue;
      const path = `${opts.store}/tmp/${name}`;
      const st = await lstat(path).catch(() => undefined);
      if (st && now - st.mtimeMs > TMP_MAX_AGE_MS) await rm(path, { force: true, recursive: true });
    }
  }
  return result;
}

/** What the Store writes under objects/<2 hex>/ and tmp/ (store.ts): gc deletes nothing else there. */
const OBJECT_NAME = /^[0-9a-f]{62}$/;
const TEMP_NAME = /^\d+-[0-9a-f]{16}$/;
const RECORD_NAME = /^[0-9a-f]{64}\.json$/;

/**
 * Walk a run cache: the outputs of records `keep` says stay go into `live`; the others are deleted (unless
 * `dryRun`) with their history markers and disagreement records, each counted through `counted`.
 */
async function sweepRuns(
  runsDir: string,
  keep: (rec: RunRecord | undefined, mtimeMs: number) => boolean,
  dryRun: boolean,
  live: LiveSet,
  counted: () => void,
  /** Ctrl-C: stop before the next record (the history of those deleted is still pruned). */
  stopped: () => boolean,
  /** Pass the file's mtime to `keep` always (else only when the record has no usable end time). */
  withMtime = false,
): Promise<void> {
  const deletedKeys = new Set<string>();
  shards: for (const shard of await listDir(runsDir)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const name of await listDir(`${runsDir}/${shard}`)) {
      if (stopped()) break shards;
      if (!RECORD_NAME.test(name)) continue;
      const path = `${runsDir}/${shard}/${name}`;
      const rec = await readRecord(path);
      const hasEnd = rec !== undefined && Number.isFinite(Date.parse(rec.endedAt));
      const mtime = hasEnd && !withMtime ? 0 : await stat(path).then((s) => s.mtimeMs, () => 0);
      if (keep(rec, mtime)) {
        if (rec) await live.addRecord(rec);
        continue;
      }
      counted();
      deletedKeys.add(name.slice(0, -5));
      if (!dryRun) await unlink(path).catch(() => undefined);
    }
  }
  if (dryRun || deletedKeys.size === 0) return;
  await pruneHistory(`${runsDir}/by-stage`, deletedKeys);
  // Not through a link put at the folder's name (listDir says why): its names are not the store's.
  if (!ownFoldersIntact(runsDir, 'nondeterministic')) return;
  for (const key of deletedKeys) await rm(`${runsDir}/nondeterministic/${key}`, { recursive: true, force: true });
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

/** A manifest begins with `[[` (or is `[]`): a cheap look before reading a possibly large file object whole. */
async function startsLikeManifest(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(2);
      const { bytesRead } = await fh.read(buf, 0, 2, 0);
      const s = buf.subarray(0, bytesRead).toString('latin1');
      return s === '[[' || s === '[]';
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}


