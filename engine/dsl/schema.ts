/**
 * The shape of a pipeline YAML in one place: the known keys of every mapping (for "unknown key, did you mean"
 * diagnostics) with their descriptions, and the JSON Schema that editors use (docs/pipeline.schema.json is
 * generated from `pipelineJsonSchema()`; a test keeps the two equal).
 */
import type { FieldSpec, StageManifest } from '../stage-api.js';

type Keys = Record<string, string>;

export const TOP_KEYS: Keys = {
  name: 'Pipeline name (default: the file name without extension).',
  workdir: "Workspace root, relative to this file's folder (default `.`). Every stage path is relative to it.",
  params: 'Parameter defaults: `${params.x.y}` in stages; overridable with `-S x.y=value` and params files.',
  params_files: 'YAML/JSON files (relative to this file) merged over `params:` in order.',
  vars: 'Constants for `${vars.x}` (lists for `foreach:`/`matrix:`, path prefixes...). May use `${params.x}`.',
  include: 'Fragment files (relative to this file) that add `params`, `vars` and `stages`.',
  settings: 'Pipeline-wide settings: cache directory, restore strategy, default executor, SLURM defaults, main outputs.',
  stages: 'Stages by name. Each is a `cmd:` or a `uses:` stage, or a `foreach:`/`matrix:` with a `do:` template.',
  experiments: 'Named parameter sets (`set`, `grid` or `list` of param overrides) that `pipe exp run` runs without touching the workspace.',
};

export const FRAGMENT_KEYS: Keys = {
  params: TOP_KEYS.params!,
  vars: TOP_KEYS.vars!,
  include: 'Further fragments, relative to this fragment.',
  stages: TOP_KEYS.stages!,
  experiments: TOP_KEYS.experiments!,
};

export const EXPERIMENT_KEYS: Keys = {
  set: 'One variant: dotted param names → values (`{retrain.lr: 0.01}`), applied like `-S`.',
  grid: 'One variant per combination: dotted param names → lists of values (`{retrain.lr: [0.0005, 0.002]}`); the first axis varies slowest.',
  list: 'One variant per entry: a list of mappings of dotted param names → values.',
  targets: 'Stage names or globs each variant brings up to date (with their upstream); default every stage.',
  metric: 'The metric `pipe exp show --html` charts against each swept param (a flattened key of a `metrics:` file).',
  desc: 'What the experiment asks, shown by `pipe exp show`.',
};

export const SETTINGS_KEYS: Keys = {
  cache_dir: 'Content-addressed cache directory, relative to the workspace (default `.pipe/cache`).',
  restore: 'Restore strategies tried in order: `reflink`, `hardlink`, `copy` (default `[reflink, copy]`).',
  executor: 'Default executor for every stage: `local` (default) or `slurm`.',
  slurm: 'SLURM defaults for stages run with `executor: slurm`.',
  summary: 'Main outputs (outs of stages) a run names on its closing line: `[out/report.html]` → `report: out/report.html`.',
  env: '`inherit` (default): `cmd` stages see pipe\'s whole environment; `strict`: only their `env:` and the pass-through list (PATH, HOME, TMPDIR, LANG/LC_*, proxies, NETRC, SLURM_*, CUDA_VISIBLE_DEVICES).',
};

export const SLURM_KEYS: Keys = {
  partition: 'sbatch --partition.',
  account: 'sbatch --account.',
  qos: 'sbatch --qos.',
  constraint: 'sbatch --constraint.',
  gpu_flag: 'How GPUs are requested: `gres` (`--gres=gpu:N`, default) or `gpus` (`--gpus=N`).',
  extra: 'Extra sbatch flags, verbatim.',
};

export const STAGE_KEYS: Keys = {
  cmd: 'Shell command (run with `sh -c` in the workspace). Interpolated values are shell-quoted.',
  uses: 'A built-in stage kind (e.g. `evaluate/fpr`), configured by `with:`.',
  with: 'Typed inputs of the `uses:` kind; its path fields become deps and outs automatically.',
  deps: 'Files or directories (trailing `/`) the stage reads: hashed into its key, and edges of the DAG.',
  outs: 'Files or directories (trailing `/`) the stage writes: a path, or `{path, cache: false}`.',
  metrics: 'JSON metrics files the stage writes (outs that `pipe metrics` tabulates).',
  params: 'Dotted names of params the stage depends on without interpolating them (e.g. read from a file).',
  env: 'Environment variables for the command; their values are part of the key.',
  resources: 'What the stage needs: `cpus`, `mem` (`8G`), `gpus`, `time` (`01:30:00`, `90m`).',
  executor: '`local` or `slurm` (default: `settings.executor`).',
  slurm: 'SLURM options for this stage, over `settings.slurm`.',
  retries: 'Extra attempts after a failure: a count, or `{count, mem_factor, time_factor}`.',
  always_run: 'Run even when nothing changed.',
  cache: '`false`: none of the outs is stored in the cache.',
  watch: 'Watch mode: `auto` (re-run on change) or `manual` (only marked stale). Default `manual` for GPU or SLURM stages.',
  desc: 'A description shown by `pipe dag` and `pipe status`.',
};

