// The review's workbook reader keeps to the stage's memory budget: it streams the sheets it needs and refuses, with
// one paragraph naming the limit and how to raise it, a workbook that is too large, has too many sheets, holds too
// many cells, or expands like a zip bomb (also one whose headers lie about the expanded size). Real .xlsx files,
// written by exceljs' streaming writer or byte by byte.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { beforeAll, describe, expect, test } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { readWorkbook, workbookLimits } from '../../stages/review/lib/workbook.js';
import { readXlsx } from '../../stages/review/lib/xlsx.js';
import { ROOT, WORKBOOK } from './helpers.js';
import { sheetXml, xlsxEntries, zipBuffer } from './zip-writer.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'review-limits-'));
});

/** The shape: 14 large sheets (a few MB of XML each), written without holding the workbook in memory. */
async function largeWorkbook(sheets: number, rows: number, cols: number): Promise<string> {
  const file = join(dir, `large-${sheets}x${rows}x${cols}.xlsx`);
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: file, useSharedStrings: false, useStyles: false });
  for (let s = 0; s < sheets; s++) {
    const ws = wb.addWorksheet(`Sheet ${s}`);
    ws.addRow(Array.from({ length: cols }, (_, c) => `Column ${c}`)).commit();
    for (let r = 0; r < rows; r++) ws.addRow(Array.from({ length: cols }, (_, c) => `row ${r} cell ${c} of sheet ${s}`)).commit();
    ws.commit();
  }
  await wb.commit();
  return file;
}

async function refusal(file: string, limits: ReturnType<typeof workbookLimits>): Promise<string> {
  try {
    await readWorkbook(file, 'in/big.xlsx', limits);
  } catch (e) {
    expect(e).toBeInstanceOf(StageError);
    const message = (e as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(/^review: in\/big\.xlsx: /);
    return message;
  }
  throw new Error('expected the workbook to be refused');
}

describe('bounds, each with the limit and how to raise it', () => {
  test('14 large sheets: refused on the decompressed XML within the budget, before holding them', async () => {
    const file = await largeWorkbook(14, 1500, 10); // ~1.3 MB of XML per sheet
    const message = await refusal(file, workbookLimits(16 * MiB)); // 2 MiB of XML allowed
    expect(message).toContain('the workbook expands to more than 2097152 bytes of XML');
    expect(message).toContain('where 2,097,152 bytes of XML is allowed');
    expect(message).toContain('`resources: { mem: 2G }`');
    // With a budget that covers it, the same file is read — only the 13 sheets the review addresses.
    const wb = await readWorkbook(file, 'in/big.xlsx', workbookLimits(1024 * MiB));
    expect(wb.sheetNames).toHaveLength(14);
    expect(wb.sheets).toHaveLength(13);
    expect(wb.sheets[12]!.rows).toHaveLength(1500);
  }, 60_000);
  test('too many sheets', async () => {
    const file = join(dir, 'many.xlsx');
    await writeFile(file, zipBuffer(xlsxEntries(Array.from({ length: 70 }, (_, i) => ({ name: `S${i}`, xml: sheetXml([['a']]) })))));
    const message = await refusal(file, workbookLimits(512 * MiB));
    expect(message).toContain('the workbook has more than 64 sheets, where 64 sheets is allowed');
    expect(message).toContain('raise `with.max_sheets`');
    expect((await readWorkbook(file, 'in/big.xlsx', workbookLimits(512 * MiB, 80))).sheetNames).toHaveLength(70);
  });
  test('file size', async () => {
    const file = await largeWorkbook(2, 2000, 8);
    const message = await refusal(file, { ...workbookLimits(512 * MiB), maxFileBytes: 50_000 });
    expect(message).toMatch(/the file is \d+ bytes, where a file of 50,000 bytes is allowed\. To read it, raise the review stage's memory budget/);
  });
  test('cells held: a wide header times many rows', async () => {
    const header = Array.from({ length: 300 }, (_, c) => `H${c}`);
    const rows = [header, ...Array.from({ length: 400 }, (_, r) => [`r${r}`])];
    const file = join(dir, 'wide.xlsx');
    await writeFile(file, zipBuffer(xlsxEntries([{ name: 'Wide', xml: sheetXml(rows) }])));
    const message = await refusal(file, workbookLimits(16 * MiB)); // 65,536 cells
    expect(message).toContain('the sheets read hold more than 65536 cells (reached at sheet "Wide", row 219)');
    expect(message).toContain('one cell per 256 bytes');
  });
  test('a zip bomb: 80 MB of XML in an 80 KB sheet part is refused before inflating', async () => {
    const bomb = Buffer.concat([Buffer.from(sheetXml([['a']]).replace('</sheetData>', '')), Buffer.alloc(80 * MiB, 0x20), Buffer.from('</sheetData></worksheet>')]);
    const file = join(dir, 'bomb.xlsx');
    await writeFile(file, zipBuffer(xlsxEntries([{ name: 'Bomb', xml: bomb }])));
    const t0 = Date.now();
    // The headers are honest: refused on the declared size, nothing decompressed.
    expect(await refusal(file, workbookLimits(512 * MiB))).toContain('the workbook expands to more than 67108864 bytes of XML (reached while reading xl/worksheets/sheet1.xml)');
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 60_000);
  test('a lying zip: headers declare 2 KB, the part expands to 24 MB', async () => {
    const xml = Buffer.concat([Buffer.from(sheetXml([['a']]).replace('</sheetData>', '')), Buffer.alloc(24 * MiB, 0x20), Buffer.from('</sheetData></worksheet>')]);
    const entries = xlsxEntries([{ name: 'Liar', xml }]);
    entries[2]!.declaredSize = 2048;
    const file = join(dir, 'liar.xlsx');
    await writeFile(file, zipBuffer(entries));
    // yauzl checks the real size against the header as it inflates: the part is refused after 2 KB, whatever the budget.
    const message = await refusal(file, workbookLimits(512 * MiB));
    expect(message).toContain('cannot read the workbook as .xlsx: xl/worksheets/sheet1.xml: too many bytes in the stream');
  }, 60_000);
});

describe('the reader on the authors\' workbook', () => {
  test('15 sheets listed, the 13 the review addresses read, far within the default budget', async () => {
    const raw = await readXlsx(`${ROOT}${WORKBOOK}`, workbookLimits(512 * MiB), 13);
    expect(raw.sheetNames).toHaveLength(15);
    expect(raw.sheets.map((s) => s.name)).toEqual(raw.sheetNames.slice(0, 13));
    // The smallest budget that still reads it: 16 MiB (2 MiB of XML, 65,536 cells).
    await expect(readWorkbook(`${ROOT}${WORKBOOK}`, WORKBOOK, workbookLimits(16 * MiB))).resolves.toBeTruthy();
  });
});
