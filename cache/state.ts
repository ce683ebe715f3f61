/**
 * HashState: a memo from a file's stat identity to its sha256, so a no-op run over a 100,000-file dataset costs
 * stat calls, not reads.
 *
 * Identity = (dev, ino, size, mtime_ns, ctime_ns), keyed by absolute path:
 *  - dev+ino: a file replaced by another one (rename over, restore from cache) is a new file even with equal times;
 *  - size: cheap and catches most edits on filesystems with coarse timestamps;
 *  - mtime_ns: an ordinary edit;
 *  - ctime_ns: cannot be set by user space, so `touch -d`/utimes/rsync -t restoring an old mtime after an edit is
 *    still noticed (the kernel bumps ctime on every content or metadata change).
 *
 * "Racily clean" files (git's term): timestamps come from a coarse kernel clock (a few ms locally, up to seconds on
 * NFS), so a file hashed in the same tick as its last write could be rewritten, same size, without its identity
 * changing. Such a file is hashed but not memoised: only a file whose mtime and ctime are older than the start of
 * its hashing by `racyWindowMs` enters the memo. Recently written files are therefore re-read until they age.
 *
 * The memo is grouped by directory (Map<dir, Map<name, entry>>): a walk looks a directory up once and then short
 * names (hashing a fresh 60-char path string per file measured ~1 µs of 5), and the file on disk gets the directory
 * written once per group instead of once per file. Walking a directory also prunes entries of files and
 * subdirectories that no longer exist, so the memo does not grow forever.
 *
 * Persistence: text, one line per directory (`/abs/dir`) followed by one tab-separated line per file
 * (name, dev, ino, size, mtime_ns, ctime_ns, hash), written to a temp file and renamed, only when something
 * changed. Identities stay text until first compared (parsing 5 bigints is cheaper than printing them). If another
 * process rewrote the file since it was loaded, its entries are merged in before writing, so two processes sharing
 * a state file do not drop each other's work (and a lost race costs a re-read later, never a wrong hash).
 */
