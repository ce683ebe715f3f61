// Issue 14: the fast YAML subset parser and the `yaml` package agree on every input. Property tests (fast-check)
// generate YAML inside the subset and just outside it; on each input the fast path must either defer to the `yaml`
// package (return undefined) or build exactly the tree the package builds — values, types, keys, and the source
// offsets of every key, scalar and collection — with the same line index.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fastParse } from '../../engine/dsl/fastyaml.js';
import { parseYaml, SourceFile } from '../../engine/dsl/load.js';
import { yamlShape } from './helpers.js';

/** Either the fast parser defers, or it agrees with the yaml package exactly. Returns whether it took the input. */
function agrees(text: string): boolean {
  const src = new SourceFile('/t.yaml', text);
  const fast = fastParse(src);
  if (!fast) return false;
  const slow = parseYaml('/t.yaml', text, { parser: 'yaml' });
  expect(slow.diagnostics.map((d) => d.message), `the fast parser accepted YAML the package rejects:\n${JSON.stringify(text)}`).toEqual([]);
  const fastShape = fast.root === undefined ? { map: 0, entries: [] } : yamlShape(fast.root);
  expect(fastShape, JSON.stringify(text)).toEqual(yamlShape(slow.root));
  // The same line index (offset → line/col), compared as the line-start offsets both fill.
  expect(src.lines.lineStarts, JSON.stringify(text)).toEqual(slow.src.lines.lineStarts);
  return true;
}

/** Token soup: YAML tokens in random order, most of the results invalid or outside the subset. */
const SOUP = ['a', 'b', 'key', 'x y', '-', '- ', '-x', ':', ': ', ':x', 'a:b', ' ', '  ', '\t', '#', ' #c', '#c', '[', ']', '{', '}', ',', ', ', '"', "'", '"q"',
  "'s'", '"e\\"s"', '"\\x41\\u00e9\\t"', '"\\q"', "'it''s'", '|', '>', '|-', '>+', '|2', '&x', '*x', '!t', '!!str', '?', '? ', '%', '@', '`', '\\', '${a}', '${', '$${', '1', '-1', '+1', '0x1F', '0o7', '007',
  '.5', '1e3', '.inf', '-.Inf', '.nan', 'true', 'True', 'null', 'NULL', '~', 'é', '𝄞', '---', '...', '\n', '\n', '\n', '\n', '\n  ', '\n  ', '\n    ', '\n   ', '\n- ', '\n  - ', '\n- - ', '\r\n', '\uFEFF', '<<', '<<: ', '=', 'a b: c', ' :', '"a"b', "'a' b", '[]', '{}', '[a, b]', '{a: b}', '{a: [b, {c: d}]}', '\n  # c\n', '\n\n', ':\t', '\t#c', 'a:\tb', '- a: 1\n  b: 2', 'k: |\n  x\n', 'k: >-\n  x\n\n  y\n'];
const soup = fc.array(fc.constantFrom(...SOUP), { maxLength: 24 }).map((ts) => ts.join(''));

/** Documents in the subset (emitted from random trees in random styles), then maybe one random edit. */
const word = fc.constantFrom('a', 'train', 'data/x.csv', 'models/${item}/', '${params.lr}', '0.5', '12', 'true', 'null', '~', 'x y', 'a: b', '#no', "it's", 'q"uote', '-dash', '- item', '[br]', '{c}', 'tab\there', 'trail ', ' lead', '', '0x1F', '1e3', '.inf', 'yes', '@at', '`bt`', '%p', 'x#y', 'é ü', '${a}${b}', 'k=v,w', 'a:b', 'a,b', '?q', ':c', '-', '*', '&');
type Tree = string | number | boolean | null | Tree[] | { [k: string]: Tree };
const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    word, fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), fc.boolean(), fc.constant(null),
    fc.array(tie('t'), { maxLength: 4 }),
    fc.dictionary(word.filter((k) => !k.includes('\n')), tie('t'), { maxKeys: 4 }),
  ),
})).t;

function scalar(v: string | number | boolean | null, style: number): string {
  if (typeof v !== 'string') return String(v);
  if (style === 1) return JSON.stringify(v);
  if (style === 2) return `'${v.replace(/'/g, "''")}'`;
  return v; // plain, whatever it means
}

function emit(v: Tree, indent: number, step: number, flow: boolean, style: number, seqIndent: boolean): string[] | string {
  if (v === null || typeof v !== 'object') return scalar(v, style);
  if (flow) {
    if (Array.isArray(v)) return `[${v.map((x) => flat(x, style)).join(', ')}]`;
    return `{${Object.entries(v).map(([k, x]) => `${scalar(k, style)}: ${flat(x, style)}`).join(', ')}}`;
  }
  const pad = ' '.repeat(indent);
  const lines: string[] = [];
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    for (const x of v) {
      const inner = emit(x, indent + step, step, false, style, seqIndent);
      if (typeof inner === 'string') lines.push(`${pad}- ${inner}`);
      else lines.push(`${pad}-`, ...inner);
    }
    return lines;
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return '{}';
  for (const [k, x] of entries) {
    const childIndent = Array.isArray(x) && !seqIndent ? indent : indent + step;
    const inner = emit(x, childIndent, step, false, style, seqIndent);
    if (typeof inner === 'string') lines.push(`${pad}${scalar(k, style)}: ${inner}`);
    else lines.push(`${pad}${scalar(k, style)}:`, ...inner);
  }
  return lines;
}
function flat(v: Tree, style: number): string {
  const r = emit(v, 0, 2, true, style, true);
  return typeof r === 'string' ? r : r.join('\n');
}

