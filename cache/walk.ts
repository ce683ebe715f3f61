/**
 * Listing the files under a directory, with their stat identity, for hashing and storing.
 *
 * Policy (documented in docs/cache.md): symlinks are FOLLOWED (a dataset folder of links hashes and stores the
 * content it points to, which is what a stage reads); a broken link, a link cycle, or a special file (FIFO, socket,
 * device) is an error naming the path, never skipped silently. Empty directories carry no content and are not part
 * of a directory's hash (the manifest lists files only).
 *
 * The walk is synchronous on purpose: bench/hashstate.ts measured readdirSync+statSync faster than the promise
 * API (libuv thread-pool round trips cost more than the syscalls themselves on small files) — see docs/cache.md.
 */
import { readdirSync, statSync, type BigIntStats } from 'node:fs';
import { CacheError } from './errors.js';

export interface WalkedFile {
  /** `/`-separated path relative to the walked root. */
  rel: string;
  abs: string;
  st: BigIntStats;
}

/** All regular files under `root` (following symlinks), in no particular order. */
export function walkFiles(root: string): WalkedFile[] {
  const out: WalkedFile[] = [];
  const rootSt = statSync(root, { bigint: true });
  walkDir(root, '', new Set([`${rootSt.dev}:${rootSt.ino}`]), out);
  return out;
}

function walkDir(abs: string, rel: string, ancestors: Set<string>, out: WalkedFile[]): void {
  const dirents = readdirSync(abs, { withFileTypes: true });
  for (const d of dirents) {
    const childAbs = `${abs}/${d.name}`;
    const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
    if (d.isFile()) {
      out.push({ rel: childRel, abs: childAbs, st: statSync(childAbs, { bigint: true }) });
    } else if (d.isDirectory()) {
      descend(childAbs, childRel, statSync(childAbs, { bigint: true }), ancestors, out);
    } else if (d.isSymbolicLink()) {
      let st: BigIntStats;
      try {
        st = statSync(childAbs, { bigint: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ELOOP') {
          throw new CacheError(
            `${childAbs} is a broken symbolic link (its target does not exist). pipe follows links when hashing and ` +
              `storing a directory; remove the link or make it point to an existing file.`,
            'broken-symlink',
            childAbs,
          );
        }
        throw e;
      }
      if (st.isFile()) out.push({ rel: childRel, abs: childAbs, st });
      else if (st.isDirectory()) descend(childAbs, childRel, st, ancestors, out);
      else throw special(childAbs);
    } else {
      throw special(childAbs);
    }
  }
}

function descend(abs: string, rel: string, st: BigIntStats, ancestors: Set<string>, out: WalkedFile[]): void {
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
  walkDir(abs, rel, ancestors, out);
  ancestors.delete(id);
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
