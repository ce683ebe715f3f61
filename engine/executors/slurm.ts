/**
 * SlurmExecutor: runs Jobs through `sbatch` and watches them with ONE `squeue` call per poll for all jobs.
 *
 * What it does about SLURM's bad days:
 * - the verdict of a finished job comes from the task's own exit-status marker, else `scontrol show job`, else the
 *   job-completion log; with none of them it waits, and only after `lostAfterMs` says "lost" — never a guess;
 * - out-of-memory, time limit, node failure and outside cancellation are told apart and said in plain words;
 * - every submission is persisted before `run` returns control, so a restarted `pipe run` reattaches to jobs still
 *   queued or running (or already succeeded) instead of submitting them twice;
 * - jobs of one declaration with equal resources that arrive within `arrayWindowMs` go out as one job array;
 * - transient sbatch/squeue failures (slurmctld busy, socket timeouts) are retried with backoff;
 * - polling is adaptive: fast while things change, backing off to `pollMaxMs` while nothing does.
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { StringDecoder } from 'node:string_decoder';
import type { Executor, Job, JobHooks, JobResult } from './executor.js';
import { SlurmRegistry, type SubmittedJob } from './slurm-registry.js';
import { openIfRegular, readRegularFile, readTailSync } from '../../cache/read.js';
import { ownFolderSync } from '../../cache/dir.js';
import { writeFileAtomic } from '../../cache/atomic.js';
import { ownFolder } from '../workspace.js';
import { arrayGroupKey, arrayScript, jobName, resourceFlags, slurmMem, slurmOutputPattern, taskScript } from './slurm-script.js';
import { isActive, parseJobcomp, parseScontrolJob, parseSqueue, verdict, type QueueEntry } from './slurm-state.js';

const run = promisify(execFile);

/*
 * Files a job or the cluster writes, read bounded, non-blocking and without following links (cache/read.ts): a job
 * can turn its own log into a FIFO or a link, and the cluster's jobcomp log only grows.
 */
/** A job's log collected after pipe was away: replayed into the stage's log, its start left out past this. */
const MAX_COLLECTED_LOG_BYTES = 64 * 1024 * 1024;
/** What one poll reads of a job's new log output (streamed to the terminal): past this, the middle is left out. */
const MAX_STREAMED_LOG_BYTES = 8 * 1024 * 1024;
/** SLURM's own words about a job (time limit, out of memory) are its output's last lines. */
const SLURM_OUTPUT_TAIL_BYTES = 1024 * 1024;
/** The jobs that just left the queue are at the end of the cluster's jobcomp log. */
const JOBCOMP_TAIL_BYTES = 16 * 1024 * 1024;
/** squeue tries (backing off from 250 ms: about 8 s in all) before a job an earlier run submitted is judged unknown. */
const REATTACH_SQUEUE_ATTEMPTS = 6;
/** SLURM's default `MaxArraySize`, for a cluster whose configuration cannot be read. */
const DEFAULT_MAX_ARRAY_SIZE = 1001;
/** An exit-code marker is a number and a newline. */
const MAX_MARKER_BYTES = 64;

export interface SlurmExecutorOptions {
  /** `<workspace>/.pipe/slurm`: scripts, markers, SLURM output files and the job registry live here. */
  stateDir: string;
  pollMinMs?: number;
  pollMaxMs?: number;
  /** How long to gather jobs of one declaration into an array. 0 disables arrays. */
  arrayWindowMs?: number;
  /** The most tasks in one job array; read from the cluster (`MaxArraySize`) when not given. */
  maxArrayTasks?: number;
  /** A job that left the queue and that nothing (marker, scontrol, jobcomp) knows about for this long is lost. */
  lostAfterMs?: number;
  /** The job-completion log (`JobCompLoc`); read from `scontrol show config` when not given. */
  jobcompLog?: string;
  commands?: Partial<Record<'sbatch' | 'squeue' | 'scontrol' | 'scancel', string>>;
}

