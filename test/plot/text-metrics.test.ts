import sharp from 'sharp';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { textWidth } from '../../stages/plot/lib/font-file.js';
import { fontFor, fontPattern } from '../../stages/plot/lib/text-metrics.js';
import { run } from '../../stages/plot/run.js';
import { fakeContext } from '../support/context.js';

/** Width of the inked area of a PNG (columns holding any dark pixel). */
async function inkWidth(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).flatten({ background: '#ffffff' }).greyscale().raw().toBuffer({ resolveWithObject: true });
  let first = -1;
  let last = -1;
  for (let x = 0; x < info.width; x++) {
    for (let y = 0; y < info.height; y++) {
      if (data[y * info.width + x]! < 128) {
        if (first < 0) first = x;
        last = x;
        break;
      }
    }
  }
  return last - first + 1;
}

describe('text metrics from the font file', () => {
  it('maps CSS font settings to fontconfig patterns', () => {
    expect(fontPattern('DejaVu Sans', undefined, undefined)).toBe('DejaVu Sans');
    expect(fontPattern('"Helvetica Neue", Arial, sans-serif', 'bold', 'italic')).toBe('Helvetica Neue,Arial,sans\\-serif:weight=bold:slant=italic');
    expect(fontPattern('DejaVu Sans', 700, 'normal')).toBe('DejaVu Sans:weight=bold');
    expect(fontPattern('DejaVu Sans', 400, undefined)).toBe('DejaVu Sans');
  });

  it('measures text as wide as librsvg draws it (regular and bold)', async () => {
    const text = 'Lack of children in public medical imaging data';
    for (const weight of ['normal', 'bold']) {
      const font = fontFor(fontPattern('DejaVu Sans', weight, undefined));
      expect(font, 'fc-match finds DejaVu Sans').not.toBeNull();
      const measured = textWidth(font!, text, 40);
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(measured) + 40}" height="80"><rect width="100%" height="100%" fill="#fff"/><text x="20" y="55" font-family="DejaVu Sans" font-weight="${weight}" font-size="40">${text}</text></svg>`;
      const ink = await inkWidth(await sharp(Buffer.from(svg)).png().toBuffer());
      // Ink excludes the first glyph's left and last glyph's right side bearing: a few px at 40 px.
      expect(Math.abs(measured - ink), `${weight}: measured ${measured}, drawn ${ink}`).toBeLessThan(0.02 * measured);
    }
  });

  it('keeps axis labels that fit whole (vega’s 0.8 em estimate would cut them)', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'pipe-plot-metrics-'));
    mkdirSync(join(ws, 'out'));
    // 26 characters at 10 px: vega's estimate is 208 px (> the 180 px label limit), DejaVu Sans draws ~160 px.
    writeFileSync(join(ws, 'out/tasks.csv'), 'task,n\nAnatomy Organ Segmentation,5\nOther,3\n');
    const spec = {
      data: { name: 'tasks' },
      mark: 'bar',
      encoding: { y: { field: 'task', type: 'nominal' }, x: { field: 'n', type: 'quantitative' } },
    };
    const ctx = fakeContext(ws, { inline: spec, data: ['out/tasks.csv'], svg: 'out/t.svg', scale: 1, config: {} });
    await run(ctx);
    const svg = readFileSync(join(ws, 'out/t.svg'), 'utf8');
    expect(svg).toContain('>Anatomy Organ Segmentation</text>');
    expect(svg).not.toContain('…');
    expect(ctx.records.textMetrics).toBe('font-file');
  });
});
