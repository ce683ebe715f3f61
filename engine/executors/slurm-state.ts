/**
 * Pure parsing of SLURM's answers and the translation of a finished job into a JobResult. Every verdict comes from
 * something SLURM (or the task itself) said; when nothing said anything, the job is `lost`, never guessed.
 */
import type { FailureKind, JobResult } from './executor.js';

/** One line of `squeue -h -r -o '%i|%T|%r|%N'`. */
export interface QueueEntry {
  id: string; // "123" or "123_4" for an array task
  state: string; // PENDING, RUNNING, COMPLETING, CONFIGURING, REQUEUED, ...
  reason: string; // why it is pending ("Resources", "Priority", "None")
  nodes: string;
}

export function parseSqueue(stdout: string): Map<string, QueueEntry> {
  const out = new Map<string, QueueEntry>();
  for (const line of stdout.split('\n')) {
    const [id, state, reason, nodes] = line.trim().split('|');
    if (!id || !state) continue;
    out.set(id, { id, state, reason: reason ?? '', nodes: nodes ?? '' });
  }
  return out;
}

/** A finished (or finishing) job as `scontrol show job -o` or the jobcomp log describe it. */
export interface FinalState {
  state: string; // COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...
  exitCode: number | null;
  signal: number | null;
  reason: string;
  host?: string;
  timeLimit?: string;
}

/** Parses `Key=Value` pairs of one `scontrol show job -o` line (values may not contain spaces). */
function keyValues(line: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const m of line.matchAll(/(\S+?)=(\S*)/g)) kv.set(m[1]!, m[2]!);
  return kv;
}

function exitPair(text: string | undefined): { exitCode: number | null; signal: number | null } {
  const m = /^(\d+):(\d+)$/.exec(text ?? '');
  if (!m) return { exitCode: null, signal: null };
  return { exitCode: Number(m[1]), signal: Number(m[2]) || null };
}

export function parseScontrolJob(stdout: string): FinalState | undefined {
  const line = stdout.split('\n').find((l) => l.includes('JobState='));
  if (!line) return undefined;
  const kv = keyValues(line);
  return {
    state: kv.get('JobState') ?? 'UNKNOWN',
    ...exitPair(kv.get('ExitCode')),
    reason: kv.get('Reason') ?? '',
    host: kv.get('BatchHost') ?? kv.get('NodeList'),
    timeLimit: kv.get('TimeLimit'),
  };
}

/**
 * Finds a job in a `jobcomp/filetxt` log (the record of last resort once scontrol has forgotten the job). Array
 * tasks carry their own numeric JobId there, so pipe's "A_i" form is matched through ArrayJobId/ArrayTaskId.
 */
export function parseJobcomp(log: string, jobId: string): FinalState | undefined {
  const [arrayId, taskId] = jobId.split('_');
  let found: FinalState | undefined;
  for (const line of log.split('\n')) {
    if (!line.startsWith('JobId=')) continue;
    const kv = keyValues(line);
    const match = taskId === undefined ? kv.get('JobId') === jobId : kv.get('ArrayJobId') === arrayId && kv.get('ArrayTaskId') === taskId;
    if (!match) continue;
    found = {
      state: kv.get('JobState') ?? 'UNKNOWN',
      ...exitPair(kv.get('ExitCode')),
      reason: '',
      host: kv.get('NodeList'),
      timeLimit: kv.get('TimeLimit'),
    };
  }
  return found;
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };

export interface Verdict {
  status: JobResult['status'];
  failure?: FailureKind;
  reason: string;
  exitCode: number | null;
  signal: string | null;
}

/**
 * The verdict for a job that left the queue.
 * - `marker`: the exit status the task script wrote itself (present only when the command ran to its end).
 * - `final`: what SLURM says (scontrol, else jobcomp); `slurmOutput`: slurmstepd's own messages for the job, which
 *   are the only trace of an out-of-memory kill when there are no cgroups.
 * - `cancelledByUs`: pipe sent scancel (Ctrl-C, watch restart): a cancellation, not a failure.
 */
