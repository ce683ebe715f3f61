/**
 * YAML text → a small located tree (YNode): plain values plus the source offsets of every key and value, so later
 * steps can point at the exact column of a problem. Aliases are resolved, `<<` merge keys are applied.
 */
import { createRequire } from 'node:module';
import type { Document, Node as YamlNode } from 'yaml';
import type { SourceSpan } from '../model.js';
import type { Diagnostic } from './diagnostics.js';
import { registerSource } from './diagnostics.js';
import { fastParse } from './fastyaml.js';
import { protectExprs as protect, unprotectExprs as unprotect } from './protect.js';
import { DEFAULT_LIMITS, raiseHint } from './limits.js';
import type { Template } from './interpolate.js';

/**
 * The `yaml` package, loaded on first use: ordinary pipelines are read by the fast parser, so a no-op run does not
 * pay for importing it (tens of ms).
 */
let yamlLib: typeof import('yaml') | undefined;
export function yaml(): typeof import('yaml') {
  return (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));
}

/**
 * Offsets of line starts → 1-based line/col (binary search). Same contract as the yaml package's LineCounter, which
 * it replaces so that it can be filled by either parser without loading the package.
 */
export class LineIndex {
  readonly lineStarts: number[] = [];
  readonly addNewLine = (offset: number): number => this.lineStarts.push(offset);
  linePos(offset: number): { line: number; col: number } {
    const starts = this.lineStarts;
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (starts[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    if (starts[low] === offset) return { line: low + 1, col: 1 };
    if (low === 0) return { line: 0, col: offset };
    return { line: low, col: offset - starts[low - 1]! + 1 };
  }
}

/** One parsed file: its text and a line index for offset → line/col. */
export class SourceFile {
  readonly lines = new LineIndex();
  constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  /** A SourceSpan for the offsets [start, end). */
  span(start: number, end: number): SourceSpan {
    const a = this.lines.linePos(start);
    const b = this.lines.linePos(Math.max(start, end));
    return { file: this.file, line: a.line, col: a.col, endLine: b.line, endCol: b.col };
  }
}

/** Where a node sits: file plus offsets. SourceSpans are computed on demand (and memoised). */
export class Loc {
  private cached?: SourceSpan;
  constructor(
    readonly src: SourceFile,
    readonly start: number,
    readonly end: number,
  ) {}
  get span(): SourceSpan {
    return (this.cached ??= this.src.span(this.start, this.end));
  }
  /** A sub-range, offsets relative to the file. */
  sub(start: number, end: number): Loc {
    return new Loc(this.src, start, end);
  }
}

export type ScalarValue = string | number | boolean | null;

export interface YScalar {
  t: 'scalar';
  value: ScalarValue;
  loc: Loc;
  /** The scalar's source text (quotes included), used to map string offsets back to columns. */
  raw: string;
  /** Parsed `${...}` template, memoised by interpolate.ts (a property, not a WeakMap: cheaper to collect). */
  tpl?: Template;
}
export interface YEntry {
  key: string;
  keyLoc: Loc;
  value: YNode;
}
export interface YMap {
  t: 'map';
  entries: YEntry[];
  byKey: Map<string, YEntry>;
  loc: Loc;
  /** Where each entry is written, memoised by expand.ts for `with:` mappings. */
  fieldLocs?: Map<string, { keyLoc: Loc; valueLoc: Loc }>;
}
export interface YSeq {
  t: 'seq';
  items: YNode[];
  loc: Loc;
}
export type YNode = YScalar | YMap | YSeq;

/**
 * Parse YAML text; syntax errors are diagnostics with positions. The fast subset parser (fastyaml.ts) handles
 * ordinary pipeline files; anything else goes through the `yaml` package. `maxDepth` bounds how deeply mappings and
 * lists may nest (see limits.ts): a deeper document is one located error, found before anything recurses into it.
 */
export function parseYaml(
  file: string,
  text: string,
  opts: { parser?: 'auto' | 'yaml'; maxDepth?: number } = {},
): { root?: YNode; src: SourceFile; diagnostics: Diagnostic[] } {
  registerSource(file, text);
  const maxDepth = opts.maxDepth ?? DEFAULT_LIMITS.yamlDepth;
  if (opts.parser !== 'yaml') {
    const src = new SourceFile(file, text);
    const fast = fastParse(src, maxDepth);
    if (fast) return { root: fast.root ?? emptyMap(new Loc(src, 0, 0)), src, diagnostics: [] };
  }
  const src = new SourceFile(file, text);
  const lineCounter = src.lines as unknown as import('yaml').LineCounter;
  const protectedText = protect(text);
  const cst = parseCst(protectedText, lineCounter, maxDepth);
  if ('tooDeep' in cst) {
    return { src, diagnostics: [{ severity: 'error', message: depthMessage(maxDepth), span: src.span(cst.tooDeep, cst.tooDeep + 1) }] };
  }
  const doc = composeDocument(cst.tokens, protectedText.length);
  const diagnostics: Diagnostic[] = [];
  for (const e of doc.errors) {
    const [start, end] = e.pos;
    const span = src.span(start, end);
    // `[a/${item}]`: braces are YAML flow syntax; the fix is quoting, which the raw parser message does not say.
    const lineText = text.split('\n', span.line)[span.line - 1] ?? '';
    const hint = /\$\{[^}]*$/.test(lineText.slice(0, span.col)) ? ' (is a `${...}` missing its closing `}`?)' : '';
    diagnostics.push({ severity: 'error', message: unprotect(yamlMessage(e.message)) + hint, span });
  }
  if (diagnostics.length) return { src, diagnostics };
  if (doc.contents === null) {
    return { root: emptyMap(new Loc(src, 0, 0)), src, diagnostics };
  }
  const budget = { aliases: 0, maxDepth };
  try {
    const root = convert(doc, doc.contents as YamlNode, src, 0, 1, budget);
    return { root, src, diagnostics };
  } catch (e) {
    if (!(e instanceof AliasError)) throw e;
    diagnostics.push({ severity: 'error', message: e.message, span: e.loc.span });
    return { src, diagnostics };
  }
}

const TOO_DEEP = 'YAML nested more than';
export function depthMessage(maxDepth: number): string {
  return `${TOO_DEEP} ${maxDepth} levels deep (mappings and lists inside each other); ${raiseHint('yamlDepth')} (at most 500)`;
}
export function isDepthDiagnostic(d: Diagnostic): boolean {
  return d.message.startsWith(TOO_DEEP);
}

/**
 * The yaml package's CST, built token by token so that nesting deeper than `maxDepth` stops the parse where it
 * happens (the CST parser itself keeps an explicit stack; the composer after it recurses once per level).
 */
function parseCst(text: string, lineCounter: import('yaml').LineCounter, maxDepth: number): { tokens: import('yaml').CST.Token[] } | { tooDeep: number } {
  const { Lexer, Parser } = yaml();
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0);
  const tokens: import('yaml').CST.Token[] = [];
  for (const lexeme of new Lexer().lex(text, false)) {
    for (const t of parser.next(lexeme)) tokens.push(t);
    // The stack also holds the document and scalars: count collections only when it could be too deep.
    if (parser.stack.length > maxDepth) {
      let depth = 0;
      for (const t of parser.stack) if (t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection') depth++;
      if (depth > maxDepth) return { tooDeep: Math.min(parser.offset, text.length - 1) };
    }
  }
  for (const t of parser.end()) tokens.push(t);
  return { tokens };
}

/** What `yaml.parseDocument` does after parsing: compose one document (a second one is an error). */
function composeDocument(tokens: import('yaml').CST.Token[], length: number): Document.Parsed {
  const { Composer, YAMLParseError } = yaml();
  const composer = new Composer({ prettyErrors: false, uniqueKeys: true, merge: true });
  let doc: Document.Parsed | undefined;
  for (const d of composer.compose(tokens, true, length)) {
    if (!doc) doc = d;
    else {
      doc.errors.push(new YAMLParseError([d.range[0], d.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents; a pipeline file holds one'));
      break;
    }
  }
  return doc!;
}

/** A self-referencing alias or an alias bomb (`&a [*b, *b, ...]` nested): refused, not expanded. */
class AliasError extends Error {
  constructor(
    message: string,
    readonly loc: Loc,
  ) {
    super(message);
  }
}
const MAX_ALIASES = 10_000;

/** The yaml package's first message line, without its own position suffix. */
function yamlMessage(m: string): string {
  const first = m.split('\n')[0] ?? m;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

export function emptyMap(loc: Loc): YMap {
  return { t: 'map', entries: [], byKey: new Map(), loc };
}

function locOf(src: SourceFile, node: YamlNode | null | undefined, fallback: number): Loc {
  const r = node?.range;
  return r ? new Loc(src, r[0], r[1]) : new Loc(src, fallback, fallback);
}

function convert(doc: Document, node: unknown, src: SourceFile, fallback: number, depth: number, budget: { aliases: number; maxDepth: number }): YNode {
  const { isAlias, isMap, isPair, isScalar, isSeq, Scalar } = yaml();
  if (depth > budget.maxDepth && (isMap(node) || isSeq(node))) {
    // Only aliases can get here (the CST depth was checked): each one re-nests its target's collections.
    throw new AliasError(`${depthMessage(budget.maxDepth)}, counting what aliases expand to`, locOf(src, node as YamlNode, fallback));
  }
  if (isAlias(node)) {
    const target = node.resolve(doc);
    const here = locOf(src, node, fallback);
    if (++budget.aliases > MAX_ALIASES) {
      throw new AliasError(`more than ${MAX_ALIASES} alias expansions (an alias bomb?)`, here);
    }
    return convert(doc, target, src, here.start, depth, budget);
  }
  if (isScalar(node)) {
    const loc = locOf(src, node, fallback);
    let value = node.value as unknown;
    if (typeof value === 'bigint') value = Number(value);
    if (value instanceof Date) value = value.toISOString();
    if (value !== null && typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      value = String(value);
    }
    if (typeof value === 'string') value = unprotect(value);
    return { t: 'scalar', value: value as ScalarValue, loc, raw: src.text.slice(loc.start, loc.end) };
  }
  if (isSeq(node)) {
    const loc = locOf(src, node, fallback);
    return { t: 'seq', items: node.items.map((it) => convert(doc, it, src, loc.start, depth + 1, budget)), loc };
  }
  if (isMap(node)) {
    const loc = locOf(src, node, fallback);
    const out = emptyMap(loc);
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as YamlNode | null;
      const keyLoc = locOf(src, keyNode, loc.start);
      if (isScalar(keyNode) && (typeof keyNode.value === 'symbol' || (keyNode.value === '<<' && keyNode.type === Scalar.PLAIN))) {
        mergeInto(out, convert(doc, pair.value, src, keyLoc.end, depth + 1, budget));
        continue;
      }
      const key = unprotect(isScalar(keyNode) ? String(keyNode.value) : String(keyNode));
      const value = pair.value == null
        ? ({ t: 'scalar', value: null, loc: new Loc(src, keyLoc.end, keyLoc.end), raw: '' } as YScalar)
        : convert(doc, pair.value, src, keyLoc.end, depth + 1, budget);
      const entry: YEntry = { key, keyLoc, value };
      const prev = out.byKey.get(key);
      if (prev) out.entries[out.entries.indexOf(prev)] = entry;
      else out.entries.push(entry);
      out.byKey.set(key, entry);
    }
    return out;
  }
  return { t: 'scalar', value: null, loc: new Loc(src, fallback, fallback), raw: '' };
}

/** `<<: *base` (or a list of them): keys already present win. */
function mergeInto(target: YMap, source: YNode): void {
  const sources = source.t === 'seq' ? source.items : [source];
  for (const s of sources) {
    if (s.t !== 'map') continue;
    for (const e of s.entries) {
      if (target.byKey.has(e.key)) continue;
      target.entries.push(e);
      target.byKey.set(e.key, e);
    }
  }
}

/**
 * A located node → plain JS (for params/vars values). Mappings have no prototype: a param may be called
 * `constructor`, `toString` or `__proto__` and is then just a key like any other.
 */
export function toPlain(n: YNode): unknown {
  if (n.t === 'scalar') return n.value;
  if (n.t === 'seq') return n.items.map(toPlain);
  const o: Record<string, unknown> = Object.create(null);
  for (const e of n.entries) o[e.key] = toPlain(e.value);
  return o;
}

export function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

export function nodeTypeName(n: YNode): string {
  if (n.t === 'map') return 'a mapping';
  if (n.t === 'seq') return 'a list';
  return typeName(n.value);
}
