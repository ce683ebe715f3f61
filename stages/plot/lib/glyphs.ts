import { spawnSync } from 'node:child_process';

/**
 * Tofu guard. librsvg draws text through pango + fontconfig: a character that no installed font covers comes out
 * as a box ("tofu"). Fontconfig — the same library and config files librsvg uses — can answer "which fonts cover
 * these characters?", so we ask it before writing a PNG instead of discovering boxes in the paper.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) =>
    e.startsWith('#x')
      ? String.fromCodePoint(parseInt(e.slice(2), 16))
      : e.startsWith('#')
        ? String.fromCodePoint(parseInt(e.slice(1), 10))
        : ENTITIES[e]!,
  );
}

/** Text content of the SVG's <text>/<tspan> elements (vega writes one run per element, no nested markup). */
export function svgTexts(svg: string): string[] {
  const out: string[] = [];
  for (const m of svg.matchAll(/<(text|tspan)\b[^>]*>([^<]*)/g)) {
    const t = decodeXmlText(m[2]!);
    if (t.trim() !== '') out.push(t);
  }
  return out;
}

/** Font families named in the SVG's font-family attributes (first family of each list). */
export function svgFontFamilies(svg: string): string[] {
  const out = new Set<string>();
  for (const m of svg.matchAll(/font-family="([^"]*)"/g)) {
    const first = decodeXmlText(m[1]!).split(',')[0]!.trim().replace(/^['"]|['"]$/g, '');
    if (first) out.add(first);
  }
  return [...out];
}

/** Distinct printable code points, sorted. */
export function distinctChars(texts: readonly string[]): number[] {
  const set = new Set<number>();
  for (const t of texts) for (const ch of t) if (!/\s/.test(ch)) set.add(ch.codePointAt(0)!);
  return [...set].sort((a, b) => a - b);
}

export const codePointName = (cp: number): string =>
  `U+${cp.toString(16).toUpperCase().padStart(4, '0')} ${JSON.stringify(String.fromCodePoint(cp))}`;

function fcList(codePoints: readonly number[]): string[] | undefined {
  const r = spawnSync('fc-list', ['--format', '%{family}\n', `:charset=${codePoints.map((c) => c.toString(16)).join(' ')}`], {
    encoding: 'utf8',
  });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

export type Coverage = { checked: false } | { checked: true; missing: number[] };

/**
 * Characters no installed font covers. One fontconfig query for all characters in the common case (one font
 * covers them all); only when none does, one query per character, since a mix of fonts may still cover the set.
 * `checked: false` when fontconfig's tools are not installed (e.g. macOS without fontconfig): the caller says so.
 */
export function uncoveredChars(codePoints: readonly number[]): Coverage {
  if (codePoints.length === 0) return { checked: true, missing: [] };
  const all = fcList(codePoints);
  if (all === undefined) return { checked: false };
  if (all.length > 0) return { checked: true, missing: [] };
  const missing: number[] = [];
  for (const cp of codePoints) {
    const fonts = fcList([cp]);
    if (fonts === undefined) return { checked: false };
    if (fonts.length === 0) missing.push(cp);
  }
  return { checked: true, missing };
}

/** The family fontconfig substitutes for `family` (equal to it when that font is installed). */
export function matchedFamily(family: string): string | undefined {
  const r = spawnSync('fc-match', ['--format', '%{family}', family], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split(',')[0]!.trim();
}
