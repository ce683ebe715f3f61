/**
 * What `run`, `status` and `why` share: the event bus with the right renderer, the machine description, the
 * executor chooser.
 */
import { availableParallelism, totalmem } from 'node:os';
import { basename, join, relative } from 'node:path';
import { EventBus, type PipeEvent } from '../events.js';
import type { Executor } from '../executors/executor.js';
import { LocalExecutor } from '../executors/local.js';
import type { SlurmExecutor } from '../executors/slurm.js';
import { SlurmRegistry } from '../executors/slurm-registry.js';
import { detectGpus, parseGpuList } from '../gpus.js';
import type { Pipeline, StageSpec } from '../model.js';
import { parseBytes, type Machine } from '../scheduler.js';
import { jsonRenderer } from '../ui/json.js';
import type { SummaryOutput } from '../ui/format.js';
import { plainRenderer } from '../ui/plain.js';
import { UsageError } from './errors.js';

export interface OutputOptions {
  json?: boolean;
  verbose?: boolean;
}

export interface Output {
  bus: EventBus;
  close(): Promise<void>;
}

/**
 * The main outputs of `settings.summary` that this run brings up to date (their stage is selected), labelled by
 * file name without extension (`out/report.html` → "report") and shown relative to the current directory.
 */
export function summaryOutputs(pipeline: Pipeline, selected: ReadonlySet<string>, cwd = process.cwd()): SummaryOutput[] {
  const out: SummaryOutput[] = [];
  for (const path of pipeline.settings.summary ?? []) {
    const stage = pipeline.stages.find((s) => selected.has(s.name) && s.outs.some((o) => o.path === path || (o.path.endsWith('/') && path.startsWith(o.path))));
    if (!stage) continue;
    const shown = relative(cwd, join(pipeline.workdir, path)) || path;
    out.push({ label: basename(path.replace(/\/$/, '')).replace(/\.[^.]*$/, ''), path: shown, stage: stage.name });
  }
  return out;
}

/** JSON lines with --json; listr2 on a terminal; plain lines in CI or when piped. `outputs` close a run's summary. */
export async function openOutput(opts: OutputOptions, live: boolean, outputs: readonly SummaryOutput[] = []): Promise<Output> {
  const bus = new EventBus();
  if (opts.json) {
    bus.subscribe(jsonRenderer());
    return { bus, close: async () => {} };
  }
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  if (live && process.stderr.isTTY && !ci && !opts.verbose) {
    const { ttyRenderer } = await import('../ui/tty.js');
    const r = await ttyRenderer(outputs);
    bus.subscribe(r.listener);
    return { bus, close: () => r.close() };
  }
  bus.subscribe(plainRenderer({ verbose: opts.verbose ?? false, outputs }));
  return { bus, close: async () => {} };
}

export interface MachineOptions {
  jobs?: string;
  mem?: string;
  gpus?: string;
}

/** The machine the scheduler fills: -j (default: cores), --mem (default: all memory), --gpus (default: detected). */
export function machineFor(opts: MachineOptions, stages: StageSpec[]): Machine {
  const cores = availableParallelism();
  let jobs = cores;
  if (opts.jobs !== undefined) {
    jobs = Number(opts.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`-j expects a positive whole number, got ${JSON.stringify(opts.jobs)}`);
  }
  let memBytes = totalmem();
  if (opts.mem !== undefined) {
    const m = parseBytes(opts.mem);
    if (m === undefined || m <= 0) throw new UsageError(`--mem expects a size such as 8G or 512M, got ${JSON.stringify(opts.mem)}`);
    memBytes = m;
  }
  let gpuIds: string[];
  if (opts.gpus !== undefined) gpuIds = parseGpuList(opts.gpus);
  else gpuIds = stages.some((s) => s.executor === 'local' && s.resources.gpus > 0) ? detectGpus() : [];
  return { jobs, cpus: cores, memBytes, gpuIds };
}

/**
 * Local stages run here; `executor: slurm` stages go through the SLURM executor (state in `<pipeDir>/slurm`), loaded
 * only when a selected stage needs it. (`pipeline` is kept for executors configured per pipeline.)
 */
export async function executorChooser(_pipeline: Pipeline, stages: StageSpec[], pipeDir: string): Promise<{ choose: (s: StageSpec) => Executor; close: () => Promise<void> }> {
  const local = new LocalExecutor();
  let slurm: SlurmExecutor | undefined;
  const stateDir = join(pipeDir, 'slurm');
  // Jobs a killed run left on SLURM for a stage that now runs locally are cancelled before it runs (they would
  // write its outputs beside it): only looked at when such records exist.
  const leftJobs = await SlurmRegistry.of(stateDir).any();
  if (stages.some((s) => s.executor === 'slurm') || leftJobs) {
    const mod = await import('../executors/slurm.js');
    slurm = new mod.SlurmExecutor({ stateDir });
  }
  const settled: Executor | undefined = leftJobs && slurm ? { name: 'local', run: async (job, hooks) => (await slurm.settleEarlierJobs(job, hooks, undefined)) ?? local.run(job, hooks), close: () => local.close() } : undefined;
  return {
    choose: (s) => (s.executor === 'slurm' && slurm ? slurm : (settled ?? local)),
    close: async () => {
      try {
        await local.close();
      } finally {
        await slurm?.close();
      }
    },
  };
}

export type Listener = (e: PipeEvent) => void;
