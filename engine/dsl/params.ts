/**
 * Params resolution: defaults, then params files, then `-S key=value` overrides (dotted keys for nested ones).
 * Every mapping here has no prototype (`Object.create(null)`), wherever it came from: a param named `constructor`,
 * `toString` or `__proto__` is an ordinary key, never a property of Object.prototype and never a prototype change.
 */
import { resolvePlain } from './fastyaml.js';
import { isDepthDiagnostic, parseYaml, toPlain } from './load.js';
import { didYouMean } from './diagnostics.js';

export type PlainMap = Record<string, unknown>;

/**
 * The pipeline's own params file, `<name>.params.yaml` beside `<name>.yaml`: merged after `params_files:` and before
 * `--params-file`, when it exists. `pipe exp apply` writes a variant's params there, so `pipe run` computes what
 * the applied variant computed.
 */
export function appliedParamsPath(pipelineFile: string): string {
  return pipelineFile.replace(/(\.(ya?ml|json))?$/i, '.params.yaml');
}

/** The first line of a params file written by `pipe exp apply NAME` (the DSL names the variant in a warning). */
export const APPLIED_HEADER = '# Written by `pipe exp apply';

/** A mapping without a prototype holding `src`'s own keys. */
export function nullProtoCopy(src?: PlainMap): PlainMap {
  const out: PlainMap = Object.create(null);
  if (src) for (const k of Object.keys(src)) out[k] = src[k];
  return out;
}

export function isPlainMap(v: unknown): v is PlainMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `over` merged into a copy of `base`: mappings merge key by key, anything else replaces. */
export function deepMerge(base: PlainMap, over: PlainMap): PlainMap {
  const out = nullProtoCopy(base);
  for (const [k, v] of Object.entries(over)) {
    const b = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined;
    out[k] = isPlainMap(b) && isPlainMap(v) ? deepMerge(b, v) : v;
  }
  return out;
}

export interface Override {
  /** The flag as given, for messages. */
  raw: string;
  path: string[];
  value: unknown;
  /** `-S +key=value`: the key may be new. */
  add: boolean;
}

/**
 * Parse `-S key=value` (`+key=value` to add a new key). Values are YAML (`0.01` is a number, `[a, b]` a list);
 * `maxDepth` bounds their nesting like that of a file.
 */
export function parseOverride(raw: string, maxDepth?: number): Override | string {
  const eq = raw.indexOf('=');
  if (eq <= 0) return `\`-S ${raw}\`: expected \`key=value\` (e.g. \`-S lr=0.01\`, \`-S model.depth=3\`)`;
  let key = raw.slice(0, eq).trim();
  const add = key.startsWith('+');
  if (add) key = key.slice(1);
  const path = key.split('.');
  if (path.some((p) => p === '')) return `\`-S ${raw}\`: \`${key}\` is not a valid dotted key`;
  const text = raw.slice(eq + 1);
  let value: unknown = text;
  if (text.trim() !== '') {
    // Plain scalars the cheap way; flow lists/maps and quoted strings through the yaml package.
    if (/^[\s\[{"'!&*|>]/.test(text)) {
      const parsed = parseYaml(`-S ${key}`, text, maxDepth === undefined ? {} : { maxDepth });
      const tooDeep = parsed.diagnostics.find(isDepthDiagnostic);
      if (tooDeep) return `\`-S ${key}=…\`: the value is ${tooDeep.message}`;
      // Not valid YAML (`-S note=[draft`): the text itself, as before.
      value = parsed.root && parsed.diagnostics.length === 0 ? toPlain(parsed.root) : text;
    } else value = resolvePlain(text.trim());
  }
  return { raw, path, value, add };
}

/**
 * Apply one override to `params` (mutated copy-on-write). Setting a key that does not exist is an error (a typo in
 * `-S lrr=0.1` would otherwise silently run the default); `+key=value` adds it deliberately.
 */
export function applyOverride(params: PlainMap, o: Override): { params: PlainMap } | { error: string } {
  const root = nullProtoCopy(params);
  let cur = root;
  for (let i = 0; i < o.path.length; i++) {
    const seg = o.path[i]!;
    const last = i === o.path.length - 1;
    const exists = Object.prototype.hasOwnProperty.call(cur, seg);
    if (!exists && !o.add) {
      const where = i === 0 ? 'params have' : `\`params.${o.path.slice(0, i).join('.')}\` has`;
      return {
        error:
          `\`-S ${o.raw}\`: ${where} no \`${seg}\`${didYouMean(seg, Object.keys(cur))}; ` +
          `write \`-S +${o.path.join('.')}=...\` to add a new param`,
      };
    }
    if (last) {
      cur[seg] = o.value;
      break;
    }
    const next = exists ? cur[seg] : undefined;
    if (next !== undefined && !isPlainMap(next)) {
      return { error: `\`-S ${o.raw}\`: \`params.${o.path.slice(0, i + 1).join('.')}\` is not a mapping, so it has no \`${o.path[i + 1]}\`` };
    }
    const copy = nullProtoCopy(next as PlainMap | undefined);
    cur[seg] = copy;
    cur = copy;
  }
  return { params: root };
}

/** The value at a dotted name, or undefined. */
export function getDotted(obj: unknown, dotted: string): unknown {
  let cur = obj;
  for (const seg of dotted.split('.')) {
    if (Array.isArray(cur) && /^\d+$/.test(seg)) cur = cur[Number(seg)];
    else if (isPlainMap(cur) && Object.prototype.hasOwnProperty.call(cur, seg)) cur = cur[seg];
    else return undefined;
  }
  return cur;
}
