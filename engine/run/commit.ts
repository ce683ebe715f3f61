/**
 * Commit: what a stage's end leaves behind. After a run: deps re-hashed (unchanged?), declared outs present, cached
 * outs stored, the RunRecord written; after a restore: the outputs placed from the store. Either way the index entry
 * and the lock file entry. Anything wrong removes the stage's outputs: a half result never passes as a result.
 * `persist` writes the hash memo, the index and the lock file once, at the end of a run.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { outPathKey } from '../../cache/paths.js';
import { execBits } from '../../cache/exec.js';
import type { Disagreement, RunRecord, StoredOutput } from '../../cache/types.js';
import type { EndCode } from '../events.js';
import { jobFailureCode, type Job, type JobResult } from '../executors/executor.js';
import type { Recorded } from './dispatch.js';
import { ReasonError } from './report.js';
import { lockPath, readLockAsync, stageDigest, wellFormedStages, writeLock, type LockFile, type LockStage } from '../lockfile.js';
import type { Pipeline, StageSpec } from '../model.js';
import { absPath } from '../../cache/paths.js';
import { hashDeps, hashOutputs, type DepMemo, type StageKeyInfo } from '../plan.js';
import { ownFolder, type IndexedOutput, type Workspace } from '../workspace.js';
import { readRegularFileSync } from '../../cache/read.js';
import { removeDeadTemps, RESTORE_TEMPS } from '../../cache/store.js';
import { ownFolderSync } from '../../cache/dir.js';
import { tempOf } from '../../cache/atomic.js';

/** Temps a dead process may have left beside an output: a restore's, and an atomic write's (cache/atomic.ts tempName). */
const CRASH_TEMPS = [...RESTORE_TEMPS, 'tmp'];

/** What a `uses` stage's runner leaves in its result file is record() data, as bounded as a run record. */
const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** How a run's commit ended: recorded, or why its outputs were discarded. */
export type CommitVerdict =
  /** `record` is the record in force: the first result of this key when an earlier run wrote other bytes. */
  | { status: 'ran'; record: RunRecord; disagreements: Disagreement[] }
  | { status: 'failed' | 'cancelled'; code: EndCode; reason: string };

export class Committer {
  /** Lock file entries of the stages that ended well in this run (written by `persist`). */
  readonly lockEntries = new Map<string, LockStage>();
  private readonly temps = new Map<string, string[]>();

  constructor(
    protected readonly pipeline: Pipeline,
    protected readonly ws: Workspace,
    private readonly memo: DepMemo,
    private readonly pipeVersion: string,
  ) {}

  /** Forget memoised hashes of the stage's outputs: whoever writes or deletes them calls this. */
  forget(stage: StageSpec): void {
    for (const o of stage.outs) this.memo.forget(o.path);
  }

  /**
   * Before a run: declared outputs are deleted (never truncated in place), and so are the temp files a crashed
   * process left beside them (a restore's staging copy, an atomic write's temp); parent folders created.
   */
  prepare(stage: StageSpec): void {
    this.allowed(stage);
    removeOutputs(stage, this.ws.root);
    for (const o of stage.outs) {
      const abs = absPath(this.ws.root, outPathKey(o.path));
      removeDeadTemps(abs, CRASH_TEMPS, this.tempsIn(dirname(abs)));
      mkdirSync(dirname(abs), { recursive: true });
    }
  }

  /**
   * A run or restore that did not complete: its outputs go — but never through a link that leaves the workspace
   * (an out that is itself such a link loses the link, not its target).
   */
  discard(stage: StageSpec): void {
    for (const o of stage.outs) {
      const refused = this.ws.outs.check(o.path, { fresh: true });
      if (!refused || refused.linkOnly) rmSync(absPath(this.ws.root, o.path), { recursive: true, force: true });
    }
    this.forget(stage);
  }

