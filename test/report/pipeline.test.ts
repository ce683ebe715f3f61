// plot and report run by the real engine (`node bin/pipe.js run`): the provenance in report.html is what the engine
// recorded, and a spec error reaches the user as one paragraph.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pipe, pipeBin as PIPE } from '../support/cli.js';


const MAKE_DATA = `mkdir -p out/data
printf 'model,fpr\\nVinDr-CXR,0.304\\nNIH,0.4965\\nPadChest,0.3862\\n' > out/data/fpr.csv
printf '{"children": {"fpr": 0.304}}' > out/data/headline.json
`;

const PIPELINE = `name: mini-paper
settings:
  summary: [out/report.html]
stages:
  data:
    cmd: sh make-data.sh
    deps: [make-data.sh]
    outs: [out/data/fpr.csv, out/data/headline.json]
  fig:
    uses: plot
    with:
      spec: figures/fpr.vl.json
      data: [out/data/fpr.csv]
      svg: out/fig/fpr.svg
      png: out/fig/fpr.png
  report:
    uses: report
    env: {SOURCE_DATE_EPOCH: "1700000000"}
    with:
      title: Mini paper
      inputs: [out/data/fpr.csv, out/data/headline.json, out/fig/fpr.svg]
      sections:
        - title: Results
          numbers: [{ label: FPR children, file: out/data/headline.json, pointer: /children/fpr, format: ".2%" }]
          figures: [out/fig/fpr.svg]
          tables: [{ path: out/data/fpr.csv, formats: { fpr: ".1%" } }]
      html: out/report.html
      markdown: out/report.md
`;

const SPEC = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: 'FPR in healthy children',
  data: { name: 'fpr' },
  mark: 'bar',
  encoding: { x: { field: 'model', type: 'nominal' }, y: { field: 'fpr', type: 'quantitative' } },
};

