/**
 * `experiments:` — named parameter sets (issue 13). Each experiment is exactly one of
 *
 *   set:  {retrain.lr: 0.01}                           one variant, named like the experiment
 *   grid: {retrain.lr: [0.0005, 0.002], seed: [1, 2]}  the cartesian product (first axis slowest)
 *   list: [{retrain.lr: 0.01}, {retrain.epochs: 3}]    one variant per entry
 *
 * plus `targets`, `metric` and `desc`. Keys are dotted param names, checked against the resolved params exactly as
 * `-S` is (a typo is a located error with "did you mean"); values may use `${...}`. A param no selected stage uses is
 * a warning: every variant would compute what the baseline computes. Pure, except for what the bag collects.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../cache/hash.js';
import type { ExperimentSpec, SourceSpan, StageSpec, VariantSpec } from '../model.js';
import { matcher } from '../glob.js';
import { DiagnosticBag, didYouMean, displayPath } from './diagnostics.js';
import type { Unit } from './files.js';
import { interpolateNode, type Scope, type Sink } from './interpolate.js';
import { raiseHint, type Limits } from './limits.js';
import { nodeTypeName, typeName, type YEntry, type YMap, type YNode } from './load.js';
import { isPlainMap } from './params.js';
import { EXPERIMENT_KEYS } from './schema.js';
import { checkKeys } from './shape.js';

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * The longest variant name: it names a folder, its record `<name>.json` and that record's temp file
 * (`<name>.json.tmp-<pid>-<12 hex>`, cache/atomic.ts), all within a file name's 255 bytes.
 */
export const MAX_VARIANT_NAME = 200;

/**
 * Why `name` cannot name a variant, or undefined. Variants live beside the experiments' lock file (`lock`, and
 * `lock.break` while a stale one is taken over) and each other's records (`<name>.json`): a variant named like one
 * of them would delete it when its folder is made afresh. `max` is lower for an experiment, whose grid and list
 * variants add `-<6 hex>`.
 */
export function badVariantName(name: string, max = MAX_VARIANT_NAME): string | undefined {
  if (!NAME.test(name)) return 'may use only letters, digits, `_`, `.` and `-` (it names files and variants)';
  if (name.length > max) return `is ${name.length} characters long, over the limit of ${max} (it names files and variants)`;
  if (name === 'lock' || name.startsWith('lock.')) return "is the name of the experiments' lock file; choose another";
  if (name.endsWith('.json')) return "ends in `.json`, the name of a variant's record; choose another";
  return undefined;
}

/** A variant's stable short name: the experiment's name and the first 6 hex digits of its overrides' hash. */
export function variantName(experiment: string, overrides: Record<string, unknown>): string {
  return `${experiment}-${createHash('sha256').update(canonicalJson(overrides)).digest('hex').slice(0, 6)}`;
}

/** Declared experiments of every unit (main file first), or [] when there are none. */
export function readExperiments(units: Unit[], scope: Scope, stages: StageSpec[], limits: Limits, bag: DiagnosticBag): ExperimentSpec[] {
  const out: ExperimentSpec[] = [];
  const where = new Map<string, SourceSpan>();
  for (const u of [...units.filter((x) => x.main), ...units.filter((x) => !x.main)]) {
    const e = u.root.byKey.get('experiments');
    if (!e || (e.value.t === 'scalar' && e.value.value === null)) continue;
    if (e.value.t !== 'map') {
      bag.error(`\`experiments\` must be a mapping of experiment names to parameter sets, not ${nodeTypeName(e.value)}`, e.value.loc.span, { field: 'experiments' });
      continue;
    }
    for (const x of e.value.entries) {
      const prev = where.get(x.key);
      if (prev) {
        bag.error(`experiment \`${x.key}\` is defined twice: also at ${displayPath(prev.file)}:${prev.line}:${prev.col}`, x.keyLoc.span, { field: `experiments.${x.key}` });
        continue;
      }
      where.set(x.key, x.keyLoc.span);
      const spec = readExperiment(x, scope, stages, limits, bag);
      if (spec) out.push(spec);
    }
  }
  return out;
}

