/**
 * Stage declarations → stage drafts: `foreach:`/`matrix:` unrolled, `${...}` resolved, every field type-checked and
 * normalised. Pure (no disk): the shape of each declaration is checked once, values once per expanded stage.
 * `with:` is checked later against the kind's manifest (see with.ts), once the kinds are resolved.
 */
import type { DepSpec, OutSpec, RetryPolicy, SlurmOptions, SourceSpan } from '../model.js';
import type { Resources } from '../stage-api.js';
import { DiagnosticBag, didYouMean } from './diagnostics.js';
import { interpolateNode, interpolateScalar, stringify, type Scope, type Sink } from './interpolate.js';
import { foreachItems, matrixItems } from './items.js';
import { nodeTypeName, typeName, type Loc, type YEntry, type YMap, type YNode } from './load.js';
import { getDotted, isPlainMap } from './params.js';
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
}

export type VarParams = Map<string, Record<string, unknown>>;

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Expand every declaration. Names are unique across the result (duplicates are diagnostics). */
export function expandStages(decls: StageDecl[], ctx: ExpandContext): StageDraft[] {
  const out: StageDraft[] = [];
  const byName = new Map<string, StageDraft>();
  for (const d of decls) {
    for (const s of expandDecl(d, ctx)) {
      const prev = byName.get(s.name);
      if (prev) {
        ctx.bag.error(
          `two stages are named \`${s.name}\` after expansion (foreach/matrix items must give distinct names; ` +
            'give object items a `name:` field)',
          s.span,
          { stage: s.name, dedup: `dupname:${s.name}` },
        );
        continue;
      }
      byName.set(s.name, s);
      out.push(s);
    }
  }
  return out;
}

function expandDecl(d: StageDecl, ctx: ExpandContext): StageDraft[] {
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
    const itemSink = sinkFor(bag, d.name, d.name);
    const items = isForeach
      ? foreachItems(m.byKey.get('foreach')!, d.name, base, bag, itemSink)
      : matrixItems(m.byKey.get('matrix')!, d.name, base, bag, itemSink);
    const drafts: StageDraft[] = [];
    for (const it of items) {
      const scope: Scope = { params: ctx.params, vars: ctx.vars, item: { value: it.value } };
      if (it.key !== undefined) scope.key = it.key;
      const s = buildStage(template, `${d.name}@${it.suffix}`, d, scope, ctx);
      s.item = it.value;
      drafts.push(s);
    }
    return drafts;
  }
  if (m.byKey.has('do')) {
    bag.error('`do:` belongs to a `foreach:` or `matrix:` stage', m.byKey.get('do')!.keyLoc.span, { stage: d.name, field: 'do' });
    return [];
  }
  if (!checkStageShape(m, d.name, bag)) return [];
  return [buildStage(m, d.name, d, base, ctx)];
}

function sinkFor(bag: DiagnosticBag, stage: string, decl: string, params?: Record<string, unknown>, varParams?: VarParams): Sink {
  return {
    error: (message, loc, field) =>
      bag.error(message, loc.span, { stage, field, dedup: `${decl}|${loc.src.file}|${loc.start}|${message}` }),
    param: (name, value) => {
      if (!params) return;
      if (name === '') Object.assign(params, value as object);
      else params[name] = value;
    },
    // A var built from params (`root: out/${params.tag}`) makes the stage depend on those params too.
    varUsed: (name) => {
      if (!params || !varParams) return;
      if (name === '') for (const used of varParams.values()) Object.assign(params, used);
      else {
        const used = varParams.get(name);
        if (used) Object.assign(params, used);
      }
    },
  };
}


const NO_FIELDS: StageDraft['withFields'] = new Map();
/** Where each `with:` field is written; the same for every expansion of a template, so computed once. */
function withFieldsOf(m: YMap): StageDraft['withFields'] {
  return (m.fieldLocs ??= new Map(m.entries.map((e) => [e.key, { keyLoc: e.keyLoc, valueLoc: e.value.loc }])));
}

