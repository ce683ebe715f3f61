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
 * Nothing at rest is trusted (docs/cache.md "Verified before served"): every object is checked against its name
 * before its bytes reach a workspace. A copy re-hashes the bytes on the way; a reflink or hard link is checked
 * through the hash memo (a stat when the object's identity is unchanged since it was last verified, a read
 * otherwise). An object that does not hash to its name, or is not a regular file at all, is evicted and reported as
 * `corrupt-object`: the engine then runs the stage again.
 *
 * The store's own folders (`objects/`, its fan-out folders `objects/<2 hex>/`, `tmp/`) are never followed when they
 * are links: a stage's command can write a store inside the workspace, and a link there to a folder outside would
 * have pipe write objects there, link, chmod or evict files there as objects, or read them as objects. Such a link
 * (or a file at a folder's name) is never followed and never removed (cache/dir.ts): the objects behind it read as
 * missing, and putting one there is refused, naming it.
 *
 * Restores are staged beside the destination and renamed over it; modes are tried in order:
 *  - reflink: copy-on-write clone (btrfs, XFS, APFS...): instant, own inode, edits never reach the object;
 *  - hardlink: shares the object's inode (instant, no space). Both are read-only; an in-place edit (root, or after
 *    chmod) changes the object's identity, so the next restore re-reads it, finds it corrupt and evicts it;
 *  - copy: a streamed copy that re-hashes the bytes on the way.
 *
 * Modes: an object keeps only the read bits of the file it came from (a 0600 file gives a 0400 object, never a
 * world-readable one); a restored copy gets those read bits plus the owner's write bit. Which files were executable
 * is recorded beside the hash (cache/exec.ts); such a file is restored as its own file (clone or copy, never a hard
 * link) with an execute bit wherever it is readable.
 *
 * Files up to 4 MiB (the many small files of a dataset) are put and restored with synchronous calls in ~20 ms slices
 * that yield to the event loop: measured 5-10x less CPU per file than the promise API (bench/hashstate.ts); larger
 * files are streamed a few at a time.
 */
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, link, lstat, mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { asHash } from './brand.js';
import { tempName, tempOf } from './atomic.js';
import { CacheError } from './errors.js';
import { isExecutable, withExec } from './exec.js';
import { ownFolderSync, ownFoldersIntact } from './dir.js';
import { hashBytes, hashFile, hashSmallFileSync, openRegular, openRegularSync } from './hash.js';
import { isLinkEntry, manifestJson, parseManifest, type FileEntry, type ManifestEntry } from './manifest.js';
import { mapPool, Slicer } from './pool.js';
import { pidAlive } from './lock.js';
import type { LocalHashState } from './state.js';
import type { Hash, RestoreMode, Store, StoredOutput } from './types.js';
import { byRel, walk } from './walk.js';

export interface StoreOptions {
  /**
   * The hash memo: files whose memoised hash is already an object are not read again when put, and an object
   * whose identity the memo vouches for is served without re-reading it (reflink / hardlink restores).
   */
  state?: LocalHashState;
  /** Concurrent file copies for directories. Default 8. */
  concurrency?: number;
  /**
   * The workspace root: a symlink inside a directory output may point anywhere inside it (and is refused, with its
   * path named, when it points outside). Without it, links must stay inside the output directory itself.
   */
  workspace?: string;
}

/** The Store plus helpers the engine and gc use. */
export interface LocalStore extends Store {
  objectPath(hash: Hash): string;
  /** A stored directory's manifest, verified against its hash. */
  readManifest(hash: Hash): Promise<ManifestEntry[]>;
  /** A stored file's bytes, verified against its hash (e.g. an old metrics file for `pipe metrics`). */
  readObject(hash: Hash): Promise<Buffer>;
  /**
   * True when every object of `out` is present and verified (through the memo where it vouches, else by reading):
   * stronger and costlier than `has`; for deciding which of two recorded results can still be served.
   */
  verify(out: StoredOutput): Promise<boolean>;
}

const SMALL = 4 * 1024 * 1024;

