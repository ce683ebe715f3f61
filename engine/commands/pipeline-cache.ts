/**
 * A cache of validated pipelines. Parsing and validating YAML with source positions costs ~0.3 s for 1,000 stages —
 * the whole no-op budget — while the result only changes when its inputs do: the YAML files (and includes, params
 * files), the CLI overrides, the kinds' manifests, pipe's own DSL code, and the existence of the files validation
 * checked. All of these are recorded with the cached Pipeline and re-checked with stat calls.
 *
 * Stored under $PIPE_CACHE_HOME, $XDG_CACHE_HOME/pipe or ~/.cache/pipe (a tool cache: deleting it is always safe).
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempOf, writeFileAtomicSync } from '../../cache/atomic.js';
import { ownFolderSync, ownFoldersIntact } from '../../cache/dir.js';
import { readBoundedSync } from '../../cache/read.js';
import type { DepSpec, OutSpec, Pipeline, SourceSpan, StageSpec } from '../model.js';
import { LIMIT_VARS } from '../dsl/limits.js';
import { isLinkNow } from '../dsl/paths.js';

/** 3: a digest of the entry ends it. */
const VERSION = 3;
/** A 100,000-stage matrix's entry is 17–30 MB; one past this is not pipe's, and is a miss. */
const MAX_ENTRY_BYTES = 256 * 1024 * 1024;
/**
 * The folder's bounds. Each (pipeline, overrides, params files) has an entry of its own, so experiments and `-S`
 * sweeps add one per variant: without a bound the folder only grows (5,598 entries, 187 MB, seen on this project's
 * test machine). Past either bound a write removes the least recently used entries, down to 3/4 of both.
 */
export const CACHE_BOUNDS = { entries: 200, bytes: 512 * 1024 * 1024 };
/** How stale a used entry's mtime may get before a hit refreshes it (its recency for the bound above). */
const TOUCH_AFTER_MS = 3600 * 1000;
const ENTRY_NAME = /^[0-9a-f]{32}\.json$/;

/**
 * On disk: one line of header (what the entry depends on), then the packed pipeline, then a line with the sha256 of
 * all that. The header is checked before the (possibly large) body is parsed, so a stale entry costs one short
 * JSON.parse; the digest before either, so an entry is used only as pipe wrote it: one of another shape (`null`, a
 * header without its maps, a body that is a list) crashed every command of its pipeline with a stack trace, and a
 * changed character in a command would have been run as if the YAML said so.
 */
interface Header {
  v: number;
  /** path → "size:mtimeMs:ino" (or "missing"). */
  files: Record<string, string>;
  /** Paths whose existence validation checked → what it found. */
  exists: Record<string, boolean>;
  /** Paths the DSL asked "a symbolic link?" (a part before a `..`: stage-fields.ts) → what it found. */
  links?: Record<string, boolean>;
}

/** What loading asked the disk, each answer to hold while the entry is used (Header). */
export type DiskProbes = Pick<Header, 'exists' | 'links'>;

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
  /** false: loaded without `<name>.params.yaml` (engine/dsl/params.ts appliedParamsPath). */
  appliedParams?: false;
}

function cacheDir(): string {
  const base = process.env.PIPE_CACHE_HOME ?? (process.env.XDG_CACHE_HOME ? join(process.env.XDG_CACHE_HOME, 'pipe') : join(homedir(), '.cache', 'pipe'));
  return join(base, 'pipelines');
}

/**
 * Whether the entries' folder is pipe's own (or not there yet): a link at its name is never followed (cache/dir.ts),
 * so pipe neither writes nor prunes entries wherever it points, nor serves a pipeline from there.
 */
function ownCacheDir(dir: string): boolean {
  return ownFoldersIntact(dirname(dir), basename(dir));
}

function entryPath(inputs: CacheInputs): string {
  const h = createHash('sha256')
    // The load bounds (PIPE_MAX_*) too: a pipeline loaded under raised limits is not valid under lower ones.
    .update(JSON.stringify([inputs.file, inputs.overrides, inputs.paramsFiles, process.env.PIPE_KINDS_PATH ?? '', ...limitVars(), ...(inputs.appliedParams === false ? ['no-applied-params'] : [])]))
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
function recentlyChanged(paths: Iterable<string>, now: number): boolean {
  const limit = now - 2000;
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
    if (!ownCacheDir(cacheDir())) return undefined;
    // A cache: whatever is not a regular file within the bound, or not as pipe wrote it, is a miss (and the next
    // save replaces it).
    const read = readBoundedSync(entryPath(inputs), MAX_ENTRY_BYTES);
    if (!read.ok) return undefined;
    const content = digested(read.bytes);
    if (content === undefined) return undefined;
    text = content.toString('utf8');
    header = JSON.parse(text.slice(0, text.indexOf('\n'))) as Header;
  } catch {
    return undefined;
  }
  if (header?.v !== VERSION) return undefined;
  const sourceFiles = Object.keys(header.files);
  const expected = new Set([...inputs.manifests, ...codeFiles()]);
  for (const f of expected) if (header.files[f] === undefined) return undefined;
  for (const f of sourceFiles) if (header.files[f] !== identity(f)) return undefined;
  for (const [p, was] of Object.entries(header.exists)) if (existsSync(p) !== was) return undefined;
  for (const [p, was] of Object.entries(header.links ?? {})) if (isLinkNow(p) !== was) return undefined;
  let body: Body;
  try {
    body = JSON.parse(text.slice(text.indexOf('\n') + 1)) as Body;
  } catch {
    return undefined;
  }
  // Every file the pipeline was read from is in the header: a new include changes the header's file set.
  if (sourceFiles.length !== new Set([...expected, ...body.pipeline.sourceFiles]).size) return undefined;
  touchIfOld(entryPath(inputs));
  return { pipeline: { ...body.pipeline, stages: unpackStages(body.stages) }, warnings: body.warnings };
}

