/**
 * Stage declarations → stage drafts: `foreach:`/`matrix:` unrolled, `${...}` resolved, every field type-checked and
 * normalised. Pure (no disk): the shape of each declaration is checked once, values once per expanded stage.
 * `with:` is checked later against the kind's manifest (see with.ts), once the kinds are resolved.
 */
import type { DepSpec, OutSpec, RetryPolicy, SlurmOptions, SourceSpan } from '../model.js';
import type { Resources } from '../stage-api.js';
import { DiagnosticBag, didYouMean } from './diagnostics.js';
import { interpolateNode, interpolateScalar, stringify, type Scope, type Sink } from './interpolate.js';
import { nodeTypeName, typeName, type Loc, type YEntry, type YMap, type YNode } from './load.js';
import { getDotted, isPlainMap } from './params.js';
import { normalisePath } from './paths.js';
import {
  FOREACH_KEYS,
  MATRIX_KEYS,
  OUT_KEYS,
  RESOURCE_KEYS,
  RETRY_KEYS,
  SLURM_KEYS,
  STAGE_KEYS,
} from './schema.js';
import { parseMem, parseTime } from './units.js';

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

/** Check a mapping's keys against the known ones; unknown keys get "did you mean". */
export function checkKeys(
  m: YMap,
  known: Record<string, string>,
  bag: DiagnosticBag,
  where: string,
  extra: { stage?: string; field?: string; hint?: Record<string, string> } = {},
): void {
  for (const e of m.entries) {
    if (Object.prototype.hasOwnProperty.call(known, e.key)) continue;
    const hint = extra.hint?.[e.key] ?? didYouMean(e.key, Object.keys(known));
    bag.error(`unknown key \`${e.key}\` in ${where}${hint}`, e.keyLoc.span, { stage: extra.stage, field: extra.field ?? e.key });
  }
}

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
    const items = isForeach ? foreachItems(m.byKey.get('foreach')!, d.name, base, bag) : matrixItems(m.byKey.get('matrix')!, d.name, base, bag);
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

interface Item {
  suffix: string;
  value: unknown;
  key?: string;
}

/** A label for a list item in a stage name: the scalar itself, an object's `name`, else its index. */
function label(v: unknown, index: number): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isPlainMap(v) && (typeof v.name === 'string' || typeof v.name === 'number')) return String(v.name);
  return String(index);
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

function foreachItems(e: YEntry, decl: string, scope: Scope, bag: DiagnosticBag): Item[] {
  const v = interpolateNode(e.value, scope, sinkFor(bag, decl, decl), 'foreach');
  if (v === undefined) return [];
  if (Array.isArray(v)) {
    if (v.length === 0) bag.warning('`foreach:` over an empty list: no stages', e.value.loc.span, { stage: decl, field: 'foreach' });
    return v.map((x, i) => ({ suffix: label(x, i), value: x }));
  }
  if (isPlainMap(v)) return Object.entries(v).map(([k, x]) => ({ suffix: k, value: x, key: k }));
  bag.error(`\`foreach:\` needs a list or a mapping, got ${typeName(v)}`, e.value.loc.span, { stage: decl, field: 'foreach' });
  return [];
}

function matrixItems(e: YEntry, decl: string, scope: Scope, bag: DiagnosticBag): Item[] {
  if (e.value.t !== 'map' || e.value.entries.length === 0) {
    bag.error('`matrix:` needs a mapping of named axes, each a list (e.g. `model: [a, b]`)', e.value.loc.span, { stage: decl, field: 'matrix' });
    return [];
  }
  const axes: Array<{ name: string; values: unknown[] }> = [];
  for (const a of e.value.entries) {
    const v = interpolateNode(a.value, scope, sinkFor(bag, decl, decl), `matrix.${a.key}`);
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      bag.error(`matrix axis \`${a.key}\` must be a list, got ${typeName(v)}`, a.value.loc.span, { stage: decl, field: `matrix.${a.key}` });
      return [];
    }
    if (v.length === 0) bag.warning(`matrix axis \`${a.key}\` is empty: no stages`, a.value.loc.span, { stage: decl, field: `matrix.${a.key}` });
    axes.push({ name: a.key, values: v });
  }
  let combos: Array<{ parts: string[]; value: Record<string, unknown> }> = [{ parts: [], value: {} }];
  for (const axis of axes) {
    const next: typeof combos = [];
    for (const c of combos) {
      axis.values.forEach((x, i) => {
        next.push({ parts: [...c.parts, `${axis.name}=${label(x, i)}`], value: { ...c.value, [axis.name]: x } });
      });
    }
    combos = next;
  }
  return combos.map((c) => ({ suffix: c.parts.join(','), value: c.value }));
}

