/** The names in a folder: [] when it does not exist (or is not a folder). Anything else is an error. */
import { readdir } from 'node:fs/promises';

export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}