interface Tracked {
  jobId: string;
  job: Job;
  hooks: JobHooks;
  resolve: (r: JobResult) => void;
  record: SubmittedJob;
  startedAt: number;
  started: boolean;
  lastState: string;
  logOffset: number;
  decoder?: StringDecoder;
  cancelledByUs: boolean;
  missingSince?: number;
  host?: string;
  onAbort?: () => void;
}

interface Waiting {
  job: Job;
  hooks: JobHooks;
  resolve: (r: JobResult) => void;
  cancelled: boolean;
  onAbort?: () => void;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm' as const;
  /** Counters for tests and the benchmark: one squeue per poll, however many jobs. */
  readonly stats = { polls: 0, squeueCalls: 0, sbatchCalls: 0, scontrolCalls: 0 };

  private readonly registry: SlurmRegistry;
  private readonly active = new Map<string, Tracked>();
  private readonly batches = new Map<string, { waiting: Waiting[]; timer: NodeJS.Timeout }>();
  private pollTimer: NodeJS.Timeout | undefined;
  private interval: number;
  private polling = false;
  private closed = false;
  private jobcompLog: string | undefined;
  private leftByEarlierRuns: Promise<SubmittedJob[]> | undefined;
  private maxArrayTasks: Promise<number> | undefined;
  private readonly opts: Required<Omit<SlurmExecutorOptions, 'jobcompLog' | 'commands' | 'maxArrayTasks'>> & Pick<SlurmExecutorOptions, 'jobcompLog' | 'maxArrayTasks'>;
  private readonly cmd: Record<'sbatch' | 'squeue' | 'scontrol' | 'scancel', string>;

  constructor(options: SlurmExecutorOptions) {
    this.opts = {
      stateDir: options.stateDir,
      pollMinMs: options.pollMinMs ?? 250,
      pollMaxMs: options.pollMaxMs ?? 5000,
      arrayWindowMs: options.arrayWindowMs ?? 100,
      lostAfterMs: options.lostAfterMs ?? 120_000,
      jobcompLog: options.jobcompLog,
      ...(options.maxArrayTasks !== undefined ? { maxArrayTasks: options.maxArrayTasks } : {}),
    };
    this.jobcompLog = options.jobcompLog;
    this.cmd = { sbatch: 'sbatch', squeue: 'squeue', scontrol: 'scontrol', scancel: 'scancel', ...options.commands };
    this.registry = SlurmRegistry.of(this.opts.stateDir);
    this.interval = this.opts.pollMinMs;
  }

  async run(job: Job, hooks: JobHooks): Promise<JobResult> {
    if (hooks.signal.aborted) return cancelledResult(Date.now());
    const unsettled = await this.settleEarlierJobs(job, hooks, job.key);
    if (unsettled) return unsettled;
    const prior = await this.registry.get(job.key);
    if (prior && !this.ours(prior, job)) await this.registry.remove(job.key);
    else if (prior) {
      const reattached = await this.reattach(prior, job, hooks);
      if (reattached) return reattached;
    }
    return new Promise<JobResult>((resolve) => this.enqueue({ job, hooks, resolve, cancelled: false }));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    for (const b of this.batches.values()) clearTimeout(b.timer);
  }

  // ---- submission ---------------------------------------------------------------------------------------------

  private enqueue(w: Waiting): void {
    // Many jobs share one session signal: every listener added here is removed when its job settles.
    w.onAbort = () => {
      w.cancelled = true;
    };
    w.hooks.signal.addEventListener('abort', w.onAbort, { once: true });
    if (this.opts.arrayWindowMs <= 0) {
      void this.submit([w]);
      return;
    }
    const key = arrayGroupKey(w.job);
    const batch = this.batches.get(key);
    if (batch) {
      batch.waiting.push(w);
      return;
    }
    const timer = setTimeout(() => {
      const b = this.batches.get(key);
      this.batches.delete(key);
      if (b) void this.submitInArrays(b.waiting);
    }, this.opts.arrayWindowMs);
    this.batches.set(key, { waiting: [w], timer });
  }