function readExperiment(x: YEntry, scope: Scope, stages: StageSpec[], limits: Limits, bag: DiagnosticBag): ExperimentSpec | undefined {
  const field = `experiments.${x.key}`;
  const before = bag.items.filter((d) => d.severity === 'error').length;
  const bad = badVariantName(x.key, MAX_VARIANT_NAME - 7);
  if (bad) {
    bag.error(`experiment name \`${x.key}\` ${bad}`, x.keyLoc.span, { field });
    return undefined;
  }
  if (x.value.t !== 'map') {
    bag.error(`experiment \`${x.key}\` is a mapping with one of \`set:\`, \`grid:\` or \`list:\`, not ${nodeTypeName(x.value)}`, x.value.loc.span, { field });
    return undefined;
  }
  const m = x.value;
  checkKeys(m, EXPERIMENT_KEYS, bag, `experiment \`${x.key}\``, { field });
  const kinds = (['set', 'grid', 'list'] as const).filter((k) => m.byKey.has(k));
  if (kinds.length !== 1) {
    const at = kinds.length > 1 ? m.byKey.get(kinds[1]!)!.keyLoc : x.keyLoc;
    bag.error(
      kinds.length > 1
        ? `experiment \`${x.key}\` has ${kinds.map((k) => `\`${k}:\``).join(' and ')}; give exactly one of \`set:\`, \`grid:\`, \`list:\``
        : `experiment \`${x.key}\` needs one of \`set:\` (one parameter set), \`grid:\` (every combination) or \`list:\` (listed sets)`,
      at.span,
      { field },
    );
    return undefined;
  }
  const kind = kinds[0]!;
  const value = m.byKey.get(kind)!.value;
  const f = `${field}.${kind}`;
  const made = madeVariants(x.key, kind, value, f, scope, limits, bag);
  checkNames(made.keys, value, scope.params, bag, f);
  const targets = readTargets(m, stages, bag, field);
  const metric = m.byKey.get('metric');
  const desc = m.byKey.get('desc');
  const spec: ExperimentSpec = { name: x.key, kind, variants: [], span: x.keyLoc.span };
  if (targets) spec.targets = targets;
  if (metric) {
    if (metric.value.t === 'scalar' && typeof metric.value.value === 'string' && metric.value.value !== '') spec.metric = metric.value.value;
    else bag.error(`\`metric\` names one metric (a flattened key of a \`metrics:\` file, e.g. \`vindr_cxr.vindr_pcxr.test\`), not ${nodeTypeName(metric.value)}`, metric.value.loc.span, { field: `${field}.metric` });
  }
  if (desc) {
    if (desc.value.t === 'scalar' && typeof desc.value.value === 'string') spec.desc = desc.value.value;
    else bag.error(`\`desc\` is one line of text, not ${nodeTypeName(desc.value)}`, desc.value.loc.span, { field: `${field}.desc` });
  }
  if (bag.items.filter((d) => d.severity === 'error').length > before) return undefined;
  spec.variants = made.variants;
  unusedParams(spec, made.keys, stages, value, bag, f);
  return spec;
}

interface Made {
  /** Empty when making them failed (the errors are in the bag). */
  variants: VariantSpec[];
  /** The dotted param names the parameter sets made set, each once, in order of first use. */
  keys: string[];
}

/**
 * The variants an experiment's `set:`, `grid:` or `list:` makes, by its node, with what they were made under.
 * `pipe exp run` loads the pipeline once per variant over the same parsed files (files.ts ParsedFiles), and each
 * load builds and names the experiments' variants again: 1,000 loads of a 1,000-variant grid was most of a dry
 * run's time. Kept only for a node with no `$` in it, whose values cannot depend on the params or vars a variant
 * changes, and that made its variants without an error.
 */
const madeByNode = new WeakMap<YNode, { experiment: string; maxVariants: number } & Made>();

