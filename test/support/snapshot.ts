// A tree's state, entry by entry: what a test compares to prove a command left a folder untouched.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Every entry below `dir` but the `skip`ped folders: files with their sha256, mode and mtime, folders, links. */
export function snapshot(dir: string, skip: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip.includes(r)) continue;
      const st = lstatSync(join(dir, r));
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(dir, r))}`;
      else if (st.isDirectory()) {
        out[`${r}/`] = 'dir';
        walk(r);
      } else out[r] = `${createHash('sha256').update(readFileSync(join(dir, r))).digest('hex')} ${st.mode.toString(8)} ${st.mtimeMs}`;
    }
  };
  walk('');
  return out;
}
