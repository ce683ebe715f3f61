/** Pure helpers that prepare a Vega-Lite spec for rendering: config merge, overrides, named-data discovery. */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** Text is rendered by librsvg through fontconfig: name a font that is installed (Debian fonts-dejavu-core). */
export const DEFAULT_CONFIG: JsonObject = { font: 'DejaVu Sans' };

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge of plain objects; arrays and scalars in `over` replace those in `base`. */
export function mergeDeep(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? mergeDeep(b, v) : v;
  }
  return out;
}

export interface Overrides {
  width?: number;
  height?: number;
  title?: string;
  config?: JsonObject;
}

/** The spec as rendered: default config < the spec's config < `with.config`; then width/height/title overrides. */
export function applyOverrides(spec: JsonObject, o: Overrides): JsonObject {
  const specConfig = isObject(spec.config) ? spec.config : {};
  const out: JsonObject = { ...spec, config: mergeDeep(mergeDeep(DEFAULT_CONFIG, specConfig), o.config ?? {}) };
  if (o.width !== undefined) out.width = o.width;
  if (o.height !== undefined) out.height = o.height;
  if (o.title !== undefined) out.title = o.title;
  return out;
}

/** One entry of a compiled Vega spec's top-level `data` array. */
interface VegaData {
  name?: string;
  url?: unknown;
  values?: unknown;
  source?: unknown;
}

/**
 * Named datasets a compiled Vega spec expects to be supplied from outside (no values, url or source), and datasets
 * it would fetch by URL — which we refuse: a URL bypasses the stage's deps, so the cache could not see it change.
 */
export function externalData(vegaSpec: { data?: VegaData[] }): { named: string[]; urls: string[] } {
  const named: string[] = [];
  const urls: string[] = [];
  for (const d of vegaSpec.data ?? []) {
    if (d.url !== undefined) urls.push(typeof d.url === 'string' ? d.url : JSON.stringify(d.url));
    else if (d.values === undefined && d.source === undefined && d.name !== undefined) named.push(d.name);
  }
  return { named, urls };
}

/** Vega-Lite v5 marks, primitive and composite. */
export const MARKS = [
  'arc', 'area', 'bar', 'image', 'line', 'point', 'rect', 'rule', 'text', 'tick', 'trail', 'circle', 'square',
  'geoshape', 'boxplot', 'errorband', 'errorbar',
] as const;

/**
 * Problems Vega-Lite's compiler reports badly (an unknown mark type crashes it with "Cannot read properties of
 * undefined"), found by walking the spec; each names its JSON pointer.
 */
export function specProblems(spec: Json, pointer = ''): string[] {
  const out: string[] = [];
  if (Array.isArray(spec)) {
    spec.forEach((v, i) => out.push(...specProblems(v, `${pointer}/${i}`)));
  } else if (isObject(spec)) {
    for (const [k, v] of Object.entries(spec)) {
      const here = `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (k === 'mark') {
        const type = isObject(v) ? v.type : v;
        if (typeof type !== 'string' || !(MARKS as readonly string[]).includes(type)) {
          out.push(
            `mark ${JSON.stringify(type)} at ${isObject(v) ? `${here}/type` : here} is not a Vega-Lite mark ` +
              `(one of ${MARKS.join(', ')})`,
          );
        }
      } else if (k !== 'config' && k !== 'data' && k !== 'datasets' && k !== 'usermeta' && k !== 'params') {
        out.push(...specProblems(v, here));
      }
    }
  }
  return out;
}
