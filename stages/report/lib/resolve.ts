import * as vega from 'vega';
import { readBounded, StageError, type BoundedRead, type UpstreamRun } from '../../../engine/stage-api.js';
import { columnKinds, parseCsvRecords, parseCsvRows, typedCell } from '../../plot/lib/datasets.js';
import { parseJsonText } from '../../plot/lib/json-text.js';
import { resolvePointer, selectRow } from './json-pointer.js';
import type { ResolvedFigure, ResolvedNumber, ResolvedSection, ResolvedTable } from './model.js';
import { slugger } from './model.js';
import type { FigureSpec, NumberSpec, RunsTableSpec, SectionSpec, TableSpec } from './sections.js';
import { isRunsTable } from './sections.js';
import { sanitizeSvg } from './svg-sanitize.js';

/** vega re-exports d3-format's locale (vega-format); its typings omit it. */
const numberLocale = (vega as unknown as { defaultLocale(): { format(spec: string): (n: number) => string } }).defaultLocale();

/**
 * Bound on one file a section reads: a report input is a summary (a table, a figure, a metrics JSON), and a page
 * that embeds more than this does not open. Not a setting: summarise a bigger file in an upstream stage.
 */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

/** Reads the files a section references, through a per-run cache (a JSON file often feeds several numbers). */
export class SectionResolver {
  private readonly texts = new Map<string, Promise<BoundedRead>>();
  private readonly json = new Map<string, unknown>();

  /** `log` gets one line per figure the sanitiser changed (what it removed); `upstream` feeds `runs` tables. */
  constructor(
    private readonly resolvePath: (rel: string) => string,
    private readonly log: (line: string) => void = () => undefined,
    private readonly upstream: readonly UpstreamRun[] = [],
  ) {}

  private async read(rel: string, where: string): Promise<Buffer> {
    let p = this.texts.get(rel);
    if (!p) {
      p = readBounded(this.resolvePath(rel), MAX_INPUT_BYTES);
      this.texts.set(rel, p);
    }
    let r: BoundedRead;
    try {
      r = await p;
    } catch (e) {
      throw new StageError(`${where}: cannot read ${rel} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
    }
    if (r.ok) return r.bytes;
    if (r.why === 'too-large') {
      throw new StageError(
        `${where}: ${rel} is ${(r.size / 2 ** 20).toFixed(1)} MiB, over the report's ${MAX_INPUT_BYTES / 2 ** 20} MiB limit ` +
          `for one input; summarise it in an upstream stage (fewer rows, or a PNG instead of a huge SVG).`,
      );
    }
    const why = { missing: 'ENOENT', unreadable: 'not readable', 'not-a-file': 'not a regular file' }[r.why];
    throw new StageError(`${where}: cannot read ${rel} (${why}).`);
  }

  private format(spec: string, where: string): (n: number) => string {
    try {
      return numberLocale.format(spec);
    } catch {
      throw new StageError(`${where}: "${spec}" is not a d3-format specifier (e.g. ".2%", ",d", ".4f").`);
    }
  }

  private async jsonOf(rel: string, where: string): Promise<unknown> {
    if (this.json.has(rel)) return this.json.get(rel);
    const parsed = parseJsonText((await this.read(rel, where)).toString('utf8'));
    if (!parsed.ok) {
      throw new StageError(`${rel}:${parsed.error.line}:${parsed.error.column}: invalid JSON (${where}): ${parsed.error.message}.`);
    }
    this.json.set(rel, parsed.value);
    return parsed.value;
  }

  /** A CSV file as its typed rows (what `where` and pointers like `/0/fpr` address). */
  private async csvRowsOf(rel: string, where: string): Promise<unknown> {
    if (this.json.has(rel)) return this.json.get(rel);
    const parsed = parseCsvRows((await this.read(rel, where)).toString('utf8'));
    if (!parsed.ok) throw new StageError(`${where}: ${rel}: ${parsed.error}.`);
    this.json.set(rel, parsed.value.rows);
    return parsed.value.rows;
  }

