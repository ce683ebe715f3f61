import { readStageInput } from '../../../engine/stage-api.js';
import { basename, extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';
import { parseJsonText } from './json-text.js';

export type Cell = string | number | boolean | null;
export type Row = Record<string, unknown>;

/** The dataset name a data file is known by in a spec: its basename without the (last) extension. */
export function datasetName(relPath: string): string {
  const base = basename(relPath);
  const ext = extname(base);
  return ext ? base.slice(0, -ext.length) : base;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const BOOLEAN = /^(true|false)$/i;

export type ColumnKind = 'number' | 'boolean' | 'string' | 'empty';

/**
 * One type per column (not per cell), so a column of "1", "2", "n/a" stays text instead of mixing numbers and
 * strings. `records` are data rows (no header); a column with no non-empty cell is `empty`.
 */
export function columnKinds(width: number, records: readonly string[][]): ColumnKind[] {
  return Array.from({ length: width }, (_, c) => {
    let numeric = true;
    let boolean = true;
    let any = false;
    for (const r of records) {
      const v = (r[c] ?? '').trim();
      if (v === '') continue;
      any = true;
      if (numeric && !NUMBER.test(v)) numeric = false;
      if (boolean && !BOOLEAN.test(v)) boolean = false;
      if (!numeric && !boolean) break;
    }
    return !any ? 'empty' : numeric ? 'number' : boolean ? 'boolean' : 'string';
  });
}

/** A cell as its column's type; empty cells are null whatever the column's type. */
export function typedCell(raw: string, kind: ColumnKind): Cell {
  const v = raw.trim();
  if (v === '') return null;
  if (kind === 'number') return Number(v);
  if (kind === 'boolean') return v.toLowerCase() === 'true';
  return raw;
}

/** Rows as objects keyed by the header, typed per column. */
export function inferColumns(header: string[], records: string[][]): Row[] {
  const kinds = columnKinds(header.length, records);
  return records.map((r) => {
    const row: Row = {};
    header.forEach((name, c) => {
      row[name] = typedCell(r[c] ?? '', kinds[c]!);
    });
    return row;
  });
}

/** CSV text → records (header included), all rows the same width. Errors say the line. */
export function parseCsvRecords(text: string): Result<string[][], string> {
  try {
    return ok(parseCsv(text, { bom: true, skip_empty_lines: true, relax_column_count: false }) as string[][]);
  } catch (e) {
    // csv-parse's messages already say "on line N".
    return err((e as Error).message.replace(/^Invalid Record Length: /, 'wrong number of fields: '));
  }
}

/** CSV text → typed rows. Errors name the line (and column where csv-parse knows it). */
export function parseCsvRows(text: string): Result<{ columns: string[]; rows: Row[] }, string> {
  const parsed = parseCsvRecords(text);
  if (!parsed.ok) return parsed;
  const records = parsed.value;
  if (records.length === 0) return ok({ columns: [], rows: [] });
  const header = records[0]!.map((h) => h.trim());
  const seen = new Set<string>();
  for (const [i, h] of header.entries()) {
    if (h === '') return err(`line 1: column ${i + 1} has an empty header`);
    if (seen.has(h)) return err(`line 1: column name "${h}" appears twice`);
    seen.add(h);
  }
  return ok({ columns: header, rows: inferColumns(header, records.slice(1)) });
}

/**
 * JSON value → rows: an array as-is; an object's `rows`/`values`/`data` array (the usual wrappers); any other
 * object is one row.
 */
export function jsonRows(value: unknown): Result<Row[], string> {
  const objects = (rows: unknown[], where: string): Result<Row[], string> => {
    const bad = rows.findIndex((r) => r === null || typeof r !== 'object' || Array.isArray(r));
    return bad < 0 ? ok(rows as Row[]) : err(`${where}[${bad}] is ${JSON.stringify(rows[bad])?.slice(0, 60)}, not an object (a row)`);
  };
  if (Array.isArray(value)) return objects(value, 'item');
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of ['rows', 'values', 'data']) if (Array.isArray(o[k])) return objects(o[k] as unknown[], `"${k}"`);
    return ok([o]);
  }
  return err(`holds a ${value === null ? 'null' : typeof value}, not an array of rows or an object`);
}

/** Parse a data file by its extension (.csv/.tsv or .json). The error text names the file. */
export function parseDataText(relPath: string, text: string): Result<Row[], string> {
  const ext = extname(relPath).toLowerCase();
  if (ext === '.csv') {
    const r = parseCsvRows(text);
    return r.ok ? ok(r.value.rows) : err(`${relPath}: ${r.error}`);
  }
  if (ext === '.json') {
    const j = parseJsonText(text);
    if (!j.ok) return err(`${relPath}:${j.error.line}:${j.error.column}: invalid JSON: ${j.error.message}`);
    const r = jsonRows(j.value);
    return r.ok ? r : err(`${relPath}: ${r.error}`);
  }
  return err(`${relPath}: unsupported data file type "${ext || '(none)'}" (use .csv or .json)`);
}

/** Read every data file into a name → rows map; two files with the same dataset name are an error. */
export async function loadDatasets(
  files: readonly string[],
  resolve: (rel: string) => string,
): Promise<Result<Map<string, Row[]>, string>> {
  const out = new Map<string, Row[]>();
  const from = new Map<string, string>();
  for (const rel of files) {
    const name = datasetName(rel);
    const prev = from.get(name);
    if (prev !== undefined) {
      return err(`${prev} and ${rel} both give the dataset name "${name}"; rename one of them`);
    }
    let text: string;
    try {
      text = (await readStageInput(resolve(rel), 'data file', rel)).toString('utf8');
    } catch (e) {
      return err((e as Error).message);
    }
    const rows = parseDataText(rel, text);
    if (!rows.ok) return rows;
    out.set(name, rows.value);
    from.set(name, rel);
  }
  return ok(out);
}
