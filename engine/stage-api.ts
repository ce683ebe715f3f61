/**
 * The contract between the engine and built-in stage kinds (`uses:`).
 *
 * A kind lives in `stages/<kind>/` (e.g. `stages/evaluate/fpr/`) and has two modules:
 *  - `manifest.ts`: `export const manifest: StageManifest` — declarative, imports nothing heavy (the engine loads it
 *    on every run, including no-op runs, to validate `with:` and to know which fields are deps and outs);
 *  - `run.ts`: `export async function run(ctx: StageContext): Promise<void>` — loaded only inside the stage-runner
 *    process when the stage actually runs (this is where tfjs, sharp, vega... are imported).
 * Stages import only this file (and `engine/result.ts`) from the engine: types, StageError, and the atomic file
 * write (the one the cache and the engine use; stages/lib/atomic-write.ts is where kinds take it from).
 */
export { tempName, writeFileAtomic, writeFileAtomicSync, type FileData } from '../cache/atomic.js';
import { readBounded, readBoundedSync, type BoundedRead } from '../cache/read.js';
export { readBounded, type BoundedRead };

/** Types a `with:` field can have. `path`/`path[]` fields are workspace-relative paths (a trailing `/` = directory). */
export type FieldType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'enum'
  | 'path'
  | 'path[]'
  | 'string[]'
  | 'number[]'
  | 'object' // free-form mapping, passed through as JSON
  | 'any'; // anything JSON-serialisable (e.g. an inline Vega-Lite spec)

export interface FieldSpec {
  type: FieldType;
  /** For `path`/`path[]`: `dep` = hashed into the key and an edge source; `out` = produced (cached, restored). */
  role?: 'dep' | 'out';
  required?: boolean;
  default?: unknown;
  /** Allowed values for `enum`. */
  values?: readonly string[];
  description: string;
}

export interface StageManifest {
  /** `uses:` name, equal to the folder path under `stages/` (e.g. `evaluate/fpr`). */
  kind: string;
  description: string;
  with: Record<string, FieldSpec>;
  /**
   * Worker entry points the kind starts in a way its code does not spell as `new URL('./x.js', import.meta.url)`
   * (which is found on its own), relative to the kind's folder (`.ts` names are read as the compiled `.js`). Their
   * import closure joins the implementation hash.
   */
  workers?: string[];
  /**
   * Data files the kind reads at run time that no import reaches (relative to the kind's source folder), hashed
   * into its implementation. Code never goes here: the implementation hash follows imports on its own.
   */
  data?: string[];
  /**
   * Names of environment variables the kind reads, given its `with:` values (e.g. download's `base_url_env`). A
   * kind's process sees no other ambient variable but the pass-through list (PATH, HOME, TMPDIR, LANG/LC_*, proxies,
   * NETRC, SLURM_*, CUDA_VISIBLE_DEVICES). Their values are not part of the key: name only variables that say where
   * or as whom to fetch (locations, credentials), never ones that change what the kind computes — those belong in
   * `with:`.
   */
  envFrom?(w: Record<string, unknown>): string[];
  /** Default resources when the YAML gives none. */
  resources?: Partial<Resources>;
}

export interface Resources {
  cpus: number;
  /** Bytes. */
  memBytes: number;
  gpus: number;
  /** Wall-clock limit in seconds (SLURM `--time`); undefined = none. */
  timeSec?: number;
}

export interface ProgressUpdate {
  /** Units done so far and total (e.g. bytes, images, epochs). */
  done?: number;
  total?: number;
  unit?: string;
  message?: string;
}

/** Provenance of a stage this one (transitively) depends on, as the engine recorded it. */
export interface UpstreamRun {
  stage: string;
  key: string;
  /** Declared outputs with their content hashes. */
  outputs: Array<{ path: string; hash: string }>;
  /** `uses` kind or the command line. */
  uses?: string;
  cmd?: string;
  /**
   * Extra provenance the stage recorded (ctx.record), e.g. `{ backend: 'wasm' }`. Never its execution facts
   * (ctx.recordExecution: timings, worker counts): a stage's output may not depend on what varies from run to run.
   */
  extra?: Record<string, unknown>;
}

