/**
 * One HTTP(S) download attempt into a part file, resuming it only when the server proves it is the same file
 * (resume.ts), directly or through the environment's proxy (proxy.ts).
 *
 * Outcomes instead of exceptions: `complete`, `retryable` (network errors, premature close, 5xx/429, idle timeout)
 * or `fatal` (401/403/404…, a limit reached, cancellation). Reasons name the URL only by its label — redacted, or
 * `$VAR/path` for a URL built from a secret, in which case no host, path, query or redirect target appears at all,
 * and network errors are described by their code (Node's messages carry the host). The Authorization header is
 * never logged.
 */
import { constants, createWriteStream, openSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import { parseRetryAfter } from './backoff.js';
import { ProxyRefusal, proxyFor, proxyLabel, startGet, type ProxyConfig } from './proxy.js';
import { partialMismatch, partSize, planResume, readPartMeta, sameValidator, sourceId, validatorsOf, writePartMeta, type PartFile, type PartMeta } from './resume.js';

/** A bound that stopped the download (the caller words the error with the with: field and how to raise it). */
export type LimitHit =
  /** `announced`: the size the server gave, when that is what broke the bound (else the body ran past it). */
  | { field: 'max_bytes'; announced?: number }
  /** `bytes`: what the part file holds, kept for a resume. */
  | { field: 'max_time_s'; bytes: number };

export type AttemptOutcome =
  /** `kept`: the part already held the whole file, and the server proved it current (no byte was transferred). */
  | { kind: 'complete'; bytes: number; kept?: boolean }
  | { kind: 'retryable'; reason: string; retryAfterMs?: number }
  | { kind: 'fatal'; status?: number; reason: string; limit?: LimitHit; cancelled?: boolean };

export interface AttemptOptions {
  /** Value of the Authorization header (sent only to the original origin, never after a cross-origin redirect). */
  authorization?: string;
  idleTimeoutMs: number;
  /** Epoch ms at which the file's total-time limit (with.max_time_s) runs out. */
  deadline: number;
  /** Largest file accepted (with.max_bytes). */
  maxBytes: number;
  signal: AbortSignal;
  /** Called with each chunk's size (negative when bytes are discarded), and with the expected total once known. */
  onData(bytes: number): void;
  onTotal?(bytes: number): void;
  /** One line per resume decision that restarts a part file (why it could not be continued). */
  log(message: string): void;
  /** How the URL appears in messages. */
  label: string;
  /** The URL derives from a secret (base_url_env): no host, path, query or redirect target in any message. */
  secret: boolean;
  proxies: ProxyConfig;
  userAgent?: string;
}

/**
 * `https://user:secret@host/p?sig=…` → `https://host/p?…`: URLs in messages never carry credentials, and query
 * strings (where signed URLs keep their tokens) are elided.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    const q = u.search ? '?…' : '';
    u.search = '';
    return u.toString() + q;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//').replace(/\?.*$/, '?…');
  }
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed for now',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
};

/** Our own errors carry no host; Node's (getaddrinfo ENOTFOUND host, connect ECONNREFUSED ip:port, TLS altnames) do. */
class OwnError extends Error {}

function networkErrorText(e: Error, secret: boolean): string {
  if (e instanceof OwnError || e instanceof ProxyRefusal || !secret) return e.message;
  const code = (e as NodeJS.ErrnoException).code;
  if (!code) return 'network error';
  const words = NETWORK_ERRORS[code] ?? (/CERT|TLS|SSL/.test(code) ? 'TLS certificate or handshake problem' : 'network error');
  return `${words} (${code})`;
}

interface Stop {
  reason: 'idle' | 'deadline' | 'max_bytes';
  message: string;
}

/** The response to `req`, or the error that ended it; `stop` records which of our timers ended it. */
function responseOf(req: ClientRequest, opts: AttemptOptions, state: { stop: Stop | null }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.setTimeout(opts.idleTimeoutMs, () => {
      state.stop ??= { reason: 'idle', message: `no data for ${opts.idleTimeoutMs / 1000}s` };
      req.destroy(new OwnError(state.stop.message));
    });
    req.once('response', resolve);
    req.on('error', reject);
  });
}

/**
 * Write the response body to the part file (append or overwrite), up to `cap` bytes; resolves once it is closed.
 * The response is read as it arrives and queued for the disk up to WRITE_QUEUE bytes before reading pauses: Node
 * discards what a response has buffered but not handed on when its connection drops, and those bytes are paid for.
 */
const WRITE_QUEUE = 8 * 2 ** 20;

