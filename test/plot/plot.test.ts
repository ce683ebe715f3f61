import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { run, type PlotWith } from '../../stages/plot/run.js';
import { fakeContext } from '../support/context.js';
import { pipe, workspace as cliWorkspace } from '../engine/helpers.js';

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'pipe-plot-'));
  mkdirSync(join(ws, 'out'), { recursive: true });
  mkdirSync(join(ws, 'figs'), { recursive: true });
  // CSV: FPR per model (one empty cell → null); JSON: display labels, wrapped in {rows: [...]}.
  writeFileSync(
    join(ws, 'out/fpr.csv'),
    'model,fpr,n,adult\nvindr_cxr,0.304,582,true\nnih_cxr18,0.4965,582,false\npadchest,0.3862,,true\nchexpert,0.5968,582,false\n',
  );
  writeFileSync(
    join(ws, 'out/labels.json'),
    JSON.stringify({
      rows: [
        { model: 'vindr_cxr', label: 'VinDr-CXR' },
        { model: 'nih_cxr18', label: 'NIH' },
        { model: 'padchest', label: 'PadChest' },
        { model: 'chexpert', label: 'CheXpert' },
      ],
    }),
  );
  return ws;
}

const barSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: 'False positives in healthy children',
  width: 240,
  height: 160,
  data: { name: 'fpr' },
  transform: [{ lookup: 'model', from: { data: { name: 'labels' }, key: 'model', fields: ['label'] } }],
  mark: 'bar',
  encoding: {
    x: { field: 'label', type: 'nominal', sort: null, title: 'Model' },
    y: { field: 'fpr', type: 'quantitative', axis: { format: '%' }, title: 'FPR' },
  },
};

function withValues(over: Partial<PlotWith>): PlotWith {
  return { data: ['out/fpr.csv', 'out/labels.json'], svg: 'out/fig.svg', png: 'out/fig.png', scale: 2, config: {}, ...over };
}

const bars = (svg: string): string[] => [...svg.matchAll(/<path[^>]*aria-roledescription="bar"[^>]*>/g)].map((m) => m[0]);

/** Count of pixels darker than `below` (all channels) in a region of a PNG. */
async function darkPixels(png: Buffer, region: { left: number; top: number; width: number; height: number }, below = 100) {
  const { data, info } = await sharp(png).extract(region).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i]! < below && data[i + 1]! < below && data[i + 2]! < below) n++;
  return n;
}

async function expectStageError(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StageError);
  const message = (e as StageError).message;
  for (const re of patterns) expect(message).toMatch(re);
  return message;
}

