/**
 * Listing the files under a directory, with their stat identity, for hashing and storing.
 *
 * Policy (documented in docs/cache.md): symlinks are FOLLOWED (a dataset folder of links hashes and stores the
 * content it points to, which is what a stage reads); a broken link, a link cycle, or a special file (FIFO, socket,
 * device) is an error naming the path, never skipped silently. Empty directories carry no content and are not part
 * of a directory's hash (the manifest lists files only).
 *
 * Speed (bench/hashstate.ts, 100,000 files): the walk is synchronous, reads plain names (readdir withFileTypes
 * costs ~3x more and the type is known from the stat we need anyway), and hands each stat to a visitor instead of
 * keeping it: a BigIntStats is ~1.5 KB, i.e. 150 MB for 100,000 files. The promise API with a pool of 64 in-flight
 * stats measured slower than sync calls here (libuv thread-pool round trips cost more than the syscalls).
 */
import { lstatSync, readdirSync, statSync, type BigIntStats } from 'node:fs';
import { CacheError } from './errors.js';

export interface WalkedFile {
  /** `/`-separated path relative to the walked root. */
  rel: string;
  abs: string;
  st: BigIntStats;
}

/**
 * Called for every regular file (symlinks followed); the stat object must not be retained if memory matters.
 * `dir` is the same string object for all files of one directory (cheap to compare), `name` the file's name in it.
 */
export type FileVisitor = (rel: string, abs: string, st: BigIntStats, dir: string, name: string) => void;

/** Visit all regular files under `root` (following symlinks): a directory's files (sorted), then its subdirectories. */
export function walk(root: string, visit: FileVisitor): void {
  const rootSt = statSync(root, { bigint: true });
  walkDir(root, '', new Set([`${rootSt.dev}:${rootSt.ino}`]), visit);
}

/** All regular files under `root`, collected (for the Store, which needs them all anyway). */
export function walkFiles(root: string): WalkedFile[] {
  const out: WalkedFile[] = [];
  walk(root, (rel, abs, st) => out.push({ rel, abs, st }));
  return out;
}

function walkDir(abs: string, rel: string, ancestors: Set<string>, visit: FileVisitor): void {
  // Sorted per directory so the walk's output is nearly in manifest order (the final sort then costs ~nothing).
  const names = readdirSync(abs).sort();
  const prefix = rel === '' ? '' : `${rel}/`;
  let subdirs: Array<[abs: string, rel: string, st: BigIntStats]> | undefined;
  for (const name of names) {
    const childAbs = `${abs}/${name}`;
    let st: BigIntStats | undefined;
    try {
      st = statSync(childAbs, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw broken(childAbs); // a link pointing at itself
      throw e;
    }
    if (st === undefined) {
      // Listed but not there: a dangling symlink, a file deleted this instant, or a name that is not valid UTF-8
      // (Node decodes it lossily, so the path we build names nothing). None is skipped silently.
      if (lstatSync(childAbs, { throwIfNoEntry: false })?.isSymbolicLink()) throw broken(childAbs);
      throw new CacheError(
        `${childAbs} disappeared while its directory was being read, or its name is not valid UTF-8 (which pipe ` +
          `cannot address). Re-run once the directory has stopped changing, or rename the file.`,
        'not-found',
        childAbs,
      );
    }
    if (st.isFile()) visit(prefix + name, childAbs, st, abs, name);
    else if (st.isDirectory()) (subdirs ??= []).push([childAbs, prefix + name, st]);
    else throw special(childAbs);
  }
  // Subdirectories after all of this directory's files: visitors see each directory's files contiguously (the hash
  // state prunes a directory's memo when it moves on to the next one).
  if (subdirs) for (const [a, r, st] of subdirs) descend(a, r, st, ancestors, visit);
}

function descend(abs: string, rel: string, st: BigIntStats, ancestors: Set<string>, visit: FileVisitor): void {
  const id = `${st.dev}:${st.ino}`;
  if (ancestors.has(id)) {
    throw new CacheError(
      `${abs} leads back to one of its own parent directories through a symbolic link (a cycle); pipe follows ` +
        `links when hashing a directory, so it cannot hash this tree. Remove the looping link.`,
      'symlink-cycle',
      abs,
    );
  }
  ancestors.add(id);
  walkDir(abs, rel, ancestors, visit);
  ancestors.delete(id);
}

function broken(abs: string): CacheError {
  return new CacheError(
    `${abs} is a broken symbolic link (its target does not exist). pipe follows links when hashing and storing a ` +
      `directory; remove the link or make it point to an existing file.`,
    'broken-symlink',
    abs,
  );
}

function special(abs: string): CacheError {
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
