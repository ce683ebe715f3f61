/**
 * The executable bit of outputs (docs/cache.md "File modes"), as DVC's `isexec` and Bazel's executable bit: not
 * part of any hash (an object is its bytes, kept with read bits only), recorded beside the hash (ExecBits), given
 * back by a restore, and an output that lost it is not up to date. Absent fields mean "none executable", so what
 * is written for outputs without the bit is what earlier versions wrote.
 */
import type { ExecBits } from './types.js';

/** Any execute bit (owner, group or other) set: what a stage's `chmod +x` leaves. */
export function isExecutable(mode: number | bigint): boolean {
  return (Number(mode) & 0o111) !== 0;
}

/** Only the exec fields of `o` (to spread into an index entry, a lock file entry): `{}` when none is executable. */
export function execBits(o: ExecBits): ExecBits {
  if (o.executable === true) return { executable: true };
  if (o.executables !== undefined && o.executables.length > 0) return { executables: o.executables };
  return {};
}

/** The exec fields as pipe writes them: absent, `executable: true` on a file, or a list of paths on a directory. */
export function wellFormedExec(o: ExecBits & { kind: 'file' | 'dir' }): boolean {
  if (o.executable !== undefined && (o.executable !== true || o.kind !== 'file')) return false;
  const e = o.executables;
  return e === undefined || (o.kind === 'dir' && Array.isArray(e) && e.every((p) => typeof p === 'string'));
}

/**
 * What was recorded executable and is not now: `['']` for a file output that lost its bit, the relative paths of
 * a directory output's files that did, else empty. Only lost bits count: a record without the fields may be an
 * earlier version's, written before bits were recorded, and restoring "none executable" over an executable file
 * would take away what its stage gave it.
 */
export function lostExec(recorded: ExecBits, now: ExecBits): string[] {
  if (recorded.executable === true) return now.executable === true ? [] : [''];
  if (recorded.executables === undefined || recorded.executables.length === 0) return [];
  const still = new Set(now.executables ?? []);
  return recorded.executables.filter((p) => !still.has(p));
}

/** A restored file's mode made executable: an execute bit wherever it is readable (`0644` → `0755`, `0600` → `0700`). */
export function withExec(mode: number): number {
  return mode | ((mode & 0o444) >> 2);
}