function writeBody(
  res: IncomingMessage,
  part: string,
  append: boolean,
  cap: number,
  opts: AttemptOptions,
  state: { stop: Stop | null },
): Promise<{ written: number; error?: Error; diskError?: Error }> {
  return new Promise((resolve) => {
    // Never through a link (ELOOP, a disk error): the part's folder is checked to be the workspace's own, but a stage
    // running beside this one could put a link to a file outside at the part's name.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (append ? constants.O_APPEND : constants.O_TRUNC);
    let fd: number;
    try {
      fd = openSync(part, flags, 0o666);
    } catch (e) {
      res.destroy();
      resolve({ written: 0, diskError: e as Error });
      return;
    }
    const ws = createWriteStream(part, { fd, highWaterMark: WRITE_QUEUE });
    let written = 0;
    let error: Error | undefined;
    let diskError: Error | undefined;
    const finish = (e?: Error): void => {
      if (e) error ??= e;
      if (!ws.writableEnded) ws.end();
    };
    res.on('data', (chunk: Buffer) => {
      if (ws.writableEnded) return;
      written += chunk.length;
      opts.onData(chunk.length);
      if (written > cap && !state.stop) {
        state.stop = { reason: 'max_bytes', message: 'size limit' };
        res.destroy(new OwnError('size limit'));
        return;
      }
      if (!ws.write(chunk)) {
        res.pause();
        ws.once('drain', () => res.resume());
      }
    });
    res.on('end', () => finish());
    res.on('aborted', () => finish(new OwnError('connection closed mid-file')));
    res.on('error', (e) => finish(e));
    res.on('close', () => finish(res.complete ? undefined : new OwnError('connection closed mid-file')));
    ws.on('error', (e) => {
      // The disk, not the network (ENOSPC, EACCES…): retrying would not help.
      diskError ??= e;
      res.destroy();
    });
    ws.on('close', () => resolve({ written, error, diskError }));
  });
}

