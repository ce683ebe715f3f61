/**
 * `<name>.lock.yaml` next to a pipeline's YAML: for git, what each stage last computed (key, command or kind,
 * params, deps and outs with their hashes). Deterministic (sorted, fixed field order) so diffs show real changes;
 * written atomically, and only when its text changes.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parse, stringify } from 'yaml';

export interface LockStage {
  key: string;
  cmd?: string;
  uses?: string;
  with?: Record<string, unknown>;
  params?: Record<string, unknown>;
  deps: Array<{ path: string; hash: string | null }>;
  outs: Array<{ path: string; hash: string | null; size: number; files?: number }>;
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

export function readLock(file: string): LockFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = parse(text) as LockFile | null;
    return v && typeof v === 'object' && v.stages ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Canonical text of a lock file: stages by name, fields in a fixed order, deps/outs by path. */
export function renderLock(lock: LockFile): string {
  const stages: Record<string, LockStage> = {};
  for (const name of Object.keys(lock.stages).sort()) {
    const s = lock.stages[name]!;
    const ordered: LockStage = { key: s.key } as LockStage;
    if (s.cmd !== undefined) ordered.cmd = s.cmd;
    if (s.uses !== undefined) ordered.uses = s.uses;
    if (s.with !== undefined) ordered.with = s.with;
    if (s.params && Object.keys(s.params).length > 0) ordered.params = sortObject(s.params);
    ordered.deps = [...s.deps].sort((a, b) => (a.path < b.path ? -1 : 1));
    ordered.outs = [...s.outs].sort((a, b) => (a.path < b.path ? -1 : 1));
    stages[name] = ordered;
  }
  const header = '# Written by pipe: what each stage last computed. Commit it with the pipeline.\n';
  return header + stringify({ schema: 1, pipeline: lock.pipeline, stages }, { lineWidth: 0 });
}

/** Write when the text differs; atomic (temp file + rename). Returns whether it wrote. */
export function writeLock(file: string, lock: LockFile): boolean {
  const text = renderLock(lock);
  try {
    if (readFileSync(file, 'utf8') === text) return false;
  } catch {
    // No lock file yet.
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  return true;
}

function sortObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}
