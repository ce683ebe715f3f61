/**
 * `pipe gc FILE... [--dry-run]`: delete cached objects that no given pipeline's lock file references and no recent
 * run needs. Pipelines sharing a workspace are collected together (the union of their lock files is kept).
 */
import { join } from 'node:path';
import { collectGarbage, type GcResult } from '../../cache/gc.js';
import { workspaceLock } from '../../cache/lock.js';
import { asHash } from '../../cache/brand.js';
import type { StoredOutput } from '../../cache/types.js';
import { lockPath, readLockAsync } from '../lockfile.js';
import type { Pipeline } from '../model.js';
import { formatBytes } from '../scheduler.js';
import { pipeDirOf } from '../workspace.js';
import { ExitError, UsageError } from './errors.js';
import { loadAll } from './load.js';

export async function gcCommand(files: string[], opts: { dryRun?: boolean; json?: boolean; keepDays?: string; graceSeconds?: string }): Promise<number> {
  for (const [flag, v] of [['--keep-days', opts.keepDays], ['--grace-seconds', opts.graceSeconds]] as const) {
    if (v !== undefined && !(Number(v) >= 0)) throw new UsageError(`${flag} expects a number ≥ 0, got ${JSON.stringify(v)}`);
  }
  const groups = new Map<string, { pipelines: Pipeline[]; keep: StoredOutput[] }>();
  for (const f of files) {
    const { pipeline } = await loadAll(f);
    const k = `${pipeline.settings.cacheDir}\0${pipeDirOf(pipeline)}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { pipelines: [], keep: [] }));
    g.pipelines.push(pipeline);
    for (const stage of Object.values((await readLockAsync(lockPath(pipeline.file)))?.stages ?? {})) {
      for (const o of stage.outs) {
        if (!o.hash) continue;
        g.keep.push({ path: o.path, kind: o.files !== undefined || o.path.endsWith('/') ? 'dir' : 'file', hash: asHash(o.hash), size: o.size, files: o.files ?? 1 });
      }
    }
  }
  const results: Array<{ cache: string } & GcResult> = [];
  for (const g of groups.values()) {
    const p = g.pipelines[0]!;
    const pipeDir = pipeDirOf(p);
    const release = opts.dryRun ? undefined : await take(pipeDir);
    try {
      const r = await collectGarbage({
        store: p.settings.cacheDir,
        runsDir: join(pipeDir, 'runs'),
        keep: g.keep,
        dryRun: opts.dryRun ?? false,
        ...(opts.keepDays !== undefined ? { keepRunsNewerThanMs: Number(opts.keepDays) * 86_400_000 } : {}),
        ...(opts.graceSeconds !== undefined ? { graceMs: Number(opts.graceSeconds) * 1000 } : {}),
      });
      results.push({ cache: p.settings.cacheDir, ...r });
    } finally {
      await release?.();
    }
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    for (const r of results) {
      const verb = opts.dryRun ? 'would remove' : 'removed';
      process.stdout.write(`${r.cache}: ${verb} ${r.objects} object(s) (${formatBytes(r.bytes)}) and ${r.runs} old run record(s); ${r.kept} object(s) kept\n`);
    }
  }
  return 0;
}

async function take(pipeDir: string): Promise<() => Promise<void>> {
  const got = await workspaceLock(pipeDir, 'pipe gc').acquire({ wait: false });
  if (!got.ok) throw new ExitError(`pipe gc: the workspace is locked by \`${got.holder.command}\` (pid ${got.holder.pid} on ${got.holder.host}); try again when it is done`, 1);
  return got.release;
}
