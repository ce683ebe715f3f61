import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../stages/report/run.js';
import { CHROMIUM, inkPixels, launchChromium, skipWithoutChromium, watchPage } from '../support/browser.js';
import { HOSTILE_SVG, reportCtx, reportWith, reportWorkspace } from './fixture.js';

// Found as .ci/run finds it (`command -v chromium`); under CI a missing browser fails the suite, it is not skipped.
const skip = skipWithoutChromium('report Chromium test');
const ARTIFACT = fileURLToPath(new URL('../../artifacts/report.png', import.meta.url));
const HOSTILE_ARTIFACT = fileURLToPath(new URL('../../artifacts/report-hostile.png', import.meta.url));

/** What a page did that it must not: dialogs, console markers, page errors, and every request it made. */
interface Watch {
  dialogs: string[];
  markers: string[];
  requests: string[];
}

/**
 * Open `file` with the network blocked (offline, and every request but the page itself aborted — and recorded),
 * then do what a reader does: hover and click the figures. Returns what ran.
 */
async function openHostile(context: BrowserContext, file: string): Promise<{ page: Page; watch: Watch }> {
  const page = await context.newPage();
  const url = pathToFileURL(file).href;
  const watch: Watch = { dialogs: [], markers: [], requests: [] };
  page.on('dialog', (d) => {
    watch.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.text().includes('PWNED')) watch.markers.push(m.text());
  });
  page.on('request', (r) => {
    if (r.url() !== url && !r.url().startsWith('data:image/')) watch.requests.push(r.url());
  });
  await page.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
  await page.goto(url, { waitUntil: 'load' });
  for (const circle of await page.locator('svg circle').all()) await circle.hover({ force: true });
  for (const bait of await page.getByText('click me').all()) await bait.click({ force: true, noWaitAfter: true }).catch(() => undefined);
  await page.waitForTimeout(500);
  return { page, watch };
}

