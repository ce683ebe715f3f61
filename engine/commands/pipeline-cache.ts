/**
 * A cache of validated pipelines. Parsing and validating YAML with source positions costs ~0.3 s for 1,000 stages —
 * the whole no-op budget — while the result only changes when its inputs do: the YAML files (and includes, params
 * files), the CLI overrides, the kinds' manifests, pipe's own DSL code, and the existence of the files validation
 * checked. All of these are recorded with the cached Pipeline and re-checked with stat calls.
 *
 * Stored under $PIPE_CACHE_HOME, $XDG_CACHE_HOME/pipe or ~/.cache/pipe (a tool cache: deleting it is always safe).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pipeline } from '../model.js';
import { LIMIT_VARS } from '../dsl/limits.js';

const VERSION = 1;

interface Entry {
  v: number;
  pipeline: Pipeline;
  warnings: unknown[];
  /** path → "size:mtimeMs:ino" (or "missing"). */
  files: Record<string, string>;
  /** Paths whose existence validation checked → what it found. */
  exists: Record<string, boolean>;
}

export interface CacheInputs {
  file: string;
  overrides: string[];
  paramsFiles: string[];
  manifests: readonly string[];
}

function cacheDir(): string {
  const base = process.env.PIPE_CACHE_HOME ?? (process.env.XDG_CACHE_HOME ? join(process.env.XDG_CACHE_HOME, 'pipe') : join(homedir(), '.cache', 'pipe'));
  return join(base, 'pipelines');
}

function entryPath(inputs: CacheInputs): string {
  const h = createHash('sha256')
    // The load bounds (PIPE_MAX_*) too: a pipeline loaded under raised limits is not valid under lower ones.
    .update(JSON.stringify([inputs.file, inputs.overrides, inputs.paramsFiles, process.env.PIPE_KINDS_PATH ?? '', ...limitVars()]))
    .digest('hex')
    .slice(0, 32);
  return join(cacheDir(), `${h}.json`);
}

function limitVars(): string[] {
  return Object.values(LIMIT_VARS).map((v) => process.env[v] ?? '');
}

function identity(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`;
  } catch {
    return 'missing';
  }
}

/**
 * A file changed in the last 2 s may change again within the same timestamp tick without its identity changing
 * (git's "racily clean" problem): pipelines read from such files are not cached.
 */
function recentlyChanged(paths: Iterable<string>): boolean {
  const limit = Date.now() - 2000;
  for (const p of paths) {
    try {
      const st = statSync(p);
      if (st.mtimeMs > limit || st.ctimeMs > limit) return true;
    } catch {
      // Missing: recorded as such.
    }
  }
  return false;
}

/** pipe's DSL code: a new build of it may validate differently. */
function codeFiles(): string[] {
  const dsl = fileURLToPath(new URL('../dsl/', import.meta.url));
  const files = [fileURLToPath(new URL('../graph.js', import.meta.url)), fileURLToPath(new URL('../model.js', import.meta.url))];
  try {
    for (const f of readdirSync(dsl)) if (f.endsWith('.js')) files.push(join(dsl, f));
  } catch {
    // Running from sources: no compiled DSL folder to watch.
  }
  return files;
}

export function readCachedPipeline(inputs: CacheInputs): { pipeline: Pipeline; warnings: unknown[] } | undefined {
  let e: Entry;
  try {
    e = JSON.parse(readFileSync(entryPath(inputs), 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  if (e.v !== VERSION) return undefined;
  const expected = new Set([...inputs.manifests, ...codeFiles(), ...e.pipeline.sourceFiles]);
  if (Object.keys(e.files).length !== expected.size) return undefined;
  for (const f of expected) if (e.files[f] === undefined || e.files[f] !== identity(f)) return undefined;
  for (const [p, was] of Object.entries(e.exists)) if (existsSync(p) !== was) return undefined;
  return { pipeline: e.pipeline, warnings: e.warnings };
}

export function writeCachedPipeline(inputs: CacheInputs, pipeline: Pipeline, warnings: unknown[], exists: Record<string, boolean>): void {
  if (recentlyChanged(pipeline.sourceFiles)) return;
  const files: Record<string, string> = {};
  for (const f of new Set([...inputs.manifests, ...codeFiles(), ...pipeline.sourceFiles])) files[f] = identity(f);
  const entry: Entry = { v: VERSION, pipeline, warnings, files, exists };
  const path = entryPath(inputs);
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(entry));
    renameSync(tmp, path);
  } catch {
    // A read-only home: no cache, just slower loads.
  }
}
