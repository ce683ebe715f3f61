/**
 * Dispatch: turn a decided stage into a Job (argv, env, resources, the runner spec of a `uses` stage) and run it
 * through its executor with retries, turning the child's output into events (`::pipe::` lines from the runner become
 * progress, log and record() data). Knows nothing of the cache: what the job left is the commit's business.
 */
import { rmSync } from 'node:fs';
import { readTailSync } from '../../cache/read.js';
import { writeFileAtomicSync } from '../../cache/atomic.js';
import { ownFoldersIntact } from '../../cache/dir.js';
import { basename, dirname, join, relative } from 'node:path';
import type { Hash } from '../../cache/types.js';
import type { Emit } from '../events.js';
import type { Executor, Job, JobResult } from '../executors/executor.js';
import { runWithRetries } from '../executors/retry.js';
import { engineDistDir, kindRoot, resolveKind } from '../kinds.js';
import { isEnvName, PASS_THROUGH } from '../env.js';
import type { Pipeline, StageSpec } from '../model.js';
import type { StageKeyInfo } from '../plan.js';
import { PIPE_LINE, type RunnerMessage, type RunnerSpec } from '../runner.js';
import type { Grant, Machine } from '../scheduler.js';
import type { UpstreamRun } from '../stage-api.js';
import { ownFolder, type Workspace } from '../workspace.js';

/** What every job of one run shares. */
export interface DispatchContext {
  pipeline: Pipeline;
  ws: Workspace;
  machine: Machine;
  pipeVersion: string;
  emit: Emit;
  signal: AbortSignal;
  /** A second Ctrl-C: kill at once. */
  kill?: AbortSignal;
  /** Provenance of every transitive upstream stage (a `uses` stage's ctx.upstream). */
  upstreamOf(stage: string): Promise<UpstreamRun[]>;
}

/**
 * What a `uses` stage recorded: `extra` (ctx.record: provenance that stages below see) and `execution`
 * (ctx.recordExecution: timings and worker counts, kept in the run record only).
 */
export interface Recorded {
  extra: Record<string, unknown>;
  execution: Record<string, unknown>;
}

/** One stage's job as it ended: the last attempt's job and result, and the record() data it streamed. */
export interface Dispatched {
  job: Job;
  result: JobResult;
  recorded: Recorded;
  /** The last output lines seen (protocol lines left out): the log tail when the log file could not be written. */
  lastLines: string[];
}

/** The log file of a stage (the last attempt's stdout and stderr). */
export function logFileOf(ws: Workspace, stage: string): string {
  return join(ws.logsDir, `${safeName(stage)}.log`);
}

/** Unique per stage and key, safe as a file name. */
export function jobIdOf(stage: string, info: StageKeyInfo): string {
  return `${safeName(stage)}-${info.key.slice(0, 12)}`;
}

/** Build the job, announce `stage-start`, run it (with retries) and collect what it streamed. */
export async function dispatch(ctx: DispatchContext, stage: StageSpec, info: StageKeyInfo, executor: Executor, grant: Grant | undefined, onRetry: () => void): Promise<Dispatched> {
  const name = stage.name;
  const logFile = logFileOf(ctx.ws, name);
  const recorded: Recorded = { extra: {}, execution: {} };
  const lastLines: string[] = [];
  const keep = (line: string): void => {
    lastLines.push(line);
    if (lastLines.length > TAIL_LINES) lastLines.shift();
  };
  ownFolder(ctx.ws.logsDir); // the job's log is written in it
  const job = await buildJob(ctx, stage, info, jobIdOf(name, info), logFile, grant);
  ctx.emit({ type: 'stage-start', stage: name, executor: executor.name, gpuIds: grant?.gpuIds ?? [], cpus: grant?.cpus ?? stage.resources.cpus, logFile });
  const lines = lineSplitter((line) => {
    if (line.startsWith(PIPE_LINE)) {
      const msg = parseRunnerLine(line);
      if (!msg) return;
      if (msg.type === 'log') ctx.emit({ type: 'stage-log', stage: name, line: msg.message });
      else if (msg.type === 'progress') {
        const { type: _t, ...p } = msg;
        ctx.emit({ type: 'stage-progress', stage: name, ...p });
      } else Object.assign(msg.type === 'execution' ? recorded.execution : recorded.extra, msg.info);
    } else {
      keep(line);
      ctx.emit({ type: 'stage-log', stage: name, line });
    }
  });
  // retries: a failed attempt (not a cancellation) runs again, with more memory/time after OOM/timeout kills.
  let previous = job;
  const result: JobResult = await runWithRetries(
    executor,
    job,
    stage.retries,
    { signal: ctx.signal, ...(ctx.kill ? { kill: ctx.kill } : {}), onOutput: lines.push, onState: (state) => ctx.emit({ type: 'stage-state', stage: name, state }) },
    (next) => {
      onRetry();
      const before = previous.resources;
      const after = next.job.resources;
      previous = next.job;
      ctx.emit({ type: 'stage-state', stage: name, state: retryState(next.attempt, stage.retries.count + 1, next.result.reason, before, after) });
    },
  );
  lines.end();
  return { job, result, recorded, lastLines };
}

