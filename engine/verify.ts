/**
 * `pipe verify` (Nix's `--check`): re-run recorded stages in a scratch copy of their inputs and compare every
 * output's hash with the recorded run. The workspace and its cache are only read: nothing there is written,
 * restored or recorded — the scratch copy has its own `.pipe/` and cache, and shares no file with the workspace.
 *
 * Each stage is checked against the inputs its record was computed from: after a stage re-ran and was compared, its
 * recorded outputs (copied from the workspace) are put back, so a nondeterministic stage is named once, not again in
 * every stage below it.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ownFolderSync, ownFoldersIntact } from '../cache/dir.js';
import { outPathKey } from '../cache/paths.js';
import { execBits } from '../cache/exec.js';
import { openRunCache } from '../cache/runs.js';
import { openStore, type LocalStore } from '../cache/store.js';
import type { Hash, PathHash, RunRecord } from '../cache/types.js';
import type { Emit, VerifyStageEvent } from './events.js';
import type { Job, JobResult } from './executors/executor.js';
import { LocalExecutor } from './executors/local.js';
import type { Pipeline, StageSpec } from './model.js';
import { copyInputs, depsOf, namesWorkspace, scratchPipeline } from './scratch.js';
import { absPath } from '../cache/paths.js';
import { computeKey, hashOutputs, type DepMemo, type StageKeyInfo } from './plan.js';
import { Committer, type CommitVerdict } from './run/commit.js';
import { safeName, type Recorded } from './run/dispatch.js';
import { runStages, type StageGraph } from './run.js';
import type { Machine } from './scheduler.js';
import { indexFileOf, openWorkspace, pipeDirOf, StageIndex, type IndexedOutput, type Workspace } from './workspace.js';

export type Verdict = Omit<VerifyStageEvent, 'type' | 'at'>;

export interface VerifyOptions {
  pipeline: Pipeline;
  graph: StageGraph;
  /** The stages to verify (targets and their upstream). */
  selected: ReadonlySet<string>;
  /** An empty directory on a disk with room for the inputs and outputs; the scratch workspace. */
  scratch: string;
  emit: Emit;
  pipeVersion: string;
  machine: Machine;
  signal: AbortSignal;
  kill?: AbortSignal;
  /** Called once the inputs are copied: the workspace may be unlocked from here on. */
  onCopied?: () => Promise<void> | void;
}

export interface VerifyResult {
  verdicts: Map<string, Verdict>;
  interrupted: boolean;
}

export async function verifyStages(opts: VerifyOptions): Promise<VerifyResult> {
  const real = opts.pipeline;
  const recordedStore = openStore(real.settings.cacheDir);
  // Read-only: the workspace's own records, then those shared in the store (another workspace may have run it).
  const records = openRunCache(join(pipeDirOf(real), 'runs'), { store: recordedStore });
  // Read-only too: what the workspace's last run of each stage left, `cache: false` outputs included (no record
  // holds their content; the index holds their hash).
  const lastRuns = StageIndex.open(indexFileOf(real));
  const order = opts.graph.order.filter((s) => opts.selected.has(s));
  const byName = new Map(real.stages.map((s) => [s.name, s]));
  const verdicts = new Map<string, Verdict>();
  const say = (v: Verdict): void => {
    verdicts.set(v.stage, v);
    opts.emit({ type: 'verify-stage', ...v });
  };

  copyInputs(real.workdir, depsOf(order.map((n) => byName.get(n)!)), opts.scratch);
  await opts.onCopied?.();

  // Its own cache, and restores by copy: the scratch shares no file with the workspace or its cache.
  const pipeline = scratchPipeline(real, opts.scratch, { restore: ['copy'] });
  const ws = await openWorkspace(pipeline);
  const scratchStages = new Map(pipeline.stages.map((s) => [s.name, s]));
  const expected = new Map<string, RunRecord>();
  for (const name of order) {
    const stage = scratchStages.get(name)!;
    const named = namesWorkspace(stage, real.workdir);
    if (named) {
      say({ stage: name, verdict: 'unverified', code: 'names-workspace', reason: `its ${named} names the workspace's absolute path ${real.workdir}: re-run elsewhere it would write the workspace` });
      continue;
    }
    const info = await computeKey(stage, ws);
    const missing = stage.deps.filter((d) => info.depHashes[d.path] === null).map((d) => d.path);
    if (missing.length > 0) {
      say({ stage: name, verdict: 'unverified', code: 'dep-missing', reason: `dep ${missing.join(', ')} is missing in the workspace: run \`pipe run\` first` });
      continue;
    }
    const record = await records.get(info.key);
    if (!record) {
      say({ stage: name, verdict: 'unverified', code: 'no-record', reason: 'no recorded run has its current inputs (the workspace is not up to date for it): run `pipe run` first' });
      continue;
    }
    expected.set(name, record);
  }

  const local = new LocalExecutor();
  const stash = join(ws.pipeDir, 'verify-stash');
  const summary = await runStages({
    pipeline,
    graph: opts.graph,
    workspace: ws,
    selected: new Set(expected.keys()),
    force: () => true,
    forceReason: { code: 'verify', text: 'verify: re-run and compare with the recorded run' },
    emit: opts.emit,
    pipeVersion: opts.pipeVersion,
    machine: opts.machine,
    // A scratch copy lives on this machine: every stage runs here, whatever its executor.
    executorFor: () => local,
    signal: opts.signal,
    ...(opts.kill ? { kill: opts.kill } : {}),
    keepGoing: true,
    committer: (memo) => new VerifyCommitter(pipeline, ws, memo, opts.pipeVersion, expected, lastRuns, recordedStore, stash, say),
  });
  await local.close();
  for (const [name, o] of summary.outcomes) {
    if (verdicts.has(name)) continue;
    // Stopped by Ctrl-C (running, waiting, or below one that was): nothing was compared, nor did a re-run fail.
    if (o.status === 'cancelled') say({ stage: name, verdict: 'unverified', code: o.code, reason: `interrupted (${o.reason})` });
    else say({ stage: name, verdict: 'failed', code: o.code, reason: o.status === 'failed' ? o.reason : `${o.status}: ${o.reason}` });
  }
  return { verdicts, interrupted: summary.interrupted };
}

