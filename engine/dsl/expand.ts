/**
 * Stage declarations → stage drafts: `foreach:`/`matrix:` unrolled, `${...}` resolved, every field type-checked and
 * normalised. Pure (no disk): the shape of each declaration is checked once, values once per expanded stage.
 * `with:` is checked later against the kind's manifest (see with.ts), once the kinds are resolved.
 */
import type { DepSpec, OutSpec, RetryPolicy, SlurmOptions, SourceSpan } from '../model.js';
import type { Resources } from '../stage-api.js';
import { DiagnosticBag, didYouMean } from './diagnostics.js';
import { interpolateNode, interpolateScalar, stringify, type Scope, type Sink } from './interpolate.js';
import { foreachItems, matrixItems, type Items } from './items.js';
import { DEFAULT_LIMITS, raiseHint } from './limits.js';
import { nodeTypeName, typeName, type Loc, type YEntry, type YMap, type YNode } from './load.js';
import { getDotted, isPlainMap, nullProtoCopy } from './params.js';
import { FOREACH_KEYS, MATRIX_KEYS, STAGE_KEYS } from './schema.js';
import { checkKeys, checkStageShape } from './shape.js';
import { pathField, resourcesField, slurmOptions, type FieldsBySpan } from './stage-fields.js';

/** One entry under `stages:` (of the main file or an include). */
export interface StageDecl {
  name: string;
  keyLoc: Loc;
  node: YNode;
}

/** A stage before its `uses:` kind is known. */
export interface StageDraft {
  name: string;
  declaredAs: string;
  item?: unknown;
  cmd?: string;
  uses?: string;
  usesLoc?: Loc;
  /** Interpolated `with:` values and where each field was written. */
  with?: Record<string, unknown>;
  withLoc?: Loc;
  withFields: Map<string, { keyLoc: Loc; valueLoc: Loc }>;
  deps: DepSpec[];
  outs: OutSpec[];
  params: Record<string, unknown>;
  env: Record<string, string>;
  resources: Partial<Resources>;
  executor?: 'local' | 'slurm';
  slurm: SlurmOptions;
  retries: RetryPolicy;
  alwaysRun: boolean;
  cacheOuts: boolean;
  watch?: 'auto' | 'manual';
  desc?: string;
  span: SourceSpan;
}

export interface ExpandContext {
  params: Record<string, unknown>;
  vars: Record<string, unknown>;
  /** Absolute workspace root (POSIX). */
  workdir: string;
  bag: DiagnosticBag;
  fields: FieldsBySpan;
  /** Params each top-level var was built from. */
  varParams?: VarParams;
  /** The most stages all declarations may expand to (limits.ts). */
  maxStages?: number;
  /** Params set over the pipeline's own files where a command cannot read them (UnseenBy). */
  unseenBy?: UnseenBy;
  /** Whether a path is a symbolic link now (stage-fields.ts PathPlace). */
  isLink?: (absPath: string) => boolean;
}

export type VarParams = Map<string, Record<string, unknown>>;

/**
 * A param a `cmd:` stage lists under `params:` without interpolating it reaches the command only through a file it
 * reads itself (the pipeline's `params_files:`, docs/pipeline-yaml.md). `-S`, `--params-file` and the params
 * `pipe exp apply` wrote change it for pipe alone: the command still reads the file's value, and its result would
 * be recorded, and later served, under the overridden one. For such a param: what set it over the files, and the
 * files' value; undefined when the files' value stands.
 */
export type UnseenBy = (name: string) => { label: string; inFiles: unknown } | undefined;

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** How many more stages the pipeline may have (PIPE_MAX_STAGES), checked before each declaration expands. */
interface StageBudget {
  max: number;
  used: number;
}

/**
 * Expand every declaration. Names are unique across the result (duplicates are diagnostics). `settle` may turn a
 * draft into its final form at once (a `cmd:` stage needs no kind): then the draft dies young instead of living,
 * 100,000 of them, until every stage is expanded.
 */
export function expandStages<T extends { name: string; span: SourceSpan } = StageDraft>(
  decls: StageDecl[],
  ctx: ExpandContext,
  settle: (d: StageDraft) => StageDraft | T = (d) => d,
): Array<StageDraft | T> {
  const out: Array<StageDraft | T> = [];
  const names = new Set<string>();
  const budget: StageBudget = { max: ctx.maxStages ?? DEFAULT_LIMITS.stages, used: 0 };
  for (const d of decls) {
    for (const s of expandDecl(d, ctx, budget)) {
      if (names.has(s.name)) {
        ctx.bag.error(
          `two stages are named \`${s.name}\` after expansion (foreach/matrix items must give distinct names; ` +
            'give object items a `name:` field)',
          s.span,
          { stage: s.name, dedup: `dupname:${s.name}` },
        );
        continue;
      }
      names.add(s.name);
      out.push(settle(s));
    }
  }
  return out;
}