  /** The state folders, each job's fresh log, task script and cleared marker, and the script to submit. */
  private async prepare(live: Waiting[]): Promise<{ dir: string; markers: string[]; scriptToSubmit: string }> {
    // Real folders, never a link a stage put at one of their names (cache/dir.ts): scripts and markers stay inside.
    const dir = ownFolderSync(dirname(this.opts.stateDir), basename(this.opts.stateDir));
    for (const d of ['tasks', 'markers', 'out', 'jobs']) ownFolderSync(dir, d);
    const scripts: string[] = [];
    const markers: string[] = [];
    for (const w of live) {
      const marker = join(dir, 'markers', `${w.job.id}.exit`);
      const script = join(dir, 'tasks', `${w.job.id}.sh`);
      await rm(marker, { force: true });
      // A fresh log in pipe's own logs folder, and the script written by rename: a link a stage put at either name
      // (its own log, a job id it can guess) is replaced, never written through.
      ownFolder(dirname(w.job.logFile));
      await rm(w.job.logFile, { force: true });
      await writeFile(w.job.logFile, '', { flag: 'wx' });
      await writeFileAtomic(script, taskScript(w.job, marker), { mode: 0o755 });
      scripts.push(script);
      markers.push(marker);
    }
    if (live.length === 1) return { dir, markers, scriptToSubmit: scripts[0]! };
    const scriptToSubmit = join(dir, 'tasks', `array-${live[0]!.job.id}.sh`);
    await writeFileAtomic(scriptToSubmit, arrayScript(scripts), { mode: 0o755 });
    return { dir, markers, scriptToSubmit };
  }

  /**
   * One array holds at most what the cluster allows (`MaxArraySize` - 1 tasks, indexes start at 0): a bigger one is
   * refused by sbatch ("Invalid job array specification") and every stage in it would fail.
   */
  private async submitInArrays(waiting: Waiting[]): Promise<void> {
    const max = this.opts.maxArrayTasks ?? (await this.clusterMaxArrayTasks());
    const parts: Waiting[][] = [];
    for (let i = 0; i < waiting.length; i += max) parts.push(waiting.slice(i, i + max));
    await Promise.all(parts.map((part) => this.submit(part)));
  }

  private async clusterMaxArrayTasks(): Promise<number> {
    this.maxArrayTasks ??= this.slurm('scontrol', ['show', 'config'], 2)
      .then((cfg) => Number(/^MaxArraySize\s*=\s*(\d+)/m.exec(cfg)?.[1] ?? DEFAULT_MAX_ARRAY_SIZE) - 1)
      .catch(() => DEFAULT_MAX_ARRAY_SIZE - 1)
      .then((n) => Math.max(1, n));
    return this.maxArrayTasks;
  }

