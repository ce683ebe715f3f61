/**
 * `pipe exp show --html FILE`: one self-contained page — the whole comparison table, and for each swept param a
 * Vega-Lite chart of one metric against it. Charts are rendered to SVG by the plot kind's renderer (the one code
 * path from Vega-Lite to SVG, stages/plot/lib/render.ts), handed in by the command so that this module stays pure.
 * Nothing on the page loads or runs anything (a Content-Security-Policy says so too).
 */
import { formatValue } from '../metrics.js';
import { paramText } from './params.js';
import { metricValue, showTable, type Columns, type ExpRow, type MetricColumn } from './table.js';

/** What the page needs from the outside: a Vega-Lite renderer and HTML escaping. */
export interface PageTools {
  /** Vega-Lite spec + named datasets → an SVG document, or why not. */
  svg(spec: Record<string, unknown>, data: ReadonlyMap<string, Array<Record<string, unknown>>>): Promise<{ svg: string } | { error: string }>;
  escape(text: string): string;
}

export interface PageInput {
  title: string;
  rows: readonly ExpRow[];
  cols: Columns;
  /** The metric charted against each swept param. */
  metric?: MetricColumn;
  generatedAt: string;
}

/** The Vega-Lite spec of one chart: `metric` against `param` for the variants that have both. */
export function chartSpec(param: string, metric: string, values: ReadonlyArray<Record<string, unknown>>, grouped: boolean): Record<string, unknown> {
  const numeric = values.every((v) => typeof v.x === 'number');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 360,
    height: 220,
    title: { text: `${metric} vs ${param}`, anchor: 'start', fontSize: 14 },
    data: { name: 'variants' },
    mark: { type: 'line', point: { filled: true, size: 70 }, strokeWidth: 1.5 },
    encoding: {
      x: numeric ? { field: 'x', type: 'quantitative', title: param, scale: { zero: false } } : { field: 'x', type: 'ordinal', title: param, sort: null },
      y: { field: 'y', type: 'quantitative', title: metric, scale: { zero: false } },
      shape: { field: 'kind', type: 'nominal', title: null, scale: { domain: ['variant', 'workspace'], range: ['circle', 'diamond'] } },
      ...(grouped ? { color: { field: 'group', type: 'nominal', title: 'other params' } } : {}),
    },
    config: { font: 'DejaVu Sans' },
  };
}

/**
 * The chart's data: one point per variant that ended well and has a numeric value of the metric, and the workspace
 * (drawn as a diamond) where it has one.
 */
export function chartData(rows: readonly ExpRow[], cols: Columns, param: string, metric: MetricColumn): Array<Record<string, unknown>> {
  const others = cols.params.filter((p) => p !== param);
  return rows
    .filter((r) => (r.baseline || r.status === 'ok') && typeof metricValue(r, metric) === 'number' && r.params[param] !== undefined)
    .map((r) => ({
      name: r.name,
      kind: r.baseline ? 'workspace' : 'variant',
      x: typeof r.params[param] === 'number' ? r.params[param] : paramText(r.params[param]),
      y: metricValue(r, metric),
      group: others.map((p) => `${p}=${paramText(r.params[p])}`).join(', ') || 'all',
    }));
}

export async function experimentsPage(input: PageInput, tools: PageTools): Promise<string> {
  const e = tools.escape;
  const table = showTable(input.rows, input.cols);
  const head = `<tr>${table.header.map((h, i) => `<th${table.right?.has(i) ? ' class="num"' : ''}>${e(h)}</th>`).join('')}</tr>`;
  const body = table.rows
    .map((cells, r) => {
      const row = input.rows[r]!;
      const cls = row.baseline ? ' class="baseline"' : row.status !== 'ok' ? ' class="bad"' : '';
      const title = row.reason ? ` title="${e(row.reason)}"` : '';
      return `<tr${cls}${title}>${cells.map((c, i) => `<td${table.right?.has(i) ? ' class="num"' : ''}>${e(c)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const figures: string[] = [];
  const notes: string[] = [];
  if (!input.metric) notes.push('No chart: the pipeline declares no metrics (outs with <code>metric: true</code>) these variants recorded.');
  else if (input.cols.params.length === 0) notes.push('No chart: no param differs between the variants shown.');
  else {
    for (const param of input.cols.params) {
      const data = chartData(input.rows, input.cols, param, input.metric);
      if (!data.some((d) => d.kind === 'variant')) {
        notes.push(`No chart of ${e(input.metric.id)} against ${e(param)}: no variant that ended well has a numeric value of it.`);
        continue;
      }
      const grouped = new Set(data.map((d) => d.group)).size > 1;
      const variants = data.filter((d) => d.kind === 'variant').length;
      const r = await tools.svg(chartSpec(param, input.metric.id, data, grouped), new Map([['variants', data]]));
      if ('error' in r) notes.push(`No chart of ${e(input.metric.id)} against ${e(param)}: ${e(r.error)}`);
      else figures.push(`<figure class="chart" data-param="${e(param)}" data-metric="${e(input.metric.id)}"><div class="plot">${r.svg}</div><figcaption>${e(input.metric.id)} against ${e(param)}: ${variants} variant${variants > 1 ? 's' : ''}${data.length > variants ? ' and the workspace (◆)' : ''}</figcaption></figure>`);
    }
  }
  const base = input.rows.find((r) => r.baseline);
  const baseValue = base && input.metric ? metricValue(base, input.metric) : undefined;
  const baseText = !base ? '' : baseValue === undefined ? '; the workspace has no value for it (not computed there yet)' : `; the workspace has ${e(formatValue(baseValue))}`;
  const metricLine = input.metric ? `<p>Charted metric: <code>${e(input.metric.id)}</code> (${e(input.metric.path)})${baseText}.</p>` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(input.title)}</title>
<style>
body { font-family: "DejaVu Sans", sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0 2rem; font-size: 14px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; white-space: nowrap; }
th { border-bottom: 2px solid #888; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.baseline td { font-weight: bold; background: #f4f4f4; }
tr.bad td { color: #a00; }
.charts { display: flex; flex-wrap: wrap; gap: 2rem; }
figure { margin: 0; }
figcaption { font-size: 13px; color: #555; }
</style>
</head>
<body>
<h1>${e(input.title)}</h1>
<p>Generated ${e(input.generatedAt)} by <code>pipe exp show --html</code>. The first row is the workspace as it is; each other row a variant run in its own scratch workspace.</p>
${metricLine}
<table>
<thead>${head}</thead>
<tbody>
${body}
</tbody>
</table>
<div class="charts">
${figures.join('\n')}
</div>
${notes.map((n) => `<p class="note">${n}</p>`).join('\n')}
</body>
</html>
`;
}
