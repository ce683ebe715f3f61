/**
 * A stage's cache key: the hash of everything that can change what the stage writes. Two runs with equal keys are
 * interchangeable, so any earlier run with this key can be restored instead of running (DVC's run-cache idea).
 *
 * Deliberately NOT in the key:
 *  - resources (cpus, mem, gpus, time): they change how fast a stage runs, not what it writes; a stage that
 *    behaves differently with more threads is nondeterministic anyway and caching the first result is right.
 *  - executor (local/slurm) and slurm options: the same command on another host must give the same outputs;
 *    moving a stage to the cluster must not re-run it.
 *  - retries, watch mode: scheduling policy only.
 *  - metrics flags of outs: which files `pipe metrics` reads changes no bytes on disk.
 *  - for `cmd` stages, the toolchain: pipe cannot know which programs a shell command runs (declare a dep on a
 *    script, or an `env:` value naming a version, to key them); the ambient environment (see `env`).
 *  - the manifest of a kind: its defaults reach the key through `with`, its descriptions change nothing.
 */
import { asStageKey } from '../cache/brand.js';
import { hashJson } from '../cache/hash.js';
import { outPathKey } from '../cache/paths.js';
import type { Hash, StageKey } from '../cache/types.js';
import type { KindFingerprint, Toolchain } from './kinds.js';
import type { StageSpec } from './model.js';

/**
 * Bumped whenever the meaning of a field changes, so keys computed by an older pipe never match by accident
 * (an old run record would be restored under different semantics).
 */
export const KEY_SCHEMA = 2;

export interface KeyFields {
  /** Why: a new key format must not collide with old records. */
  schema: number;
  /**
   * The shell command after interpolation (params already substituted and quoted).
   * Why: it is the computation itself; any change (a flag, a script name) can change the outputs.
   */
  cmd?: string;
  /** Why: a different built-in kind is a different computation. */
  uses?: string;
  /**
   * The content of the kind's implementation closure: repo-relative path of each compiled file → its sha256 (null
   * when an import names a missing file). The closure is the kind's `run.js`, the stage runner and the stage API,
   * every module they import (stages/lib included), worker entry points and files located with
   * `new URL('./x', import.meta.url)`, and the manifest's `data` files (engine/kinds.ts `kindClosure`).
   * Why: fixing a bug in a kind, or in a helper it imports, must re-run the stages using it, like editing a script a
   * `cmd` depends on; nothing else may count (a leftover .js in dist/ must not change a key, or a fresh clone and a
   * long-lived checkout would disagree). Compiled .js, not .ts sources: the key must describe the code that runs; an
   * edited source that is not rebuilt yet runs the old code, and its outputs belong to the old key.
   * Per file rather than one hash, so `pipe why` can name the file that changed.
   */
  implementation?: Record<string, string | null>;
  /**
   * For `uses` stages: the Node version, platform-arch, and for every npm package the closure's code names, its
   * installed version and a digest of its installed dependency tree (engine/packages.ts).
   * Why: the same code on another Node (V8 Math, sort stability, Intl) or with another sharp/tfjs/vega computes
   * other bytes. Granularity, decided:
   *  - the full Node version, as wireit keys it: a patch release can change V8 numerics, and re-running after a Node
   *    update is cheap next to serving results of another runtime;
   *  - per kind, only the packages its code reaches, so bumping exceljs does not re-run training;
   *  - each with its whole installed dependency tree (tfjs kernels live in @tensorflow/tfjs-core and the backend
   *    packages, sharp's in @img/*), folded into one digest per named package: the key stays small, and `pipe why`
   *    still names the package whose tree changed;
   *  - not the lock file as a whole: a dev-dependency bump would re-run everything.
   */
  toolchain?: Toolchain;
  /**
   * The validated `with:` values of a `uses` stage (paths included).
   * Why: they are the kind's arguments, as the command line is for `cmd` stages.
   */
  with?: Record<string, unknown>;
  /**
   * Params the stage uses (dotted name → resolved value), and only those.
   * Why: a param reaches the stage through the command or through ctx.params; changing an unrelated param must
   * not invalidate it, so only used ones count.
   */
  params: Record<string, unknown>;
  /**
   * Content hash of every dep (workspace-relative path → hash; directories as a Merkle hash of their files;
   * null when missing). Why: inputs are the other half of the computation; content, not mtime, so a `touch` or a
   * fresh clone does not re-run anything.
   */
  deps: Record<string, string | null>;
  /**
   * Declared env values. Why: env vars are inputs too (e.g. a seed or a thread count set via `env:`).
   * Only declared ones: the user's ambient environment (PATH, TERM) must not make every key unique.
   */
  env: Record<string, string>;
  /**
   * The outs declaration: paths and cache flags. Why: a record restored for a different set of outputs would
   * leave declared outputs missing; and `cache: false` outputs cannot be restored, so flipping it changes what a
   * record can provide.
   */
  outs: Array<{ path: string; cache: boolean }>;
}

/** The fields of a stage's key, given its deps' content hashes and (for `uses`) its kind's fingerprint. */
export function keyFields(stage: StageSpec, depHashes: Record<string, Hash | null>, kind: KindFingerprint | undefined): KeyFields {
  // Built in key order (cmd, deps, env, implementation, outs, params, schema, toolchain, uses, with), so the canonical
  // JSON of the key sorts nothing.
  const fields = {} as KeyFields;
  if (stage.cmd !== undefined) fields.cmd = stage.cmd;
  fields.deps = sortKeys(depHashes);
  fields.env = sortKeys(stage.env);
  if (stage.uses !== undefined && kind !== undefined) fields.implementation = sortKeys(kind.implementation);
  // `dir` and `dir/` are one output (cache/paths.ts): respelling it changes no key.
  fields.outs = stage.outs.map((o) => ({ cache: o.cache, path: outPathKey(o.path) })).sort((a, b) => cmp(a.path, b.path));
  fields.params = sortKeys(stage.params);
  fields.schema = KEY_SCHEMA;
  if (stage.uses !== undefined) {
    if (kind !== undefined) fields.toolchain = { node: kind.toolchain.node, packages: sortKeys(kind.toolchain.packages), platform: kind.toolchain.platform };
    fields.uses = stage.uses;
    fields.with = stage.with ?? {};
  }
  return fields;
}

/** The key: sha256 of the canonical JSON of the fields (key order never matters). */
export function stageKey(fields: KeyFields): StageKey {
  return asStageKey(hashJson(fields));
}

function sortKeys<V>(o: Record<string, V>): Record<string, V> {
  const keys = Object.keys(o);
  if (keys.length === 0) return NO_KEYS as Record<string, V>;
  // A param named `__proto__` must be a key, not a prototype change that drops it from the key; other objects stay
  // ordinary (a null-prototype object is a dictionary, and there is one of these per stage).
  const out: Record<string, V> = keys.includes('__proto__') ? Object.create(null) : {};
  keys.sort(cmp);
  for (let i = 0; i < keys.length; i++) out[keys[i]!] = o[keys[i]!] as V;
  return out;
}
const NO_KEYS: Record<string, never> = Object.freeze({});

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
