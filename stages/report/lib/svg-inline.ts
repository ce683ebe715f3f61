import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';

/**
 * Make an SVG file safe to paste into an HTML page next to other SVGs: drop the XML prolog, doctype and comments,
 * drop scripts and event handlers, and prefix every id (vega names its clip paths clip1, clip2... in every figure,
 * so two inline figures would otherwise clip each other's marks).
 */
export function inlineSvg(text: string, idPrefix: string): Result<string, string> {
  let svg = text
    .replace(/^\uFEFF/, '')
    .replace(/<\?xml[\s\S]*?\?>/g, '')
    .replace(/<!DOCTYPE[^>[]*(\[[\s\S]*?\])?\s*>/gi, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .trim();
  if (!/^<svg[\s>]/.test(svg)) return err('is not an SVG document (it does not start with <svg>)');
  if (!/<\/svg>$/.test(svg)) return err('is not a complete SVG document (no closing </svg>)');
  svg = svg
    .replace(/<script\b[\s\S]*?<\/script\s*>/gi, '')
    .replace(/<script\b[^>]*\/>/gi, '')
    .replace(/\s+on[a-z]+\s*=\s*("[^"]*"|'[^']*')/gi, '');
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!));
  if (ids.size === 0) return ok(svg);
  const p = (id: string): string => (ids.has(id) ? `${idPrefix}${id}` : id);
  svg = svg
    .replace(/(\sid=")([^"]+)"/g, (_, a: string, id: string) => `${a}${p(id)}"`)
    .replace(/url\(\s*(['"]?)#([^)'"]+)\1\s*\)/g, (_, q: string, id: string) => `url(${q}#${p(id)}${q})`)
    .replace(/(\s(?:xlink:)?href=")#([^"]+)"/g, (_, a: string, id: string) => `${a}#${p(id)}"`);
  return ok(svg);
}
