/**
 * `pipe verify FILE [targets]`: re-run the recorded stages in a scratch copy and compare every output with its
 * record (engine/verify.ts). Exit 0 when every selected stage reproduced; 1 when one differs, fails or cannot be
 * verified; 2 for an invalid pipeline or usage; 130 interrupted. The workspace (outputs, `.pipe/`, the cache) is
 * only read; it is locked while the inputs are copied, so a concurrent `pipe run` cannot change them half-way.
 */
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { workspaceLock } from '../../cache/lock.js';
import type { PipeEvent } from '../events.js';
import { verifyStages, type Verdict } from '../verify.js';
import { within } from '../watch/paths.js';
import { pipeDirOf } from '../workspace.js';
import { interrupts } from './interrupts.js';
import { loadAll, selectStages } from './load.js';
import { machineFor, openOutput } from './session.js';
import { refuseUnreadableLock, UsageError } from './errors.js';
import { pipeVersion } from './version.js';

export interface VerifyCommandOptions {
  jobs?: string;
  set?: string[];
  paramsFile?: string[];
  json?: boolean;
  verbose?: boolean;
  scratchDir?: string;
  keepScratch?: boolean;
}

export async function verifyCommand(file: string, targets: string[], opts: VerifyCommandOptions): Promise<number> {
  const loaded = await loadAll(file, { overrides: opts.set ?? [], paramsFiles: opts.paramsFile ?? [] });
  const selected = selectStages(loaded, targets, false);
  const stages = loaded.pipeline.stages.filter((s) => selected.has(s.name));
  const machine = machineFor({ ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}), gpus: 'none' }, stages);
  const base = resolve(opts.scratchDir ?? tmpdir());
  if (!existsSync(base)) throw new UsageError(`--scratch-dir ${opts.scratchDir}: no such folder`);
  refuseScratchInside(base, opts.scratchDir, loaded.pipeline.workdir, loaded.pipeline.settings.cacheDir);
  const scratch = mkdtempSync(`${base}/pipe-verify-`);
  const out = await openOutput(opts, true);
  const stop = interrupts();
  const pipeDir = pipeDirOf(loaded.pipeline);
  // Nothing recorded means no `.pipe/` to lock (and none to create): every stage is then reported unverified.
  const lock = existsSync(pipeDir) ? workspaceLock(pipeDir, `pipe verify ${process.argv.slice(3).join(' ')}`.trim()) : undefined;
  let release: (() => Promise<void>) | undefined;
  const verdicts: Verdict[] = [];
  const collect = (e: PipeEvent): void => {
    if (e.type === 'verify-stage') verdicts.push(e);
  };
  out.bus.subscribe(collect);
  try {
    if (lock) {
      const got = await lock.acquire({ wait: true, signal: stop.cancel, onWait: (h) => process.stderr.write(`pipe: waiting for the workspace lock held by \`${h.command}\` (pid ${h.pid} on ${h.host})\n`) });
      if (!got.ok) {
        refuseUnreadableLock(got.holder);
        return 130; // interrupted while waiting
      }
      release = got.release;
    }
    const result = await verifyStages({
      pipeline: loaded.pipeline,
      graph: loaded.graph,
      selected,
      scratch,
      emit: out.bus.emit,
      pipeVersion: pipeVersion(),
      machine,
      signal: stop.cancel,
      kill: stop.kill,
      onCopied: async () => {
        await release?.();
        release = undefined;
      },
    });
    await out.close();
    const ok = [...result.verdicts.values()].every((v) => v.verdict === 'reproduced');
    if (opts.json) process.stdout.write(`${JSON.stringify({ type: 'verify-end', ok, counts: counts(verdicts), ...(opts.keepScratch ? { scratch } : {}), at: Date.now() })}\n`);
    else process.stdout.write(report(verdicts, opts.keepScratch ? scratch : undefined));
    if (result.interrupted) return 130;
    return ok ? 0 : 1;
  } finally {
    await release?.();
    stop.dispose();
    if (!opts.keepScratch) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The scratch copy is written, re-run in and deleted: inside the workspace or its cache it would write there (a dep
 * folder would even be copied into itself). Compared with every link resolved.
 */
function refuseScratchInside(base: string, option: string | undefined, workdir: string, cacheDir: string): void {
  const real = (p: string): string => (existsSync(p) ? realpathSync.native(p) : resolve(p));
  const at = real(base);
  for (const [what, dir] of [['workspace', workdir], ['cache', cacheDir]] as const) {
    if (!within(at, real(dir))) continue;
    const given = option !== undefined ? `--scratch-dir ${option}` : `the temp folder ${base} (TMPDIR; --scratch-dir not given)`;
    throw new UsageError(
      `${given} is inside the ${what} ${dir}: pipe verify only reads the workspace and its cache, and its scratch copy is written and deleted; choose a folder outside both with --scratch-dir`,
    );
  }
}

function counts(vs: Verdict[]): Record<Verdict['verdict'], number> {
  const c = { reproduced: 0, differs: 0, failed: 0, unverified: 0 };
  for (const v of vs) c[v.verdict] += 1;
  return c;
}

/** The summary a person reads: every stage that did not reproduce, and each output and file that differs. */
export function report(vs: Verdict[], scratch?: string): string {
  const c = counts(vs);
  const lines = [`verify: ${c.reproduced} reproduced, ${c.differs} differ, ${c.failed} failed, ${c.unverified} not verified`];
  const short = (h: string | null) => (h === null ? 'missing' : `${h.slice(0, 12)}…`);
  for (const v of vs) {
    if (v.verdict === 'differs') {
      lines.push(`✗ ${v.stage}: outputs differ from the recorded run`);
      for (const o of v.outputs ?? []) {
        lines.push(`    ${o.path}: recorded ${short(o.recorded)}, now ${short(o.now)}`);
        if (o.files) {
          for (const f of o.files.changed) lines.push(`      changed ${f}`);
          for (const f of o.files.added) lines.push(`      added   ${f}`);
          for (const f of o.files.removed) lines.push(`      removed ${f}`);
        }
      }
    } else if (v.verdict === 'reproduced' && v.code === 'not-compared') lines.push(`~ ${v.stage}: ${v.reason}`);
    else if (v.verdict === 'failed') lines.push(`✗ ${v.stage}: the re-run failed: ${v.reason}`);
    else if (v.verdict === 'unverified') lines.push(`? ${v.stage}: not verified: ${v.reason}`);
  }
  if (scratch) lines.push(`scratch copy kept in ${scratch}`);
  return `${lines.join('\n')}\n`;
}