describe('uses: plot', () => {
  it('renders a bar chart from a CSV and a JSON dataset to SVG and PNG', async () => {
    const ws = workspace();
    writeFileSync(join(ws, 'figs/fpr.vl.json'), JSON.stringify(barSpec, null, 2));
    const ctx = fakeContext(ws, withValues({ spec: 'figs/fpr.vl.json' }));
    await run(ctx);

    const svg = readFileSync(join(ws, 'out/fig.svg'), 'utf8');
    const marks = bars(svg);
    expect(marks).toHaveLength(4);
    // Every bar got its label through the lookup into the JSON dataset, and the empty CSV cell did not break n.
    for (const label of ['VinDr-CXR', 'NIH', 'PadChest', 'CheXpert']) expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('class="mark-rect role-mark');
    expect(svg).toContain('font-family="DejaVu Sans"');
    expect(svg).toContain('>False positives in healthy children</text>');
    // Bar heights are proportional to the CSV values (y scale 0..0.6 over 160 px): chexpert is the tallest.
    const heights = marks.map((m) => Number(/v(-?[\d.]+)h/.exec(m)![1]));
    expect(heights.indexOf(Math.max(...heights))).toBe(3);

    const png = readFileSync(join(ws, 'out/fig.png'));
    const meta = await sharp(png).metadata();
    const w = Number(/<svg[^>]*\swidth="(\d+)"/.exec(svg)![1]);
    const h = Number(/<svg[^>]*\sheight="(\d+)"/.exec(svg)![1]);
    expect(meta.format).toBe('png');
    expect([meta.width, meta.height]).toEqual([w * 2, h * 2]);
    expect(ctx.records).toMatchObject({ font: 'DejaVu Sans' });
    // Nothing but the outputs (no temp file of the atomic writes).
    expect(readdirSync(join(ws, 'out')).sort()).toEqual(['fig.png', 'fig.svg', 'fpr.csv', 'labels.json']);
  });

  it('draws the title text into the PNG (dark glyph pixels where the title is, none without it)', async () => {
    const ws = workspace();
    await run(fakeContext(ws, withValues({ inline: barSpec, svg: 'out/a.svg', png: 'out/a.png' })));
    // Same layout, title drawn in white: any dark pixel left in the band would not be the title's.
    await run(fakeContext(ws, withValues({ inline: barSpec, svg: 'out/b.svg', png: 'out/b.png', config: { title: { color: '#ffffff' } } })));
    const withTitle = readFileSync(join(ws, 'out/a.png'));
    const meta = await sharp(withTitle).metadata();
    // The title band: the top ~20 SVG units (×2 scale), full width.
    const band = { left: 0, top: 0, width: meta.width!, height: 40 };
    const dark = await darkPixels(withTitle, band);
    expect(dark).toBeGreaterThan(200);
    const untitled = readFileSync(join(ws, 'out/b.png'));
    expect((await sharp(untitled).metadata()).width).toBe(meta.width);
    expect(await darkPixels(untitled, band)).toBe(0);
  });

  it('applies width/height/title/config overrides and writes only the SVG when png is not given', async () => {
    const ws = workspace();
    await run(
      fakeContext(ws, withValues({ inline: barSpec, png: undefined, width: 400, title: 'Overridden', config: { font: 'DejaVu Serif' } })),
    );
    const svg = readFileSync(join(ws, 'out/fig.svg'), 'utf8');
    expect(svg).toContain('>Overridden</text>');
    expect(svg).toContain('font-family="DejaVu Serif"');
    expect(readdirSync(join(ws, 'out'))).not.toContain('fig.png');
    const bar = bars(svg)[0]!;
    expect(Number(/h([\d.]+)v/.exec(bar)![1])).toBeGreaterThan(80); // 400 px / 4 bands
  });

  it('warns when an encoding reads a column the dataset does not have', async () => {
    const ws = workspace();
    const spec = { ...barSpec, transform: undefined, encoding: { x: { field: 'model', type: 'nominal' }, y: { field: 'fprr', type: 'quantitative' } } };
    const ctx = fakeContext(ws, withValues({ inline: spec, png: undefined }));
    await run(ctx);
    expect(ctx.logs).toContain(
      'vega-lite: /encoding/y/field: field "fprr" is not a column of dataset "fpr" (columns: model, fpr, n, adult); that encoding will be empty',
    );
    // Fields a transform may derive are not second-guessed (the lookup adds "label").
    const ok = fakeContext(ws, withValues({ inline: barSpec, png: undefined }));
    await run(ok);
    expect(ok.logs.filter((l) => l.includes('not a column'))).toEqual([]);
  });

  it('replaces only the text of a title object', async () => {
    const ws = workspace();
    await run(fakeContext(ws, withValues({ inline: { ...barSpec, title: { text: 'Old', subtitle: 'Keep me' } }, title: 'New', png: undefined })));
    const svg = readFileSync(join(ws, 'out/fig.svg'), 'utf8');
    expect(svg).toContain('>New</text>');
    expect(svg).toContain('>Keep me</text>');
  });

  it('names the missing dataset and lists the ones provided', async () => {
    const ws = workspace();
    writeFileSync(join(ws, 'figs/x.vl.json'), JSON.stringify({ ...barSpec, data: { name: 'fpr_by_age' } }));
    await expectStageError(
      run(fakeContext(ws, withValues({ spec: 'figs/x.vl.json' }))),
      /^figs\/x\.vl\.json: /,
      /"fpr_by_age"/,
      /provides "fpr", "labels"/,
    );
  });

  it('reports invalid spec JSON with file, line and column', async () => {
    const ws = workspace();
    writeFileSync(join(ws, 'figs/bad.vl.json'), '{\n  "mark": "bar",\n  "encoding": {,\n}\n');
    await expectStageError(run(fakeContext(ws, withValues({ spec: 'figs/bad.vl.json' }))), /^figs\/bad\.vl\.json:3:16: /, /not valid JSON/);
    writeFileSync(join(ws, 'figs/trail.vl.json'), '{"mark": "bar",\n "width": 3,}');
    await expectStageError(run(fakeContext(ws, withValues({ spec: 'figs/trail.vl.json' }))), /:2:13: /, /trailing comma/);
  });

  it('turns a Vega-Lite compile error into a StageError naming the spec', async () => {
    const ws = workspace();
    writeFileSync(join(ws, 'figs/m.vl.json'), JSON.stringify({ ...barSpec, mark: 'barr' }));
    await expectStageError(run(fakeContext(ws, withValues({ spec: 'figs/m.vl.json' }))), /^figs\/m\.vl\.json: .*mark "barr" at \/mark is not a Vega-Lite mark/);
  });

  it('refuses data loaded by URL, which would bypass the cache', async () => {
    const ws = workspace();
    await expectStageError(
      run(fakeContext(ws, withValues({ inline: { ...barSpec, data: { url: 'out/fpr.csv' }, transform: [] } }))),
      /loads data by URL \(out\/fpr\.csv\)/,
    );
  });

  it('requires exactly one of spec and inline', async () => {
    const ws = workspace();
    writeFileSync(join(ws, 'figs/fpr.vl.json'), JSON.stringify(barSpec));
    await expectStageError(run(fakeContext(ws, withValues({ spec: 'figs/fpr.vl.json', inline: barSpec }))), /exactly one of `spec`.*not both/);
    await expectStageError(run(fakeContext(ws, withValues({}))), /has neither/);
  });

  it('refuses characters no installed font has (they would be tofu boxes) and names them', async () => {
    const ws = workspace();
    const msg = await expectStageError(
      run(fakeContext(ws, withValues({ inline: { ...barSpec, title: 'FPR \u{10FFFD} children' } }))),
      /U\+10FFFD/,
      /empty boxes/,
    );
    expect(msg).not.toMatch(/U\+0046/); // the covered letters are not blamed
    expect(readdirSync(join(ws, 'out'))).not.toContain('fig.svg');
  });

  it('reports data file problems with the file and line', async () => {
    const ws0 = workspace();
    writeFileSync(join(ws0, 'out/labels.json'), '{"rows": [{"model": "a"}, 3]}');
    await expectStageError(run(fakeContext(ws0, withValues({ inline: barSpec }))), /out\/labels\.json: "rows"\[1\] is 3, not an object/);
    const ws = workspace();
    writeFileSync(join(ws, 'out/ragged.csv'), 'a,b\n1,2\n3\n');
    await expectStageError(run(fakeContext(ws, withValues({ inline: barSpec, data: ['out/ragged.csv'] }))), /out\/ragged\.csv: .*line 3/);
    mkdirSync(join(ws, 'out/other'));
    writeFileSync(join(ws, 'out/other/fpr.json'), '[]');
    await expectStageError(
      run(fakeContext(ws, withValues({ inline: barSpec, data: ['out/fpr.csv', 'out/other/fpr.json'] }))),
      /both give the dataset name "fpr"/,
    );
  });
});

