// `pipe exp show --html` (issue 13) in headless Chromium: the comparison table and a Vega-Lite chart of the metric
// against the swept param (rendered to SVG by the plot kind's renderer), self-contained, no errors, a screenshot.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, inkPixels, launchChromium, skipWithoutChromium, watchPage } from '../support/browser.js';
import { runPipe } from '../engine/helpers.js';
import { sweepWorkspace } from './helpers.js';

const ARTIFACT = fileURLToPath(new URL('../../artifacts/experiments.png', import.meta.url));
const skip = skipWithoutChromium('experiments Chromium test');

describe.skipIf(skip)(`pipe exp show --html in headless Chromium (${CHROMIUM ?? 'not on PATH'})`, () => {
  let context: BrowserContext;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ context, close } = await launchChromium({ width: 1000, height: 800 }));
  });

  afterAll(async () => {
    await close?.();
  });

  it('shows every variant in the table and charts the metric against the swept param; saves a screenshot', async () => {
    const ws = sweepWorkspace();
    try {
      expect((await runPipe(ws.dir, ['run', 'p.yaml'], ws.env())).code).toBe(0);
      expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'sweep', 'solo', '-j', '4'], ws.env(4))).code).toBe(1);
      // Into a folder that does not exist yet (on a fresh clone, out/ is not there after `pipe exp run`).
      const r = await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--html', 'reports/new/experiments.html']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/wrote reports\/new\/experiments\.html \(score against scale\)/);
      const bad = await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--html', 'x.html', '--metric', 'scroe']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--metric scroe: no such metric \(did you mean `score`\?\)/);

      const page = await context.newPage();
      const { problems, fetched } = watchPage(page);
      const url = pathToFileURL(join(ws.dir, 'reports/new/experiments.html')).href;
      await page.goto(url, { waitUntil: 'load' });
      expect(fetched).toEqual([url]); // self-contained

      const rows = await page.$$eval('tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
      expect(rows.map((x) => x[0])).toEqual(['workspace', expect.stringMatching(/^sweep-/), expect.stringMatching(/^sweep-/), expect.stringMatching(/^sweep-/), 'solo']);
      const header = await page.$$eval('thead th', (ths) => ths.map((t) => t.textContent));
      expect(header.slice(0, 4)).toEqual(['experiment', 'state', 'scale', 'score']);
      expect(rows.map((x) => x[3])).toEqual(['15', '30', '45', '-', '75']);
      expect(await page.$$eval('tbody tr.bad', (trs) => trs.length)).toBe(1);

      const charts = await page.$$eval('figure.chart', (fs) =>
        fs.map((f) => {
          const svg = f.querySelector('svg')!;
          const box = svg.getBoundingClientRect();
          return {
            param: f.getAttribute('data-param'),
            metric: f.getAttribute('data-metric'),
            width: box.width,
            height: box.height,
            points: svg.querySelectorAll('path[aria-roledescription="point"]').length,
            lines: svg.querySelectorAll('path[aria-roledescription="line mark"]').length,
            texts: [...svg.querySelectorAll('text')].map((t) => t.textContent),
            caption: f.querySelector('figcaption')?.textContent,
          };
        }),
      );
      expect(charts).toHaveLength(1);
      const c = charts[0]!;
      expect(c).toMatchObject({ param: 'scale', metric: 'score', points: 4, lines: 1, caption: 'score against scale: 3 variants and the workspace (◆)' });
      expect(c.width).toBeGreaterThan(300);
      expect(c.height).toBeGreaterThan(200);
      expect(c.texts).toEqual(expect.arrayContaining(['score vs scale', 'scale', 'score', 'workspace', 'variant']));
      expect(await inkPixels(await page.locator('figure.chart .plot').screenshot())).toBeGreaterThan(2000);

      mkdirSync(join(ARTIFACT, '..'), { recursive: true });
      await page.screenshot({ path: ARTIFACT, fullPage: true });
      expect((await sharp(readFileSync(ARTIFACT)).metadata()).width).toBeGreaterThanOrEqual(1000);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      ws.cleanup();
    }
  });
});
