/**
 * The `.pipe/` folder of a workspace and the caches in it: hash state, object store, run cache, logs, scratch, and
 * the per-pipeline index of each stage's latest key and output identities (one small JSON file read per no-op run
 * instead of one run record per stage). Opening a workspace registers it (with the pipeline's lock file) in the
 * store's registry, so `pipe gc` in another workspace sharing the store keeps what this one references.
 */
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, relative } from 'node:path';
import { writeFileAtomicSync } from '../cache/atomic.js';
import { ownFolderSync, ownFoldersIntact, pinBase } from '../cache/dir.js';
import { readRegularFileSync } from '../cache/read.js';
import { isHashHex } from '../cache/brand.js';
import { openHashState } from '../cache/state.js';
import { openStore } from '../cache/store.js';
import { openRunCache } from '../cache/runs.js';
import { registerWorkspace } from '../cache/registry.js';
import { lockPath } from './lockfile.js';
import type { LocalHashState } from '../cache/state.js';
import type { LocalStore } from '../cache/store.js';
import type { LocalRunCache } from '../cache/runs.js';
import type { ExecBits } from '../cache/types.js';
import type { Pipeline } from './model.js';
import { OutPolicy } from './out-policy.js';
import { useKindMemo } from './kinds.js';

export interface Workspace {
  root: string;
  pipeDir: string;
  logsDir: string;
  tmpDir: string;
  state: LocalHashState;
  store: LocalStore;
  runs: LocalRunCache;
  index: StageIndex;
  /** Where outputs may be written, deleted, restored and hashed (engine/out-policy.ts). */
  outs: OutPolicy;
}

export function pipeDirOf(p: Pipeline): string {
  return join(p.workdir, '.pipe');
}

export async function openWorkspace(p: Pipeline): Promise<Workspace> {
  const pipeDir = pipeDirOf(p);
  mkdirSync(pipeDir, { recursive: true });
  // `.pipe` and the store's root are taken as they are now (a link to another disk included), and only so: a stage
  // that moves either away while pipe runs has pipe's writes under it refused (cache/dir.ts).
  pinBase(pipeDir);
  const state = await openHashState(join(pipeDir, 'hashstate'));
  useKindMemo(join(pipeDir, 'kinds.json'));
  // The store shares the memo: an output whose hash is known and already stored is not copied again, and an object
  // whose identity the memo vouches for is served without being read again. Links inside directory outputs must
  // stay inside the workspace.
  const store = openStore(p.settings.cacheDir, { state, workspace: p.workdir });
  // Run records are kept in the store too: every workspace sharing it restores through them.
  const runs = openRunCache(join(pipeDir, 'runs'), { store });
  await registerWorkspace(p.settings.cacheDir, { root: p.workdir, pipeDir, pipeline: p.file, lock: lockPath(p.file) });
  pinBase(p.settings.cacheDir); // made by the registration (unless the store is read-only: nothing is written there then)
  pinBase(dirname(lockPath(p.file))); // the lock file's folder: the pipeline's own, in the workspace
  return {
    root: p.workdir,
    pipeDir,
    logsDir: join(pipeDir, 'logs'),
    tmpDir: join(pipeDir, 'tmp'),
    state,
    store,
    runs,
    index: StageIndex.open(indexFileOf(p)),
    outs: OutPolicy.of(p, pipeDir),
  };
}

/** One of pipe's own folders under `.pipe` (`logs`, `tmp`, `exp`): made when missing, refused when anything else is there. */
export function ownFolder(dir: string): string {
  return ownFolderSync(dirname(dir), basename(dir));
}

/** The pipeline's index file: one per pipeline file (two pipelines may share stage names). */
export function indexFileOf(p: Pipeline): string {
  return join(pipeDirOf(p), 'index', `${pipelineSlug(p)}.json`);
}

/** A file-name-safe id of a pipeline file within its workspace: `paper.yaml-1a2b3c4d5e`. */
export function pipelineSlug(p: Pipeline): string {
  const rel = relative(p.workdir, p.file);
  const h = createHash('sha256').update(rel).digest('hex').slice(0, 10);
  return `${basename(p.file).replace(/[^\w.-]/g, '_')}-${h}`;
}

