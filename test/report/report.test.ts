import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { resolvePointer } from '../../stages/report/lib/json-pointer.js';
import { isListed } from '../../stages/report/lib/sections.js';
import { safeStyleDeclarations, sanitizeSvg } from '../../stages/report/lib/svg-sanitize.js';
import { reportDate, run } from '../../stages/report/run.js';
import { HOSTILE_SVG, reportCtx, reportWith, reportWorkspace, UPSTREAM } from './fixture.js';

async function stageError(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StageError);
  return (e as StageError).message;
}

describe('uses: report', () => {
  it('writes one self-contained HTML page with sections, figures, tables, numbers and provenance', async () => {
    const ws = await reportWorkspace();
    const ctx = reportCtx(ws);
    await run(ctx);
    const html = readFileSync(join(ws, 'out/report/report.html'), 'utf8');

    // Sections and their order, with the provenance section last.
    const h2 = [...html.matchAll(/<h2>([^<]*)<\/h2>/g)].map((m) => m[1]);
    expect(h2).toEqual(['Dataset review', 'Evaluation', 'Provenance']);
    expect(html).toContain('<strong>headline</strong>');
    expect(html).toContain('<code>code</code>');

    // Numbers through JSON pointers (escaped ~1 and ~0 too), d3-formatted, with the interval.
    expect(html).toContain('<div class="value">30.40%</div>');
    expect(html).toContain('95% CI 28.19%–32.66%');
    expect(html).toContain('<div class="value">0.2652</div>');
    expect(html).toContain('<div class="value">42 %</div>');

    // Tables: formatted columns, empty cells, numeric alignment, column subset and maxRows.
    expect(html).toContain('<td class="num">512,608</td>');
    expect(html).toContain('<td class="num">1.18</td>');
    expect(html).toContain('<td class="num"></td>'); // Challenges has no patient count
    expect(html).toMatch(/<td>VinDr-CXR<\/td><td class="num">30\.40%<\/td><\/tr>/);
    expect(html).not.toContain('<td>CheXpert</td>');
    expect(html).toContain('1 more rows in out/eval/fpr_children.csv');

    // Figures: two inline SVGs (vega's clip ids made unique per figure) and one PNG as a data URI.
    expect(html.match(/<svg\b/g)).toHaveLength(2);
    expect(html).not.toContain('<?xml');
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(html).toMatch(/clip-path="url\(#s2f1-clip\d+\)"/);
    expect(html).toMatch(/clip-path="url\(#s2f2-clip\d+\)"/);
    expect(html).toMatch(/<img src="data:image\/png;base64,iVBORw0KGgo[^"]+" alt="Children per model \(PNG\)">/);

    // Nothing is fetched: no external stylesheet, script, font or image.
    expect(html).not.toMatch(/<link\b|<script\b|@import|@font-face|src="(?!data:)/);
    expect(html).not.toMatch(/url\((?!#)/);

    // Provenance: pipeline, versions, this stage's key, every upstream stage's key and output hashes, inputs, extras.
    expect(html).toContain('<code>pipelines/paper.yaml</code>');
    expect(html).toContain('<dt>pipe version</dt><dd>0.1.0</dd>');
    expect(html).toContain(`<dd class="hash">${'d'.repeat(64)}</dd>`);
    for (const k of ['a', 'b', 'c']) expect(html).toContain(`<td class="hash">${k.repeat(64)}</td>`);
    for (const c of ['1', '2', '3']) expect(html).toContain(`sha256:${c.repeat(64)}`);
    expect(html).toContain('<div><strong>backend</strong>: wasm</div><div><strong>resamples</strong>: 12000</div>');
    expect(html).toContain('<code>python plot.py --out out/review/figures</code>');
    // The date is the newest upstream run's end, never the clock.
    expect(html).toContain('Generated 2025-03-02T09:30:15.250Z by pipe 0.1.0');
    expect(html).toContain('<dt>Generated</dt><dd>2025-03-02T09:30:15.250Z <span class="source">(the end of the newest upstream run (eval_fpr@vindr_cxr))</span></dd>');
    // A Content Security Policy forbids every script and every fetch, behind the sanitiser.
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">`);
    expect(readdirSync(join(ws, 'out/report')).sort()).toEqual(['report.html', 'summary.md']);
  });

  it('writes a Markdown summary with numbers, tables, relative figure links and provenance', async () => {
    const ws = await reportWorkspace();
    await run(reportCtx(ws));
    const md = readFileSync(join(ws, 'out/report/summary.md'), 'utf8');
    expect(md.startsWith('# Age bias in chest X-ray classifiers\n')).toBe(true);
    expect(md).toContain('- **FPR, healthy children (VinDr-CXR model):** 30.40% (95% CI 28.19%–32.66%) — `out/eval/headline.json#/models/vindr_cxr/fpr_children/value`');
    expect(md).toContain('| category | datasets | patients | children | pct_children |\n| --- | ---: | ---: | ---: | ---: |\n| Total | 203 | 512,608 | 6026 | 1.18 |\n| Challenges | 50 |  | 1200 | 0.90 |');
    expect(md).toContain('![fpr_children.svg](../eval/figures/fpr_children.svg)');
    expect(md).toContain('![Counts](../review/figures/counts.svg)');
    expect(md).toContain(`| eval_fpr@vindr_cxr | \`evaluate/fpr\` | \`${'b'.repeat(64)}\` |`);
    expect(md).toContain(`| \`out/eval/headline.json\` | \`sha256:${'3'.repeat(64)}\` |`);
  });

  it('refuses a section file that is not listed in inputs, naming the section and the file', async () => {
    const ws = await reportWorkspace();
    const w = reportWith({ inputs: ['out/eval/fpr_children.csv', 'out/eval/headline.json', 'out/review/summary_stats.csv', 'out/eval/figures/fpr_children.svg'] });
    const msg = await stageError(run(reportCtx(ws, w)));
    expect(msg).toBe(
      'stage report: sections[0] ("Dataset review").figures[0] references out/review/figures/counts.png, which is not ' +
        'listed in with.inputs; add it there so that the report re-runs when it changes.',
    );
    expect(readdirSync(join(ws, 'out/report'))).toEqual([]);
  });

  it('names the file and pointer when a headline number is not there, and lists what is', async () => {
    const ws = await reportWorkspace();
    const w = reportWith({
      sections: [{ title: 'Eval', numbers: [{ label: 'x', file: 'out/eval/headline.json', pointer: '/models/nih/threshold' }] }],
    });
    expect(await stageError(run(reportCtx(ws, w)))).toBe(
      'sections[0] ("Eval").numbers[0]: out/eval/headline.json#/models/nih/threshold: /models has no "nih" (it has: vindr_cxr).',
    );
  });

  it('reports bad section fields, formats, columns and missing files clearly', async () => {
    const ws = await reportWorkspace();
    const bad = async (sections: unknown, inputs?: string[]) =>
      stageError(run(reportCtx(ws, reportWith({ sections, ...(inputs ? { inputs } : {}) }))));
    expect(await bad([])).toMatch(/sections must be a non-empty list/);
    expect(await bad([{ title: 'A', figure: ['x.svg'] }])).toMatch(/sections\[0\] \("A"\) has an unknown field "figure"/);
    expect(await bad([{ title: 'A', numbers: [{ label: 'x', file: 'out/eval/headline.json', pointer: 'models' }] }])).toMatch(
      /numbers\[0\]\.pointer "models" is not a JSON pointer/,
    );
    expect(await bad([{ title: 'A', numbers: [{ label: 'x', file: 'out/eval/headline.json', pointer: '/models', format: '.2%' }] }])).toMatch(
      /headline\.json#\/models is \{"vindr_cxr".*not a number/,
    );
    expect(await bad([{ title: 'A', tables: [{ path: 'out/eval/fpr_children.csv', formats: { fpr: 'nonsense!' } }] }])).toMatch(
      /tables\[0\]\.formats\.fpr: "nonsense!" is not a d3-format specifier/,
    );
    expect(await bad([{ title: 'A', tables: [{ path: 'out/eval/fpr_children.csv', columns: ['model', 'auroc'] }] }])).toMatch(
      /has no column "auroc" \(it has: model, fpr, lo, hi, n\)/,
    );
    expect(await bad([{ title: 'A', figures: ['out/review/figures/missing.svg'] }])).toMatch(
      /figures\[0\]: cannot read out\/review\/figures\/missing\.svg \(ENOENT\)/,
    );
    expect(await bad([{ title: 'A', figures: ['out/eval/fpr_children.csv'] }])).toMatch(/must be an \.svg or \.png file/);
  });

  it('renders a table with two header rows (duplicate names) as grouped columns', async () => {
    const ws = await reportWorkspace();
    writeFileSync(
      join(ws, 'out/review/breakdown.csv'),
      'Task,All,All,Segmentation,Segmentation\nType,Adult,Peds,Adult,Peds\nX-ray,959482,7520,0,0\nCT,891720,3019,4677,373\n',
    );
    const w = reportWith({
      inputs: ['out/review/'],
      sections: [{ title: 'Breakdown', tables: [{ path: 'out/review/breakdown.csv', headerRows: 2, formats: { All: ',d', '*': '.1f' } }] }],
    });
    await run(reportCtx(ws, w));
    const html = readFileSync(join(ws, 'out/report/report.html'), 'utf8');
    expect(html).toContain(
      '<thead><tr><th scope="col">Task</th><th scope="col" colspan="2" class="group">All</th><th scope="col" colspan="2" class="group">Segmentation</th></tr>' +
        '<tr><th scope="col">Type</th><th scope="col" class="num">Adult</th><th scope="col" class="num">Peds</th>',
    );
    expect(html).toContain('<tr><td>X-ray</td><td class="num">959,482</td><td class="num">7,520</td><td class="num">0.0</td><td class="num">0.0</td></tr>');
    const md = readFileSync(join(ws, 'out/report/summary.md'), 'utf8');
    expect(md).toContain('| Task / Type | All / Adult | All / Peds | Segmentation / Adult | Segmentation / Peds |\n| --- | ---: | ---: | ---: | ---: |');
    // With a single header row the same file's duplicate "All" is fine too (a display table, not a dataset).
    await run(reportCtx(ws, reportWith({ inputs: ['out/review/'], sections: [{ title: 'B', tables: ['out/review/breakdown.csv'] }] })));
  });

  it('reads numbers from a CSV row picked by `where`', async () => {
    const ws = await reportWorkspace();
    writeFileSync(join(ws, 'out/eval/hm.csv'), 'model,ratio,fpr\nvindr_cxr,0.5,0.51\nvindr_cxr,1.0,0.62\nnih,1.0,0.7\n');
    const num = (extra: Record<string, unknown>) => ({ label: 'x', file: 'out/eval/hm.csv', pointer: '/fpr', format: '.0%', ...extra });
    const w = (numbers: unknown[]) => reportWith({ inputs: ['out/eval/'], sections: [{ title: 'HM', numbers }] });
    await run(reportCtx(ws, w([num({ where: { model: 'vindr_cxr', ratio: '1.0' } }), num({ pointer: '/2/fpr' })])));
    const html = readFileSync(join(ws, 'out/report/report.html'), 'utf8');
    expect(html).toContain('<div class="value">62%</div>');
    expect(html).toContain('out/eval/hm.csv[model=vindr_cxr,ratio=1.0]#/fpr');
    expect(html).toContain('<div class="value">70%</div>');
    expect(await stageError(run(reportCtx(ws, w([num({ where: { ratio: 1 } })]))))).toBe(
      'sections[0] ("HM").numbers[0]: out/eval/hm.csv: 2 rows have ratio=1; add columns to `where` to pick one.',
    );
    expect(await stageError(run(reportCtx(ws, w([num({ where: { model: 'padchest' } })]))))).toMatch(/no row has model=padchest/);
  });

  it('dates the report from SOURCE_DATE_EPOCH or the newest upstream record, never the clock', () => {
    expect(reportDate({ SOURCE_DATE_EPOCH: '1700000000' }, UPSTREAM)).toEqual({ at: '2023-11-14T22:13:20.000Z', from: 'SOURCE_DATE_EPOCH' });
    expect(reportDate({}, UPSTREAM)).toEqual({ at: '2025-03-02T09:30:15.250Z', from: 'the end of the newest upstream run (eval_fpr@vindr_cxr)' });
    expect(reportDate({ SOURCE_DATE_EPOCH: '' }, [{ ...UPSTREAM[0]!, endedAt: undefined }])).toBeUndefined();
    expect(() => reportDate({ SOURCE_DATE_EPOCH: 'yesterday' }, UPSTREAM)).toThrow(/SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC, not "yesterday"/);
  });

  it('writes the same bytes when run twice on the same inputs (issue 10.8)', async () => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    delete process.env.SOURCE_DATE_EPOCH;
    try {
      const ws = await reportWorkspace();
      await run(reportCtx(ws));
      const html = readFileSync(join(ws, 'out/report/report.html'));
      const md = readFileSync(join(ws, 'out/report/summary.md'));
      await new Promise((r) => setTimeout(r, 1100)); // a clock-dated report would differ by now
      await run(reportCtx(ws));
      expect(readFileSync(join(ws, 'out/report/report.html')).equals(html)).toBe(true);
      expect(readFileSync(join(ws, 'out/report/summary.md')).equals(md)).toBe(true);
      // Undated without any record: still no clock.
      const bare = UPSTREAM.map((u) => ({ ...u, endedAt: undefined }));
      await run(reportCtx(ws, reportWith(), bare));
      const undated = readFileSync(join(ws, 'out/report/report.html'), 'utf8');
      expect(undated).toContain('<dt>Generated</dt><dd>undated (no upstream run record, and SOURCE_DATE_EPOCH is not set)</dd>');
      expect(undated).toContain('<p class="meta">Generated by pipe 0.1.0 from');
    } finally {
      if (saved !== undefined) process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  it('shows training timings from the upstream run records, tolerating runs that did not record them', async () => {
    const ws = await reportWorkspace();
    const upstream = [
      ...UPSTREAM,
      { stage: 'train@vindr_cxr', key: 'e'.repeat(64), uses: 'train/classifier', outputs: [], extra: { backend: 'wasm', train_seconds: 61, train_img_per_s: 123.456, workers: 2 } },
      // An older record (before timings moved into run records): no timings, no error.
      { stage: 'train@nih', key: 'f'.repeat(64), uses: 'train/classifier', outputs: [], extra: { backend: 'wasm' } },
      { stage: 'training-report', key: '0'.repeat(64), cmd: 'true', outputs: [] },
    ];
    const runsTable = {
      runs: 'train',
      caption: 'Training (from the run records)',
      fields: { backend: 'tfjs backend', train_seconds: 'Training time (s)', train_img_per_s: 'Images/s', workers: 'Workers' },
      formats: { train_img_per_s: '.1f' },
    };
    await run(reportCtx(ws, reportWith({ sections: [{ title: 'Training', tables: [runsTable] }] }), upstream));
    const html = readFileSync(join(ws, 'out/report/report.html'), 'utf8');
    expect(html).toContain('<span class="source">run records of train</span>');
    expect(html).toContain(
      '<tr><th scope="col">Stage</th><th scope="col">tfjs backend</th><th scope="col" class="num">Training time (s)</th>' +
        '<th scope="col" class="num">Images/s</th><th scope="col" class="num">Workers</th></tr>',
    );
    expect(html).toContain('<tr><td>train@vindr_cxr</td><td>wasm</td><td class="num">61</td><td class="num">123.5</td><td class="num">2</td></tr>');
    expect(html).toContain('<tr><td>train@nih</td><td>wasm</td><td class="num"></td><td class="num"></td><td class="num"></td></tr>');
    expect(html).not.toContain('<td>training-report</td>'); // a declaration name is not a prefix match
    const md = readFileSync(join(ws, 'out/report/summary.md'), 'utf8');
    expect(md).toContain('| train@vindr_cxr | wasm | 61 | 123.5 | 2 |');

    const bad = (table: unknown) => stageError(run(reportCtx(ws, reportWith({ sections: [{ title: 'T', tables: [table] }] }), upstream)));
    expect(await bad({ ...runsTable, runs: 'retrain' })).toMatch(
      /^sections\[0\] \("T"\)\.tables\[0\]\.runs: no upstream stage is retrain or an expansion of it \(retrain@…\); this report's upstream stages: review_summary, eval_fpr@vindr_cxr, /,
    );
    expect(await bad({ runs: 'train' })).toMatch(/tables\[0\]\.fields must name the recorded values to show/);
    expect(await bad({ ...runsTable, formats: { seconds: '.1f' } })).toMatch(/tables\[0\]\.formats names "seconds", which is not in fields/);
  });
});

describe('report helpers', () => {
  it('resolves RFC 6901 pointers and explains misses', () => {
    const doc = { a: [{ b: 1 }], 'x/y': { '~': 2 } };
    expect(resolvePointer(doc, '/a/0/b')).toEqual({ ok: true, value: 1 });
    expect(resolvePointer(doc, '/x~1y/~0')).toEqual({ ok: true, value: 2 });
    expect(resolvePointer(doc, '')).toEqual({ ok: true, value: doc });
    expect(resolvePointer(doc, '/a/3')).toEqual({ ok: false, error: '/a is a list of 1, and has no item "3"' });
    expect(resolvePointer(doc, '/a/0/b/c')).toEqual({ ok: false, error: '/a/0/b has no "c" (it is 1)' });
  });

  it('inlines SVG without prolog, scripts or handlers, prefixing ids and their references', () => {
    const r = sanitizeSvg(
      '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg onload="x()"><defs><clipPath id="clip1"/></defs><script>alert(1)</script>' +
        '<g clip-path="url(#clip1)"><use href="#clip1"/><a href="#other"/></g></svg>\n',
      'f9-',
    );
    expect(r).toEqual({
      ok: true,
      value: {
        svg: '<svg xmlns="http://www.w3.org/2000/svg"><defs><clipPath id="f9-clip1"/></defs><g clip-path="url(#f9-clip1)"><use href="#f9-clip1"/><g/></g></svg>',
        removed: ['<script> ×1', 'href="#other" (not #id or a raster data: URI) ×1', 'link <a> (kept as a group) ×1', 'onload event handler ×1'],
        scoped: false,
      },
    });
    expect(sanitizeSvg('<html></html>', 'p')).toEqual({ ok: false, error: 'is not an SVG document (its root element is <html>, not <svg>)' });
    expect(sanitizeSvg('<svg><g></svg>', 'p')).toEqual({ ok: false, error: 'is not well-formed XML (line 1, column 14: unexpected close tag)' });
    // Entities a DTD declares are never expanded (no billion laughs, no external entities).
    expect(sanitizeSvg('<!DOCTYPE svg [<!ENTITY a "b">]><svg>&a;</svg>', 'p')).toMatchObject({ ok: false, error: /undefined entity/ });
  });

  it('removes every script, handler, foreign content and outside URL from a hostile SVG (issue 11.20)', async () => {
    const r = sanitizeSvg(HOSTILE_SVG, 'h-');
    if (!r.ok) throw new Error(r.error);
    const svg = r.value.svg;
    expect(svg).not.toMatch(/<script|<foreignObject|<img|<set|<a[\s>]|\son[a-z]+=|javascript:|data:text|(?<!xmlns=")http:|does-not-exist/i);
    expect(r.value.removed).toEqual([
      '<foreignObject> ×1',
      '<script> ×2',
      '<set> ×1',
      'href="does-not-ex…" (not #id or a raster data: URI) ×1',
      'link <a> (kept as a group) ×1',
      'onclick event handler ×1',
      'onerror event handler ×1',
      'onload event handler ×1',
      'onmouseover event handler ×1',
      'style attribute (loads or escapes) ×1',
      'xlink:href="javascript:…" (not #id or a raster data: URI) ×1',
    ]);
    // What is left is drawn: the shapes, the gradient (its reference prefixed like its id), the text.
    expect(svg).toContain('<rect id="h-bait" x="20" y="60" width="120" height="60" fill="#c33"/>');
    expect(svg).toContain('fill="url(#h-grad)"');
    expect(svg).toContain('<linearGradient id="h-grad">');
    expect(svg).toContain('>hostile figure</text>');
    // Re-sanitising the output changes nothing: it is a fixed point.
    expect(sanitizeSvg(svg, '')).toEqual({ ok: true, value: { svg, removed: [], scoped: false } });
  });

  it('keeps a figure made by the plot stage exactly (nothing removed), and embeds a styled SVG as an image', async () => {
    const ws = await reportWorkspace();
    const vega = readFileSync(join(ws, 'out/eval/figures/fpr_children.svg'), 'utf8');
    const r = sanitizeSvg(vega, 'x-');
    if (!r.ok) throw new Error(r.error);
    expect(r.value.removed).toEqual([]);
    // Same elements and attributes, ids prefixed (vega declares xmlns:xlink and never uses it).
    const unprefixed = r.value.svg.replace(/(id="|url\(#)x-/g, '$1');
    expect(unprefixed).toBe(vega.trim().replace(/ xmlns:xlink="[^"]*"/, ''));

    writeFileSync(join(ws, 'out/eval/figures/styled.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" onload="alert(1)"><style>rect { fill: #369 }</style><rect id="r" width="40" height="20"/></svg>');
    await run(reportCtx(ws, reportWith({ inputs: ['out/eval/figures/'], sections: [{ title: 'S', figures: ['out/eval/figures/styled.svg'] }] })));
    const html = readFileSync(join(ws, 'out/report/report.html'), 'utf8');
    const uri = /<img src="data:image\/svg\+xml;base64,([^"]+)" alt="out\/eval\/figures\/styled\.svg">/.exec(html);
    expect(uri).not.toBeNull();
    expect(Buffer.from(uri![1]!, 'base64').toString()).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><style>rect { fill: #369 }</style><rect id="r" width="40" height="20"/></svg>',
    );
    expect(html).not.toContain('<style>rect');
  });

  it('keeps only allow-listed CSS declarations without outside URLs', () => {
    expect(safeStyleDeclarations('fill: red; stroke-width: 2; behavior: url(x.htc)')).toBeUndefined();
    expect(safeStyleDeclarations('fill: red; -webkit-user-modify: read-write; clip-path: url(#c)')).toBe('fill: red; clip-path: url(#c)');
    expect(safeStyleDeclarations('fill: u\\72l(http://x)')).toBeUndefined();
    expect(safeStyleDeclarations('fill: url( "https://x/y" )')).toBeUndefined();
    expect(safeStyleDeclarations('position: fixed; top: 0')).toBeUndefined();
  });

  it('drops CSS image functions that load a URL without url(): image-set, -webkit-image-set, image(), cross-fade()', () => {
    for (const v of [
      "mask: image-set('http://127.0.0.1:9/x.png' 1x)",
      "cursor: -webkit-image-set('https://x/y.png' 1x), auto",
      "fill: image('https://x/y.png')",
      "mask: cross-fade('https://x/a.png', 'https://x/b.png', 50%)",
    ]) expect(safeStyleDeclarations(v), v).toBeUndefined();
    const hostile =
      '<svg xmlns="http://www.w3.org/2000/svg"><style>rect{background: image-set("http://127.0.0.1:9/s.png" 1x)}</style>' +
      `<rect width="10" height="10" mask="image-set('http://127.0.0.1:9/m.png' 1x)" style="mask: image-set('http://127.0.0.1:9/x.png' 1x)"/></svg>`;
    const r = sanitizeSvg(hostile, 'f-');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.svg).not.toMatch(/127\.0\.0\.1|image-set/);
    expect(r.value.removed.join('\n')).toMatch(/mask attribute \(loads or escapes\)/);
  });

  it('names a figure that is not well-formed SVG, and refuses an input over the size limit', async () => {
    const ws = await reportWorkspace();
    writeFileSync(join(ws, 'out/eval/figures/broken.svg'), '<svg xmlns="http://www.w3.org/2000/svg">\n<g><rect></g></svg>');
    const w = reportWith({ inputs: ['out/eval/'], sections: [{ title: 'B', figures: ['out/eval/figures/broken.svg'] }] });
    expect(await stageError(run(reportCtx(ws, w)))).toBe(
      'sections[0] ("B").figures[0]: out/eval/figures/broken.svg is not well-formed XML (line 2, column 13: unexpected close tag).',
    );
    writeFileSync(join(ws, 'out/eval/big.csv'), '');
    truncateSync(join(ws, 'out/eval/big.csv'), 65 * 1024 * 1024);
    const big = reportWith({ inputs: ['out/eval/'], sections: [{ title: 'B', tables: ['out/eval/big.csv'] }] });
    expect(await stageError(run(reportCtx(ws, big)))).toMatch(
      /^sections\[0\] \("B"\)\.tables\[0\]: out\/eval\/big\.csv is 65\.0 MiB, over the report's 64 MiB limit for one input; summarise it/,
    );
    // A FIFO in place of a figure is refused at once, not waited on.
    execFileSync('mkfifo', [join(ws, 'out/eval/figures/fifo.svg')]);
    const fifo = reportWith({ inputs: ['out/eval/'], sections: [{ title: 'F', figures: ['out/eval/figures/fifo.svg'] }] });
    expect(await stageError(run(reportCtx(ws, fifo)))).toBe('sections[0] ("F").figures[0]: cannot read out/eval/figures/fifo.svg (not a regular file).');
  });

  it('treats an input ending in / as the folder it names', () => {
    expect(isListed('out/a/b.svg', ['out/a/'])).toBe(true);
    expect(isListed('./out/a/b.svg', ['out/a/b.svg'])).toBe(true);
    expect(isListed('out/ab/c.svg', ['out/a/'])).toBe(false);
    expect(isListed('out/a/b.svg', ['out/a'])).toBe(false);
  });
});
