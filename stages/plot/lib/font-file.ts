/**
 * Horizontal advance widths from a TrueType/OpenType font file (head, hhea, hmtx, cmap formats 4 and 12), enough
 * to measure a line of text the way librsvg will lay it out (kerning aside). Pure: bytes in, a measurer out.
 */
export interface FontAdvances {
  unitsPerEm: number;
  /** Advance width of a code point in font units; the .notdef glyph's for characters the font lacks. */
  advance(codePoint: number): number;
  /** Whether the font has a glyph for the code point. */
  has(codePoint: number): boolean;
}

interface Table {
  offset: number;
  length: number;
}

function tables(buf: Buffer, base: number): Map<string, Table> {
  const n = buf.readUInt16BE(base + 4);
  const out = new Map<string, Table>();
  for (let i = 0; i < n; i++) {
    const r = base + 12 + i * 16;
    out.set(buf.toString('latin1', r, r + 4), { offset: buf.readUInt32BE(r + 8), length: buf.readUInt32BE(r + 12) });
  }
  return out;
}

type GlyphOf = (cp: number) => number;

function cmapFormat4(buf: Buffer, at: number): GlyphOf {
  const segX2 = buf.readUInt16BE(at + 6);
  const ends = at + 14;
  const starts = ends + segX2 + 2;
  const deltas = starts + segX2;
  const ranges = deltas + segX2;
  return (cp) => {
    if (cp > 0xffff) return 0;
    for (let s = 0; s < segX2; s += 2) {
      if (cp > buf.readUInt16BE(ends + s)) continue;
      const start = buf.readUInt16BE(starts + s);
      if (cp < start) return 0;
      const delta = buf.readInt16BE(deltas + s);
      const ro = buf.readUInt16BE(ranges + s);
      if (ro === 0) return (cp + delta) & 0xffff;
      const g = buf.readUInt16BE(ranges + s + ro + 2 * (cp - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };
}

function cmapFormat12(buf: Buffer, at: number): GlyphOf {
  const n = buf.readUInt32BE(at + 12);
  return (cp) => {
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const g = at + 16 + mid * 12;
      if (cp < buf.readUInt32BE(g)) hi = mid - 1;
      else if (cp > buf.readUInt32BE(g + 4)) lo = mid + 1;
      else return buf.readUInt32BE(g + 8) + (cp - buf.readUInt32BE(g));
    }
    return 0;
  };
}

/** The best Unicode cmap subtable: full-range (format 12) first, then BMP (format 4). */
function cmap(buf: Buffer, t: Table): GlyphOf {
  const n = buf.readUInt16BE(t.offset + 2);
  const subtables: Array<{ platform: number; encoding: number; format: number; at: number }> = [];
  for (let i = 0; i < n; i++) {
    const r = t.offset + 4 + i * 8;
    const at = t.offset + buf.readUInt32BE(r + 4);
    subtables.push({ platform: buf.readUInt16BE(r), encoding: buf.readUInt16BE(r + 2), format: buf.readUInt16BE(at), at });
  }
  const unicode = (s: (typeof subtables)[number]) => s.platform === 0 || (s.platform === 3 && (s.encoding === 1 || s.encoding === 10));
  const f12 = subtables.find((s) => unicode(s) && s.format === 12);
  if (f12) return cmapFormat12(buf, f12.at);
  const f4 = subtables.find((s) => unicode(s) && s.format === 4);
  if (f4) return cmapFormat4(buf, f4.at);
  throw new Error('no Unicode cmap (format 4 or 12)');
}

/** Parse a .ttf/.otf (or the first font of a .ttc). Throws on a file that is not a font. */
export function parseFontAdvances(buf: Buffer): FontAdvances {
  let base = 0;
  if (buf.toString('latin1', 0, 4) === 'ttcf') base = buf.readUInt32BE(12);
  const tag = buf.readUInt32BE(base);
  if (tag !== 0x00010000 && tag !== 0x4f54544f /* OTTO */ && tag !== 0x74727565 /* true */) {
    throw new Error('not a TrueType/OpenType font');
  }
  const t = tables(buf, base);
  const head = t.get('head');
  const hhea = t.get('hhea');
  const hmtx = t.get('hmtx');
  const cm = t.get('cmap');
  if (!head || !hhea || !hmtx || !cm) throw new Error('font lacks one of head/hhea/hmtx/cmap');
  const unitsPerEm = buf.readUInt16BE(head.offset + 18);
  const metrics = buf.readUInt16BE(hhea.offset + 34);
  const glyphOf = cmap(buf, cm);
  const advanceOfGlyph = (g: number): number => buf.readUInt16BE(hmtx.offset + 4 * Math.min(g, metrics - 1));
  const memo = new Map<number, number>();
  return {
    unitsPerEm,
    has: (cp) => glyphOf(cp) !== 0,
    advance(cp) {
      let a = memo.get(cp);
      if (a === undefined) {
        a = advanceOfGlyph(glyphOf(cp));
        memo.set(cp, a);
      }
      return a;
    },
  };
}

/** Width in pixels of `text` set at `sizePx`. */
export function textWidth(font: FontAdvances, text: string, sizePx: number): number {
  let units = 0;
  for (const ch of text) units += font.advance(ch.codePointAt(0)!);
  return (units * sizePx) / font.unitsPerEm;
}