/**
 * Can `count` more stages be added? If not, one error at `where` naming the limit (and the product of the matrix
 * axes), reported before a single one of them is built.
 */
function withinBudget(budget: StageBudget, count: number, d: StageDecl, where: Loc, subject: string, bag: DiagnosticBag): boolean {
  if (budget.used + count <= budget.max) {
    budget.used += count;
    return true;
  }
  const n = (x: number) => x.toLocaleString('en-US');
  const before = budget.used ? ` (after the ${n(budget.used)} stages declared before it)` : '';
  bag.error(`${subject}${before}, over the limit of ${n(budget.max)} stages in one pipeline; ${raiseHint('stages')}`, where.span, {
    stage: d.name,
    dedup: 'stage-limit',
  });
  budget.used = budget.max; // every later declaration is over too: one message says it
  return false;
}

function expandDecl(d: StageDecl, ctx: ExpandContext, budget: StageBudget): StageDraft[] {
  const { bag } = ctx;
  if (!NAME.test(d.name)) {
    bag.error(
      `stage name \`${d.name}\` may use only letters, digits, \`_\`, \`.\` and \`-\` (\`@\` is added by foreach/matrix)`,
      d.keyLoc.span,
      { stage: d.name },
    );
    return [];
  }
  if (d.node.t !== 'map') {
    bag.error(`a stage must be a mapping (with \`cmd:\` or \`uses:\`), not ${nodeTypeName(d.node)}`, d.node.loc.span, { stage: d.name });
    return [];
  }
  const m = d.node;
  const base: Scope = { params: ctx.params, vars: ctx.vars };
  if (m.byKey.has('foreach') || m.byKey.has('matrix')) {
    const isForeach = m.byKey.has('foreach');
    if (isForeach && m.byKey.has('matrix')) {
      bag.error('a stage has either `foreach:` or `matrix:`, not both', m.byKey.get('matrix')!.keyLoc.span, { stage: d.name, field: 'matrix' });
      return [];
    }
    const known = isForeach ? FOREACH_KEYS : MATRIX_KEYS;
    const hint: Record<string, string> = {};
    for (const k of Object.keys(STAGE_KEYS)) hint[k] = ` (with \`${isForeach ? 'foreach' : 'matrix'}:\`, stage fields go under \`do:\`)`;
    checkKeys(m, known, bag, `stage \`${d.name}\``, { stage: d.name, hint });
    const doEntry = m.byKey.get('do');
    if (!doEntry) {
      bag.error(`\`${isForeach ? 'foreach' : 'matrix'}:\` needs a \`do:\` with the stage template`, d.keyLoc.span, { stage: d.name, field: 'do' });
      return [];
    }
    if (doEntry.value.t !== 'map') {
      bag.error(`\`do:\` must be a mapping (the stage template), not ${nodeTypeName(doEntry.value)}`, doEntry.value.loc.span, { stage: d.name, field: 'do' });
      return [];
    }
    const template = doEntry.value;
    if (!checkStageShape(template, d.name, bag)) return [];
    const itemSink = new StageSink(bag, d.name, d.name);
    const entry = m.byKey.get(isForeach ? 'foreach' : 'matrix')!;
    const items: Items = isForeach ? foreachItems(entry, d.name, base, bag, itemSink) : matrixItems(entry, d.name, base, bag, itemSink);
    const count = items.count.toLocaleString('en-US');
    const subject = isForeach
      ? `\`foreach:\` of stage \`${d.name}\` has ${count} items`
      : `\`matrix:\` of stage \`${d.name}\` expands to ${items.shape} = ${count} stages`;
    if (!withinBudget(budget, items.count, d, entry.keyLoc, subject, bag)) return [];
    const drafts: StageDraft[] = new Array(items.count);
    for (let i = 0; i < items.count; i++) {
      const it = items.at(i);
      const scope: Scope = { params: ctx.params, vars: ctx.vars, item: { value: it.value } };
      if (it.key !== undefined) scope.key = it.key;
      // Joined, not concatenated: one flat string per name (it lives as long as the pipeline).
      const s = buildStage(template, [d.name, it.suffix].join('@'), d, scope, ctx);
      s.item = it.value;
      drafts[i] = s;
    }
    return drafts;
  }
  if (m.byKey.has('do')) {
    bag.error('`do:` belongs to a `foreach:` or `matrix:` stage', m.byKey.get('do')!.keyLoc.span, { stage: d.name, field: 'do' });
    return [];
  }
  if (!checkStageShape(m, d.name, bag)) return [];
  if (!withinBudget(budget, 1, d, d.keyLoc, `stage \`${d.name}\` is one stage more`, bag)) return [];
  return [buildStage(m, d.name, d, base, ctx)];
}