  async number(n: NumberSpec, where: string): Promise<ResolvedNumber> {
    let doc = /\.csv$/i.test(n.file) ? await this.csvRowsOf(n.file, where) : await this.jsonOf(n.file, where);
    let source = n.file;
    if (n.where) {
      const sel = selectRow(doc, n.where);
      if (!sel.ok) throw new StageError(`${where}: ${n.file}: ${sel.error}.`);
      doc = sel.value;
      source += `[${Object.entries(n.where).map(([k, v]) => `${k}=${v}`).join(',')}]`;
    }
    const fmt = n.format ? this.format(n.format, `${where}.format`) : undefined;
    const pick = (pointer: string): string => {
      const v = resolvePointer(doc, pointer);
      if (!v.ok) throw new StageError(`${where}: ${source}#${pointer}: ${v.error}.`);
      if (typeof v.value === 'number') return (fmt ? fmt(v.value) : String(v.value)) + n.suffix;
      if (fmt || (v.value !== null && typeof v.value === 'object')) {
        throw new StageError(`${where}: ${source}#${pointer} is ${JSON.stringify(v.value)?.slice(0, 80)}, not a number.`);
      }
      return String(v.value) + n.suffix;
    };
    return {
      label: n.label,
      value: pick(n.pointer),
      interval: n.low !== undefined && n.high !== undefined ? `${n.interval} ${pick(n.low)}–${pick(n.high)}` : undefined,
      source: `${source}#${n.pointer}`,
    };
  }