describe('plot helpers', () => {
  it('parses CSV with one type per column', async () => {
    const { parseCsvRows } = await import('../../stages/plot/lib/datasets.js');
    const r = parseCsvRows('id,x,flag,note\n007,1.5,true,\n8,-2e3,FALSE,n/a\n9,,true,3\n');
    expect(r).toEqual({
      ok: true,
      value: {
        columns: ['id', 'x', 'flag', 'note'],
        rows: [
          { id: 7, x: 1.5, flag: true, note: null },
          { id: 8, x: -2000, flag: false, note: 'n/a' },
          { id: 9, x: null, flag: true, note: '3' },
        ],
      },
    });
    expect(parseCsvRows('a,a\n1,2\n')).toEqual({ ok: false, error: 'line 1: column name "a" appears twice' });
  });

  it('finds the first JSON syntax error with its position', async () => {
    const { parseJsonText } = await import('../../stages/plot/lib/json-text.js');
    expect(parseJsonText('{"a": [1, 2,, 3]}')).toEqual({ ok: false, error: { line: 1, column: 13, message: 'expected a JSON value but found ","' } });
    expect(parseJsonText('{\n "a": tru\n}')).toEqual({ ok: false, error: { line: 2, column: 7, message: 'expected a JSON value but found "t"' } });
    expect(parseJsonText('{"a": 1')).toEqual({ ok: false, error: { line: 1, column: 8, message: "expected ',' or '}' but found end of input" } });
    expect(parseJsonText('\uFEFF{"a": "\\u00e9"}')).toEqual({ ok: true, value: { a: 'é' } });
  });

  it('reads the top-level name of nested and escaped field strings', async () => {
    const { topLevelField } = await import('../../stages/plot/lib/spec.js');
    expect(topLevelField('a.b')).toBe('a');
    expect(topLevelField('a\\.b')).toBe('a.b');
    expect(topLevelField('a[0]')).toBe('a');
    expect(topLevelField('Pred. Percentage')).toBe('Pred');
  });
});

