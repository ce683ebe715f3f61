/**
 * pipe's own folders in a store or under `.pipe`: listed, and made, never through a link. A stage's command can write
 * both (they may lie inside the workspace), and a link it put at one of their names would have pipe list, write or
 * delete files wherever the link points.
 */
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CacheError } from './errors.js';

/**
 * The bases pipe opened for this command (a workspace's `.pipe`, a store's root, the lock file's folder) → where each
 * led then (its real path). A base is taken as the user made it (a link to another disk included), but only as it
 * was when opened: a stage's command that moves it away and puts a link (or another folder) at its name while pipe
 * runs would otherwise have pipe write its index, records, logs and hash memo wherever that points. The real path,
 * not the folder's identity: a folder moved outside and linked back is still the same folder, elsewhere.
 */
const pinned = new Map<string, string>();

/** Remember where `base` leads now, for ownFolderSync and ownFoldersIntact; a missing one is not pinned. */
export function pinBase(base: string): void {
  const real = realPathOf(base);
  if (real !== undefined) pinned.set(resolve(base), real);
  else pinned.delete(resolve(base));
}

/** Whether `base` was pinned and no longer leads where it did (moved, replaced, gone). */
function baseMoved(base: string): boolean {
  const was = pinned.get(resolve(base));
  return was !== undefined && realPathOf(base) !== was;
}

function realPathOf(dir: string): string | undefined {
  try {
    return realpathSync.native(dir);
  } catch {
    return undefined;
  }
}

/**
 * The names in one of pipe's own folders: [] when it does not exist, or is not a folder. A link is not followed
 * (its names are not listed): pipe's folders are never links, and a link a stage's command put at one (a store or
 * `.pipe` inside the workspace is writable by it) must not make gc delete, or pipe read, files wherever it points.
 * Anything else is an error.
 */
export async function listDir(dir: string): Promise<string[]> {
  try {
    if (!(await lstat(dir)).isDirectory()) return [];
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

/**
 * `base/parts[0]/parts[1]/…`, each part a real folder of pipe's, made when missing. Anything else at one of the
 * names, a link included, is refused with a CacheError naming it (`not-own-folder`), never followed and never
 * removed: a link there may be a stage's command redirecting pipe's writes outside the workspace, or the user's own
 * (`objects` on another disk), and a file may be the user's (`cache_dir: ~` holding a file called `runs`). `base`
 * itself is taken as it is: the user chose it (a store on another disk, `.pipe` linked elsewhere), and that is the
 * way to keep pipe's files elsewhere; once pinned (pinBase), only while it is still the folder it was then. With no
 * `parts`, that is all it checks. Returns the deepest folder.
 */
export function ownFolderSync(base: string, ...parts: string[]): string {
  const found = notAFolder(base, parts, true);
  if (found?.moved) {
    throw new CacheError(
      `${found.dir} was replaced while pipe ran: it is not the folder it was when this command started (a stage's command moved it, or put ${found.link ? 'this link' : 'something else'} at its name?); ` +
        'pipe writes, reads and deletes nothing through it. Put the folder back and run again',
      'not-own-folder',
      found.dir,
    );
  }
  if (found) {
    throw new CacheError(
      `${found.dir} is ${found.link ? 'a link' : 'not a folder'}, not the folder pipe keeps its files in (a stage's command replaced it?); ` +
        `pipe writes, reads and deletes nothing through it. Remove it and run again (to keep pipe's files on another disk, link ${base} itself)`,
      'not-own-folder',
      found.dir,
    );
  }
  return [base, ...parts].join('/');
}

/**
 * Whether each of `base/parts[0]/…` that exists is a real folder: what lies under them is pipe's to read or delete.
 * Nothing is made or removed (a read, a check or an eviction: a link there means "not here").
 */
export function ownFoldersIntact(base: string, ...parts: string[]): boolean {
  return notAFolder(base, parts, false) === undefined;
}

/**
 * The first of `base/parts[0]/…` that is there and is not a real folder, walking down from `base` (itself: only when
 * pinned and `moved` since); undefined when there is none. A missing one is made when `make` (and the walk goes on),
 * else the walk ends there.
 */
function notAFolder(base: string, parts: readonly string[], make: boolean): { dir: string; link: boolean; moved?: true } | undefined {
  if (baseMoved(base)) return { dir: base, link: lstatSync(base, { throwIfNoEntry: false })?.isSymbolicLink() ?? false, moved: true };
  let dir = base;
  for (const part of parts) {
    dir = `${dir}/${part}`;
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st === undefined) {
      if (!make) return undefined;
      mkdirSync(dir, { recursive: true });
    } else if (!st.isDirectory()) return { dir, link: st.isSymbolicLink() };
  }
  return undefined;
}
