/**
 * `pipe gc FILE... [--dry-run]`: delete cached objects that no lock file references and no recent run needs.
 * Pipelines sharing a workspace are collected together (the union of their lock files is kept), and so is every
 * other workspace registered in the store (a shared `settings.cache_dir`): gc keeps what they reference, says how
 * much it kept for them, and drops workspaces that no longer exist from the registry (docs/cache.md).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { collectGarbage, type GcResult, type LockRefs } from '../../cache/gc.js';
import { workspaceLock } from '../../cache/lock.js';
import { registerWorkspace } from '../../cache/registry.js';
import { openHashState } from '../../cache/state.js';
import { lockPath, readLockAsync } from '../lockfile.js';
import type { Pipeline } from '../model.js';
import { formatBytes } from '../scheduler.js';
import { pipeDirOf } from '../workspace.js';
import { ExitError, refuseUnreadableLock, UsageError } from './errors.js';
import { interrupts, releaseLockOnExit } from './interrupts.js';
import { loadAll } from './load.js';

export async function gcCommand(files: string[], opts: { dryRun?: boolean; json?: boolean; keepDays?: string; graceSeconds?: string }): Promise<number> {
  for (const [flag, v] of [['--keep-days', opts.keepDays], ['--grace-seconds', opts.graceSeconds]] as const) {
    if (v !== undefined && !(Number(v) >= 0)) throw new UsageError(`${flag} expects a number ≥ 0, got ${JSON.stringify(v)}`);
  }
  const groups = new Map<string, { pipelines: Pipeline[]; keep: Array<{ hash: string; kind?: 'dir' }> }>();
  for (const f of files) {
    const { pipeline } = await loadAll(f);
    const k = `${pipeline.settings.cacheDir}\0${pipeDirOf(pipeline)}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { pipelines: [], keep: [] }));
    g.pipelines.push(pipeline);
    for (const o of (await lockRefs(lockPath(pipeline.file)))?.outputs ?? []) g.keep.push({ hash: o.hash, ...(o.dir ? { kind: 'dir' as const } : {}) });
  }
  const results: Array<GcReport> = [];
  // Ctrl-C (or SIGTERM, SIGHUP): stop at the next object, report what was removed, release the lock, exit 130.
  const stop = interrupts();
  try {
    for (const g of groups.values()) {
      // A cache the interrupt came before is reported too: "not reached", so no list reads as the whole of it.
      if (stop.cancel.aborted) results.push(notReached(g.pipelines[0]!.settings.cacheDir));
      else await collectGroup(g, opts, stop.cancel, results);
    }
  } finally {
    stop.dispose();
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    for (const r of results) process.stdout.write(gcReport(r, opts.dryRun ?? false));
  }
  if (!stop.cancel.aborted) return 0;
  process.stderr.write(
    opts.dryRun
      ? 'pipe gc --dry-run: interrupted; nothing was removed, and the counts are partial\n'
      : 'pipe gc: interrupted; what it removed is gone and the rest is intact (run it again to finish)\n',
  );
  return 130;
}

/** What `pipe gc` reports of one store: its collection, or that an interrupt came before it (`notReached`). */
export type GcReport = { cache: string; notReached?: true } & GcResult;

function notReached(cache: string): GcReport {
  return { cache, notReached: true, interrupted: true, objects: 0, bytes: 0, kept: 0, runs: 0, sharedRuns: 0, keptFor: [], dropped: [], unknown: [] };
}