  private async submit(waiting: Waiting[]): Promise<void> {
    const now = Date.now();
    for (const w of waiting) if (w.onAbort) w.hooks.signal.removeEventListener('abort', w.onAbort);
    const live = waiting.filter((w) => {
      if (w.cancelled || w.hooks.signal.aborted) w.resolve(cancelledResult(now));
      return !(w.cancelled || w.hooks.signal.aborted);
    });
    if (live.length === 0) return;
    let prepared: { dir: string; markers: string[]; scriptToSubmit: string };
    try {
      prepared = await this.prepare(live);
    } catch (e) {
      // A logs folder a stage replaced with a link, a full disk: the jobs fail saying so (never an unhandled rejection).
      const reason = `could not prepare the SLURM job: ${errorText(e)}`;
      for (const w of live) w.resolve({ status: 'failed', exitCode: null, signal: null, failure: 'submit', reason, startedAt: now, endedAt: Date.now() });
      return;
    }
    const { dir, markers, scriptToSubmit } = prepared;
    const first = live[0]!.job;
    const isArray = live.length > 1;
    const output = slurmOutputPattern(join(dir, 'out'), isArray ? '%A_%a.out' : '%j.out');
    if (output === undefined) {
      const reason = `could not submit to SLURM: the workspace path ${dir} holds a backslash, which turns off the job id in sbatch's --output (every job would write one file); move the workspace`;
      for (const w of live) w.resolve({ status: 'failed', exitCode: null, signal: null, failure: 'submit', reason, startedAt: now, endedAt: Date.now() });
      return;
    }
    const args = [
      '--parsable',
      `--job-name=${jobName(first)}`,
      `--output=${output}`,
      '--no-requeue', // pipe decides about retries; a silent requeue would hide a node failure
      `--chdir=${first.cwd}`,
      ...(isArray ? [`--array=0-${live.length - 1}`] : []),
      ...resourceFlags(first),
      scriptToSubmit,
    ];
    let baseId: string;
    try {
      const out = await this.slurm('sbatch', args, 3);
      this.stats.sbatchCalls++;
      baseId = out.trim().split(';')[0]!.trim();
      if (!/^\d+$/.test(baseId)) throw new Error(`sbatch answered "${out.trim()}" instead of a job id`);
    } catch (e) {
      const reason = `could not submit to SLURM: ${errorText(e)}`;
      for (const w of live) w.resolve({ status: 'failed', exitCode: null, signal: null, failure: 'submit', reason, startedAt: now, endedAt: Date.now() });
      return;
    }
    await Promise.all(
      live.map(async (w, i) => {
        const jobId = isArray ? `${baseId}_${i}` : baseId;
        const record: SubmittedJob = {
          key: w.job.key,
          stage: w.job.stage,
          jobId,
          marker: markers[i]!,
          slurmOutput: join(dir, 'out', `${isArray ? `${baseId}_${i}` : baseId}.out`),
          logFile: w.job.logFile,
          submittedAt: new Date().toISOString(),
          ...(w.job.resources.memBytes > 0 ? { memLimit: slurmMem(w.job.resources.memBytes) } : {}),
        };
        try {
          await this.registry.put(record);
        } catch (e) {
          // Unrecorded, a rerun could not find it (and would submit beside it), nor `pipe cancel` stop it.
          const scancel = await this.slurm('scancel', [jobId], 3).then(() => 'scancelled it', (c) => `scancel failed too (${errorText(c)}): scancel ${jobId} yourself`);
          const reason = `SLURM job ${jobId} was submitted but could not be recorded, so pipe ${scancel}: ${errorText(e)}`;
          w.resolve({ status: 'failed', exitCode: null, signal: null, failure: 'submit', reason, startedAt: now, endedAt: Date.now() });
          return;
        }
        w.hooks.onState?.(`submitted as SLURM job ${jobId}`);
        this.track(record, w.job, w.hooks, w.resolve, now, 0);
        if (w.hooks.signal.aborted) void this.cancel(this.active.get(jobId)!);
      }),
    );
  }

  /**
   * Whether a job record is one this executor wrote for `job`: its log is the job's, and its marker and SLURM output
   * files lie in this state folder. The record is a file a stage's command can rewrite: one naming other paths would
   * have pipe print a file outside the workspace as the job's log, or read one as its exit status ("0": the stage
   * "succeeded" without running). Such a record is dropped and the job submitted anew.
   */
  private ours(prior: SubmittedJob, job: Job): boolean {
    const inState = (file: unknown, folder: string) => typeof file === 'string' && dirname(file) === join(this.opts.stateDir, folder) && /^[\w.-]+$/.test(basename(file));
    return prior.key === job.key && prior.logFile === job.logFile && inState(prior.marker, 'markers') && inState(prior.slurmOutput, 'out') && isJobId(String(prior.jobId));
  }

