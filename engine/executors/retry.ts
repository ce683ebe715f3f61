/**
 * `retries:` for any executor: run a Job again after a failure, escalating memory after an out-of-memory kill and
 * time after a time-limit kill when the policy says so. Cancellations are never retried.
 */
import type { RetryPolicy } from '../model.js';
import type { Executor, Job, JobHooks, JobResult } from './executor.js';

export interface Attempt {
  attempt: number; // 1-based
  job: Job;
  result: JobResult;
}

/** The job for the next attempt after `result`: same stage, escalated resources where the failure calls for it. */
export function nextAttemptJob(job: Job, result: JobResult, policy: RetryPolicy, attempt: number): Job {
  const resources = { ...job.resources };
  if (result.failure === 'oom' && policy.memFactor && resources.memBytes > 0) {
    resources.memBytes = Math.ceil(resources.memBytes * policy.memFactor);
  }
  if (result.failure === 'timeout' && policy.timeFactor && resources.timeSec) {
    resources.timeSec = Math.ceil(resources.timeSec * policy.timeFactor);
  }
  const baseId = job.id.replace(/-a\d+$/, '');
  return { ...job, id: `${baseId}-a${attempt}`, resources };
}

export async function runWithRetries(
  executor: Executor,
  job: Job,
  policy: RetryPolicy,
  hooks: JobHooks,
  onRetry?: (next: Attempt) => void,
): Promise<JobResult & { attempts: Attempt[] }> {
  const attempts: Attempt[] = [];
  let current = job;
  for (let attempt = 1; ; attempt++) {
    const result = await executor.run(current, hooks);
    attempts.push({ attempt, job: current, result });
    const retryable = result.status === 'failed' && result.failure !== 'cancelled' && result.failure !== 'submit';
    if (!retryable || attempt > policy.count || hooks.signal.aborted) return { ...result, attempts };
    current = nextAttemptJob(current, result, policy, attempt + 1);
    onRetry?.({ attempt: attempt + 1, job: current, result });
  }
}
