/**
 * The per-stage decision: up to date, restore from the run cache, or run (and why). Incremental: a stage is decided
 * when it becomes ready, because its deps' hashes are only final once its upstream stages are done.
 */
import { isAbsolute, join } from 'node:path';
import { asHash } from '../cache/brand.js';
import type { Hash, PathHash, RunRecord, StageKey } from '../cache/types.js';
import { outPathKey } from '../cache/paths.js';
import { keyFields, stageKey, type KeyFields } from './fingerprint.js';
import { kindFingerprint } from './kinds.js';
import type { StageSpec } from './model.js';
import { diffFields, nearest, type Change } from './why.js';
import type { IndexedOutput, Workspace } from './workspace.js';
import type { LockStage } from './lockfile.js';

export interface StageKeyInfo {
  fields: KeyFields;
  key: StageKey;
  /** dep path → its hash on disk now (null when missing). */
  depHashes: Record<string, Hash | null>;
}

export type Decision =
  /** `record` is set when the index did not know this run but the run cache did (outputs on disk already match). */
  | { action: 'up-to-date'; info: StageKeyInfo; reasons: string[]; record?: RunRecord }
  | { action: 'restore'; info: StageKeyInfo; record: RunRecord; reasons: string[]; changes: Change[] }
  | { action: 'run'; info?: StageKeyInfo; reasons: string[]; changes: Change[] };

/** Absolute path of a workspace-relative path (dirs keep no trailing slash for the file system). */
export function absPath(root: string, rel: string): string {
  const p = outPathKey(rel);
  return isAbsolute(p) ? p : join(root, p);
}

/**
 * Hash every dep and compute the key. `known` supplies hashes of paths that are not on disk yet but will be
 * (outputs an upstream stage would restore: --dry-run can then still compute the downstream key).
 */
export async function computeKey(stage: StageSpec, ws: Workspace, known?: ReadonlyMap<string, Hash>, memo?: DepMemo): Promise<StageKeyInfo> {
  const depHashes: Record<string, Hash | null> = {};
  await Promise.all(
    stage.deps.map(async (d) => {
      const k = known?.get(d.path);
      depHashes[d.path] = k ?? (await (memo ? memo.hash(d.path) : ws.state.hashPath(absPath(ws.root, d.path)))).hash;
    }),
  );
  const kind = stage.uses ? await kindFingerprint(stage.uses, ws.state) : undefined;
  const fields = keyFields(stage, depHashes, kind);
  return { fields, key: stageKey(fields), depHashes };
}

/**
 * Dep hashes shared by the decisions of one run: a file many stages depend on (a script, a dataset folder) is
 * hashed once. A path is forgotten whenever a stage is about to write it or has written it, so a decision never
 * sees a stale hash of an upstream output. (The after-run dep check never uses the memo.)
 */
export class DepMemo {
  private readonly memo = new Map<string, Promise<PathHash>>();
  constructor(private readonly ws: Workspace) {}

  hash(rel: string): Promise<PathHash> {
    let h = this.memo.get(rel);
    if (!h) {
      h = this.ws.state.hashPath(absPath(this.ws.root, rel));
      this.memo.set(rel, h);
    }
    return h;
  }

  /** Forget every memoised path at, under, or above `rel` (a file inside a dir dep changes the dir's hash). */
  forget(rel: string): void {
    const bare = outPathKey(rel);
    this.memo.delete(bare);
    this.memo.delete(`${bare}/`);
    // Ancestors: directory deps containing it.
    for (let i = bare.lastIndexOf('/'); i > 0; i = bare.lastIndexOf('/', i - 1)) {
      this.memo.delete(bare.slice(0, i));
      this.memo.delete(`${bare.slice(0, i)}/`);
    }
    // Descendants: an output (`dir` or `dir/`) that is a directory can contain other deps.
    for (const k of this.memo.keys()) if (k.startsWith(`${bare}/`)) this.memo.delete(k);
  }
}

/** Current identities of a stage's outputs on disk. */
export async function hashOutputs(stage: StageSpec, ws: Workspace): Promise<Map<string, PathHash>> {
  const out = new Map<string, PathHash>();
  await Promise.all(stage.outs.map(async (o) => out.set(o.path, await ws.state.hashPath(absPath(ws.root, o.path)))));
  return out;
}

export interface DecideOptions {
  force: boolean;
  /** Hashes of paths an upstream would restore (plan-only mode). */
  known?: ReadonlyMap<string, Hash>;
  memo?: DepMemo;
  /**
   * The pipeline's lock file entry of this stage, loaded lazily (only on a run-cache miss): outputs a lock file
   * references stay restorable when their run record is gone (gc of old records, a fresh clone sharing a cache).
   */
  lockEntry?: (stage: string) => Promise<LockStage | undefined>;
}

