/**
 * One HTTP(S) download attempt into a `.part` file, resuming with `Range` when the part file has bytes.
 *
 * Outcomes instead of exceptions: `complete`, `retryable` (network errors, premature close, 5xx/429, idle timeout)
 * or `fatal` (401/403/404…). Only redacted URLs ever appear in reasons; the Authorization header is never logged.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

export type AttemptOutcome =
  | { kind: 'complete'; bytes: number }
  | { kind: 'retryable'; reason: string; retryAfterMs?: number }
  | { kind: 'fatal'; status?: number; reason: string };

export interface AttemptOptions {
  /** Value of the Authorization header (sent only to the original origin, never after a cross-origin redirect). */
  authorization?: string;
  idleTimeoutMs: number;
  signal: AbortSignal;
  /** Called with each chunk's size, and with the expected total once the response says it. */
  onData(bytes: number): void;
  onTotal?(bytes: number): void;
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

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

function request(url: URL, headers: Record<string, string>, opts: AttemptOptions, state: { idle: string | null }): Promise<IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { headers, signal: opts.signal }, resolve);
    req.setTimeout(opts.idleTimeoutMs, () => {
      state.idle = `no data for ${opts.idleTimeoutMs / 1000}s`;
      req.destroy(new Error(state.idle));
    });
    req.on('error', reject);
  });
}

/** Parse `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`). */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | null } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((v ?? '').trim());
  if (!m) return null;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
}

function retryAfter(res: IncomingMessage): number | undefined {
  const v = res.headers['retry-after'];
  if (!v) return undefined;
  const s = Number(v);
  return Number.isFinite(s) ? Math.min(60_000, s * 1000) : undefined;
}

/** Write the response body to the part file (append or overwrite); resolves once the file is closed. */
function writeBody(res: IncomingMessage, part: string, append: boolean, opts: AttemptOptions): Promise<{ written: number; error?: Error }> {
  return new Promise((resolve) => {
    const ws: WriteStream = createWriteStream(part, { flags: append ? 'a' : 'w' });
    let written = 0;
    let error: Error | undefined;
    const fail = (e: Error): void => {
      error ??= e;
      res.unpipe(ws);
      ws.end();
    };
    res.on('data', (chunk: Buffer) => {
      written += chunk.length;
      opts.onData(chunk.length);
    });
    res.on('aborted', () => fail(new Error('connection closed mid-file')));
    res.on('error', (e) => fail(e));
    ws.on('error', (e) => {
      error ??= e;
      res.destroy();
    });
    ws.on('close', () => resolve({ written, error }));
    res.pipe(ws);
  });
}

/** Strong ETag, else Last-Modified, of the response a part file was started from (kept in `<part>.meta`). */
async function writeValidator(part: string, res: IncomingMessage): Promise<void> {
  const etag = res.headers.etag;
  const validator = etag && !etag.startsWith('W/') ? etag : res.headers['last-modified'];
  if (validator) await writeFile(`${part}.meta`, JSON.stringify({ validator }));
  else await rm(`${part}.meta`, { force: true });
}

async function readValidator(part: string): Promise<string | undefined> {
  try {
    const v = (JSON.parse(await readFile(`${part}.meta`, 'utf8')) as { validator?: unknown }).validator;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Remove a finished (or abandoned) part file's validator. */
export async function clearValidator(part: string): Promise<void> {
  await rm(`${part}.meta`, { force: true });
}

export async function attemptDownload(url: string, part: string, opts: AttemptOptions): Promise<AttemptOutcome> {
  let current = new URL(url);
  const origin = current.origin;
  for (let hop = 0; hop < 10; hop++) {
    const have = await sizeOf(part);
    const headers: Record<string, string> = { 'user-agent': opts.userAgent ?? 'pipe-download/1', 'accept-encoding': 'identity' };
    if (opts.authorization && current.origin === origin) headers['authorization'] = opts.authorization;
    if (have > 0) {
      headers['range'] = `bytes=${have}-`;
      // If-Range: resume only if the remote file is still the one the part file came from; else the server
      // answers 200 with the new file and the part file restarts (no mixing of two versions).
      const validator = await readValidator(part);
      if (validator) headers['if-range'] = validator;
    }
    let res: IncomingMessage;
    const state: { idle: string | null } = { idle: null };
    try {
      res = await request(current, headers, opts, state);
    } catch (e) {
      if (opts.signal.aborted) return { kind: 'fatal', reason: 'cancelled' };
      return { kind: 'retryable', reason: `${(e as Error).message} (${redactUrl(current.href)})` };
    }
    const status = res.statusCode ?? 0;
    const where = redactUrl(current.href);
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current);
      continue;
    }
    if (status === 416) {
      // Range not satisfiable: either we already have the whole file, or the part file is bogus.
      res.resume();
      const cr = /\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
      if (cr && Number(cr[1]) === have) return { kind: 'complete', bytes: have };
      await truncate(part, 0).catch(() => undefined);
      opts.onData(-have);
      return { kind: 'retryable', reason: `server refused the resume range at byte ${have} (${where}); restarting` };
    }
    if (status === 401 || status === 403) {
      res.resume();
      return { kind: 'fatal', status, reason: `HTTP ${status} ${res.statusMessage ?? ''} for ${where}`.trim() };
    }
    if (status === 404 || status === 410) {
      res.resume();
      return { kind: 'fatal', status, reason: `HTTP ${status}: ${where} does not exist` };
    }
    if (status === 429 || status >= 500) {
      res.resume();
      return { kind: 'retryable', reason: `HTTP ${status} from ${where}`, retryAfterMs: retryAfter(res) };
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      return { kind: 'fatal', status, reason: `unexpected HTTP ${status} for ${where}` };
    }
    let append = false;
    let expectedEnd: number | null = null;
    if (status === 206) {
      const cr = parseContentRange(res.headers['content-range']);
      if (!cr || cr.start !== have) {
        // A partial response that does not continue our file cannot be appended: start over.
        res.destroy();
        await truncate(part, 0).catch(() => undefined);
        opts.onData(-have);
        return { kind: 'retryable', reason: `server sent range ${res.headers['content-range'] ?? '(none)'} for a resume at byte ${have} (${where}); restarting` };
      }
      append = true;
      expectedEnd = cr.total ?? cr.end + 1;
    } else {
      // 200 to a ranged request: the server ignored Range; the body is the whole file.
      const len = Number(res.headers['content-length']);
      expectedEnd = Number.isFinite(len) ? len : null;
    }
    if (expectedEnd !== null) opts.onTotal?.(expectedEnd);
    if (status === 200 && have > 0) opts.onData(-have);
    if (status === 200) await writeValidator(part, res);
    const { written, error } = await writeBody(res, part, append, opts);
    if (opts.signal.aborted) return { kind: 'fatal', reason: 'cancelled' };
    const size = (append ? have : 0) + written;
    if (error) return { kind: 'retryable', reason: `${state.idle ?? error.message} after ${size} bytes (${where})` };
    if (expectedEnd !== null && size < expectedEnd)
      return { kind: 'retryable', reason: `connection closed at byte ${size} of ${expectedEnd} (${where})` };
    return { kind: 'complete', bytes: size };
  }
  return { kind: 'fatal', reason: `too many redirects for ${redactUrl(url)}` };
}