/** "attempt 2 of 3 after: out of memory; mem 512M → 1024M". */
export function retryState(attempt: number, of: number, reason: string, before: Job['resources'], after: Job['resources']): string {
  const mb = (b: number) => `${Math.round(b / (1024 * 1024))}M`;
  const escalated = [
    after.memBytes !== before.memBytes ? `mem ${mb(before.memBytes)} → ${mb(after.memBytes)}` : '',
    after.timeSec !== before.timeSec ? `time ${before.timeSec}s → ${after.timeSec}s` : '',
  ].filter(Boolean);
  return `attempt ${attempt} of ${of} after: ${reason}${escalated.length ? `; ${escalated.join(', ')}` : ''}`;
}

/**
 * How a `cmd` runs: `sh -e` (errexit: a failing line fails the stage, as Snakemake's strict mode) and pipefail where
 * the shell has it (bash, busybox ash; not dash, Debian's sh, where a pipeline's status stays its last command's).
 * `command set` keeps an unknown option from ending the shell (set is a special builtin) and costs no fork; it shares
 * line 1 with the command, so the shell's line numbers in errors are the command's own. A command opts out with
 * `set +e`.
 */
export function shellArgv(cmd: string): string[] {
  return ['sh', '-e', '-c', `command set -o pipefail 2>/dev/null || :; ${cmd}`];
}

/**
 * The same command without the shell, when the shell would do nothing but split it into words and exec the first:
 * plain words only (no quote, escape, expansion, glob, redirection, operator, comment or assignment) and a first
 * word that is neither a shell builtin nor a reserved word. GNU make's fast path: a trivial stage saves a shell
 * start (a quarter of its process cost measured here). The local executor falls back to the shell when the program
 * cannot be started, so a missing program fails as the shell would (its message, exit 127).
 */
export function directArgv(cmd: string): string[] | undefined {
  const words = cmd.trim().split(/[ \t]+/);
  if (!words.every((w) => PLAIN_WORD.test(w)) || !PLAIN_PROGRAM.test(words[0]!) || SHELL_WORDS.has(words[0]!)) return undefined;
  return words;
}

/** Characters no POSIX shell treats specially inside a word (`=` only after the program: no assignment). */
const PLAIN_WORD = /^[A-Za-z0-9_.\/,:@%+=-]+$/;
const PLAIN_PROGRAM = /^[A-Za-z0-9_.\/,:@%+-]+$/;
/** Builtins of dash, bash and ash, and reserved words: the shell runs these itself (`echo -e`, `cd`, `exit`...). */
const SHELL_WORDS = new Set(
  (
    '. : [ [[ ]] ! { } alias bg bind break builtin caller case cd chdir command compgen complete compopt continue declare ' +
    'dirs disown do done echo elif else enable esac eval exec exit export false fc fg fi for function getopts hash help ' +
    'history if in jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return select set ' +
    'shift shopt source suspend test then time times trap true type typeset ulimit umask unalias unset until wait while'
  ).split(' '),
);

