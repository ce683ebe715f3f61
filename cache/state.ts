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
import { statSync, type BigIntStats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { asHash, trustedHash } from './brand.js';
import { CacheError } from './errors.js';
import { hashBytes, hashFile, hashSmallFileSync, SYNC_READ_MAX } from './hash.js';
import { manifestJson, type ManifestEntry } from './manifest.js';
import { mapPool } from './pool.js';
import type { Hash, HashState, PathHash } from './types.js';
import { walk } from './walk.js';

const HEADER = 'pipe-hashstate\t2';
/** Placeholder for a hash being read; always overwritten before the manifest is built. */
const PENDING = asHash('0'.repeat(64));

export interface HashStateOptions {
  /** A file is memoised only when its mtime and ctime are this much older than its hashing. Default 2000 ms. */
  racyWindowMs?: number;
  /** Concurrent streamed reads of large (> 4 MiB) files the memo does not know. Default 4. */
  readConcurrency?: number;
}

/** Counters for tests and benchmarks: proof that a no-op run reads nothing. */
export interface HashStateStats {
  /** Files whose identity matched the memo (not read). */
  hits: number;
  /** Files read and hashed. */
  reads: number;
  bytesRead: number;
}

export interface DirHash {
  hash: Hash;
  size: number;
  files: number;
  /** Sorted manifest (what the hash is computed over). */
  entries: ManifestEntry[];
}

/** The HashState plus what the Store and tests use. */
export interface LocalHashState extends HashState {
  readonly stats: HashStateStats;
  /** Number of memoised files. */
  readonly size: number;
  hashDir(absDir: string): Promise<DirHash>;
  /** The memoised hash of a file whose current stat is `st`, without reading anything; undefined if unknown. */
  peek(absPath: string, st: BigIntStats): Hash | undefined;
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

export async function openHashState(stateFile: string, opts: HashStateOptions = {}): Promise<LocalHashState> {
  const stamp = fileStamp(stateFile);
  return new FileHashState(stateFile, await load(stateFile), stamp, opts);
}

class FileHashState implements LocalHashState {
  readonly stats: HashStateStats = { hits: 0, reads: 0, bytesRead: 0 };
  private dirty = false;
  private readonly racyNs: bigint;
  private readonly concurrency: number;

  constructor(
    private readonly file: string,
    private readonly memo: Memo,
    /** The state file's identity when loaded or last written: another process's flush changes it. */
    private stamp: string,
    opts: HashStateOptions,
  ) {
    this.racyNs = BigInt(Math.round((opts.racyWindowMs ?? 2000) * 1e6));
    this.concurrency = opts.readConcurrency ?? 4;
  }

  get size(): number {
    let n = 0;
    for (const m of this.memo.values()) n += m.size;
    return n;
  }

  async hashPath(path: string): Promise<PathHash> {
    // Normalised, so `data/`, `data` and `data//x` share memo entries (the engine writes directories with a `/`).
    const absPath = resolve(path);
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
      return { kind: 'file', hash: out[0]!, size: Number(st.size), files: 1 };
    }
    if (st.isDirectory()) {
      const d = await this.hashDir(absPath);
      return { kind: 'dir', hash: d.hash, size: d.size, files: d.files };
    }
    throw new CacheError(`${absPath} is not a regular file or directory; pipe cannot hash it.`, 'special-file', absPath);
  }

  peek(absPath: string, st: BigIntStats): Hash | undefined {
    const m = this.memo.get(dirname(absPath))?.get(basename(absPath));
    return m?.matches(st) ? m.hash : undefined;
  }

  async hashDir(dirPath: string): Promise<DirHash> {
    const absDir = resolve(dirPath);
    // One pass: stat, look up, and keep only (rel, hash, size) per file; stats are kept for misses alone.
    const entries: ManifestEntry[] = [];
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
    walk(absDir, (rel, abs, st, dir, name) => {
      if (dir !== curDir) {
        endDir();
        curDir = dir;
        curMap = this.memo.get(dir);
        names = [];
        found = 0;
        visited.add(dir);
      }
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
    });
    endDir();
    this.stats.hits += entries.length - misses.length;
    this.pruneDirs(absDir, visited);
    if (misses.length > 0) {
      await this.readMisses(misses, hashes);
      for (const m of misses) entries[m.i]![1] = hashes[m.i]!;
    }
    entries.sort(byEntryRel); // nearly sorted already (walk.ts sorts each directory): TimSort is ~linear here
    let size = 0;
    for (const e of entries) size += e[2];
    return { hash: hashBytes(manifestJson(entries)), size, files: entries.length, entries };
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
    await writeFileAtomic(this.file, lines.join('\n'));
    this.stamp = fileStamp(this.file);
    this.dirty = false;
  }
}

function fileStamp(file: string): string {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeNs}` : '';
}

function byEntryRel(a: ManifestEntry, b: ManifestEntry): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A missing, foreign or older-version state file is an empty memo: the state is a cache, never a source of truth. */
async function load(file: string): Promise<Memo> {
  const memo: Memo = new Map();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return memo;
    throw e;
  }
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
