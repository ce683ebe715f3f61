/**
 * loadPipeline: YAML file → validated Pipeline, or every problem at once.
 *
 *   read (main + includes) → params (defaults ⊕ fragments ⊕ params files ⊕ -S) → vars → settings
 *   → expand stages → resolve `uses:` kinds → check `with:` → defaults → cross-stage validation (+ DAG, cycles)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Pipeline, SlurmOptions, SourceSpan, StageSpec } from '../model.js';
import { normalisePath } from './paths.js';
import { err, ok, type Result } from '../result.js';
import type { Resources, StageManifest } from '../stage-api.js';
import { DiagnosticBag, didYouMean, displayPath, sortDiagnostics, type Diagnostic } from './diagnostics.js';
import { readLimits, type Limits } from './limits.js';
import { expandStages, type StageDraft, type UnseenBy, type VarParams } from './expand.js';
import { checkKeys } from './shape.js';
import { slurmOptions } from './stage-fields.js';
import { collectStageDecls, fileReader, readParamsFile, readUnits, section, stringList, type FileReader, type ParsedFiles, type Unit } from './files.js';
import { interpolateNode, type Scope, type Sink } from './interpolate.js';
import { nodeTypeName, toPlain, typeName, type Loc, type YMap } from './load.js';
import { applyOverride, appliedParamsPath, APPLIED_HEADER, deepMerge, getDotted, parseOverride, type PlainMap } from './params.js';
import { canonicalJson } from '../../cache/hash.js';
import { TOP_KEYS, SETTINGS_KEYS, SLURM_KEYS } from './schema.js';
import { validatePipeline } from './validate.js';
import { readExperiments } from './experiments.js';
import { applyWith } from './with.js';
import { Interner } from './shared.js';

export interface LoadOptions {
  /** Raw CLI `-S key=value` strings: dotted keys set nested params; values parsed as YAML scalars. */
  overrides?: string[];
  /** Extra params files (YAML or JSON), merged over the pipeline's `params:` (before overrides). */
  paramsFiles?: string[];
  /** Supplied by the engine; undefined = unknown kind. (A synchronous answer is accepted too.) */
  resolveKind(kind: string): Promise<StageManifest | undefined> | StageManifest | undefined;
  /** Default fs.existsSync. */
  fileExists?(absPath: string): boolean;
  /** Whether a path is a symbolic link now (stage-fields.ts PathPlace; the loader records the answers). */
  isLink?(absPath: string): boolean;
  /** Optional: the kinds that exist, so an unknown `uses:` gets a "did you mean". */
  knownKinds?(): readonly string[];
  /** Bounds (limits.ts); default: from the environment (PIPE_MAX_*), else the defaults. */
  limits?: Partial<Limits>;
  /** false: ignore `<name>.params.yaml` (the params `pipe exp apply` wrote): the pipeline's own defaults. */
  appliedParams?: boolean;
  /** Files already read and parsed by this command's other loads of the pipeline (files.ts ParsedFiles). */
  parsed?: ParsedFiles;
}

/** Warnings of a successfully loaded pipeline (errors come back as the Result's error). */
const warningsOf = new WeakMap<Pipeline, Diagnostic[]>();
export function pipelineWarnings(p: Pipeline): Diagnostic[] {
  return warningsOf.get(p) ?? [];
}

