/**
 * The content-addressed Store: each file's bytes are an object named by its sha256 at
 * `<root>/objects/<hash[0:2]>/<hash[2:]>`; a directory is its files' objects plus its manifest (manifest.ts) stored
 * as an object named by the directory's hash.
 *
 * Why it is safe for two `pipe` processes (or two hosts on a shared filesystem) at once:
 *  - an object is written under a unique name in `<root>/tmp/` (same filesystem), made read-only, then renamed into
 *    place: readers never see a torn object, and two processes putting the same bytes each rename a whole, identical
 *    file; an object already present is not rewritten (only its mtime is refreshed, which gc's grace period reads);
 *  - the object's name is computed from the bytes actually copied, never from an earlier hash of a file that may
 *    have changed since, so an object can never be misnamed.
 *
 * Restores are staged beside the destination and renamed over it; modes are tried in order:
 *  - reflink: copy-on-write clone (btrfs, XFS, APFS...): instant, own inode, edits never reach the object;
 *  - hardlink: shares the object's inode (instant, no space). Editing such a file IN PLACE would corrupt the cache,
 *    so both are read-only and the mode is opt-in;
 *  - copy: a streamed copy that re-hashes the bytes on the way; a corrupt object is deleted and reported.
 *
 * Files up to 4 MiB (the many small files of a dataset) are put and restored with synchronous calls in ~20 ms slices
 * that yield to the event loop: measured 5-10x less CPU per file than the promise API (bench/hashstate.ts); larger
 * files are streamed a few at a time.
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  copyFile,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { asHash } from './brand.js';
import { removeDeadTemps, tempName } from './atomic.js';
import { CacheError } from './errors.js';
import { hashBytes } from './hash.js';
import { manifestJson, parseManifest, type ManifestEntry } from './manifest.js';
import { mapPool, Slicer } from './pool.js';
import type { LocalHashState } from './state.js';
import type { Hash, RestoreMode, Store, StoredOutput } from './types.js';
import { byRel, walk } from './walk.js';

export interface StoreOptions {
  /** When given, files whose memoised hash is already an object are not read again (a stat instead of a read). */
  state?: LocalHashState;
  /** Concurrent file copies for directories. Default 8. */
  concurrency?: number;
}

/** The Store plus helpers the engine and gc use. */
export interface LocalStore extends Store {
  objectPath(hash: Hash): string;
  /** A stored directory's manifest, verified against its hash. */
  readManifest(hash: Hash): Promise<ManifestEntry[]>;
  /** A stored file's bytes, verified against its hash (e.g. an old metrics file for `pipe metrics`). */
  readObject(hash: Hash): Promise<Buffer>;
}

const SMALL = 4 * 1024 * 1024;

/** What was stored for one file: the hash and length of the bytes actually copied. */
interface Put {
  hash: Hash;
  size: number;
}
const CHUNK = 1024 * 1024;

export function openStore(root: string, opts: StoreOptions = {}): LocalStore {
  return new ContentStore(root, opts);
}

class ContentStore implements LocalStore {
  private readonly concurrency: number;
  constructor(
    readonly root: string,
    private readonly opts: StoreOptions,
  ) {
    this.concurrency = opts.concurrency ?? 8;
  }

  objectPath(hash: Hash): string {
    return `${this.root}/objects/${hash.slice(0, 2)}/${hash.slice(2)}`;
  }

  // ---------------------------------------------------------------- put