const structured = fc
  .record({
    root: fc.dictionary(word.filter((k) => k !== '' && !k.includes('\n')), tree, { minKeys: 1, maxKeys: 4 }),
    step: fc.integer({ min: 1, max: 4 }),
    flow: fc.boolean(),
    style: fc.integer({ min: 0, max: 2 }),
    seqIndent: fc.boolean(),
    trailingNewline: fc.boolean(),
    edit: fc.option(fc.record({ at: fc.nat(), del: fc.integer({ min: 0, max: 2 }), ins: fc.constantFrom('', ' ', '\n', '\t', '-', ':', '#', ',', '[', ']', '{', '}', '"', "'", '&', '*', '!', '|', '>', '?', '  ', '\n  ', 'x') }), { freq: 2 }),
  })
  .map(({ root, step, flow, style, seqIndent, trailingNewline, edit }) => {
    const out = emit(root, 0, step, flow, style, seqIndent);
    let text = typeof out === 'string' ? out : out.join('\n');
    if (trailingNewline) text += '\n';
    if (edit) {
      const at = edit.at % (text.length + 1);
      text = text.slice(0, at) + edit.ins + text.slice(at + edit.del);
    }
    return text;
  });

/** The repository's own pipeline files, cut to ~25-line windows and edited 1–3 times at random. */
const files: string[] = [];
const walk = (d: string) => { for (const e of readdirSync(d, { withFileTypes: true })) { const p = join(d, e.name); if (e.isDirectory()) walk(p); else if (/\.ya?ml$/.test(e.name)) files.push(readFileSync(p, 'utf8')); } };
walk(fileURLToPath(new URL('../../pipelines', import.meta.url)));
const EDITS = ['', ' ', '\n', '\t', '-', '- ', ':', ': ', '#', ',', '[', ']', '{', '}', '"', "'", '&a', '*a', '!', '|', '>', '?', '  ', '\n  ', 'x', '${', '}', '\\'];
const mutated = fc
  .record({ f: fc.nat(), edits: fc.array(fc.record({ at: fc.nat(), del: fc.integer({ min: 0, max: 3 }), ins: fc.constantFrom(...EDITS) }), { minLength: 1, maxLength: 3 }), cut: fc.nat() })
  .map(({ f, edits, cut }) => {
    let text = files[f % files.length]!;
    // A window of ~25 lines keeps each case small.
    const lines = text.split('\n');
    const start = cut % Math.max(1, lines.length);
    text = lines.slice(start, start + 25).join('\n');
    for (const e of edits) {
      const at = e.at % (text.length + 1);
      text = text.slice(0, at) + e.ins + text.slice(at + e.del);
    }
    return text;
  });

describe('fast parser vs yaml package: property tests', () => {
  // Each generator must keep the fast path busy (agreement by always deferring would prove nothing).
  const run = (arb: fc.Arbitrary<string>, numRuns: number) => {
    let taken = 0;
    fc.assert(fc.property(arb, (text) => void (agrees(text) && taken++)), { numRuns });
    return taken / numRuns;
  };

  it('token soup: random sequences of YAML tokens', () => {
    expect(run(soup, 5000)).toBeGreaterThan(0.2);
  });

  it('documents in the subset, in block and flow styles, with zero or one random edit', () => {
    expect(run(structured, 1500)).toBeGreaterThan(0.4);
  });

  it("the repository's pipelines, edited at random", () => {
    expect(run(mutated, 1000)).toBeGreaterThan(0.1);
  });

  it('the disagreements found so far stay fixed', () => {
    // Issue 14: `a: -` and `a: x:` were accepted as strings; the others were found by these properties.
    const cases = ['a: -', 'a: x:', '- a: -', ']', '}', ',', '?', 'a: ?', '{a: -}', '[-]', '- \t', ': \t', 'a:\n: ', '\n\uFEFF',
      ':\t{a: b}', 'k: |\n  x\n\t', '>+\n  a\n  ', '-\t<<: ', '\n- \n\t', 'a :\n\t', '${a b: c}', '{models/${,item}/: a}',
      '{"a: b": null, "a": "${params.l"}', '{ta:\there: null}', '[a:\tb]'];
    for (const text of cases) {
      agrees(text);
      const slow = parseYaml('/t.yaml', text, { parser: 'yaml' });
      if (slow.diagnostics.length) expect(fastParse(new SourceFile('/t.yaml', text)), JSON.stringify(text)).toBeUndefined();
    }
  });
});