export async function attemptDownload(url: string, part: PartFile, opts: AttemptOptions): Promise<AttemptOutcome> {
  const cancelled: AttemptOutcome = { kind: 'fatal', reason: 'cancelled', cancelled: true };
  let current = new URL(url);
  const origin = current.origin;
  const source = sourceId(current);
  /** Drop the part file's bytes and its record: the next request starts from byte 0. */
  const restart = async (have: number): Promise<void> => {
    // Removed, not truncated: a truncate would follow a link planted at the part's name.
    await rm(part.part, { force: true });
    await rm(part.meta, { force: true });
    opts.onData(-have);
  };
  const limitTime = (bytes: number): AttemptOutcome => ({
    kind: 'fatal',
    reason: 'time limit',
    limit: { field: 'max_time_s', bytes },
  });
  // Redirects and resume restarts each take one turn; ten is far more than a well-behaved server needs.
  for (let turn = 0; turn < 10; turn++) {
    if (opts.signal.aborted) return cancelled;
    let have = await partSize(part);
    if (Date.now() >= opts.deadline) return limitTime(have);
    const where = opts.secret ? opts.label : redactUrl(current.href);
    const headers: Record<string, string> = { 'user-agent': opts.userAgent ?? 'pipe-download/1', 'accept-encoding': 'identity' };
    if (opts.authorization && current.origin === origin) headers['authorization'] = opts.authorization;
    let meta: PartMeta | null = null;
    if (have > 0) {
      meta = await readPartMeta(part.meta);
      const plan = planResume(meta, have, source);
      if (plan.resume) {
        headers['range'] = `bytes=${have}-`;
        headers['if-range'] = plan.ifRange;
      } else {
        opts.log(`cannot resume ${opts.label} from byte ${have}: ${plan.why}; restarting from byte 0`);
        await restart(have);
        have = 0;
        meta = null;
      }
    }
    const proxy = proxyFor(current, opts.proxies);
    const state: { stop: Stop | null } = { stop: null };
    const req = startGet(current, { headers, signal: opts.signal, proxy, label: where, idleTimeoutMs: opts.idleTimeoutMs });
    const deadlineTimer = setTimeout(() => {
      state.stop ??= { reason: 'deadline', message: 'time limit' };
      req.destroy(new OwnError('time limit'));
    }, Math.min(2 ** 31 - 1, Math.max(0, opts.deadline - Date.now()))); // setTimeout's range: about 24.8 days
    try {
      let res: IncomingMessage;
      try {
        res = await responseOf(req, opts, state);
      } catch (e) {
        if (opts.signal.aborted) return cancelled;
        if (state.stop?.reason === 'deadline') return limitTime(have);
        if (state.stop) return { kind: 'retryable', reason: `${state.stop.message} (${where})` };
        if (e instanceof ProxyRefusal && e.status !== 429 && e.status < 500)
          return { kind: 'fatal', status: e.status, reason: e.status === 407 ? `${e.message}: ${proxyAuthHint(proxy)}` : e.message };
        return { kind: 'retryable', reason: `${networkErrorText(e as Error, opts.secret)} (${where})` };
      }
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        const next = new URL(res.headers.location, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') return { kind: 'fatal', status, reason: `${where} redirects to a ${next.protocol} URL` };
        current = next;
        continue;
      }
      if (status === 416) {
        // Range not satisfiable: the part file may already hold the whole (same) file, else it is bogus. Whole and
        // same only when the server says so with the validator the part came with: a server that ignores If-Range
        // answers 416 for a changed file of the same length too.
        res.resume();
        const cr = /^bytes \*\/(\d+)$/.exec(String(res.headers['content-range'] ?? '').trim());
        const why = !(cr && meta && Number(cr[1]) === have && meta.total === have) ? 'the server refused the range (HTTP 416)' : sameValidator(meta, res.headers);
        if (why === null) return { kind: 'complete', bytes: have, kept: true };
        opts.log(`cannot resume ${opts.label} from byte ${have}: ${why}; restarting from byte 0`);
        await restart(have);
        continue;
      }
      if (status === 401 || status === 403) {
        res.resume();
        return { kind: 'fatal', status, reason: `HTTP ${status} ${res.statusMessage ?? ''} for ${where}`.trim() };
      }
      if (status === 407) {
        res.resume();
        return { kind: 'fatal', status, reason: `HTTP 407 from the proxy for ${where}: ${proxyAuthHint(proxy)}` };
      }
      if (status === 404 || status === 410) {
        res.resume();
        return { kind: 'fatal', status, reason: `HTTP ${status}: ${where} does not exist` };
      }
      if (status === 429 || status >= 500) {
        res.resume();
        const after = parseRetryAfter(res.headers['retry-after'], res.headers.date);
        return { kind: 'retryable', reason: `HTTP ${status} from ${where}`, ...(after !== null ? { retryAfterMs: after } : {}) };
      }
      if (status !== 200 && status !== 206) {
        res.resume();
        return { kind: 'fatal', status, reason: `unexpected HTTP ${status} for ${where}` };
      }
      let append = false;
      let total: number | null;
      if (status === 206) {
        const why = meta ? partialMismatch(meta, have, res.headers) : 'it answers a request that asked for the whole file';
        if (why) {
          res.destroy();
          opts.log(`cannot resume ${opts.label} from byte ${have}: the server's partial response ${why}; restarting from byte 0`);
          if (have > 0) await restart(have);
          continue;
        }
        append = true;
        total = meta!.total;
      } else {
        // 200: the whole file — first request, or the server ignored Range / If-Range found the file changed.
        if (have > 0) {
          opts.log(`cannot resume ${opts.label} from byte ${have}: the server sent the whole file (it changed since, or ignores Range); restarting from byte 0`);
          opts.onData(-have);
          have = 0;
        }
        const len = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : NaN;
        total = Number.isSafeInteger(len) && len >= 0 ? len : null;
      }
      if (total !== null && total > opts.maxBytes) {
        res.destroy();
        await rm(part.part, { force: true });
        await rm(part.meta, { force: true });
        opts.onData(-have);
        return { kind: 'fatal', reason: 'size limit', limit: { field: 'max_bytes', announced: total } };
      }
      if (total !== null) opts.onTotal?.(total);
      // Reading starts before anything else is awaited: a response that ends meanwhile must not be missed.
      const body = writeBody(res, part.part, append, opts.maxBytes - have, opts, state);
      const metaError = append ? null : await writePartMeta(part.meta, { source, ...validatorsOf(res.headers), total }).then(() => null, (e: Error) => e);
      if (metaError) res.destroy();
      const { written, error, diskError } = await body;
      if (metaError ?? diskError) return { kind: 'fatal', reason: `cannot write the partial download in ${dirname(part.part)} (${(metaError ?? diskError)!.message})` };
      if (opts.signal.aborted) return cancelled;
      const size = have + written;
      if (state.stop?.reason === 'max_bytes') {
        await rm(part.part, { force: true });
        await rm(part.meta, { force: true });
        opts.onData(-size);
        return { kind: 'fatal', reason: 'size limit', limit: { field: 'max_bytes' } };
      }
      if (state.stop?.reason === 'deadline') return limitTime(size);
      if (error) return { kind: 'retryable', reason: `${state.stop?.message ?? networkErrorText(error, opts.secret)} after ${size} bytes (${where})` };
      if (total !== null && size < total) return { kind: 'retryable', reason: `connection closed at byte ${size} of ${total} (${where})` };
      return { kind: 'complete', bytes: size };
    } finally {
      clearTimeout(deadlineTimer);
    }
  }
  return { kind: 'fatal', reason: `too many redirects or restarts for ${opts.label}` };
}

function proxyAuthHint(proxy: URL | null): string {
  return proxy
    ? `the proxy ${proxyLabel(proxy)} wants credentials; put them in the proxy variable's URL (http://user:password@host:port)`
    : 'the server asked for proxy credentials, but no proxy is configured';
}

