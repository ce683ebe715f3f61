/** Exponential backoff with "equal jitter": base·2^attempt, capped, half fixed and half random. */
export interface BackoffPolicy {
  /** Extra attempts after the first. */
  retries: number;
  baseMs: number;
  capMs: number;
}

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** attempt);
  return exp / 2 + (random() * exp) / 2;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `Retry-After` in both forms (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date — measured from the response's own
 * `Date` when it has one, so a skewed local clock does not stretch or skip the wait. Null when absent or unreadable;
 * a date in the past is 0. The caller bounds the result.
 */
export function parseRetryAfter(value: string | undefined, date: string | undefined, now: number = Date.now()): number | null {
  const v = value?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // HTTP-dates are GMT; the asctime form does not say so, and Date.parse would read it as local time.
  const at = Date.parse(/\b(GMT|UTC)\b|[+-]\d{4}$/i.test(v) ? v : `${v} GMT`);
  if (!Number.isFinite(at) || !/[a-z]/i.test(v)) return null;
  const sent = date ? Date.parse(date) : NaN;
  return Math.max(0, at - (Number.isFinite(sent) ? sent : now));
}