  async put(path: string, relPath: string): Promise<StoredOutput> {
    const absPath = resolve(path); // `out/` and `out` alike (and the same memo keys as the HashState's)
    let st: BigIntStats;
    try {
      st = await stat(absPath, { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CacheError(`${absPath} (declared output ${relPath}) does not exist, so it cannot be stored.`, 'not-found', absPath);
      }
      throw e;
    }
    if (st.isFile()) {
      const known = this.opts.state?.peek(absPath, st);
      const size = Number(st.size);
      const p = size <= SMALL ? this.putSmallSync(absPath, size, known) : await this.putFile(absPath, size, known);
      return { path: relPath, kind: 'file', hash: p.hash, size: p.size, files: 1 };
    }
    if (!st.isDirectory()) {
      throw new CacheError(`${absPath} (declared output ${relPath}) is not a regular file or directory.`, 'special-file', absPath);
    }
    const files: Array<{ rel: string; abs: string; size: number; known: Hash | undefined }> = [];
    const state = this.opts.state;
    // Keep what is needed, not the stats (1.5 KB each).
    walk(absPath, (rel, abs, st) => files.push({ rel, abs, size: Number(st.size), known: state?.peek(abs, st) }));
    files.sort(byRel);
    // Hash and size of the bytes actually stored (a file still growing would otherwise disagree with its stat).
    const stored = new Array<Put>(files.length);
    const large: number[] = [];
    const slicer = new Slicer();
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      if (f.size > SMALL) {
        large.push(i);
        continue;
      }
      stored[i] = this.putSmallSync(f.abs, f.size, f.known);
      await slicer.tick();
    }
    await mapPool(large, this.concurrency, async (i) => {
      stored[i] = await this.putFile(files[i]!.abs, files[i]!.size, files[i]!.known);
    });
    const entries = files.map((f, i): ManifestEntry => [f.rel, stored[i]!.hash, stored[i]!.size]);
    const json = manifestJson(entries);
    const hash = hashBytes(json);
    await this.putBytes(hash, json);
    const size = entries.reduce((s, e) => s + e[2], 0);
    return { path: relPath.endsWith('/') ? relPath : `${relPath}/`, kind: 'dir', hash, size, files: files.length };
  }

