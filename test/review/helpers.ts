// Shared helpers of the review suites: the vendored workbook, a CSV reader with per-column type inference (as the
// plot stage reads data files), and rendering a Vega-Lite spec to SVG with vega directly.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { readWorkbook } from '../../stages/review/lib/workbook.js';
import type { Workbook } from '../../stages/review/lib/types.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WORKBOOK = 'data/seed/metadata/public_datasets_metadata.xlsx';

let cached: Promise<Workbook> | undefined;
/** The authors' workbook, read once per suite. */
export function seedWorkbook(): Promise<Workbook> {
  cached ??= readWorkbook(`${ROOT}${WORKBOOK}`, WORKBOOK);
  return cached;
}

/** CSV text → records of strings (header row is the keys). */
export function csvRecords(text: string): Record<string, string>[] {
  return parse(text, { columns: true, skip_empty_lines: true }) as Record<string, string>[];
}

/** CSV text → rows with one type per column (numbers where every non-empty cell is a number). */
export function csvRows(text: string): Record<string, unknown>[] {
  const records = csvRecords(text);
  const columns = Object.keys(records[0] ?? {});
  const numeric = new Set(
    columns.filter((c) => records.every((r) => r[c] === '' || /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(r[c]!))),
  );
  return records.map((r) =>
    Object.fromEntries(columns.map((c) => [c, r[c] === '' ? null : numeric.has(c) ? Number(r[c]) : r[c]])),
  );
}

/** Compile a Vega-Lite spec file and render it with named datasets to an SVG string. */
export async function renderSpec(specPath: string, datasets: Record<string, unknown[]>): Promise<string> {
  const spec = JSON.parse(await readFile(`${ROOT}${specPath}`, 'utf8')) as vl.TopLevelSpec;
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  for (const [name, rows] of Object.entries(datasets)) view.data(name, rows as object[]);
  await view.runAsync();
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Number of items drawn by the mark group(s) of a type (`rect`, `text`...) that have the `role-mark` class. */
export function countMarks(svg: string, markType: string): number {
  let count = 0;
  const re = new RegExp(`<g class="mark-${markType} role-mark[^"]*"[^>]*>`, 'g');
  for (const m of svg.matchAll(re)) {
    const start = m.index! + m[0].length;
    const end = svg.indexOf('</g>', start);
    const body = svg.slice(start, end);
    count += (body.match(markType === 'text' ? /<text/g : /<path/g) ?? []).length;
  }
  return count;
}