export interface StageContext<W = Record<string, unknown>> {
  /** Stage name after expansion, e.g. `train@vindr_cxr`. */
  readonly stage: string;
  /** Absolute path of the workspace root; every path in `with` is relative to it. */
  readonly workspace: string;
  /** Validated `with:` values, defaults applied. Path values are workspace-relative strings. */
  readonly with: W;
  /**
   * The params this stage uses — exactly those in its key (`${params.x}` in its fields, or listed in `params:`),
   * nested as in the pipeline (`a.b` → `{a: {b: …}}`), after CLI overrides. Other params never reach a kind.
   */
  readonly params: Readonly<Record<string, unknown>>;
  /** This stage's key and its deps' content hashes (workspace-relative path → hash). */
  readonly key: string;
  readonly depHashes: Readonly<Record<string, string>>;
  /** Every stage this one transitively depends on, in topological order (the report stage prints these). */
  readonly upstream: ReadonlyArray<UpstreamRun>;
  /** The pipeline file (workspace-relative), its name, and pipe's version. */
  readonly pipeline: { file: string; name: string; pipeVersion: string };
  /** Resolve a workspace-relative path to an absolute one. */
  resolve(relPath: string): string;
  /** A private scratch directory: empty when the stage starts (whatever a killed earlier attempt left), removed after. */
  readonly tmpDir: string;
  /** Resources granted (cpus to use for worker pools, GPU ids visible). */
  readonly resources: Resources & { gpuIds: string[] };
  /** Aborted on Ctrl-C / cancellation: stop promptly, write nothing further. */
  readonly signal: AbortSignal;
  /** A log line (goes to the stage log and the live UI). */
  log(message: string): void;
  /** The stage's own progress (rendered on the progress line). */
  progress(update: ProgressUpdate): void;
  /**
   * Provenance the run record keeps (e.g. `{ backend: 'wasm' }`); merged across calls. It reaches stages below
   * (ctx.upstream), so it must be a function of this stage's inputs and code, like its outputs.
   */
  record(info: Record<string, unknown>): void;
  /**
   * Facts about this execution that vary from run to run without changing any output — timings, throughput, worker
   * counts — kept in the run record's `execution` (for people and `pipe why`), never passed to other stages, so no
   * output (a report, say) can depend on them and a bit-identical re-run stays bit-identical downstream.
   */
  recordExecution(info: Record<string, unknown>): void;
}

export type StageRun<W = Record<string, unknown>> = (ctx: StageContext<W>) => Promise<void>;

/**
 * A stage reports an expected failure (bad input data, HTTP 404...) by throwing StageError: the runner prints the
 * message as one paragraph without a stack trace. Any other exception is a bug and is printed with its stack.
 */
export class StageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageError';
  }
}

/** The default of PIPE_MAX_STAGE_INPUT_MB: an input read whole into memory (a CSV or JSON becomes one string). */
const DEFAULT_STAGE_INPUT_MB = 512;

/** The bound on one file a stage reads whole that an earlier stage wrote: PIPE_MAX_STAGE_INPUT_MB, in bytes. */
export function stageInputLimit(): number {
  const mb = Number(process.env.PIPE_MAX_STAGE_INPUT_MB);
  return (Number.isFinite(mb) && mb > 0 ? mb : DEFAULT_STAGE_INPUT_MB) * 1024 * 1024;
}

/**
 * The bytes of `file`, a file an earlier stage wrote (predictions, a shard index, a model, plot data), read whole:
 * a regular file within stageInputLimit(). Anything else is a StageError naming `what`, the file, and the bound with
 * the variable that raises it; a FIFO or device is never read, so never blocks. `shown`: how messages name the file.
 */
export async function readStageInput(file: string, what: string, shown = file): Promise<Buffer> {
  const limit = stageInputLimit();
  return stageInputOf(await readBounded(file, limit), shown, what, limit);
}

/** readStageInput with synchronous calls. */
export function readStageInputSync(file: string, what: string, shown = file): Buffer {
  const limit = stageInputLimit();
  return stageInputOf(readBoundedSync(file, limit), shown, what, limit);
}

function stageInputOf(r: BoundedRead, file: string, what: string, limit: number): Buffer {
  if (r.ok) return r.bytes;
  switch (r.why) {
    case 'missing':
      throw new StageError(`${what} ${file} does not exist (is it written by an earlier stage?).`);
    case 'unreadable':
      throw new StageError(`${what} ${file} cannot be read (no permission, or a device without a reader).`);
    case 'not-a-file':
      throw new StageError(`${what} ${file} is not a regular file (a directory, FIFO or device); it is not read.`);
    case 'too-large':
      throw new StageError(
        `${what} ${file} is ${r.size} bytes, more than the ${limit / 1024 / 1024} MiB a stage reads into memory from an earlier stage's output; raise PIPE_MAX_STAGE_INPUT_MB to read it.`,
      );
  }
}
