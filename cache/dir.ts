/**
 * The names in one of pipe's own folders: [] when it does not exist, or is not a folder. A link is not followed
 * (its names are not listed): pipe's folders are never links, and a link a stage's command put at one (a store or
 * `.pipe` inside the workspace is writable by it) must not make gc delete, or pipe read, files wherever it points.
 * Anything else is an error.
 */
import { lstat, readdir } from 'node:fs/promises';

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