/** The variants of one experiment; problems go to the bag. */
function madeVariants(experiment: string, kind: 'set' | 'grid' | 'list', value: YNode, f: string, scope: Scope, limits: Limits, bag: DiagnosticBag): Made {
  const known = madeByNode.get(value);
  if (known && known.experiment === experiment && known.maxVariants === limits.variants) return known;
  const before = bag.items.length;
  const sink: Sink = { error: (message, loc, field) => bag.error(message, loc.span, { field }), param: () => {} };
  let sets: Array<Record<string, unknown>> = [];
  if (kind === 'set') {
    const s = overrideMap(value, f, scope, sink, bag);
    if (s) sets = [s];
  } else if (kind === 'list') {
    if (value.t !== 'seq' || value.items.length === 0) {
      bag.error(`\`list:\` is a non-empty list of parameter sets (\`- {retrain.lr: 0.01}\`), not ${value.t === 'seq' ? 'an empty list' : nodeTypeName(value)}`, value.loc.span, { field: f });
    } else if (value.items.length > limits.variants) {
      bag.error(`\`list:\` of experiment \`${experiment}\` has ${value.items.length} variants, over the limit of ${limits.variants} per experiment; ${raiseHint('variants')}`, value.loc.span, { field: f });
    } else {
      const seen = new Map<string, number>();
      value.items.forEach((it, i) => {
        const s = overrideMap(it, `${f}[${i}]`, scope, sink, bag);
        if (!s) return;
        const id = canonicalJson(s);
        const first = seen.get(id);
        if (first !== undefined) bag.error(`entry ${i + 1} of \`list:\` repeats entry ${first + 1}: each variant is a distinct parameter set`, it.loc.span, { field: `${f}[${i}]` });
        else seen.set(id, i);
        sets.push(s);
      });
    }
  } else {
    sets = gridSets(value, f, experiment, scope, sink, limits, bag) ?? [];
  }
  const keys = [...new Set(sets.flatMap((s) => Object.keys(s)))];
  if (bag.items.length > before) return { variants: [], keys };
  const variants = sets.map((overrides): VariantSpec => ({ name: kind === 'set' ? experiment : variantName(experiment, overrides), overrides }));
  if (!hasDollar(value)) madeByNode.set(value, { experiment, maxVariants: limits.variants, variants, keys });
  return { variants, keys };
}

/** Whether any string in the subtree has a `$` (so may interpolate; mapping keys are not interpolated). */
function hasDollar(n: YNode): boolean {
  if (n.t === 'scalar') return typeof n.value === 'string' && n.value.includes('$');
  if (n.t === 'seq') return n.items.some(hasDollar);
  return n.entries.some((e) => hasDollar(e.value));
}

/** A mapping of dotted param names → values (interpolated), or undefined after reporting. */
function overrideMap(n: YNode, field: string, scope: Scope, sink: Sink, bag: DiagnosticBag): Record<string, unknown> | undefined {
  if (n.t !== 'map' || n.entries.length === 0) {
    bag.error(`a parameter set maps dotted param names to values (\`{retrain.lr: 0.01}\`), not ${n.t === 'map' ? 'an empty mapping' : nodeTypeName(n)}`, n.loc.span, { field });
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const e of n.entries) {
    const v = interpolateNode(e.value, scope, sink, `${field}.${e.key}`);
    if (v === undefined) continue; // reported by the interpolation
    if (!finite(v)) {
      bag.error(`\`${e.key}\`: values are finite numbers, strings, booleans, null, lists or mappings, not ${String(v)}`, e.value.loc.span, { field: `${field}.${e.key}` });
      continue;
    }
    out[e.key] = v;
  }
  return out;
}

function finite(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(finite);
  if (isPlainMap(v)) return Object.values(v).every(finite);
  return true;
}

/** Every combination of the grid's axes (first axis slowest), bounded before any is built. */
function gridSets(n: YNode, field: string, name: string, scope: Scope, sink: Sink, limits: Limits, bag: DiagnosticBag): Array<Record<string, unknown>> | undefined {
  if (n.t !== 'map' || n.entries.length === 0) {
    bag.error(`\`grid:\` maps dotted param names to lists of values (\`{retrain.lr: [0.0005, 0.002]}\`), not ${n.t === 'map' ? 'an empty mapping' : nodeTypeName(n)}`, n.loc.span, { field });
    return undefined;
  }
  const axes: Array<{ key: string; values: unknown[] }> = [];
  for (const e of n.entries) {
    const v = interpolateNode(e.value, scope, sink, `${field}.${e.key}`);
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length === 0) {
      bag.error(`grid axis \`${e.key}\` is a non-empty list of values (\`[0.0005, 0.002]\`), not ${Array.isArray(v) ? 'an empty list' : typeName(v)}`, e.value.loc.span, { field: `${field}.${e.key}` });
      continue;
    }
    if (!v.every(finite)) {
      bag.error(`grid axis \`${e.key}\`: values are finite numbers, strings, booleans, null, lists or mappings`, e.value.loc.span, { field: `${field}.${e.key}` });
      continue;
    }
    const dup = v.findIndex((x, i) => v.findIndex((y) => canonicalJson(y) === canonicalJson(x)) !== i);
    if (dup >= 0) {
      bag.error(`grid axis \`${e.key}\` lists ${JSON.stringify(v[dup])} twice: each value makes distinct variants`, e.value.loc.span, { field: `${field}.${e.key}` });
      continue;
    }
    axes.push({ key: e.key, values: v });
  }
  if (axes.length !== n.entries.length) return undefined;
  const count = axes.reduce((c, a) => c * a.values.length, 1);
  if (count > limits.variants) {
    bag.error(
      `\`grid:\` of experiment \`${name}\` is ${axes.map((a) => a.values.length).join(' × ')} = ${count.toLocaleString('en-US')} variants, over the limit of ${limits.variants.toLocaleString('en-US')} per experiment; ${raiseHint('variants')}`,
      n.loc.span,
      { field },
    );
    return undefined;
  }
  const sets: Array<Record<string, unknown>> = [];
  for (let i = 0; i < count; i++) {
    const s: Record<string, unknown> = {};
    let rest = i;
    for (let a = axes.length - 1; a >= 0; a--) {
      const ax = axes[a]!;
      s[ax.key] = ax.values[rest % ax.values.length];
      rest = Math.floor(rest / ax.values.length);
    }
    sets.push(Object.fromEntries(axes.map((a) => [a.key, s[a.key]])));
  }
  return sets;
}