  /**
   * Before `job` runs (here, or locally: `keepKey` undefined), the jobs an earlier, killed pipe run submitted for the
   * same stage that this run will not reattach to (the stage changed since, or now runs locally) are scancelled and
   * waited for: left running they would write the stage's outputs beside the new run, or after it was recorded.
   * Returns a failed result when that cannot be done (the controller does not answer, a job will not leave).
   */
  async settleEarlierJobs(job: Job, hooks: JobHooks, keepKey: string | undefined): Promise<JobResult | undefined> {
    // What earlier processes left is read once: the records this process writes are of jobs it tracks itself.
    this.leftByEarlierRuns ??= this.registry.all();
    const earlier = (await this.leftByEarlierRuns).filter((r) => r.stage === job.stage && r.key !== keepKey);
    if (earlier.length === 0) return undefined;
    const failed = (reason: string): JobResult => ({ status: 'failed', exitCode: null, signal: null, failure: 'submit', reason, startedAt: Date.now(), endedAt: Date.now() });
    const ids = new Set(earlier.map((r) => String(r.jobId)).filter(isJobId));
    const t0 = Date.now();
    for (let first = true; ; first = false) {
      let queue: Map<string, QueueEntry & { name: string }>;
      try {
        queue = await this.squeue(REATTACH_SQUEUE_ATTEMPTS);
      } catch (e) {
        return failed(`could not ask SLURM whether job ${[...ids].join(', ')}, submitted for this stage by an earlier pipe run, is still queued (${errorText(e)}); not running the stage beside it: run again once the controller answers, or \`pipe cancel\` it`);
      }
      // A job id SLURM gave to someone else's job since (its state was reset) is not ours to cancel: names are checked.
      const alive = [...ids].filter((id) => {
        const e = queue.get(id);
        return e !== undefined && isActive(e.state) && e.name.startsWith('pipe:');
      });
      if (alive.length === 0) break;
      if (first) {
        hooks.onState?.(`cancelling SLURM job ${alive.join(', ')}, submitted for an earlier version of this stage by a pipe run that was killed`);
        await this.slurm('scancel', alive, 3).catch(() => undefined);
      }
      if (hooks.signal.aborted) return cancelledResult(Date.now());
      if (Date.now() - t0 > this.opts.lostAfterMs) {
        return failed(`SLURM job ${alive.join(', ')}, submitted for this stage by an earlier pipe run, did not leave the queue after scancel; not running the stage beside it: scancel it, then run again`);
      }
      await new Promise((r) => setTimeout(r, this.opts.pollMinMs));
    }
    for (const r of earlier) await this.registry.remove(r.key);
    const left = await this.leftByEarlierRuns;
    for (const r of earlier) left.splice(left.indexOf(r), 1);
    return undefined;
  }

  /** Reattach to a job a previous pipe process submitted. Returns undefined when it must be submitted anew. */
  private async reattach(prior: SubmittedJob, job: Job, hooks: JobHooks): Promise<JobResult | undefined> {
    let queue: Map<string, QueueEntry & { name: string }>;
    try {
      // Patient: a controller that does not answer says nothing about the job, which may well still run.
      queue = await this.squeue(REATTACH_SQUEUE_ATTEMPTS);
    } catch (e) {
      // Submitting again now could run the stage twice at once, both jobs writing its outputs: the record is kept.
      const marker = await readMarker(prior.marker);
      if (marker !== 0) {
        const reason = `could not ask SLURM whether job ${prior.jobId}, submitted by an earlier pipe run, is still queued (${errorText(e)}); not submitting the stage again beside it: run again once the controller answers, or \`pipe cancel\` it`;
        return { status: 'failed', exitCode: null, signal: null, failure: 'submit', reason, startedAt: Date.now(), endedAt: Date.now() };
      }
      queue = new Map();
    }
    const entry = queue.get(prior.jobId);
    if (entry && isActive(entry.state) && entry.name === jobName(job)) {
      hooks.onState?.(`reattached to SLURM job ${prior.jobId} (${entry.state.toLowerCase()})`);
      // Stream the log from its start: the new process has shown none of it yet.
      return new Promise<JobResult>((resolve) => this.track(prior, job, hooks, resolve, Date.parse(prior.submittedAt) || Date.now(), 0));
    }
    // Gone from the queue: only a success is worth collecting (a failure may have been fixed by new resources).
    const marker = await readMarker(prior.marker);
    if (marker === 0) {
      hooks.onState?.(`collected SLURM job ${prior.jobId}, which finished while pipe was away`);
      await this.registry.remove(prior.key);
      const log = readTailSync(prior.logFile, MAX_COLLECTED_LOG_BYTES);
      if (log && log.skipped > 0) hooks.onOutput?.(`[pipe: the first ${log.skipped} bytes of this job's ${prior.logFile} are not repeated here]\n`);
      if (log && log.bytes.length > 0) hooks.onOutput?.(log.bytes.toString('utf8'));
      return { status: 'succeeded', exitCode: 0, signal: null, reason: 'exit code 0', startedAt: Date.parse(prior.submittedAt), endedAt: Date.now(), jobId: prior.jobId };
    }
    await this.registry.remove(prior.key);
    return undefined;
  }