/**
 * Where a stage's interpolation reports to: errors (deduplicated per template position, so a bad template is one
 * error, not one per item) and the params it uses. A small object per stage, no closures.
 */
class StageSink implements Sink {
  /** Params the stage uses (dotted name → value); created on the first one. */
  params: Record<string, unknown> | undefined;
  /** Of those, the ones its fields interpolate (not only list under `params:`): they reach the command. */
  interpolated: Set<string> | undefined;
  constructor(
    private readonly bag: DiagnosticBag,
    private readonly stage: string,
    private readonly decl: string,
    /** Collect params (a stage), or only report errors (the items of a foreach/matrix). */
    private readonly collect = false,
    private readonly varParams?: VarParams,
  ) {}

  error(message: string, loc: Loc, field: string): void {
    this.bag.error(message, loc.span, { stage: this.stage, field, dedup: `${this.decl}|${loc.src.file}|${loc.start}|${message}` });
  }

  param(name: string, value: unknown): void {
    if (!this.collect) return;
    this.listed(name, value);
    const used = (this.interpolated ??= new Set());
    if (name === '') for (const k of Object.keys(value as object)) used.add(k);
    else used.add(name);
  }

  /** A param the stage lists under `params:`: keyed, but not handed to the command by pipe. */
  listed(name: string, value: unknown): void {
    if (!this.collect) return;
    const p = (this.params ??= Object.create(null) as Record<string, unknown>);
    if (name === '') Object.assign(p, value as object);
    else p[name] = value;
  }

  /** Whether `name` reaches the command through a field: it, or a mapping holding it, is interpolated. */
  reachesCommand(name: string): boolean {
    if (!this.interpolated) return false;
    for (let i = name.length; i > 0; i = name.lastIndexOf('.', i - 1)) if (this.interpolated.has(name.slice(0, i))) return true;
    return false;
  }

  /** A var built from params (`root: out/${params.tag}`) makes the stage depend on those params too. */
  varUsed(name: string): void {
    if (!this.collect || !this.varParams) return;
    if (name === '') for (const used of this.varParams.values()) this.param('', used);
    else {
      const used = this.varParams.get(name);
      if (used) this.param('', used);
    }
  }
}

const NO_FIELDS: StageDraft['withFields'] = new Map();
/** A stage that uses no params or sets no env shares these (frozen: a write would be a bug, and loud). */
const NO_PARAMS: Record<string, unknown> = Object.freeze(Object.create(null) as Record<string, unknown>);
const NO_ENV: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);
/** Where each `with:` field is written; the same for every expansion of a template, so computed once. */
function withFieldsOf(m: YMap): StageDraft['withFields'] {
  return (m.fieldLocs ??= new Map(m.entries.map((e) => [e.key, { keyLoc: e.keyLoc, valueLoc: e.value.loc }])));
}