/** The entry's bytes before its last line, when that line is their sha256; else undefined. */
function digested(bytes: Buffer): Buffer | undefined {
  if (bytes.length < 2 || bytes[bytes.length - 1] !== NL) return undefined;
  const last = bytes.lastIndexOf(NL, bytes.length - 2);
  if (last < 0) return undefined;
  const content = bytes.subarray(0, last + 1);
  const digest = createHash('sha256').update(content).digest('hex');
  return bytes.subarray(last + 1, bytes.length - 1).toString('latin1') === digest ? content : undefined;
}

const NL = 0x0a;

/** The chunks of an entry, then the line with their sha256 (what `digested` checks). */
function* withDigest(chunks: Iterable<string>): Generator<string> {
  const h = createHash('sha256');
  for (const c of chunks) {
    h.update(c);
    yield c;
  }
  yield `\n${h.update('\n').digest('hex')}\n`;
}

/**
 * A hit keeps its entry recent for the bound (at most one utimes an hour: a no-op run writes nothing else here). Only
 * an entry that is a file: utimes follows a link, and would change the times of whatever it points to.
 */
function touchIfOld(path: string, now = Date.now()): void {
  try {
    const st = lstatSync(path);
    if (st.isFile() && st.mtimeMs < now - TOUCH_AFTER_MS) utimesSync(path, now / 1000, now / 1000);
  } catch {
    // Removed meanwhile, or a read-only cache: it only ages.
  }
}

/**
 * Keep the cache folder within `bounds`: past either, the entries used least recently (mtime: written, or refreshed
 * by a hit) are removed until both are at 3/4. Also removes temps of interrupted writes older than an hour. Only
 * names this cache writes are touched, never followed (an entry is a file; a link there is removed as a link).
 * Returns how many entries were removed.
 */
export function pruneCachedPipelines(dir: string = cacheDir(), bounds = CACHE_BOUNDS, now = Date.now()): number {
  if (!ownCacheDir(dir)) return 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const entries: Array<{ path: string; bytes: number; mtimeMs: number }> = [];
  let bytes = 0;
  for (const name of names) {
    const path = join(dir, name);
    const temp = tempOf(name);
    if (temp && ENTRY_NAME.test(temp.of)) {
      const st = lstatOrUndefined(path);
      if (st && st.mtimeMs < now - 3600 * 1000) rmSync(path, { force: true, recursive: true });
      continue;
    }
    if (!ENTRY_NAME.test(name)) continue;
    const st = lstatOrUndefined(path);
    if (!st) continue;
    entries.push({ path, bytes: st.size, mtimeMs: st.mtimeMs });
    bytes += st.size;
  }
  if (entries.length <= bounds.entries && bytes <= bounds.bytes) return 0;
  entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
  let removed = 0;
  for (const e of entries) {
    if (entries.length - removed <= (bounds.entries * 3) / 4 && bytes <= (bounds.bytes * 3) / 4) break;
    try {
      rmSync(e.path, { force: true, recursive: true });
    } catch {
      continue; // not ours to remove (permissions): it stays, and so does its count
    }
    removed++;
    bytes -= e.bytes;
  }
  return removed;
}

function lstatOrUndefined(path: string): { size: number; mtimeMs: number } | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** `now`: the clock the racy window is measured against (tests move it instead of sleeping). */
export function writeCachedPipeline(
  inputs: CacheInputs,
  pipeline: Pipeline,
  warnings: unknown[],
  probes: DiskProbes,
  now: number = Date.now(),
): void {
  if (recentlyChanged(pipeline.sourceFiles, now)) return;
  const files: Record<string, string> = {};
  for (const f of new Set([...inputs.manifests, ...codeFiles(), ...pipeline.sourceFiles])) files[f] = identity(f);
  const header: Header = { v: VERSION, files, exists: probes.exists, ...(probes.links && Object.keys(probes.links).length > 0 ? { links: probes.links } : {}) };
  const path = entryPath(inputs);
  try {
    ownFolderSync(dirname(dirname(path)), basename(dirname(path))); // a link there: refused (no cache, as when read-only)
    writeFileAtomicSync(path, withDigest(bodyChunks(`${JSON.stringify(header)}\n`, pipeline, warnings)));
    pruneCachedPipelines(dirname(path));
  } catch {
    // A read-only home or a full disk: no cache, just slower loads.
  }
}