  /** putFile for a small file, synchronously: read once, hash, write the temp object, rename. */
  private putSmallSync(abs: string, statSize: number, known: Hash | undefined): Put {
    if (known && this.touchIfPresentSync(known)) return { hash: known, size: statSize };
    const bytes = readFileSync(abs);
    const hash = hashBytes(bytes);
    if (this.touchIfPresentSync(hash)) return { hash, size: bytes.length };
    const tmpDir = `${this.root}/tmp`;
    mkdirSync(tmpDir, { recursive: true });
    const tmp = `${tmpDir}/${process.pid}-${randomBytes(8).toString('hex')}`;
    try {
      writeFileSync(tmp, bytes, { flag: 'wx', mode: 0o444 });
      const obj = this.objectPath(hash);
      mkdirSync(dirname(obj), { recursive: true });
      renameSync(tmp, obj); // atomic; a racing identical rename just replaces equal bytes
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return { hash, size: bytes.length };
  }

  private touchIfPresentSync(hash: Hash): boolean {
    try {
      const now = new Date();
      utimesSync(this.objectPath(hash), now, now);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      if (code === 'EPERM' || code === 'EACCES') return true;
      throw e;
    }
  }

  /**
   * Store one file; returns the hash of the bytes actually stored. `known` is the hash memo's answer for the file's
   * current identity: when that object is already stored, nothing is read (a re-stored unchanged output).
   */
  private async putFile(abs: string, statSize: number, known: Hash | undefined): Promise<Put> {
    if (known && (await this.touchIfPresent(known))) return { hash: known, size: statSize };
    const tmp = await this.tmpPath();
    try {
      const put = await copyHashing(abs, tmp, 0o444);
      await this.commit(tmp, put.hash);
      return put;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  private async putBytes(hash: Hash, bytes: string | Buffer): Promise<void> {
    if (await this.touchIfPresent(hash)) return;
    const tmp = await this.tmpPath();
    try {
      const fh = await open(tmp, 'wx', 0o444);
      try {
        await fh.writeFile(bytes);
      } finally {
        await fh.close();
      }
      await this.commit(tmp, hash);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /** Rename a finished temp object into place unless an identical object is already there. */
  private async commit(tmp: string, hash: Hash): Promise<void> {
    if (await this.touchIfPresent(hash)) {
      await rm(tmp, { force: true });
      return;
    }
    const obj = this.objectPath(hash);
    await mkdir(dirname(obj), { recursive: true });
    await rename(tmp, obj); // atomic; a racing identical rename just replaces equal bytes
  }

  /** Present objects get a fresh mtime so a concurrent gc's grace period spares them until a record points at them. */
  private async touchIfPresent(hash: Hash): Promise<boolean> {
    const obj = this.objectPath(hash);
    try {
      const now = new Date();
      await utimes(obj, now, now);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      if (code === 'EPERM' || code === 'EACCES') return true; // someone else's object on a shared cache: present
      throw e;
    }
  }

  private async tmpPath(): Promise<string> {
    const dir = `${this.root}/tmp`;
    await mkdir(dir, { recursive: true });
    return `${dir}/${process.pid}-${randomBytes(8).toString('hex')}`;
  }

  // ---------------------------------------------------------------- has / read

  async has(out: StoredOutput): Promise<boolean> {
    if (!(await exists(this.objectPath(out.hash)))) return false;
    if (out.kind === 'file') return true;
    let entries: ManifestEntry[];
    try {
      entries = await this.readManifest(out.hash);
    } catch (e) {
      if (e instanceof CacheError) return false;
      throw e;
    }
    // Sync existence checks in slices: a 100,000-file output is 100,000 stats, ~5x cheaper than via promises.
    const slicer = new Slicer();
    for (const e of entries) {
      if (!existsSync(this.objectPath(e[1]))) return false;
      await slicer.tick();
    }
    return true;
  }

  async readManifest(hash: Hash): Promise<ManifestEntry[]> {
    const text = (await this.readObject(hash)).toString('utf8');
    return parseManifest(text, this.objectPath(hash));
  }

  async readObject(hash: Hash): Promise<Buffer> {
    const obj = this.objectPath(hash);
    let bytes: Buffer;
    try {
      bytes = await readFile(obj);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing(obj, hash);
      throw e;
    }
    if (hashBytes(bytes) !== hash) {
      await rm(obj, { force: true });
      throw corrupt(obj, hash);
    }
    return bytes;
  }

  // ---------------------------------------------------------------- restore

  async restore(out: StoredOutput, absDest: string, modes: RestoreMode[]): Promise<void> {
    const tryModes: RestoreMode[] = modes.length > 0 ? [...modes] : ['copy'];
    await mkdir(dirname(absDest), { recursive: true });
    await removeDeadTemps(absDest, ['pipe-restore', 'pipe-old']); // left by a restore that crashed
    const staged = tempName(absDest, 'pipe-restore');
    try {
      if (out.kind === 'file') {
        if (out.size <= SMALL) this.placeSmallSync(out.hash, staged, tryModes);
        else await this.placeFile(out.hash, staged, tryModes);
      } else {
        const entries = await this.readManifest(out.hash);
        await mkdir(staged);
        const dirs = new Set<string>();
        for (const [rel] of entries) {
          const i = rel.lastIndexOf('/');
          if (i > 0) dirs.add(rel.slice(0, i));
        }
        for (const d of [...dirs].sort()) mkdirSync(join(staged, d), { recursive: true });
        const large: ManifestEntry[] = [];
        const slicer = new Slicer();
        for (const e of entries) {
          if (e[2] > SMALL) {
            large.push(e);
            continue;
          }
          this.placeSmallSync(e[1], join(staged, e[0]), tryModes);
          await slicer.tick();
        }
        await mapPool(large, this.concurrency, (e) => this.placeFile(e[1], join(staged, e[0]), tryModes));
      }
      await swapInto(staged, absDest);
    } catch (e) {
      await rm(staged, { recursive: true, force: true });
      throw e;
    }
  }

  /** placeFile for a small object, synchronously (same modes, same fallbacks, same verification). */
  private placeSmallSync(hash: Hash, dest: string, modes: RestoreMode[]): void {
    const obj = this.objectPath(hash);
    for (const mode of [...modes]) {
      try {
        if (mode === 'reflink') {
          copyFileSync(obj, dest, constants.COPYFILE_FICLONE_FORCE);
          chmodSync(dest, 0o644);
        } else if (mode === 'hardlink') {
          linkSync(obj, dest);
          chmodSync(dest, 0o444);
        } else {
          const bytes = readFileSync(obj);
          if (hashBytes(bytes) !== hash) {
            rmSync(obj, { force: true });
            throw corrupt(obj, hash);
          }
          writeFileSync(dest, bytes, { flag: 'wx', mode: 0o644 });
        }
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && !existsSync(obj)) throw missing(obj, hash);
        if (mode !== 'copy' && code !== undefined && UNSUPPORTED.has(code)) {
          rmSync(dest, { force: true });
          const i = modes.indexOf(mode);
          if (i >= 0 && modes.length > 1) modes.splice(i, 1);
          continue;
        }
        throw e;
      }
    }
    throw noMode(dest, modes);
  }

  /**
   * Materialise one object at `dest` (a fresh name) using the first mode that works. A mode the filesystem does not
   * support is dropped from `modes` (shared by the whole restore), so a 100,000-file directory tries it once.
   */
  private async placeFile(hash: Hash, dest: string, modes: RestoreMode[]): Promise<void> {
    const obj = this.objectPath(hash);
    for (const mode of [...modes]) {
      try {
        if (mode === 'reflink') {
          await copyFile(obj, dest, constants.COPYFILE_FICLONE_FORCE);
          await chmod(dest, 0o644); // the clone inherits the object's 0444; the restored file is the user's
        } else if (mode === 'hardlink') {
          await link(obj, dest);
          await chmod(dest, 0o444); // same inode as the object: keep both read-only
        } else {
          const got = await copyHashing(obj, dest, 0o644);
          if (got.hash !== hash) {
            await rm(dest, { force: true });
            await rm(obj, { force: true });
            throw corrupt(obj, hash);
          }
        }
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && !(await exists(obj))) throw missing(obj, hash);
        if (mode !== 'copy' && code !== undefined && UNSUPPORTED.has(code)) {
          await rm(dest, { force: true });
          const i = modes.indexOf(mode);
          if (i >= 0 && modes.length > 1) modes.splice(i, 1);
          continue;
        }
        throw e;
      }
    }
    throw noMode(dest, modes);
  }
}

/** errno codes meaning "this filesystem can't do that mode", as opposed to a real failure. */
const UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS', 'EINVAL', 'EPERM', 'EMLINK', 'ENOTTY']);

/**
 * Copy `src` to a new file `dest` (must not exist) while hashing the bytes written, so the hash names exactly what
 * was stored. Streamed in 1 MiB chunks: used for large files (small ones go through the sync paths).
 */
async function copyHashing(src: string, dest: string, mode: number): Promise<Put> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let inp: FileHandle | undefined;
  let outp: FileHandle | undefined;
  let size = 0;
  try {
    inp = await open(src, 'r');
    outp = await open(dest, 'wx', mode);
    for (;;) {
      const { bytesRead } = await inp.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      h.update(chunk);
      await outp.write(chunk, 0, bytesRead);
      size += bytesRead;
    }
  } finally {
    await inp?.close();
    await outp?.close();
  }
  return { hash: asHash(h.digest('hex')), size };
}

/**
 * Put a staged file or directory at `dest`. A file replaces a file atomically (rename). A directory cannot be
 * renamed over a non-empty one, so the old one is first renamed aside (a brief moment with nothing at `dest`, never
 * a mix of old and new files), then deleted.
 */
async function swapInto(staged: string, dest: string): Promise<void> {
  try {
    await rename(staged, dest);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'ENOTDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
  }
  const aside = tempName(dest, 'pipe-old');
  try {
    await rename(dest, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // moved away meanwhile: nothing to set aside
  }
  try {
    await rename(staged, dest);
  } catch (e) {
    await rename(aside, dest).catch(() => undefined); // put the old one back rather than leave nothing
    throw e;
  }
  await rm(aside, { recursive: true, force: true });
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function noMode(dest: string, modes: RestoreMode[]): CacheError {
  return new CacheError(
    `could not restore ${dest}: none of the restore modes [${modes.join(', ')}] is supported here; add 'copy'.`,
    'missing-object',
    dest,
  );
}

function corrupt(obj: string, hash: Hash): CacheError {
  return new CacheError(
    `cache object ${obj} is corrupt (its content no longer hashes to ${hash}); it has been deleted. The stage that ` +
      `produced it will run again.`,
    'corrupt-object',
    obj,
  );
}

function missing(obj: string, hash: Hash): CacheError {
  return new CacheError(`cache object ${hash} is missing from the store (${obj}); it was garbage-collected or deleted.`, 'missing-object', obj);
}