/**
 * Commits by comparing: a re-run's outputs are hashed and compared with the recorded run's, then replaced by the
 * recorded ones again (moved aside before the stage ran), so stages below see the inputs their records saw. Nothing
 * is stored or recorded.
 */
class VerifyCommitter extends Committer {
  constructor(
    pipeline: Pipeline,
    ws: Workspace,
    memo: DepMemo,
    pipeVersion: string,
    private readonly expected: ReadonlyMap<string, RunRecord>,
    private readonly lastRuns: StageIndex,
    private readonly recordedStore: LocalStore,
    private readonly stashDir: string,
    private readonly say: (v: Verdict) => void,
  ) {
    super(pipeline, ws, memo, pipeVersion);
  }

  override prepare(stage: StageSpec): void {
    stage.outs.forEach((o, i) => {
      const abs = absPath(this.ws.root, o.path);
      if (!existsSync(abs)) return;
      renameSync(abs, join(stashFolder(this.stashDir, stage.name, true)!, String(i)));
    });
    super.prepare(stage);
  }

  override async ran(stage: StageSpec, info: StageKeyInfo, job: Job, result: JobResult, recorded: Recorded, _executor: string, aborted: boolean): Promise<CommitVerdict> {
    const bad = await this.checkJob(stage, info, job, result, recorded, aborted);
    if (bad) {
      this.unstash(stage);
      return bad;
    }
    const record = this.expected.get(stage.name)!;
    const now = await hashOutputs(stage, this.ws);
    const { outputs, notCompared } = await this.compare(stage, record, now);
    if (outputs.length > 0) this.say({ stage: stage.name, verdict: 'differs', outputs });
    else if (notCompared.length > 0) {
      this.say({
        stage: stage.name,
        verdict: 'reproduced',
        code: 'not-compared',
        reason: `every recorded output reproduced; not compared: ${notCompared.join(', ')} (cache: false, so no record holds its content, and the workspace's last run of this stage had other inputs)`,
      });
    } else this.say({ stage: stage.name, verdict: 'reproduced' });
    this.discard(stage);
    this.unstash(stage);
    // Stages below get this stage's provenance as the recorded run gave it (ctx.upstream): the recorded hashes, not
    // a re-hash of the scratch copy, which holds only the files some stage reads (a report would print the rest
    // as missing and differ for no fault of its own).
    this.ws.index.set(stage.name, { key: info.key, outputs: recordedIndex(stage, record, now) });
    return { status: 'ran', record, disagreements: [] };
  }

  override async persist(): Promise<void> {}

