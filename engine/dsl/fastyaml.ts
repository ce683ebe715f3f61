/**
 * A fast parser for the plain subset of YAML that pipelines are written in: block mappings and sequences, flow
 * `[...]`/`{...}` collections, plain and quoted scalars, comments. It builds the located tree (YNode) directly,
 * several times faster than the general `yaml` package (which builds a full CST and document first), so loading a
 * 1,000-stage pipeline stays cheap on every no-op run.
 *
 * It never reports errors: on anything outside the subset (anchors, tags, block scalars, multi-line plain scalars,
 * directives, duplicate keys, tabs in indentation, odd syntax...) it returns undefined and the caller parses with
 * the `yaml` package, which gives the real message. A test checks both parsers build the same tree.
 */
import { Loc, type SourceFile, type YMap, type YNode, type YScalar, type ScalarValue } from './load.js';
import { protectExprs, unprotectExprs } from './protect.js';

class Unsupported extends Error {}
const bail = (): never => {
  throw new Unsupported();
};

/** Core-schema resolution of a plain scalar (the `yaml` package's default, YAML 1.2). */
export function resolvePlain(s: string): ScalarValue {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  const c = s.charCodeAt(0);
  // Only strings starting with a digit, sign, dot or letter t/f/T/F/n/N can be non-strings.
  if (s === 'true' || s === 'True' || s === 'TRUE') return true;
  if (s === 'false' || s === 'False' || s === 'FALSE') return false;
  if (!((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return s;
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s)) {
    return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity;
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s)) return parseFloat(s);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)) return parseFloat(s);
  return s;
}

const SP = 32;
const NL = 10;

class FastParser {
  /** The text as parsed: `${...}` protected (protect.ts), the same text the yaml package path parses. */
  private readonly t: string;
  /** The text as written, for `raw`. */
  private readonly orig: string;
  /** Whether any `${...}` was protected (then values and keys are mapped back). */
  private readonly prot: boolean;
  /** Offsets where each line starts. */
  readonly lineStarts: number[] = [0];
  /** Per line: indentation (spaces), and whether it is blank or a comment only. */
  private readonly indents: number[] = [];
  private readonly blank: boolean[] = [];