/** Build one stage from a (template) mapping in a scope. */
function buildStage(m: YMap, name: string, d: StageDecl, scope: Scope, ctx: ExpandContext): StageDraft {
  const { bag } = ctx;
  const params: Record<string, unknown> = {};
  const sink = sinkFor(bag, name, d.name, params, ctx.varParams);
  // Where and how a stage runs (resources, executor, slurm, retries, always_run, watch, desc) never changes what it
  // writes, so the params those fields read are not keyed (engine/fingerprint.ts): `-S retrain.executor=slurm`
  // sends a stage to the cluster without invalidating what a local run already computed.
  const schedulingSink = sinkFor(bag, name, d.name);
  const err = (message: string, loc: Loc, field: string) => sink.error(message, loc, field);
  const s: StageDraft = {
    name,
    declaredAs: d.name,
    withFields: NO_FIELDS,
    deps: [],
    outs: [],
    params,
    env: {},
    resources: {},
    slurm: {},
    retries: { count: 0 },
    alwaysRun: false,
    cacheOuts: true,
    span: d.keyLoc.span,
  };
  const val = (k: string): YEntry | undefined => m.byKey.get(k);

  // cmd: a string, or a list of commands run in sequence: one brace group per line, so the engine's errexit
  // (`sh -e`) stops at a failing line inside any of them (`&&` would switch errexit off in all but the last).
  const cmd = val('cmd');
  if (cmd) {
    const parts = cmd.value.t === 'seq' ? cmd.value.items : [cmd.value];
    const cmds: string[] = [];
    for (const [i, p] of parts.entries()) {
      const field = cmd.value.t === 'seq' ? `cmd[${i}]` : 'cmd';
      if (p.t !== 'scalar' || typeof p.value !== 'string' || p.value.trim() === '') {
        err(`\`cmd\` must be a non-empty string (or a list of them), not ${nodeTypeName(p)}`, p.loc, field);
        continue;
      }
      const v = interpolateScalar(p, scope, sink, field, true);
      if (typeof v === 'string') cmds.push(v);
    }
    s.cmd = cmds.length > 1 ? cmds.map((c) => `{ ${c}\n}`).join('\n') : (cmds[0] ?? '');
  }

  // With both `cmd:` and `uses:` (reported by checkStageShape) the stage is treated as a cmd stage.
  const uses = cmd ? undefined : val('uses');
  if (uses) {
    const v = interpolateNode(uses.value, scope, sink, 'uses');
    s.usesLoc = uses.value.loc;
    if (typeof v === 'string' && v.trim() !== '') s.uses = v.trim();
    else if (v !== undefined) err(`\`uses\` must be a stage kind name like \`evaluate/fpr\`, not ${typeName(v)}`, uses.value.loc, 'uses');
    else s.uses = '';
  }

  const w = val('with');
  if (w) {
    s.withLoc = w.keyLoc;
    if (w.value.t === 'map') {
      s.with = {};
      for (const e of w.value.entries) s.with[e.key] = interpolateNode(e.value, scope, sink, `with.${e.key}`);
      s.withFields = withFieldsOf(w.value);
    } else if (w.value.t === 'scalar' && w.value.value === null) {
      s.with = {};
    } else {
      // `with: ${vars.fpr_defaults}`: a whole mapping from a var or an item.
      const v = interpolateNode(w.value, scope, sink, 'with');
      if (isPlainMap(v)) s.with = { ...v };
      else if (v !== undefined) err(`\`with\` must be a mapping of the kind's fields, not ${typeName(v)}`, w.value.loc, 'with');
    }
  } else if (uses) s.with = {};

  const cacheEntry = val('cache');
  if (cacheEntry) {
    const v = interpolateNode(cacheEntry.value, scope, sink, 'cache');
    if (typeof v === 'boolean') s.cacheOuts = v;
    else if (v !== undefined) err(`\`cache\` must be true or false, not ${typeName(v)}`, cacheEntry.value.loc, 'cache');
  }

  pathField(val('deps'), 'deps', s, scope, sink, ctx);
  pathField(val('outs'), 'outs', s, scope, sink, ctx);
  pathField(val('metrics'), 'metrics', s, scope, sink, ctx);

  const plist = val('params');
  if (plist) {
    const items = plist.value.t === 'seq' ? plist.value.items : [plist.value];
    for (const it of items) {
      const v = interpolateNode(it, scope, sink, 'params');
      if (typeof v !== 'string' || v === '') {
        if (v !== undefined) err(`\`params\` lists dotted param names (e.g. \`model.lr\`), not ${typeName(v)}`, it.loc, 'params');
        continue;
      }
      const name = v.replace(/^params\./, '');
      const value = getDotted(ctx.params, name);
      if (value === undefined) {
        const parent = name.includes('.') ? getDotted(ctx.params, name.slice(0, name.lastIndexOf('.'))) : ctx.params;
        const keys = isPlainMap(parent) ? Object.keys(parent) : [];
        err(`\`params\` names \`${name}\`, which is not a param${didYouMean(name.split('.').pop()!, keys)}`, it.loc, 'params');
        continue;
      }
      params[name] = value;
    }
  }

  const env = val('env');
  if (env) {
    if (env.value.t !== 'map') err(`\`env\` must be a mapping of variable names to values, not ${nodeTypeName(env.value)}`, env.value.loc, 'env');
    else {
      for (const e of env.value.entries) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.key)) {
          err(`\`${e.key}\` is not a valid environment variable name`, e.keyLoc, `env.${e.key}`);
          continue;
        }
        const v = interpolateNode(e.value, scope, sink, `env.${e.key}`);
        if (v === undefined) continue;
        // Lists and mappings (`${params.model}`) arrive as JSON text.
        s.env[e.key] = stringify(v);
      }
    }
  }

  const res = val('resources');
  if (res) resourcesField(res, s, scope, schedulingSink);

  const ex = val('executor');
  if (ex) {
    const v = interpolateNode(ex.value, scope, schedulingSink, 'executor');
    if (v === 'local' || v === 'slurm') s.executor = v;
    else if (v !== undefined) err(`\`executor\` must be \`local\` or \`slurm\`, not \`${String(v)}\`${didYouMean(String(v), ['local', 'slurm'])}`, ex.value.loc, 'executor');
  }

  const sl = val('slurm');
  if (sl) {
    const v = slurmOptions(sl.value, scope, schedulingSink, 'slurm');
    if (v) s.slurm = v;
  }

  const rt = val('retries');
  if (rt) {
    const v = interpolateNode(rt.value, scope, schedulingSink, 'retries');
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) s.retries = { count: v };
    else if (isPlainMap(v)) {
      const count = v.count ?? 0;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) err('`retries.count` must be a whole number ≥ 0', rt.value.loc, 'retries.count');
      else s.retries = { count };
      for (const [k, f] of [['mem_factor', 'memFactor'], ['time_factor', 'timeFactor']] as const) {
        if (v[k] === undefined) continue;
        if (typeof v[k] !== 'number' || (v[k] as number) < 1) err(`\`retries.${k}\` must be a number ≥ 1`, rt.value.loc, `retries.${k}`);
        else s.retries[f] = v[k] as number;
      }
    } else if (v !== undefined) err(`\`retries\` must be a whole number ≥ 0 or \`{count, mem_factor, time_factor}\`, not ${typeName(v)}`, rt.value.loc, 'retries');
  }

  const ar = val('always_run');
  if (ar) {
    const v = interpolateNode(ar.value, scope, schedulingSink, 'always_run');
    if (typeof v === 'boolean') s.alwaysRun = v;
    else if (v !== undefined) err(`\`always_run\` must be true or false, not ${typeName(v)}`, ar.value.loc, 'always_run');
  }

  const wt = val('watch');
  if (wt) {
    const v = interpolateNode(wt.value, scope, schedulingSink, 'watch');
    if (v === 'auto' || v === 'manual') s.watch = v;
    else if (v !== undefined) err(`\`watch\` must be \`auto\` or \`manual\`, not \`${String(v)}\``, wt.value.loc, 'watch');
  }

  const desc = val('desc');
  if (desc) {
    const v = interpolateNode(desc.value, scope, schedulingSink, 'desc');
    if (typeof v === 'string') s.desc = v;
    else if (v !== undefined) err(`\`desc\` must be a string, not ${typeName(v)}`, desc.value.loc, 'desc');
  }

  if (!s.cacheOuts) for (const o of s.outs) o.cache = false;
  return s;
}