describe.skipIf(skip)(`report.html in headless Chromium (${CHROMIUM ?? 'not on PATH'})`, () => {
  let context: BrowserContext;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ context, close } = await launchChromium({ width: 1100, height: 900 }));
  });

  afterAll(async () => {
    await close?.();
  });

  it('renders every figure, table and number with no errors and no network, and saves a screenshot', async () => {
    const ws = await reportWorkspace();
    await run(reportCtx(ws));
    const page = await context.newPage();
    const { problems, fetched } = watchPage(page);

    const url = pathToFileURL(join(ws, 'out/report/report.html')).href;
    await page.goto(url, { waitUntil: 'load' });

    // The only load is the page itself (the PNG figure is a data: URI): self-contained.
    expect(fetched.filter((u) => !u.startsWith('data:'))).toEqual([url]);

    const figures = await page.$$eval('figure', (els) =>
      els.map((f) => {
        const svg = f.querySelector('svg');
        const img = f.querySelector('img');
        const box = (svg ?? img)!.getBoundingClientRect();
        const texts = svg ? [...svg.querySelectorAll('text')].filter((t) => t.getBBox().width > 0 && (t.textContent ?? '').trim() !== '') : [];
        const bars = svg
          ? [...svg.querySelectorAll('path[aria-roledescription="bar"]')].filter((b) => {
              const r = (b as unknown as { getBBox(): { width: number; height: number } }).getBBox();
              return r.width > 0 && r.height > 0;
            })
          : [];
        return {
          source: f.getAttribute('data-source'),
          kind: svg ? 'svg' : 'img',
          width: box.width,
          height: box.height,
          imgLoaded: img ? img.complete && img.naturalWidth > 0 && img.naturalHeight > 0 : null,
          texts: texts.map((t) => t.textContent),
          bars: bars.length,
        };
      }),
    );
    expect(figures.map((f) => [f.source, f.kind])).toEqual([
      ['out/review/figures/counts.png', 'img'],
      ['out/eval/figures/fpr_children.svg', 'svg'],
      ['out/review/figures/counts.svg', 'svg'],
    ]);
    for (const f of figures) {
      expect(f.width, `${f.source} width`).toBeGreaterThan(100);
      expect(f.height, `${f.source} height`).toBeGreaterThan(100);
    }
    expect(figures[0]!.imgLoaded).toBe(true);
    expect(figures[1]!.bars).toBe(4);
    expect(figures[2]!.bars).toBe(4);
    expect(figures[1]!.texts).toContain('FPR in healthy children');
    expect(figures[2]!.texts).toContain('Children per model');

    // Each figure's pixels, as Chromium painted them, hold ink (marks and text), not an empty frame.
    const shots = await page.locator('figure .plot, figure img').all();
    expect(shots).toHaveLength(3);
    for (const s of shots) expect(await inkPixels(await s.screenshot())).toBeGreaterThan(2000);

    const text = await page.innerText('body');
    for (const t of ['Age bias in chest X-ray classifiers', '30.40%', '95% CI 28.19%–32.66%', '512,608', 'Provenance', 'backend: wasm']) {
      expect(text).toContain(t);
    }
    expect(await page.$$eval('table', (ts) => ts.map((t) => t.querySelectorAll('tbody tr').length))).toEqual([2, 3, 3, 3]);

    mkdirSync(join(ARTIFACT, '..'), { recursive: true });
    const png = await page.screenshot({ path: ARTIFACT, fullPage: true });
    const meta = await sharp(png).metadata();
    expect(meta.width).toBe(1100);
    expect(meta.height).toBeGreaterThan(900);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('runs no script from a hostile SVG figure, with the network blocked (issue 11.20), and saves a screenshot', async () => {
    const ws = await reportWorkspace();
    writeFileSync(join(ws, 'out/eval/figures/hostile.svg'), HOSTILE_SVG);
    // The same figure with a stylesheet: embedded as an image (its rules stay inside it), scripts stripped all the same.
    writeFileSync(join(ws, 'out/eval/figures/hostile-styled.svg'), HOSTILE_SVG.replace('<defs>', '<style>text { fill: #036 }</style><defs>'));
    const w = reportWith({
      inputs: ['out/eval/figures/'],
      sections: [{ title: 'Hostile figures', figures: ['out/eval/figures/hostile.svg', 'out/eval/figures/hostile-styled.svg'] }],
    });
    const ctx = reportCtx(ws, w);
    await run(ctx);
    expect(ctx.logs.filter((l) => l.includes('removed from the figure'))).toHaveLength(2);
    const report = join(ws, 'out/report/report.html');

    // Control: the raw figure inline in a page of its own does run script here (the payloads are live).
    writeFileSync(join(ws, 'raw.html'), `<!DOCTYPE html><html><body>${HOSTILE_SVG.replace(/^<\?xml[^>]*>\s*/, '')}</body></html>`);
    const raw = await openHostile(context, join(ws, 'raw.html'));
    expect(raw.watch.dialogs).toEqual(expect.arrayContaining(['svg-onload', 'script', 'img-onerror']));
    expect(raw.watch.markers.length).toBeGreaterThanOrEqual(3);
    await raw.page.close();

    // The report: nothing runs, nothing is fetched, and the figures are still drawn.
    const { page, watch } = await openHostile(context, report);
    expect(watch).toEqual({ dialogs: [], markers: [], requests: [] });
    const kinds = await page.$$eval('figure', (fs) => fs.map((f) => (f.querySelector('svg') ? 'svg' : f.querySelector('img') ? 'img' : 'none')));
    expect(kinds).toEqual(['svg', 'img']);
    expect(await page.$$eval('figure img', (is) => is.map((i) => (i as HTMLImageElement).naturalWidth))).toEqual([320]);
    expect(await inkPixels(await page.locator('figure .plot').first().screenshot())).toBeGreaterThan(2000);
    mkdirSync(join(HOSTILE_ARTIFACT, '..'), { recursive: true });
    await page.screenshot({ path: HOSTILE_ARTIFACT, fullPage: true });
    await page.close();

    // The sanitiser alone (the page's Content-Security-Policy removed) is enough.
    const html = readFileSync(report, 'utf8');
    const noCsp = html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '');
    expect(noCsp).not.toEqual(html);
    writeFileSync(join(ws, 'out/report/no-csp.html'), noCsp);
    const bare = await openHostile(context, join(ws, 'out/report/no-csp.html'));
    expect(bare.watch).toEqual({ dialogs: [], markers: [], requests: [] });
    await bare.page.close();
  });
});
