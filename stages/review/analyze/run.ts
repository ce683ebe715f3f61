import { join } from 'node:path';
import { StageError, type StageContext } from '../../../engine/stage-api.js';
import { analyzeWorkbook } from '../lib/analyze.js';
import { DEFAULT_MAX_SHEETS, readWorkbook, workbookLimits } from '../lib/workbook.js';
import { writeFileAtomic } from '../../lib/atomic-write.js';

export interface AnalyzeWith {
  workbook: string;
  out: string;
  exclude_cancer: boolean;
  top_countries: number;
  max_sheets: number;
}

export async function run(ctx: StageContext<AnalyzeWith>): Promise<void> {
  const { workbook, out, exclude_cancer: excludeCancer, top_countries: topCountries } = ctx.with;
  const maxSheets = ctx.with.max_sheets ?? DEFAULT_MAX_SHEETS;
  if (!Number.isInteger(topCountries) || topCountries < 1) {
    throw new StageError(`${ctx.stage}: with.top_countries must be a positive integer, got ${String(topCountries)}.`);
  }
  if (!Number.isInteger(maxSheets) || maxSheets < 13) {
    throw new StageError(`${ctx.stage}: with.max_sheets must be an integer of at least 13 (the review reads 13 sheets), got ${String(maxSheets)}.`);
  }
  ctx.progress({ message: `reading ${workbook}` });
  // The workbook is streamed within the stage's memory budget (the kind declares 512 MB; `resources: { mem }` raises it).
  const wb = await readWorkbook(ctx.resolve(workbook), workbook, workbookLimits(ctx.resources.memBytes, maxSheets));
  ctx.progress({ message: 'analysing' });
  const result = analyzeWorkbook(wb, { excludeCancer, topCountries });
  if (ctx.signal.aborted) return;

  const names = Object.keys(result.files);
  let done = 0;
  for (const name of names) {
    if (ctx.signal.aborted) return;
    await writeFileAtomic(join(ctx.resolve(out), name), result.files[name]!);
    ctx.progress({ done: ++done, total: names.length, unit: 'files' });
  }

  const t = result.totals;
  ctx.log(
    `${t.datasets} datasets, ${t.usable} with usable counts, ${t.patients.toLocaleString('en-US')} patients, ` +
      `${t.children.toLocaleString('en-US')} children (${t.perc_children ?? 'n/a'} %)`,
  );
  for (const w of result.warnings) {
    ctx.log(`warning: sheet "${w.sheet}", row ${w.row}, column "${w.column}": ${w.message}`);
  }
  ctx.record({ review_totals: t, review_warnings: result.warnings.length });
}
