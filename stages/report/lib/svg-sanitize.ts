/**
 * An SVG figure made safe to put into report.html: parsed as XML (saxes), rebuilt from an allow-list of SVG elements
 * and attributes, and serialised by us — so what the browser parses is only what this file writes, whatever tricks
 * the input's markup tried. Never kept: <script>, <foreignObject> (and with it any HTML such as <img onerror>),
 * animation elements (they can set attributes, `href` included), event handlers (`on*`), links, and any URL that is
 * not a reference inside the figure (`#id`) or an embedded raster image (`data:image/png;base64,…`) — in href,
 * xlink:href, presentation attributes (`fill="url(…)"`) and CSS (`style`, <style>). Element ids are prefixed so two
 * inline figures never share one (vega names its clip paths clip1, clip2… in every figure).
 *
 * A figure with a <style> element is returned as `scoped`: its rules would apply to the whole page when inlined,
 * so the caller embeds it as an image (a data: URI), where they stay inside the figure (and no script could run).
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';
import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const XLINK_NS = 'http://www.w3.org/1999/xlink';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/** Elements deeper than this are refused (the serialiser recurses; vega's figures nest about 20 deep). */
export const MAX_SVG_DEPTH = 256;

/** SVG elements kept (with their content); `a` is kept as a plain group, without its link. */
const ELEMENTS = new Set([
  'svg', 'g', 'defs', 'symbol', 'use', 'switch', 'path', 'rect', 'circle', 'ellipse', 'line', 'polyline', 'polygon',
  'text', 'tspan', 'textPath', 'title', 'desc', 'clipPath', 'mask', 'pattern', 'marker', 'linearGradient',
  'radialGradient', 'stop', 'image', 'a', 'style', 'filter', 'feBlend', 'feColorMatrix', 'feComponentTransfer',
  'feFuncR', 'feFuncG', 'feFuncB', 'feFuncA', 'feComposite', 'feDropShadow', 'feFlood', 'feGaussianBlur', 'feMerge',
  'feMergeNode', 'feMorphology', 'feOffset', 'feTile',
]);

/** Presentation and geometry attributes (no namespace) whose values are CSS-like: checked by safeCssValue. */
const CSS_ATTRIBUTES = new Set([
  'fill', 'fill-opacity', 'fill-rule', 'stroke', 'stroke-width', 'stroke-opacity', 'stroke-dasharray',
  'stroke-dashoffset', 'stroke-linecap', 'stroke-linejoin', 'stroke-miterlimit', 'opacity', 'clip-path', 'clip-rule',
  'mask', 'filter', 'marker-start', 'marker-mid', 'marker-end', 'font-family', 'font-size', 'font-weight',
  'font-style', 'font-variant', 'font-stretch', 'text-anchor', 'dominant-baseline', 'alignment-baseline',
  'baseline-shift', 'letter-spacing', 'word-spacing', 'text-decoration', 'visibility', 'display', 'color',
  'paint-order', 'vector-effect', 'shape-rendering', 'text-rendering', 'image-rendering', 'color-interpolation',
  'color-interpolation-filters', 'stop-color', 'stop-opacity', 'flood-color', 'flood-opacity', 'lighting-color',
  'pointer-events', 'overflow', 'white-space', 'writing-mode', 'direction', 'unicode-bidi', 'font', 'isolation',
  'mix-blend-mode', 'transform-origin',
]);

/** Other attributes kept as they are (plain values: numbers, lists, keywords, text). */
const PLAIN_ATTRIBUTES = new Set([
  'id', 'class', 'transform', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'rx', 'ry', 'fx', 'fy', 'fr',
  'width', 'height', 'd', 'points', 'pathLength', 'viewBox', 'preserveAspectRatio', 'version', 'baseProfile',
  'clipPathUnits', 'maskUnits', 'maskContentUnits', 'gradientUnits', 'gradientTransform', 'spreadMethod', 'offset',
  'patternUnits', 'patternContentUnits', 'patternTransform', 'markerWidth', 'markerHeight', 'markerUnits', 'refX',
  'refY', 'orient', 'filterUnits', 'primitiveUnits', 'stdDeviation', 'in', 'in2', 'result', 'mode', 'operator',
  'k1', 'k2', 'k3', 'k4', 'type', 'values', 'tableValues', 'slope', 'intercept', 'amplitude', 'exponent',
  'radius', 'dx', 'dy', 'rotate', 'textLength', 'lengthAdjust', 'startOffset', 'method', 'spacing', 'side',
  'role', 'focusable', 'lang', 'requiredExtensions', 'systemLanguage',
]);

/** Elements whose href may point at another element of the figure (`#id`); `image` may also embed a raster. */
const LOCAL_REF_ELEMENTS = new Set(['use', 'textPath', 'linearGradient', 'radialGradient', 'pattern', 'filter', 'image']);
const RASTER_DATA_URI = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$/;

