/**
 * The validated pipeline: what `engine/dsl/` produces from YAML and every later step (graph, plan, scheduler,
 * executors, watch) consumes. Pure data, no behaviour.
 */
import type { Resources } from './stage-api.js';

/** A position in a source file (1-based line and column). */
export interface SourceSpan {
  file: string;
  line: number;
  col: number;
  endLine?: number;
  endCol?: number;
}

export interface DepSpec {
  /** Workspace-relative, normalised (`a/b`, a directory ends with `/`). */
  path: string;
  span?: SourceSpan;
}

export interface OutSpec {
  /** Workspace-relative, normalised (`a/b`, a directory ends with `/`). */
  path: string;
  /** false: not stored in the cache (and so never restored); still hashed into the lock file. */
  cache: boolean;
  /** A metrics file (JSON) that `pipe metrics` tabulates. */
  metric: boolean;
  span?: SourceSpan;
}

export interface RetryPolicy {
  /** Extra attempts after the first. */
  count: number;
  /** After an out-of-memory failure multiply memory by this; after a time limit, multiply time. */
  memFactor?: number;
  timeFactor?: number;
}

export interface SlurmOptions {
  partition?: string;
  account?: string;
  qos?: string;
  constraint?: string;
  /** `gres` (default): `--gres=gpu:N`; `gpus`: `--gpus=N`. */
  gpuFlag?: 'gres' | 'gpus';
  /** Extra sbatch flags, verbatim. */
  extra?: string[];
}

export interface StageSpec {
  /** Unique name after expansion: `train`, `train@vindr_cxr`, `fpr@model=padchest,split=test`. */
  name: string;
  /** The key under `stages:` it was declared with (`train`); equal to `name` for plain stages. */
  declaredAs: string;
  /** The foreach item or matrix combination, when expanded. */
  item?: unknown;
  /** Exactly one of `cmd` and `uses` is set. `cmd` is final (interpolated values already shell-quoted). */
  cmd?: string;
  uses?: string;
  /** For `uses`: validated `with:` values, defaults applied, interpolated. */
  with?: Record<string, unknown>;
  deps: DepSpec[];
  /** Includes metrics files (metric: true). For `uses`, the `role: out` fields of `with:`. */
  outs: OutSpec[];
  /**
   * Params this stage depends on, by dotted name → resolved value: those referenced by `${params.x}` anywhere in
   * the stage, plus those listed in its `params:` field.
   */
  params: Record<string, unknown>;
  env: Record<string, string>;
  resources: Resources;
  /** `local` unless the stage or the pipeline says otherwise. */
  executor: 'local' | 'slurm';
  slurm: SlurmOptions;
  retries: RetryPolicy;
  alwaysRun: boolean;
  /** Watch mode: `manual` stages are marked stale but not started automatically. */
  watch: 'auto' | 'manual';
  /** Where the stage was declared (its key under `stages:`). */
  span: SourceSpan;
  /** One line saying what the stage is for (`desc:`), shown by `pipe dag` and the report. */
  desc?: string;
}

/** One parameter set of an experiment: the params it overrides (dotted name → value) under a stable short name. */
export interface VariantSpec {
  /** `lr-sweep-3f2a1c` (grid, list: the experiment's name and a hash of the overrides), or the experiment's name (set). */
  name: string;
  /** Dotted param name → value, applied over the resolved params like `-S name=value`. */
  overrides: Record<string, unknown>;
}

/** An `experiments:` entry: named parameter sets that `pipe exp run` runs, each in its own scratch workspace. */
export interface ExperimentSpec {
  name: string;
  /** `set`: one override set; `grid`: the cartesian product of the axes; `list`: the listed sets. */
  kind: 'set' | 'grid' | 'list';
  variants: VariantSpec[];
  /** Stage names or globs each variant brings up to date (with their upstream); every stage when absent. */
  targets?: string[];
  /** The metric `pipe exp show --html` charts by default. */
  metric?: string;
  desc?: string;
  /** Where the experiment is declared (its key under `experiments:`). */
  span: SourceSpan;
}

export interface Pipeline {
  /** Absolute path of the YAML file. */
  file: string;
  /** Absolute workspace root: the YAML's folder, or `workdir:` relative to it. Paths are relative to this. */
  workdir: string;
  name: string;
  /** Resolved params (defaults, then params files, then `-S` overrides). */
  params: Record<string, unknown>;
  vars: Record<string, unknown>;
  stages: StageSpec[];
  /** `experiments:` of the main file and its fragments, in declaration order (absent: none declared). */
  experiments?: ExperimentSpec[];
  /** Every file the definition was read from (YAML, includes, params files): watch mode watches them. */
  sourceFiles: string[];
  /** Pipeline-level settings. */
  settings: {
    /** Cache directory (absolute). Default `<workdir>/.pipe/cache`. */
    cacheDir: string;
    /** Restore strategies tried in order. Default `['reflink', 'copy']`. */
    restore: Array<'reflink' | 'hardlink' | 'copy'>;
    executor: 'local' | 'slurm';
    slurm: SlurmOptions;
    /** The pipeline's main outputs (workspace-relative), named on a run's closing line. Each is an out of a stage. */
    summary: string[];
    /**
     * What ambient environment `cmd` stages see: `inherit` (default) all of pipe's; `strict` only their declared
     * `env:` and the pass-through list (engine/env.ts). `uses` stages are always strict.
     */
    env: 'inherit' | 'strict';
  };
}
