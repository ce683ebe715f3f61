/**
 * The items of a `foreach:` or `matrix:` and the name suffix each gives its stage. Items are counted first and built
 * one at a time by index, so a matrix is measured against the stage limit before a single combination exists, and
 * a 100,000-combination matrix never holds all of its combinations at once.
 */
import { DiagnosticBag } from './diagnostics.js';
import { interpolateNode, type Scope, type Sink } from './interpolate.js';
import { typeName, type YEntry } from './load.js';
import { isPlainMap } from './params.js';

export interface Item {
  suffix: string;
  value: unknown;
  key?: string;
}

export interface Items {
  count: number;
  /** `10 × 10 × 10`: how the count came about (matrix axes), for the stage-limit message. */
  shape: string;
  at(index: number): Item;
}

const NO_ITEMS: Items = { count: 0, shape: '0', at: () => undefined as never };

/** A label for a list item in a stage name: the scalar itself, an object's `name`, else its index. */
function label(v: unknown, index: number): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isPlainMap(v) && (typeof v.name === 'string' || typeof v.name === 'number')) return String(v.name);
  return String(index);
}

/** `foreach:` a list (suffix: the item, an object's `name`, else its index) or a mapping (suffix: the key). */
export function foreachItems(e: YEntry, decl: string, scope: Scope, bag: DiagnosticBag, sink: Sink): Items {
  const v = interpolateNode(e.value, scope, sink, 'foreach');
  if (v === undefined) return NO_ITEMS;
  if (Array.isArray(v)) {
    if (v.length === 0) bag.warning('`foreach:` over an empty list: no stages', e.value.loc.span, { stage: decl, field: 'foreach' });
    return { count: v.length, shape: String(v.length), at: (i) => ({ suffix: label(v[i], i), value: v[i] }) };
  }
  if (isPlainMap(v)) {
    const keys = Object.keys(v);
    return { count: keys.length, shape: String(keys.length), at: (i) => ({ suffix: keys[i]!, value: v[keys[i]!], key: keys[i]! }) };
  }
  bag.error(`\`foreach:\` needs a list or a mapping, got ${typeName(v)}`, e.value.loc.span, { stage: decl, field: 'foreach' });
  return NO_ITEMS;
}

/** `matrix:` named axes: their product in declaration order (the last axis varies fastest), suffix `a=x,b=y`. */
export function matrixItems(e: YEntry, decl: string, scope: Scope, bag: DiagnosticBag, sink: Sink): Items {
  if (e.value.t !== 'map' || e.value.entries.length === 0) {
    bag.error('`matrix:` needs a mapping of named axes, each a list (e.g. `model: [a, b]`)', e.value.loc.span, { stage: decl, field: 'matrix' });
    return NO_ITEMS;
  }
  const axes: Array<{ name: string; values: unknown[]; parts: string[] }> = [];
  let count = 1;
  for (const a of e.value.entries) {
    const v = interpolateNode(a.value, scope, sink, `matrix.${a.key}`);
    if (v === undefined) return NO_ITEMS;
    if (!Array.isArray(v)) {
      bag.error(`matrix axis \`${a.key}\` must be a list, got ${typeName(v)}`, a.value.loc.span, { stage: decl, field: `matrix.${a.key}` });
      return NO_ITEMS;
    }
    if (v.length === 0) bag.warning(`matrix axis \`${a.key}\` is empty: no stages`, a.value.loc.span, { stage: decl, field: `matrix.${a.key}` });
    // Each value's `axis=label` is computed once, not once per combination.
    axes.push({ name: a.key, values: v, parts: v.map((x, i) => `${a.key}=${label(x, i)}`) });
    count *= v.length;
  }
  const at = (index: number): Item => {
    const parts = new Array<string>(axes.length);
    // An ordinary object: the combinations of one matrix share one hidden class (a null-prototype object would be a
    // dictionary per stage). An axis called `__proto__` is defined as an own key, never a prototype.
    const value: Record<string, unknown> = {};
    const picks = new Array<number>(axes.length);
    for (let k = axes.length - 1, rest = index; k >= 0; k--) {
      const n = axes[k]!.values.length;
      picks[k] = rest % n;
      rest = (rest - picks[k]!) / n;
    }
    // Keys in axis order: the combination as written.
    for (let k = 0; k < axes.length; k++) {
      const name = axes[k]!.name;
      if (name === '__proto__') Object.defineProperty(value, name, { value: axes[k]!.values[picks[k]!], enumerable: true, writable: true, configurable: true });
      else value[name] = axes[k]!.values[picks[k]!];
      parts[k] = axes[k]!.parts[picks[k]!]!;
    }
    return { suffix: parts.join(','), value };
  };
  return { count, shape: axes.map((a) => a.values.length).join(' × '), at };
}