  /**
   * The names in `dir` shaped like temps, listed once per run: what a crash left there predates the run, and a wide
   * matrix writing 100,000 outputs into one folder must not list it once per stage.
   */
  private tempsIn(dir: string): string[] {
    let names = this.temps.get(dir);
    if (names === undefined) {
      try {
        names = readdirSync(dir).filter((n) => tempOf(n) !== undefined);
      } catch {
        names = [];
      }
      this.temps.set(dir, names);
    }
    return names;
  }

  /** Throws the policy's refusal (engine/out-policy.ts) when an out may not be touched now. */
  private allowed(stage: StageSpec): void {
    const refused = this.ws.outs.checkStage(stage, { fresh: true });
    if (refused) throw new ReasonError('out-refused', refused.reason);
  }

  /** An up-to-date stage: refresh its index entry when the index did not know this run, and keep its lock entry. */
  async upToDate(stage: StageSpec, info: StageKeyInfo, record: RunRecord | undefined): Promise<void> {
    const entry = this.ws.index.get(stage.name);
    if (record || !entry || entry.key !== info.key) {
      this.ws.index.set(stage.name, { key: info.key, outputs: await indexedOutputs(stage, this.ws) });
    }
    this.lockEntries.set(stage.name, lockEntry(stage, info, this.ws.index.get(stage.name)!.outputs));
  }

  /** Place a record's outputs from the store. Throws when an object cannot be restored (the caller runs instead). */
  async restore(stage: StageSpec, info: StageKeyInfo, record: RunRecord): Promise<void> {
    this.allowed(stage);
    this.forget(stage);
    for (const out of declaredOutputs(stage, record)) {
      const dest = absPath(this.ws.root, out.path);
      mkdirSync(dirname(dest), { recursive: true });
      await this.ws.store.restore(out, dest, this.pipeline.settings.restore);
    }
    this.forget(stage);
    const outputs = await indexedOutputs(stage, this.ws);
    this.ws.index.set(stage.name, { key: info.key, outputs });
    this.lockEntries.set(stage.name, lockEntry(stage, info, outputs));
  }