function miniWorkspace(spec: string = JSON.stringify(SPEC, null, 2)): string {
  const ws = mkdtempSync(join(tmpdir(), 'pipe-report-e2e-'));
  mkdirSync(join(ws, 'figures'));
  writeFileSync(join(ws, 'pipeline.yaml'), PIPELINE);
  writeFileSync(join(ws, 'make-data.sh'), MAKE_DATA);
  writeFileSync(join(ws, 'figures/fpr.vl.json'), spec);
  return ws;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('plot → report through the engine', () => {
  it('renders the figure, and the report prints the provenance the engine recorded', () => {
    const ws = miniWorkspace();
    const first = pipe(ws, ['run', 'pipeline.yaml']);
    expect(first.code, first.out).toBe(0);
    // The closing line names the pipeline's main output (settings.summary).
    expect(first.out.trim().split('\n').slice(-2)).toEqual([expect.stringMatching(/^done: 3 ran in /), 'report: out/report.html']);

    const svg = readFileSync(join(ws, 'out/fig/fpr.svg'), 'utf8');
    expect(svg.match(/aria-roledescription="bar"/g)).toHaveLength(3);
    const html = readFileSync(join(ws, 'out/report.html'), 'utf8');
    expect(html).toContain('<div class="value">30.40%</div>');
    expect(html).toContain('<td>NIH</td><td class="num">49.6%</td>'); // 0.4965 is 0.49649999… in binary
    expect(html.match(/aria-roledescription="bar"/g)).toHaveLength(3);

    // Upstream stages in topological order, each with a key and its outputs' content hashes.
    const upstream = html.slice(html.indexOf('id="upstream"'), html.indexOf('id="inputs"'));
    const stages = [...upstream.matchAll(/<td><strong>([^<]+)<\/strong>/g)].map((m) => m[1]);
    expect(stages).toEqual(['data', 'fig']);
    expect(upstream.match(/<td class="hash">[0-9a-f]{64}<\/td>/g)).toHaveLength(2);
    expect(upstream).toContain('<code>plot</code>');
    expect(upstream).toContain(sha256(join(ws, 'out/fig/fpr.svg')));
    expect(upstream).toContain(sha256(join(ws, 'out/data/headline.json')));
    expect(upstream).toMatch(/<strong>vegaLite<\/strong>: 5\.\d+\.\d+/); // what the plot stage recorded
    // The report's own inputs with their hashes, and the pipeline it came from.
    const inputs = html.slice(html.indexOf('id="inputs"'));
    expect(inputs).toContain(sha256(join(ws, 'out/data/fpr.csv')));
    expect(html).toContain('<code>pipeline.yaml</code>');
    expect(html).toContain('<dd>mini-paper</dd>');
    expect(html).toMatch(/<dt>Report key<\/dt><dd class="hash">[0-9a-f]{64}<\/dd>/);

    // A second run changes nothing.
    const before = readFileSync(join(ws, 'out/report.html'), 'utf8');
    const second = pipe(ws, ['run', 'pipeline.yaml']);
    expect(second.code, second.out).toBe(0);
    expect(second.out).not.toMatch(/▶|will run/);
    expect(second.out.trim().split('\n').slice(-1)).toEqual(['report: out/report.html']);
    expect(readFileSync(join(ws, 'out/report.html'), 'utf8')).toBe(before);

    // Re-running every stage writes the same report bytes (issue 10.8): its date is the SOURCE_DATE_EPOCH its env:
    // declares (keyed), never the clock, and the new upstream runs' timings never reach it.
    expect(before).toContain('<dt>Generated</dt><dd>2023-11-14T22:13:20.000Z <span class="source">(SOURCE_DATE_EPOCH)</span></dd>');
    const md = readFileSync(join(ws, 'out/report.md'), 'utf8');
    const forced = pipe(ws, ['run', 'pipeline.yaml', '--force', '*']);
    expect(forced.code, forced.out).toBe(0);
    expect(forced.out).toMatch(/✔ report done/);
    expect(forced.out).toMatch(/✔ data done/);
    expect(readFileSync(join(ws, 'out/report.html'), 'utf8')).toBe(before);
    expect(readFileSync(join(ws, 'out/report.md'), 'utf8')).toBe(md);

    // Editing the spec re-renders the figure and, since its SVG changed, the report.
    writeFileSync(join(ws, 'figures/fpr.vl.json'), JSON.stringify({ ...SPEC, title: 'Retitled' }));
    const third = pipe(ws, ['run', 'pipeline.yaml']);
    expect(third.code, third.out).toBe(0);
    expect(readFileSync(join(ws, 'out/report.html'), 'utf8')).toContain('>Retitled</text>');
  });

  it('names the report on the closing line of the live terminal view too', (ctx) => {
    // `script` gives pipe a pseudo-terminal, so it draws the listr2 view (CI unset) as on a user's screen.
    const script = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' });
    if (script.status !== 0) {
      console.warn('TTY closing-line test skipped: `script` (util-linux / bsdutils) is not installed');
      ctx.skip();
    }
    const ws = miniWorkspace();
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', TERM: 'xterm' };
    delete env.CI;
    const r = spawnSync('script', ['-qec', `${process.execPath} ${PIPE} run pipeline.yaml`, '/dev/null'], { cwd: ws, encoding: 'utf8', env, timeout: 90_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    expect(lines.slice(-2)).toEqual([expect.stringMatching(/^done: 3 ran in /), 'report: out/report.html']);
    // Drawn by the live view (cursor control, no plain "▶ stage" start lines), not by the plain renderer.
    expect(r.stdout).toContain('\x1b[?25');
    expect(lines.some((l) => l.startsWith('▶'))).toBe(false);
  });

  it('reports a broken spec as one paragraph with file, line and column, no stack trace', () => {
    const ws = miniWorkspace('{\n  "mark": "bar",\n  "data": {"name": "fpr"}\n  "encoding": {}\n}\n');
    const r = pipe(ws, ['run', 'pipeline.yaml']);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("figures/fpr.vl.json:4:3: the spec is not valid JSON: expected ',' or '}' but found");
    expect(r.out).not.toMatch(/\n\s+at .*\.js:\d+/);
    expect(r.out).not.toContain('report: out/report.html'); // the report was not made: not named
  });
});