/** The Job of one stage: `sh -c CMD`, or the stage runner with a spec file for `uses` stages. */
export async function buildJob(ctx: DispatchContext, stage: StageSpec, info: StageKeyInfo, jobId: string, logFile: string, grant: Grant | undefined): Promise<Job> {
  const { ws, pipeline } = ctx;
  const env: Record<string, string> = { ...stage.env, PIPE_STAGE: stage.name, PIPE_WORKSPACE: ws.root };
  const gpuIds = grant?.gpuIds ?? [];
  // Hide every device not granted, so two stages never share one (a stage with gpus: 0 sees none).
  if (grant && (ctx.machine.gpuIds.length > 0 || stage.resources.gpus > 0)) env.CUDA_VISIBLE_DEVICES = gpuIds.join(',');
  const cpus = grant?.cpus ?? stage.resources.cpus;
  env.PIPE_CPUS = String(cpus);
  const resources = { ...stage.resources, cpus, ...(grant ? { memBytes: grant.memBytes } : {}) };
  let argv: string[];
  let direct: string[] | undefined;
  let passEnv: readonly string[] | undefined;
  if (stage.cmd !== undefined) {
    argv = shellArgv(stage.cmd);
    direct = directArgv(stage.cmd);
    if (pipeline.settings.env === 'strict') passEnv = PASS_THROUGH;
  } else {
    passEnv = [...PASS_THROUGH, ...kindEnvNames(stage)];
    const specFile = join(ownFolder(ws.tmpDir), `${jobId}.json`);
    const spec: RunnerSpec = {
      stage: stage.name,
      kind: stage.uses!,
      with: stage.with ?? {},
      params: nestParams(stage.params),
      workspace: ws.root,
      key: info.key,
      depHashes: Object.fromEntries(Object.entries(info.depHashes).filter((e): e is [string, Hash] => e[1] !== null)),
      upstream: await ctx.upstreamOf(stage.name),
      pipeline: { file: relative(ws.root, pipeline.file), name: pipeline.name, pipeVersion: ctx.pipeVersion },
      resources: { ...resources, gpuIds },
      resultFile: join(ws.tmpDir, `${jobId}.result.json`),
      tmpDir: join(ws.tmpDir, `${jobId}.scratch`),
      stagesRoot: kindRoot(stage.uses!),
      ...(info.fields.toolchain ? { toolchain: { node: info.fields.toolchain.node, platform: info.fields.toolchain.platform } } : {}),
    };
    rmSync(spec.resultFile, { force: true });
    // Replaced, never written through: a link a stage put at this name would have pipe write where it points.
    writeFileAtomicSync(specFile, JSON.stringify(spec));
    argv = [process.execPath, join(engineDistDir, 'runner.js'), specFile];
  }
  return {
    id: jobId,
    stage: stage.name,
    group: stage.declaredAs,
    key: info.key,
    argv,
    ...(direct ? { direct } : {}),
    cwd: ws.root,
    env,
    ...(passEnv ? { passEnv } : {}),
    resources,
    gpuIds,
    logFile,
    slurm: stage.slurm,
  };
}

/** The ambient variables a kind says it reads, given its `with:` (manifest `envFrom`); only valid names. */
export function kindEnvNames(stage: StageSpec): string[] {
  const names = resolveKind(stage.uses!)?.envFrom?.(stage.with ?? {}) ?? [];
  return names.filter((n) => typeof n === 'string' && isEnvName(n));
}

/** A stage's keyed params (dotted name → value) nested as in the pipeline: `{'a.b': 1}` → `{a: {b: 1}}`. */
export function nestParams(flat: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  // Shorter names first: a whole object (`a`) is set before a part of it (`a.b`), which then agrees with it.
  for (const name of Object.keys(flat).sort((x, y) => x.length - y.length)) {
    const parts = name.split('.');
    // A part of a param the stage also uses whole (`a.b` beside `a`) is already in it.
    if (parts.some((_, i) => i > 0 && parts.slice(0, i).join('.') in flat)) continue;
    let at = out;
    for (const p of parts.slice(0, -1)) {
      const next = at[p];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) at[p] = Object.create(null) as Record<string, unknown>;
      at = at[p] as Record<string, unknown>;
    }
    at[parts.at(-1)!] = flat[name];
  }
  return out;
}

export function safeName(stage: string): string {
  return stage.replace(/[^\w.@=,-]/g, '_');
}

export function parseRunnerLine(line: string): RunnerMessage | undefined {
  try {
    return JSON.parse(line.slice(PIPE_LINE.length)) as RunnerMessage;
  } catch {
    return undefined;
  }
}

/** Chunks → lines (a chunk may end mid-line). */
export function lineSplitter(onLine: (line: string) => void): { push: (chunk: string) => void; end: () => void } {
  let buf = '';
  return {
    push: (chunk) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i).replace(/\r$/, ''));
        buf = buf.slice(i + 1);
      }
    },
    end: () => {
      if (buf) onLine(buf);
      buf = '';
    },
  };
}

const TAIL_LINES = 15;

/** The last lines of a log (runner protocol lines left out), for failed stages. */
export function logTail(file: string, lines = TAIL_LINES): string | undefined {
  // Only the end is read, without following a link or blocking on a FIFO: the job writes (and can replace) its log.
  // The folder too: a stage may have replaced .pipe/logs with a link to a folder outside the workspace.
  if (!ownFoldersIntact(dirname(dirname(file)), basename(dirname(file)))) return undefined;
  // One byte more than shown: the byte before the window says whether it starts a line.
  const tail = readTailSync(file, LOG_TAIL_BYTES + 1);
  if (!tail) return undefined;
  let text = tail.bytes.toString('utf8');
  if (tail.skipped > 0) {
    const nl = text.indexOf('\n');
    // Cut mid-line: that line's end is left out, unless it is the only line there is (shown from `…`).
    text = nl < 0 ? `…${text.slice(1)}` : text.slice(nl + 1);
  }
  const shown = text
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith(PIPE_LINE))
    .slice(-lines)
    .join('\n');
  return shown === '' ? undefined : shown;
}

/** Enough for the last lines of any log; a log of gigabytes is not read to show 15 lines. */
const LOG_TAIL_BYTES = 256 * 1024;