export async function loadPipeline(file: string, opts: LoadOptions): Promise<Result<Pipeline, Diagnostic[]>> {
  const abs = path.resolve(file);
  const bag = new DiagnosticBag();
  const fileOrder = [abs];
  const done = () => err(sortDiagnostics(bag.items, fileOrder));

  const fromEnv = readLimits();
  for (const problem of fromEnv.problems) bag.error(problem);
  if (bag.hasErrors) return done();
  const limits: Limits = { ...fromEnv.limits, ...opts.limits };

  const read = fileReader(limits, opts.parsed);
  const r = read(abs);
  if ('error' in r) {
    bag.error(r.error, r.span);
    return done();
  }
  const parsed = r.parsed;
  for (const d of parsed.diagnostics) bag.add(d);
  if (!parsed.root) return done();
  if (parsed.root.t === 'map' && parsed.root.entries.length === 0 && parsed.root.loc.end === 0) {
    bag.error(
      `${displayPath(abs)} is empty${r.text.trim() === '' ? '' : ' (only comments)'}: a pipeline declares its stages under \`stages:\` (see docs/pipeline-yaml.md)`,
      { file: abs, line: 1, col: 1 },
    );
    return done();
  }
  if (parsed.root.t !== 'map') {
    bag.error(`a pipeline file holds a mapping (\`name:\`, \`params:\`, \`stages:\`...), not ${nodeTypeName(parsed.root)}`, parsed.root.loc.span);
    return done();
  }
  const root = parsed.root;
  checkKeys(root, TOP_KEYS, bag, 'the pipeline');

  const name = scalarString(root, 'name', bag) ?? path.basename(abs).replace(/\.(ya?ml|json)$/i, '');
  const wd = scalarString(root, 'workdir', bag) ?? '.';
  const workdir = path.resolve(path.dirname(abs), wd);
  const wdEntry = root.byKey.get('workdir');
  if (wdEntry && !(opts.fileExists ?? existsSync)(workdir)) {
    bag.error(`workdir \`${wd}\` does not exist (${workdir}); it is relative to the pipeline file's folder`, wdEntry.value.loc.span, { field: 'workdir' });
  }

  const globDirs = new Set<string>();
  const units = readUnits(abs, root, bag, read, globDirs);
  const sourceFiles = [...units.map((u) => u.file), ...[...globDirs].filter((d) => existsSync(d))];
  fileOrder.push(...sourceFiles);

  const { params, unseenBy } = resolveParams(abs, root, units, opts, limits, read, sourceFiles, bag);
  const topSink: Sink = {
    error: (message, loc, field) => bag.error(message, loc.span, { field, dedup: `${loc.src.file}|${loc.start}|${message}` }),
    param: () => {},
  };
  const { vars, varParams } = resolveVars(units, params, topSink, bag);
  const scope: Scope = { params, vars };

  const { settings, summarySpans } = readSettings(root, workdir, scope, topSink, bag);

  const decls = collectStageDecls(units, bag);
  const fields = new Map<SourceSpan, string>();
  const shared = new Interner();
  // `cmd:` stages are final as soon as they are expanded; `uses:` stages wait for their kind's manifest.
  const isLink = opts.isLink;
  const expanded = expandStages(decls, { params, vars, workdir, bag, fields, varParams, maxStages: limits.stages, unseenBy, ...(isLink ? { isLink } : {}) }, (d) =>
    d.uses === undefined ? finish(d, undefined, settings, shared) : d,
  );
  const isDraft = (x: StageDraft | StageSpec): x is StageDraft => 'withFields' in x;

  // Resolve every distinct `uses:` kind once, in parallel.
  const kinds = new Map<string, Promise<StageManifest | undefined | Error>>();
  for (const d of expanded) {
    if (isDraft(d) && d.uses && !kinds.has(d.uses)) kinds.set(d.uses, Promise.resolve().then(() => opts.resolveKind(d.uses!)).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
  }
  const manifests = new Map<string, StageManifest | undefined | Error>();
  await Promise.all([...kinds].map(async ([k, pr]) => manifests.set(k, await pr)));

  const stages: StageSpec[] = new Array(expanded.length);
  for (let i = 0; i < expanded.length; i++) {
    const d = expanded[i]!;
    if (!isDraft(d)) {
      stages[i] = d;
      continue;
    }
    let manifest: StageManifest | undefined;
    if (d.uses !== undefined) {
      const m = manifests.get(d.uses);
      if (d.uses === '') {
        // empty or failed interpolation: already reported
      } else if (m instanceof Error) {
        bag.error(`cannot load stage kind \`${d.uses}\`: ${m.message}`, d.usesLoc?.span, { stage: d.name, field: 'uses', dedup: `kind|${d.uses}|${d.usesLoc?.start}` });
      } else if (!m) {
        const hint = opts.knownKinds ? didYouMean(d.uses, opts.knownKinds()) : '';
        bag.error(`unknown stage kind \`${d.uses}\`${hint} (a kind \`x/y\` lives in stages/x/y/)`, d.usesLoc?.span, { stage: d.name, field: 'uses', dedup: `kind|${d.uses}|${d.usesLoc?.start}` });
      } else {
        manifest = m;
        applyWith(d, m, { workdir, fields, ...(isLink ? { isLink } : {}) }, bag);
      }
    }
    stages[i] = finish(d, manifest, settings, shared);
  }

  const pipeline: Pipeline = { file: abs, workdir, name, params, vars, stages, sourceFiles, settings };
  const experiments = readExperiments(units, scope, stages, limits, bag);
  if (experiments.length > 0) pipeline.experiments = experiments;
  validatePipeline(pipeline, bag, opts.fileExists ?? existsSync, fields);
  checkSummary(settings.summary, summarySpans, stages, bag);
  if (bag.hasErrors) return done();
  warningsOf.set(pipeline, sortDiagnostics(bag.items, fileOrder));
  return ok(pipeline);
}

/**
 * Params: fragments in include order, then the main file (it wins), then params files, then `-S` overrides. Also
 * which of them a command cannot read (unseenBy, see UnseenBy).
 */
function resolveParams(
  abs: string,
  root: YMap,
  units: Unit[],
  opts: LoadOptions,
  limits: Limits,
  read: FileReader,
  sourceFiles: string[],
  bag: DiagnosticBag,
): { params: PlainMap; unseenBy: UnseenBy } {
  let params: PlainMap = Object.create(null);
  for (const u of units) {
    const e = section(u, 'params', bag);
    if (e) params = deepMerge(params, toPlain(e.value) as PlainMap);
  }
  const pf = root.byKey.get('params_files');
  const paramsFiles: Array<{ file: string; from?: Loc; flag?: string }> = [];
  if (pf) {
    for (const it of stringList(pf.value)) {
      if ('bad' in it) bag.error(`\`params_files\` lists file paths, not ${nodeTypeName(it.bad)}`, it.bad.loc.span, { field: 'params_files' });
      else paramsFiles.push({ file: path.resolve(path.dirname(abs), it.value), from: it.node.loc });
    }
  }
  const applied = appliedParamsPath(abs);
  if (opts.appliedParams !== false && (opts.fileExists ?? existsSync)(applied)) {
    paramsFiles.push({ file: applied });
    const text = read(applied);
    const header = 'text' in text && text.text.startsWith(APPLIED_HEADER) ? /`pipe exp apply ([^`]+)`/.exec(text.text)?.[1] : undefined;
    if (header) {
      bag.warning(`the params of experiment variant ${header} are in force (written by \`pipe exp apply\`); delete ${displayPath(applied)} to return to the pipeline's own`, { file: applied, line: 1, col: 1 });
    }
  }
  for (const f of opts.paramsFiles ?? []) paramsFiles.push({ file: path.resolve(f), flag: `--params-file ${displayPath(f)}` });
  // The params as the pipeline's own files say them, then each layer a command cannot read laid over them.
  let inFiles: PlainMap | undefined;
  const layers: Array<{ label: string; params: PlainMap }> = [];
  for (const f of paramsFiles) {
    if (f.from === undefined) inFiles ??= params; // past the pipeline's own `params_files:`
    const m = readParamsFile(f.file, bag, read, f.from, f.flag);
    if (m) params = deepMerge(params, m);
    sourceFiles.push(f.file);
    if (f.from === undefined) layers.push({ label: f.flag ?? `the params \`pipe exp apply\` wrote to ${displayPath(f.file)}`, params });
  }
  inFiles ??= params;
  for (const raw of opts.overrides ?? []) {
    const o = parseOverride(raw, limits.yamlDepth);
    if (typeof o === 'string') {
      bag.error(o);
      continue;
    }
    const applied = applyOverride(params, o);
    if ('error' in applied) bag.error(applied.error);
    else {
      params = applied.params;
      layers.push({ label: `-S ${raw}`, params });
    }
  }
  return { params, unseenBy: unseenByOf(inFiles, layers) };
}