import { lstatSync, readFileSync, statfsSync, statSync, type BigIntStats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { ownFolderSync } from './dir.js';
import { readRegularFile } from './read.js';
import { asHash, trustedHash } from './brand.js';
import { CacheError } from './errors.js';
import { isExecutable } from './exec.js';
import { hashBytes, hashFile, hashSmallFileSync, SYNC_READ_MAX } from './hash.js';
import { isLinkEntry, manifestJson, type FileEntry, type ManifestEntry } from './manifest.js';
import { mapPool } from './pool.js';
import type { Hash, HashState, PathHash } from './types.js';
import { ManifestView } from './view.js';
import { resolvePath } from './paths.js';
import { walk, type LinkPolicy, type WalkSummary } from './walk.js';

const HEADER = 'pipe-hashstate\t2';
/** ~130 bytes a file: two million files' identities. A state file past this is not pipe's, and is no memo. */
const MAX_STATE_BYTES = 256 * 1024 * 1024;
/** Placeholder for a hash being read; always overwritten before the manifest is built. */
const PENDING = asHash('0'.repeat(64));

export interface HashStateOptions {
  /** A file is memoised only when its mtime and ctime are this much older than its hashing. Default 2000 ms. */
  racyWindowMs?: number;
  /** Concurrent streamed reads of large (> 4 MiB) files the memo does not know. Default 4. */
  readConcurrency?: number;
  /**
   * Tracked trees (see `track`): after this many change reports in all, a tree's incremental view is dropped and
   * the next hash walks it again. Default: half the kernel's inotify queue (`fs.inotify.max_queued_events`), so a
   * burst that could have overflowed the queue (events the watcher never saw) always means a full walk.
   */
  maxChanges?: number;
}

/** Counters for tests and benchmarks: proof that a no-op run reads nothing. */
export interface HashStateStats {
  /** Files whose identity matched the memo (not read). */
  hits: number;
  /** Files read and hashed. */
  reads: number;
  bytesRead: number;
  /** Tracked directories answered from their incremental view (no walk), and the paths re-checked for it. */
  incremental: number;
  rechecked: number;
}

export interface DirHash {
  hash: Hash;
  size: number;
  files: number;
  /** Sorted manifest (what the hash is computed over). */
  entries: ManifestEntry[];
  /** `follow` only: the symbolic links the walk went through (absolute paths), when there were any. */
  links?: readonly string[];
  /** `keep` only (outputs): the executable files (relative paths, sorted), when there are any (cache/exec.ts). */
  executables?: string[];
}

export interface HashOptions {
  /**
   * `follow` (default; dependencies): a symlink is hashed as what it points to. `keep` (directory outputs): a
   * symlink is a manifest entry of its own, `[path, target]`, as the Store stores it.
   */
  links?: LinkPolicy;
  /**
   * Walk a tracked directory (see `track`) even if its incremental view is current: for checks that must see the
   * disk itself, not the watcher's account of it (the engine's dep check after a stage ran).
   */
  fresh?: boolean;
}

/** The HashState plus what the Store, the watcher and tests use. */
export interface LocalHashState extends HashState {
  readonly stats: HashStateStats;
  /** Number of memoised files. */
  readonly size: number;
  hashPath(absPath: string, opts?: HashOptions): Promise<PathHash>;
  hashDir(absDir: string, opts?: HashOptions): Promise<DirHash>;
  /** The memoised hash of a file whose current stat is `st`, without reading anything; undefined if unknown. */
  peek(absPath: string, st: BigIntStats): Hash | undefined;
  /**
   * Memoise that the file at `absPath`, whose stat was `st` when reading it began at `readStartMs`, has `hash`
   * (unless racily clean: see the header). For bytes hashed elsewhere, e.g. a cache object verified by the Store.
   */
  remember(absPath: string, st: BigIntStats, hash: Hash, readStartMs: number): void;
  /**
   * Our own metadata call (link(2), chmod, utimes) changed a file's ctime but not its bytes: if the memo vouched for
   * its identity `before`, it now vouches for `after` (same inode, size and mtime: a write in between would have
   * moved the mtime). Otherwise nothing is memoised and the next check reads the file.
   */
  vouch(absPath: string, before: BigIntStats, after: BigIntStats): void;
  /**
   * Incremental hashing for a watched directory (engine/watch): from now on the caller reports through `changed`
   * every path below `absDir` that is created, written, removed or renamed. The next hash of the directory walks it
   * once; later hashes re-check only the reported paths and recombine the hash from an in-memory view. A tree is
   * walked in full whenever the view cannot be trusted: symlinks or hard-linked files in it (a change through the
   * other name reaches no watcher of this tree), another filesystem inside it, a network or FUSE filesystem (changes
   * made on another host raise no local event), or more reports than `maxChanges`.
   */
  track(absDir: string): void;
  /**
   * Drop memo entries below `absDir` whose file no longer exists (a stat each), e.g. cache objects `pipe gc`
   * deleted: entries are only pruned when their directory is walked, and nothing walks the store.
   */
  pruneMissing(absDir: string): number;
  /** Stop trusting reports for `absDir` (its watcher stopped or missed part of the tree): walk it again. */
  untrack(absDir: string): void;
  /** A path changed (from a watcher event). Cheap; paths outside tracked directories only count toward the limit. */
  changed(absPath: string): void;
}

/** A memo entry: the identity as persisted (text), parsed to bigints on first comparison. */
class MemoEntry {
  private parsed: bigint[] | undefined;
  constructor(
    readonly id: string, // dev \t ino \t size \t mtime_ns \t ctime_ns
    readonly hash: Hash,
  ) {}

  matches(st: BigIntStats): boolean {
    const p = (this.parsed ??= parseIdentity(this.id));
    return p[3] === st.mtimeNs && p[4] === st.ctimeNs && p[2] === st.size && p[1] === st.ino && p[0] === st.dev;
  }
}

const NEVER = [-1n, -1n, -1n, -1n, -1n];
function parseIdentity(id: string): bigint[] {
  try {
    const out = new Array<bigint>(5);
    let from = 0;
    for (let k = 0; k < 5; k++) {
      const to = k === 4 ? id.length : id.indexOf('\t', from);
      if (to < 0 || to === from) return NEVER;
      out[k] = BigInt(id.slice(from, to));
      from = to + 1;
    }
    return from === id.length + 1 ? out : NEVER;
  } catch {
    return NEVER; // damaged line: never matches, so the file is simply re-read
  }
}

function identity(st: BigIntStats): string {
  return `${st.dev}\t${st.ino}\t${st.size}\t${st.mtimeNs}\t${st.ctimeNs}`;
}

type Memo = Map<string, Map<string, MemoEntry>>;

interface Miss {
  i: number;
  dir: string;
  name: string;
  abs: string;
  st: BigIntStats;
}

/** A directory under incremental hashing (see LocalHashState.track). */
interface Tracked {
  /** The tree as of the last hash, or undefined: the next hash walks it. */
  view: ManifestView | undefined;
  /** Its device (a path reported on another device means a mount point: walk again). */
  dev: bigint;
  /** Paths reported changed since the view was taken. */
  dirty: Set<string>;
  /** `changes` when the view was taken: more than maxChanges reports since then (anywhere) drop it. */
  changesAtView: number;
  /** Why this tree is always walked in full (its filesystem), if it is. */
  never: string | undefined;
  /** The hash of this tree in progress (they run one at a time). */
  queue: Promise<void>;
}

export async function openHashState(stateFile: string, opts: HashStateOptions = {}): Promise<LocalHashState> {
  const stamp = fileStamp(stateFile);
  return new FileHashState(stateFile, await load(stateFile), stamp, opts);
}

class FileHashState implements LocalHashState {
  readonly stats: HashStateStats = { hits: 0, reads: 0, bytesRead: 0, incremental: 0, rechecked: 0 };
  private dirty = false;
  private readonly racyNs: bigint;
  private readonly concurrency: number;
  private readonly maxChanges: number;
  private readonly tracked = new Map<string, Tracked>();
  /** Change reports received in all (see `changed`). */
  private changes = 0;

  constructor(
    private readonly file: string,
    private readonly memo: Memo,
    /** The state file's identity when loaded or last written: another process's flush changes it. */
    private stamp: string,
    opts: HashStateOptions,
  ) {
    this.racyNs = BigInt(Math.round((opts.racyWindowMs ?? 2000) * 1e6));
    this.concurrency = opts.readConcurrency ?? 4;
    this.maxChanges = opts.maxChanges ?? defaultMaxChanges();
  }

  get size(): number {
    let n = 0;
    for (const m of this.memo.values()) n += m.size;
    return n;
  }

  async hashPath(path: string, opts: HashOptions = {}): Promise<PathHash> {
    // Normalised, so `data/`, `data` and `data//x` share memo entries (the engine writes directories with a `/`).
    const absPath = resolvePath(path);
    // statSync: ~10x cheaper than a promise round trip, and the engine calls this once per dep of every stage.
    let st: BigIntStats | undefined;
    try {
      st = statSync(absPath, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
    }
    if (st === undefined) {
      this.forget(dirname(absPath), basename(absPath));
      return { kind: 'missing', hash: null, size: 0, files: 0 };
    }
    if (st.isFile()) {
      const dir = dirname(absPath);
      const name = basename(absPath);
      const out: Hash[] = [];
      const hit = this.memo.get(dir)?.get(name);
      if (hit?.matches(st)) {
        this.stats.hits++;
        out[0] = hit.hash;
      } else {
        await this.readMisses([{ i: 0, dir, name, abs: absPath, st }], out);
      }
      // An output's executable bit, from the stat just taken (cache/exec.ts).
      return { kind: 'file', hash: out[0]!, size: Number(st.size), files: 1, ...(opts.links === 'keep' && isExecutable(st.mode) ? { executable: true } : {}) };
    }
    if (st.isDirectory()) {
      const d = await this.hashDir(absPath, opts);
      return { kind: 'dir', hash: d.hash, size: d.size, files: d.files, ...(d.links ? { links: d.links } : {}), ...(d.executables ? { executables: d.executables } : {}) };
    }
    throw new CacheError(`${absPath} is not a regular file or directory; pipe cannot hash it.`, 'special-file', absPath);
  }

  peek(absPath: string, st: BigIntStats): Hash | undefined {
    const m = this.memo.get(dirname(absPath))?.get(basename(absPath));
    return m?.matches(st) ? m.hash : undefined;
  }

  remember(absPath: string, st: BigIntStats, hash: Hash, readStartMs: number): void {
    this.memoise(dirname(absPath), basename(absPath), st, hash, BigInt(readStartMs) * 1_000_000n);
  }

  vouch(absPath: string, before: BigIntStats, after: BigIntStats): void {
    const dir = dirname(absPath);
    const name = basename(absPath);
    const m = this.memo.get(dir)?.get(name);
    if (m === undefined || !m.matches(before)) return;
    if (after.ino === before.ino && after.dev === before.dev && after.size === before.size && after.mtimeNs === before.mtimeNs) {
      this.memo.get(dir)!.set(name, new MemoEntry(identity(after), m.hash));
    } else {
      this.memo.get(dir)!.delete(name);
    }
    this.dirty = true;
  }

  async hashDir(dirPath: string, opts: HashOptions = {}): Promise<DirHash> {
    const absDir = resolve(dirPath);
    const links = opts.links ?? 'follow';
    const t = links === 'follow' ? this.tracked.get(absDir) : undefined;
    if (t === undefined) {
      const { dir, summary } = await this.walkDir(absDir, links);
      return { ...dir, hash: hashBytes(manifestJson(dir.entries)), ...followed(links, summary) };
    }
    // One hash of a tracked tree at a time: a second caller must not see the view half updated.
    const run = t.queue.then(() => this.hashTracked(absDir, t, opts.fresh === true));
    t.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async hashTracked(absDir: string, t: Tracked, fresh: boolean): Promise<DirHash> {
    if (!fresh && t.view !== undefined && this.changes - t.changesAtView <= this.maxChanges) {
      let view: ManifestView | undefined;
      try {
        view = await this.applyChanges(absDir, t, t.view);
      } catch (e) {
        t.view = undefined;
        throw e;
      }
      if (view !== undefined) {
        this.stats.incremental++;
        return {
          hash: view.hash(),
          size: view.size,
          files: view.files,
          get entries() {
            return view.entries();
          },
        };
      }
    }
    // A full walk. Reports from its start on stay in `dirty` for the next hash to re-check.
    t.view = undefined;
    t.dirty.clear();
    const at = this.changes;
    t.changesAtView = at;
    const { dir, summary } = await this.walkDir(absDir, 'follow');
    const trusted = t.never === undefined && summary.links.length === 0 && summary.hardlinked === 0 && !summary.crossDevice;
    if (!trusted || this.tracked.get(absDir) !== t || this.changes - at > this.maxChanges) return { ...dir, hash: hashBytes(manifestJson(dir.entries)), ...followed('follow', summary) };
    // The view renders the manifest chunk by chunk (the same bytes): later hashes re-render only edited chunks.
    const view = new ManifestView(dir.entries);
    t.view = view;
    return { ...dir, hash: view.hash() };
  }

  /** Walk all of a directory: its sorted manifest entries, size and file count (the caller hashes them). */
  private async walkDir(absDir: string, links: LinkPolicy): Promise<{ dir: Omit<DirHash, 'hash'>; summary: WalkSummary }> {
    // One pass: stat, look up, and keep only (rel, hash, size) per file; stats are kept for misses alone.
    const entries: ManifestEntry[] = [];
    // An output's executable files, from the stats the walk takes anyway (no syscall of its own).
    const keep = links === 'keep';
    const executables: string[] = [];
    const misses: Miss[] = [];
    const hashes: Hash[] = [];
    const visited = new Set<string>();
    let curDir = '';
    let curMap: Map<string, MemoEntry> | undefined;
    let names: string[] = [];
    let found = 0; // names of this directory that the memo has: equal to its size means nothing was deleted
    const endDir = (): void => {
      if (curMap !== undefined && curMap.size > found) this.prune(curMap, names);
    };
    const enter = (dir: string): void => {
      if (dir === curDir) return;
      endDir();
      curDir = dir;
      curMap = this.memo.get(dir);
      names = [];
      found = 0;
      visited.add(dir);
    };
    const summary = walk(
      absDir,
      (rel, abs, st, dir, name) => {
        enter(dir);
        names.push(name);
        const i = entries.length;
        const m = curMap?.get(name);
        if (m !== undefined) found++;
        let hit: Hash | undefined;
        if (m !== undefined && m.matches(st)) {
          hit = m.hash;
          hashes[i] = hit;
        } else {
          misses.push({ i, dir, name, abs, st });
        }
        entries.push([rel, hit ?? PENDING, Number(st.size)]);
        if (keep && isExecutable(st.mode)) executables.push(rel);
      },
      {
        links,
        onLink: (rel, _abs, target, dir, name) => {
          // A kept link is an entry of its own; its name stays "present" so the memo does not prune what a
          // follow-mode hash of the same folder memoised for it.
          enter(dir);
          names.push(name);
          if (curMap?.has(name)) found++;
          entries.push([rel, target]);
        },
      },
    );
    endDir();
    this.stats.hits += entries.length - misses.length;
    this.pruneDirs(absDir, visited);
    if (misses.length > 0) {
      await this.readMisses(misses, hashes);
      for (const m of misses) entries[m.i]![1] = hashes[m.i]!;
    }
    entries.sort(byEntryRel); // nearly sorted already (walk.ts sorts each directory): TimSort is ~linear here
    let size = 0;
    let files = 0;
    for (const e of entries) {
      if (isLinkEntry(e)) continue;
      size += e[2];
      files++;
    }
    // Walk order is per directory; the list is sorted like the manifest (it is usually empty).
    return { dir: { size, files, entries, ...(executables.length > 0 ? { executables: executables.sort() } : {}) }, summary };
  }

  // ---------------------------------------------------------------- incremental (tracked) directories

  track(dirPath: string): void {
    const absDir = resolve(dirPath);
    if (this.tracked.has(absDir)) return;
    let dev = -1n;
    let never: string | undefined;
    try {
      dev = statSync(absDir, { bigint: true }).dev;
      never = untrackableFs(absDir);
    } catch {
      never = 'it could not be stat-ed';
    }
    this.tracked.set(absDir, { view: undefined, dev, dirty: new Set(), changesAtView: this.changes, never, queue: Promise.resolve() });
  }

  untrack(dirPath: string): void {
    this.tracked.delete(resolve(dirPath));
  }

  changed(absPath: string): void {
    this.changes++;
    for (const [root, t] of this.tracked) {
      if (absPath !== root && !absPath.startsWith(`${root}/`)) continue;
      t.dirty.add(absPath);
      if (t.dirty.size > this.maxChanges) {
        // Too many to re-check one by one (and the view is dropped by the count anyway): walk next time.
        t.dirty.clear();
        t.view = undefined;
      }
    }
  }

  /**
   * Bring a tracked tree's view up to date by re-checking the reported paths: a file is re-stat'ed (read only when
   * its identity changed), a directory re-walked, a missing path removed with everything below it. Returns
   * undefined when the view cannot be trusted for what was found (the caller walks the whole tree).
   */
  private async applyChanges(root: string, t: Tracked, view: ManifestView): Promise<ManifestView | undefined> {
    if (t.dirty.size === 0) return view;
    // Shortest first: a re-walked directory covers every reported path below it.
    const paths = [...t.dirty].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    t.dirty.clear();
    t.changesAtView = this.changes;
    const walked: string[] = [];
    const misses: Miss[] = [];
    const pending: Array<ManifestEntry> = [];
    for (const abs of paths) {
      if (abs === root) return undefined; // the folder itself was replaced or renamed
      if (walked.some((w) => abs.startsWith(`${w}/`))) continue;
      this.stats.rechecked++;
      const rel = abs.slice(root.length + 1);
      let st: BigIntStats | undefined;
      try {
        st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
      }
      if (st === undefined) {
        view.removeTree(rel);
        this.forget(dirname(abs), basename(abs));
        continue;
      }
      if (st.isSymbolicLink() || st.dev !== t.dev) return undefined;
      if (st.isFile()) {
        if (st.nlink > 1n) return undefined;
        view.removeTree(rel); // it may have been a directory before
        const hit = this.memo.get(dirname(abs))?.get(basename(abs));
        if (hit?.matches(st)) {
          this.stats.hits++;
          pending.push([rel, hit.hash, Number(st.size)]);
        } else {
          misses.push({ i: pending.length, dir: dirname(abs), name: basename(abs), abs, st });
          pending.push([rel, PENDING, Number(st.size)]);
        }
      } else if (st.isDirectory()) {
        view.removeTree(rel);
        walked.push(abs);
        const sub = await this.walkDir(abs, 'follow');
        if (sub.summary.links.length > 0 || sub.summary.hardlinked > 0 || sub.summary.crossDevice) return undefined;
        for (const e of sub.dir.entries as FileEntry[]) view.upsert([`${rel}/${e[0]}`, e[1], e[2]]);
      } else {
        return undefined; // a FIFO or device: the full walk reports it properly
      }
    }
    if (misses.length > 0) {
      const hashes: Hash[] = [];
      await this.readMisses(misses, hashes);
      for (const m of misses) pending[m.i]![1] = hashes[m.i]!;
    }
    for (const e of pending) view.upsert(e);
    return view;
  }

  // ---------------------------------------------------------------- memo upkeep

  pruneMissing(dirPath: string): number {
    const root = resolve(dirPath);
    let n = 0;
    for (const [dir, map] of this.memo) {
      if (dir !== root && !dir.startsWith(`${root}/`)) continue;
      for (const name of [...map.keys()]) {
        if (lstatSync(`${dir}/${name}`, { throwIfNoEntry: false }) !== undefined) continue;
        map.delete(name);
        n++;
      }
      if (map.size === 0) this.memo.delete(dir);
    }
    if (n > 0) this.dirty = true;
    return n;
  }

  /** Drop entries of files no longer in a walked directory (called only when the counts say some are gone). */
  private prune(map: Map<string, MemoEntry>, present: string[]): void {
    const keep = new Set(present);
    for (const k of map.keys()) {
      if (!keep.has(k)) {
        map.delete(k);
        this.dirty = true;
      }
    }
  }

  /** Drop memoised directories under `root` that the walk did not meet (deleted subdirectories). */
  private pruneDirs(root: string, visited: Set<string>): void {
    const prefix = `${root}/`;
    for (const d of this.memo.keys()) {
      if ((d === root || d.startsWith(prefix)) && !visited.has(d)) {
        this.memo.delete(d);
        this.dirty = true;
      }
    }
  }

  private forget(dir: string, name: string): void {
    const m = this.memo.get(dir);
    if (m?.delete(name)) this.dirty = true;
    const sub = `${dir}/${name}`;
    if (this.memo.has(sub)) this.pruneDirs(sub, new Set());
  }

  /**
   * Read and hash the files the memo did not know; memoise them unless racily clean. Small files are read with
   * synchronous calls in slices of ~20 ms (yielding to the event loop between slices, so progress output and
   * signals still flow); large ones are streamed a few at a time.
   */
  private async readMisses(misses: readonly Miss[], out: Hash[]): Promise<void> {
    // Taken before reading: a write after this instant that keeps the identity is caught by the racy window.
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const large: Miss[] = [];
    let sliceStart = Date.now();
    for (const m of misses) {
      const size = Number(m.st.size);
      if (size > SYNC_READ_MAX) {
        large.push(m);
        continue;
      }
      const hash = hashSmallFileSync(m.abs, size); // into one process-wide buffer: no allocation per call
      if (hash === undefined) large.push(m); // grew since its stat: stream it
      else this.recordRead(m, hash, startNs, out);
      if (Date.now() - sliceStart > 20) {
        await new Promise((r) => setImmediate(r));
        sliceStart = Date.now();
      }
    }
    await mapPool(large, this.concurrency, async (m) => this.recordRead(m, await hashFile(m.abs), startNs, out));
  }

  private recordRead({ i, dir, name, st }: Miss, hash: Hash, startNs: bigint, out: Hash[]): void {
    out[i] = hash;
    this.stats.reads++;
    this.stats.bytesRead += Number(st.size);
    this.memoise(dir, name, st, hash, startNs);
  }

  private memoise(dir: string, name: string, st: BigIntStats, hash: Hash, startNs: bigint): void {
    const newest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    let map = this.memo.get(dir);
    if (newest + this.racyNs < startNs) {
      if (map === undefined) this.memo.set(dir, (map = new Map()));
      map.set(name, new MemoEntry(identity(st), hash));
      this.dirty = true;
    } else if (map?.delete(name)) {
      this.dirty = true;
    }
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    if (fileStamp(this.file) !== this.stamp) {
      // Another process (e.g. `pipe status` beside `pipe run`) wrote the file since we read it: keep its entries
      // too. Every entry is a fact (this identity had this hash), so merging is safe; stale ones get pruned later.
      for (const [dir, theirs] of await load(this.file)) {
        let mine = this.memo.get(dir);
        if (mine === undefined) this.memo.set(dir, (mine = new Map()));
        for (const [name, e] of theirs) if (!mine.has(name)) mine.set(name, e);
      }
    }
    const lines: string[] = [HEADER];
    for (const [dir, map] of this.memo) {
      if (map.size === 0) continue;
      lines.push(escapePath(dir));
      for (const [name, e] of map) lines.push(`${escapePath(name)}\t${e.id}\t${e.hash}`);
    }
    lines.push('');
    ownFolderSync(dirname(this.file)); // `.pipe` as it was when opened, never a link a stage put at its name since
    await writeFileAtomic(this.file, lines.join('\n'));
    this.stamp = fileStamp(this.file);
    this.dirty = false;
  }
}

/**
 * Filesystems whose every change raises a local inotify event (Linux). On NFS, SMB, FUSE (sshfs...), 9p, Ceph,
 * Lustre or GPFS another host or the daemon can change files without one, so a tracked tree there is always walked.
 */
const LOCAL_FS = new Set([
  0xef53, // ext2/3/4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x2fc12fc1, // zfs
  0x794c7630, // overlayfs
  0xf2f52010, // f2fs
]);

function untrackableFs(absDir: string): string | undefined {
  if (process.platform !== 'linux') return `incremental hashing is only trusted on Linux (${process.platform})`;
  const type = statfsSync(absDir).type;
  return LOCAL_FS.has(type) ? undefined : `its filesystem (type 0x${type.toString(16)}) may change without local events`;
}

function defaultMaxChanges(): number {
  try {
    const q = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim());
    if (Number.isFinite(q) && q > 0) return Math.max(1, Math.floor(q / 2));
  } catch {
    // Not Linux: no queue to overflow; keep a modest bound anyway.
  }
  return 8192;
}

function fileStamp(file: string): string {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeNs}` : '';
}

/** A follow-mode walk's links, for DirHash.links (absent when none: the usual folder carries nothing extra). */
function followed(policy: LinkPolicy, summary: WalkSummary): { links?: readonly string[] } {
  return policy === 'follow' && summary.links.length > 0 ? { links: summary.links } : {};
}

function byEntryRel(a: ManifestEntry, b: ManifestEntry): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A missing, foreign or older-version state file is an empty memo: the state is a cache, never a source of truth. */
async function load(file: string): Promise<Memo> {
  const memo: Memo = new Map();
  // Bounded and non-blocking: a stage's command can write .pipe, and a FIFO here would hang every run. Whatever is
  // not a regular file within the bound is no memo; the next save replaces it.
  const text = await readRegularFile(file, MAX_STATE_BYTES);
  if (text === undefined) return memo;
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return memo;
  let map: Map<string, MemoEntry> | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.charCodeAt(0) === 47 /* '/' */) {
      // A directory line (file names never contain '/').
      const dir = line.includes('\\') ? unescapePath(line) : line;
      map = memo.get(dir);
      if (map === undefined) memo.set(dir, (map = new Map()));
      continue;
    }
    const a = line.indexOf('\t');
    const b = line.lastIndexOf('\t');
    // name \t 5 identity fields \t 64-hex hash; anything else (a damaged line) is skipped.
    const hash = b > a ? trustedHash(line.slice(b + 1)) : undefined;
    if (map === undefined || a <= 0 || hash === undefined) continue;
    const name = line.slice(0, a);
    map.set(name.includes('\\') ? unescapePath(name) : name, new MemoEntry(line.slice(a + 1, b), hash));
  }
  return memo;
}

// Names may contain tabs, newlines and backslashes; escape them so one line stays one entry.
const NEEDS_ESCAPE = /[\\\t\n\r]/;
function escapePath(p: string): string {
  if (!NEEDS_ESCAPE.test(p)) return p;
  return p.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}
function unescapePath(p: string): string {
  return p.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}