  /**
   * After the job: verify deps and outs, store outputs, write the run record. Anything wrong removes the outputs.
   * `recorded` holds record()/recordExecution() data streamed so far; the runner's result file completes it.
   */
  async ran(stage: StageSpec, info: StageKeyInfo, job: Job, result: JobResult, recorded: Recorded, executor: string, aborted: boolean): Promise<CommitVerdict> {
    const bad = await this.checkJob(stage, info, job, result, recorded, aborted);
    const { extra, execution } = recorded;
    if (bad) return bad;
    const ws = this.ws;
    const fail = (code: EndCode, reason: string): CommitVerdict => {
      this.discard(stage);
      return { status: 'failed', code, reason };
    };
    const stored: StoredOutput[] = [];
    for (const o of stage.outs) {
      if (!o.cache) continue;
      try {
        stored.push(await ws.store.put(absPath(ws.root, o.path), o.path));
      } catch (e) {
        // A full disk, a read-only cache: the stage fails saying where, and its outputs go (they are not recorded).
        return fail('store-failed', `could not store ${o.path} in the cache ${ws.store.root}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const record: RunRecord = {
      key: info.key,
      stage: stage.name,
      fields: info.fields as unknown as Record<string, unknown>,
      outputs: stored,
      startedAt: new Date(result.startedAt).toISOString(),
      endedAt: new Date(result.endedAt).toISOString(),
      durationMs: result.endedAt - result.startedAt,
      host: result.host ?? hostname(),
      executor,
      ...(result.jobId ? { jobId: result.jobId } : {}),
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
      ...(Object.keys(execution).length > 0 ? { execution } : {}),
      pipeVersion: this.pipeVersion,
    };
    // Same key, different bytes is news, not an overwrite: the first result stays in force (put back here).
    const put = await ws.runs.put(record, { replace: stage.alwaysRun });
    if (put.record !== record) {
      for (const out of declaredOutputs(stage, put.record)) await ws.store.restore(out, absPath(ws.root, out.path), this.pipeline.settings.restore);
      this.forget(stage);
    }
    const outputs = (put.record === record && storedAsIndexed(stage, stored)) || (await indexedOutputs(stage, ws));
    ws.index.set(stage.name, { key: info.key, outputs });
    this.lockEntries.set(stage.name, lockEntry(stage, info, outputs));
    return { status: 'ran', record: put.record, disagreements: put.disagreements };
  }

  /**
   * What every finished job must pass before its outputs count: it succeeded (and was not cancelled), its deps are
   * still what the key says, its outs exist and still resolve inside the workspace. Returns the failing verdict
   * (outputs discarded), or undefined; collects the runner's record()/recordExecution() data into `recorded`.
   */
  protected async checkJob(stage: StageSpec, info: StageKeyInfo, job: Job, result: JobResult, recorded: Recorded, aborted: boolean): Promise<CommitVerdict | undefined> {
    const ws = this.ws;
    const fail = (status: 'failed' | 'cancelled', code: EndCode, reason: string): CommitVerdict => {
      this.discard(stage);
      return { status, code, reason };
    };
    if (result.status === 'cancelled' || aborted) return fail('cancelled', 'cancelled', result.status === 'succeeded' ? 'cancelled' : result.reason);
    if (result.status !== 'succeeded') return fail('failed', jobFailureCode(result), result.reason);
    // Deps must be what the key says: a dep rewritten mid-run makes the outputs belong to no key.
    const after = await hashDeps(stage, ws);
    const changed = stage.deps.filter((d) => after[d.path] !== info.depHashes[d.path]).map((d) => d.path);
    if (changed.length > 0) {
      return fail('failed', 'dep-changed-mid-run', `dep ${changed.join(', ')} changed while the stage ran; its outputs were discarded (run again)`);
    }
    // What the stage left must still resolve inside the workspace before it is hashed and stored.
    const refused = ws.outs.checkStage(stage, { fresh: true });
    if (refused) return fail('failed', 'out-refused', refused.reason);
    const missing = stage.outs.filter((o) => !existsSync(absPath(ws.root, o.path))).map((o) => o.path);
    if (missing.length > 0) return fail('failed', 'out-not-written', `stage ${stage.name} said it writes ${missing.join(', ')} but did not`);
    if (stage.uses !== undefined) {
      // The runner's files are read and removed only in pipe's own tmp folder: a stage running beside this one can
      // have moved it away and linked it back (cache/dir.ts). Refused, naming it, the stage fails.
      ownFolder(ws.tmpDir);
      const resultFile = join(ws.tmpDir, `${job.id}.result.json`);
      try {
        // Written by the job itself: bounded and non-blocking, so a FIFO or a huge file there cannot hang pipe.
        const file = JSON.parse(readRegularFileSync(resultFile, MAX_RESULT_BYTES) ?? '') as Partial<Recorded>;
        Object.assign(recorded.extra, file.extra ?? {});
        Object.assign(recorded.execution, file.execution ?? {});
      } catch {
        // Streamed record lines already collected it.
      }
      rmSync(resultFile, { force: true });
      rmSync(join(ws.tmpDir, `${job.id}.json`), { force: true });
    }
    return undefined;
  }

  /** The end of a run: hash memo, index and lock file. */
  persist(): Promise<void> {
    return persist(this.pipeline, this.ws, this.lockEntries);
  }
}

/**
 * Save the hash memo, the index and the lock file (completed stages updated; others kept as they were). The lock
 * file is neither read nor rendered when it is exactly as pipe last wrote it and no entry changed (no-op runs).
 */
export async function persist(pipeline: Pipeline, ws: Workspace, entries: Map<string, LockStage>): Promise<void> {
  await ws.state.flush();
  const file = lockPath(pipeline.file);
  const names = new Set(pipeline.stages.map((s) => s.name));
  const meta = ws.index.lock;
  const digests = new Map([...entries].map(([n, e]) => [n, stageDigest(n, e)]));
  if (meta && Object.keys(meta.entries).every((n) => names.has(n)) && [...digests].every(([n, d]) => meta.entries[n] === d)) {
    let st: { size: number; mtimeMs: number } | undefined;
    try {
      st = statSync(file);
    } catch {
      // Deleted: rewrite below.
    }
    if (st && st.size === meta.size && st.mtimeMs === meta.mtimeMs) return ws.index.save();
  }
  const old = await readLockAsync(file);
  const stages: Record<string, LockStage> = {};
  for (const [n, s] of Object.entries(wellFormedStages(old))) if (names.has(n)) stages[n] = s;
  for (const [n, s] of entries) stages[n] = s;
  if (Object.keys(stages).length === 0 && !old) return ws.index.save();
  // Beside the pipeline file, in the folder it was in when the workspace was opened: a stage may have moved that
  // folder outside the workspace and linked it back (cache/dir.ts pinBase).
  ownFolderSync(dirname(file));
  const lock: LockFile = { schema: 1, pipeline: pipeline.name, stages };
  const st = writeLock(file, lock);
  ws.index.lock = { ...st, entries: Object.fromEntries(Object.entries(stages).map(([n, e]) => [n, digests.get(n) ?? stageDigest(n, e)])) };
  ws.index.save();
}

export function lockEntry(stage: StageSpec, info: StageKeyInfo, outputs: IndexedOutput[]): LockStage {
  return {
    key: info.key,
    ...(stage.cmd !== undefined ? { cmd: stage.cmd } : {}),
    ...(stage.uses !== undefined ? { uses: stage.uses, with: stage.with ?? {} } : {}),
    params: stage.params,
    deps: Object.entries(info.depHashes).map(([path, hash]) => ({ path, hash })),
    outs: outputs.map((o) => ({ path: o.path, hash: o.hash, size: o.size, ...(o.dir ? { files: o.files } : {}), ...execBits(o) })),
  };
}

/**
 * The index entry of outputs just stored, when every out is a stored file: the hashes of the bytes the store read
 * (no second read). Undefined otherwise (a directory, an out with cache: false): the caller hashes the outputs.
 */
function storedAsIndexed(stage: StageSpec, stored: StoredOutput[]): IndexedOutput[] | undefined {
  if (stored.length !== stage.outs.length || stored.some((s) => s.kind !== 'file' || s.path.endsWith('/'))) return undefined;
  return stored.map((s) => ({ path: s.path, hash: s.hash, size: s.size, files: 1, ...execBits(s) }));
}

export async function indexedOutputs(stage: StageSpec, ws: Workspace): Promise<IndexedOutput[]> {
  const now = await hashOutputs(stage, ws);
  return stage.outs.map((o) => {
    const h = now.get(o.path)!;
    return { path: o.path, hash: h.hash, size: h.size, files: h.files, ...(h.kind === 'dir' || o.path.endsWith('/') ? { dir: true } : {}), ...execBits(h) };
  });
}

/**
 * The record's outputs for the stage's declared cached outs, at the declared paths — never a path only the record
 * names: a record is data at rest (a shared store's record can be written by anyone using the store), and an extra
 * entry (`../x`, `p.yaml`) would otherwise be restored where the out policy never looked. Throws when a declared
 * cached out has no stored output (the caller runs the stage instead).
 */
export function declaredOutputs(stage: StageSpec, record: RunRecord): StoredOutput[] {
  const stored = new Map(record.outputs.map((o) => [outPathKey(o.path), o]));
  return stage.outs
    .filter((o) => o.cache)
    .map((o) => {
      const s = stored.get(outPathKey(o.path));
      if (!s) throw new Error(`the recorded run of ${stage.name} did not store ${o.path}`);
      return { ...s, path: o.path };
    });
}

/** Declared outputs must not survive a run that did not complete: stale files could pass as results. */
export function removeOutputs(stage: StageSpec, root: string): void {
  for (const o of stage.outs) rmSync(absPath(root, o.path), { recursive: true, force: true });
}