/** One store's collection, under its workspace's lock (released on every way out, a third Ctrl-C included). */
async function collectGroup(
  g: { pipelines: Pipeline[]; keep: Array<{ hash: string; kind?: 'dir' }> },
  opts: { dryRun?: boolean; keepDays?: string; graceSeconds?: string },
  signal: AbortSignal,
  results: Array<GcReport>,
): Promise<void> {
  const p = g.pipelines[0]!;
  const pipeDir = pipeDirOf(p);
  const release = opts.dryRun ? undefined : await take(pipeDir);
  const undoExitHook = release ? releaseLockOnExit(pipeDir) : () => {};
  try {
    // Registered here too (not only by runs): a workspace that only ever ran gc is still known to the store.
    for (const q of g.pipelines) await registerWorkspace(q.settings.cacheDir, { root: q.workdir, pipeDir, pipeline: q.file, lock: lockPath(q.file) });
    const r = await collectGarbage({
      store: p.settings.cacheDir,
      runsDir: join(pipeDir, 'runs'),
      keep: g.keep,
      readLock: lockRefs,
      self: pipeDir,
      dryRun: opts.dryRun ?? false,
      ...(opts.keepDays !== undefined ? { keepRunsNewerThanMs: Number(opts.keepDays) * 86_400_000 } : {}),
      ...(opts.graceSeconds !== undefined ? { graceMs: Number(opts.graceSeconds) * 1000 } : {}),
      signal,
    });
    results.push({ cache: p.settings.cacheDir, ...r });
    if (!opts.dryRun && r.objects > 0) {
      // The hash memo vouches for objects a hard-linked restore served: forget the ones just deleted.
      const state = await openHashState(join(pipeDir, 'hashstate'));
      if (state.pruneMissing(join(p.settings.cacheDir, 'objects')) > 0) await state.flush();
    }
  } finally {
    await release?.();
    undoExitHook();
  }
}

/** The plain-text report of one store's collection. */
export function gcReport(r: GcReport, dryRun: boolean): string {
  if (r.notReached) return `${r.cache}: not reached (interrupted before it); nothing in it was ${dryRun ? 'looked at' : 'removed'}\n`;
  const verb = dryRun ? 'would remove' : 'removed';
  const shared = r.sharedRuns > 0 ? ` and ${r.sharedRuns} shared run record(s) no workspace needs` : '';
  const lines = [`${r.cache}: ${verb} ${r.objects} object(s) (${formatBytes(r.bytes)}) and ${r.runs} old run record(s)${shared}; ${r.kept} object(s) kept`];
  for (const w of r.keptFor) lines.push(`  kept ${w.objects} object(s) for the workspace ${w.root}${where(w.host)}, which uses this cache too`);
  for (const w of r.dropped) lines.push(`  ${dryRun ? 'would drop' : 'dropped'} the workspace ${w.root}${where(w.host)} from the cache's registry: it no longer exists`);
  if (r.interrupted) lines.push(`  interrupted before the end: the counts are what it ${dryRun ? 'looked at' : 'removed'} until then`);
  if (r.unknown.length > 0) {
    for (const w of r.unknown) lines.push(`  cannot see the workspace ${w.root}${where(w.host)} from here, so nothing it may reference was deleted`);
    lines.push(`  (no object was deleted: run \`pipe gc\` where every workspace using ${r.cache} is visible, or remove a workspace that is gone from ${join(r.cache, 'workspaces')})`);
  }
  return `${lines.join('\n')}\n`;
}

function where(host: string): string {
  return host === hostname() ? '' : ` on ${host}`;
}

/** What a lock file references (for gc): its stages' keys and output hashes; directories where the file says so. */
async function lockRefs(file: string): Promise<LockRefs | undefined> {
  const lock = await readLockAsync(file);
  if (!lock) return undefined;
  const refs: LockRefs = { keys: [], outputs: [] };
  for (const s of Object.values(lock.stages)) {
    if (!s || typeof s !== 'object') continue;
    if (typeof s.key === 'string') refs.keys.push(s.key);
    for (const o of Array.isArray(s.outs) ? s.outs : []) {
      if (typeof o?.hash !== 'string') continue;
      // `files:` or a trailing slash says directory; otherwise gc looks at the object (`dir` and `dir/` alike).
      refs.outputs.push({ hash: o.hash, ...(o.files !== undefined || String(o.path).endsWith('/') ? { dir: true } : {}) });
    }
  }
  return refs;
}

async function take(pipeDir: string): Promise<() => Promise<void>> {
  const got = await workspaceLock(pipeDir, 'pipe gc').acquire({ wait: false });
  if (!got.ok) refuseUnreadableLock(got.holder, 'pipe gc');
  if (!got.ok) throw new ExitError(`pipe gc: the workspace is locked by \`${got.holder.command}\` (pid ${got.holder.pid} on ${got.holder.host}); try again when it is done`, 1);
  return got.release;
}