/** CSS properties a `style` attribute may set: the presentation attributes above, and font/text shorthands. */
const CSS_PROPERTIES = new Set([...CSS_ATTRIBUTES, 'font-kerning', 'text-transform', 'cursor', 'transform', 'transform-box']);

interface El {
  name: string;
  attrs: Array<[string, string]>;
  children: Array<El | string>;
}

export interface SanitizedSvg {
  /** The rebuilt SVG document (root `<svg>` with its namespace declarations; no prolog). */
  svg: string;
  /** What was removed, one entry per kind with its count (`<script> ×1`, `onload attribute ×2`), sorted. */
  removed: string[];
  /** It keeps a <style> element: embed it as an image so its rules stay inside the figure. */
  scoped: boolean;
}

/** A `url(...)` that is not a reference inside the document (`url(#id)`, optionally quoted). */
const FOREIGN_URL = /url\(\s*(?!['"]?#)/i;

/** CSS functions that take a URL as a plain string, without `url(`: `image-set("https://…" 1x)` loads it. */
const LOADING_FUNCTION = /(?:^|[^\w-])(?:-webkit-)?(?:image-set|image|cross-fade|element|src)\s*\(/i;

/** A CSS value (attribute or declaration) with nothing that loads, runs or hides from this check. */
export function safeCssValue(v: string): boolean {
  return !(FOREIGN_URL.test(v) || LOADING_FUNCTION.test(v) || /[\\<@]|\/\*|expression\s*\(|javascript:|-moz-binding|behavior\s*:/i.test(v));
}

/** A <style> element's text: same rules as a value (no @import, @font-face, escapes or comments). */
const safeStyleSheet = safeCssValue;

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;');
}

class Refused {
  constructor(readonly message: string) {}
}

/** Parse, filter and re-serialise; an error is a sentence fragment the caller prefixes with the file's path. */
export function sanitizeSvg(text: string, idPrefix: string): Result<SanitizedSvg, string> {
  const removed = new Map<string, number>();
  const drop = (what: string): void => void removed.set(what, (removed.get(what) ?? 0) + 1);
  let root: El | undefined;
  const stack: El[] = [];
  /** >0 while inside an element that is dropped with its content. */
  let skipping = 0;
  let rootNs: string | undefined;
  let styles = 0;

  const parser = new SaxesParser({
    xmlns: true,
    position: true,
    // Hand-written SVGs often use xlink:href without declaring the prefix; browsers' HTML parser accepts that.
    resolvePrefix: (prefix: string) => (prefix === 'xlink' ? XLINK_NS : undefined),
  });
  parser.on('error', (e) => {
    const what = e.message.replace(/^(?:.*?:)?\d+:\d+: /, '').replace(/\.$/, '');
    throw new Refused(`is not well-formed XML (line ${parser.line}, column ${parser.column}: ${what})`);
  });
  parser.on('doctype', () => undefined); // no DTD is read: entities it declares stay undefined (an error if used)
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (root === undefined && stack.length === 0 && skipping === 0) {
      if (tag.local !== 'svg' || (tag.uri !== SVG_NS && tag.uri !== '')) {
        throw new Refused(`is not an SVG document (its root element is <${tag.name}>, not <svg>)`);
      }
      rootNs = tag.uri;
    }
    if (skipping > 0) {
      skipping++;
      return;
    }
    if (stack.length >= MAX_SVG_DEPTH) throw new Refused(`nests elements more than ${MAX_SVG_DEPTH} deep`);
    const inSvg = tag.uri === SVG_NS || (tag.uri === '' && rootNs === '');
    if (!inSvg || !ELEMENTS.has(tag.local)) {
      drop(inSvg ? `<${tag.local}>` : `<${tag.name}> (not SVG)`);
      skipping = 1;
      return;
    }
    const name = tag.local === 'a' ? 'g' : tag.local;
    if (tag.local === 'a') drop('link <a> (kept as a group)');
    if (name === 'style') styles++;
    const el: El = { name, attrs: [], children: [] };
    for (const a of Object.values(tag.attributes)) {
      const kept = keepAttribute(tag.local, a.uri, a.local, a.prefix, a.value);
      if (kept === undefined) {
        // Namespace declarations are rewritten by the serialiser; they are not "removed" content.
        if (a.prefix !== 'xmlns' && a.name !== 'xmlns') drop(dropLabel(a.name, a.value));
        continue;
      }
      el.attrs.push(kept);
    }
    if (stack.length > 0) stack[stack.length - 1]!.children.push(el);
    else root = el;
    stack.push(el);
  });
  parser.on('closetag', () => {
    if (skipping > 0) {
      skipping--;
      return;
    }
    stack.pop();
  });
  const onText = (t: string): void => {
    if (skipping > 0 || stack.length === 0) return;
    stack[stack.length - 1]!.children.push(t);
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  try {
    parser.write(text.replace(/^\uFEFF/, '')).close();
  } catch (e) {
    if (e instanceof Refused) return err(e.message);
    throw e;
  }
  if (!root) return err('is not an SVG document (it has no <svg> element)');

  // <style> sheets that could load or hide something are dropped whole.
  const cleanStyles = (el: El): void => {
    el.children = el.children.filter((c) => {
      if (typeof c === 'string') return true;
      if (c.name === 'style') {
        const css = c.children.filter((x): x is string => typeof x === 'string').join('');
        if (!safeStyleSheet(css)) {
          drop('<style> (loads or escapes)');
          styles--;
          return false;
        }
        c.children = [css];
        return true;
      }
      cleanStyles(c);
      return true;
    });
  };
  cleanStyles(root);

  // An image is a document of its own: its ids (and any #id selector in its <style>) stay as they are.
  const scoped = styles > 0;
  const prefix = scoped ? '' : idPrefix;
  const prefixRefs = (v: string): string =>
    v.replace(/url\(\s*(['"]?)#([^)'"]+)\1\s*\)/g, (_, q: string, id: string) => `url(${q}#${prefix}${id}${q})`);
  const serialise = (el: El, top: boolean): string => {
    let out = `<${el.name}`;
    if (top) out += ` xmlns="${SVG_NS}"`;
    const attrs = el.attrs.map(([k, v]): [string, string] => {
      if (k === 'id') return [k, `${prefix}${v}`];
      if (k === 'href' || k === 'xlink:href') return [k, v.startsWith('#') ? `#${prefix}${v.slice(1)}` : v];
      return [k, prefixRefs(v)];
    });
    if (top && hasXlink(el)) out += ` xmlns:xlink="${XLINK_NS}"`;
    for (const [k, v] of attrs) out += ` ${k}="${escapeAttr(v)}"`;
    if (el.children.length === 0) return `${out}/>`;
    out += '>';
    for (const c of el.children) out += typeof c === 'string' ? escapeText(c) : serialise(c, false);
    return `${out}</${el.name}>`;
  };
  const svg = serialise(root, true);
  const list = [...removed.entries()].map(([k, n]) => `${k} ×${n}`).sort();
  return ok({ svg, removed: list, scoped });
}

function hasXlink(el: El): boolean {
  return el.attrs.some(([k]) => k.startsWith('xlink:')) || el.children.some((c) => typeof c !== 'string' && hasXlink(c));
}

function dropLabel(name: string, value: string): string {
  if (/^on/i.test(name)) return `${name} event handler`;
  if (/(^|:)href$/.test(name)) return `${name}="${value.trim().slice(0, 11)}${value.trim().length > 11 ? '…' : ''}" (not #id or a raster data: URI)`;
  if (name === 'style') return 'style attribute (loads or escapes)';
  if (CSS_ATTRIBUTES.has(name)) return `${name} attribute (loads or escapes)`;
  return `${name} attribute`;
}

/** The attribute as written out (name, value), or undefined when it is not kept. */
function keepAttribute(element: string, uri: string, local: string, prefix: string, value: string): [string, string] | undefined {
  if (uri === XML_NS) return local === 'space' || local === 'lang' ? [`xml:${local}`, value] : undefined;
  if (uri === XLINK_NS || (uri === '' && local === 'href')) {
    if (local !== 'href' || element === 'a') return undefined;
    const v = value.trim();
    const name = uri === XLINK_NS ? 'xlink:href' : 'href';
    if (LOCAL_REF_ELEMENTS.has(element) && /^#[^\s#]+$/.test(v)) return [name, v];
    if (element === 'image' && RASTER_DATA_URI.test(v)) return [name, v];
    return undefined;
  }
  if (uri !== '' || prefix !== '') return undefined;
  if (/^aria-[a-z]+$/.test(local)) return [local, value];
  if (PLAIN_ATTRIBUTES.has(local)) return [local, value];
  if (CSS_ATTRIBUTES.has(local)) return safeCssValue(value) ? [local, value] : undefined;
  if (local === 'style') {
    const kept = safeStyleDeclarations(value);
    return kept === undefined ? undefined : [local, kept];
  }
  return undefined;
}

/** A style attribute's declarations, each property allow-listed and each value checked; undefined if none is left. */
export function safeStyleDeclarations(style: string): string | undefined {
  if (!safeCssValue(style)) return undefined;
  const kept: string[] = [];
  for (const decl of style.split(';')) {
    const colon = decl.indexOf(':');
    if (colon < 0) continue;
    const prop = decl.slice(0, colon).trim().toLowerCase();
    const value = decl.slice(colon + 1).trim();
    if (CSS_PROPERTIES.has(prop) && value !== '') kept.push(`${prop}: ${value}`);
  }
  return kept.length > 0 ? kept.join('; ') : undefined;
}
