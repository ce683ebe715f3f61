/**
 * Headless Chromium for the suites that look at a page as a reader would (the report, `exp show --html`): found as
 * `.ci/run` finds it (on PATH), started with a fresh profile, and a page watched for what it must not do.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { onPath, requireTools } from './tools.js';

export const CHROMIUM = onPath('chromium');

/** Under CI a missing browser fails the suite (it is not skipped); elsewhere it is skipped with a warning. */
export function skipWithoutChromium(suite: string): boolean {
  if (!CHROMIUM && !requireTools) console.warn(`${suite} skipped: no chromium on PATH (Debian package "chromium")`);
  return !CHROMIUM && !requireTools;
}

/** A browser with its own fresh profile (a persistent context is how playwright takes --user-data-dir). */
export async function launchChromium(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!CHROMIUM) throw new Error('chromium is not on PATH, and CI requires the browser tests (Debian package "chromium"; .ci/run installs it)');
  const profile = mkdtempSync(join(tmpdir(), 'pipe-chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 90_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What a page reported going wrong (console errors and warnings, page errors, failed requests) and every URL it fetched. */
export function watchPage(page: Page): { problems: string[]; fetched: string[] } {
  const problems: string[] = [];
  const fetched: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => fetched.push(r.url()));
  return { problems, fetched };
}

/** Pixels that are not (near) white in a PNG: a rendered figure has many, an empty box has none. */
export async function inkPixels(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i]! < 200 || data[i + 1]! < 200 || data[i + 2]! < 200) n++;
  return n;
}
