// The review/analyze kind end to end through its run(ctx), with a hand-built context on a temp workspace.
import { copyFile, mkdir, mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { fakeContext } from '../support/context.js';
import { manifest } from '../../stages/review/analyze/manifest.js';
import { run, type AnalyzeWith } from '../../stages/review/analyze/run.js';
import { csvRecords, ROOT, WORKBOOK } from './helpers.js';

async function workspace(): Promise<string> {
  const ws = await mkdtemp(join(tmpdir(), 'review-ws-'));
  await mkdir(join(ws, 'in'), { recursive: true });
  await copyFile(join(ROOT, WORKBOOK), join(ws, 'in', 'workbook.xlsx'));
  return ws;
}

function context(ws: string, w: Partial<AnalyzeWith>) {
  const ctx = fakeContext<AnalyzeWith>(ws, { workbook: 'in/workbook.xlsx', out: 'out/review/data/', exclude_cancer: false, top_countries: 3, ...w } as AnalyzeWith, {
    stage: 'review',
    pipeline: { file: 'pipelines/paper.yaml', name: 'paper', pipeVersion: '0.0.0-test' },
    cpus: 1,
    memBytes: 1 << 29,
  });
  return { ctx, logs: ctx.logs, records: ctx.records, progress: ctx.progressUpdates };
}

describe('manifest', () => {
  test('declares the workbook as a dep and the output directory as an out', () => {
    expect(manifest.kind).toBe('review/analyze');
    expect(manifest.with.workbook).toMatchObject({ type: 'path', role: 'dep' });
    expect(manifest.with.out).toMatchObject({ type: 'path', role: 'out' });
    expect(String(manifest.with.out!.default)).toMatch(/\/$/);
    expect(manifest.with.exclude_cancer).toMatchObject({ type: 'boolean', default: false });
  });
});

describe('run(ctx)', () => {
  test('writes every output under with.out and logs the totals', async () => {
    const ws = await workspace();
    const { ctx, logs, records, progress } = context(ws, {});
    await run(ctx);
    const out = join(ws, 'out/review/data');
    expect((await readdir(out)).sort()).toEqual([
      'age_documented_how.csv', 'breakdown.csv', 'breakdown_by_modality_and_task.csv', 'countries.csv',
      'countries_all.csv', 'modalities.csv', 'peds_datasets', 'printed.json', 'review.json', 'summary_stats.csv',
      'summary_stats.json', 'task_categories.csv',
    ]);
    expect((await readdir(join(out, 'peds_datasets'))).sort()).toEqual(['ct.csv', 'fundus.csv', 'mri.csv', 'us.csv', 'x-ray.csv']);
    const total = csvRecords(await readFile(join(out, 'summary_stats.csv'), 'utf8')).find((r) => r.index === 'Total');
    expect(total).toMatchObject({ num_datasets_total: '203', num_datasets_filtered: '135', num_total: '512608', num_children: '6026', perc_children: '1.18' });
    expect(logs[0]).toBe('203 datasets, 135 with usable counts, 512,608 patients, 6,026 children (1.18 %)');
    expect(records).toMatchObject({ review_totals: { datasets: 203, usable: 135 }, review_warnings: 0 });
    expect(progress.at(-1)).toMatchObject({ done: 16, total: 16, unit: 'files' });
  });
  test('a bad option and a missing workbook are StageErrors', async () => {
    const ws = await workspace();
    await expect(run(context(ws, { top_countries: 0 }).ctx)).rejects.toThrow(StageError);
    await expect(run(context(ws, { workbook: 'in/nope.xlsx' }).ctx)).rejects.toThrow(/in\/nope\.xlsx: cannot read the workbook/);
  });
  test('the workbook is read within the stage\'s memory budget; a budget too small for it is a clear refusal', async () => {
    const ws = await workspace();
    const { ctx } = context(ws, {});
    await expect(run({ ...ctx, resources: { ...ctx.resources, memBytes: 4 * 1024 * 1024 } })).rejects.toThrow(
      /^review: in\/workbook\.xlsx: the workbook is too large to read within the stage's limits: .* where 524,288 bytes of XML is allowed\. To read it, raise the review stage's memory budget \(`resources: \{ mem: 2G \}` on the stage/,
    );
    await expect(run(context(ws, { max_sheets: 14 }).ctx)).rejects.toThrow(/has more than 14 sheets, where 14 sheets is allowed\. To read it, raise `with\.max_sheets`/);
    await expect(run(context(ws, { max_sheets: 5 }).ctx)).rejects.toThrow('review: with.max_sheets must be an integer of at least 13');
  });
  test('a cancelled stage writes nothing', async () => {
    const ws = await workspace();
    const c = context(ws, {});
    const abort = new AbortController();
    abort.abort();
    await run({ ...c.ctx, signal: abort.signal });
    await expect(readdir(join(ws, 'out'))).rejects.toThrow();
  });
});
