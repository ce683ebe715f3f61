import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fastParse } from '../../engine/dsl/fastyaml.js';
import { parseYaml, SourceFile } from '../../engine/dsl/load.js';
import { ISSUE_EXAMPLE, yamlShape } from './helpers.js';

function both(text: string) {
  const slow = parseYaml('/t.yaml', text, { parser: 'yaml' });
  const src = new SourceFile('/t.yaml', text);
  const fast = fastParse(src);
  return { slow, fast, src };
}

const SUPPORTED: Record<string, string> = {
  issue: ISSUE_EXAMPLE,
  scalars: `# leading comment

a: 1
b: -2
c: +3
d: 0o17
e: 0x1F
f: 1.5
g: -.5
h: 1e3
i: 2.5E-2
j: .inf
k: -.Inf
l: .nan
m: true
n: False
o: NULL
p: ~
q:
r: 007
s: 1.
t: 12abc
u: "quoted \\"esc\\" \\t tab \\u00e9 \\x41 \\\\"
v: 'single ''quote'''
w: a # trailing comment
x: a#b
y: http://host:80/x
z: -dash
1: numkey
2.50: floatkey
true: boolkey
"quoted key": qk
'sq key': sk
`,
  nesting: `top:
  list:
    - a
    - b: 1
      c: [x, y]
    -
      d: 2
    - - n1
      - n2
    - [f1, {g: h}]
  same:
  - s1
  - s2
  after: 1
  empty_list: []
  empty_map: {}
  nothing:
last: end
`,
  flow: `a: [1, "two", 'three', {k: v, "q": [x]}, ]
b: {x: 1,
    y: [2, 3],   # comment inside
    z: "s"}
c: [models/\${item}/, \${params.x}, "a, b", x\${key}y]
d: {mem: \${params.mem}, cpus: \${params.c}}
e: ["\${item}", \${vars.list[0]}]
`,
  indentedComments: `stages:   # the stages
  # a comment line
  a:
    cmd: x   # cmd

    outs: [o]
# dedented comment
  b: {cmd: y}
`,
  rootSeq: `- a
- b: 1
- [c]
`,
  empty: `# nothing here\n\n`,
  trailingNoNewline: `a: 1\nb: [x]`,
  tabsInValue: `a: "x\\ty"\nb: x\ty\n`,
  blockScalars: `a: |
  echo 1
    indented
  # not a comment

  echo 2
b: |-
  x
c: |+
  y


d: >-
  folded
  line

  para
e: >
  one
  two
f:
  - |
    in seq
  - >-
    z
g: |   # header comment
  after
h: end
`,
};

const UNSUPPORTED: Record<string, string> = {
  anchors: `a: &x {b: 1}\nc: *x\n`,
  merge: `a: &x {b: 1}\nc:\n  <<: *x\n`,
  foldedMoreIndented: `cmd: >\n  a\n    b\n  c\n`,
  explicitIndent: `cmd: |2\n   x\n`,
  blockAtEof: `cmd: |\n  x`,
  multilinePlain: `a: one\n  two\n`,
  multilineQuoted: `a: "one\n  two"\n`,
  tag: `a: !!str 1\n`,
  dupKey: `a: 1\na: 2\n`,
  tabIndent: `a:\n\tb: 1\n`,
  docMarker: `---\na: 1\n`,
  emptyFlowValue: `a: {b: }\n`,
  crlf: `a: 1\r\nb: 2\r\n`,
  complexKey: `? a\n: b\n`,
  bad: `a: [1, 2\nb: 3\n`,
};

describe('fast YAML subset parser', () => {
  for (const [name, text] of Object.entries(SUPPORTED)) {
    it(`builds the same located tree as the yaml package: ${name}`, () => {
      const { slow, fast, src } = both(text);
      expect(slow.diagnostics).toEqual([]);
      expect(fast).toBeDefined();
      if (fast!.root === undefined) expect(yamlShape(slow.root)).toEqual({ map: 0, entries: [] }); // an empty document
      else expect(yamlShape(fast!.root)).toEqual(yamlShape(slow.root));
      // Same line index: every offset maps to the same line/col.
      for (let off = 0; off <= text.length; off += 7) expect(src.lines.linePos(off)).toEqual(slow.src.lines.linePos(off));
    });
  }

  for (const [name, text] of Object.entries(UNSUPPORTED)) {
    it(`leaves ${name} to the yaml package`, () => {
      const src = new SourceFile('/t.yaml', text);
      expect(fastParse(src)).toBeUndefined();
      expect(src.lines.lineStarts).toEqual([]);
    });
  }

  it('agrees with the yaml package on every pipeline YAML in the repository it can parse', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const files: string[] = [];
    const walk = (d: string) => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(e.name)) files.push(p);
      }
    };
    walk(path.join(root, 'pipelines'));
    walk(path.join(root, 'test/fixtures'));
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const { slow, fast } = both(text);
      if (!fast || slow.diagnostics.length) continue;
      expect(yamlShape(fast.root), f).toEqual(yamlShape(slow.root));
    }
  });
});

describe('fast parser vs yaml package on generated documents', () => {
  /** Small deterministic PRNG (mulberry32). */
  function rng(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const WORDS = ['a', 'train', 'data/x.csv', 'models/${item}/', '${params.lr}', '0.5', '12', 'true', 'null', '~', 'x y',
    'a: b', '#no', 'it\'s', 'q"uote', '-dash', '- item', '[br]', '{c}', 'tab\there', 'multi\nline', 'trail ', ' lead',
    '', '0x1F', '1e3', '.inf', 'yes', '@at', '`bt`', '%p', 'x#y', 'é ü', '${a}${b}', 'k=v,w'];
  function value(r: () => number, depth: number): unknown {
    const k = r();
    if (depth > 3 || k < 0.45) {
      const s = r();
      if (s < 0.55) return WORDS[Math.floor(r() * WORDS.length)];
      if (s < 0.75) return Math.floor(r() * 2000) - 1000;
      if (s < 0.85) return Math.round(r() * 1e4) / 100;
      if (s < 0.93) return r() < 0.5;
      return null;
    }
    if (k < 0.7) return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(r() * 5); i > 0; i--) o[WORDS[Math.floor(r() * WORDS.length)]!.replace(/\n/g, '') || 'k'] = value(r, depth + 1);
    return o;
  }

  it('agrees on 400 random documents in block and flow styles, and takes the fast path for most', async () => {
    const { stringify } = await import('yaml');
    const r = rng(42);
    let fastCount = 0;
    for (let i = 0; i < 400; i++) {
      const v = { root: value(r, 0), other: value(r, 1) };
      const text = stringify(v, {
        indent: 2 + Math.floor(r() * 3),
        collectionStyle: r() < 0.3 ? 'flow' : 'any',
        indentSeq: r() < 0.5,
        lineWidth: r() < 0.5 ? 0 : 40,
      });
      const { slow, fast } = both(text);
      if (slow.diagnostics.length) continue;
      if (!fast) continue;
      fastCount++;
      expect(yamlShape(fast.root), text).toEqual(yamlShape(slow.root));
    }
    expect(fastCount).toBeGreaterThan(200);
  });
});
