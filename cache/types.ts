/**
 * The cache's public types. `cache/` depends on nothing else in this project; the engine depends on these.
 *
 * Implementations (one concept per file):
 *  - cache/hash.ts   streaming sha256 of files; canonical JSON hashing.
 *  - cache/state.ts  HashState: (dev, ino, size, mtime_ns, ctime_ns) → hash memo, so unchanged files are never re-read.
 *  - cache/store.ts  Store: content-addressed objects verified before served, atomic put, restore by
 *                    reflink/hardlink/copy.
 *  - cache/runs.ts   RunCache: RunRecords by StageKey (any earlier matching run restores; shared through the store;
 *                    the first result of a key stays, disagreements recorded) + per-stage history.
 *  - cache/lock.ts   WorkspaceLock: one writer per workspace; a second waits or is told who holds it.
 *  - cache/gc.ts     remove objects no registered workspace's lock file or recent run references.
 */

/** A sha256 digest in lowercase hex (64 chars). Branded so a path or key can't be passed where a hash is meant. */
export type Hash = string & { readonly __brand: 'Hash' };
/** The hash identifying one stage computation (see engine/fingerprint.ts for its fields). */
export type StageKey = string & { readonly __brand: 'StageKey' };

/**
 * A hashed path. A directory's hash is the sha256 of its manifest: the canonical JSON of its entries sorted by
 * relPath (`/`-separated): `[relPath, fileHash, size]` per file, and `[relPath, target]` per symlink kept in a
 * directory output (cache/manifest.ts); the manifest is stored in the Store under that hash, so a directory output
 * can be restored from its hash alone. Hashed with `links: 'keep'` (outputs), it also says which files are executable
 * (ExecBits), read from the stats the hash takes anyway.
 */
export interface PathHash extends ExecBits {
  kind: 'file' | 'dir' | 'missing';
  hash: Hash | null; // null when missing
  size: number; // bytes (sum for a directory)
  files: number; // 1 for a file, file count for a directory
  /**
   * A directory hashed following links: the links inside it that were followed (absolute paths), when there were
   * any. Where they lead decides the DAG's edges no less than the paths a stage declares (engine/run/dep-links.ts).
   */
  links?: readonly string[];
}

/**
 * Which files of an output were executable (any execute bit set) when it was stored or hashed: not part of any hash
 * (an object is its bytes, kept with read bits only), recorded beside it and given back by a restore
 * (docs/cache.md "File modes"). Absent means none: records of outputs without the bit are byte-for-byte what
 * earlier versions wrote, and earlier records read as "none executable".
 */
export interface ExecBits {
  /** A file output: it was executable. */
  executable?: true;
  /** A directory output: its executable files, relative paths (`/`-separated), sorted; absent when none. */
  executables?: string[];
}

export interface HashState {
  /**
   * Hash a file or directory (absolute path), re-reading only files whose stat identity changed. Symlinks inside a
   * directory are followed unless `links: 'keep'` (how outputs are stored and hashed).
   */
  hashPath(absPath: string, opts?: { links?: 'follow' | 'keep'; fresh?: boolean }): Promise<PathHash>;
  /** Persist the memo (atomic write); cheap when nothing changed. */
  flush(): Promise<void>;
}

export type RestoreMode = 'reflink' | 'hardlink' | 'copy';

export interface StoredOutput extends ExecBits {
  /**
   * Workspace-relative path as declared (`dir` or `dir/`; records of older versions say `dir/` for both): compare
   * with `outPathKey` (cache/paths.ts), never as raw strings.
   */
  path: string;
  kind: 'file' | 'dir';
  hash: Hash;
  size: number;
  files: number;
}