/** Item-independent checks of a stage (template): known keys, nested mappings' keys, cmd XOR uses. */
function checkStageShape(m: YMap, stage: string, bag: DiagnosticBag): boolean {
  const before = bag.items.length;
  const hint: Record<string, string> = {
    foreach: ' (`foreach:` goes next to `do:`, at the stage level)',
    matrix: ' (`matrix:` goes next to `do:`, at the stage level)',
    command: ' (did you mean `cmd`?)',
    run: ' (did you mean `cmd`?)',
    inputs: ' (did you mean `deps`?)',
    outputs: ' (did you mean `outs`?)',
  };
  checkKeys(m, STAGE_KEYS, bag, `stage \`${stage}\``, { stage, hint });
  const sub: Array<[string, Record<string, string>]> = [
    ['resources', RESOURCE_KEYS],
    ['slurm', SLURM_KEYS],
  ];
  for (const [k, keys] of sub) {
    const e = m.byKey.get(k);
    if (e?.value.t === 'map') checkKeys(e.value, keys, bag, `\`${k}:\``, { stage, field: k });
  }
  const r = m.byKey.get('retries');
  if (r?.value.t === 'map') checkKeys(r.value, RETRY_KEYS, bag, '`retries:`', { stage, field: 'retries' });
  for (const k of ['outs', 'metrics']) {
    const e = m.byKey.get(k);
    const items = e?.value.t === 'seq' ? e.value.items : e ? [e.value] : [];
    for (const it of items) if (it.t === 'map') checkKeys(it, OUT_KEYS, bag, `an entry of \`${k}:\``, { stage, field: k });
  }
  const cmd = m.byKey.get('cmd');
  const uses = m.byKey.get('uses');
  if (cmd && uses) {
    bag.error('a stage has either `cmd:` or `uses:`, not both', uses.keyLoc.span, { stage, field: 'uses' });
  } else if (!cmd && !uses) {
    const at = m.entries[0]?.keyLoc ?? m.loc;
    bag.error('a stage needs `cmd:` (a shell command) or `uses:` (a built-in stage kind)', at.span, { stage });
  }
  if (m.byKey.has('with') && !uses) {
    bag.error('`with:` configures a `uses:` stage; a `cmd:` stage has no `with:`', m.byKey.get('with')!.keyLoc.span, { stage, field: 'with' });
  }
  return bag.items.length === before || !!(cmd || uses);
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

  // cmd: a string, or a list of commands run in sequence (joined with `&&`).
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
    s.cmd = cmds.length > 1 ? cmds.map((c) => `{ ${c}\n}`).join(' && ') : (cmds[0] ?? '');
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
  if (res) resourcesField(res, s, scope, sink);

  const ex = val('executor');
  if (ex) {
    const v = interpolateNode(ex.value, scope, sink, 'executor');
    if (v === 'local' || v === 'slurm') s.executor = v;
    else if (v !== undefined) err(`\`executor\` must be \`local\` or \`slurm\`, not \`${String(v)}\`${didYouMean(String(v), ['local', 'slurm'])}`, ex.value.loc, 'executor');
  }

  const sl = val('slurm');
  if (sl) {
    const v = slurmOptions(sl.value, scope, sink, 'slurm');
    if (v) s.slurm = v;
  }

  const rt = val('retries');
  if (rt) {
    const v = interpolateNode(rt.value, scope, sink, 'retries');
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
    const v = interpolateNode(ar.value, scope, sink, 'always_run');
    if (typeof v === 'boolean') s.alwaysRun = v;
    else if (v !== undefined) err(`\`always_run\` must be true or false, not ${typeName(v)}`, ar.value.loc, 'always_run');
  }

  const wt = val('watch');
  if (wt) {
    const v = interpolateNode(wt.value, scope, sink, 'watch');
    if (v === 'auto' || v === 'manual') s.watch = v;
    else if (v !== undefined) err(`\`watch\` must be \`auto\` or \`manual\`, not \`${String(v)}\``, wt.value.loc, 'watch');
  }

  const desc = val('desc');
  if (desc) {
    const v = interpolateNode(desc.value, scope, sink, 'desc');
    if (typeof v === 'string') s.desc = v;
    else if (v !== undefined) err(`\`desc\` must be a string, not ${typeName(v)}`, desc.value.loc, 'desc');
  }

  if (!s.cacheOuts) for (const o of s.outs) o.cache = false;
  return s;
}

