/**
 * Metrics files (outs with `metric: true`, JSON) flattened to `a.b.c → value` rows, for `pipe metrics`.
 * Pure helpers; the command reads files.
 */

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

/** A plain-text table: stage, file, run, then one column per metric key (union over rows, sorted). */
export function metricsTable(rows: readonly MetricsRow[]): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort();
  const header = ['stage', 'file', 'run', ...keys];
  const body = rows.map((r) => [r.stage, r.path, r.run, ...keys.map((k) => cell(r.metrics[k]))]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function cell(v: unknown): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  return typeof v === 'string' ? v : JSON.stringify(v);
}