export function verdict(input: {
  marker?: number;
  final?: FinalState;
  slurmOutput?: string;
  cancelledByUs: boolean;
  memLimit?: string;
}): Verdict | undefined {
  const { marker, final, slurmOutput = '', cancelledByUs } = input;
  const oomText = /exceeded (job )?memory limit|oom-kill|out of memory/i.test(slurmOutput);
  if (oomText || final?.state === 'OUT_OF_MEMORY') {
    return {
      status: 'failed',
      failure: 'oom',
      reason: `out of memory${input.memLimit ? ` (limit ${input.memLimit})` : ''}`,
      exitCode: null,
      signal: 'SIGKILL',
    };
  }
  if (final?.state === 'TIMEOUT' || /DUE TO TIME LIMIT/.test(slurmOutput)) {
    return { status: 'failed', failure: 'timeout', reason: `time limit${final?.timeLimit ? ` (${final.timeLimit})` : ''}`, exitCode: null, signal: null };
  }
  if (final?.state === 'NODE_FAIL' || /DUE TO NODE FAILURE/.test(slurmOutput)) {
    return { status: 'failed', failure: 'node_fail', reason: `node failure${final?.host ? ` (${final.host})` : ''}`, exitCode: null, signal: null };
  }
  // scancel sends SIGTERM, and the task script may live long enough to record 143: SLURM's word wins.
  if (marker !== 0 && (final?.state.startsWith('CANCELLED') || /CANCELLED AT/.test(slurmOutput))) {
    return cancelledByUs
      ? { status: 'cancelled', failure: 'cancelled', reason: 'cancelled', exitCode: null, signal: null }
      : { status: 'failed', failure: 'cancelled', reason: 'cancelled outside pipe (scancel or an administrator)', exitCode: null, signal: null };
  }
  if (marker !== undefined) {
    if (marker === 0) return { status: 'succeeded', reason: 'exit code 0', exitCode: 0, signal: null };
    if (marker > 128 && SIGNALS[marker - 128]) {
      return { status: 'failed', failure: 'signal', reason: `killed by ${SIGNALS[marker - 128]}`, exitCode: marker, signal: SIGNALS[marker - 128]! };
    }
    return { status: 'failed', failure: 'exit', reason: `exit code ${marker}`, exitCode: marker, signal: null };
  }
  if (!final) return undefined;
  if (final.state === 'COMPLETED') {
    // The script exits with the command's status after writing the marker; COMPLETED without a marker means the
    // marker write itself failed (full disk?) — trust SLURM's exit code 0.
    return { status: 'succeeded', reason: 'exit code 0', exitCode: 0, signal: null };
  }
  if (final.state === 'BOOT_FAIL') return { status: 'failed', failure: 'node_fail', reason: 'node failed to boot', exitCode: null, signal: null };
  if (final.state === 'DEADLINE') return { status: 'failed', failure: 'timeout', reason: 'deadline reached', exitCode: null, signal: null };
  if (final.state === 'PREEMPTED') return { status: 'failed', failure: 'cancelled', reason: 'preempted', exitCode: null, signal: null };
  if (final.signal) {
    const name = SIGNALS[final.signal] ?? `signal ${final.signal}`;
    return { status: 'failed', failure: 'signal', reason: `killed by ${name}`, exitCode: null, signal: name };
  }
  if (final.state === 'FAILED') {
    const code = final.exitCode ?? 1;
    return { status: 'failed', failure: 'exit', reason: `exit code ${code}${final.reason && final.reason !== 'NonZeroExitCode' ? ` (${final.reason})` : ''}`, exitCode: code, signal: null };
  }
  return undefined; // still finishing (COMPLETING) or a state we do not judge
}

/** States in which the job is still alive from pipe's point of view. */
export function isActive(state: string): boolean {
  return ['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT'].includes(state);
}