/** deps / outs / metrics: a path, `{path, cache, metric}` (outs, metrics), or a list of those. */
function pathField(e: YEntry | undefined, field: 'deps' | 'outs' | 'metrics', s: StageDraft, scope: Scope, sink: Sink, ctx: ExpandContext): void {
  if (!e) return;
  if (e.value.t === 'scalar' && e.value.value === null) return;
  const items = e.value.t === 'seq' ? e.value.items : [e.value];
  items.forEach((it, i) => {
    const f = e.value.t === 'seq' ? `${field}[${i}]` : field;
    let cache = true;
    let metric = field === 'metrics';
    let pathNode: YNode = it;
    if (it.t === 'map') {
      if (field === 'deps') {
        sink.error('a dep is a path string (a trailing `/` for a directory), not a mapping', it.loc, f);
        return;
      }
      const p = it.byKey.get('path');
      if (!p) {
        sink.error(`an entry of \`${field}\` written as a mapping needs \`path:\``, it.loc, f);
        return;
      }
      pathNode = p.value;
      const c = it.byKey.get('cache');
      if (c) {
        const v = interpolateNode(c.value, scope, sink, `${f}.cache`);
        if (typeof v === 'boolean') cache = v;
        else if (v !== undefined) sink.error(`\`cache\` must be true or false, not ${typeName(v)}`, c.value.loc, `${f}.cache`);
      }
      const mt = it.byKey.get('metric');
      if (mt) {
        const v = interpolateNode(mt.value, scope, sink, `${f}.metric`);
        if (typeof v === 'boolean') metric = v;
        else if (v !== undefined) sink.error(`\`metric\` must be true or false, not ${typeName(v)}`, mt.value.loc, `${f}.metric`);
      }
    }
    const v = interpolateNode(pathNode, scope, sink, f);
    if (v === undefined) return;
    // `${vars.files}` may give a list of paths.
    const values = Array.isArray(v) ? v : [v];
    for (let raw of values) {
      if (typeof raw === 'number') raw = String(raw); // a file named `2024`
      if (typeof raw !== 'string') {
        sink.error(`\`${field}\` entries are path strings, not ${typeName(raw)}`, pathNode.loc, f);
        continue;
      }
      addPath(s, field === 'deps' ? 'dep' : 'out', raw, pathNode.loc, f, sink, ctx.workdir, ctx.fields, { cache: cache && s.cacheOuts, metric });
    }
  });
}

/**
 * The YAML field each dep/out was written in (`deps[1]`, `with.model`), for diagnostics found later. Keyed by the
 * span object, which every expansion of one template node shares: one entry per written path, not per stage.
 */
export type FieldsBySpan = Map<SourceSpan, string>;

