/**
 * `pipe exp show` and `pipe exp diff` as data: rows (the workspace first, then the variants), the columns worth
 * showing (params that differ between rows, the metrics the pipeline declares), sorting, picking columns, and
 * fitting a terminal by choosing columns rather than wrapping lines. Pure.
 */
import { didYouMean } from '../dsl/diagnostics.js';
import { matcher } from '../glob.js';
import { formatChange, formatValue, metricsDiff, type MetricDelta } from '../metrics.js';
import { tableWidth, width, type Table } from '../ui/table.js';
import { paramText, sameValue } from './params.js';
import type { VariantRecord } from './records.js';

/** One row of the comparison: the workspace as it is (baseline), or a recorded variant. */
export interface ExpRow {
  name: string;
  baseline?: boolean;
  experiment?: string;
  /** `stale`: the workspace, whose metrics files a stage that is not up to date left (see `reason`). */
  status: VariantRecord['status'] | 'workspace' | 'stale';
  reason?: string;
  /** Flattened params in force. */
  params: Record<string, unknown>;
  /** Metrics file → flattened metrics. */
  metrics: Record<string, Record<string, unknown>>;
  durationMs?: number;
}

/** A metric column: its name in tables (the flat key, or `file:key` where two files share a key). */
export interface MetricColumn {
  id: string;
  path: string;
  key: string;
}

export interface Columns {
  /** Params whose value is not the same in every row (a variant's axes). */
  params: string[];
  metrics: MetricColumn[];
}

export function rowOf(r: VariantRecord): ExpRow {
  return {
    name: r.name,
    ...(r.experiment !== undefined ? { experiment: r.experiment } : {}),
    status: r.status,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    params: r.params,
    metrics: r.metrics,
    durationMs: r.durationMs,
  };
}

/**
 * The columns of these rows: every param some row sets differently from another, in the order the params are
 * declared; every metric key some row has of the metrics files the variants recorded (a variant that brings only
 * `targets:` up to date records only theirs: the workspace's other metrics files would be noise), in `metricPaths`
 * order.
 */
export function columnsOf(rows: readonly ExpRow[], metricPaths: readonly string[]): Columns {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.params)))];
  const params = names.filter((n) => rows.some((r) => !sameValue(r.params[n], rows[0]!.params[n])));
  const recorded = new Set(rows.filter((r) => !r.baseline).flatMap((r) => Object.keys(r.metrics)));
  const all = [...metricPaths, ...[...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].filter((p) => !metricPaths.includes(p)).sort()];
  const paths = recorded.size > 0 ? all.filter((p) => recorded.has(p)) : all;
  const found: Array<{ path: string; key: string }> = [];
  for (const path of paths) {
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics[path] ?? {})))];
    for (const key of keys) found.push({ path, key });
  }
  const shared = new Set(found.filter((m, i) => found.findIndex((x) => x.key === m.key) !== i).map((m) => m.key));
  return { params, metrics: found.map((m) => ({ ...m, id: shared.has(m.key) ? `${m.path}:${m.key}` : m.key })) };
}

/** Does `name` (a column id, or `file:key`) name this metric column? */
export function namesMetric(c: MetricColumn, name: string): boolean {
  return c.id === name || `${c.path}:${c.key}` === name;
}

export function metricValue(r: ExpRow, c: MetricColumn): unknown {
  return r.metrics[c.path]?.[c.key];
}

/** `--only`: keep the param and metric columns matching any pattern (names or globs); unknown ones are errors. */
export function pickColumns(cols: Columns, patterns: readonly string[]): Columns | { error: string } {
  const all = [...cols.params, ...cols.metrics.map((m) => m.id)];
  for (const p of patterns) {
    if (!all.some((c) => matcher([p])(c))) return { error: `--only ${p}: no such param or metric column${didYouMean(p, all)} (columns: ${all.join(', ') || 'none'})` };
  }
  const keep = matcher(patterns);
  return { params: cols.params.filter(keep), metrics: cols.metrics.filter((m) => keep(m.id)) };
}

/** `--sort COL [--desc]`: variants by a param or metric (numbers numerically, missing values last); the workspace stays first. */
export function sortRows(rows: readonly ExpRow[], cols: Columns, by: string, desc: boolean): ExpRow[] | { error: string } {
  const metric = cols.metrics.find((m) => m.id === by);
  const isParam = rows.some((r) => Object.prototype.hasOwnProperty.call(r.params, by));
  if (!metric && !isParam) {
    const all = [...cols.params, ...cols.metrics.map((m) => m.id)];
    return { error: `--sort ${by}: no such param or metric${didYouMean(by, [...all, ...Object.keys(rows[0]?.params ?? {})])}` };
  }
  const value = (r: ExpRow): unknown => (metric ? metricValue(r, metric) : r.params[by]);
  const cmp = (a: ExpRow, b: ExpRow): number => {
    const x = value(a);
    const y = value(b);
    if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? 1 : -1;
    const d = typeof x === 'number' && typeof y === 'number' ? x - y : String(paramText(x)).localeCompare(paramText(y));
    return desc ? -d : d;
  };
  const [base, rest] = [rows.filter((r) => r.baseline), rows.filter((r) => !r.baseline)];
  return [...base, ...rest.sort(cmp)];
}

