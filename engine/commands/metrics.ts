/**
 * `pipe metrics FILE [--all] [--long] [--json]`: every stage's metrics files. A pivoted table (one row per file, one
 * column per metric) when it fits the terminal, else a long one (stage, file, metric, value).
 *
 * `pipe metrics diff FILE [--rev REF] [--all] [--md|--json]`: the workspace's metrics against those the lock file at
 * a git revision names (default HEAD), as DVC's `metrics diff`: each metric's value there, here, and the change. The
 * old values are read from the cache by the hashes that lock file records, else from git when the metrics files are
 * committed themselves.
 */
import type { LocalStore } from '../../cache/store.js';
import { openStore } from '../../cache/store.js';
import type { Hash } from '../../cache/types.js';
import { gitShow, gitTop } from '../git.js';
import { lockPath, parseLock } from '../lockfile.js';
import { diffTable, maxMetricsBytes, metricsDiff, metricsTable, parseMetrics, readOutMetrics, type MetricsRow } from '../metrics.js';
import { OutPolicy } from '../out-policy.js';
import type { Pipeline } from '../model.js';
import { absPath } from '../../cache/paths.js';
import { csvTable, markdownTable, terminalWidth, textTable } from '../ui/table.js';
import { openWorkspace, pipeDirOf } from '../workspace.js';
import { UsageError } from './errors.js';
import { loadAll } from './load.js';

export async function metricsCommand(file: string, opts: { all?: boolean; json?: boolean; long?: boolean }): Promise<number> {
  const { pipeline } = await loadAll(file);
  const ws = await openWorkspace(pipeline);
  const rows: MetricsRow[] = [];
  const problems: string[] = [];
  for (const stage of pipeline.stages) {
    const metricOuts = stage.outs.filter((o) => o.metric && !o.path.endsWith('/'));
    if (metricOuts.length === 0) continue;
    for (const o of metricOuts) {
      const r = readOutMetrics(ws.outs, ws.root, o.path);
      if ('metrics' in r) rows.push({ stage: stage.name, path: o.path, run: 'current', metrics: r.metrics });
      else problems.push(`${o.path}: ${r.problem}${r.missing ? ` (stage ${stage.name} has not run)` : ''}`);
    }
    if (!opts.all) continue;
    for (const rec of await ws.runs.history(stage.name)) {
      for (const o of metricOuts) {
        const stored = rec.outputs.find((x) => x.path === o.path);
        if (!stored || stored.size > maxMetricsBytes()) continue;
        const r = await cachedMetrics(ws.store, stored.hash);
        if (r) rows.push({ stage: stage.name, path: o.path, run: rec.endedAt, metrics: r });
      }
    }
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ rows, problems }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) process.stdout.write('No metrics files found (declare outs with `metric: true`).\n');
  else process.stdout.write(`${metricsTable(rows, opts.long ? 0 : terminalWidth())}\n`);
  for (const p of problems) process.stderr.write(`note: ${p}\n`);
  return 0;
}

/** A cached metrics file, flattened; undefined when collected by gc or not JSON. */
async function cachedMetrics(store: LocalStore, hash: Hash): Promise<Record<string, unknown> | undefined> {
  try {
    const r = parseMetrics((await store.readObject(hash)).toString('utf8'));
    return 'metrics' in r ? r.metrics : undefined;
  } catch {
    return undefined;
  }
}

/** path → flattened metrics of the workspace's metrics files as they are now; problems noted. */
export function workspaceMetrics(pipeline: Pipeline, root: string, problems: string[] = []): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const outs = OutPolicy.of(pipeline, pipeDirOf(pipeline));
  for (const s of pipeline.stages) {
    for (const o of s.outs) {
      if (!o.metric || o.path.endsWith('/')) continue;
      const r = readOutMetrics(outs, root, o.path);
      if ('metrics' in r) out[o.path] = r.metrics;
      else problems.push(`${o.path}: ${r.problem}${r.missing ? ` (stage ${s.name} has not run)` : ''}`);
    }
  }
  return out;
}

export interface MetricsDiffOptions {
  rev?: string;
  all?: boolean;
  json?: boolean;
  md?: boolean;
  csv?: boolean;
}

export async function metricsDiffCommand(file: string, opts: MetricsDiffOptions): Promise<number> {
  const { pipeline } = await loadAll(file);
  const rev = opts.rev ?? 'HEAD';
  const found = gitTop(pipeline.workdir);
  if ('error' in found) throw new UsageError(`metrics diff --rev ${rev}: ${pipeline.workdir} is not in a git repository (${found.error}); it compares with the lock file committed at a git revision`);
  const lockFile = lockPath(pipeline.file);
  const lockAt = gitShow(found.top, rev, lockFile, 256 * 1024 * 1024);
  if ('error' in lockAt) throw new UsageError(`metrics diff --rev ${rev}: ${lockAt.error}`);
  const problems: string[] = [];
  const old: Record<string, Record<string, unknown>> = {};
  if ('missing' in lockAt) problems.push(`${rel(pipeline, lockFile)} is not in ${rev} (commit it with the pipeline): every metric counts as added`);
  else {
    const lock = await parseLock(lockAt.bytes.toString('utf8'));
    if (!lock) throw new UsageError(`metrics diff --rev ${rev}: ${rel(pipeline, lockFile)} at ${rev} is not a lock file pipe can read`);
    const store = openStore(pipeline.settings.cacheDir);
    const byPath = new Map<string, string>();
    for (const s of Object.values(lock.stages)) for (const o of Array.isArray(s?.outs) ? s.outs : []) if (typeof o?.hash === 'string') byPath.set(String(o.path), o.hash);
    for (const stage of pipeline.stages) {
      for (const o of stage.outs) {
        if (!o.metric || o.path.endsWith('/')) continue;
        const hash = byPath.get(o.path);
        if (hash === undefined) continue; // not run at that revision: added
        const values = (await cachedMetrics(store, hash as Hash)) ?? committedMetrics(found.top, rev, absPath(pipeline.workdir, o.path));
        if (values) old[o.path] = values;
        else problems.push(`${o.path} at ${rev}: neither in the cache (collected by \`pipe gc\`?) nor committed to git; shown as added`);
      }
    }
  }
  const now = workspaceMetrics(pipeline, pipeline.workdir, problems);
  const deltas = metricsDiff(old, now, opts.all ?? false);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ rev, diff: deltas, problems }, null, 2)}\n`);
    return 0;
  }
  const table = diffTable(deltas, rev, 'workspace');
  if (deltas.length === 0) process.stdout.write(`No metric changed since ${rev}${opts.all ? '' : ' (--all lists them all)'}.\n`);
  else process.stdout.write(`${opts.md ? markdownTable(table) : opts.csv ? csvTable(table) : textTable(table)}\n`);
  for (const p of problems) process.stderr.write(`note: ${p}\n`);
  return 0;
}

function committedMetrics(top: string, rev: string, abs: string): Record<string, unknown> | undefined {
  const r = gitShow(top, rev, abs, maxMetricsBytes());
  if (!('bytes' in r)) return undefined;
  const m = parseMetrics(r.bytes.toString('utf8'));
  return 'metrics' in m ? m.metrics : undefined;
}

function rel(p: Pipeline, abs: string): string {
  return abs.startsWith(`${p.workdir}/`) ? abs.slice(p.workdir.length + 1) : abs;
}
