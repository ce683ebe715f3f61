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
 * Persistence: one tab-separated line per file (path, dev, ino, size, mtime_ns, ctime_ns, hash), written to a temp
 * file and renamed, and only when something changed. Loading 100,000 lines is a split, not a parse (see
 * bench/hashstate.ts). Two processes sharing a state file may each overwrite the other's additions: that loses
 * memo entries (a later re-read), never correctness.
 */
import type { BigIntStats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { asHash, isHashHex } from './brand.js';
import { CacheError } from './errors.js';
import { hashBytes, hashFileSized } from './hash.js';
import { manifestJson, type ManifestEntry } from './manifest.js';
import { mapPool } from './pool.js';
import type { Hash, HashState, PathHash } from './types.js';
import { byRel, walkFiles, type WalkedFile } from './walk.js';

const HEADER = 'pipe-hashstate\t1';

export interface HashStateOptions {
  /** A file is memoised only when its mtime and ctime are this much older than its hashing. Default 2000 ms. */
  racyWindowMs?: number;
  /** Concurrent file reads when hashing files the memo does not know. Default 8. */
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
}

interface MemoEntry {
  id: string; // dev \t ino \t size \t mtime_ns \t ctime_ns, exactly as persisted
  hash: Hash;
}

export async function openHashState(stateFile: string, opts: HashStateOptions = {}): Promise<LocalHashState> {
  const memo = await load(stateFile);
  return new FileHashState(stateFile, memo, opts);
}

function identity(st: BigIntStats): string {
  return `${st.dev}\t${st.ino}\t${st.size}\t${st.mtimeNs}\t${st.ctimeNs}`;
}

class FileHashState implements LocalHashState {
  readonly stats: HashStateStats = { hits: 0, reads: 0, bytesRead: 0 };
  private dirty = false;
  private readonly racyNs: bigint;
  private readonly concurrency: number;

  constructor(
    private readonly file: string,
    private readonly memo: Map<string, MemoEntry>,
    opts: HashStateOptions,
  ) {
    this.racyNs = BigInt(Math.round((opts.racyWindowMs ?? 2000) * 1e6));
    this.concurrency = opts.readConcurrency ?? 8;
  }

  get size(): number {
    return this.memo.size;
  }

  async hashPath(absPath: string): Promise<PathHash> {
    let st: BigIntStats;
    try {
      st = await stat(absPath, { bigint: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (this.memo.delete(absPath)) this.dirty = true;
        return { kind: 'missing', hash: null, size: 0, files: 0 };
      }
      throw e;
    }
    if (st.isFile()) {
      const hash = (await this.lookupOrRead([{ rel: '', abs: absPath, st }]))[0]!;
      return { kind: 'file', hash, size: Number(st.size), files: 1 };
    }
    if (st.isDirectory()) {
      const d = await this.hashDir(absPath);
      return { kind: 'dir', hash: d.hash, size: d.size, files: d.files };
    }
    throw new CacheError(`${absPath} is not a regular file or directory; pipe cannot hash it.`, 'special-file', absPath);
  }

  async hashDir(absDir: string): Promise<DirHash> {
    const files = walkFiles(absDir).sort(byRel);
    const hashes = await this.lookupOrRead(files);
    const entries = new Array<ManifestEntry>(files.length);
    let size = 0;
    for (let i = 0; i < files.length; i++) {
      const n = Number(files[i]!.st.size);
      size += n;
      entries[i] = [files[i]!.rel, hashes[i]!, n];
    }
    return { hash: hashBytes(manifestJson(entries)), size, files: files.length, entries };
  }

  /** Memo hits cost nothing; misses are read with bounded concurrency and memoised unless racily clean. */
  private async lookupOrRead(files: readonly WalkedFile[]): Promise<Hash[]> {
    const out = new Array<Hash>(files.length);
    const misses: number[] = [];
    const ids = new Array<string>(files.length);
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      const id = identity(f.st);
      const m = this.memo.get(f.abs);
      if (m !== undefined && m.id === id) {
        out[i] = m.hash;
      } else {
        ids[i] = id;
        misses.push(i);
      }
    }
    this.stats.hits += files.length - misses.length;
    if (misses.length === 0) return out;
    // Taken before reading: a write after this instant that keeps the identity is caught by the racy window.
    const startNs = BigInt(Date.now()) * 1_000_000n;
    await mapPool(misses, this.concurrency, async (i) => {
      const f = files[i]!;
      const hash = await hashFileSized(f.abs, Number(f.st.size));
      out[i] = hash;
      this.stats.reads++;
      this.stats.bytesRead += Number(f.st.size);
      const newest = f.st.mtimeNs > f.st.ctimeNs ? f.st.mtimeNs : f.st.ctimeNs;
      if (newest + this.racyNs < startNs) {
        this.memo.set(f.abs, { id: ids[i]!, hash });
        this.dirty = true;
      } else if (this.memo.delete(f.abs)) {
        this.dirty = true;
      }
    });
    return out;
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    const lines: string[] = [HEADER];
    for (const [path, e] of this.memo) lines.push(`${escapePath(path)}\t${e.id}\t${e.hash}`);
    lines.push('');
    await writeFileAtomic(this.file, lines.join('\n'));
    this.dirty = false;
  }
}

/** A missing or unreadable state file is an empty memo: the state is a cache, never a source of truth. */
async function load(file: string): Promise<Map<string, MemoEntry>> {
  const memo = new Map<string, MemoEntry>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return memo;
    throw e;
  }
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return memo; // unknown version: start afresh rather than trust it
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const a = line.indexOf('\t');
    const b = line.lastIndexOf('\t');
    // path \t 5 identity fields \t 64-hex hash; anything else (a torn tail) is skipped.
    if (a <= 0 || b <= a || line.length - b !== 65) continue;
    const hex = line.slice(b + 1);
    if (!isHashHex(hex)) continue;
    const path = line.slice(0, a);
    memo.set(path.includes('\\') ? unescapePath(path) : path, { id: line.slice(a + 1, b), hash: asHash(hex) });
  }
  return memo;
}

// Paths may contain tabs, newlines and backslashes; escape them so one line stays one entry.
const NEEDS_ESCAPE = /[\\\t\n\r]/;
function escapePath(p: string): string {
  if (!NEEDS_ESCAPE.test(p)) return p;
  return p.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}
function unescapePath(p: string): string {
  return p.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}
