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
  // A title object keeps its subtitle and styling; only its text is replaced.
  if (o.title !== undefined) out.title = isObject(spec.title) ? { ...spec.title, text: o.title } : o.title;
  return out;
}

/** One entry of a compiled Vega spec's top-level `data` array. */
interface VegaData {
  name?: string;
  url?: unknown;
  values?: unknown;
  source?: unknown;
  transform?: unknown[];
}

/**
 * Named datasets a compiled Vega spec expects to be supplied from outside (no values, url, source or transform), and datasets
 * it would fetch by URL — which we refuse: a URL bypasses the stage's deps, so the cache could not see it change.
 */
export function externalData(vegaSpec: { data?: VegaData[] }): { named: string[]; urls: string[] } {
  const named: string[] = [];
  const urls: string[] = [];
  for (const d of vegaSpec.data ?? []) {
    if (d.url !== undefined) urls.push(typeof d.url === 'string' ? d.url : JSON.stringify(d.url));
    // Vega-Lite declares a named source as a bare {name}; entries it derives itself (facet domains...) have a
    // source or a transform that computes them.
    else if (d.values === undefined && d.source === undefined && !(d.transform && d.transform.length) && d.name !== undefined) {
      named.push(d.name);
    }
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

/**
 * Where a Vega-Lite spec asks for hyperlinks: every `href` (the encoding channel, a mark property, a config default),
 * as JSON pointers. A figure is a static SVG/PNG file, so links are dropped (and vega-scenegraph would crash
 * rendering them headless: it cannot sanitise a URL without a loader that fetches).
 */
export function hrefPointers(spec: Json, pointer = ''): string[] {
  const out: string[] = [];
  if (Array.isArray(spec)) spec.forEach((v, i) => out.push(...hrefPointers(v, `${pointer}/${i}`)));
  else if (isObject(spec)) {
    for (const [k, v] of Object.entries(spec)) {
      const here = `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (k === 'href') out.push(here);
      else if (k !== 'data' && k !== 'datasets' && k !== 'usermeta') out.push(...hrefPointers(v, here));
    }
  }
  return out;
}

/**
 * Removes every `href` property from a compiled Vega spec's marks (their `encode` blocks, nested group marks
 * included) and from its `config`, in place; returns how many it removed. Inline `values` of datasets are left alone.
 */
export function stripHrefs(node: unknown): number {
  let n = 0;
  if (Array.isArray(node)) for (const v of node) n += stripHrefs(v);
  else if (node !== null && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k === 'href') {
        delete o[k];
        n++;
      } else if (k !== 'data' && k !== 'values') n += stripHrefs(o[k]);
    }
  }
  return n;
}

export interface FieldReference {
  dataset: string;
  field: string;
  /** JSON pointer of the `field` in the spec. */
  pointer: string;
}

/**
 * `encoding` fields read straight from a named dataset — in views where no transform (own or inherited) could
 * have derived them. A field missing from such a dataset draws nothing and raises no error in Vega, so the stage
 * warns about it.
 */
export function directFieldReferences(spec: Json): FieldReference[] {
  const out: FieldReference[] = [];
  const walk = (node: Json, pointer: string, dataset: string | undefined, derived: boolean): void => {
    if (!isObject(node)) return;
    const data = isObject(node.data) && typeof node.data.name === 'string' ? node.data.name : undefined;
    const ds = data ?? (isObject(node.data) ? undefined : dataset);
    const d = derived || (Array.isArray(node.transform) && node.transform.length > 0);
    if (node.mark !== undefined && ds !== undefined && !d && isObject(node.encoding)) {
      for (const [channel, def] of Object.entries(node.encoding)) {
        const defs = Array.isArray(def) ? def : [def];
        defs.forEach((x, i) => {
          if (isObject(x) && typeof x.field === 'string' && x.aggregate !== 'count') {
            const at = `${pointer}/encoding/${channel}${Array.isArray(def) ? `/${i}` : ''}/field`;
            out.push({ dataset: ds, field: x.field, pointer: at });
          }
        });
      }
    }
    for (const key of ['layer', 'concat', 'hconcat', 'vconcat']) {
      const kids = node[key];
      if (Array.isArray(kids)) kids.forEach((k, i) => walk(k, `${pointer}/${key}/${i}`, ds, d));
    }
    // facet/repeat wrap one inner `spec`; repeat fields are {repeat: ...} objects, not strings, so they are skipped.
    if (isObject(node.spec)) walk(node.spec, `${pointer}/spec`, ds, d);
  };
  walk(spec, '', undefined, false);
  return out;
}

/** The top-level name a Vega-Lite field string reads: `a.b` reads `a` (nested), `a\.b` reads the key `a.b`. */
export function topLevelField(field: string): string {
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if (c === '\\' && i + 1 < field.length) out += field[++i];
    else if (c === '.' || c === '[') break;
    else out += c;
  }
  return out;
}