  /**
   * A PNG as a data: URI; an SVG sanitised (svg-sanitize.ts) and inlined, or embedded as an image when it carries
   * a <style> sheet. `idPrefix` comes from the figure's position, so ids are the same on every run (reads finish in
   * any order).
   */
  async figure(f: FigureSpec, where: string, idPrefix: string): Promise<ResolvedFigure> {
    const data = await this.read(f.path, where);
    if (/\.png$/i.test(f.path)) {
      if (data.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new StageError(`${where}: ${f.path} is not a PNG file.`);
      return { kind: 'image', path: f.path, caption: f.caption, dataUri: `data:image/png;base64,${data.toString('base64')}` };
    }
    const svg = sanitizeSvg(data.toString('utf8'), idPrefix);
    if (!svg.ok) throw new StageError(`${where}: ${f.path} ${svg.error}.`);
    if (svg.value.removed.length > 0) this.log(`${f.path}: removed from the figure: ${svg.value.removed.join(', ')}`);
    if (svg.value.scoped) {
      const uri = `data:image/svg+xml;base64,${Buffer.from(svg.value.svg).toString('base64')}`;
      return { kind: 'image', path: f.path, caption: f.caption, dataUri: uri };
    }
    return { kind: 'svg', path: f.path, caption: f.caption, svg: svg.value.svg };
  }

  /**
   * A CSV as a display table: cells as written (so duplicate or multi-row headers are fine), numbers right-aligned
   * and formatted where `formats` says. `columns` and `formats` name columns by their first header row;
   * the format `*` applies to every numeric column without its own.
   */
  async table(t: TableSpec, where: string): Promise<ResolvedTable> {
    const parsed = parseCsvRecords((await this.read(t.path, where)).toString('utf8'));
    if (!parsed.ok) throw new StageError(`${where}: ${t.path}: ${parsed.error}.`);
    const records = parsed.value;
    if (records.length < t.headerRows) {
      throw new StageError(`${where}: ${t.path} has ${records.length} line(s), fewer than its ${t.headerRows} header row(s).`);
    }
    const names = records[0]!.map((h) => h.trim());
    const unknown = [...(t.columns ?? []), ...Object.keys(t.formats).filter((c) => c !== '*')].filter((c) => !names.includes(c));
    if (unknown.length > 0) {
      throw new StageError(
        `${where}: ${t.path} has no column ${unknown.map((c) => `"${c}"`).join(', ')} (it has: ${[...new Set(names)].join(', ')}).`,
      );
    }
    const picked = t.columns ? t.columns.flatMap((c) => names.flatMap((n, i) => (n === c ? [i] : []))) : names.map((_, i) => i);
    const body = records.slice(t.headerRows);
    const kinds = columnKinds(names.length, body);
    const fmts = picked.map((i) => {
      const spec = t.formats[names[i]!] ?? t.formats['*'];
      return spec !== undefined ? this.format(spec, `${where}.formats.${names[i]}`) : undefined;
    });
    const cell = (raw: string, j: number): string => {
      const v = typedCell(raw, kinds[picked[j]!]!);
      if (v === null) return '';
      if (typeof v === 'number') return fmts[j] ? fmts[j]!(v) : String(Number(v.toPrecision(12)));
      return String(v);
    };
    const shown = t.maxRows !== undefined ? body.slice(0, t.maxRows) : body;
    return {
      path: t.path,
      caption: t.caption,
      header: records.slice(0, t.headerRows).map((r) => picked.map((i) => r[i] ?? '')),
      numeric: picked.map((i) => kinds[i] === 'number'),
      rows: shown.map((r) => picked.map((i, j) => cell(r[i] ?? '', j))),
      omitted: body.length - shown.length,
    };
  }

  /**
   * Upstream run records as a table: one row per run of the stage (or of the declaration's expansions), one column
   * per recorded key; a key a run did not record is an empty cell (older records, or a kind that stopped recording it).
   */
  runsTable(t: RunsTableSpec, where: string): ResolvedTable {
    const runs = this.upstream.filter((u) => u.stage === t.runs || u.stage.startsWith(`${t.runs}@`));
    if (runs.length === 0) {
      const names = this.upstream.map((u) => u.stage);
      throw new StageError(
        `${where}.runs: no upstream stage is ${t.runs} or an expansion of it (${t.runs}@…); this report's upstream stages: ` +
          `${names.length ? names.slice(0, 12).join(', ') + (names.length > 12 ? ', …' : '') : 'none'}.`,
      );
    }
    const fmts = t.fields.map(([k]) => (t.formats[k] !== undefined ? this.format(t.formats[k]!, `${where}.formats.${k}`) : undefined));
    const rows = runs.map((u) => [
      u.stage,
      ...t.fields.map(([k], j) => {
        const v = u.extra?.[k];
        if (v === undefined || v === null) return '';
        if (typeof v === 'number') return fmts[j] ? fmts[j]!(v) : String(Number(v.toPrecision(12)));
        return typeof v === 'string' ? v : JSON.stringify(v);
      }),
    ]);
    // Right-aligned where every recorded value is a number.
    const numeric = [
      false,
      ...t.fields.map(([k]) => {
        const values = runs.map((u) => u.extra?.[k]).filter((v) => v !== undefined && v !== null);
        return values.length > 0 && values.every((v) => typeof v === 'number');
      }),
    ];
    return { path: `run records of ${t.runs}`, caption: t.caption, header: [['Stage', ...t.fields.map(([, label]) => label)]], numeric, rows, omitted: 0 };
  }

  async sections(specs: readonly SectionSpec[]): Promise<ResolvedSection[]> {
    const slug = slugger();
    slug('provenance'); // reserved for the provenance section
    const out: ResolvedSection[] = [];
    for (const [i, s] of specs.entries()) {
      const where = `sections[${i}] ("${s.title}")`;
      out.push({
        title: s.title,
        id: slug(s.title),
        text: s.text,
        numbers: await Promise.all(s.numbers.map((n, j) => this.number(n, `${where}.numbers[${j}]`))),
        figures: await Promise.all(s.figures.map((f, j) => this.figure(f, `${where}.figures[${j}]`, `s${i + 1}f${j + 1}-`))),
        tables: await Promise.all(
          s.tables.map((t, j) => (isRunsTable(t) ? this.runsTable(t, `${where}.tables[${j}]`) : this.table(t, `${where}.tables[${j}]`))),
        ),
      });
    }
    return out;
  }
}
