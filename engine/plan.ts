/**
 * The per-stage decision: up to date, restore from the run cache, or run (and why). Incremental: a stage is decided
 * when it becomes ready, because its deps' hashes are only final once its upstream stages are done.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { absPath, outPathKey } from '../cache/paths.js';
import type { Disagreement, ExecBits, Hash, PathHash, RunRecord, StageKey } from '../cache/types.js';
import { lostExec } from '../cache/exec.js';
import { keyFields, stageKey, type KeyFields } from './fingerprint.js';
import { kindFingerprint } from './kinds.js';
import type { StageSpec } from './model.js';
import { changeReason, diffFields, nearest, type Change } from './why.js';
import type { IndexedOutput, Workspace } from './workspace.js';
import type { LockStage } from './lockfile.js';
import type { Reason } from './events.js';

export interface StageKeyInfo {
  fields: KeyFields;
  key: StageKey;
  /** dep path → its hash on disk now (null when missing). */
  depHashes: Record<string, Hash | null>;
  /** The symbolic links the dep folders' hashes went through (absolute paths; a list per folder), when any. */
  depLinks?: ReadonlyArray<readonly string[]>;
}

export type Decision = (
  /** `record` is set when the index did not know this run but the run cache did (outputs on disk already match). */
  | { action: 'up-to-date'; info: StageKeyInfo; reasons: Reason[]; record?: RunRecord }
  | { action: 'restore'; info: StageKeyInfo; record: RunRecord; reasons: Reason[]; changes: Change[] }
  | { action: 'run'; info?: StageKeyInfo; reasons: Reason[]; changes: Change[] }
) & {
  /** Outputs that earlier runs of this very key produced with different bytes (the stage is nondeterministic). */
  nondeterministic?: Disagreement[];
};

/** One output of a nondeterministic stage, in words (run warnings, `pipe status`, `pipe why`). */
export function disagreementText(d: Disagreement): string {
  const h = (x: string | null): string => (x === null ? 'nothing' : `${x.slice(0, 12)}…`);
  const kept = d.kept === 'first' ? 'the first result is kept' : 'the first result could no longer be served, so this one replaced it';
  return `nondeterministic: ${d.path} came out as ${h(d.second)} where an earlier run with the same inputs gave ${h(d.first)} (${d.at}${d.host ? ` on ${d.host}` : ''}); ${kept}`;
}

/**
 * Hash every dep and compute the key. `known` supplies hashes of paths that are not on disk yet but will be
 * (outputs an upstream stage would restore, by outPathKey: --dry-run can then still compute the downstream key).
 */
export async function computeKey(stage: StageSpec, ws: Workspace, known?: ReadonlyMap<string, Hash>, memo?: DepMemo): Promise<StageKeyInfo> {
  const links: Array<readonly string[]> = [];
  const depHashes = await hashDeps(stage, ws, known, memo, links);
  const kind = stage.uses ? await kindFingerprint(stage.uses, ws.state) : undefined;
  const fields = keyFields(stage, depHashes, kind);
  return { fields, key: stageKey(fields), depHashes, ...(links.length > 0 ? { depLinks: links } : {}) };
}

/**
 * dep path → its hash on disk now (null when missing): computeKey's deps, or the check that they did not change.
 * `links` collects the symbolic links that the dep folders' hashes went through.
 */
