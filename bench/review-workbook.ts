/**
 * Memory of the review's workbook reader: peak RSS reading a generated workbook in the shape (14 large sheets,
 * ~50 MB of sheet XML) with the streaming reader (stages/review/lib/xlsx.ts) at the kind's 512 MiB budget, against
 * the exceljs whole-workbook reader it replaced. Each read runs in a fresh child process. Target: the streaming reader
 * stays under the kind's declared 512 MiB.
 *
 *   npm run bench -- review-workbook [rows-per-sheet]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ExcelJS from 'exceljs';

const rows = Number(process.argv[2] ?? 2500);
const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'pipe-bench-wb-'));
const file = path.join(dir, 'large.xlsx');

const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: file, useSharedStrings: true, useStyles: false });
for (let s = 0; s < 14; s++) {
  const ws = wb.addWorksheet(`Sheet ${s}`);
  ws.addRow(Array.from({ length: 12 }, (_, c) => `Column ${c}`)).commit();
  for (let r = 0; r < rows; r++) ws.addRow(Array.from({ length: 12 }, (_, c) => `row ${r} cell ${c} of sheet ${s} ${'x'.repeat(c * 4)}`)).commit();
  ws.commit();
}
await wb.commit();

/** Peak RSS (MB) of a child process that reads the workbook with `code` and prints how many rows it got. */
function peak(code: string): { mb: number; out: string; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    `${code}\nconsole.log('RSS', process.resourceUsage().maxRSS);`], { cwd: root, encoding: 'utf8', env: { ...process.env, WB: file } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(r.stderr);
  const kb = Number(/RSS (\d+)/.exec(r.stdout)![1]);
  return { mb: kb / 1024, out: r.stdout.split('\n')[0]!, ms };
}

const streaming = peak(`
import { readWorkbook, workbookLimits } from './stages/review/lib/workbook.ts';
const w = await readWorkbook(process.env.WB, 'large.xlsx', workbookLimits(512 * 1024 * 1024));
console.log('rows', w.sheets.reduce((n, s) => n + s.rows.length, 0));`);
const exceljs = peak(`
import ExcelJS from 'exceljs';
const w = new ExcelJS.Workbook();
await w.xlsx.readFile(process.env.WB);
console.log('rows', w.worksheets.reduce((n, s) => n + s.rowCount, 0));`);

console.log(`# ${(statSync(file).size / 1e6).toFixed(1)} MB file, 14 sheets x ${rows} rows (${streaming.out}, exceljs ${exceljs.out})`);
console.log(`BENCH review_workbook_peak_rss ${streaming.mb.toFixed(0)} MB vs exceljs ${exceljs.mb.toFixed(0)} ${(exceljs.mb / streaming.mb).toFixed(2)}`);
console.log(`BENCH review_workbook_read_time ${(streaming.ms / 1000).toFixed(2)} s vs exceljs ${(exceljs.ms / 1000).toFixed(2)} ${(exceljs.ms / streaming.ms).toFixed(2)}`);
rmSync(dir, { recursive: true, force: true });