export interface Store {
  readonly root: string;
  /**
   * Store a file or directory (absolute path) and return what was stored, with `relPath` as the path. Atomic per
   * object; idempotent. Objects keep only their source's read bits; links inside a directory are stored as links.
   * The result says which files were executable (ExecBits).
   */
  put(absPath: string, relPath: string): Promise<StoredOutput>;
  /** True when the object (and for a directory, its manifest and every file object) is present as a regular file. */
  has(out: StoredOutput): Promise<boolean>;
  /**
   * Place `out` at `absDest` atomically (staged beside it, then renamed over any existing file/dir), trying the
   * modes in order. Every object is verified against its name before it is served (corrupt ones are evicted and a
   * `corrupt-object` CacheError thrown). A restored file never shares an inode with a cache object unless mode is
   * `hardlink`, and then it is read-only. Files `out` marks executable are restored executable, never as a link.
   */
  restore(out: StoredOutput, absDest: string, modes: RestoreMode[]): Promise<void>;
}

/** Everything needed to restore and to explain one stage run. */
export interface RunRecord {
  key: StageKey;
  stage: string;
  /** The fields the key was computed from (engine/fingerprint.ts KeyFields), kept for `pipe why`. */
  fields: Record<string, unknown>;
  outputs: StoredOutput[];
  startedAt: string; // ISO
  endedAt: string; // ISO
  durationMs: number;
  host: string;
  executor: string;
  jobId?: string;
  /** Extra provenance the stage recorded (e.g. tfjs backend); stages below see it (ctx.upstream). */
  extra?: Record<string, unknown>;
  /** Facts of this execution only (timings, worker counts): shown to people, never to other stages. */
  execution?: Record<string, unknown>;
  pipeVersion: string;
}

/** One output that two runs of one key produced differently (cache/runs.ts). */
export interface Disagreement {
  key: string;
  stage: string;
  /** The output as declared. */
  path: string;
  /** Its hash in the first (kept) result, and in the run that disagreed; null where that run had no such output. */
  first: string | null;
  second: string | null;
  /** When and where the disagreeing run ended. */
  at: string;
  host: string;
  /** Which result stayed in force: the first, unless its objects could no longer be served. */
  kept: 'first' | 'second';
}

export interface RunPut {
  /**
   * The record in force for the key: the earlier one when it disagrees and can still be served (the caller puts its
   * outputs back in the workspace), else the record given.
   */
  record: RunRecord;
  /** Outputs that differ from the earlier result under this key (empty when the bytes agree or nothing ran before). */
  disagreements: Disagreement[];
}

export interface RunCache {
  /** The record of `key`: this workspace's, else the one shared through the store. */
  get(key: StageKey): Promise<RunRecord | undefined>;
  /**
   * Record a completed run. Same key, different bytes: the first result stays (when it can still be served) and
   * the disagreement is recorded; `replace` (stages that always run) overwrites instead.
   */
  put(record: RunRecord, opts?: { replace?: boolean }): Promise<RunPut>;
  /** Earlier runs of a stage name, newest first (for `pipe why` and `pipe metrics`). */
  history(stage: string, limit?: number): Promise<RunRecord[]>;
  /** Record that one output of a key came out differently (`pipe verify` uses this too). */
  recordDisagreement(d: Disagreement): Promise<void>;
  /** Every disagreement recorded for `key` (one per output and pair of hashes). */
  disagreements(key: string): Promise<Disagreement[]>;
  /** Keys with a recorded disagreement (one directory listing per process, then cached). */
  nondeterministicKeys(): Promise<ReadonlySet<string>>;
}

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string; // ISO
  /** Why the lock file is not one pipe wrote (not a regular file, over its bound, not JSON): no process holds it. */
  unreadable?: string;
}

export interface WorkspaceLock {
  /**
   * Take the workspace lock. wait=false: fails with the holder if taken; wait=true: polls until free, calling
   * onWait(holder) once. A holder whose process is gone (same host) is stale and taken over. A lock file pipe cannot
   * read (`holder.unreadable`) fails at once, waiting or not: no process will release it.
   */
  acquire(opts: { wait: boolean; onWait?: (holder: LockHolder) => void; signal?: AbortSignal }): Promise<
    { ok: true; release: () => Promise<void> } | { ok: false; holder: LockHolder }
  >;
}
