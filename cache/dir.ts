/**
 * pipe's own folders in a store or under `.pipe`: listed, and made, never through a link. A stage's command can write
 * both (they may lie inside the workspace), and a link it put at one of their names would have pipe list, write or
 * delete files wherever the link points.
 */
import { lstatSync, mkdirSync, rmSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';

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
 * `base/parts[0]/parts[1]/…`, each part a real folder, made when missing: a link at one of the names is removed,
 * never followed, and a folder made in its place. Anything else there (a file, a FIFO) is refused, naming it, never
 * deleted: a store's root may be a folder the user keeps files in (`cache_dir: ~`), and a file of theirs called
 * `runs` or `tmp` is not pipe's to remove. `base` itself is taken as it is: the user chose it (a store on another
 * disk, `.pipe` linked elsewhere). Returns the deepest folder.
 */
export function realFolderSync(base: string, ...parts: string[]): string {
  let dir = base;
  for (const part of parts) {
    dir = `${dir}/${part}`;
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st?.isDirectory()) continue;
    if (st?.isSymbolicLink()) rmSync(dir, { force: true });
    else if (st !== undefined) throw new Error(`${dir} is not a folder, where pipe keeps a folder of its own: pipe neither deletes nor writes through it. Move it away and run again`);
    mkdirSync(dir, { recursive: true });
  }
  return dir;
}
