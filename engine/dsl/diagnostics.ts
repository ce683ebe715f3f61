/**
 * Diagnostics: what every step of the DSL reports for bad input, and how it is rendered (a compiler-style paragraph
 * with the offending YAML line and a `^~~~` marker under the culprit).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SourceSpan } from '../model.js';

export interface Diagnostic {
  severity: 'error' | 'warning';
  message: string;
  span?: SourceSpan;
  /** The (expanded) stage the problem is in, when there is one. */
  stage?: string;
  /** The stage field (`cmd`, `deps`, `with.model`...) the problem is in. */
  field?: string;
  /** The absolute path a missing dep was looked for at: `pipe watch` waits for it to appear. */
  missing?: string;
}

/**
 * Source texts by absolute file name, registered by the loader so rendering needs no disk access (and shows the
 * text that was actually parsed, even if the file changed since).
 */
const sources = new Map<string, string>();

export function registerSource(file: string, text: string): void {
  sources.set(file, text);
}

function sourceLine(file: string, line: number): string | undefined {
  let text = sources.get(file);
  if (text === undefined) {
    try {
      text = readFileSync(file, 'utf8');
      sources.set(file, text);
    } catch {
      return undefined;
    }
  }
  // Walk to the wanted line without splitting the whole file.
  let start = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return undefined;
    start = nl + 1;
  }
  let end = text.indexOf('\n', start);
  if (end < 0) end = text.length;
  return text.slice(start, end).replace(/\r$/, '');
}

/** A file name as the user would type it: relative to the current directory when inside it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

const ansi = {
  red: (s: string) => `\x1b[1;31m${s}\x1b[0m`,
  yellow: (s: string) => `\x1b[1;33m${s}\x1b[0m`,
  bold: (s: string) => `\x1b[1m${s}\x1b[0m`,
  green: (s: string) => `\x1b[1;32m${s}\x1b[0m`,
  dim: (s: string) => `\x1b[2m${s}\x1b[0m`,
};

/**
 * A source line longer than a screen (minified YAML, a 4,000-deep `[[[[`) shown as a window around the column, `…`
 * marking what was cut; the column (and end column) move with it.
 */
function clipLine(text: string, col: number, endCol: number | undefined): { text: string; col: number; endCol: number | undefined } {
  const WIDTH = 160;
  if (text.length <= WIDTH) return { text, col, endCol };
  const start = Math.max(0, Math.min(col - 1 - 60, text.length - WIDTH));
  const end = Math.min(text.length, start + WIDTH);
  const lead = start > 0 ? '…' : '';
  const shift = start - lead.length;
  const clippedEnd = endCol === undefined ? undefined : Math.min(endCol, end + 1) - shift;
  return { text: `${lead}${text.slice(start, end)}${end < text.length ? '…' : ''}`, col: col - shift, endCol: clippedEnd };
}

/** Tabs would misalign the marker: expand them to the same width on both lines. */
function expandTabs(s: string): string {
  return s.replace(/\t/g, '  ');
}

/**
 * `file:line:col: error: stage `x`, field `y`: message`, then the YAML line and a marker under the culprit.
 * Without a span (e.g. a bad `-S` override) it is just `error: message`.
 */
export function formatDiagnostic(d: Diagnostic, opts: { color?: boolean } = {}): string {
  const c = opts.color
    ? ansi
    : { red: id, yellow: id, bold: id, green: id, dim: id };
  const sev = d.severity === 'error' ? c.red('error') : c.yellow('warning');
  const where = d.span ? `${displayPath(d.span.file)}:${d.span.line}:${d.span.col}: ` : '';
  const ctx: string[] = [];
  if (d.stage) ctx.push(`stage \`${d.stage}\``);
  if (d.field) ctx.push(`field \`${d.field}\``);
  const head = `${c.bold(where)}${sev}: ${ctx.length ? ctx.join(', ') + ': ' : ''}${d.message}`;
  if (!d.span) return head;
  const full = sourceLine(d.span.file, d.span.line);
  if (full === undefined) return head;
  const { text, col, endCol } = clipLine(full, d.span.col, d.span.endLine === d.span.line ? d.span.endCol : undefined);
  const lineNo = String(d.span.line);
  const gutter = ' '.repeat(lineNo.length);
  const before = expandTabs(text.slice(0, col - 1));
  // The marker covers the span on its first line (at least one column).
  let width = 1;
  if (endCol !== undefined && endCol > col) {
    width = expandTabs(text.slice(col - 1, endCol - 1)).length;
  } else if (d.span.endLine !== undefined && d.span.endLine > d.span.line) {
    width = Math.max(1, expandTabs(text.slice(col - 1)).trimEnd().length);
  }
  const marker = '^' + '~'.repeat(Math.max(0, width - 1));
  return [
    head,
    ` ${lineNo} | ${expandTabs(text)}`,
    ` ${gutter} | ${' '.repeat(before.length)}${c.green(marker)}`,
  ].join('\n');
}

function id(s: string): string {
  return s;
}

/** Edit distance with adjacent transpositions (`dpes` is one edit from `deps`), for "did you mean". */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1);
    row[0] = i;
    rows.push(row);
  }
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/** The closest candidate within a small edit distance, or undefined. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const limit = Math.max(2, Math.floor(word.length / 3));
  for (const cand of candidates) {
    const d = editDistance(word.toLowerCase(), cand.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = cand;
    }
  }
  return bestD <= limit ? best : undefined;
}

/** ` (did you mean `x`?)` or the empty string. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const n = nearest(word, candidates);
  return n === undefined ? '' : ` (did you mean \`${n}\`?)`;
}

/** Collects diagnostics; suppresses exact repeats (a template error repeated for every foreach item). */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  private seen = new Set<string>();

  add(d: Diagnostic, dedupKey?: string): void {
    if (dedupKey !== undefined) {
      if (this.seen.has(dedupKey)) return;
      this.seen.add(dedupKey);
    }
    this.items.push(d);
  }
  error(message: string, span?: SourceSpan, extra: { stage?: string; field?: string; dedup?: string; missing?: string } = {}): void {
    const d: Diagnostic = { severity: 'error', message };
    if (span) d.span = span;
    if (extra.stage) d.stage = extra.stage;
    if (extra.field) d.field = extra.field;
    if (extra.missing) d.missing = extra.missing;
    this.add(d, extra.dedup);
  }
  warning(message: string, span?: SourceSpan, extra: { stage?: string; field?: string; dedup?: string } = {}): void {
    const d: Diagnostic = { severity: 'warning', message };
    if (span) d.span = span;
    if (extra.stage) d.stage = extra.stage;
    if (extra.field) d.field = extra.field;
    this.add(d, extra.dedup);
  }
  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

/**
 * Errors first, then warnings; within each, span-less ones (command-line problems) first, then by file (in
 * `fileOrder`, e.g. the main file before its fragments; others by name), line and column.
 */
export function sortDiagnostics(ds: Diagnostic[], fileOrder: string[] = []): Diagnostic[] {
  const rank = (d: Diagnostic) => (d.severity === 'error' ? 0 : 1);
  const fileRank = (f: string) => {
    const i = fileOrder.indexOf(f);
    return i < 0 ? fileOrder.length : i;
  };
  return [...ds].sort((a, b) => {
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    const sa = a.span;
    const sb = b.span;
    if (!sa || !sb) return (sa ? 1 : 0) - (sb ? 1 : 0);
    if (sa.file !== sb.file) return fileRank(sa.file) - fileRank(sb.file) || (sa.file < sb.file ? -1 : 1);
    return sa.line - sb.line || sa.col - sb.col;
  });
}
