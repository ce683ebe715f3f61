/** `pipe status FILE`: which stages are stale, and why (nothing runs; exit 0). Also prints `--dry-run` plans. */
import { disagreementText, type Decision } from '../plan.js';
import { planStages } from '../run.js';
import { openWorkspace } from '../workspace.js';
import { loadAll, selectStages } from './load.js';
import { pipeVersion } from './version.js';

export interface StatusOptions {
  set?: string[];
  paramsFile?: string[];
  json?: boolean;
}

export async function statusCommand(file: string, targets: string[], opts: StatusOptions): Promise<number> {
  const loaded = await loadAll(file, { overrides: opts.set ?? [], paramsFiles: opts.paramsFile ?? [] });
  const selected = selectStages(loaded, targets, false);
  const ws = await openWorkspace(loaded.pipeline);
  const decisions = await planStages({
    pipeline: loaded.pipeline,
    graph: loaded.graph,
    workspace: ws,
    selected,
    emit: () => {},
    pipeVersion: pipeVersion(),
  });
  if (opts.json) {
    const stages = [...decisions].map(([stage, d]) => ({
      stage,
      action: d.action,
      reasons: d.reasons.map((r) => r.text),
      codes: d.reasons.map((r) => r.code),
      key: d.info?.key ?? null,
      ...(d.nondeterministic?.length ? { nondeterministic: d.nondeterministic } : {}),
    }));
    process.stdout.write(`${JSON.stringify({ pipeline: loaded.pipeline.file, stages }, null, 2)}\n`);
  } else printPlan(decisions, { all: false, header: 'status' });
  return 0;
}

const WORDS: Record<string, Record<Decision['action'], string>> = {
  would: { run: 'would run', restore: 'would be restored from the cache', 'up-to-date': 'up to date' },
  status: { run: 'stale, will run', restore: 'stale, restorable from the cache', 'up-to-date': 'up to date' },
};

/** One block per stage that is not up to date (all stages with `all`), then a count of the up-to-date ones. */
export function printPlan(decisions: Map<string, Decision>, opts: { all: boolean; header: 'would' | 'status' }): void {
  const words = WORDS[opts.header]!;
  const lines: string[] = [];
  let upToDate = 0;
  let nondeterministic = 0;
  for (const [stage, d] of decisions) {
    // A stage whose key gave different bytes on different runs is named whatever its state.
    const nd = d.nondeterministic ?? [];
    if (nd.length > 0) nondeterministic++;
    if (d.action === 'up-to-date') {
      upToDate++;
      if ((!opts.all || decisions.size > 50) && nd.length === 0) continue;
    }
    lines.push(`${stage}: ${words[d.action]}${nd.length > 0 ? ' (nondeterministic)' : ''}`);
    for (const r of d.reasons) lines.push(`    ${r.text}`);
    for (const x of nd) lines.push(`    ${disagreementText(x)}`);
  }
  const stale = decisions.size - upToDate;
  if (stale === 0) lines.push(`All ${decisions.size} stage(s) are up to date.`);
  else lines.push(`${stale} of ${decisions.size} stage(s) ${opts.header === 'would' ? 'would change' : 'are stale'}; ${upToDate} up to date.`);
  if (nondeterministic > 0) lines.push(`${nondeterministic} stage(s) produced different outputs from the same inputs (nondeterministic; see above).`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