/** Normalise one path and add it as a dep or an out; outs must stay inside the workspace. */
export function addPath(
  s: { deps: DepSpec[]; outs: OutSpec[] },
  role: 'dep' | 'out',
  raw: string,
  loc: Loc,
  field: string,
  sink: Pick<Sink, 'error'>,
  workdir: string,
  fields: FieldsBySpan,
  out: { cache: boolean; metric: boolean } = { cache: true, metric: false },
): string | undefined {
  const n = normalisePath(raw, workdir);
  if (!n.ok) {
    sink.error(`\`${raw}\` is not a usable path: it is ${n.reason}`, loc, field);
    return undefined;
  }
  if (role === 'out') {
    if (n.outside) {
      sink.error(
        `out \`${raw}\` is outside the workspace (${workdir}); outs must be workspace-relative paths (no absolute paths, no \`..\` escaping it)`,
        loc,
        field,
      );
      return undefined;
    }
    const span = loc.span;
    if (!fields.has(span)) fields.set(span, field);
    s.outs.push({ path: n.path, cache: out.cache, metric: out.metric, span });
  } else {
    const span = loc.span;
    if (!fields.has(span)) fields.set(span, field);
    s.deps.push({ path: n.path, span });
  }
  return n.path;
}

function resourcesField(e: YEntry, s: StageDraft, scope: Scope, sink: Sink): void {
  if (e.value.t !== 'map') {
    sink.error(`\`resources\` must be a mapping like \`{cpus: 4, mem: 8G, gpus: 1, time: 01:00:00}\`, not ${nodeTypeName(e.value)}`, e.value.loc, 'resources');
    return;
  }
  for (const r of e.value.entries) {
    const field = `resources.${r.key}`;
    const v = interpolateNode(r.value, scope, sink, field);
    if (v === undefined || v === null) continue;
    const loc = r.value.loc;
    switch (r.key) {
      case 'cpus':
        if (typeof v === 'number' && v > 0) s.resources.cpus = v;
        else sink.error(`\`cpus\` must be a number > 0, not \`${String(v)}\``, loc, field);
        break;
      case 'gpus':
        if (typeof v === 'number' && Number.isInteger(v) && v >= 0) s.resources.gpus = v;
        else sink.error(`\`gpus\` must be a whole number ≥ 0, not \`${String(v)}\``, loc, field);
        break;
      case 'mem': {
        const b = parseMem(v);
        if (b === undefined) sink.error(`\`mem: ${String(v)}\` is not a memory size: write bytes or a number with K, M, G or T (e.g. \`512M\`, \`8G\`)`, loc, field);
        else s.resources.memBytes = b;
        break;
      }
      case 'time': {
        const t = parseTime(v);
        if (t === undefined) sink.error(`\`time: ${String(v)}\` is not a duration: write seconds, \`90m\`, \`1h30m\` or \`01:30:00\``, loc, field);
        else s.resources.timeSec = t;
        break;
      }
    }
  }
}

/** `slurm:` options (stage- or settings-level). Undefined when invalid (reported). */
export function slurmOptions(n: YNode, scope: Scope, sink: Sink, field: string): SlurmOptions | undefined {
  if (n.t !== 'map') {
    sink.error(`\`slurm\` must be a mapping (partition, account, qos, constraint, gpu_flag, extra), not ${nodeTypeName(n)}`, n.loc, field);
    return undefined;
  }
  const o: SlurmOptions = {};
  for (const e of n.entries) {
    const f = `${field}.${e.key}`;
    const v = interpolateNode(e.value, scope, sink, f);
    if (v === undefined || v === null) continue;
    switch (e.key) {
      case 'partition':
      case 'account':
      case 'qos':
      case 'constraint':
        if (typeof v === 'string' || typeof v === 'number') o[e.key] = String(v);
        else sink.error(`\`${e.key}\` must be a string, not ${typeName(v)}`, e.value.loc, f);
        break;
      case 'gpu_flag':
        if (v === 'gres' || v === 'gpus') o.gpuFlag = v;
        else sink.error(`\`gpu_flag\` must be \`gres\` or \`gpus\`, not \`${String(v)}\``, e.value.loc, f);
        break;
      case 'extra':
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) o.extra = v as string[];
        else if (typeof v === 'string') o.extra = [v];
        else sink.error('`extra` must be a list of sbatch flags (strings)', e.value.loc, f);
        break;
    }
  }
  return o;
}
