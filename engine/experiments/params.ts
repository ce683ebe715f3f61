/**
 * Params as experiments see them: flattened to dotted leaves (mappings recurse; lists and scalars are values), the
 * leaves that differ between two param sets, and back to a nested mapping (what `pipe exp apply` writes to the
 * params file). Pure.
 */
import { deepMerge, isPlainMap } from '../dsl/params.js';

/** `{retrain: {lr: 0.001, archs: [a, b]}}` → `{'retrain.lr': 0.001, 'retrain.archs': ['a', 'b']}`. */
export function flattenParams(params: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(params)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (isPlainMap(v) && Object.keys(v).length > 0) flattenParams(v, name, out);
    else out[name] = v;
  }
  return out;
}

export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The leaves of `params` that are absent from or different in `base`. */
export function changedParams(params: Record<string, unknown>, base: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (!Object.prototype.hasOwnProperty.call(base, k) || !sameValue(base[k], v)) out[k] = v;
  return out;
}

/** `{'retrain.lr': 0.002}` → `{retrain: {lr: 0.002}}` (a params file merged over the defaults). */
export function nestDotted(flat: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const path = k.split('.');
    let cur = out;
    for (const seg of path.slice(0, -1)) {
      if (!isPlainMap(cur[seg])) cur[seg] = {};
      cur = cur[seg] as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = v;
  }
  return out;
}

/**
 * The params of `params` (flattened) that `changedParams(params, base)` written as a params file over `base` does not
 * give back: a params file merges mappings key by key, so it cannot drop a key of `base` (`opt.b` of a variant that set
 * `opt={a: 1}`) nor empty a mapping (`opt={}`). Empty when the file is exactly the variant.
 */
export function unwritableParams(params: Record<string, unknown>, base: Record<string, unknown>): string[] {
  const merged = flattenParams(deepMerge(nestDotted(base), nestDotted(changedParams(params, base))));
  const has = (o: Record<string, unknown>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
  const keys = new Set([...Object.keys(params), ...Object.keys(merged)]);
  return [...keys].filter((k) => !has(params, k) || !has(merged, k) || !sameValue(params[k], merged[k])).sort();
}

/** Overrides as `-S` arguments: JSON values are YAML, so each parses back to the same value. */
export function overrideArgs(overrides: Record<string, unknown>): string[] {
  return Object.entries(overrides).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
}

/** A param value in a table cell or a name: strings as they are, the rest as JSON. */
export function paramText(v: unknown): string {
  if (v === undefined) return '-';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A params file (JSON is YAML) holding `changed` as nested params, under a comment line saying who wrote it. */
export function paramsFileText(comment: string, changed: Record<string, unknown>): string {
  return `# ${comment}\n${JSON.stringify(nestDotted(changed), null, 2)}\n`;
}
