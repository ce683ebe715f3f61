/** `pipe run FILE [STAGE|GLOB...]`: bring the selected stages up to date. */
import { workspaceLock } from '../../cache/lock.js';
import { planStages, runStages } from '../run.js';
import { openWorkspace, pipeDirOf } from '../workspace.js';
import { ExitError, refuseUnreadableLock, UsageError } from './errors.js';
import { outputClosed } from './closed-output.js';
import { interrupts, releaseLockOnExit } from './interrupts.js';
import { matcher } from '../glob.js';
import { loadAll, selectStages } from './load.js';
import { executorChooser, machineFor, openOutput, summaryOutputs } from './session.js';
import { printPlan } from './status.js';
import { pipeVersion } from './version.js';

export interface RunCommandOptions {
  jobs?: string;
  set?: string[];
  paramsFile?: string[];
  force?: string[];
  downstream?: boolean;
  dryRun?: boolean;
  keepGoing?: boolean;
  gpus?: string;
  mem?: string;
  json?: boolean;
  wait?: boolean;
  verbose?: boolean;
}

/** Returns the exit code. */
export async function runCommand(file: string, targets: string[], opts: RunCommandOptions): Promise<number> {
  const loaded = await loadAll(file, { overrides: opts.set ?? [], paramsFiles: opts.paramsFile ?? [] });
  const selected = selectStages(loaded, targets, opts.downstream ?? false);
  const forcePatterns = opts.force ?? [];
  const isForced = matcher(forcePatterns);
  for (const f of forcePatterns) {
    if (!loaded.pipeline.stages.some((s) => matcher([f])(s.name))) throw new UsageError(`--force ${f}: no stage matches`);
  }
  const stages = loaded.pipeline.stages.filter((s) => selected.has(s.name));
  const machine = machineFor(opts, stages);
  const ws = await openWorkspace(loaded.pipeline);

  if (opts.dryRun) {
    for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
    const decisions = await planStages({
      pipeline: loaded.pipeline,
      graph: loaded.graph,
      workspace: ws,
      selected,
      force: isForced,
      emit: opts.json ? (e) => void (outputClosed.aborted || process.stdout.write(`${JSON.stringify({ ...e, at: Date.now() })}\n`)) : () => {},
      pipeVersion: pipeVersion(),
    });
    if (!opts.json) printPlan(decisions, { all: true, header: 'would' });
    return 0;
  }

  const out = await openOutput(opts, true, summaryOutputs(loaded.pipeline, selected));
  if (loaded.warnings.length > 0) out.bus.emit({ type: 'diagnostics', formatted: loaded.warnings, diagnostics: [] });
  const lock = workspaceLock(pipeDirOf(loaded.pipeline), `pipe run ${process.argv.slice(3).join(' ')}`.trim());
  const stop = interrupts();
  let got: Awaited<ReturnType<typeof lock.acquire>> | undefined;
  let undoExitHook = (): void => {};
  let executors: Awaited<ReturnType<typeof executorChooser>> | undefined;
  try {
    got = await lock.acquire({
      wait: opts.wait !== false,
      signal: stop.cancel,
      onWait: (h) => process.stderr.write(`pipe: waiting for the workspace lock held by ${holderText(h)}\n`),
    }).catch((e: unknown) => {
      // Ctrl-C while waiting for the lock: nothing ran.
      if (stop.cancel.aborted) return undefined;
      throw e;
    });
    if (!got || (!got.ok && stop.cancel.aborted)) {
      await out.close();
      return 130;
    }
    if (!got.ok) {
      await out.close();
      refuseUnreadableLock(got.holder);
      throw new ExitError(`pipe: the workspace ${loaded.pipeline.workdir} is locked by ${holderText(got.holder)}; not waiting (--no-wait)`, 1);
    }
    undoExitHook = releaseLockOnExit(ws.pipeDir);
    executors = await executorChooser(loaded.pipeline, stages, ws.pipeDir);
    if (stop.cancel.aborted) return 130;
    const summary = await runStages({
      pipeline: loaded.pipeline,
      graph: loaded.graph,
      workspace: ws,
      selected,
      force: isForced,
      emit: out.bus.emit,
      pipeVersion: pipeVersion(),
      machine,
      executorFor: executors.choose,
      signal: stop.cancel,
      kill: stop.kill,
      keepGoing: opts.keepGoing ?? false,
    });
    await out.close();
    if (summary.interrupted) return 130;
    return summary.ok ? 0 : 1;
  } finally {
    // Every way out — success, failure, Ctrl-C, an error thrown by the engine — releases the lock.
    await executors?.close();
    if (got?.ok) await got.release();
    undoExitHook();
    stop.dispose();
  }
}

function holderText(h: { pid: number; host: string; command: string; since: string }): string {
  return `\`${h.command}\` (pid ${h.pid} on ${h.host}, since ${h.since})`;
}
