/**
 * `<name>.lock.yaml` next to a pipeline's YAML: for git, what each stage last computed (key, command or kind,
 * params, deps and outs with their hashes). Deterministic (sorted, fixed field order) so diffs show real changes;
 * written atomically, and only when its text changes.
 *
 * Rendered by hand (a fixed shape: JSON-quoted strings and JSON flow values are valid YAML), because a generic YAML
 * stringifier costs a third of a second for 1,000 stages. Read with the `yaml` parser, only when a run must merge
 * with entries it did not compute itself.
 */
import { statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { writeFileAtomicSync } from '../cache/atomic.js';
import { readRegularFile, readRegularFileSync } from '../cache/read.js';
import type { ExecBits } from '../cache/types.js';

export interface LockStage {
  key: string;
  cmd?: string;
  uses?: string;
  with?: Record<string, unknown>;
  params?: Record<string, unknown>;
  deps: Array<{ path: string; hash: string | null }>;
  /** `executable` / `executables` only for outputs with executable files (cache/exec.ts): others read as before. */
  outs: Array<{ path: string; hash: string | null; size: number; files?: number } & ExecBits>;
}

export interface LockFile {
  schema: 1;
  pipeline: string;
  stages: Record<string, LockStage>;
}

export function lockPath(pipelineFile: string): string {
  const ext = extname(pipelineFile);
  return join(dirname(pipelineFile), `${basename(pipelineFile, ext)}.lock.yaml`);
}

/**
 * A lock file larger than this is not one pipe wrote (200,000 stages render to about 100 MB). Well below what one
 * string can hold (2^29 - 24 characters): a 600 MB file read whole threw there, so every run failed to save.
 */
const MAX_LOCK_BYTES = 256 * 1024 * 1024;

/**
 * The lock file, or undefined when missing, unreadable or not a regular file (a broken lock file is rewritten, never
 * fatal). gc reads the lock files a shared store's registry names: a FIFO there must not hang it.
 */
export async function readLockAsync(file: string): Promise<LockFile | undefined> {
  let text: string | undefined;
  try {
    text = await readRegularFile(file, MAX_LOCK_BYTES);
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  return parseLock(text);
}

/** A lock file's text (from disk, or `git show REV:path`), or undefined when it is not one. */
export async function parseLock(text: string): Promise<LockFile | undefined> {
  const { parse } = await import('yaml');
  try {
    const v = parse(text) as LockFile | null;
    return v && typeof v === 'object' && v.stages && typeof v.stages === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The lock file's stage entries that have the shape pipe writes (a key, deps and outs with paths and hashes, sizes);
 * any other (a hand edit, a merge, `outs: 5`) is left out, as if the stage had no entry: it is written anew by the
 * next run that computes it. Planning compares an entry's outs with a record, and a run keeps the entries of stages
 * it did not compute, so one malformed entry crashed `pipe status` and made every run fail to save.
 */
export function wellFormedStages(lock: LockFile | undefined): Record<string, LockStage> {
  const out = Object.create(null) as Record<string, LockStage>;
  for (const [name, s] of Object.entries(lock?.stages ?? {})) if (wellFormedStage(s)) out[name] = s;
  return out;
}

function wellFormedStage(s: unknown): s is LockStage {
  if (!isMap(s)) return false;
  const { key, cmd, uses, params, deps, outs } = s as Partial<Record<keyof LockStage, unknown>>;
  const hash = (h: unknown) => h === null || typeof h === 'string';
  return (
    typeof key === 'string' &&
    (cmd === undefined || typeof cmd === 'string') &&
    (uses === undefined || typeof uses === 'string') &&
    (params === undefined || isMap(params)) &&
    (s.with === undefined || isMap(s.with)) &&
    Array.isArray(deps) &&
    deps.every((d) => isMap(d) && typeof d.path === 'string' && hash(d.hash)) &&
    Array.isArray(outs) &&
    outs.every((o) => isMap(o) && typeof o.path === 'string' && hash(o.hash) && Number.isFinite(o.size) && (o.files === undefined || Number.isFinite(o.files)))
  );
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const PLAIN = /^[A-Za-z_./@=,+-][A-Za-z0-9_./@=,+-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~|[-+]?(\d[\d_]*(\.\d*)?|\.\d+)(e[-+]?\d+)?|\.inf|\.nan)$/i;

/** A YAML scalar: plain when unambiguous, else JSON double-quoted (valid YAML). */
function scalar(s: string): string {
  return PLAIN.test(s) && !RESERVED.test(s) ? s : JSON.stringify(s);
}

/** Any JSON value as YAML flow (JSON is YAML), keys sorted for determinism. */
function flow(v: unknown): string {
  return JSON.stringify(sortDeep(v)) ?? 'null';
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortDeep((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** One stage's block (also the unit a digest is taken of). */
export function renderStage(name: string, s: LockStage): string {
  const l: string[] = [`  ${scalar(name)}:`, `    key: ${s.key}`];
  if (s.cmd !== undefined) l.push(`    cmd: ${JSON.stringify(s.cmd)}`);
  if (s.uses !== undefined) l.push(`    uses: ${scalar(s.uses)}`);
  if (s.with !== undefined) l.push(`    with: ${flow(s.with)}`);
  if (s.params && Object.keys(s.params).length > 0) {
    l.push('    params:');
    for (const k of Object.keys(s.params).sort()) l.push(`      ${scalar(k)}: ${flow(s.params[k])}`);
  }
  l.push(s.deps.length ? '    deps:' : '    deps: []');
  for (const d of [...s.deps].sort(byPath)) l.push(`      - path: ${scalar(d.path)}`, `        hash: ${d.hash ?? 'null'}`);
  l.push(s.outs.length ? '    outs:' : '    outs: []');
  for (const o of [...s.outs].sort(byPath)) {
    l.push(`      - path: ${scalar(o.path)}`, `        hash: ${o.hash ?? 'null'}`, `        size: ${o.size}`);
    if (o.files !== undefined) l.push(`        files: ${o.files}`);
    if (o.executable === true) l.push('        executable: true');
    if (o.executables !== undefined && o.executables.length > 0) l.push(`        executables: ${flow(o.executables)}`);
  }
  return l.join('\n');
}

/** Canonical text of a lock file: stages by name, fields in a fixed order, deps/outs by path. */
export function renderLock(lock: LockFile): string {
  const names = Object.keys(lock.stages).sort();
  const head = ['# Written by pipe: what each stage last computed. Commit it with the pipeline.', 'schema: 1', `pipeline: ${scalar(lock.pipeline)}`];
  if (names.length === 0) return `${head.join('\n')}\nstages: {}\n`;
  return `${head.join('\n')}\nstages:\n${names.map((n) => renderStage(n, lock.stages[n]!)).join('\n')}\n`;
}

/** Bump when renderStage's output changes, so lock files written by an older pipe are rewritten. */
const LOCK_FORMAT = 1;

/**
 * What identifies a stage's lock entry without rendering it: the key covers cmd/uses/with/params/deps, so the key
 * and the outputs' hashes and sizes determine the entry (a no-op run compares 1,000 of these, not 1,000 renders).
 */
export function stageDigest(name: string, s: LockStage): string {
  return `${LOCK_FORMAT}|${name}|${s.key}|${s.outs.map((o) => `${o.path}:${o.hash}:${o.size}:${o.files ?? ''}${execDigest(o)}`).join(',')}`;
}

/** The exec fields in a digest: nothing for outputs without them, so their digests are what earlier versions wrote. */
function execDigest(o: ExecBits): string {
  if (o.executable === true) return ':x';
  return o.executables !== undefined && o.executables.length > 0 ? `:x${JSON.stringify(o.executables)}` : '';
}

/** Write when the text differs, atomically (cache/atomic.ts). Returns the written file's size and mtime. */
export function writeLock(file: string, lock: LockFile): { size: number; mtimeMs: number } {
  const text = renderLock(lock);
  // Compared through a bounded, non-blocking read: a FIFO, a device or a link to one planted at the lock file's
  // path is no lock file (a plain read of a FIFO would wait forever); the atomic write replaces it.
  const same = readRegularFileSync(file, MAX_LOCK_BYTES) === text;
  if (!same) writeFileAtomicSync(file, text);
  const st = statSync(file);
  return { size: st.size, mtimeMs: st.mtimeMs };
}
