/**
 * `pipe verify FILE [targets]`: re-run the recorded stages in a scratch copy and compare every output with its
 * record (engine/verify.ts). Exit 0 when every selected stage reproduced; 1 when one differs, fails or cannot be
 * verified; 2 for an invalid pipeline or usage; 130 interrupted. The workspace (outputs, `.pipe/`, the cache) is
 * only read; it is locked while the inputs are copied, so a concurrent `pipe run` cannot change them half-way.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pidAlive, workspaceLock } from '../../cache/lock.js';
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
  removeDeadScratch(base);
  // A kept copy is the user's: named with no owner from the start, so no later verify's sweep can match it however
  // this one ends (a rename or a marker file at the end would be skipped by a SIGKILL).
  const scratch = mkdtempSync(join(base, opts.keepScratch ? 'pipe-verify-kept-' : scratchPrefix(hostname(), process.pid)));
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

/**
 * The name of a scratch copy says whose it is, `pipe-verify-<host>-<pid>-XXXXXX`: one that a killed verify left (a
 * SIGKILL, or a third Ctrl-C: the `finally` above never runs) can be told from a live one's, and from another host's
 * in a shared --scratch-dir. The host is percent-encoded (all but letters, digits, `-`, `_` and `.`): file-name safe,
 * and no two hosts encode alike, so one host's pattern never matches another's names.
 */
export function scratchPrefix(host: string, pid: number): string {
  return `${hostPrefix(host)}${pid}-`;
}

function hostPrefix(host: string): string {
  return `pipe-verify-${encodeURIComponent(host).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}-`;
}

/** The pid in the name of a scratch copy that a verify on `host` made (mkdtemp's six characters after it); else undefined. */
export function scratchOwner(name: string, host: string): number | undefined {
  const prefix = hostPrefix(host);
  const m = name.startsWith(prefix) ? /^([1-9]\d{0,9})-[A-Za-z0-9]{6}$/.exec(name.slice(prefix.length)) : null;
  const pid = m ? Number(m[1]) : 0;
  return pid > 0 && pid <= 0x7fffffff ? pid : undefined;
}

/**
 * Remove the scratch copies in `base` that verifies on this host left when they were killed: only real folders (a
 * link is never followed, nor is one inside: rmSync removes links, not what they point to) of this user, named by
 * scratchPrefix with a pid that no longer runs. A pid reused by a live process keeps its folder (harmless). A copy
 * that cannot be removed is a warning: this verify goes on.
 */
function removeDeadScratch(base: string): void {
  const host = hostname();
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return; // mkdtemp below says what is wrong with the folder
  }
  for (const name of names) {
    const pid = scratchOwner(name, host);
    if (pid === undefined) continue;
    const path = join(base, name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // gone meanwhile, or not ours to look at
    }
    if (!st.isDirectory() || st.uid !== process.getuid?.() || pidAlive(pid)) continue;
    const left = `the scratch copy ${path} that a killed pipe verify (pid ${pid}) left`;
    // Claimed first, by renaming it to a name of this process's: a verify sweeping beside this one finds it gone and
    // says nothing, and if this one is killed while removing it, the next verify finds the rest under that name.
    const claim = join(base, `${scratchPrefix(host, process.pid)}${randomBytes(3).toString('hex')}`);
    try {
      renameSync(path, claim);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') process.stderr.write(`pipe: could not remove ${left}: ${(e as Error).message}\n`);
      continue;
    }
    try {
      rmSync(claim, { recursive: true, force: true });
      process.stderr.write(`pipe: removed ${left}\n`);
    } catch (e) {
      process.stderr.write(`pipe: could not remove ${left} (what is left of it is now ${claim}): ${(e as Error).message}\n`);
    }
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