export async function hashDeps(
  stage: StageSpec,
  ws: Workspace,
  known?: ReadonlyMap<string, Hash>,
  memo?: DepMemo,
  links?: Array<readonly string[]>,
): Promise<Record<string, Hash | null>> {
  const depHashes: Record<string, Hash | null> = {};
  // All hashes start at once, then are collected in order: no closure or Promise.all per stage (at 100,000 stages
  // that garbage is most of a plan's cost), and a memoised dep costs one await. Without a memo (the dep check after a
  // stage ran, `pipe why`) the disk itself is read: `fresh` walks a directory even where watch mode keeps an
  // incremental view of it.
  const pending = new Array<Hash | Promise<PathHash>>(stage.deps.length);
  for (let i = 0; i < pending.length; i++) {
    const path = stage.deps[i]!.path;
    pending[i] = (known !== undefined && known.size > 0 ? known.get(outPathKey(path)) : undefined) ?? (memo ? memo.hash(path) : ws.state.hashPath(absPath(ws.root, path), { fresh: true }));
  }
  for (let i = 0; i < pending.length; i++) {
    const h = pending[i]!;
    const path = stage.deps[i]!.path;
    let value: Hash | null;
    if (typeof h === 'string') value = h;
    else {
      const ph = await h;
      value = ph.hash;
      if (ph.links && links) links.push(ph.links); // the memoised hash's own list: DepLinks resolves it once per run
    }
    // A file may be called `__proto__`: an own key, never a prototype change.
    if (path === '__proto__') Object.defineProperty(depHashes, path, { value, enumerable: true, writable: true, configurable: true });
    else depHashes[path] = value;
  }
  return depHashes;
}

/**
 * Dep hashes shared by the decisions of one run: a file many stages depend on (a script, a dataset folder) is
 * hashed once. A path is forgotten whenever a stage is about to write it or has written it, so a decision never
 * sees a stale hash of an upstream output. (The after-run dep check never uses the memo.)
 */
export class DepMemo {
  private readonly memo = new Map<string, Promise<PathHash>>();
  /**
   * Plan-only (nothing is written while planning, so listings stay true): which run records and stage histories
   * exist, from one listing per run-cache folder instead of a stat per stage — most of a big DAG that never ran
   * has neither.
   */
  private readonly records?: Map<string, Set<string>>;
  private histories?: Set<string>;
  constructor(
    private readonly ws: Workspace,
    opts: { planOnly?: boolean } = {},
  ) {
    if (opts.planOnly) this.records = new Map();
  }

  /** Is there a run record for `key`? (A cheap answer; reading it may still find it unusable.) */
  hasRecord(key: StageKey): boolean {
    return this.ws.runs.recordPaths(key).some((path) => {
      if (!this.records) return existsSync(path);
      const slash = path.lastIndexOf('/');
      const dir = path.slice(0, slash);
      let names = this.records.get(dir);
      if (!names) this.records.set(dir, (names = listNames(dir)));
      return names.has(path.slice(slash + 1));
    });
  }

