import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UpstreamRun } from '../../engine/stage-api.js';
import { run as plot } from '../../stages/plot/run.js';
import type { ReportWith } from '../../stages/report/run.js';
import { fakeContext, type FakeContext } from '../support/context.js';

const h = (c: string): string => `sha256:${c.repeat(64)}`;

/** Two real figures from the plot stage (same vega clip ids in both), a PNG, a CSV table and a headline JSON. */
export async function reportWorkspace(): Promise<string> {
  const ws = mkdtempSync(join(tmpdir(), 'pipe-report-'));
  for (const d of ['out/eval/figures', 'out/review/figures', 'out/report']) mkdirSync(join(ws, d), { recursive: true });
  writeFileSync(
    join(ws, 'out/eval/fpr_children.csv'),
    'model,fpr,lo,hi,n\nVinDr-CXR,0.30404,0.2819,0.3266,582\nNIH,0.49654,0.4747,0.5183,582\nPadChest,0.38616,0.3641,0.4085,582\nCheXpert,0.59684,0.5756,0.6174,582\n',
  );
  writeFileSync(
    join(ws, 'out/eval/headline.json'),
    JSON.stringify({
      models: { vindr_cxr: { threshold: 0.26521, fpr_children: { value: 0.304, lo: 0.2819, hi: 0.3266 } } },
      'a/b': { 'c~d': 42 },
    }),
  );
  writeFileSync(
    join(ws, 'out/review/summary_stats.csv'),
    'category,datasets,patients,children,pct_children\nTotal,203,512608,6026,1.1755\nChallenges,50,,1200,0.9\n',
  );
  const bar = (field: string, title: string) => ({
    title,
    width: 220,
    height: 140,
    data: { name: 'fpr_children' },
    mark: { type: 'bar', clip: true },
    encoding: { x: { field: 'model', type: 'nominal', sort: null }, y: { field, type: 'quantitative' } },
  });
  const common = { data: ['out/eval/fpr_children.csv'], scale: 1, config: {} };
  await plot(fakeContext(ws, { ...common, inline: bar('fpr', 'FPR in healthy children'), svg: 'out/eval/figures/fpr_children.svg' }));
  await plot(fakeContext(ws, { ...common, inline: bar('n', 'Children per model'), svg: 'out/review/figures/counts.svg', png: 'out/review/figures/counts.png' }));
  return ws;
}

export const UPSTREAM: UpstreamRun[] = [
  {
    stage: 'review_summary',
    key: 'a'.repeat(64),
    uses: 'review/summary',
    outputs: [{ path: 'out/review/summary_stats.csv', hash: h('1') }],
  },
  {
    stage: 'eval_fpr@vindr_cxr',
    key: 'b'.repeat(64),
    uses: 'evaluate/fpr',
    outputs: [
      { path: 'out/eval/fpr_children.csv', hash: h('2') },
      { path: 'out/eval/headline.json', hash: h('3') },
    ],
    extra: { backend: 'wasm', resamples: 12000 },
  },
  { stage: 'fig_counts', key: 'c'.repeat(64), cmd: 'python plot.py --out out/review/figures', outputs: [] },
];

export const INPUTS = [
  'out/eval/fpr_children.csv',
  'out/eval/headline.json',
  'out/review/summary_stats.csv',
  'out/eval/figures/fpr_children.svg',
  'out/review/figures/',
];

export function reportWith(over: Partial<ReportWith> = {}): ReportWith {
  return {
    title: 'Age bias in chest X-ray classifiers',
    intro: 'Reproduction of the **headline** results.\n\nSecond paragraph with `code`.',
    inputs: INPUTS,
    html: 'out/report/report.html',
    markdown: 'out/report/summary.md',
    sections: [
      {
        title: 'Dataset review',
        text: 'Children are about 1% of patients.',
        tables: [{ path: 'out/review/summary_stats.csv', caption: 'Summary', formats: { patients: ',d', pct_children: '.2f' } }],
        figures: [{ path: 'out/review/figures/counts.png', caption: 'Children per model (PNG)' }],
      },
      {
        title: 'Evaluation',
        numbers: [
          {
            label: 'FPR, healthy children (VinDr-CXR model)',
            file: 'out/eval/headline.json',
            pointer: '/models/vindr_cxr/fpr_children/value',
            format: '.2%',
            low: '/models/vindr_cxr/fpr_children/lo',
            high: '/models/vindr_cxr/fpr_children/hi',
          },
          { label: 'Threshold', file: 'out/eval/headline.json', pointer: '/models/vindr_cxr/threshold', format: '.4f' },
          { label: 'Escaped pointer', file: 'out/eval/headline.json', pointer: '/a~1b/c~0d', suffix: ' %' },
        ],
        figures: ['out/eval/figures/fpr_children.svg', { path: 'out/review/figures/counts.svg', caption: 'Counts' }],
        tables: [{ path: 'out/eval/fpr_children.csv', columns: ['model', 'fpr'], formats: { fpr: '.2%' }, maxRows: 3 }],
      },
    ],
    ...over,
  };
}

export function reportCtx(ws: string, w: ReportWith = reportWith(), upstream: UpstreamRun[] = UPSTREAM): FakeContext<ReportWith> {
  return fakeContext(ws, w, {
    stage: 'report',
    key: 'd'.repeat(64),
    upstream,
    depHashes: { 'out/review/summary_stats.csv': h('1'), 'out/eval/fpr_children.csv': h('2'), 'out/eval/headline.json': h('3') },
    pipeline: { file: 'pipelines/paper.yaml', name: 'paper', pipeVersion: '0.1.0' },
  });
}


/**
 * A figure written by someone hostile: every way an SVG has run script in a browser — on the root (onload), a
 * <script> element (inline and by href), HTML inside <foreignObject> (<img onerror>), an <image> that fails to load,
 * a javascript: link (clicked) and handlers on hover and click, plus a stylesheet that loads from outside. Each
 * payload shows a dialog and logs a console marker, so a test can see any that ran.
 */
export const HOSTILE_SVG = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="320" height="200" viewBox="0 0 320 200" onload="console.log('PWNED svg-onload'); alert('svg-onload')">
  <script>console.log('PWNED script'); alert('script')</script>
  <script xlink:href="data:text/javascript,console.log('PWNED script-href');alert('script-href')"/>
  <foreignObject x="0" y="0" width="100" height="40"><img xmlns="http://www.w3.org/1999/xhtml" src="does-not-exist.png" onerror="console.log('PWNED img-onerror'); alert('img-onerror')"/></foreignObject>
  <image href="does-not-exist.png" x="0" y="40" width="10" height="10" onerror="console.log('PWNED image-onerror'); alert('image-onerror')"/>
  <a xlink:href="javascript:console.log('PWNED link');alert('link')"><rect id="bait" x="20" y="60" width="120" height="60" fill="#c33"/><text x="30" y="95" fill="white" font-family="DejaVu Sans">click me</text></a>
  <circle id="hover" cx="230" cy="90" r="40" fill="url(#grad)" onmouseover="console.log('PWNED hover'); alert('hover')" onclick="console.log('PWNED click'); alert('click')"/>
  <defs><linearGradient id="grad"><stop offset="0" stop-color="#36c"/><stop offset="1" stop-color="#9cf"/></linearGradient></defs>
  <rect x="160" y="150" width="140" height="30" fill="#393" style="fill: url(http://127.0.0.1:9/exfil.svg#x)"/>
  <set attributeName="onmouseover" to="alert('set')"/>
  <text x="20" y="180" font-family="DejaVu Sans" font-size="14">hostile figure</text>
</svg>
`;
