// The review fragment through the real CLI (`node bin/pipe.js run`, built by the global setup) on a temp workspace:
// the review and its five figures, the cache on a second run, a param change, and a bad workbook's error.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { countMarks, ROOT, WORKBOOK } from './helpers.js';
import { miniSheets, writeWorkbook } from './mini-workbook.js';
import { pipe } from '../support/cli.js';

const FIGURES = ['age_documented_how', 'breakdown', 'countries', 'modalities', 'task_categories'];

/** A workspace laid out like the repo: the workbook, the fragment, the specs, and a main file including it. */
function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'review-pipe-'));
  for (const dir of ['data/seed/metadata', 'pipelines/paper', 'pipelines/figures']) mkdirSync(join(ws, dir), { recursive: true });
  copyFileSync(join(ROOT, WORKBOOK), join(ws, WORKBOOK));
  copyFileSync(join(ROOT, 'pipelines/paper/review.yaml'), join(ws, 'pipelines/paper/review.yaml'));
  for (const f of readdirSync(join(ROOT, 'pipelines/figures')).filter((f) => f.startsWith('review-'))) {
    copyFileSync(join(ROOT, 'pipelines/figures', f), join(ws, 'pipelines/figures', f));
  }
  writeFileSync(join(ws, 'pipelines/paper.yaml'), 'name: paper\nworkdir: ..\ninclude: [paper/review.yaml]\n');
  return ws;
}

describe('pipe run with pipelines/paper/review.yaml', () => {
  let ws: string;
  let first: ReturnType<typeof pipe>;
  beforeAll(() => {
    ws = workspace();
    first = pipe(ws, ['run', 'pipelines/paper.yaml']);
  });

  test('runs the review and renders every figure to SVG and PNG', () => {
    expect(first.code, first.out).toBe(0);
    const summary = readFileSync(join(ws, 'out/review/data/summary_stats.csv'), 'utf8');
    expect(summary).toContain('Total,34,181,203,135,512608,6026,1.18\n');
    for (const f of FIGURES) {
      expect(existsSync(join(ws, `out/review/figures/${f}.svg`)), f).toBe(true);
      expect(existsSync(join(ws, `out/review/figures/${f}.png`)), f).toBe(true);
    }
    const breakdown = readFileSync(join(ws, 'out/review/figures/breakdown.svg'), 'utf8');
    expect(countMarks(breakdown, 'rect')).toBe(50);
    const modalities = readFileSync(join(ws, 'out/review/figures/modalities.svg'), 'utf8');
    expect(countMarks(modalities, 'rect')).toBe(5);
  });

  test('a second run is all cache hits; a param change re-runs only what depends on it', () => {
    const again = pipe(ws, ['run', 'pipelines/paper.yaml']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/6 up-to-date/);
    // --json: the engine's typed events, not the human renderer's wording.
    const changed = pipe(ws, ['run', 'pipelines/paper.yaml', '--json', '-S', 'review.exclude_cancer=true']);
    expect(changed.code, changed.out).toBe(0);
    const ran = new Set(
      changed.out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { type: string; stage?: string; status?: string })
        .filter((e) => e.type === 'stage-end' && e.status === 'ran')
        .map((e) => e.stage),
    );
    expect(ran.has('review')).toBe(true);
    // The age-documentation data does not depend on the cancer filter: its figure stays up to date.
    expect(ran.has('review-fig@age_documented_how')).toBe(false);
    expect(ran.has('review-fig@modalities')).toBe(true);
    expect(readFileSync(join(ws, 'out/review/data/modalities.csv'), 'utf8')).toContain('CT,31,66,46.97,0');
  });
});

test('a bad workbook fails the stage with one paragraph naming sheet, row and column, no stack trace', async () => {
  const ws = workspace();
  const sheets = miniSheets();
  sheets.find((s) => s.name === 'Challenges')!.rows[0]!['Sample Size'] = 'Patients: lots';
  copyFileSync(await writeWorkbook(sheets), join(ws, WORKBOOK));
  const r = pipe(ws, ['run', 'pipelines/paper.yaml']);
  expect(r.code).not.toBe(0);
  expect(r.out).toContain('sheet "Challenges", row 2, column "Sample Size"');
  expect(r.out).not.toMatch(/\n\s+at .*\.js:\d+/);
});