/** An output as its stage left it: hash, size, and which files were executable (ExecBits, cache/exec.ts). */
export interface IndexedOutput extends ExecBits {
  path: string;
  hash: string | null;
  size: number;
  files: number;
  /** A directory (declared `dir/`, or `dir` found to be one). */
  dir?: boolean;
}

export interface IndexEntry {
  key: string;
  outputs: IndexedOutput[];
}

/**
 * stage → the key of its latest completed run and the identities of the outputs it left. Only a shortcut: a stage
 * is up to date when its current key equals the entry's and its outputs on disk still hash to these values.
 */
/** What pipe last wrote to the lock file, so an unchanged lock file is neither re-read nor re-rendered. */
export interface LockMeta {
  size: number;
  mtimeMs: number;
  /** stage → digest of the entry written for it. */
  entries: Record<string, string>;
}

interface IndexFile {
  version: 1;
  stages: Record<string, IndexEntry>;
  lock?: LockMeta;
}

/** An index of 100,000 stages is ~40 MB; one past this is not pipe's. */
const MAX_INDEX_BYTES = 256 * 1024 * 1024;

export class StageIndex {
  private dirty = false;
  private constructor(
    private readonly file: string,
    private readonly data: IndexFile,
  ) {}

  static open(file: string): StageIndex {
    let data: IndexFile = { version: 1, stages: {} };
    try {
      // Bounded and non-blocking: a stage's command can write .pipe, and a FIFO here would hang every run.
      // Only from pipe's own `index` folder, never through a link a stage put at its name (cache/dir.ts).
      const own = ownFoldersIntact(dirname(dirname(file)), basename(dirname(file)));
      const parsed = JSON.parse((own && readRegularFileSync(file, MAX_INDEX_BYTES)) || '') as IndexFile;
      if (parsed.version === 1 && isMap(parsed.stages)) data = parsed;
    } catch {
      // Missing, unreadable, not a regular file or over the bound: every stage falls back to the run cache, and
      // the run's save replaces it.
    }
    return new StageIndex(file, data);
  }

  /**
   * The entry of `stage`, when it has the shape pipe writes. The file is any stage's to write: an entry of another
   * shape (`outputs: 5`, a key that is no hash) is no entry, so planning falls back to the run cache instead of
   * crashing (`pipe status` with a stack trace) or failing the stage; the run's save replaces it.
   */
  get(stage: string): IndexEntry | undefined {
    const e = Object.hasOwn(this.data.stages, stage) ? this.data.stages[stage] : undefined;
    return wellFormedEntry(e) ? e : undefined;
  }

  set(stage: string, entry: IndexEntry): void {
    // An own property, for a stage named `__proto__` too (assigned, it would set the object's prototype).
    Object.defineProperty(this.data.stages, stage, { value: entry, enumerable: true, writable: true, configurable: true });
    this.dirty = true;
  }

  get lock(): LockMeta | undefined {
    const m = this.data.lock;
    return isMap(m) && Number.isFinite(m.size) && Number.isFinite(m.mtimeMs) && isMap(m.entries) ? m : undefined;
  }

  set lock(meta: LockMeta | undefined) {
    this.data.lock = meta;
    this.dirty = true;
  }

  /** Atomic write, only when something changed. */
  save(): void {
    if (!this.dirty) return;
    // Into a real `.pipe/index` folder, never through a link a stage put at its name (cache/dir.ts).
    ownFolder(dirname(this.file));
    writeFileAtomicSync(this.file, JSON.stringify(this.data));
    this.dirty = false;
  }
}

function wellFormedEntry(e: unknown): e is IndexEntry {
  return (
    isMap(e) &&
    typeof e.key === 'string' &&
    isHashHex(e.key) &&
    Array.isArray(e.outputs) &&
    e.outputs.every(
      (o: unknown) => isMap(o) && typeof o.path === 'string' && (o.hash === null || typeof o.hash === 'string') && Number.isFinite(o.size) && Number.isFinite(o.files),
    )
  );
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