/** UnseenBy over the params as the pipeline's own files say them and the layers set over them since, in order. */
function unseenByOf(inFiles: PlainMap, layers: ReadonlyArray<{ label: string; params: PlainMap }>): UnseenBy {
  if (layers.length === 0) return () => undefined;
  return (name) => {
    const inFilesValue = getDotted(inFiles, name);
    const before = canonicalJson(inFilesValue ?? null);
    let prev = before;
    let label: string | undefined;
    for (const l of layers) {
      const now = canonicalJson(getDotted(l.params, name) ?? null);
      if (now !== prev) label = l.label;
      prev = now;
    }
    return prev !== before && label !== undefined ? { label, inFiles: inFilesValue } : undefined;
  };
}

/**
 * Vars, interpolated with the final params (so `vars: {run: out/${params.tag}}` follows `-S`), merged like params.
 * Also which params each top-level var was built from: a stage using the var depends on them.
 */
function resolveVars(units: Unit[], params: PlainMap, topSink: Sink, bag: DiagnosticBag): { vars: PlainMap; varParams: VarParams } {
  let vars: PlainMap = Object.create(null);
  const varParams: VarParams = new Map();
  for (const u of units) {
    const e = section(u, 'vars', bag);
    if (!e || e.value.t !== 'map') continue;
    const v: PlainMap = Object.create(null);
    for (const entry of e.value.entries) {
      const used: Record<string, unknown> = varParams.get(entry.key) ?? Object.create(null);
      const sink: Sink = {
        error: topSink.error,
        param: (name, value) => (name === '' ? Object.assign(used, value as object) : (used[name] = value)),
      };
      v[entry.key] = interpolateNode(entry.value, { params, vars: {} }, sink, `vars.${entry.key}`);
      if (Object.keys(used).length) varParams.set(entry.key, used);
    }
    vars = deepMerge(vars, v);
  }
  return { vars, varParams };
}