/** The tempName tags of a restore's staging and of the output it set aside. */
const STAGED = 'pipe-restore';
const ASIDE = 'pipe-old';
export const RESTORE_TEMPS = [STAGED, ASIDE] as const;

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
    const st = statSync(absPath, { bigint: true, throwIfNoEntry: false });
    if (st === undefined) {
      throw new CacheError(`${absPath} (declared output ${relPath}) does not exist, so it cannot be stored.`, 'not-found', absPath);
    }
    // The path is returned as declared: the engine looks outputs up by its declared paths (see outPathKey).
    if (st.isFile()) {
      const known = this.opts.state?.peek(absPath, st);
      const size = Number(st.size);
      const mode = objectMode(st);
      const started = Date.now();
      const p = size <= SMALL ? this.putSmallSync(absPath, size, known, mode) : await this.putFile(absPath, size, known, mode);
      // The bytes were just hashed: the memo learns them (unless racily clean), so the engine's index of this output
      // costs no second read, now or on the next run.
      if (!known && p.size === size) this.opts.state?.remember(absPath, st, p.hash, started);
      return { path: relPath, kind: 'file', hash: p.hash, size: p.size, files: 1, ...(isExecutable(st.mode) ? { executable: true } : {}) };
    }
    if (!st.isDirectory()) {
      throw new CacheError(`${absPath} (declared output ${relPath}) is not a regular file or directory.`, 'special-file', absPath);
    }
    const files: Array<{ rel: string; abs: string; size: number; known: Hash | undefined; mode: number; exec: boolean }> = [];
    const links: ManifestEntry[] = [];
    const state = this.opts.state;
    const linkRoot = this.opts.workspace ?? absPath;
    // Keep what is needed, not the stats (1.5 KB each). Links are stored as links: never followed, so what they
    // point to is never copied into the cache.
    walk(absPath, (rel, abs, st) => files.push({ rel, abs, size: Number(st.size), known: state?.peek(abs, st), mode: objectMode(st), exec: isExecutable(st.mode) }), {
      links: 'keep',
      onLink: (rel, abs, target) => {
        if (!linkInside(linkRoot, abs, target)) throw linkOutside(`${relPath.replace(/\/$/, '')}/${rel}`, abs, target, this.opts.workspace !== undefined);
        links.push([rel, target]);
      },
    });
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
      stored[i] = this.putSmallSync(f.abs, f.size, f.known, f.mode);
      await slicer.tick();
    }
    await mapPool(large, this.concurrency, async (i) => {
      const f = files[i]!;
      stored[i] = await this.putFile(f.abs, f.size, f.known, f.mode);
    });
    const entries: ManifestEntry[] = files.map((f, i): ManifestEntry => [f.rel, stored[i]!.hash, stored[i]!.size]);
    if (links.length > 0) {
      entries.push(...links);
      entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    }
    const json = manifestJson(entries);
    const hash = hashBytes(json);
    await this.putBytes(hash, json, objectMode(st));
    const size = stored.reduce((s, p) => s + p.size, 0);
    const executables = files.filter((f) => f.exec).map((f) => f.rel); // sorted with `files`
    return { path: relPath, kind: 'dir', hash, size, files: files.length, ...(executables.length > 0 ? { executables } : {}) };
  }

  /** putFile for a small file, synchronously: read once, hash, write the temp object, rename. */
  private putSmallSync(abs: string, statSize: number, known: Hash | undefined, mode: number): Put {
    if (known && this.touchIfPresentSync(known, mode)) return { hash: known, size: statSize };
    const bytes = readRegularSync(abs);
    const hash = hashBytes(bytes);
    if (this.touchIfPresentSync(hash, mode)) return { hash, size: bytes.length };
    const tmp = `${ownFolderSync(this.root, 'tmp')}/${process.pid}-${randomBytes(8).toString('hex')}`;
    try {
      writeFileSync(tmp, bytes, { flag: 'wx', mode });
      chmodSync(tmp, mode); // exactly: the umask may have narrowed it further, never widened
      const obj = this.objectPath(hash);
      ownFolderSync(this.root, 'objects', hash.slice(0, 2));
      renameSync(tmp, obj); // atomic; a racing identical rename just replaces equal bytes
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return { hash, size: bytes.length };
  }

  /**
   * An object already stored: refresh its mtime (gc's grace period) and narrow its mode to `mode` if the file now
   * being stored is less readable. Something other than a regular file at its path (a directory put there by hand)
   * is evicted: the caller writes a proper object.
   */
  private touchIfPresentSync(hash: Hash, mode: number): boolean {
    const obj = this.objectPath(hash);
    if (!this.fanOutSound(obj)) return false;
    const st = lstatSync(obj, { throwIfNoEntry: false });
    if (st === undefined) return false;
    if (!st.isFile()) {
      this.evictSync(obj);
      return false;
    }
    try {
      const now = new Date();
      utimesSync(obj, now, now);
      if ((st.mode & 0o777 & ~mode) !== 0) chmodSync(obj, st.mode & mode & 0o444);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      if (code === 'EPERM' || code === 'EACCES') return true; // someone else's object on a shared cache: present
      throw e;
    }
  }

  /**
   * Store one file; returns the hash of the bytes actually stored. `known` is the hash memo's answer for the file's
   * current identity: when that object is already stored, nothing is read (a re-stored unchanged output).
   */
  private async putFile(abs: string, statSize: number, known: Hash | undefined, mode: number): Promise<Put> {
    if (known && this.touchIfPresentSync(known, mode)) return { hash: known, size: statSize };
    const tmp = await this.tmpPath();
    try {
      const put = await copyHashing(abs, tmp, mode);
      await this.commit(tmp, put.hash, mode);
      return put;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  private async putBytes(hash: Hash, bytes: string | Buffer, mode: number): Promise<void> {
    if (this.touchIfPresentSync(hash, mode)) return;
    const tmp = await this.tmpPath();
    try {
      const fh = await open(tmp, 'wx', mode);
      try {
        await fh.writeFile(bytes);
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
      await this.commit(tmp, hash, mode);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /** Rename a finished temp object into place unless an identical object is already there. */
  private async commit(tmp: string, hash: Hash, mode: number): Promise<void> {
    if (this.touchIfPresentSync(hash, mode)) {
      await rm(tmp, { force: true });
      return;
    }
    const obj = this.objectPath(hash);
    ownFolderSync(this.root, 'objects', hash.slice(0, 2));
    await rename(tmp, obj); // atomic; a racing identical rename just replaces equal bytes
  }

  private async tmpPath(): Promise<string> {
    return `${ownFolderSync(this.root, 'tmp')}/${process.pid}-${randomBytes(8).toString('hex')}`;
  }

  /**
   * Whether `obj` lies in real folders of the store: `objects/` and its fan-out folder are folders, not links (a
   * stage's, to a folder outside, whose files pipe would then read, link, chmod or delete as objects). Nothing is
   * removed: the objects behind such a link are missing, and putting one there is refused (cache/dir.ts).
   */
  private fanOutSound(obj: string): boolean {
    return ownFoldersIntact(this.root, 'objects', basename(dirname(obj)));
  }

  /** A regular file at `obj`, in real folders of the store. `sound`: fan-out folders already checked, by path. */
  private isObject(obj: string, sound?: Map<string, boolean>): boolean {
    const dir = dirname(obj);
    let ok = sound?.get(dir);
    if (ok === undefined) {
      ok = this.fanOutSound(obj);
      sound?.set(dir, ok);
    }
    return ok && lstatSync(obj, { throwIfNoEntry: false })?.isFile() === true;
  }

  /** Remove a damaged object, whatever it is (a directory put in its place included), never through a linked folder. */
  private evictSync(obj: string): void {
    if (this.fanOutSound(obj)) rmSync(obj, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- has / read / verify

  async has(out: StoredOutput): Promise<boolean> {
    if (!this.isObject(this.objectPath(out.hash))) return false;
    if (out.kind === 'file') return true;
    let entries: ManifestEntry[];
    try {
      entries = await this.readManifest(out.hash);
    } catch (e) {
      if (e instanceof CacheError) return false;
      throw e;
    }
    // Sync checks in slices: a 100,000-file output is 100,000 lstats, ~5x cheaper than via promises. Each fan-out
    // folder is checked once for the whole manifest (256 checks, not 200,000): this only answers yes or no, and what
    // is then restored is checked again, fresh.
    const slicer = new Slicer();
    const sound = new Map<string, boolean>();
    for (const e of entries) {
      if (!isLinkEntry(e) && !this.isObject(this.objectPath(e[1]), sound)) return false;
      await slicer.tick();
    }
    return true;
  }

  async verify(out: StoredOutput): Promise<boolean> {
    try {
      const files: FileEntry[] = out.kind === 'file' ? [[out.path, out.hash, out.size]] : (await this.readManifest(out.hash)).filter((e): e is FileEntry => !isLinkEntry(e));
      const slicer = new Slicer();
      for (const e of files) {
        if (e[2] <= SMALL) this.verifiedSync(e[1]);
        else await this.verified(e[1]);
        await slicer.tick();
      }
      return true;
    } catch (e) {
      if (e instanceof CacheError) return false;
      throw e;
    }
  }

  async readManifest(hash: Hash): Promise<ManifestEntry[]> {
    const text = (await this.readObject(hash)).toString('utf8');
    // Bytes that verify but do not parse are no manifest (a record naming a file object as a directory): refused,
    // not evicted, since the object itself is sound.
    return parseManifest(text, this.objectPath(hash));
  }

  async readObject(hash: Hash): Promise<Buffer> {
    const obj = this.objectPath(hash);
    if (!this.fanOutSound(obj)) throw missing(obj, hash);
    const st = await lstat(obj, { bigint: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw missing(obj, hash);
      throw e;
    });
    if (!st.isFile()) {
      this.evictSync(obj);
      throw notAFile(obj, hash);
    }
    const bytes = await readRegular(obj);
    if (hashBytes(bytes) !== hash) {
      this.evictSync(obj);
      throw corrupt(obj, hash);
    }
    return bytes;
  }

  /**
   * The object for `hash` is sound: a regular file whose bytes hash to its name. Read only when the memo cannot
   * vouch for its current identity. Returns the stat it was checked at (for `vouch` after a link).
   */
  private verifiedSync(hash: Hash): BigIntStats {
    const obj = this.objectPath(hash);
    const st = this.objectStat(obj, hash);
    const state = this.opts.state;
    if (state?.peek(obj, st) === hash) return st;
    const started = Date.now();
    const got = hashSmallFileSync(obj, Number(st.size));
    if (got !== hash) {
      // undefined: it grew since its stat (someone is writing it). Either way not what was stored.
      this.evictSync(obj);
      throw corrupt(obj, hash);
    }
    state?.remember(obj, st, hash, started);
    return st;
  }

  /** verifiedSync for a large object (streamed). */
  private async verified(hash: Hash): Promise<BigIntStats> {
    const obj = this.objectPath(hash);
    const st = this.objectStat(obj, hash);
    const state = this.opts.state;
    if (state?.peek(obj, st) === hash) return st;
    const started = Date.now();
    if ((await hashFile(obj)) !== hash) {
      this.evictSync(obj);
      throw corrupt(obj, hash);
    }
    state?.remember(obj, st, hash, started);
    return st;
  }

  private objectStat(obj: string, hash: Hash): BigIntStats {
    const st = this.fanOutSound(obj) ? lstatSync(obj, { bigint: true, throwIfNoEntry: false }) : undefined;
    if (st === undefined) throw missing(obj, hash);
    if (!st.isFile()) {
      this.evictSync(obj);
      throw notAFile(obj, hash);
    }
    return st;
  }

  /**
   * Whether the object is still what was verified at `before` after we served it. After a hard link its ctime moved
   * (link count): if nothing else did, the memo keeps vouching for it. A clone does not touch the object, so any
   * change means it changed meanwhile (and the clone may hold the changed bytes).
   */
  private stillSound(hash: Hash, before: BigIntStats, linked: boolean): boolean {
    const obj = this.objectPath(hash);
    const after = lstatSync(obj, { bigint: true, throwIfNoEntry: false });
    if (after === undefined || after.ino !== before.ino || after.mtimeNs !== before.mtimeNs || after.size !== before.size) return false;
    if (linked) this.opts.state?.vouch(obj, before, after);
    return linked || after.ctimeNs === before.ctimeNs;
  }

  // ---------------------------------------------------------------- restore

  async restore(out: StoredOutput, absDest: string, modes: RestoreMode[]): Promise<void> {
    const tryModes: RestoreMode[] = modes.length > 0 ? [...modes] : ['copy'];
    await mkdir(dirname(absDest), { recursive: true });
    removeDeadTemps(absDest, RESTORE_TEMPS); // left by a restore that crashed
    const staged = tempName(absDest, STAGED);
    // An executable file is never a hard link: the object is shared by every link to it and kept read-only with
    // read bits only (objectMode), so giving the link its execute bits would change the object for every other
    // workspace file linked to it, and the next put would take them off again. It gets its own inode (a clone, or a
    // copy), created with its execute bits: no chmod of anything already in place.
    const execModes = tryModes.filter((m) => m !== 'hardlink');
    if (execModes.length === 0) execModes.push('copy');
    try {
      if (out.kind === 'file') {
        const exec = out.executable === true;
        const modes = exec ? execModes : tryModes;
        const linked = out.size <= SMALL ? this.placeSmallSync(out.hash, staged, modes, exec) : await this.placeFile(out.hash, staged, modes, exec);
        await swapInto(staged, absDest);
        // Renaming the staged link moved the object's ctime once more (same inode): still vouched for.
        if (linked) this.stillSound(out.hash, linked, true);
        return;
      } else {
        const entries = await this.readManifest(out.hash);
        const linkRoot = this.opts.workspace ?? absDest;
        for (const e of entries) {
          if (isLinkEntry(e) && !linkInside(linkRoot, join(absDest, e[0]), e[1])) {
            throw linkOutside(`${out.path.replace(/\/$/, '')}/${e[0]}`, join(absDest, e[0]), e[1], this.opts.workspace !== undefined);
          }
        }
        await mkdir(staged);
        // Paths the manifest does not list as files are never touched: only entries placed here get the bit.
        const executables = new Set(out.executables ?? []);
        const dirs = new Set<string>();
        for (const [rel] of entries) {
          const i = rel.lastIndexOf('/');
          if (i > 0) dirs.add(rel.slice(0, i));
        }
        for (const d of [...dirs].sort()) mkdirSync(join(staged, d), { recursive: true });
        const large: FileEntry[] = [];
        const slicer = new Slicer();
        for (const e of entries) {
          if (isLinkEntry(e)) {
            symlinkSync(e[1], join(staged, e[0]));
            continue;
          }
          if (e[2] > SMALL) {
            large.push(e);
            continue;
          }
          const exec = executables.has(e[0]);
          this.placeSmallSync(e[1], join(staged, e[0]), exec ? execModes : tryModes, exec);
          await slicer.tick();
        }
        await mapPool(large, this.concurrency, (e) => {
          const exec = executables.has(e[0]);
          return this.placeFile(e[1], join(staged, e[0]), exec ? execModes : tryModes, exec);
        });
        await swapInto(staged, absDest);
      }
    } catch (e) {
      await rm(staged, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * placeFile for a small object, synchronously (same modes, same fallbacks, same verification). Returns the
   * object's stat after a hard link (for the vouch after the final rename), else undefined.
   */
  private placeSmallSync(hash: Hash, dest: string, modes: RestoreMode[], exec: boolean): BigIntStats | undefined {
    const obj = this.objectPath(hash);
    for (const mode of [...modes]) {
      try {
        if (mode === 'copy') {
          // Verified on the way, every time (the bytes are read anyway): nothing to memoise, so a workspace that
          // restores by copy does not grow its hash memo by one entry per object.
          const st = this.objectStat(obj, hash);
          const bytes = readRegularSync(obj);
          if (hashBytes(bytes) !== hash) {
            this.evictSync(obj);
            throw corrupt(obj, hash);
          }
          writeFileSync(dest, bytes, { flag: 'wx', mode: restoredMode(st, exec) });
        } else {
          const st = this.verifiedSync(hash);
          if (mode === 'reflink') {
            copyFileSync(obj, dest, constants.COPYFILE_FICLONE_FORCE);
            chmodSync(dest, restoredMode(st, exec));
          } else {
            readOnlySync(obj, st);
            linkSync(obj, dest);
          }
          if (!this.stillSound(hash, st, mode === 'hardlink') && !(mode === 'reflink' && hashSmallFileSync(dest, Number(st.size)) === hash)) {
            rmSync(dest, { force: true });
            this.verifiedSync(hash); // throws (and evicts) if it is no longer sound
            throw changedMeanwhile(obj);
          }
          if (mode === 'hardlink') return lstatSync(obj, { bigint: true });
        }
        return undefined;
      } catch (e) {
        if (this.dropMode(e, mode, modes, dest)) continue;
        throw e;
      }
    }
    throw noMode(dest, modes);
  }

  /**
   * Materialise one object at `dest` (a fresh name) using the first mode that works. A mode the filesystem does not
   * support is dropped from `modes` (shared by the whole restore), so a 100,000-file directory tries it once.
   * `exec`: the file was executable (its modes never include hardlink: see restore).
   */
  private async placeFile(hash: Hash, dest: string, modes: RestoreMode[], exec: boolean): Promise<BigIntStats | undefined> {
    const obj = this.objectPath(hash);
    for (const mode of [...modes]) {
      try {
        if (mode === 'copy') {
          const st = this.objectStat(obj, hash);
          const got = await copyHashing(obj, dest, restoredMode(st, exec));
          if (got.hash !== hash) {
            await rm(dest, { force: true });
            this.evictSync(obj);
            throw corrupt(obj, hash);
          }
        } else {
          const st = await this.verified(hash);
          if (mode === 'reflink') {
            await copyFile(obj, dest, constants.COPYFILE_FICLONE_FORCE);
            await chmod(dest, restoredMode(st, exec)); // the clone inherits the object's read-only mode
          } else {
            readOnlySync(obj, st);
            await link(obj, dest);
          }
          if (!this.stillSound(hash, st, mode === 'hardlink') && !(mode === 'reflink' && (await hashFile(dest)) === hash)) {
            await rm(dest, { force: true });
            await this.verified(hash); // throws (and evicts) if it is no longer sound
            throw changedMeanwhile(obj);
          }
          if (mode === 'hardlink') return lstatSync(obj, { bigint: true });
        }
        return undefined;
      } catch (e) {
        if (this.dropMode(e, mode, modes, dest)) continue;
        throw e;
      }
    }
    throw noMode(dest, modes);
  }

  /** True when `mode` is one this filesystem refuses (dropped for the rest of the restore: try the next). */
  private dropMode(e: unknown, mode: RestoreMode, modes: RestoreMode[], dest: string): boolean {
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof CacheError || mode === 'copy' || code === undefined || !UNSUPPORTED.has(code)) return false;
    rmSync(dest, { force: true });
    const i = modes.indexOf(mode);
    if (i >= 0 && modes.length > 1) modes.splice(i, 1);
    return true;
  }
}

/** errno codes meaning "this filesystem can't do that mode", as opposed to a real failure. */
const UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS', 'EINVAL', 'EPERM', 'EMLINK', 'ENOTTY']);

/** An object keeps only the read bits of the file it is stored from: never more readable than its source. */
function objectMode(st: { mode: number | bigint }): number {
  return Number(st.mode) & 0o444;
}

/**
 * A restored copy: the object's read bits, writable by its owner; an executable one also executable wherever it is
 * readable (a `0755` file comes back `0755`, a `0700` one `0700`: the read bits carry the umask the stage wrote it
 * under).
 */
function restoredMode(objSt: { mode: number | bigint }, exec: boolean): number {
  const mode = (Number(objSt.mode) & 0o444) | 0o200;
  return exec ? withExec(mode) : mode;
}

/** A hard-linked restore IS the object: it must not be writable (someone chmod'ed it? take the bits back). */
function readOnlySync(obj: string, st: BigIntStats): void {
  if ((Number(st.mode) & 0o222) !== 0) chmodSync(obj, Number(st.mode) & 0o444);
}

/**
 * True when a link at `linkAbs` with `target` resolves inside `root`: lexically, and through the links on the way
 * (the real path of the deepest part of it that exists).
 */
export function linkInside(root: string, linkAbs: string, target: string): boolean {
  const resolved = resolve(dirname(linkAbs), target);
  if (!within(resolved, resolve(root))) return false;
  let real: string;
  try {
    real = realpathSync(root);
  } catch {
    return true; // the root does not exist yet (a restore into a new folder): the lexical check is all there is
  }
  let p = resolved;
  for (;;) {
    try {
      return within(realpathSync(p), real);
    } catch {
      const up = dirname(p);
      if (up === p) return false;
      p = up;
    }
  }
}

function within(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

function linkOutside(rel: string, abs: string, target: string, workspace: boolean): CacheError {
  return new CacheError(
    `${rel} is a symbolic link to ${target}, which is outside the ${workspace ? 'workspace' : 'output directory'}. pipe ` +
      `stores links inside a directory output as links and never follows them, so a link that leaves the ` +
      `${workspace ? 'workspace' : 'directory'} is refused: write the file itself, or a link to a path inside it.`,
    'link-outside',
    abs,
  );
}

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
    inp = await openRegular(src);
    outp = await open(dest, 'wx', mode);
    for (;;) {
      const { bytesRead } = await inp.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      h.update(chunk);
      await outp.write(chunk, 0, bytesRead);
      size += bytesRead;
    }
    await outp.chmod(mode);
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
  const aside = tempName(dest, ASIDE);
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

function notAFile(obj: string, hash: Hash): CacheError {
  return new CacheError(
    `cache object ${obj} (${hash}) is not a regular file (something replaced it); it has been removed. The stage ` +
      `that produced it will run again.`,
    'corrupt-object',
    obj,
  );
}

function changedMeanwhile(obj: string): CacheError {
  return new CacheError(`cache object ${obj} changed while it was being restored; the restore was undone.`, 'corrupt-object', obj);
}

function missing(obj: string, hash: Hash): CacheError {
  return new CacheError(`cache object ${hash} is missing from the store (${obj}); it was garbage-collected or deleted.`, 'missing-object', obj);
}

/**
 * Remove temp siblings of `path` (from tempName) left by processes that died mid-write, e.g. a restore interrupted
 * by a crash, or a job killed while it wrote an output atomically: `<path>.<tag>-<pid>-<hex>` (or the hidden
 * `.<name>.<tag>-<pid>-<hex>` a folder is staged under) whose pid no longer exists. Live processes' temps are left
 * alone. Called before a stage's outputs are restored or produced again: left beside the output, a half copy would
 * be read by a stage that depends on the folder holding it. `names`: the folder's listing, when the caller has it.
 */
export function removeDeadTemps(path: string, tags: readonly string[], names?: readonly string[]): void {
  const base = basename(path);
  if (names === undefined) {
    try {
      names = readdirSync(dirname(path));
    } catch {
      return;
    }
  }
  for (const name of names) {
    const t = tempOf(name);
    if (!t || (t.of !== base && t.of !== `.${base}`) || !tags.includes(t.tag) || pidAlive(t.pid)) continue;
    rmSync(`${dirname(path)}/${name}`, { recursive: true, force: true });
  }
}

/** The bytes of a file seen as regular a moment ago, read only if it still is one (cache/hash.ts openRegularSync). */
function readRegularSync(path: string): Buffer {
  const fd = openRegularSync(path);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function readRegular(path: string): Promise<Buffer> {
  const fh = await openRegular(path);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
