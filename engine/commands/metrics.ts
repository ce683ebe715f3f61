/** `pipe metrics FILE [--all] [--json]`: every stage's metrics files as one table, optionally across earlier runs. */
import { readFileSync } from 'node:fs';
import { flatten, metricsTable, type MetricsRow } from '../metrics.js';
import { absPath } from '../plan.js';
import { openWorkspace } from '../workspace.js';
import { loadAll } from './load.js';

export async function metricsCommand(file: string, opts: { all?: boolean; json?: boolean }): Promise<number> {
  const { pipeline } = await loadAll(file);
  const ws = await openWorkspace(pipeline);
  const rows: MetricsRow[] = [];
  const problems: string[] = [];
  for (const stage of pipeline.stages) {
    const metricOuts = stage.outs.filter((o) => o.metric && !o.path.endsWith('/'));
    if (metricOuts.length === 0) continue;
    for (const o of metricOuts) {
      try {
        rows.push({ stage: stage.name, path: o.path, run: 'current', metrics: flatten(JSON.parse(readFileSync(absPath(ws.root, o.path), 'utf8'))) });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        problems.push(code === 'ENOENT' ? `${o.path}: missing (stage ${stage.name} has not run)` : `${o.path}: not valid JSON (${(e as Error).message})`);
      }
    }
    if (!opts.all) continue;
    for (const rec of await ws.runs.history(stage.name)) {
      for (const o of metricOuts) {
        const stored = rec.outputs.find((x) => x.path === o.path);
        if (!stored) continue;
        try {
          const text = (await ws.store.readObject(stored.hash)).toString('utf8');
          rows.push({ stage: stage.name, path: o.path, run: rec.endedAt, metrics: flatten(JSON.parse(text)) });
        } catch {
          // Collected by gc, or not JSON: nothing to show for that run.
        }
      }
    }
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ rows, problems }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) process.stdout.write('No metrics files found (declare outs with `metric: true`).\n');
  else process.stdout.write(`${metricsTable(rows)}\n`);
  for (const p of problems) process.stderr.write(`note: ${p}\n`);
  return 0;
}