/** Build one stage from a (template) mapping in a scope. */
function buildStage(m: YMap, name: string, d: StageDecl, scope: Scope, ctx: ExpandContext): StageDraft {
  const sink = new StageSink(ctx.bag, name, d.name, true, ctx.varParams);
  // Where and how a stage runs (resources, executor, slurm, retries, always_run, watch, desc) never changes what it
  // writes, so the params those fields read are not keyed (engine/fingerprint.ts): `-S retrain.executor=slurm`
  // sends a stage to the cluster without invalidating what a local run already computed.
  const schedulingSink = new StageSink(ctx.bag, name, d.name);
  const s: StageDraft = {
    name,
    declaredAs: d.name,
    withFields: NO_FIELDS,
    deps: [],
    outs: [],
    params: NO_PARAMS,
    env: NO_ENV,
    resources: {},
    slurm: {},
    retries: { count: 0 },
    alwaysRun: false,
    cacheOuts: true,
    span: d.keyLoc.span,
  };
  const by = m.byKey;

  // cmd: a string, or a list of commands run in sequence: one brace group per line, so the engine's errexit
  // (`sh -e`) stops at a failing line inside any of them (`&&` would switch errexit off in all but the last).
  const cmd = by.get('cmd');
  if (cmd) {
    const parts = cmd.value.t === 'seq' ? cmd.value.items : [cmd.value];
    const cmds: string[] = [];
    for (const [i, p] of parts.entries()) {
      const field = cmd.value.t === 'seq' ? `cmd[${i}]` : 'cmd';
      if (p.t !== 'scalar' || typeof p.value !== 'string' || p.value.trim() === '') {
        sink.error(`\`cmd\` must be a non-empty string (or a list of them), not ${nodeTypeName(p)}`, p.loc, field);
        continue;
      }
      const v = interpolateScalar(p, scope, sink, field, true);
      if (typeof v === 'string') cmds.push(v);
    }
    s.cmd = cmds.length > 1 ? cmds.map((c) => `{ ${c}\n}`).join('\n') : (cmds[0] ?? '');
  }

  // With both `cmd:` and `uses:` (reported by checkStageShape) the stage is treated as a cmd stage.
  const uses = cmd ? undefined : by.get('uses');
  if (uses) {
    const v = interpolateNode(uses.value, scope, sink, 'uses');
    s.usesLoc = uses.value.loc;
    if (typeof v === 'string' && v.trim() !== '') s.uses = v.trim();
    else if (v !== undefined) sink.error(`\`uses\` must be a stage kind name like \`evaluate/fpr\`, not ${typeName(v)}`, uses.value.loc, 'uses');
    else s.uses = '';
  }

  const w = by.get('with');
  if (w) {
    s.withLoc = w.keyLoc;
    if (w.value.t === 'map') {
      s.with = Object.create(null) as Record<string, unknown>;
      for (const e of w.value.entries) s.with[e.key] = interpolateNode(e.value, scope, sink, `with.${e.key}`);
      s.withFields = withFieldsOf(w.value);
    } else if (w.value.t === 'scalar' && w.value.value === null) {
      s.with = Object.create(null) as Record<string, unknown>;
    } else {
      // `with: ${vars.fpr_defaults}`: a whole mapping from a var or an item.
      const v = interpolateNode(w.value, scope, sink, 'with');
      if (isPlainMap(v)) s.with = nullProtoCopy(v);
      else if (v !== undefined) sink.error(`\`with\` must be a mapping of the kind's fields, not ${typeName(v)}`, w.value.loc, 'with');
    }
  } else if (uses) s.with = Object.create(null) as Record<string, unknown>;

  const cacheEntry = by.get('cache');
  if (cacheEntry) {
    const v = interpolateNode(cacheEntry.value, scope, sink, 'cache');
    if (typeof v === 'boolean') s.cacheOuts = v;
    else if (v !== undefined) sink.error(`\`cache\` must be true or false, not ${typeName(v)}`, cacheEntry.value.loc, 'cache');
  }

  pathField(by.get('deps'), 'deps', s, scope, sink, ctx);
  pathField(by.get('outs'), 'outs', s, scope, sink, ctx);
  pathField(by.get('metrics'), 'metrics', s, scope, sink, ctx);

  const plist = by.get('params');
  let listed: Array<{ name: string; loc: Loc }> | undefined;
  if (plist) {
    const items = plist.value.t === 'seq' ? plist.value.items : [plist.value];
    for (const it of items) {
      const v = interpolateNode(it, scope, sink, 'params');
      if (typeof v !== 'string' || v === '') {
        if (v !== undefined) sink.error(`\`params\` lists dotted param names (e.g. \`model.lr\`), not ${typeName(v)}`, it.loc, 'params');
        continue;
      }
      const name = v.replace(/^params\./, '');
      const value = getDotted(ctx.params, name);
      if (value === undefined) {
        const parent = name.includes('.') ? getDotted(ctx.params, name.slice(0, name.lastIndexOf('.'))) : ctx.params;
        const keys = isPlainMap(parent) ? Object.keys(parent) : [];
        sink.error(`\`params\` names \`${name}\`, which is not a param${didYouMean(name.split('.').pop()!, keys)}`, it.loc, 'params');
        continue;
      }
      sink.listed(name, value);
      (listed ??= []).push({ name, loc: it.loc });
    }
  }

  const env = by.get('env');
  if (env) {
    if (env.value.t !== 'map') sink.error(`\`env\` must be a mapping of variable names to values, not ${nodeTypeName(env.value)}`, env.value.loc, 'env');
    else {
      for (const e of env.value.entries) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.key)) {
          sink.error(`\`${e.key}\` is not a valid environment variable name`, e.keyLoc, `env.${e.key}`);
          continue;
        }
        const v = interpolateNode(e.value, scope, sink, `env.${e.key}`);
        if (v === undefined) continue;
        // Lists and mappings (`${params.model}`) arrive as JSON text.
        if (s.env === NO_ENV) s.env = Object.create(null) as Record<string, string>;
        s.env[e.key] = stringify(v);
      }
    }
  }

  const res = by.get('resources');
  if (res) resourcesField(res, s, scope, schedulingSink);

  const ex = by.get('executor');
  if (ex) {
    const v = interpolateNode(ex.value, scope, schedulingSink, 'executor');
    if (v === 'local' || v === 'slurm') s.executor = v;
    else if (v !== undefined) sink.error(`\`executor\` must be \`local\` or \`slurm\`, not \`${String(v)}\`${didYouMean(String(v), ['local', 'slurm'])}`, ex.value.loc, 'executor');
  }

  const sl = by.get('slurm');
  if (sl) {
    const v = slurmOptions(sl.value, scope, schedulingSink, 'slurm');
    if (v) s.slurm = v;
  }

  const rt = by.get('retries');
  if (rt) {
    const v = interpolateNode(rt.value, scope, schedulingSink, 'retries');
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) s.retries = { count: v };
    else if (isPlainMap(v)) {
      const count = v.count ?? 0;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) sink.error('`retries.count` must be a whole number ≥ 0', rt.value.loc, 'retries.count');
      else s.retries = { count };
      for (const [k, f] of [['mem_factor', 'memFactor'], ['time_factor', 'timeFactor']] as const) {
        if (v[k] === undefined) continue;
        if (typeof v[k] !== 'number' || (v[k] as number) < 1) sink.error(`\`retries.${k}\` must be a number ≥ 1`, rt.value.loc, `retries.${k}`);
        else s.retries[f] = v[k] as number;
      }
    } else if (v !== undefined) sink.error(`\`retries\` must be a whole number ≥ 0 or \`{count, mem_factor, time_factor}\`, not ${typeName(v)}`, rt.value.loc, 'retries');
  }

  const ar = by.get('always_run');
  if (ar) {
    const v = interpolateNode(ar.value, scope, schedulingSink, 'always_run');
    if (typeof v === 'boolean') s.alwaysRun = v;
    else if (v !== undefined) sink.error(`\`always_run\` must be true or false, not ${typeName(v)}`, ar.value.loc, 'always_run');
  }

  const wt = by.get('watch');
  if (wt) {
    const v = interpolateNode(wt.value, scope, schedulingSink, 'watch');
    if (v === 'auto' || v === 'manual') s.watch = v;
    else if (v !== undefined) sink.error(`\`watch\` must be \`auto\` or \`manual\`, not \`${String(v)}\``, wt.value.loc, 'watch');
  }

  const desc = by.get('desc');
  if (desc) {
    const v = interpolateNode(desc.value, scope, schedulingSink, 'desc');
    if (typeof v === 'string') s.desc = v;
    else if (v !== undefined) sink.error(`\`desc\` must be a string, not ${typeName(v)}`, desc.value.loc, 'desc');
  }

  if (!s.cacheOuts) for (const o of s.outs) o.cache = false;
  if (listed && s.cmd !== undefined && ctx.unseenBy) for (const l of listed) unseenParam(l.name, l.loc, sink, ctx.unseenBy);
  s.params = sink.params ?? NO_PARAMS;
  return s;
}

/** A param a cmd stage only lists, set where its command cannot read it: refused (UnseenBy says why). */
function unseenParam(name: string, loc: Loc, sink: StageSink, unseenBy: UnseenBy): void {
  if (sink.reachesCommand(name)) return;
  const by = unseenBy(name);
  if (!by) return;
  const was = by.inFiles === undefined ? 'nothing' : JSON.stringify(by.inFiles);
  sink.error(
    `\`params\` lists \`${name}\`, which the command reads from a file itself, but ${by.label} sets it for pipe only: ` +
      `the command would still read ${was} from its file, and its result would be recorded (and later served) as if it had used the new value. ` +
      `Set it in the params file, or hand it to the command as \`\${params.${name}}\``,
    loc,
    'params',
  );
}

