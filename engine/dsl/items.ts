/** The items of a `foreach:` or `matrix:` and the name suffix each gives its stage. */
import { DiagnosticBag } from './diagnostics.js';
import { interpolateNode, type Scope, type Sink } from './interpolate.js';
import { typeName, type YEntry } from './load.js';
import { isPlainMap } from './params.js';

export interface Item {
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

/** `foreach:` a list (suffix: the item, an object's `name`, else its index) or a mapping (suffix: the key). */
export function foreachItems(e: YEntry, decl: string, scope: Scope, bag: DiagnosticBag, sink: Sink): Item[] {
  const v = interpolateNode(e.value, scope, sink, 'foreach');
  if (v === undefined) return [];
  if (Array.isArray(v)) {
    if (v.length === 0) bag.warning('`foreach:` over an empty list: no stages', e.value.loc.span, { stage: decl, field: 'foreach' });
    return v.map((x, i) => ({ suffix: label(x, i), value: x }));
  }
  if (isPlainMap(v)) return Object.entries(v).map(([k, x]) => ({ suffix: k, value: x, key: k }));
  bag.error(`\`foreach:\` needs a list or a mapping, got ${typeName(v)}`, e.value.loc.span, { stage: decl, field: 'foreach' });
  return [];
}

/** `matrix:` named axes: their product in declaration order, suffix `a=x,b=y`. */
export function matrixItems(e: YEntry, decl: string, scope: Scope, bag: DiagnosticBag, sink: Sink): Item[] {
  if (e.value.t !== 'map' || e.value.entries.length === 0) {
    bag.error('`matrix:` needs a mapping of named axes, each a list (e.g. `model: [a, b]`)', e.value.loc.span, { stage: decl, field: 'matrix' });
    return [];
  }
  const axes: Array<{ name: string; values: unknown[] }> = [];
  for (const a of e.value.entries) {
    const v = interpolateNode(a.value, scope, sink, `matrix.${a.key}`);
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