export const FOREACH_KEYS: Keys = {
  foreach: 'A list or mapping (or `${vars.x}`): one stage per item, named `stage@item` (`stage@key` for a mapping).',
  do: 'The stage template; `${item}` (and `${key}` for a mapping) refer to the current item.',
  desc: STAGE_KEYS.desc!,
};

export const MATRIX_KEYS: Keys = {
  matrix: 'Named axes, each a list (or `${vars.x}`): one stage per combination, named `stage@a=x,b=y`.',
  do: 'The stage template; `${item.axis}` refers to the current value of an axis.',
  desc: STAGE_KEYS.desc!,
};

export const RESOURCE_KEYS: Keys = {
  cpus: 'CPU cores (default 1).',
  mem: 'Memory: bytes or `512M`, `8G`, `1.5T` (binary units). Default: no reservation.',
  gpus: 'GPU devices (default 0). Each gets a device id in `CUDA_VISIBLE_DEVICES`.',
  time: 'Wall-clock limit: seconds, `90m`, `1h30m`, `01:30:00`, `2-00:00:00`.',
};

export const RETRY_KEYS: Keys = {
  count: 'Extra attempts after the first.',
  mem_factor: 'After an out-of-memory failure, multiply `mem` by this.',
  time_factor: 'After hitting the time limit, multiply `time` by this.',
};

export const OUT_KEYS: Keys = {
  path: 'Workspace-relative path (trailing `/` for a directory).',
  cache: '`false`: hashed but not stored in the cache.',
  metric: '`true`: a JSON metrics file.',
};

// ---------------------------------------------------------------------------------------------------------------
// JSON Schema (draft-07)

type Json = Record<string, unknown>;

const interp = { type: 'string', pattern: '^\\$\\{[^}]+\\}$', description: 'A `${...}` interpolation.' };
const orInterp = (s: Json): Json => ({ anyOf: [s, interp], description: s.description });

function obj(keys: Keys, props: Record<string, Json>, extra: Json = {}): Json {
  const properties: Record<string, Json> = {};
  for (const [k, description] of Object.entries(keys)) properties[k] = { description, ...(props[k] ?? {}) };
  return { type: 'object', additionalProperties: false, properties, ...extra };
}

const pathItem: Json = { type: 'string', minLength: 1 };
const outItem = obj(OUT_KEYS, { path: pathItem, cache: { type: 'boolean' }, metric: { type: 'boolean' } }, { required: ['path'] });
const pathList = (allowObj: boolean): Json => ({
  anyOf: [
    { type: 'array', items: allowObj ? { anyOf: [pathItem, outItem] } : pathItem },
    allowObj ? { anyOf: [pathItem, outItem] } : pathItem,
  ],
});

const slurmSchema = obj(SLURM_KEYS, {
  partition: { type: 'string' },
  account: { type: 'string' },
  qos: { type: 'string' },
  constraint: { type: 'string' },
  gpu_flag: { enum: ['gres', 'gpus'] },
  extra: { type: 'array', items: { type: 'string' } },
});

const resourcesSchema = obj(RESOURCE_KEYS, {
  cpus: orInterp({ type: 'number', exclusiveMinimum: 0, description: RESOURCE_KEYS.cpus }),
  mem: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*[KMGTkmgt]?(i?[Bb])?\\s*$' }, interp] },
  gpus: orInterp({ type: 'integer', minimum: 0, description: RESOURCE_KEYS.gpus }),
  time: { anyOf: [{ type: 'number', exclusiveMinimum: 0 }, { type: 'string' }] },
});

const retriesSchema: Json = {
  anyOf: [
    { type: 'integer', minimum: 0 },
    obj(RETRY_KEYS, {
      count: { type: 'integer', minimum: 0 },
      mem_factor: { type: 'number', minimum: 1 },
      time_factor: { type: 'number', minimum: 1 },
    }),
  ],
};

function stageBody(withSchema: Json): Json {
  return obj(STAGE_KEYS, {
    cmd: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] },
    uses: { type: 'string' },
    with: withSchema,
    deps: pathList(false),
    outs: pathList(true),
    metrics: pathList(true),
    params: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }] },
    env: { type: 'object', propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } },
    resources: resourcesSchema,
    executor: { anyOf: [{ enum: ['local', 'slurm'] }, interp] },
    slurm: slurmSchema,
    retries: retriesSchema,
    always_run: { anyOf: [{ type: 'boolean' }, interp] },
    cache: { anyOf: [{ type: 'boolean' }, interp] },
    watch: { anyOf: [{ enum: ['auto', 'manual'] }, interp] },
    desc: { type: 'string' },
  }, {
    oneOf: [{ required: ['cmd'], not: { required: ['uses'] } }, { required: ['uses'], not: { required: ['cmd'] } }],
  });
}

