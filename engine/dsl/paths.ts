/** Pipeline paths: workspace-relative POSIX, no `./`, a trailing `/` marks a directory. */
import { lstatSync } from 'node:fs';
import path from 'node:path';

export type NormalisedPath =
  | { ok: true; path: string; dir: boolean; outside: boolean }
  | { ok: false; reason: string };

/**
 * Normalise a path as written in the YAML. `outside`: it is absolute or `..` leaves the workspace; such a path is
 * returned absolute (deps may live outside the workspace, e.g. a shared dataset; outs may not).
 */
/** Already normal: relative, no `.`/`..`/empty segments (the common case skips path.normalize). */
const SIMPLE = /^(?!\/)(?:(?!\.\.?(?:\/|$))[^/\0]+\/)*(?!\.\.?$)[^/\0]*$/;

export function normalisePath(raw: string, workdir: string): NormalisedPath {
  if (raw !== '' && SIMPLE.test(raw) && raw.trim() !== '') {
    return { ok: true, path: raw, dir: raw.endsWith('/'), outside: false };
  }
  if (raw.trim() === '') return { ok: false, reason: 'an empty path' };
  if (raw.includes('\0')) return { ok: false, reason: 'a path with a NUL byte' };
  const dir = raw.endsWith('/') || raw === '.' || raw === '..' || /\/\.\.?$/.test(raw);
  // `..` that leaves and re-enters the workspace (`../ws/out/a.txt`) is as much inside it as an absolute path into it:
  // both become workspace-relative, or the DAG would miss the edge to the stage writing `out/a.txt`.
  const norm = path.posix.normalize(raw);
  if (path.posix.isAbsolute(norm) || norm === '..' || norm.startsWith('../')) {
    const abs = path.posix.resolve(workdir, norm);
    const rel = path.posix.relative(workdir, abs);
    if (rel === '') return { ok: false, reason: 'the workspace root itself' };
    if (rel !== '..' && !rel.startsWith('../') && !path.posix.isAbsolute(rel)) return { ok: true, path: withSlash(rel, dir), dir, outside: false };
    return { ok: true, path: withSlash(abs, dir), dir, outside: true };
  }
  if (norm === '.' || norm === './') return { ok: false, reason: 'the workspace root itself' };
  return { ok: true, path: withSlash(norm.replace(/\/+$/, ''), dir), dir, outside: false };
}

function withSlash(p: string, dir: boolean): string {
  const bare = p.replace(/\/+$/, '');
  return dir ? `${bare}/` : bare;
}

/** Whether `absPath` is a symbolic link now (not followed; false when there is nothing there). */
export function isLinkNow(absPath: string): boolean {
  return lstatSync(absPath, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
}
