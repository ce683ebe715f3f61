/** `pipe run FILE [STAGE|GLOB...]`: bring the selected stages up to date. */
import { workspaceLock } from '../../cache/lock.js';
import { planStages, runStages } from '../run.js';
import { openWorkspace, pipeDirOf } from '../workspace.js';
import { ExitError, UsageError } from './errors.js';
import { outputClosed } from './closed-output.js';
import { matcher } from '../glob.js';
import { loadAll, selectStages } from './load.js';
import { executorChooser, machineFor, openOutput } from './session.js';
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

  const out = await openOutput(opts, true);
  if (loaded.warnings.length > 0) out.bus.emit({ type: 'diagnostics', formatted: loaded.warnings, diagnostics: [] });
  const lock = workspaceLock(pipeDirOf(loaded.pipeline), `pipe run ${process.argv.slice(3).join(' ')}`.trim());
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    // A second Ctrl-C while children are being stopped: give up waiting.
    if (interrupts > 1) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // Nobody reads the output any more (`pipe run p.yaml | head`): stop as on a first Ctrl-C.
  const onOutputClosed = (): void => controller.abort();
  outputClosed.addEventListener('abort', onOutputClosed, { once: true });
  let got: Awaited<ReturnType<typeof lock.acquire>>;
  try {
    got = await lock.acquire({
      wait: opts.wait !== false,
      signal: controller.signal,
      onWait: (h) => process.stderr.write(`pipe: waiting for the workspace lock held by ${holderText(h)}\n`),
    });
  } catch (e) {
    // Ctrl-C while waiting for the lock: nothing ran.
    if (controller.signal.aborted) {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      return 130;
    }
    throw e;
  }
  if (!got.ok && controller.signal.aborted) {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await out.close();
    return 130;
  }
  if (!got.ok) {
    await out.close();
    throw new ExitError(`pipe: the workspace ${loaded.pipeline.workdir} is locked by ${holderText(got.holder)}; not waiting (--no-wait)`, 1);
  }
  const executors = await executorChooser(loaded.pipeline, stages, ws.pipeDir);
  try {
    if (controller.signal.aborted) return 130;
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
      signal: controller.signal,
      keepGoing: opts.keepGoing ?? false,
    });
    await out.close();
    if (summary.interrupted) return 130;
    return summary.ok ? 0 : 1;
  } finally {
    await executors.close();
    await got.release();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    outputClosed.removeEventListener('abort', onOutputClosed);
  }
}

function holderText(h: { pid: number; host: string; command: string; since: string }): string {
  return `\`${h.command}\` (pid ${h.pid} on ${h.host}, since ${h.since})`;
}