function scalarString(m: YMap, key: string, bag: DiagnosticBag): string | undefined {
  const e = m.byKey.get(key);
  if (!e) return undefined;
  if (e.value.t === 'scalar' && (typeof e.value.value === 'string' || typeof e.value.value === 'number') && e.value.value !== '') {
    return String(e.value.value);
  }
  bag.error(`\`${key}\` must be a string, not ${nodeTypeName(e.value)}`, e.value.loc.span, { field: key });
  return undefined;
}

/** A `settings.summary` path must be what some stage writes: an out, or a file under a directory out. */
function checkSummary(summary: string[], spans: SourceSpan[], stages: StageSpec[], bag: DiagnosticBag): void {
  summary.forEach((p, i) => {
    const producer = stages.some((s) => s.outs.some((o) => o.path === p || (o.path.endsWith('/') && p.startsWith(o.path))));
    if (!producer) {
      bag.error(
        `\`settings.summary\` names \`${p}\`, which no stage writes; list outputs of stages (their \`outs\` or \`with:\` out fields)`,
        spans[i],
        { field: 'settings.summary' },
      );
    }
  });
}

function readSettings(
  root: YMap,
  workdir: string,
  scope: Scope,
  sink: Sink,
  bag: DiagnosticBag,
): { settings: Pipeline['settings']; summarySpans: SourceSpan[] } {
  const s: Pipeline['settings'] = {
    cacheDir: path.join(workdir, '.pipe', 'cache'),
    restore: ['reflink', 'copy'],
    executor: 'local',
    slurm: {},
    summary: [],
    env: 'inherit',
  };
  const summarySpans: SourceSpan[] = [];
  const e = root.byKey.get('settings');
  if (!e || (e.value.t === 'scalar' && e.value.value === null)) return { settings: s, summarySpans };
  if (e.value.t !== 'map') {
    bag.error(`\`settings\` must be a mapping, not ${nodeTypeName(e.value)}`, e.value.loc.span, { field: 'settings' });
    return { settings: s, summarySpans };
  }
  checkKeys(e.value, SETTINGS_KEYS, bag, '`settings:`', { field: 'settings' });
  for (const f of e.value.entries) {
    const field = `settings.${f.key}`;
    switch (f.key) {
      case 'cache_dir': {
        const v = interpolateNode(f.value, scope, sink, field);
        if (typeof v === 'string' && v !== '') s.cacheDir = path.resolve(workdir, v);
        else if (v !== undefined) bag.error(`\`cache_dir\` must be a path, not ${typeName(v)}`, f.value.loc.span, { field });
        break;
      }
      case 'restore': {
        const v = interpolateNode(f.value, scope, sink, field);
        const list = typeof v === 'string' ? [v] : v;
        const okValues = ['reflink', 'hardlink', 'copy'];
        if (Array.isArray(list) && list.length > 0 && list.every((x) => typeof x === 'string' && okValues.includes(x))) {
          s.restore = list as Pipeline['settings']['restore'];
        } else if (v !== undefined) {
          bag.error('`restore` must be a non-empty list of `reflink`, `hardlink`, `copy` (tried in order)', f.value.loc.span, { field });
        }
        break;
      }
      case 'executor': {
        const v = interpolateNode(f.value, scope, sink, field);
        if (v === 'local' || v === 'slurm') s.executor = v;
        else if (v !== undefined) bag.error(`\`executor\` must be \`local\` or \`slurm\`, not \`${String(v)}\``, f.value.loc.span, { field });
        break;
      }
      case 'env': {
        const v = interpolateNode(f.value, scope, sink, field);
        if (v === 'inherit' || v === 'strict') s.env = v;
        else if (v !== undefined) bag.error(`\`env\` must be \`inherit\` or \`strict\`, not \`${String(v)}\``, f.value.loc.span, { field });
        break;
      }
      case 'slurm': {
        if (f.value.t === 'map') checkKeys(f.value, SLURM_KEYS, bag, '`settings.slurm:`', { field });
        const v = slurmOptions(f.value, scope, sink, field);
        if (v) s.slurm = v;
        break;
      }
      case 'summary': {
        if (f.value.t !== 'seq') {
          bag.error(`\`summary\` must be a list of output paths (e.g. \`[out/report.html]\`), not ${nodeTypeName(f.value)}`, f.value.loc.span, { field });
          break;
        }
        for (const item of f.value.items) {
          const v = interpolateNode(item, scope, sink, field);
          const n = typeof v === 'string' ? normalisePath(v, workdir) : undefined;
          if (n?.ok && !n.outside) {
            s.summary.push(n.path);
            summarySpans.push(item.loc.span);
          } else if (v !== undefined) {
            bag.error(`\`summary\` lists output paths inside the workspace, not ${typeof v === 'string' ? `\`${v}\`` : typeName(v)}`, item.loc.span, { field });
          }
        }
        break;
      }
    }
  }
  return { settings: s, summarySpans };
}

/** Defaults and pipeline settings applied: the final StageSpec (equal parts shared with other stages). */
function finish(d: StageDraft, manifest: StageManifest | undefined, settings: Pipeline['settings'], shared: Interner): StageSpec {
  const resources: Resources = shared.resources(manifest?.resources, d.resources);
  const executor = d.executor ?? settings.executor;
  const slurm: SlurmOptions = shared.slurm(settings.slurm, d.slurm);
  const s: StageSpec = {
    name: d.name,
    declaredAs: d.declaredAs,
    deps: shared.depList(d.deps),
    outs: d.outs,
    params: shared.record('params', d.params),
    env: shared.record('env', d.env),
    resources,
    executor,
    slurm,
    retries: shared.retries(d.retries),
    alwaysRun: d.alwaysRun,
    // GPU and cluster stages are expensive: in watch mode they wait for an explicit go unless they say otherwise.
    watch: d.watch ?? (resources.gpus > 0 || executor === 'slurm' ? 'manual' : 'auto'),
    span: d.span,
  };
  if (d.item !== undefined) s.item = d.item;
  if (d.cmd !== undefined) s.cmd = d.cmd;
  if (d.uses !== undefined) {
    s.uses = d.uses;
    s.with = d.with ?? {};
  }
  if (d.desc !== undefined) (s as StageSpec & { desc?: string }).desc = d.desc;
  return s;
}

