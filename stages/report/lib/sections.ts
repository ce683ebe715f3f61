import { posix } from 'node:path';
import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';

/**
 * A headline number: the value at a JSON pointer in a JSON file — or in a CSV file, read as a list of typed rows —
 * optionally with an interval. `where` first picks the one row of a list whose columns equal the given values.
 */
export interface NumberSpec {
  label: string;
  file: string;
  pointer: string;
  where?: Record<string, string | number | boolean>;
  /** d3-format specifier, e.g. `.2%`, `,d`, `.4f`. */
  format?: string;
  /** Text after the value (and interval bounds), e.g. ` %` for a value already in percent. */
  suffix: string;
  low?: string;
  high?: string;
  /** What the interval is, e.g. `95% CI` (the default). */
  interval: string;
}

export interface FigureSpec {
  path: string;
  caption?: string;
}

export interface TableSpec {
  path: string;
  caption?: string;
  columns?: string[];
  /** Column → d3-format specifier; `*` = every other numeric column. */
  formats: Record<string, string>;
  maxRows?: number;
  /** Leading lines that are header rows (the authors' breakdown table has two). */
  headerRows: number;
}

/**
 * A table of what upstream run records say (ctx.record extras: timings, backend…) — provenance, not files, so
 * values that differ from run to run (seconds) never have to live in an output. One row per matching run.
 */
export interface RunsTableSpec {
  /** A stage name, or a declaration covering its expansions (`retrain-train` → `retrain-train@vindr_cxr`, …). */
  runs: string;
  caption?: string;
  /** Recorded key → column label, in column order. */
  fields: Array<[string, string]>;
  /** Recorded key → d3-format specifier. */
  formats: Record<string, string>;
}

export interface SectionSpec {
  title: string;
  text?: string;
  numbers: NumberSpec[];
  figures: FigureSpec[];
  tables: Array<TableSpec | RunsTableSpec>;
}

export const isRunsTable = (t: TableSpec | RunsTableSpec): t is RunsTableSpec => 'runs' in t;

/** Workspace-relative path in one spelling, so `./out/a.svg` and `out/a.svg` are the same input. */
export function normalizePath(p: string): string {
  return posix.normalize(p.replace(/\\/g, '/')).replace(/^\.\//, '');
}

/** Is `file` listed in `inputs`, directly or under a listed folder (`out/figures/`)? */
export function isListed(file: string, inputs: readonly string[]): boolean {
  const f = normalizePath(file);
  return inputs.some((i) => {
    const n = normalizePath(i);
    return i.endsWith('/') ? f.startsWith(n.endsWith('/') ? n : `${n}/`) : f === n;
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

class Invalid {
  constructor(readonly message: string) {}
}

/** Field readers that throw Invalid with the field's path, e.g. `sections[1] ("Evaluation").numbers[0].pointer`. */
function reader(where: string, o: Record<string, unknown>, known: readonly string[]) {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new Invalid(`${where} has an unknown field "${k}" (known: ${known.join(', ')})`);
  }
  const str = (k: string, required: boolean): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) throw new Invalid(`${where}.${k} is required`);
      return undefined;
    }
    if (typeof v !== 'string' || v.trim() === '') throw new Invalid(`${where}.${k} must be a non-empty string`);
    return v;
  };
  const list = (k: string): unknown[] => {
    const v = o[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new Invalid(`${where}.${k} must be a list`);
    return v;
  };
  return { str, list };
}

function checkPointer(where: string, p: string): void {
  if (p !== '' && !p.startsWith('/')) throw new Invalid(`${where} "${p}" is not a JSON pointer (it must start with /)`);
  if (/~[^01]|~$/.test(p)) throw new Invalid(`${where} "${p}" has a ~ that is not ~0 or ~1`);
}

function parseWhere(where: string, v: unknown): NumberSpec['where'] {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || Object.keys(v).length === 0 || !Object.values(v).every((x) => ['string', 'number', 'boolean'].includes(typeof x))) {
    throw new Invalid(`${where} must map column names to values, e.g. {model: vindr_cxr}`);
  }
  return v as Record<string, string | number | boolean>;
}

function parseNumber(where: string, v: unknown): NumberSpec {
  if (!isObj(v)) throw new Invalid(`${where} must be a mapping {label, file, pointer, where?, format?}`);
  const r = reader(where, v, ['label', 'file', 'pointer', 'where', 'format', 'suffix', 'low', 'high', 'interval']);
  const n: NumberSpec = {
    label: r.str('label', true)!,
    file: r.str('file', true)!,
    pointer: typeof v.pointer === 'string' ? v.pointer : r.str('pointer', true)!,
    format: r.str('format', false),
    suffix: typeof v.suffix === 'string' ? v.suffix : '',
    where: parseWhere(`${where}.where`, v.where),
    low: r.str('low', false),
    high: r.str('high', false),
    interval: r.str('interval', false) ?? '95% CI',
  };
  checkPointer(`${where}.pointer`, n.pointer);
  if ((n.low === undefined) !== (n.high === undefined)) throw new Invalid(`${where} needs both low and high, or neither`);
  if (n.low !== undefined) checkPointer(`${where}.low`, n.low);
  if (n.high !== undefined) checkPointer(`${where}.high`, n.high);
  return n;
}