  private track(record: SubmittedJob, job: Job, hooks: JobHooks, resolve: (r: JobResult) => void, startedAt: number, logOffset: number): void {
    const t: Tracked = { jobId: record.jobId, job, hooks, resolve, record, startedAt, started: false, lastState: '', logOffset, cancelledByUs: false };
    this.active.set(record.jobId, t);
    t.onAbort = () => void this.cancel(t);
    hooks.signal.addEventListener('abort', t.onAbort, { once: true });
    this.interval = this.opts.pollMinMs;
    this.schedulePoll(true);
  }

  private async cancel(t: Tracked): Promise<void> {
    if (t.cancelledByUs || !this.active.has(t.jobId)) return;
    t.cancelledByUs = true;
    try {
      await this.slurm('scancel', [t.jobId], 3);
    } catch (e) {
      // The controller does not answer: waiting to see the job leave the queue would hold Ctrl-C forever. The record
      // stays, so the next `pipe run` reattaches to the job (or collects it) and `pipe cancel` can still cancel it.
      if (!/Invalid job id/i.test(errorText(e)) && this.active.has(t.jobId)) {
        const reason = `cancelled, but scancel of SLURM job ${t.jobId} failed (${errorText(e)}): it may still be running; \`pipe cancel\` cancels it once the controller answers`;
        this.finish(t, { status: 'cancelled', failure: 'cancelled', reason, exitCode: null, signal: null }, { keepRecord: true });
        return;
      }
    }
    this.interval = this.opts.pollMinMs;
    this.schedulePoll(true);
  }

  // ---- polling ------------------------------------------------------------------------------------------------

