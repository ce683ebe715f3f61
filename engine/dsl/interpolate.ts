/**
 * `${params.x.y}`, `${vars.y}`, `${item}`, `${item.model}`, `${key}` interpolation over located YAML nodes.
 *
 * - A string that is exactly one `${...}` keeps the value's type (list, number, mapping...).
 * - In shell mode (`cmd`) every inserted value is shell-quoted; a list becomes several quoted words.
 * - `$${` is a literal `${`.
 * - Every `${params...}` reference is recorded, so a stage's key covers exactly the params it uses.
 */
import { didYouMean } from './diagnostics.js';
import type { Loc, YNode, YScalar } from './load.js';
import { shellQuote } from './quote.js';

export interface Expr {
  /** Dotted path, e.g. ['params', 'model', 'lr']. */
  path: string[];
  /** The full `${...}` text. */
  text: string;
  /** Offsets in the string value. */
  start: number;
  end: number;
}
export type Part = string | Expr;

export interface Template {
  parts: Part[];
  /** Malformed `${` uses, with offsets in the string. */
  errors: Array<{ message: string; start: number; end: number }>;
  /** True when the string is exactly one `${...}` (keeps the value's type). */
  whole: boolean;
}

const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+|\[\d+\])*$/;

/** Split a string into literal parts and expressions. Pure; memoised by the caller per scalar. */
export function parseTemplate(s: string): Template {
  const parts: Part[] = [];
  const errors: Template['errors'] = [];
  let lit = '';
  let i = 0;
  while (i < s.length) {
    const at = s.indexOf('$', i);
    if (at < 0) {
      lit += s.slice(i);
      break;
    }
    lit += s.slice(i, at);
    if (s.startsWith('$${', at)) {
      lit += '${';
      i = at + 3;
      continue;
    }
    if (s[at + 1] !== '{') {
      lit += '$';
      i = at + 1;
      continue;
    }
    const close = s.indexOf('}', at + 2);
    if (close < 0) {
      errors.push({ message: 'unclosed `${` (write `$${` for a literal `${`)', start: at, end: s.length });
      lit += s.slice(at);
      break;
    }
    const inner = s.slice(at + 2, close).trim();
    const text = s.slice(at, close + 1);
    if (!PATH.test(inner)) {
      errors.push({
        message: `malformed interpolation \`${text}\`: expected a dotted name like \`\${params.lr}\` or \`\${item.model}\``,
        start: at,
        end: close + 1,
      });
      lit += text;
      i = close + 1;
      continue;
    }
    if (lit) parts.push(lit);
    lit = '';
    const path = inner.replace(/\[(\d+)\]/g, '.$1').split('.');
    parts.push({ path, text, start: at, end: close + 1 });
    i = close + 1;
  }
  if (lit) parts.push(lit);
  const whole = parts.length === 1 && typeof parts[0] !== 'string' && errors.length === 0;
  return { parts, errors, whole };
}

function templateOf(n: YScalar): Template {
  return (n.tpl ??= parseTemplate(n.value as string));
}

/** What `${...}` can see. */
export interface Scope {
  params: Record<string, unknown>;
  vars: Record<string, unknown>;
  /** Present only inside foreach/matrix `do:`. */
  item?: { value: unknown };
  /** The mapping key, inside a foreach over a mapping. */
  key?: string;
}

/** Receives problems and param uses while interpolating. */
export interface Sink {
  error(message: string, loc: Loc, field: string): void;
  /** A `${params.a.b}` reference: dotted name (`a.b`) and its value. */
  param(name: string, value: unknown): void;
  /** A `${vars.x...}` reference: the top-level var name (`''` for all of `vars`). */
  varUsed?(name: string): void;
}

/**
 * The Loc of `[start, end)` inside the scalar's string value. Exact for plain and simple quoted scalars; for block
 * and escaped scalars, finds the same `${...}` text in the source; falls back to the whole scalar.
 */
export function locateInScalar(n: YScalar, start: number, end: number): Loc {
  const value = String(n.value);
  const raw = n.raw;
  const q = raw[0] === '"' || raw[0] === "'" ? 1 : 0;
  if (raw.slice(q, q + value.length) === value) return n.loc.sub(n.loc.start + q + start, n.loc.start + q + end);
  const needle = value.slice(start, end);
  // The k-th occurrence of the needle in the value is (usually) the k-th in the source.
  let k = 0;
  for (let p = value.indexOf(needle); p >= 0 && p < start; p = value.indexOf(needle, p + 1)) k++;
  let pos = raw.indexOf(needle);
  while (pos >= 0 && k > 0) {
    pos = raw.indexOf(needle, pos + 1);
    k--;
  }
  if (pos >= 0) return n.loc.sub(n.loc.start + pos, n.loc.start + pos + needle.length);
  return n.loc;
}