/** A status worth a column: only when some variant did not end well, or the workspace's metrics are stale. */
function statusText(r: ExpRow): string {
  return r.status === 'ok' || r.status === 'workspace' ? '' : r.status;
}

/** The whole table: name, (state), params, metrics — what `--md` and `--csv` print. */
export function showTable(rows: readonly ExpRow[], cols: Columns): Table {
  const withState = rows.some((r) => statusText(r) !== '');
  const header = ['experiment', ...(withState ? ['state'] : []), ...cols.params, ...cols.metrics.map((m) => m.id)];
  const lead = withState ? 2 : 1;
  const body = rows.map((r) => [
    r.name,
    ...(withState ? [statusText(r)] : []),
    ...cols.params.map((p) => paramText(r.params[p])),
    ...cols.metrics.map((m) => formatValue(metricValue(r, m))),
  ]);
  return { header, rows: body, right: new Set(cols.metrics.map((_, i) => lead + cols.params.length + i)) };
}

/**
 * The table for a terminal `maxWidth` columns wide: the name (and state), then columns in priority order while they
 * fit — the params that differ, the `preferred` metrics, metrics that differ between rows, then the rest — shown in
 * their usual order. Returns the columns left out.
 */
export function fitTable(rows: readonly ExpRow[], cols: Columns, maxWidth: number, preferred: readonly string[] = []): { table: Table; hidden: string[] } {
  const varies = (m: MetricColumn): boolean => rows.some((r) => !sameValue(metricValue(r, m), metricValue(rows[0]!, m)));
  const isPreferred = (m: MetricColumn): boolean => preferred.some((p) => namesMetric(m, p));
  const priority = [
    ...cols.params.map((p) => ({ param: p })),
    ...cols.metrics.filter((m) => isPreferred(m)).map((m) => ({ metric: m })),
    ...cols.metrics.filter((m) => !isPreferred(m) && varies(m)).map((m) => ({ metric: m })),
    ...cols.metrics.filter((m) => !isPreferred(m) && !varies(m)).map((m) => ({ metric: m })),
  ];
  const chosen: Columns = { params: [], metrics: [] };
  const hidden: string[] = [];
  for (const c of priority) {
    const trial: Columns = 'param' in c ? { params: [...chosen.params, c.param], metrics: chosen.metrics } : { params: chosen.params, metrics: [...chosen.metrics, c.metric] };
    const ordered: Columns = { params: cols.params.filter((p) => trial.params.includes(p)), metrics: cols.metrics.filter((m) => trial.metrics.includes(m)) };
    if (tableWidth(showTable(rows, ordered)) <= maxWidth) {
      chosen.params = ordered.params;
      chosen.metrics = ordered.metrics;
    } else hidden.push('param' in c ? c.param : c.metric.id);
  }
  return { table: showTable(rows, chosen), hidden };
}

/** The line under a fitted table naming what did not fit, itself within `maxWidth`. */
export function hiddenNote(hidden: readonly string[], maxWidth: number): string {
  if (hidden.length === 0) return '';
  const tail = ' (--only picks; --md, --csv show all)';
  let names = hidden.join(', ');
  const head = `${hidden.length} more column${hidden.length > 1 ? 's' : ''}: `;
  if (width(head + names + tail) > maxWidth) {
    const room = Math.max(0, maxWidth - width(head + tail) - 1);
    names = [...names].slice(0, room).join('') + '…';
  }
  return head + names + tail;
}

/** `pipe exp diff A B`: the params that differ, then every metric that changed (all of them with `all`). */
export function diffRows(a: ExpRow, b: ExpRow, all: boolean): { params: Array<{ name: string; a: unknown; b: unknown }>; metrics: MetricDelta[] } {
  const names = [...new Set([...Object.keys(a.params), ...Object.keys(b.params)])];
  return {
    params: names.filter((n) => !sameValue(a.params[n], b.params[n])).map((n) => ({ name: n, a: a.params[n], b: b.params[n] })),
    metrics: metricsDiff(a.metrics, b.metrics, all),
  };
}

export function diffTable(a: ExpRow, b: ExpRow, d: ReturnType<typeof diffRows>): Table {
  const multi = new Set(d.metrics.map((m) => m.path)).size > 1;
  return {
    header: ['', a.name, b.name, 'change'],
    rows: [
      ...d.params.map((p) => [`param ${p.name}`, paramText(p.a), paramText(p.b), '']),
      ...d.metrics.map((m) => [`${multi ? `${m.path}:` : ''}${m.metric}`, formatValue(m.old), formatValue(m.new), formatChange(m)]),
    ],
    right: new Set([3]),
  };
}
