/**
 * One interface for every place a stage can run. The scheduler decides *when* a Job runs (deps done, resources
 * free); an Executor decides *how* (child process, sbatch). Executors know nothing of caching or the DAG.
 */
import type { JobFailureCode } from '../events.js';
import type { Resources } from '../stage-api.js';
import type { SlurmOptions } from '../model.js';

export interface Job {
  /** Unique per attempt (stage key + attempt number), safe as a file name. */
  id: string;
  /** Stage name (for logs and job names). */
  stage: string;
  /** The stage's declaration name; jobs of one declaration with equal resources may be grouped (SLURM arrays). */
  group: string;
  /** The stage key this attempt computes; executors that persist jobs (SLURM) use it to reattach. */
  key: string;
  /** Program and arguments: `['sh', '-c', cmd]` for `cmd` stages, `[node, runner.js, spec.json]` for `uses`. */
  argv: string[];
  /**
   * The command of `argv` without the shell, when the shell would only split it into words (engine/run/dispatch.ts
   * `directArgv`): an executor may exec it directly, running `argv` instead when it cannot be started.
   */
  direct?: string[];
  /** Absolute working directory (the workspace root). */
  cwd: string;
  /** Explicit environment (`CUDA_VISIBLE_DEVICES` included when GPUs were granted), over the ambient variables. */
  env: Record<string, string>;
  /**
   * Which ambient variables (of the process that starts the job: pipe locally, the task on a SLURM node) the job
   * also gets: undefined = all of them (inherit); else only these names (a trailing `*` = prefix; engine/env.ts).
   * Names only, never values: a secret named by a kind (`base_url_env`) is never written into a job file.
   */
  passEnv?: readonly string[];
  resources: Resources;
  /** GPU device ids the local scheduler granted (empty on SLURM, which assigns its own). */
  gpuIds: string[];
  /** Absolute path of the log file that receives the job's stdout and stderr. */
  logFile: string;
  slurm: SlurmOptions;
}

export type FailureKind =
  | 'exit' // non-zero exit code
  | 'signal' // killed by a signal
  | 'oom' // out of memory
  | 'timeout' // time limit
  | 'node_fail' // the node died
  | 'cancelled' // by the user or the scheduler
  | 'submit' // could not be submitted/started at all
  | 'lost'; // the job vanished and its state cannot be determined

const FAILURE_CODES: Record<FailureKind, JobFailureCode> = {
  exit: 'exit-non-zero',
  signal: 'killed',
  oom: 'out-of-memory',
  timeout: 'time-limit',
  node_fail: 'node-failure',
  cancelled: 'cancelled',
  submit: 'start-failed',
  lost: 'job-lost',
};

/** The end code of a job that did not succeed (a result without a failure kind: by its status). */
export function jobFailureCode(result: Pick<JobResult, 'status' | 'failure'>): JobFailureCode {
  return result.failure ? FAILURE_CODES[result.failure] : result.status === 'cancelled' ? 'cancelled' : 'exit-non-zero';
}

export interface JobResult {
  status: 'succeeded' | 'failed' | 'cancelled';
  exitCode: number | null;
  signal: string | null;
  failure?: FailureKind;
  /** Plain words: "exit code 3", "out of memory (limit 2G)", "time limit (00:01:00)". */
  reason: string;
  startedAt: number;
  endedAt: number;
  /** Executor-specific ids for provenance (SLURM job id, host). */
  jobId?: string;
  host?: string;
}

export interface JobHooks {
  /** Abort = cancel the job (SIGTERM then SIGKILL locally; scancel on SLURM); resolves as `cancelled`. */
  signal: AbortSignal;
  /** Abort = kill now, no grace period (a second Ctrl-C): SIGKILL to the whole process group locally. */
  kill?: AbortSignal;
  /** Output as it arrives (also written to `logFile`); lines starting with `::pipe::` carry runner events. */
  onOutput?(chunk: string): void;
  /** Called when the job actually starts (a SLURM job leaves the queue). */
  onStart?(info: { jobId?: string; host?: string }): void;
  /** State changes worth showing (queued, reattached, requeued...). */
  onState?(state: string): void;
}

export interface Executor {
  readonly name: 'local' | 'slurm';
  run(job: Job, hooks: JobHooks): Promise<JobResult>;
  /** Release pollers/timers. */
  close(): Promise<void>;
}
