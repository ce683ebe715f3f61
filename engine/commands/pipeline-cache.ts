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
import type { DepSpec, OutSpec, Pipeline, SourceSpan, StageSpec } from '../model.js';
import { LIMIT_VARS } from '../dsl/limits.js';

const VERSION = 2;

/**
 * On disk: one line of header (what the entry depends on), then the packed pipeline. The header is checked before
 * the (possibly large) body is parsed, so a stale entry costs one short JSON.parse.
 */
interface Header {
  v: number;
  /** path → "size:mtimeMs:ino" (or "missing"). */
  files: Record<string, string>;
  /** Paths whose existence validation checked → what it found. */
  exists: Record<string, boolean>;
}

interface Body {
  pipeline: Omit<Pipeline, 'stages'>;
  stages: PackedStages;
  warnings: unknown[];
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
  let text: string;
  let header: Header;
  try {
    text = readFileSync(entryPath(inputs), 'utf8');
    header = JSON.parse(text.slice(0, text.indexOf('\n'))) as Header;
  } catch {
    return undefined;
  }
  if (header.v !== VERSION) return undefined;
  const sourceFiles = Object.keys(header.files);
  const expected = new Set([...inputs.manifests, ...codeFiles()]);
  for (const f of expected) if (header.files[f] === undefined) return undefined;
  for (const f of sourceFiles) if (header.files[f] !== identity(f)) return undefined;
  for (const [p, was] of Object.entries(header.exists)) if (existsSync(p) !== was) return undefined;
  let body: Body;
  try {
    body = JSON.parse(text.slice(text.indexOf('\n') + 1)) as Body;
  } catch {
    return undefined;
  }
  // Every file the pipeline was read from is in the header: a new include changes the header's file set.
  if (sourceFiles.length !== new Set([...expected, ...body.pipeline.sourceFiles]).size) return undefined;
  return { pipeline: { ...body.pipeline, stages: unpackStages(body.stages) }, warnings: body.warnings };
}

export function writeCachedPipeline(inputs: CacheInputs, pipeline: Pipeline, warnings: unknown[], exists: Record<string, boolean>): void {
  if (recentlyChanged(pipeline.sourceFiles)) return;
  const files: Record<string, string> = {};
  for (const f of new Set([...inputs.manifests, ...codeFiles(), ...pipeline.sourceFiles])) files[f] = identity(f);
  const header: Header = { v: VERSION, files, exists };
  const { stages, ...rest } = pipeline;
  const body: Body = { pipeline: rest, stages: packStages(stages), warnings };
  const path = entryPath(inputs);
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(header)}\n${JSON.stringify(body)}`);
    renameSync(tmp, path);
  } catch {
    // A read-only home: no cache, just slower loads.
  }
}

/**
 * Stages packed for the cache: the expanded stages of a matrix share their spans, deps, params, env, resources,
 * SLURM options and retries (engine/dsl/shared.ts), and plain JSON would write — and read back — 100,000 copies of
 * each. Packed, each distinct value is written once in a table and stages refer to it by index; unpacked, the
 * stages share one object again. Fields not named here are kept as they are.
 */
interface PackedStages {
  spans: SourceSpan[];
  tables: Record<SharedField, unknown[]>;
  list: Array<Record<string, unknown>>;
}
const SHARED_FIELDS = ['deps', 'params', 'env', 'resources', 'slurm', 'retries'] as const;
type SharedField = (typeof SHARED_FIELDS)[number];

function packStages(stages: StageSpec[]): PackedStages {
  const spans: SourceSpan[] = [];
  const spanIndex = new Map<SourceSpan, number>();
  const spanOf = (sp: SourceSpan | undefined): number => {
    if (!sp) return -1;
    let i = spanIndex.get(sp);
    if (i === undefined) spanIndex.set(sp, (i = spans.push(sp) - 1));
    return i;
  };
  const tables = {} as Record<SharedField, unknown[]>;
  const byObject = new Map<unknown, number>();
  const byJson = new Map<string, number>();
  const shared = (field: SharedField, value: unknown, pack: (v: unknown) => unknown): number => {
    const known = byObject.get(value);
    if (known !== undefined) return known;
    const packed = pack(value);
    const json = `${field}\0${JSON.stringify(packed)}`;
    let i = byJson.get(json);
    if (i === undefined) byJson.set(json, (i = (tables[field] ??= []).push(packed) - 1));
    byObject.set(value, i);
    return i;
  };
  const withSpan = (x: { span?: SourceSpan }) => ({ ...x, span: spanOf(x.span) });
  const list = stages.map((st) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(st)) {
      if (k === 'span') out[k] = spanOf(v as SourceSpan);
      else if (k === 'outs') out[k] = (v as OutSpec[]).map(withSpan);
      else if (k === 'deps') out[k] = shared('deps', v, (deps) => (deps as DepSpec[]).map(withSpan));
      else if ((SHARED_FIELDS as readonly string[]).includes(k)) out[k] = shared(k as SharedField, v, (x) => x);
      else out[k] = v;
    }
    return out;
  });
  for (const f of SHARED_FIELDS) tables[f] ??= [];
  return { spans, tables, list };
}

function unpackStages(packed: PackedStages): StageSpec[] {
  const { spans, tables } = packed;
  const spanAt = (i: unknown) => (typeof i === 'number' && i >= 0 ? spans[i] : undefined);
  const withSpan = <T extends { span?: SourceSpan }>(x: T): T => {
    const sp = spanAt(x.span);
    if (sp) x.span = sp;
    else delete x.span;
    return x;
  };
  for (const deps of tables.deps as DepSpec[][]) deps.forEach(withSpan);
  return packed.list.map((p) => {
    for (const k of Object.keys(p)) {
      if (k === 'span') p[k] = spanAt(p[k]);
      else if (k === 'outs') (p[k] as OutSpec[]).forEach(withSpan);
      else if ((SHARED_FIELDS as readonly string[]).includes(k)) p[k] = tables[k as SharedField][p[k] as number];
    }
    return p as unknown as StageSpec;
  });
}
