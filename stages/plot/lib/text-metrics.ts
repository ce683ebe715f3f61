import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as vega from 'vega';
import { parseFontAdvances, textWidth, type FontAdvances } from './font-file.js';

/**
 * Vega lays out axes, legends and titles from text widths. Without node-canvas it guesses 0.8 em per character,
 * which truncates labels that would fit ("Anatomy Segmentati…") and mis-sizes the chart. We measure instead with
 * the advance widths of the font file fontconfig picks for each family/weight/style — the file librsvg renders.
 */

interface TextItem {
  font?: string;
  fontSize?: number | string;
  fontWeight?: string | number;
  fontStyle?: string;
  limit?: number;
}

const fonts = new Map<string, FontAdvances | null>();

/** fontconfig pattern for a vega font: CSS family list → fc families, bold/italic → weight/slant. */
export function fontPattern(family: string, weight: unknown, style: unknown): string {
  const families = family
    .split(',')
    .map((f) => f.trim().replace(/^['"]|['"]$/g, '').replace(/([:,\\-])/g, '\\$1'))
    .filter((f) => f !== '')
    .join(',');
  const w = String(weight ?? '');
  const bold = w === 'bold' || w === 'bolder' || (/^\d+$/.test(w) && Number(w) >= 600);
  const italic = style === 'italic' || style === 'oblique';
  return `${families || 'sans-serif'}${bold ? ':weight=bold' : ''}${italic ? ':slant=italic' : ''}`;
}

/** The parsed font file fontconfig matches for a pattern (null: no fontconfig or an unreadable file). */
export function fontFor(pattern: string): FontAdvances | null {
  let f = fonts.get(pattern);
  if (f === undefined) {
    f = null;
    const r = spawnSync('fc-match', ['--format', '%{file}', pattern], { encoding: 'utf8' });
    if (!r.error && r.status === 0 && r.stdout.trim() !== '') {
      try {
        f = parseFontAdvances(readFileSync(r.stdout.trim()));
      } catch {
        f = null;
      }
    }
    fonts.set(pattern, f);
  }
  return f;
}

const textMetrics = (vega as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number; estimateWidth: (item: TextItem, text: unknown) => number } }).textMetrics;

/**
 * The width vega uses for `text` in `item`. Clamped to the item's `limit`: vega's own truncation asks this
 * function whether a prefix fits below the limit (a clamped answer for too-wide text still says "no"), and the
 * bounds of a truncated label are then the limit, not the untruncated width.
 */
function measuredWidth(item: TextItem, text: unknown): number {
  const size = item.fontSize != null ? +item.fontSize || 0 : 11;
  const s = text == null ? '' : String(text).trim();
  if (size <= 0 || s === '') return 0;
  const font = fontFor(fontPattern(item.font ?? 'sans-serif', item.fontWeight, item.fontStyle));
  const w = font ? textWidth(font, s, size) : textMetrics.estimateWidth({ ...item, limit: 0 }, s);
  return item.limit !== undefined && item.limit > 0 ? Math.min(w, item.limit) : w;
}

/**
 * Switch vega to font-file metrics when fontconfig can find `family`; returns what is in use, for the record.
 * vega's textMetrics is process-global, which suits the stage runner (one stage per process).
 */
export function useFontMetrics(family: string): 'font-file' | 'estimated' {
  if (fontFor(fontPattern(family, undefined, undefined)) === null) {
    textMetrics.width = textMetrics.estimateWidth;
    return 'estimated';
  }
  textMetrics.width = measuredWidth;
  return 'font-file';
}