export async function decide(stage: StageSpec, ws: Workspace, opts: DecideOptions): Promise<Decision> {
  const info = await computeKey(stage, ws, opts.known, opts.memo);
  if (opts.force) return { action: 'run', info, reasons: ['--force'], changes: [] };
  if (stage.alwaysRun) return { action: 'run', info, reasons: ['always_run'], changes: [] };

  const entry = ws.index.get(stage.name);
  let outputProblems: string[] = [];
  if (entry && entry.key === info.key) {
    // The fast path of every no-op run: same key as last time; are the outputs still what that run left?
    outputProblems = await changedOutputs(stage, ws, entry.outputs);
    if (outputProblems.length === 0) return { action: 'up-to-date', info, reasons: [] };
  }

  const record = (await ws.runs.get(info.key)) ?? recordFromLock(stage, info, await opts.lockEntry?.(stage.name));
  if (record) {
    if (outputProblems.length === 0 && (await outputsMatch(stage, ws, record))) {
      return { action: 'up-to-date', info, reasons: [], record };
    }
    const restorable = await canRestore(stage, record, ws);
    if (restorable === true) {
      const reasons = outputProblems.length > 0 ? outputProblems : await restoreReasons(stage, ws, info.fields, record);
      return { action: 'restore', info, record, reasons, changes: [] };
    }
    if (outputProblems.length > 0) return { action: 'run', info, reasons: [...outputProblems, restorable], changes: [] };
  }
  if (outputProblems.length > 0) return { action: 'run', info, reasons: outputProblems, changes: [] };

  const history = await ws.runs.history(stage.name, 20);
  const near = nearest(info.fields, history);
  if (!near) return { action: 'run', info, reasons: ['new stage (never ran)'], changes: [] };
  if (near.changes.length === 0) {
    return { action: 'run', info, reasons: ['the outputs of an identical earlier run are no longer in the cache'], changes: [] };
  }
  return { action: 'run', info, reasons: near.changes.map((c) => c.message), changes: near.changes };
}

/** "output out/x missing" / "output out/x modified" for outputs that differ from what the last run left. */
async function changedOutputs(stage: StageSpec, ws: Workspace, recorded: IndexedOutput[]): Promise<string[]> {
  const byPath = new Map(recorded.map((o) => [outPathKey(o.path), o]));
  const now = await hashOutputs(stage, ws);
  const problems: string[] = [];
  for (const o of stage.outs) {
    const h = now.get(o.path)!;
    const before = byPath.get(outPathKey(o.path));
    if (h.kind === 'missing') problems.push(`output ${o.path} missing`);
    else if (!before || before.hash !== h.hash) problems.push(`output ${o.path} modified`);
  }
  return problems;
}

/** A stand-in run record from a lock file entry with this very key (outputs only: enough to restore). */
function recordFromLock(stage: StageSpec, info: StageKeyInfo, entry: LockStage | undefined): RunRecord | undefined {
  if (!entry || entry.key !== info.key) return undefined;
  if (stage.outs.some((o) => !o.cache) || entry.outs.some((o) => o.hash === null)) return undefined;
  return {
    key: info.key,
    stage: stage.name,
    fields: info.fields as unknown as Record<string, unknown>,
    outputs: entry.outs.map((o) => ({
      path: o.path,
      kind: o.path.endsWith('/') || o.files !== undefined ? 'dir' : 'file',
      hash: asHash(o.hash as string),
      size: o.size,
      files: o.files ?? 1,
    })),
    startedAt: '',
    endedAt: 'the lock file',
    durationMs: 0,
    host: '',
    executor: 'lock',
    pipeVersion: '',
  };
}

/** The outputs on disk are exactly what `record` stored (e.g. after a fresh clone with the index missing). */
async function outputsMatch(stage: StageSpec, ws: Workspace, record: RunRecord): Promise<boolean> {
  const stored = new Map(record.outputs.map((o) => [outPathKey(o.path), o.hash as string]));
  if (stage.outs.some((o) => !stored.has(outPathKey(o.path)))) return false;
  const now = await hashOutputs(stage, ws);
  return stage.outs.every((o) => now.get(o.path)?.hash === stored.get(outPathKey(o.path)));
}

/** true, or why the record cannot provide the outputs. */
async function canRestore(stage: StageSpec, record: RunRecord, ws: Workspace): Promise<true | string> {
  const stored = new Map(record.outputs.map((o) => [outPathKey(o.path), o]));
  for (const o of stage.outs) {
    if (!o.cache) return `output ${o.path} has cache: false, so it cannot be restored`;
    const s = stored.get(outPathKey(o.path));
    if (!s) return `the earlier run did not store ${o.path}`;
    if (!(await ws.store.has(s))) return `the cached copy of ${o.path} is gone from the cache (gc?)`;
  }
  return true;
}

async function restoreReasons(stage: StageSpec, ws: Workspace, fields: KeyFields, record: RunRecord): Promise<string[]> {
  const latest = (await ws.runs.history(stage.name, 1))[0];
  const when = record.executor === 'lock' ? 'the lock file records these inputs and the cache has their outputs' : `an earlier run (${record.endedAt}) had the same inputs`;
  if (!latest || latest.key === record.key) return [when];
  return [...diffFields(fields, latest.fields).map((c) => c.message), when];
}
