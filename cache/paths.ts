/**
 * The one identity of a declared output path. `outs: [dir]` and `outs: [dir/]` name the same output (the engine's
 * DSL may keep either spelling, and records written by older versions say `dir/` where `dir` was declared), so every
 * lookup of an output by path — restore, status, why, gc, disagreements — compares `outPathKey`s, never raw strings.
 */
import { isAbsolute, join, posix, resolve } from 'node:path';

/** What posix.normalize (or outPathKey's trailing-slash rule) would change: `//`, a trailing `/`, a `.` or `..` segment. */
const NOT_NORMAL = /\/\/|\/$|(?:^|\/)\.\.?(?:\/|$)/;

/** `dir/`, `dir`, `./dir`, `dir//` → `dir` (workspace-relative, `/`-separated; absolute paths keep their root). */
export function outPathKey(path: string): string {
  // Most paths are already in normal form: answered without normalize's copy (the engine asks this several times per
  // out of every stage on every run).
  if (path.length > 0 && !NOT_NORMAL.test(path)) return path;
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** A relative path outPathKey returns unchanged, with no `.` or `..` segment: appending it to a folder needs no normalising. */
export function isNormalRelativePath(path: string): boolean {
  return path.length > 0 && path.charCodeAt(0) !== 47 /* '/' */ && !NOT_NORMAL.test(path);
}

/** An absolute path path.resolve returns unchanged (no `//`, trailing `/`, `.` or `..` segment). */
export function isNormalAbsolutePath(path: string): boolean {
  return path === '/' || (path.charCodeAt(0) === 47 /* '/' */ && !NOT_NORMAL.test(path));
}

/** path.resolve(path), without its copy when `path` is absolute and normal already (most paths the engine builds). */
export function resolvePath(path: string): string {
  return isNormalAbsolutePath(path) ? path : resolve(path);
}

/** Absolute path of a workspace-relative path (dirs keep no trailing slash for the file system). */
export function absPath(root: string, rel: string): string {
  // Both in normal form (the usual case): joined without join's re-normalising copy.
  if (isNormalRelativePath(rel) && isNormalAbsolutePath(root)) return root === '/' ? `/${rel}` : `${root}/${rel}`;
  const p = outPathKey(rel);
  return isAbsolute(p) ? p : join(root, p);
}

export function sameOutPath(a: string, b: string): boolean {
  return a === b || outPathKey(a) === outPathKey(b);
}