describe('plot: composite specs', () => {
  it('renders a faceted chart (Vega-Lite derives facet_domain_* datasets itself)', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'pipe-plot-facet-'));
    mkdirSync(join(ws, 'out'));
    writeFileSync(
      join(ws, 'out/fpr_by_age.csv'),
      'model,eval,age,fpr\n' + ['a', 'b'].flatMap((m) => ['x', 'y', 'z'].flatMap((e) => [0, 1, 2].map((age) => `${m},${e},${age},0.${age + 2}`))).join('\n') + '\n',
    );
    const spec = {
      data: { name: 'fpr_by_age' },
      facet: { row: { field: 'model', type: 'nominal' }, column: { field: 'eval', type: 'nominal' } },
      spec: { width: 80, height: 60, mark: 'bar', encoding: { x: { field: 'age', type: 'ordinal' }, y: { field: 'fpr', type: 'quantitative' } } },
    };
    await run(fakeContext(ws, { inline: spec, data: ['out/fpr_by_age.csv'], svg: 'out/f.svg', png: 'out/f.png', scale: 1, config: {} }));
    const svg = readFileSync(join(ws, 'out/f.svg'), 'utf8');
    expect(bars(svg)).toHaveLength(18);
  });
});

describe('plot: hyperlinks (issue 11.19)', () => {
  // Through the real CLI: vega-scenegraph's crash was an unhandled TypeError in the stage's own process.
  it('renders a spec with an href channel without links, and says which field it dropped', () => {
    const ws = cliWorkspace({
      'data/d.csv': 'model,fpr,url\nvindr_cxr,0.3,https://example.org/a\nnih,0.5,javascript:alert(1)\n',
      'figs/links.vl.json': JSON.stringify({
        layer: [
          {
            mark: 'bar',
            encoding: {
              x: { field: 'model', type: 'nominal' },
              y: { field: 'fpr', type: 'quantitative' },
              href: { field: 'url', type: 'nominal' },
            },
          },
          { mark: { type: 'text', href: 'https://example.org/constant', dy: -5 }, encoding: { x: { field: 'model', type: 'nominal' }, y: { field: 'fpr', type: 'quantitative' }, text: { field: 'model' } } },
        ],
        data: { name: 'd' },
      }),
      'p.yaml': [
        'name: links',
        'stages:',
        '  fig:',
        '    uses: plot',
        '    with: {spec: figs/links.vl.json, data: [data/d.csv], svg: out/links.svg, png: out/links.png}',
        '',
      ].join('\n'),
    });
    try {
      const r = pipe(ws.dir, ['run', 'p.yaml', '-v']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const svg = ws.read('out/links.svg');
      expect(bars(svg)).toHaveLength(2);
      expect(svg).not.toMatch(/<a[\s>]/);
      expect(svg).not.toMatch(/href="(?!#)/);
      expect(svg).not.toContain('cursor');
      expect(ws.exists('out/links.png')).toBe(true);
      const log = r.stdout + r.stderr;
      expect(log).toContain('figs/links.vl.json: /layer/0/encoding/href: links are not rendered');
      expect(log).toContain('figs/links.vl.json: /layer/1/mark/href: links are not rendered');
    } finally {
      ws.cleanup();
    }
  });
});
