/**
 * Metrics files (outs with `metric: true`, JSON) flattened to `a.b.c → value`, for `pipe metrics`, `pipe metrics
 * diff` and `pipe exp`. Pure helpers, except `readMetricsFile` and `readOutMetrics` (one bounded read).
 */
import { absPath } from '../cache/paths.js';
import { readBoundedSync, type BoundedRead } from '../cache/read.js';
import type { OutPolicy } from './out-policy.js';
import { tableWidth, textTable, type Table } from './ui/table.js';

export interface MetricsRow {
  stage: string;
  path: string;
  /** `current` for the file on disk, else the ISO end time of the run it came from. */
  run: string;
  metrics: Record<string, unknown>;
}

/** `{a: {b: 1}, c: [1, 2]}` → `{'a.b': 1, 'c.0': 1, 'c.1': 2}`. */
export function flatten(value: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length === 0 && prefix) out[prefix] = Array.isArray(value) ? '[]' : '{}';
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = value;
  else out.value = value;
  return out;
}

/** The largest metrics file read (`PIPE_MAX_METRICS_BYTES`): metrics are small JSON summaries, not datasets. */
export function maxMetricsBytes(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.PIPE_MAX_METRICS_BYTES);
  return Number.isSafeInteger(n) && n > 0 ? n : 16 * 1024 * 1024;
}

/**
 * One metrics file, flattened; or why it cannot be shown (missing, too large, not JSON) in a phrase that follows
 * its path.
 */
export function readMetricsFile(abs: string, maxBytes = maxMetricsBytes()): { metrics: Record<string, unknown> } | { problem: string; missing?: true } {
  // A stage wrote it: read non-blocking and only as a regular file, so a FIFO there cannot hang `pipe metrics`.
  let r: BoundedRead;
  try {
    r = readBoundedSync(abs, maxBytes);
  } catch (e) {
    return { problem: `cannot be read (${(e as Error).message})` };
  }
  if (r.ok) return parseMetrics(r.bytes.toString('utf8'));
  if (r.why === 'missing') return { problem: 'missing', missing: true };
  if (r.why === 'too-large') return { problem: `is ${r.size} bytes, over the limit of ${maxBytes} for a metrics file (set PIPE_MAX_METRICS_BYTES to raise it)` };
  return { problem: r.why === 'not-a-file' ? 'is not a regular file' : 'cannot be read' };
}

/**
 * The metrics file a stage declares at `rel` (workspace-relative), read only where an out may be
 * (engine/out-policy.ts): one that resolves outside the workspace, a link a stage left there, is not read as the
 * stage's metrics (`pipe metrics` showed the linked file as the stage's current values).
 */
export function readOutMetrics(outs: OutPolicy, root: string, rel: string): ReturnType<typeof readMetricsFile> {
  const refused = outs.check(rel, { fresh: true });
  return refused ? { problem: `is not read: ${refused.reason}` } : readMetricsFile(absPath(root, rel));
}

/** Metrics from JSON text (a file's, or a cached object's). */
export function parseMetrics(text: string): { metrics: Record<string, unknown> } | { problem: string } {
  try {
    return { metrics: flatten(JSON.parse(text)) };
  } catch (e) {
    return { problem: `is not valid JSON (${(e as Error).message})` };
  }
}

/** A metric value as a cell: numbers to 6 significant digits, strings as they are, the rest as JSON, `-` if absent. */
export function formatValue(v: unknown): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Pivoted: stage, file, run, then one column per metric key (union over rows, sorted). */
export function pivotTable(rows: readonly MetricsRow[]): Table {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort();
  return {
    header: ['stage', 'file', 'run', ...keys],
    rows: rows.map((r) => [r.stage, r.path, r.run, ...keys.map((k) => formatValue(r.metrics[k]))]),
    right: new Set(keys.map((_, i) => i + 3)),
  };
}

/** Long: one line per metric (stage, file, metric, value), the run column only when rows come from several runs. */
export function longTable(rows: readonly MetricsRow[]): Table {
  const runs = rows.some((r) => r.run !== 'current');
  const header = runs ? ['stage', 'file', 'run', 'metric', 'value'] : ['stage', 'file', 'metric', 'value'];
  const body = rows.flatMap((r) => Object.entries(r.metrics).map(([k, v]) => [r.stage, r.path, ...(runs ? [r.run] : []), k, formatValue(v)]));
  return { header, rows: body, right: new Set([header.length - 1]) };
}

/** The pivoted table when every line fits `width` columns (a few metrics), else the long one. */
export function metricsTable(rows: readonly MetricsRow[], width = Infinity): string {
  const pivot = pivotTable(rows);
  return textTable(tableWidth(pivot) <= width ? pivot : longTable(rows));
}

/** One metric that differs between two states (`pipe metrics diff`, `pipe exp diff`). */
export interface MetricDelta {
  path: string;
  metric: string;
  old: unknown;
  new: unknown;
  /** new − old when both are numbers. */
  change?: number;
}

/**
 * Metric by metric, file by file: what changed between `old` and `now` (path → flattened metrics); with `all`,
 * unchanged ones too. Files and keys in order (files sorted, keys as the new file lists them, then removed ones).
 */
export function metricsDiff(old: Record<string, Record<string, unknown>>, now: Record<string, Record<string, unknown>>, all = false): MetricDelta[] {
  const out: MetricDelta[] = [];
  for (const path of [...new Set([...Object.keys(now), ...Object.keys(old)])].sort()) {
    const a = old[path] ?? {};
    const b = now[path] ?? {};
    for (const metric of [...new Set([...Object.keys(b), ...Object.keys(a)])]) {
      const o = a[metric];
      const n = b[metric];
      const same = JSON.stringify(o) === JSON.stringify(n);
      if (same && !all) continue;
      const d: MetricDelta = { path, metric, old: o, new: n };
      if (typeof o === 'number' && typeof n === 'number') d.change = n - o;
      out.push(d);
    }
  }
  return out;
}

/** A change as people read it: `+0.012`, `-3`, `0` (6 significant digits, like values). */
export function formatChange(d: MetricDelta): string {
  if (d.change === undefined) return d.old === undefined ? 'added' : d.new === undefined ? 'removed' : 'changed';
  const v = formatValue(d.change);
  return d.change > 0 ? `+${v}` : v;
}

/** `pipe metrics diff`'s table: file, metric, the old state, the new one, the change. */
export function diffTable(deltas: readonly MetricDelta[], oldLabel: string, newLabel: string): Table {
  return {
    header: ['file', 'metric', oldLabel, newLabel, 'change'],
    rows: deltas.map((d) => [d.path, d.metric, formatValue(d.old), formatValue(d.new), formatChange(d)]),
    right: new Set([2, 3, 4]),
  };
}
