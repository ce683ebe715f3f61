/**
 * Listing the files under a directory, with their stat identity, for hashing and storing.
 *
 * Two symlink policies (documented in docs/cache.md):
 *  - `follow` (dependencies): a link is hashed as what it points to (a dataset folder of links hashes like the
 *    content a stage reads); a broken link or a link cycle is an error naming the path.
 *  - `keep` (directory outputs): a link is reported as a link (its target text) and never followed, so storing an
 *    output never copies what a link points to; the Store decides which targets are acceptable.
 * Either way a special file (FIFO, socket, device) is an error naming the path, never skipped silently. Empty
 * directories carry no content and are not part of a directory's hash (the manifest lists files and links only).
 *
 * Speed (bench/hashstate.ts, 100,000 files): the walk is synchronous, reads plain names (readdir withFileTypes
 * costs ~3x more and the type is known from the lstat we need anyway), and hands each stat to a visitor instead of
 * keeping it: a BigIntStats is ~1.5 KB, i.e. 150 MB for 100,000 files. `lstat` first costs the same as `stat` for
 * a regular file and tells a link apart (only a link pays a second call). The promise API with a pool of 64
 * in-flight stats measured slower than sync calls here (libuv thread-pool round trips cost more than the syscalls).
 */
import { lstatSync, readdirSync, readlinkSync, statSync, type BigIntStats } from 'node:fs';
import { CacheError } from './errors.js';

export type LinkPolicy = 'follow' | 'keep';

export interface WalkedFile {
  /** `/`-separated path relative to the walked root. */
  rel: string;
  abs: string;
  st: BigIntStats;
}

/**
 * Called for every regular file (symlinks followed in `follow` mode); the stat object must not be retained if
 * memory matters. `dir` is the same string object for all files of one directory (cheap to compare), `name` the
 * file's name in it.
 */
export type FileVisitor = (rel: string, abs: string, st: BigIntStats, dir: string, name: string) => void;
/** Called for every symbolic link in `keep` mode, with its target as stored (readlink). */
export type LinkVisitor = (rel: string, abs: string, target: string, dir: string, name: string) => void;

export interface WalkOptions {
  links?: LinkPolicy;
  onLink?: LinkVisitor;
}

/**
 * What the walk met that an incremental view of the tree (cache/state.ts, driven by a directory watcher) cannot
 * follow: a change through a symlink or a second hard link, or on another filesystem, reaches no watcher of this
 * tree.
 */
export interface WalkSummary {
  /** Symbolic links met (followed or kept): their absolute paths, in walk order. */
  links: string[];
  /** Regular files with more than one hard link. */
  hardlinked: number;
  /** Some entry lives on another device than the root (a mount point inside the tree, or a followed link). */
  crossDevice: boolean;
}

/** Visit all regular files under `root`: a directory's files (sorted), then its subdirectories. */
export function walk(root: string, visit: FileVisitor, opts: WalkOptions = {}): WalkSummary {
  const rootSt = statSync(root, { bigint: true });
  const w = new Walker(visit, opts, rootSt.dev);
  w.dir(root, '', new Set([`${rootSt.dev}:${rootSt.ino}`]));
  return w.summary;
}

/** All regular files under `root`, collected (for the Store, which needs them all anyway). */
export function walkFiles(root: string): WalkedFile[] {
  const out: WalkedFile[] = [];
  walk(root, (rel, abs, st) => out.push({ rel, abs, st }));
  return out;
}

class Walker {
  readonly summary: WalkSummary = { links: [], hardlinked: 0, crossDevice: false };
  private readonly keep: boolean;
  constructor(
    private readonly visit: FileVisitor,
    private readonly opts: WalkOptions,
    private readonly rootDev: bigint,
  ) {
    this.keep = opts.links === 'keep';
  }

  dir(abs: string, rel: string, ancestors: Set<string>): void {
    // Sorted per directory so the walk's output is nearly in manifest order (the final sort then costs ~nothing).
    const names = readdirSync(abs).sort();
    const prefix = rel === '' ? '' : `${rel}/`;
    let subdirs: Array<[abs: string, rel: string, st: BigIntStats]> | undefined;
    for (const name of names) {
      const childAbs = `${abs}/${name}`;
      let st = lstatSync(childAbs, { bigint: true, throwIfNoEntry: false });
      if (st === undefined) {
        // Listed but not there: a file deleted this instant, or a name that is not valid UTF-8 (Node decodes it
        // lossily, so the path we build names nothing). Neither is skipped silently.
        throw new CacheError(
          `${childAbs} disappeared while its directory was being read, or its name is not valid UTF-8 (which pipe ` +
            `cannot address). Re-run once the directory has stopped changing, or rename the file.`,
          'not-found',
          childAbs,
        );
      }
      if (st.isSymbolicLink()) {
        this.summary.links.push(childAbs);
        if (this.keep) {
          this.opts.onLink?.(prefix + name, childAbs, readlinkSync(childAbs), abs, name);
          continue;
        }
        st = followLink(childAbs);
      }
      if (st.dev !== this.rootDev) this.summary.crossDevice = true;
      if (st.isFile()) {
        if (st.nlink > 1n) this.summary.hardlinked++;
        this.visit(prefix + name, childAbs, st, abs, name);
      } else if (st.isDirectory()) (subdirs ??= []).push([childAbs, prefix + name, st]);
      else throw special(childAbs);
    }
    // Subdirectories after all of this directory's files: visitors see each directory's files contiguously (the hash
    // state prunes a directory's memo when it moves on to the next one).
    if (subdirs) for (const [a, r, st] of subdirs) this.descend(a, r, st, ancestors);
  }

  private descend(abs: string, rel: string, st: BigIntStats, ancestors: Set<string>): void {
    const id = `${st.dev}:${st.ino}`;
    if (ancestors.has(id)) {
      throw new CacheError(
        `${abs} leads back to one of its own parent directories through a symbolic link (a cycle); pipe follows ` +
          `links when hashing a dependency directory, so it cannot hash this tree. Remove the looping link.`,
        'symlink-cycle',
        abs,
      );
    }
    ancestors.add(id);
    this.dir(abs, rel, ancestors);
    ancestors.delete(id);
  }
}

/** The stat of what a link points to; a dangling link or a link to itself is an error naming it. */
function followLink(abs: string): BigIntStats {
  let st: BigIntStats | undefined;
  try {
    st = statSync(abs, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw broken(abs); // a link pointing at itself
    throw e;
  }
  if (st === undefined) throw broken(abs);
  return st;
}

function broken(abs: string): CacheError {
  return new CacheError(
    `${abs} is a broken symbolic link (its target does not exist). pipe follows links when hashing a dependency ` +
      `directory; remove the link or make it point to an existing file.`,
    'broken-symlink',
    abs,
  );
}

export function special(abs: string): CacheError {
  return new CacheError(
    `${abs} is not a regular file or directory (a FIFO, socket or device); pipe cannot hash or store it. Move it ` +
      `out of the declared dependency/output directory.`,
    'special-file',
    abs,
  );
}

/** Sort by rel path, JS string order (UTF-16 code units): the order of the directory manifest. */
export function byRel(a: { rel: string }, b: { rel: string }): number {
  return a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0;
}