  /** Has any run of `stage` been recorded? */
  hasHistory(stage: string): boolean {
    if (!this.records) return existsSync(this.ws.runs.historyDir(stage));
    const byStage = dirname(this.ws.runs.historyDir('x'));
    this.histories ??= listNames(byStage);
    return this.histories.size > 0 && this.histories.has(basename(this.ws.runs.historyDir(stage)));
  }

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

/**
 * Current identities of a stage's outputs on disk, hashed as the Store stores them: a symlink inside a directory
 * output is an entry of its own (`links: 'keep'`), so these hashes equal the run records' (docs/cache.md).
 */
export async function hashOutputs(stage: StageSpec, ws: Workspace): Promise<Map<string, PathHash>> {
  const out = new Map<string, PathHash>();
  // Most stages have one out: no closure and Promise.all for it.
  if (stage.outs.length === 1) {
    const o = stage.outs[0]!;
    return out.set(o.path, await ws.state.hashPath(absPath(ws.root, o.path), { links: 'keep' }));
  }
  await Promise.all(stage.outs.map(async (o) => out.set(o.path, await ws.state.hashPath(absPath(ws.root, o.path), { links: 'keep' }))));
  return out;
}

export interface DecideOptions {
  force: boolean;
  /** Hashes of paths an upstream would restore (plan-only mode). */
  known?: ReadonlyMap<string, Hash>;
  memo?: DepMemo;
  /**
   * The pipeline's lock file entry of this stage, loaded lazily (only when a result comes from the store's shared
   * records): a lock file is a record, never a source of content, so it only explains a disagreement with the
   * result the store vouches for.
   */
  lockEntry?: (stage: string) => Promise<LockStage | undefined>;
}

export async function decide(stage: StageSpec, ws: Workspace, opts: DecideOptions): Promise<Decision> {
  const d = await decideAction(stage, ws, opts);
  const key = d.info?.key;
  if (key === undefined || !(await ws.runs.nondeterministicKeys()).has(key)) return d;
  return { ...d, nondeterministic: await ws.runs.disagreements(key) };
}

async function decideAction(stage: StageSpec, ws: Workspace, opts: DecideOptions): Promise<Decision> {
  const info = await computeKey(stage, ws, opts.known, opts.memo);
  if (opts.force) return { action: 'run', info, reasons: [{ code: 'forced', text: '--force' }], changes: [] };
  if (stage.alwaysRun) return { action: 'run', info, reasons: [{ code: 'always-run', text: 'always_run' }], changes: [] };

  const entry = ws.index.get(stage.name);
  let outputProblems: Reason[] = [];
  if (entry && entry.key === info.key) {
    // The fast path of every no-op run: same key as last time; are the outputs still what that run left?
    outputProblems = await changedOutputs(stage, ws, entry.outputs);
    if (outputProblems.length === 0) return { action: 'up-to-date', info, reasons: [] };
  }

  // This workspace's record of the key, else the one the store keeps for every workspace using it. Never the lock
  // file: anyone can edit it, and a hash it names may be another output's (docs/cache.md).
  const found = await runRecord(ws, info.key, opts.memo);
  const record = found && found.fields && Object.keys(found.fields).length === 0 ? { ...found, fields: info.fields as unknown as Record<string, unknown> } : found;
  if (record) {
    if (outputProblems.length === 0 && (await outputsMatch(stage, ws, record))) {
      return { action: 'up-to-date', info, reasons: [], record };
    }
    const restorable = await canRestore(stage, record, ws);
    if (restorable === true) {
      const reasons = outputProblems.length > 0 ? outputProblems : await restoreReasons(stage, ws, info.fields, record);
      if (found !== record) reasons.push(...(await lockDisagrees(record, await opts.lockEntry?.(stage.name))));
      return { action: 'restore', info, record, reasons, changes: [] };
    }
    if (outputProblems.length > 0) return { action: 'run', info, reasons: [...outputProblems, restorable], changes: [] };
  }
  if (outputProblems.length > 0) return { action: 'run', info, reasons: outputProblems, changes: [] };

  const hasHistory = opts.memo ? opts.memo.hasHistory(stage.name) : existsSync(ws.runs.historyDir(stage.name));
  const history = hasHistory ? await ws.runs.history(stage.name, 20) : [];
  const near = nearest(info.fields, history);
  if (!near) return { action: 'run', info, reasons: [{ code: 'never-ran', text: 'new stage (never ran)' }], changes: [] };
  if (near.changes.length === 0) {
    return { action: 'run', info, reasons: [{ code: 'outputs-evicted', text: 'the outputs of an identical earlier run are no longer in the cache' }], changes: [] };
  }
  return { action: 'run', info, reasons: near.changes.map(changeReason), changes: near.changes };
}

/**
 * The run record of a key, if any. Most keys of a big DAG that never ran have none: asking whether it exists (a
 * stat, or a listing while planning) costs far less than a read that throws an exception with a stack per stage.
 */
async function runRecord(ws: Workspace, key: StageKey, memo: DepMemo | undefined): Promise<RunRecord | undefined> {
  return (memo ? memo.hasRecord(key) : ws.runs.recordPaths(key).some((p) => existsSync(p))) ? ws.runs.get(key) : undefined;
}

/** The names in a folder; none when it does not exist. */
function listNames(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir));
  } catch {
    return new Set();
  }
}