  private unstash(stage: StageSpec): void {
    // The stage ran in the scratch and could replace the stash with a link: nothing is moved back through it.
    const dir = stashFolder(this.stashDir, stage.name, false);
    stage.outs.forEach((o, i) => {
      if (dir === undefined) return;
      const from = join(dir, String(i));
      if (!existsSync(from)) return;
      // Nor put back, or its path deleted, where the re-run made the out resolve outside (a folder of it turned into a
      // link): the policy's fresh check, as discard does; an out that is itself such a link loses only the link.
      const refused = this.ws.outs.check(o.path, { fresh: true });
      if (refused && !refused.linkOnly) return;
      const abs = absPath(this.ws.root, o.path);
      rmSync(abs, { recursive: true, force: true });
      mkdirSync(dirname(abs), { recursive: true });
      renameSync(from, abs);
    });
    this.forget(stage);
  }

  /**
   * Outputs whose re-run differs; for directories, the files that differ in them. A `cache: false` output has no
   * record: it is compared with the hash the workspace's last run left when that run had the record's key, and
   * named as not compared otherwise.
   */
  private async compare(
    stage: StageSpec,
    record: RunRecord,
    now: ReadonlyMap<string, PathHash>,
  ): Promise<{ outputs: NonNullable<Verdict['outputs']>; notCompared: string[] }> {
    const recorded = new Map(record.outputs.map((o) => [outPathKey(o.path), o]));
    const last = this.lastRuns.get(stage.name);
    const left = last?.key === record.key ? new Map(last.outputs.map((o) => [outPathKey(o.path), o.hash])) : undefined;
    const diffs: NonNullable<Verdict['outputs']> = [];
    const notCompared: string[] = [];
    for (const o of stage.outs) {
      const h = now.get(o.path)!;
      const r = recorded.get(outPathKey(o.path));
      if (!r) {
        // Not stored, so only a hash to compare with: nothing to list file by file.
        const was = left?.get(outPathKey(o.path));
        if (was === undefined || was === null) notCompared.push(o.path);
        else if (was !== h.hash) diffs.push({ path: o.path, recorded: was, now: h.hash });
        continue;
      }
      if (h.hash === r.hash) continue;
      const d: NonNullable<Verdict['outputs']>[number] = { path: o.path, recorded: r.hash, now: h.hash };
      if (r.kind === 'dir' && h.kind === 'dir') {
        const files = await this.fileDiff(r.hash, absPath(this.ws.root, o.path), o.path);
        if (files) d.files = files;
      }
      diffs.push(d);
    }
    return { outputs: diffs, notCompared };
  }

  /** Files added, removed or changed in a directory output (its manifest now against the recorded one). */
  private async fileDiff(recordedHash: Hash, abs: string, rel: string): Promise<{ changed: string[]; added: string[]; removed: string[] } | undefined> {
    try {
      const before = new Map((await this.recordedStore.readManifest(recordedHash)).map((e) => [e[0], e[1]]));
      const put = await this.ws.store.put(abs, rel);
      const after = new Map((await this.ws.store.readManifest(put.hash)).map((e) => [e[0], e[1]]));
      return {
        changed: [...after].filter(([f, h]) => before.has(f) && before.get(f) !== h).map(([f]) => f),
        added: [...after.keys()].filter((f) => !before.has(f)),
        removed: [...before.keys()].filter((f) => !after.has(f)),
      };
    } catch {
      return undefined; // the recorded manifest is gone from the cache: the directory's hash says enough
    }
  }
}

/**
 * A verified stage's index entry, in its declared order: each output as its record stored it; a `cache: false`
 * output (never recorded) as the re-run wrote it.
 */
function recordedIndex(stage: StageSpec, record: RunRecord, now: ReadonlyMap<string, PathHash>): IndexedOutput[] {
  const recorded = new Map(record.outputs.map((o) => [outPathKey(o.path), o]));
  return stage.outs.map((o) => {
    const r = recorded.get(outPathKey(o.path));
    const h = r ?? now.get(o.path)!;
    return { path: o.path, hash: h.hash, size: h.size, files: h.files, ...(h.kind === 'dir' || o.path.endsWith('/') ? { dir: true } : {}), ...execBits(h) };
  });
}

/**
 * The folder a stage's recorded outputs are moved aside to while it re-runs (`<stash>/<stage>`). The re-run runs in
 * the scratch and can write its `.pipe/`: a link it put at either folder's name would make verify move files outside
 * the scratch, or move a file from outside in (and delete it with the scratch). Never followed (cache/dir.ts): with
 * `make`, missing folders are made and anything else there is refused; else undefined when either is not a real folder.
 */
function stashFolder(stash: string, stage: string, make: boolean): string | undefined {
  const parts = [dirname(stash), basename(stash), safeName(stage)] as const;
  if (make) return ownFolderSync(...parts);
  return ownFoldersIntact(...parts) ? join(stash, safeName(stage)) : undefined;
}