  private schedulePoll(soon = false): void {
    if (this.closed || this.active.size === 0) return;
    if (this.pollTimer && !soon) return;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      void this.poll();
    }, soon ? Math.min(this.interval, this.opts.pollMinMs) : this.interval);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    let changed = false;
    try {
      this.stats.polls++;
      const queue = await this.squeue().catch(() => undefined);
      if (queue) {
        for (const t of [...this.active.values()]) {
          changed = (await this.observe(t, queue.get(t.jobId))) || changed;
        }
      }
    } finally {
      this.polling = false;
    }
    this.interval = changed ? this.opts.pollMinMs : Math.min(this.opts.pollMaxMs, Math.ceil(this.interval * 1.5));
    this.schedulePoll();
  }

  /** One job against the queue snapshot; true when something changed. */
  private async observe(t: Tracked, entry: (QueueEntry & { name: string }) | undefined): Promise<boolean> {
    let changed = await this.streamLog(t);
    if (entry && isActive(entry.state) && entry.state !== 'COMPLETING') {
      if (entry.state !== t.lastState) {
        changed = true;
        t.lastState = entry.state;
        if (entry.state === 'RUNNING' && !t.started) {
          t.started = true;
          t.host = entry.nodes || undefined;
          t.hooks.onStart?.({ jobId: t.jobId, host: entry.nodes || undefined });
        } else if (entry.state === 'PENDING') {
          t.hooks.onState?.(`queued (${entry.reason || 'waiting'})`);
        } else {
          t.hooks.onState?.(entry.state.toLowerCase());
        }
      }
      t.missingSince = undefined;
      return changed;
    }
    // Left the queue (or completing): find out how it ended.
    const marker = await readMarker(t.record.marker);
    // What SLURM itself said (time limit, out of memory) is at the end of the job's output.
    const slurmOutput = readTailSync(t.record.slurmOutput, SLURM_OUTPUT_TAIL_BYTES)?.bytes.toString('utf8') ?? '';
    let final = undefined;
    if (marker === undefined || marker !== 0) final = await this.finalState(t.jobId);
    if (entry && entry.state === 'COMPLETING' && marker === undefined) return changed; // not settled yet
    const v = verdict({ marker, final, slurmOutput, cancelledByUs: t.cancelledByUs, memLimit: t.record.memLimit });
    if (!v) {
      t.missingSince ??= Date.now();
      if (Date.now() - t.missingSince < this.opts.lostAfterMs) return changed;
      this.finish(t, { status: 'failed', failure: 'lost', reason: `SLURM job ${t.jobId} vanished: not queued, and neither scontrol, the job-completion log nor the job itself recorded how it ended`, exitCode: null, signal: null });
      return true;
    }
    await this.streamLog(t);
    this.finish(t, v);
    return true;
  }

  private finish(t: Tracked, v: { status: JobResult['status']; failure?: JobResult['failure']; reason: string; exitCode: number | null; signal: string | null }, opts: { keepRecord?: boolean } = {}): void {
    if (this.active.get(t.jobId) !== t) return; // settled already (a failed scancel, while a poll looked at it)
    this.active.delete(t.jobId);
    if (t.onAbort) t.hooks.signal.removeEventListener('abort', t.onAbort);
    if (!opts.keepRecord) void this.registry.remove(t.record.key);
    t.resolve({ ...v, startedAt: t.startedAt, endedAt: Date.now(), jobId: t.jobId, ...(t.host ? { host: t.host } : {}) });
  }

  private async streamLog(t: Tracked): Promise<boolean> {
    // The job writes its log and can replace it: a link (to a file outside the workspace), a FIFO (an open that
    // never returns), a folder (EISDIR) is not streamed, and nothing read from it can throw out of the poll.
    let opened;
    try {
      opened = await openIfRegular(t.record.logFile, { noFollow: true });
    } catch {
      return false;
    }
    if (!opened) return false;
    const { fh } = opened;
    try {
      const size = opened.st.size;
      if (size <= t.logOffset) return false;
      // A job can write (or truncate its log to) gigabytes between two polls: past the bound, the middle of what is
      // new is left out with a note, never read whole into memory (or one string, which has a size limit).
      let note = '';
      if (size - t.logOffset > MAX_STREAMED_LOG_BYTES) {
        note = `\n[pipe: ${size - t.logOffset - MAX_STREAMED_LOG_BYTES} bytes of this job's log are not shown here; they are in ${t.record.logFile}]\n`;
        t.logOffset = size - MAX_STREAMED_LOG_BYTES;
        t.decoder = new StringDecoder('utf8');
      }
      const buf = Buffer.alloc(size - t.logOffset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, t.logOffset);
      t.logOffset += bytesRead;
      t.decoder ??= new StringDecoder('utf8');
      // Decoded across polls: a character split between two reads is not garbled.
      const text = note + t.decoder.write(buf.subarray(0, bytesRead));
      const host = /::pipe::\{"type":"slurm","job":"[^"]*","host":"([^"]*)"\}/.exec(text)?.[1];
      if (host) t.host = host;
      if (host && !t.started) {
        t.started = true;
        t.hooks.onStart?.({ jobId: t.jobId, host });
      }
      t.hooks.onOutput?.(text);
      return true;
    } catch {
      return false;
    } finally {
      await fh.close();
    }
  }

  private async finalState(jobId: string) {
    try {
      this.stats.scontrolCalls++;
      const out = await this.slurm('scontrol', ['show', 'job', '-o', jobId], 1);
      const parsed = parseScontrolJob(out);
      if (parsed) return parsed;
    } catch {
      // scontrol forgets jobs after MinJobAge: fall through to the completion log.
    }
    const log = await this.readJobcomp();
    return log ? parseJobcomp(log, jobId) : undefined;
  }

  private async readJobcomp(): Promise<string | undefined> {
    if (this.jobcompLog === undefined) {
      try {
        const cfg = await this.slurm('scontrol', ['show', 'config'], 1);
        const type = /^JobCompType\s*=\s*(\S+)/m.exec(cfg)?.[1];
        const loc = /^JobCompLoc\s*=\s*(\S+)/m.exec(cfg)?.[1];
        this.jobcompLog = type === 'jobcomp/filetxt' && loc ? loc : '';
      } catch {
        this.jobcompLog = '';
      }
    }
    if (!this.jobcompLog) return undefined;
    // The cluster's log of every job ever completed: only its end holds the jobs that just left the queue.
    // The cluster's own file, where its admin put it (a link to another disk included): the link is followed.
    let file = this.jobcompLog;
    try {
      file = realpathSync(file);
    } catch {
      return undefined;
    }
    return readTailSync(file, JOBCOMP_TAIL_BYTES)?.bytes.toString('utf8');
  }

  private async squeue(attempts = 2): Promise<Map<string, QueueEntry & { name: string }>> {
    this.stats.squeueCalls++;
    const out = await this.slurm('squeue', ['-h', '-r', '--me', '-o', '%i|%T|%r|%N|%j'], attempts);
    const parsed = parseSqueue(out);
    const withNames = new Map<string, QueueEntry & { name: string }>();
    for (const line of out.split('\n')) {
      const parts = line.trim().split('|');
      const e = parsed.get(parts[0] ?? '');
      if (e) withNames.set(e.id, { ...e, name: parts[4] ?? '' });
    }
    return withNames;
  }

  /** Runs a SLURM command, retrying transient failures (controller busy or restarting) with backoff. */
  private async slurm(which: keyof SlurmExecutor['cmd'], args: string[], attempts: number): Promise<string> {
    let delay = 250;
    for (let i = 1; ; i++) {
      try {
        const { stdout } = await run(this.cmd[which], args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
        return stdout;
      } catch (e) {
        const text = errorText(e);
        const transient = /timed out|Unable to contact|Socket|Connection refused|try again|temporarily|Resource temporarily unavailable|Zero Bytes/i.test(text);
        if (i >= attempts || !transient) throw new Error(text);
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
  }
}

/** `pipe cancel`: scancel every job this workspace submitted and forget them. Returns the cancelled job ids. */
export async function cancelWorkspaceJobs(stateDir: string, scancel = 'scancel'): Promise<SubmittedJob[]> {
  const registry = SlurmRegistry.of(stateDir);
  const jobs = await registry.all();
  // A record is a file a stage's command can rewrite: only a job id goes to scancel, never an option (`--user=me`).
  const ids = jobs.map((j) => String(j.jobId)).filter(isJobId);
  if (ids.length > 0) {
    try {
      await run(scancel, ids);
    } catch (e) {
      // The records stay: they are what the next `pipe run` reattaches to and what `pipe cancel` cancels once the
      // controller answers. Forgetting them would leave the jobs running and have the stages submitted again.
      throw new Error(`scancel of SLURM job ${ids.join(', ')} failed (${errorText(e)}): they may still be pending or running; run \`pipe cancel\` again once the controller answers`);
    }
  }
  for (const j of jobs) await registry.remove(j.key);
  return jobs;
}

/** "123", or "123_4" for an array task: what sbatch gave. */
function isJobId(id: string): boolean {
  return /^\d+(_\d+)?$/.test(id);
}

async function readMarker(file: string): Promise<number | undefined> {
  try {
    const text = ((await readRegularFile(file, MAX_MARKER_BYTES)) ?? '').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function cancelledResult(now: number): JobResult {
  return { status: 'cancelled', exitCode: null, signal: null, failure: 'cancelled', reason: 'cancelled', startedAt: now, endedAt: now };
}

function errorText(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr?.trim() || err.message || String(e)).split('\n')[0]!;
}