/** "output out/x missing" / "output out/x modified" for outputs that differ from what the last run left. */
async function changedOutputs(stage: StageSpec, ws: Workspace, recorded: IndexedOutput[]): Promise<Reason[]> {
  const byPath = new Map(recorded.map((o) => [outPathKey(o.path), o]));
  const now = await hashOutputs(stage, ws);
  const problems: Reason[] = [];
  for (const o of stage.outs) {
    const h = now.get(o.path)!;
    const before = byPath.get(outPathKey(o.path));
    if (h.kind === 'missing') problems.push({ code: 'output-missing', text: `output ${o.path} missing` });
    else if (!before || before.hash !== h.hash) problems.push({ code: 'output-modified', text: `output ${o.path} modified` });
    else {
      const lost = lostExecText(o.path, before, h);
      if (lost) problems.push({ code: 'output-modified', text: lost });
    }
  }
  return problems;
}

/**
 * "output tool.sh lost its executable bit": an output whose bytes are as recorded but whose execute bit a stage gave
 * it is gone (a `chmod -x`) is not what a fresh run computes. The mode comes from the stat its hash took.
 */
function lostExecText(path: string, recorded: ExecBits, now: ExecBits): string | undefined {
  const lost = lostExec(recorded, now);
  if (lost.length === 0) return undefined;
  if (lost[0] === '') return `output ${path} lost its executable bit`;
  const more = lost.length > 3 ? ` and ${lost.length - 3} more` : '';
  return `output ${path} lost the executable bit of ${lost.slice(0, 3).join(', ')}${more}`;
}

/**
 * Where the lock file names other hashes for this key than the record being restored: said, not followed (the lock
 * file is rewritten with what is restored).
 */
async function lockDisagrees(record: RunRecord, entry: LockStage | undefined): Promise<Reason[]> {
  if (!entry || entry.key !== record.key) return [];
  const stored = new Map(record.outputs.map((o) => [outPathKey(o.path), o.hash as string]));
  return entry.outs
    .filter((o) => o.hash !== null && stored.has(outPathKey(o.path)) && stored.get(outPathKey(o.path)) !== o.hash)
    .map((o) => ({
      code: 'lock-disagrees',
      text: `the lock file names ${o.path} ${String(o.hash).slice(0, 12)}…, which this key did not produce; restoring the recorded ${stored.get(outPathKey(o.path))!.slice(0, 12)}…`,
    }));
}

/**
 * The outputs on disk are exactly what `record` stored (e.g. after a fresh clone with the index missing): the same
 * bytes, and no executable bit the record names lost.
 */
async function outputsMatch(stage: StageSpec, ws: Workspace, record: RunRecord): Promise<boolean> {
  const stored = new Map(record.outputs.map((o) => [outPathKey(o.path), o]));
  if (stage.outs.some((o) => !stored.has(outPathKey(o.path)))) return false;
  const now = await hashOutputs(stage, ws);
  return stage.outs.every((o) => {
    const h = now.get(o.path);
    const s = stored.get(outPathKey(o.path))!;
    return h !== undefined && h.hash === s.hash && lostExec(s, h).length === 0;
  });
}

/** true, or why the record cannot provide the outputs. */
async function canRestore(stage: StageSpec, record: RunRecord, ws: Workspace): Promise<true | Reason> {
  const stored = new Map(record.outputs.map((o) => [outPathKey(o.path), o]));
  const no = (text: string): Reason => ({ code: 'not-restorable', text });
  for (const o of stage.outs) {
    if (!o.cache) return no(`output ${o.path} has cache: false, so it cannot be restored`);
    const s = stored.get(outPathKey(o.path));
    if (!s) return no(`the earlier run did not store ${o.path}`);
    if (!(await ws.store.has(s))) return no(`the cached copy of ${o.path} is gone from the cache (garbage-collected, or removed as corrupt)`);
  }
  return true;
}

async function restoreReasons(stage: StageSpec, ws: Workspace, fields: KeyFields, record: RunRecord): Promise<Reason[]> {
  const latest = (await ws.runs.history(stage.name, 1))[0];
  const when: Reason = { code: 'same-inputs', text: `an earlier run (${record.endedAt}${record.host ? ` on ${record.host}` : ''}) had the same inputs` };
  if (!latest || latest.key === record.key) return [when];
  return [...diffFields(fields, latest.fields).map(changeReason), when];
}