/** Each dotted name must be a param (as `-S` requires), located at its key, with "did you mean". */
function checkNames(names: string[], container: YNode, params: Record<string, unknown>, bag: DiagnosticBag, field: string): void {
  for (const name of names) {
    const problem = paramProblem(name, params);
    if (!problem) continue;
    const loc = keyLocOf(container, name);
    bag.error(problem, loc, { field: `${field}.${name}`, dedup: `exp-param|${loc?.file}|${loc?.line}|${loc?.col}|${name}` });
  }
}

/** Why `name` is not a param that can be overridden, or undefined. */
export function paramProblem(name: string, params: Record<string, unknown>): string | undefined {
  const path = name.split('.');
  if (path.some((p) => p === '')) return `\`${name}\` is not a valid dotted param name`;
  let cur: unknown = params;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (!isPlainMap(cur)) return `\`params.${path.slice(0, i).join('.')}\` is not a mapping, so it has no \`${seg}\``;
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) {
      const where = i === 0 ? 'params have' : `\`params.${path.slice(0, i).join('.')}\` has`;
      return `${where} no \`${seg}\`${didYouMean(seg, Object.keys(cur))}: an experiment overrides existing params (declare it under \`params:\` first)`;
    }
    cur = cur[seg];
  }
  return undefined;
}

/** Where the key `name` is written in a set/grid mapping or in the entries of a list. */
function keyLocOf(container: YNode, name: string): SourceSpan | undefined {
  const maps: YMap[] = container.t === 'map' ? [container] : container.t === 'seq' ? container.items.filter((i): i is YMap => i.t === 'map') : [];
  for (const m of maps) {
    const e = m.byKey.get(name);
    if (e) return e.keyLoc.span;
  }
  return container.loc.span;
}

function readTargets(m: YMap, stages: StageSpec[], bag: DiagnosticBag, field: string): string[] | undefined {
  const e = m.byKey.get('targets');
  if (!e) return undefined;
  const items = e.value.t === 'seq' ? e.value.items : [e.value];
  const out: string[] = [];
  const names = new Set(stages.flatMap((s) => [s.name, s.declaredAs]));
  for (const it of items) {
    if (it.t !== 'scalar' || typeof it.value !== 'string' || it.value === '') {
      bag.error(`\`targets\` lists stage names or globs, not ${nodeTypeName(it)}`, it.loc.span, { field: `${field}.targets` });
      continue;
    }
    const t = it.value;
    if (!stages.some((s) => matcher([t])(s.name) || s.declaredAs === t)) {
      bag.error(`\`targets\` names \`${t}\`, which matches no stage${didYouMean(t, names)}`, it.loc.span, { field: `${field}.targets` });
      continue;
    }
    out.push(t);
  }
  return out;
}

/** A param no stage depends on makes variants that compute what the baseline does: a warning, located at it. */
function unusedParams(spec: ExperimentSpec, names: string[], stages: StageSpec[], container: YNode, bag: DiagnosticBag, field: string): void {
  for (const name of names) {
    const used = stages.some((s) => Object.keys(s.params).some((k) => k === name || name.startsWith(`${k}.`) || k.startsWith(`${name}.`)));
    if (!used) {
      bag.warning(`no stage uses param \`${name}\`: every variant of experiment \`${spec.name}\` would compute what the baseline computes`, keyLocOf(container, name), { field: `${field}.${name}` });
    }
  }
}
