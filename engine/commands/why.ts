/**
 * `pipe why FILE STAGE`: the field-by-field difference between the stage's current key fields and the nearest
 * earlier run of it (which param, which file, which env), plus the plan's verdict.
 */
import { CacheError } from '../../cache/errors.js';
import { computeKey, disagreementText } from '../plan.js';
import { planStages } from '../run.js';
import type { Reason } from '../events.js';
import { changeReason, nearest } from '../why.js';
import { openWorkspace } from '../workspace.js';
import { UsageError } from './errors.js';
import { loadAll, selectStages } from './load.js';
import { pipeVersion } from './version.js';

export interface WhyOptions {
  set?: string[];
  paramsFile?: string[];
  json?: boolean;
}

export async function whyCommand(file: string, stageName: string, opts: WhyOptions): Promise<number> {
  const loaded = await loadAll(file, { overrides: opts.set ?? [], paramsFiles: opts.paramsFile ?? [] });
  const stage = loaded.pipeline.stages.find((s) => s.name === stageName);
  if (!stage) {
    const names = loaded.pipeline.stages.map((s) => s.name);
    const close = names.filter((n) => n.startsWith(stageName) || n.includes(stageName)).slice(0, 5);
    throw new UsageError(`no stage named ${stageName} in ${file}${close.length ? ` (did you mean ${close.join(', ')}?)` : ''}`);
  }
  const selected = selectStages(loaded, [stageName], false);
  const ws = await openWorkspace(loaded.pipeline);
  const decisions = await planStages({ pipeline: loaded.pipeline, graph: loaded.graph, workspace: ws, selected, emit: () => {}, pipeVersion: pipeVersion() });
  const d = decisions.get(stageName)!;
  // Deps that cannot be hashed as they are on disk (a broken link): the plan's reasons say why; nothing to compare.
  const info = await computeKey(stage, ws).catch((e: unknown) => {
    if (e instanceof CacheError) return undefined;
    throw e;
  });
  const history = await ws.runs.history(stageName, 50);
  const near = info && nearest(info.fields, history);
  const upstreamRuns = [...decisions].filter(([n, x]) => n !== stageName && x.action !== 'up-to-date').map(([n, x]) => ({ stage: n, action: x.action }));

  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          stage: stageName,
          action: d.action,
          reasons: d.reasons.map((r) => r.text),
          codes: d.reasons.map((r) => r.code),
          key: info?.key ?? null,
          compared: near
            ? {
                key: near.record.key,
                endedAt: near.record.endedAt,
                durationMs: near.record.durationMs,
                host: near.record.host,
                executor: near.record.executor,
                recorded: near.record.extra ?? {},
                execution: near.record.execution ?? {},
              }
            : null,
          changes: (near?.changes ?? []).map((c) => ({ code: changeReason(c).code, ...c })),
          upstream: upstreamRuns,
          runs: history.length,
          nondeterministic: d.nondeterministic ?? [],
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  const lines: string[] = [];
  const verdict = { 'up-to-date': 'up to date', restore: 'restorable from the cache', run: 'will run' }[d.action];
  // The codes the plan gave, once each: what `--json` and `pipe status --json` call them.
  const codes = [...new Set(d.reasons.map((r) => r.code))];
  lines.push(`${stageName}: ${verdict}${codes.length > 0 ? ` [${codes.join(', ')}]` : ''}`);
  if (!info) lines.push('  not compared with an earlier run: its deps cannot be hashed as they are on disk now (below).');
  else if (!near) lines.push('  never ran: there is no earlier run to compare with.');
  else {
    lines.push(`  compared with its run of ${near.record.endedAt} (key ${near.record.key.slice(0, 12)}, ${history.length} run(s) recorded):`);
    if (near.changes.length === 0) lines.push('    no difference in params, deps, env, command or outs');
    for (const c of near.changes) lines.push(`    ${c.message}`);
    const r = near.record;
    lines.push(`  that run took ${(r.durationMs / 1000).toFixed(1)} s on ${r.host} (${r.executor}${r.jobId ? ` job ${r.jobId}` : ''})`);
    if (r.extra && Object.keys(r.extra).length > 0) lines.push(`    recorded: ${pairs(r.extra)}`);
    if (r.execution && Object.keys(r.execution).length > 0) lines.push(`    execution: ${pairs(r.execution)}`);
  }
  // The plan's reasons, but not a change already listed above (the same code and words).
  const listed = new Set((near?.changes ?? []).map((c) => reasonKey(changeReason(c))));
  for (const r of d.reasons) if (!listed.has(reasonKey(r))) lines.push(`  ${r.text}`);
  for (const x of d.nondeterministic ?? []) lines.push(`  ${disagreementText(x)}`);
  for (const u of upstreamRuns) {
    lines.push(`  upstream stage ${u.stage} ${u.action === 'run' ? 'will re-run' : 'will be restored'}: the deps above are its current outputs`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function reasonKey(r: Reason): string {
  return `${r.code}\u0000${r.text}`;
}

/** `{a: 1, b: {c: 2}}` → `a=1, b={"c":2}` (one line; what a stage recorded). */
function pairs(o: Record<string, unknown>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}