function fieldSchema(f: FieldSpec): Json {
  const base: Json = { description: f.description };
  if (f.default !== undefined) base.default = f.default;
  switch (f.type) {
    case 'string':
    case 'path':
      return { ...base, type: 'string' };
    case 'number':
      return { ...base, anyOf: [{ type: 'number' }, interp] };
    case 'integer':
      return { ...base, anyOf: [{ type: 'integer' }, interp] };
    case 'boolean':
      return { ...base, anyOf: [{ type: 'boolean' }, interp] };
    case 'enum':
      return { ...base, anyOf: [{ enum: [...(f.values ?? [])] }, interp] };
    case 'path[]':
    case 'string[]':
      return { ...base, anyOf: [{ type: 'array', items: { type: 'string' } }, interp] };
    case 'number[]':
      return { ...base, anyOf: [{ type: 'array', items: { type: 'number' } }, interp] };
    case 'object':
      return { ...base, anyOf: [{ type: 'object' }, interp] };
    case 'any':
      return base;
  }
}

function withSchemas(kinds: StageManifest[] | undefined): { with: Json; conditionals: Json[] } {
  const anyWith = { anyOf: [{ type: 'object' }, interp] };
  if (!kinds?.length) return { with: anyWith, conditionals: [] };
  const conditionals = kinds.map((k) => {
    const properties: Record<string, Json> = {};
    for (const [name, f] of Object.entries(k.with)) properties[name] = fieldSchema(f);
    const required = Object.entries(k.with).filter(([, f]) => f.required && f.default === undefined).map(([n]) => n);
    const withSchema: Json = { type: 'object', additionalProperties: false, properties };
    if (required.length) withSchema.required = required;
    return {
      if: { properties: { uses: { const: k.kind } }, required: ['uses'] },
      then: { properties: { with: { anyOf: [withSchema, interp] } } },
    };
  });
  return { with: anyWith, conditionals };
}

/** The JSON Schema (draft-07) of a pipeline YAML; with `kinds`, `with:` is checked per `uses:` kind. */
export function pipelineJsonSchema(kinds?: StageManifest[]): Json {
  const w = withSchemas(kinds);
  const body = stageBody(w.with);
  if (w.conditionals.length) body.allOf = w.conditionals;
  if (kinds?.length) (body.properties as Record<string, Json>).uses = { enum: kinds.map((k) => k.kind), description: STAGE_KEYS.uses };
  const foreach = obj(FOREACH_KEYS, {
    foreach: { anyOf: [{ type: 'array' }, { type: 'object' }, interp] },
    do: { $ref: '#/definitions/stage' },
    desc: { type: 'string' },
  }, { required: ['foreach', 'do'] });
  const matrix = obj(MATRIX_KEYS, {
    matrix: { type: 'object', additionalProperties: { anyOf: [{ type: 'array' }, interp] } },
    do: { $ref: '#/definitions/stage' },
    desc: { type: 'string' },
  }, { required: ['matrix', 'do'] });
  const stages: Json = {
    type: 'object',
    propertyNames: { pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' },
    additionalProperties: {
      anyOf: [{ $ref: '#/definitions/stage' }, { $ref: '#/definitions/foreach' }, { $ref: '#/definitions/matrix' }],
    },
  };
  const top = obj(TOP_KEYS, {
    name: { type: 'string' },
    workdir: { type: 'string' },
    params: { type: 'object' },
    params_files: { type: 'array', items: { type: 'string' } },
    vars: { type: 'object' },
    include: { type: 'array', items: { type: 'string' } },
    settings: obj(SETTINGS_KEYS, {
      cache_dir: { type: 'string' },
      restore: { type: 'array', items: { enum: ['reflink', 'hardlink', 'copy'] }, minItems: 1 },
      executor: { enum: ['local', 'slurm'] },
      slurm: slurmSchema,
      summary: { type: 'array', items: { type: 'string', minLength: 1 } },
      env: { enum: ['inherit', 'strict'] },
    }),
    stages,
    experiments: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' },
      additionalProperties: obj(EXPERIMENT_KEYS, {
        set: { type: 'object', minProperties: 1 },
        grid: { type: 'object', minProperties: 1, additionalProperties: { anyOf: [{ type: 'array', minItems: 1 }, interp] } },
        list: { type: 'array', minItems: 1, items: { type: 'object', minProperties: 1 } },
        targets: { anyOf: [{ type: 'array', items: { type: 'string', minLength: 1 } }, { type: 'string', minLength: 1 }] },
        metric: { type: 'string', minLength: 1 },
        desc: { type: 'string' },
      }, { oneOf: [{ required: ['set'] }, { required: ['grid'] }, { required: ['list'] }] }),
    },
  });
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'pipe pipeline',
    description: 'A pipe pipeline file (see docs/pipeline-yaml.md). Fragments named in `include:` use the same schema.',
    ...top,
    definitions: { stage: body, foreach, matrix },
  };
}

/** Kinds' manifests give nothing else to the schema; re-exported so callers need one import. */
export type { StageManifest };