function parseFigure(where: string, v: unknown): FigureSpec {
  let fig: FigureSpec;
  if (typeof v === 'string') fig = { path: v };
  else if (isObj(v)) {
    const r = reader(where, v, ['path', 'caption']);
    fig = { path: r.str('path', true)!, caption: r.str('caption', false) };
  } else throw new Invalid(`${where} must be a path or {path, caption?}`);
  if (!/\.(svg|png)$/i.test(fig.path)) throw new Invalid(`${where} "${fig.path}" must be an .svg or .png file`);
  return fig;
}

function parseRunsTable(where: string, v: Record<string, unknown>): RunsTableSpec {
  const r = reader(where, v, ['runs', 'caption', 'fields', 'formats']);
  const runs = r.str('runs', true)!;
  const f = v.fields;
  let fields: Array<[string, string]>;
  if (Array.isArray(f) && f.length > 0 && f.every((x) => typeof x === 'string' && x !== '')) fields = (f as string[]).map((k) => [k, k]);
  else if (isObj(f) && Object.keys(f).length > 0 && Object.values(f).every((x) => typeof x === 'string')) {
    fields = Object.entries(f as Record<string, string>);
  } else throw new Invalid(`${where}.fields must name the recorded values to show: a list of keys, or a mapping key → column label`);
  const formats = v.formats ?? {};
  if (!isObj(formats) || !Object.values(formats).every((x) => typeof x === 'string')) {
    throw new Invalid(`${where}.formats must map recorded keys to d3-format specifiers`);
  }
  const unknown = Object.keys(formats).filter((k) => !fields.some(([f]) => f === k));
  if (unknown.length > 0) throw new Invalid(`${where}.formats names ${unknown.map((k) => `"${k}"`).join(', ')}, which ${unknown.length > 1 ? 'are' : 'is'} not in fields`);
  return { runs, caption: r.str('caption', false), fields, formats: formats as Record<string, string> };
}

function parseTable(where: string, v: unknown): TableSpec | RunsTableSpec {
  if (typeof v === 'string') return { path: v, formats: {}, headerRows: 1 };
  if (isObj(v) && 'runs' in v) return parseRunsTable(where, v);
  if (!isObj(v)) throw new Invalid(`${where} must be a path, {path, caption?, columns?, formats?, maxRows?, headerRows?} or {runs, fields, caption?, formats?}`);
  const r = reader(where, v, ['path', 'caption', 'columns', 'formats', 'maxRows', 'headerRows']);
  const columns = v.columns === undefined ? undefined : r.list('columns');
  if (columns && !columns.every((c) => typeof c === 'string')) throw new Invalid(`${where}.columns must be a list of names`);
  const formats = v.formats ?? {};
  if (!isObj(formats) || !Object.values(formats).every((f) => typeof f === 'string')) {
    throw new Invalid(`${where}.formats must map column names to d3-format specifiers`);
  }
  const maxRows = v.maxRows;
  if (maxRows !== undefined && !(Number.isInteger(maxRows) && (maxRows as number) > 0)) {
    throw new Invalid(`${where}.maxRows must be a positive integer`);
  }
  const headerRows = v.headerRows ?? 1;
  if (!(Number.isInteger(headerRows) && (headerRows as number) >= 1 && (headerRows as number) <= 5)) {
    throw new Invalid(`${where}.headerRows must be an integer from 1 to 5`);
  }
  return {
    path: r.str('path', true)!,
    caption: r.str('caption', false),
    columns: columns as string[] | undefined,
    formats: formats as Record<string, string>,
    maxRows: maxRows as number | undefined,
    headerRows: headerRows as number,
  };
}

/**
 * Validate the free-form `sections` value and check that every file it references is a declared input — a file
 * read but not declared would not be hashed, so the report would not re-run when it changed.
 */
export function parseSections(value: unknown, inputs: readonly string[]): Result<SectionSpec[], string> {
  try {
    if (!Array.isArray(value) || value.length === 0) throw new Invalid('sections must be a non-empty list');
    const sections = value.map((s, i): SectionSpec => {
      let where = `sections[${i}]`;
      if (!isObj(s)) throw new Invalid(`${where} must be a mapping with a title`);
      if (typeof s.title === 'string') where = `${where} ("${s.title}")`;
      const r = reader(where, s, ['title', 'text', 'numbers', 'figures', 'tables']);
      return {
        title: r.str('title', true)!,
        text: r.str('text', false),
        numbers: r.list('numbers').map((n, j) => parseNumber(`${where}.numbers[${j}]`, n)),
        figures: r.list('figures').map((f, j) => parseFigure(`${where}.figures[${j}]`, f)),
        tables: r.list('tables').map((t, j) => parseTable(`${where}.tables[${j}]`, t)),
      };
    });
    for (const [i, s] of sections.entries()) {
      const refs: Array<[string, string]> = [
        ...s.numbers.map((n, j): [string, string] => [`numbers[${j}].file`, n.file]),
        ...s.figures.map((f, j): [string, string] => [`figures[${j}]`, f.path]),
        ...s.tables.flatMap((t, j): Array<[string, string]> => (isRunsTable(t) ? [] : [[`tables[${j}]`, t.path]])),
      ];
      for (const [field, file] of refs) {
        if (!isListed(file, inputs)) {
          throw new Invalid(
            `sections[${i}] ("${s.title}").${field} references ${file}, which is not listed in with.inputs; ` +
              `add it there so that the report re-runs when it changes`,
          );
        }
      }
    }
    return ok(sections);
  } catch (e) {
    if (e instanceof Invalid) return err(e.message);
    throw e;
  }
}