/**
 * The body, written a megabyte at a time as the stages are packed: at 100,000 stages neither the packed stages nor
 * one 30 MB JSON string exist at once.
 */
function* bodyChunks(head: string, pipeline: Pipeline, warnings: unknown[]): Generator<string> {
  let buffered: string[] = [head];
  let size = head.length;
  const { stages, ...rest } = pipeline;
  const packer = new StagePacker();
  const parts = function* (): Generator<string> {
    yield `{"pipeline":${JSON.stringify(rest)},"warnings":${JSON.stringify(warnings)},"stages":{"list":[`;
    for (let i = 0; i < stages.length; i++) yield `${i ? ',' : ''}${JSON.stringify(packer.pack(stages[i]!))}`;
    yield `],"spans":${JSON.stringify(packer.spans)},"tables":${JSON.stringify(packer.tables)}}}`;
  };
  for (const text of parts()) {
    buffered.push(text);
    size += text.length;
    if (size >= 1 << 20) {
      yield buffered.join('');
      buffered = [];
      size = 0;
    }
  }
  yield buffered.join('');
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

class StagePacker {
  readonly spans: SourceSpan[] = [];
  readonly tables = Object.fromEntries(SHARED_FIELDS.map((f) => [f, []])) as unknown as Record<SharedField, unknown[]>;
  private readonly spanIndex = new Map<SourceSpan, number>();
  private readonly byObject = new Map<unknown, number>();
  private readonly byJson = new Map<string, number>();

  /** The previous stage's field names (joined) and its packed values that are numbers, strings or booleans. */
  private prevKeys = '';
  private prev = new Map<string, unknown>();

  /**
   * One stage, as a delta from the one before: `@` lists the field names when they change, and a field whose
   * packed value is the same number, string or boolean as the previous stage's is left out (a matrix's instances
   * differ only in name, item, command and outs).
   */
  pack(st: StageSpec): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const keys = Object.keys(st);
    const joined = keys.join('\0');
    if (joined !== this.prevKeys) {
      out['@'] = keys;
      this.prevKeys = joined;
      this.prev.clear();
    }
    for (const k of keys) {
      const v = (st as unknown as Record<string, unknown>)[k];
      let packed: unknown;
      if (k === 'span') packed = this.spanOf(v as SourceSpan);
      else if (k === 'outs') packed = (v as OutSpec[]).map((o) => this.withSpan(o));
      else if (k === 'deps') packed = this.shared('deps', v, (deps) => (deps as DepSpec[]).map((d) => this.withSpan(d)));
      else if ((SHARED_FIELDS as readonly string[]).includes(k)) packed = this.shared(k as SharedField, v, (x) => x);
      else packed = v;
      const primitive = packed === null || typeof packed !== 'object';
      if (primitive && this.prev.has(k) && this.prev.get(k) === packed) continue;
      out[k] = packed;
      if (primitive) this.prev.set(k, packed);
      else this.prev.delete(k);
    }
    return out;
  }

  private spanOf(sp: SourceSpan | undefined): number {
    if (!sp) return -1;
    let i = this.spanIndex.get(sp);
    if (i === undefined) this.spanIndex.set(sp, (i = this.spans.push(sp) - 1));
    return i;
  }

  private withSpan(x: { span?: SourceSpan }): unknown {
    return { ...x, span: this.spanOf(x.span) };
  }

  /** The table index of `value` (equal values, by identity or JSON, share one entry). */
  private shared(field: SharedField, value: unknown, pack: (v: unknown) => unknown): number {
    const known = this.byObject.get(value);
    if (known !== undefined) return known;
    const packed = pack(value);
    const json = `${field}\0${JSON.stringify(packed)}`;
    let i = this.byJson.get(json);
    if (i === undefined) this.byJson.set(json, (i = this.tables[field].push(packed) - 1));
    this.byObject.set(value, i);
    return i;
  }
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
  let keys: string[] = [];
  let prev: Record<string, unknown> = {};
  return packed.list.map((p) => {
    if (p['@']) keys = p['@'] as string[];
    // Fields in their original order (one hidden class for all stages); a left-out field is the previous stage's.
    const st: Record<string, unknown> = {};
    // Indexed: ~15 fields of each of up to 100,000 stages, and a for-of iterator is garbage in code not yet optimised.
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (!Object.prototype.hasOwnProperty.call(p, k)) st[k] = prev[k];
      else if (k === 'span') st[k] = spanAt(p[k]);
      else if (k === 'outs') st[k] = (p[k] as OutSpec[]).map(withSpan);
      else if ((SHARED_FIELDS as readonly string[]).includes(k)) st[k] = tables[k as SharedField][p[k] as number];
      else st[k] = p[k];
    }
    prev = st;
    return st as unknown as StageSpec;
  });
}