  constructor(
    private readonly src: SourceFile,
    private readonly maxDepth: number,
  ) {
    this.orig = src.text;
    const t = (this.t = protectExprs(src.text));
    this.prot = t !== this.orig;
    if (t.includes('\r') || t.includes('\uFEFF')) bail();
    for (let i = t.indexOf('\n'); i >= 0; i = t.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
    for (let l = 0; l < this.lineStarts.length; l++) {
      const s = this.lineStarts[l]!;
      let i = s;
      while (t.charCodeAt(i) === SP) i++;
      const ch = t[i];
      const isBlank = i >= t.length || ch === '\n' || ch === '#';
      // A tab where indentation could be read: the yaml package's rules for it are subtle, leave it to them.
      if (ch === '\t') bail();
      this.blank.push(isBlank);
      this.indents.push(i - s);
      if (i - s === 0 && (t.startsWith('---', s) || t.startsWith('...', s) || ch === '%')) bail();
    }
  }

  private loc(start: number, end: number): Loc {
    return new Loc(this.src, start, end);
  }

  private lineOf(offset: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private lineEnd(line: number): number {
    const next = this.lineStarts[line + 1];
    return next === undefined ? this.t.length : next - 1;
  }

  private nextContentLine(line: number): number {
    let l = line;
    while (l < this.lineStarts.length && this.blank[l]) l++;
    return l;
  }

  private contentStart(line: number): number {
    return this.lineStarts[line]! + this.indents[line]!;
  }

  parseDocument(): YNode | undefined {
    const first = this.nextContentLine(0);
    if (first >= this.lineStarts.length) return undefined;
    const { node, line } = this.blockNode(this.contentStart(first), this.indents[first]!, -1, 1);
    if (this.nextContentLine(line + 1) < this.lineStarts.length) bail();
    return node;
  }

  /**
   * A block node starting at offset `p` (column `col`), inside a parent with indentation `parentIndent`; a
   * collection there would be nested `depth` deep. Returns the node and the last line it occupies.
   */
  private blockNode(p: number, col: number, parentIndent: number, depth: number): { node: YNode; line: number } {
    const t = this.t;
    if (t[p] === '-' && this.spaceOrEnd(p + 1)) return this.blockSeq(p, col, depth);
    if (this.keyEnd(p) >= 0) return this.blockMap(p, col, depth);
    return this.inlineValue(p, parentIndent, depth);
  }

  /**
   * If a mapping key starts at `p`, the offset of its `:`; else -1. Keys are plain (up to `: `) or quoted.
   */
  private keyEnd(p: number): number {
    const t = this.t;
    const c = t[p];
    if (c === '"' || c === "'") {
      const q = this.quoted(p);
      let i = q.end;
      while (t.charCodeAt(i) === SP) i++;
      return t[i] === ':' && this.spaceOrEnd(i + 1) ? i : -1;
    }
    if (c === undefined || '[]{},#&*!|>%@`?'.includes(c)) return -1;
    if (c === '-' && this.spaceOrEnd(p + 1)) return -1;
    for (let i = p; i < t.length; i++) {
      const ch = t.charCodeAt(i);
      if (ch === NL) return -1;
      if (ch === 58 /* : */ && this.spaceOrEnd(i + 1)) return i; else if (ch === 35 /* # */ && (t[i - 1] === ' ' || t[i - 1] === '\t')) return -1;
    }
    return -1;
  }

  private blockMap(start: number, indent: number, depth: number): { node: YMap; line: number } {
    const t = this.t;
    if (depth > this.maxDepth) bail(); // too deep: the yaml package path reports it, with its position
    const map: YMap = { t: 'map', entries: [], byKey: new Map(), loc: this.loc(start, start) };
    let p = start;
    let line = this.lineOf(start);
    for (;;) {
      const colon = this.keyEnd(p);
      if (colon < 0) bail();
      let key: string;
      let keyLoc: Loc;
      if (t[p] === '"' || t[p] === "'") {
        const q = this.quoted(p);
        key = this.str(q.value);
        keyLoc = this.loc(p, q.end);
      } else {
        let e = colon;
        while (e > p && (t[e - 1] === ' ' || t[e - 1] === '\t')) e--;
        const raw = t.slice(p, e);
        if (raw === '<<') bail(); // merge keys need aliases: the slow path handles them
        if (raw === '') bail(); // `: value`, an empty key
        key = this.str(String(resolvePlain(raw)));
        keyLoc = this.loc(p, e);
      }
      if (map.byKey.has(key)) bail(); // duplicate key: let the yaml package report it
      let v = colon + 1;
      while (t.charCodeAt(v) === SP) v++;
      if (t[v] === '\t') bail(); // tabs as separation: the yaml package's rules are subtle
      let value: YNode;
      if (v >= t.length || t[v] === '\n' || t[v] === '#') {
        // The value is on the next lines (more indented, or a sequence at the same indent), or null.
        const next = this.nextContentLine(line + 1);
        const ni = this.indents[next];
        const cs = next < this.lineStarts.length ? this.contentStart(next) : -1;
        if (ni !== undefined && (ni > indent || (ni === indent && t[cs] === '-' && this.spaceOrEnd(cs + 1)))) {
          const r = this.blockNode(cs, ni, indent, depth + 1);
          value = r.node;
          line = r.line;
        } else {
          if (t[v] === '#') bail();
          const end = Math.min(this.lineEnd(line), t.length);
          value = this.nullAt(end);
        }
      } else {
        const r = this.inlineValue(v, indent, depth + 1);
        value = r.node;
        line = r.line;
      }
      const entry = { key, keyLoc, value };
      map.entries.push(entry);
      map.byKey.set(key, entry);
      const next = this.nextContentLine(line + 1);
      if (next >= this.lineStarts.length || this.indents[next]! < indent) break;
      if (this.indents[next]! > indent) bail();
      p = this.contentStart(next);
      line = next;
    }
    return { node: map, line };
  }

  private blockSeq(start: number, indent: number, depth: number): { node: YNode; line: number } {
    const t = this.t;
    if (depth > this.maxDepth) bail();
    const seq: YNode = { t: 'seq', items: [], loc: this.loc(start, start) };
    let p = start;
    let line = this.lineOf(start);
    for (;;) {
      if (!(t[p] === '-' && this.spaceOrEnd(p + 1))) bail();
      let v = p + 1;
      while (t.charCodeAt(v) === SP) v++;
      if (t[v] === '\t') bail();
      let item: YNode;
      if (v >= t.length || t[v] === '\n' || t[v] === '#') {
        const next = this.nextContentLine(line + 1);
        const ni = this.indents[next];
        if (ni !== undefined && ni > indent) {
          const r = this.blockNode(this.contentStart(next), ni, indent, depth + 1);
          item = r.node;
          line = r.line;
        } else {
          if (t[v] === '#') bail();
          item = this.nullAt(Math.min(this.lineEnd(line), t.length));
        }
      } else {
        // Compact forms: `- key: value` (a mapping at this column) or `- - x` (a nested sequence).
        const col = v - this.lineStarts[line]!;
        const r = this.blockNode(v, col, indent, depth + 1);
        item = r.node;
        line = r.line;
      }
      seq.items.push(item);
      const next = this.nextContentLine(line + 1);
      if (next >= this.lineStarts.length || this.indents[next]! < indent) break;
      if (this.indents[next]! > indent) bail();
      p = this.contentStart(next);
      // `key:\n- a\n- b\nother: 1`: a sequence at its parent key's indentation ends at the next key.
      if (!(t[p] === '-' && this.spaceOrEnd(p + 1))) break;
      line = next;
    }
    return { node: seq, line };
  }

  /** A space, tab, line end or the end of the text at `i`: what makes `-`, `?` and `:` indicators. */
  private spaceOrEnd(i: number): boolean {
    const c = this.t[i];
    return c === undefined || c === ' ' || c === '\n' || c === '\t';
  }

  /** A string as written: `${...}` protection undone. */
  private str(s: string): string {
    return this.prot ? unprotectExprs(s) : s;
  }

  /** A scalar node over [start, end): its raw text as written, a string value unprotected. */
  private scalar(value: ScalarValue, start: number, end: number): YScalar {
    const v = typeof value === 'string' ? this.str(value) : value;
    return { t: 'scalar', value: v, loc: this.loc(start, end), raw: this.orig.slice(start, end) };
  }

  private nullAt(offset: number): YScalar {
    return { t: 'scalar', value: null, loc: this.loc(offset, offset), raw: '' };
  }

  /** A value that starts on this line: flow collection, quoted or plain scalar. Nothing may follow but a comment. */
  private inlineValue(p: number, parentIndent: number, depth: number): { node: YNode; line: number } {
    const t = this.t;
    const c = t[p]!;
    let node: YNode;
    let end: number;
    if (c === '[' || c === '{') {
      const r = this.flow(p, parentIndent, depth);
      node = r.node;
      end = r.end;
    } else if (c === '"' || c === "'") {
      const q = this.quoted(p);
      node = this.scalar(q.value, p, q.end);
      end = q.end;
    } else if (c === '|' || c === '>') {
      return this.blockScalar(p, parentIndent);
    } else {
      // Indicators cannot start a plain scalar (`-`, `?`, `:` only when a non-space follows).
      if ('&*!|>%@`,]}#'.includes(c)) bail();
      if ((c === '-' || c === '?' || c === ':') && this.spaceOrEnd(p + 1)) bail();
      let e = p;
      for (; e < t.length; e++) {
        const ch = t.charCodeAt(e);
        if (ch === NL) break;
        if (ch === 35 /* # */ && (t[e - 1] === ' ' || t[e - 1] === '\t')) break;
        // `a: x: y` or `a: x:` (a mapping in a compact value): the yaml package rejects it.
        if (ch === 58 /* : */ && this.spaceOrEnd(e + 1)) bail();
      }
      while (e > p && (t[e - 1] === ' ' || t[e - 1] === '\t')) e--;
      node = this.scalar(resolvePlain(t.slice(p, e)), p, e);
      end = e;
      // A continuation line (more indented than the parent) would make a multi-line plain scalar.
      const line = this.lineOf(p);
      const next = this.nextContentLine(line + 1);
      if (next < this.lineStarts.length && this.indents[next]! > parentIndent) bail();
    }
    // Only spaces or a comment may follow on the line.
    let i = end;
    while (t[i] === ' ' || t[i] === '\t') i++;
    if (!(i >= t.length || t[i] === '\n' || (t[i] === '#' && i > end))) bail();
    return { node, line: this.lineOf(end) };
  }

  /**
   * `|` literal and `>` folded block scalars with `-`/`+` chomping. Bails on explicit indentation indicators,
   * folded blocks with more-indented lines, odd whitespace-only lines and blocks that end without a newline.
   */
  private blockScalar(p: number, parentIndent: number): { node: YNode; line: number } {
    const t = this.t;
    const folded = t[p] === '>';
    let i = p + 1;
    let chomp: 'clip' | 'strip' | 'keep' = 'clip';
    if (t[i] === '-' || t[i] === '+') {
      chomp = t[i] === '-' ? 'strip' : 'keep';
      i++;
    }
    const afterIndicator = i;
    while (t[i] === ' ' || t[i] === '\t') i++;
    if (t[i] === '#' && i > afterIndicator) {
      const nl = t.indexOf('\n', i);
      i = nl < 0 ? t.length : nl;
    }
    if (t[i] !== '\n') bail();
    const header = this.lineOf(p);
    const nLines = this.lineStarts.length;
    // Only-spaces lines are "empty"; the first other line sets the block's indentation.
    const spaceOnly = (l: number) => {
      const s0 = this.lineStarts[l]!;
      const e0 = this.lineEnd(l);
      for (let k = s0; k < e0; k++) if (t[k] !== ' ') return false;
      return true;
    };
    let first = header + 1;
    while (first < nLines && spaceOnly(first)) first++;
    if (first >= nLines) bail();
    const indent = this.indents[first]!;
    if (indent <= parentIndent) bail(); // an empty block scalar
    const lines: string[] = [];
    let lastContent = -1;
    let l = header + 1;
    for (; l < nLines; l++) {
      const s0 = this.lineStarts[l]!;
      const e0 = this.lineEnd(l);
      if (spaceOnly(l)) {
        if (e0 - s0 > indent) bail();
        lines.push('');
        continue;
      }
      if (t[s0 + this.indents[l]!] === '\t') bail(); // a tab where the block's indentation is expected
      if (this.indents[l]! < indent) break;
      const text = t.slice(s0 + indent, e0);
      if (folded && (text[0] === ' ' || text[0] === '\t')) bail();
      lines.push(text);
      lastContent = l;
    }
    // The last content line must end with a newline, and a last line at EOF must not be empty-without-newline.
    if (this.lineStarts[lastContent + 1] === undefined) bail();
    // Trailing lines that run to the end of a text without a final newline: leave the chomping to the package.
    if (l >= nLines && !t.endsWith('\n')) bail();
    const content = lines.slice(0, lastContent - header);
    const trailing = lines.length - content.length - (l >= nLines && t.endsWith('\n') ? 1 : 0);
    let body: string;
    if (folded) {
      body = '';
      let empties = 0;
      let started = false;
      for (const line of content) {
        if (line === '') {
          empties++;
          continue;
        }
        if (!started) body = '\n'.repeat(empties) + line;
        else body += (empties ? '\n'.repeat(empties) : ' ') + line;
        started = true;
        empties = 0;
      }
    } else body = content.join('\n');
    let value = body;
    let end = this.lineStarts[lastContent + 1]!;
    if (chomp === 'clip') value += '\n';
    else if (chomp === 'keep') {
      value += '\n'.repeat(1 + trailing);
      const stop = lastContent + 1 + trailing;
      end = this.lineStarts[stop] ?? t.length;
    }
    const node = this.scalar(value, p, end);
    return { node, line: lastContent };
  }

  private quoted(p: number): { value: string; end: number } {
    const t = this.t;
    const q = t[p];
    let out = '';
    let i = p + 1;
    if (q === "'") {
      for (;;) {
        const j = t.indexOf("'", i);
        if (j < 0) bail();
        const chunk = t.slice(i, j);
        if (chunk.includes('\n')) bail();
        out += chunk;
        if (t[j + 1] === "'") {
          out += "'";
          i = j + 2;
          continue;
        }
        return { value: out, end: j + 1 };
      }
    }
    for (;;) {
      const ch = t[i];
      if (ch === undefined || ch === '\n') bail();
      if (ch === '"') return { value: out, end: i + 1 };
      if (ch !== '\\') {
        out += ch;
        i++;
        continue;
      }
      const e = t[i + 1];
      const simple: Record<string, string> = { '\\': '\\', '"': '"', '/': '/', n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f', ' ': ' ', e: '\x1b', a: '\x07', v: '\v' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
        continue;
      }
      const len = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
      if (!len) bail();
      const hex = t.slice(i + 2, i + 2 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) bail();
      out += String.fromCodePoint(parseInt(hex, 16));
      i += 2 + len;
    }
  }

  /** Skip spaces, newlines and comments inside a flow collection; continuation lines must be indented. */
  private flowSpace(i: number, parentIndent: number): number {
    const t = this.t;
    for (;;) {
      const ch = t[i];
      if (ch === ' ' || ch === '\t') i++;
      else if (ch === '\n') {
        const line = this.lineOf(i + 1);
        if (!this.blank[line] && this.indents[line]! <= parentIndent) bail();
        i++;
      } else if (ch === '#' && (t[i - 1] === ' ' || t[i - 1] === '\t' || t[i - 1] === '\n')) {
        const nl = t.indexOf('\n', i);
        i = nl < 0 ? t.length : nl;
      } else return i;
    }
  }

  private flow(p: number, parentIndent: number, depth: number): { node: YNode; end: number } {
    const t = this.t;
    if (depth > this.maxDepth) bail();
    const close = t[p] === '[' ? ']' : '}';
    let i = this.flowSpace(p + 1, parentIndent);
    if (close === ']') {
      const seq: YNode = { t: 'seq', items: [], loc: this.loc(p, p) };
      while (t[i] !== ']') {
        const r = this.flowValue(i, parentIndent, depth + 1);
        if (r.node.t === 'scalar' && t[this.flowSpace(r.end, parentIndent)] === ':') bail(); // `[a: b]` pairs
        seq.items.push(r.node);
        i = this.flowSpace(r.end, parentIndent);
        if (t[i] === ',') i = this.flowSpace(i + 1, parentIndent);
        else if (t[i] !== ']') bail();
      }
      seq.loc = this.loc(p, i + 1);
      return { node: seq, end: i + 1 };
    }
    const map: YMap = { t: 'map', entries: [], byKey: new Map(), loc: this.loc(p, p) };
    while (t[i] !== '}') {
      const k = this.flowValue(i, parentIndent, depth + 1, true);
      if (k.node.t !== 'scalar') bail();
      const keyNode = k.node as YScalar;
      const key = String(keyNode.value);
      if (map.byKey.has(key) || key === '<<') bail();
      i = this.flowSpace(k.end, parentIndent);
      if (t[i] !== ':') bail();
      i = this.flowSpace(i + 1, parentIndent);
      if (t[i] === ',' || t[i] === '}') bail(); // `{a: }`: leave to the yaml package
      const v = this.flowValue(i, parentIndent, depth + 1);
      const entry = { key, keyLoc: keyNode.loc, value: v.node };
      map.entries.push(entry);
      map.byKey.set(key, entry);
      i = this.flowSpace(v.end, parentIndent);
      if (t[i] === ',') i = this.flowSpace(i + 1, parentIndent);
      else if (t[i] !== '}') bail();
    }
    map.loc = this.loc(p, i + 1);
    return { node: map, end: i + 1 };
  }

  /** A value inside a flow collection. Plain scalars stop at `,[]{}`, `: ` and comments (`${...}` is protected). */
  private flowValue(i: number, parentIndent: number, depth: number, isKey = false): { node: YNode; end: number } {
    const t = this.t;
    const c = t[i];
    if (c === undefined) bail();
    if (c === '[' || c === '{') {
      if (isKey) bail();
      return this.flow(i, parentIndent, depth);
    }
    if (c === '"' || c === "'") {
      const q = this.quoted(i);
      return { node: this.scalar(q.value, i, q.end), end: q.end };
    }
    if ('&*!|>%@`#,]}'.includes(c!)) bail();
    // In flow context `-`, `?`, `:` start a plain scalar only before a character that is neither space nor flow syntax.
    if ((c === '-' || c === '?' || c === ':') && (this.spaceOrEnd(i + 1) || ',[]{}'.includes(t[i + 1]!))) bail();
    let e = i;
    for (; e < t.length; e++) {
      const ch = t[e]!;
      if (ch === '\n') break;
      if (ch === ',' || ch === '[' || ch === ']' || ch === '{' || ch === '}') break;
      if (ch === ':' && (this.spaceOrEnd(e + 1) || t[e + 1] === ',' || t[e + 1] === ']' || t[e + 1] === '}')) break;
      if (ch === '#' && (t[e - 1] === ' ' || t[e - 1] === '\t')) break;
    }
    let end = e;
    while (end > i && (t[end - 1] === ' ' || t[end - 1] === '\t')) end--;
    if (t[e] === '\n') {
      // A plain scalar continuing on the next line: leave it to the yaml package.
      const j = this.flowSpace(e, parentIndent);
      if (!',]}:'.includes(t[j] ?? '')) bail();
    }
    if (t[e] === '[' || t[e] === '{') bail();
    return { node: this.scalar(resolvePlain(t.slice(i, end)), i, end), end };
  }
}

/**
 * Parse with the fast subset parser. Returns undefined (and leaves `src.lines` untouched) when the text is
 * outside the subset; the caller then uses the `yaml` package.
 */
export function fastParse(src: SourceFile, maxDepth = Infinity): { root: YNode | undefined } | undefined {
  try {
    const p = new FastParser(src, maxDepth);
    const root = p.parseDocument();
    for (const s of p.lineStarts) src.lines.addNewLine(s);
    return { root };
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}
