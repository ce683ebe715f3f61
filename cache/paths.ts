/**
 * The one identity of a declared output path. `outs: [dir]` and `outs: [dir/]` name the same output (the engine's
 * DSL may keep either spelling, and records written by older versions say `dir/` where `dir` was declared), so every
 * lookup of an output by path — restore, status, why, gc, disagreements — compares `outPathKey`s, never raw strings.
 */
import { posix } from 'node:path';

/** `dir/`, `dir`, `./dir`, `dir//` → `dir` (workspace-relative, `/`-separated; absolute paths keep their root). */
export function outPathKey(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

export function sameOutPath(a: string, b: string): boolean {
  return a === b || outPathKey(a) === outPathKey(b);
}