/** Look up one expression; undefined (after reporting) when it does not resolve. */
function resolveExpr(e: Expr, scope: Scope, sink: Sink, n: YScalar, field: string): { ok: boolean; value?: unknown } {
  const [root, ...rest] = e.path;
  let cur: unknown;
  switch (root) {
    case 'params':
      cur = scope.params;
      break;
    case 'vars':
      cur = scope.vars;
      break;
    case 'item':
      if (!scope.item) {
        sink.error(`\`${e.text}\` is only defined inside the \`do:\` of a \`foreach:\` or \`matrix:\``, locateInScalar(n, e.start, e.end), field);
        return { ok: false };
      }
      cur = scope.item.value;
      break;
    case 'key':
      if (scope.key === undefined) {
        sink.error(`\`${e.text}\` is only defined inside the \`do:\` of a \`foreach:\` over a mapping`, locateInScalar(n, e.start, e.end), field);
        return { ok: false };
      }
      if (rest.length) {
        sink.error(`\`${e.text}\`: \`key\` is a string and has no fields`, locateInScalar(n, e.start, e.end), field);
        return { ok: false };
      }
      return { ok: true, value: scope.key };
    default:
      sink.error(
        `undefined variable \`${e.text}\`: names start with \`params.\`, \`vars.\`, \`item\` or \`key\`` +
          didYouMean(root!, ['params', 'vars', 'item', 'key']),
        locateInScalar(n, e.start, e.end),
        field,
      );
      return { ok: false };
  }
  for (let i = 0; i < rest.length; i++) {
    const seg = rest[i]!;
    const next = child(cur, seg);
    if (next === undefined) {
      const known = cur !== null && typeof cur === 'object' ? Object.keys(cur as object) : [];
      const sofar = [root, ...rest.slice(0, i)].join('.');
      const what = cur !== null && typeof cur === 'object' ? `\`${sofar}\` has no \`${seg}\`` : `\`${sofar}\` is ${describe(cur)}, not a mapping or list`;
      const hint = root === 'item' && i === 0 && cur !== null && typeof cur !== 'object' ? ' (the item is a scalar: use `${item}`)' : '';
      sink.error(
        `undefined variable \`${e.text}\`: ${what}${didYouMean(seg, known)}${hint}`,
        locateInScalar(n, e.start, e.end),
        field,
      );
      return { ok: false };
    }
    cur = next;
  }
  if (root === 'params') {
    if (rest.length === 0) sink.param('', cur);
    else sink.param(rest.join('.'), cur);
  } else if (root === 'vars') sink.varUsed?.(rest[0] ?? '');
  return { ok: true, value: cur };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string \`${v}\``;
  return `\`${String(v)}\``;
}

function child(cur: unknown, seg: string): unknown {
  if (Array.isArray(cur)) {
    if (!/^\d+$/.test(seg)) return undefined;
    return cur[Number(seg)];
  }
  if (cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, seg)) {
    return (cur as Record<string, unknown>)[seg];
  }
  return undefined;
}

/** A value inserted into a longer string. */
export function stringify(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** A value inserted into a shell command: one quoted word, or one per list element. */
function shellWords(v: unknown): string {
  if (Array.isArray(v)) return v.map((x) => shellQuote(stringify(x))).join(' ');
  return shellQuote(stringify(v));
}

/** Interpolate one string scalar. `shell`: quote inserted values (the `cmd` field). */
export function interpolateScalar(n: YScalar, scope: Scope, sink: Sink, field: string, shell = false): unknown {
  if (typeof n.value !== 'string' || n.value.indexOf('$') < 0) return n.value;
  const t = templateOf(n);
  for (const e of t.errors) sink.error(e.message, locateInScalar(n, e.start, e.end), field);
  if (t.whole && !shell) {
    const r = resolveExpr(t.parts[0] as Expr, scope, sink, n, field);
    return r.ok ? r.value : undefined;
  }
  // Pieces joined once: one flat string. (`+=` would leave a chain of rope nodes per value, and these strings —
  // commands and paths of every expanded stage — live as long as the pipeline.)
  const pieces = new Array<string>(t.parts.length);
  let failed = false;
  for (let i = 0; i < t.parts.length; i++) {
    const p = t.parts[i]!;
    if (typeof p === 'string') {
      pieces[i] = p;
      continue;
    }
    const r = resolveExpr(p, scope, sink, n, field);
    if (!r.ok) {
      failed = true;
      continue;
    }
    pieces[i] = shell ? shellWords(r.value) : stringify(r.value);
  }
  return failed ? undefined : pieces.length === 1 ? pieces[0] : pieces.join('');
}

/** Interpolate a whole subtree into plain JS (mappings without a prototype). Mapping keys are not interpolated. */
export function interpolateNode(n: YNode, scope: Scope, sink: Sink, field: string): unknown {
  if (n.t === 'scalar') return interpolateScalar(n, scope, sink, field);
  if (n.t === 'seq') return n.items.map((it, i) => interpolateNode(it, scope, sink, `${field}[${i}]`));
  const o: Record<string, unknown> = Object.create(null);
  for (const e of n.entries) o[e.key] = interpolateNode(e.value, scope, sink, field ? `${field}.${e.key}` : e.key);
  return o;
}
