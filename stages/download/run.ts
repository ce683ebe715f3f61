import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { StageError, type StageContext } from '../../engine/stage-api.js';
import { tempName } from '../lib/atomic-write.js';
import { resolveAuth, type AuthSpec, type ResolvedAuth } from './auth.js';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import { globToRegExp, parseChecksums, unsafeRelativePath } from './checksums.js';
import { ArchiveError, archiveKind, contentMismatch, extractArchive } from './extract.js';
import { attemptDownload, redactUrl, type LimitHit } from './http.js';
import { proxyConfig, ProxyConfigError, proxyLabel, type ProxyConfig } from './proxy.js';
import { partFileFor, partSize, readPartMeta, removePart, removeParts, type PartFile } from './resume.js';

export interface DownloadWith {
  out: string;
  url?: string;
  urls?: string[];
  files?: Array<{ path: string; url?: string | null; sha256?: string | null; note?: string | null }>;
  manifest?: string;
  base_url?: string;
  base_url_env?: string;
  include?: string[];
  sha256?: Record<string, string>;
  auth?: AuthSpec;
  mirror?: string;
  retries: number;
  backoff_ms: number;
  timeout_s: number;
  max_bytes: number;
  max_time_s: number;
  extract: boolean;
  max_extract_bytes: number;
  max_extract_ratio: number;
  max_extract_entries: number;
  concurrency: number;
}

/** A `Retry-After` longer than this is waited for only this long (then the attempt is made anyway). */
export const RETRY_AFTER_CAP_MS = 300_000;

interface FileTask {
  /** null: no public URL; the file must come from the mirror (`note` says where to get it). */
  url: string | null;
  /** How the URL appears in messages (redacted, or `$VAR/path` when it derives from a secret base URL). */
  display: string;
  rel: string;
  sha256?: string;
  note?: string;
  /** The URL derives from base_url_env: messages must not reveal its host, path or query. */
  secret: boolean;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const fmtSize = (b: number): string => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);

/**
 * Every piece of a secret URL that could identify it (the whole URL, host, path, query values), replaced in any
 * text by what may be shown instead. The kind never builds a message from these; this is the second line.
 */
export function secretScrubber(secretUrl: string, label: string): (text: string) => string {
  const u = new URL(secretUrl);
  const decoded = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const pieces: Array<[string, string]> = [
    [u.href, label],
    [`${u.origin}${u.pathname}`, label],
    [u.host, `<the host of ${label}>`],
    [u.hostname, `<the host of ${label}>`],
    [u.username, '…'],
    [u.password, '…'],
    [decoded(u.username), '…'],
    [decoded(u.password), '…'],
    [decoded(u.pathname).replace(/\/+$/, ''), `<the path of ${label}>`],
    [u.pathname.replace(/\/+$/, ''), `<the path of ${label}>`],
    [u.search.slice(1), '…'],
    ...[...u.searchParams.values()].map((v): [string, string] => [v, '…']),
    ...[...u.searchParams.values()].map((v): [string, string] => [encodeURIComponent(v), '…']),
  ];
  const todo = pieces.filter(([p]) => p.replace(/[/.]/g, '').length >= 3).sort((a, b) => b[0].length - a[0].length);
  return (text) => todo.reduce((t, [p, r]) => t.split(p).join(r), text);
}

/** Progress over all files: bytes, known total, rate; throttled so the UI is not flooded. */
class Meter {
  bytes = 0;
  total = 0;
  filesDone = 0;
  private last = 0;
  private readonly start = Date.now();
  constructor(
    private readonly ctx: StageContext<DownloadWith>,
    readonly files: number,
  ) {}
  add(n: number): void {
    this.bytes += n;
    this.emit(false);
  }
  emit(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.last < 200) return;
    this.last = now;
    const secs = Math.max(0.001, (now - this.start) / 1000);
    const rate = this.bytes / secs;
    this.ctx.progress({
      done: this.bytes,
      total: this.total > 0 ? Math.max(this.total, this.bytes) : undefined,
      unit: 'bytes',
      message: `${this.filesDone}/${this.files} files, ${fmtSize(this.bytes)} at ${fmtSize(rate)}/s`,
    });
  }
}

/** Join a relative path onto a base URL, keeping the base's query string (signed URLs carry their token there). */
function fileUrl(base: string, rel: string): string {
  const b = new URL(base);
  const u = new URL(rel.split('/').map(encodeURIComponent).join('/'), new URL(b.pathname.endsWith('/') ? b.pathname : `${b.pathname}/`, b.origin));
  u.search = b.search;
  return u.toString();
}

const isHttpUrl = (u: string): boolean => /^https?:\/\//i.test(u);

const POSITIVE_FIELDS = ['timeout_s', 'max_bytes', 'max_time_s', 'max_extract_bytes', 'max_extract_ratio', 'max_extract_entries'] as const;

export async function run(ctx: StageContext<DownloadWith>): Promise<void> {
  // A base URL from an environment variable is a secret (signed share links): messages show `$VAR/…` instead, and
  // everything this stage logs or throws passes through the scrubber as a second line of defence.
  const scrub = scrubberFor(ctx.with);
  try {
    await download(ctx, scrub);
  } catch (e) {
    if (e instanceof Error) {
      e.message = scrub(e.message);
      if (e.stack) e.stack = scrub(e.stack);
    }
    throw e;
  }
}

function scrubberFor(w: DownloadWith): (text: string) => string {
  const secret = w.base_url_env ? process.env[w.base_url_env] : undefined;
  if (!secret) return (text) => text;
  const label = `$${w.base_url_env}`;
  try {
    return secretScrubber(secret, label);
  } catch {
    return (text) => text.split(secret).join(label); // not a URL (refused below): its text is still never shown
  }
}

async function download(ctx: StageContext<DownloadWith>, scrub: (text: string) => string): Promise<void> {
  const w = ctx.with;
  const stage = ctx.stage;
  function fail(msg: string): never {
    throw new StageError(scrub(`stage ${stage}: ${msg}`));
  }
  const log = (msg: string): void => ctx.log(scrub(msg));
  const out = ctx.resolve(w.out);
  const urls = [...(w.url ? [w.url] : []), ...(w.urls ?? [])];
  if (!urls.length && !w.manifest && !w.files?.length) fail('with: give url, urls, files or manifest (a SHA256SUMS.txt URL).');
  let base: { url: string; label: string; secret: boolean } | null = null;
  if (w.base_url_env) {
    const v = process.env[w.base_url_env];
    if (!v) fail(`with.base_url_env names ${w.base_url_env}, which is not set: export the dataset's (signed) download URL in it.`);
    base = { url: v, label: `$${w.base_url_env}`, secret: true };
  } else if (w.base_url) base = { url: w.base_url, label: redactUrl(w.base_url), secret: false };
  for (const u of [...urls, ...(base ? [base.url] : [])]) {
    let p: URL | null = null;
    try {
      p = new URL(u);
    } catch {
      /* reported below */
    }
    if (!p || (p.protocol !== 'http:' && p.protocol !== 'https:'))
      fail(`with: ${u === base?.url ? base.label : JSON.stringify(redactUrl(u))} is not an http(s) URL.`);
  }
  /** An absolute URL, or a path relative to the base URL. */
  const resolveRef = (ref: string, field: string): { url: string; display: string; secret: boolean } => {
    if (isHttpUrl(ref)) return { url: ref, display: redactUrl(ref), secret: false };
    if (!base) fail(`with.${field} ${JSON.stringify(ref)} is relative, but there is no base_url or base_url_env.`);
    return { url: fileUrl(base.url, ref), display: `${base.label.replace(/\/$/, '')}/${ref}`, secret: base.secret };
  };
  if (!Number.isInteger(w.retries) || w.retries < 0) fail(`with.retries must be a non-negative integer (got ${w.retries}).`);
  for (const f of POSITIVE_FIELDS)
    if (typeof w[f] !== 'number' || !(w[f] > 0)) fail(`with.${f} must be a positive number (got ${JSON.stringify(w[f])}).`);
  if (w.auth !== undefined && w.auth !== null) {
    const known = ['user_env', 'password_env', 'netrc'];
    for (const [k, v] of Object.entries(w.auth)) {
      if (!known.includes(k)) fail(`with.auth has no field ${k} (fields: ${known.join(', ')}; values are environment variable NAMES).`);
      if (k !== 'netrc' && (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)))
        fail(`with.auth.${k} must name an environment variable (e.g. PHYSIONET_USER), not hold a value.`);
    }
  }
  let proxies: ProxyConfig;
  try {
    proxies = proxyConfig(process.env);
  } catch (e) {
    if (e instanceof ProxyConfigError) fail(`${e.message}.`);
    throw e;
  }
  const via = [
    proxies.http ? `http:// URLs through ${proxyLabel(proxies.http)} ($${proxies.httpVar})` : '',
    proxies.https ? `https:// URLs through ${proxyLabel(proxies.https)} ($${proxies.httpsVar})` : '',
  ].filter(Boolean);
  if (via.length) log(`proxies from the environment: ${via.join(', ')}${proxies.noProxy.length ? ', except hosts in NO_PROXY' : ''}`);
  const policy: BackoffPolicy = { retries: w.retries, baseMs: w.backoff_ms, capMs: 30_000 };
  const mirror = w.mirror ? (isAbsolute(w.mirror) ? w.mirror : ctx.resolve(w.mirror)) : null;
  const authByHost = new Map<string, ResolvedAuth>();
  const authFor = (url: string, secret: boolean): ResolvedAuth => {
    const host = new URL(url).hostname;
    let a = authByHost.get(host);
    if (!a) {
      const hostLabel = secret && base ? `<the host of ${base.label}>` : host;
      a = resolveAuth(w.auth, host, process.env, hostLabel);
      authByHost.set(host, a);
      if (a.header) log(`using credentials for ${hostLabel} from ${a.source}`);
    }
    return a;
  };
  let meter = new Meter(ctx, 1);
  const stats = { network: 0, mirror: 0, present: 0, kept: 0, extracted: 0 };

  /** The one-paragraph error for a bound the file ran into: the field, its value, and how to raise it. */
  const limitError = (task: FileTask, hit: LimitHit): string => {
    const bound = `with.max_bytes = ${w.max_bytes} (${fmtSize(w.max_bytes)})`;
    if (hit.field === 'max_bytes')
      return (
        `${task.display} (file ${task.rel}): ` +
        (hit.announced !== undefined ? `the server announced ${hit.announced} bytes, more than ${bound}` : `the body went on past ${bound} without ending`) +
        '; the partial file was deleted. If the file is meant to be this large, raise with.max_bytes.'
      );
    return (
      `${task.display} (file ${task.rel}) did not finish within with.max_time_s = ${w.max_time_s} s (${hit.bytes} bytes had arrived` +
      `${hit.bytes > 0 ? '; the partial file is kept, and the next run resumes it if the server proves the file unchanged' : ''}). ` +
      'For a large file on a slow link, raise with.max_time_s.'
    );
  };

  /** Refuse a file that is not what its name says (an HTML login page saved as .tar.gz); deletes it. */
  const checkContent = async (file: string, task: FileTask, from: string): Promise<void> => {
    const why = await contentMismatch(file, task.rel);
    if (!why) return;
    await rm(file, { force: true });
    fail(`${from}: ${why}. The file was not kept; check the URL (and credentials) in a browser.`);
  };

  /**
   * Put a finished download at `final`, as a second name of its part file: until the whole stage succeeds the part
   * stays, complete, so a run cancelled or failed later (the engine then deletes the outs) does not download this
   * file again — the next run's request for the bytes past its end gets 416 when the server proves it unchanged
   * (If-Range), and the part is placed again. Where no link can be made (`out` on another file system), a copy is.
   */
  const placeKeepingPart = async (part: PartFile, task: FileTask, final: string): Promise<void> => {
    // Its sha256 matched (or none is declared); a file that is not what its name says goes, part and record.
    await checkContent(part.part, task, task.display).catch(async (e: unknown) => {
      await removePart(part);
      throw e;
    });
    await rm(final, { force: true });
    try {
      await link(part.part, final);
    } catch {
      const tmp = tempName(final, 'copy');
      try {
        await copyFile(part.part, tmp);
        await rename(tmp, final);
      } finally {
        await rm(tmp, { force: true });
      }
    }
  };
  /** Every destination this run placed: their parts go once the stage has succeeded. */
  const placed: string[] = [];

  /** Place one file at out/rel: present and valid → keep; mirror → copy; else HTTP with resume and retries. */
  async function fetchFile(task: FileTask): Promise<void> {
    const final = join(out, task.rel);
    placed.push(final);
    await mkdir(dirname(final), { recursive: true });
    const verify = async (file: string): Promise<string | null> => {
      if (!task.sha256) return null;
      const actual = await sha256File(file);
      return actual === task.sha256 ? null : actual;
    };
    if (existsSync(final) && (await verify(final)) === null) {
      stats.present++;
      meter.add((await stat(final)).size);
      return;
    }
    if (mirror && existsSync(join(mirror, task.rel))) {
      const tmp = tempName(final, 'mirror');
      try {
        await copyFile(join(mirror, task.rel), tmp);
        const bad = await verify(tmp);
        if (bad === null) {
          await checkContent(tmp, task, `the mirror copy ${join(mirror, task.rel)}`);
          await rename(tmp, final);
          stats.mirror++;
          meter.add((await stat(final)).size);
          return;
        }
        log(`mirror copy of ${task.rel} has sha256 ${bad}, expected ${task.sha256}; downloading instead`);
      } finally {
        await rm(tmp, { force: true }); // a copy that failed its checks, or a full disk mid-copy
      }
    }
    if (task.url === null)
      fail(
        `${task.rel} has no public download URL${mirror ? ` and is not in the mirror ${mirror}` : ' and no with.mirror is set'}` +
          `${task.note ? `: ${task.note}` : ''}.`,
      );
    const url = task.url;
    const auth = authFor(url, task.secret);
    // The part file lives under .pipe/tmp/download (the engine deletes a failed or cancelled stage's outs).
    let part: Awaited<ReturnType<typeof partFileFor>>;
    try {
      part = await partFileFor(ctx.workspace, final);
    } catch (e) {
      fail(`cannot keep a partial download of ${task.rel}: ${(e as Error).message}.`);
    }
    // Bytes already in a part file from an earlier run count as done (taken back if the resume is refused).
    const have = await partSize(part);
    if (have > 0) {
      meter.add(have);
      // A file an earlier run finished before it was cancelled or failed: with a declared sha256 the bytes vouch for
      // themselves (no server needed), or are dropped and fetched anew; without one the server is asked (below).
      if (task.sha256 && have === (await readPartMeta(part.meta))?.total) {
        const bad = await verify(part.part);
        if (bad === null) {
          await placeKeepingPart(part, task, final);
          stats.kept++;
          return;
        }
        log(`the copy of ${task.rel} an earlier run kept has sha256 ${bad}, expected ${task.sha256}; downloading it again`);
        meter.add(-have);
        await removePart(part);
      }
    }
    const deadline = Date.now() + w.max_time_s * 1000;
    let checksumFailures = 0;
    let fileTotal = 0;
    for (let attempt = 0; ; attempt++) {
      if (ctx.signal.aborted) fail('cancelled.');
      const outcome = await attemptDownload(url, part, {
        authorization: auth.header,
        idleTimeoutMs: w.timeout_s * 1000,
        deadline,
        maxBytes: w.max_bytes,
        signal: ctx.signal,
        label: task.display,
        secret: task.secret,
        proxies,
        log,
        onData: (n) => meter.add(n),
        onTotal: (n) => {
          // One total per file, however many attempts announced it.
          meter.total += n - fileTotal;
          fileTotal = n;
        },
      });
      if (outcome.kind === 'fatal') {
        if (outcome.cancelled) fail('cancelled.');
        if (outcome.limit) fail(limitError(task, outcome.limit));
        if (outcome.status === 401 || outcome.status === 403)
          fail(
            `${outcome.reason}: the server refused the credentials (${auth.source}). To authenticate, ${auth.hint}. ` +
              `Credentials are read at run time and never stored in the pipeline, lock file or logs.`,
          );
        fail(`${outcome.reason} (file ${task.rel}).`);
      }
      let reason: string;
      let delay = backoffDelay(policy, attempt);
      if (outcome.kind === 'complete') {
        const bad = await verify(part.part);
        if (bad === null) {
          await placeKeepingPart(part, task, final);
          if (outcome.kept) stats.kept++;
          else stats.network++;
          return;
        }
        meter.add(-(await stat(part.part)).size);
        await removePart(part);
        checksumFailures++;
        if (checksumFailures > 1 || attempt >= policy.retries)
          fail(
            `checksum mismatch for ${task.rel} from ${task.display}: expected sha256 ${task.sha256}, got ${bad} ` +
              `(downloaded ${checksumFailures} time(s); the file was deleted).`,
          );
        reason = `sha256 ${bad} does not match ${task.sha256}`;
      } else reason = outcome.reason;
      if (attempt >= policy.retries) fail(`gave up on ${task.display} after ${attempt + 1} attempt(s): ${reason}.`);
      let why = '';
      if (outcome.kind === 'retryable' && outcome.retryAfterMs !== undefined) {
        const asked = outcome.retryAfterMs;
        delay = Math.min(asked, RETRY_AFTER_CAP_MS);
        why = asked > RETRY_AFTER_CAP_MS ? `, the server's Retry-After of ${Math.round(asked / 1000)}s capped at ${RETRY_AFTER_CAP_MS / 1000}s` : ', as the server\'s Retry-After asks';
      }
      if (Date.now() + delay >= deadline)
        fail(
          `${task.display} (file ${task.rel}) did not finish within with.max_time_s = ${w.max_time_s} s: the last attempt failed (${reason}) and ` +
            `the next would start ${(delay / 1000).toFixed(1)}s later, past the limit. For a large file on a slow link, raise with.max_time_s.`,
        );
      log(`retrying ${task.rel} in ${(delay / 1000).toFixed(1)}s (attempt ${attempt + 2}/${policy.retries + 1}${why}): ${reason}`);
      await sleep(delay, ctx.signal).catch(() => fail('cancelled.'));
    }
  }

  async function runAll(tasks: FileTask[]): Promise<void> {
    meter = new Meter(ctx, tasks.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tasks.length) {
        const t = tasks[next++]!;
        await fetchFile(t);
        meter.filesDone++;
        meter.emit(true);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(w.concurrency, tasks.length)) }, worker));
  }

  await mkdir(out, { recursive: true });
  const tasks: FileTask[] = [];
  /**
   * The file name a URL's last path segment gives: decoded, so it must still be one plain name (`..%2F..%2Fx` decodes
   * to a path that would leave `out`).
   */
  const nameFromUrl = (u: string, field: string, display: string): string => {
    const raw = basename(new URL(u).pathname);
    let rel: string;
    try {
      rel = decodeURIComponent(raw);
    } catch {
      fail(`${field} ${display}: its file name ${JSON.stringify(raw)} is not valid percent-encoding.`);
    }
    if (rel === '.' || rel === '..' || /[/\\\0]/.test(rel))
      fail(`${field} ${display}: its file name decodes to ${JSON.stringify(rel)}, which is not a plain file name; refusing to write it (it would leave with.out).`);
    return rel;
  };
  for (const u of urls) {
    const rel = nameFromUrl(u, 'with.urls', redactUrl(u)) || 'index.html';
    tasks.push({ url: u, display: redactUrl(u), rel, sha256: w.sha256?.[rel]?.toLowerCase(), secret: false });
  }
  for (const [i, f] of (w.files ?? []).entries()) {
    if (!f || typeof f.path !== 'string' || f.path === '') fail(`with.files[${i}] needs a path (where the file goes under out).`);
    const ref = f.url ? resolveRef(f.url, `files[${i}].url`) : null;
    tasks.push({
      url: ref?.url ?? null,
      display: ref?.display ?? f.path,
      rel: f.path,
      sha256: f.sha256?.toLowerCase() ?? w.sha256?.[f.path]?.toLowerCase(),
      note: f.note ?? undefined,
      secret: ref?.secret ?? false,
    });
  }
  if (w.manifest) {
    // The manifest itself is always fetched fresh (mirror first): it is what tells us what the dataset is.
    const m = resolveRef(w.manifest, 'manifest');
    const rel = nameFromUrl(m.url, 'with.manifest', m.display);
    if (rel === '') fail(`with.manifest ${m.display} names a folder, not a checksum file.`);
    await rm(join(out, rel), { force: true });
    await runAll([{ url: m.url, display: m.display, rel, secret: m.secret }]);
    Object.assign(stats, { network: 0, mirror: 0, present: 0, kept: 0 }); // the record counts data files only
    const parsed = parseChecksums(await readFile(join(out, rel), 'utf8'), m.display);
    if (!parsed.ok) fail(`the checksum manifest is malformed: ${parsed.error}.`);
    const entryBase = base ?? { url: new URL('.', m.url).toString(), label: new URL('.', redactUrl(m.url).replace(/\?…$/, '')).toString(), secret: false };
    const include = (w.include ?? []).map(globToRegExp);
    const entries = parsed.value.filter((e) => e.path !== rel && (!include.length || include.some((r) => r.test(e.path))));
    if (!entries.length) fail(`no entry of ${m.display} matches with.include ${JSON.stringify(w.include ?? [])}.`);
    for (const e of entries)
      tasks.push({
        url: fileUrl(entryBase.url, e.path),
        display: `${entryBase.label.replace(/\/$/, '')}/${e.path}`,
        rel: e.path,
        sha256: e.sha256,
        secret: entryBase.secret,
      });
    log(`${entries.length} of ${parsed.value.length} manifest entries selected`);
  }
  for (const t of tasks) {
    const why = unsafeRelativePath(t.rel);
    if (why) fail(`refusing to write ${JSON.stringify(t.rel)} (${why}).`);
  }
  await runAll(tasks);

  if (w.extract) {
    for (const t of tasks) {
      if (!archiveKind(t.rel)) continue;
      if (ctx.signal.aborted) fail('cancelled.');
      try {
        const names = await extractArchive(join(out, t.rel), dirname(join(out, t.rel)), t.rel, {
          maxBytes: w.max_extract_bytes,
          maxRatio: w.max_extract_ratio,
          maxEntries: w.max_extract_entries,
        });
        stats.extracted += names.length;
        log(`extracted ${names.length} file(s) from ${t.rel}`);
      } catch (e) {
        if (e instanceof ArchiveError) fail(e.message + '.');
        throw e;
      }
    }
  }
  // Every file is in place: the parts kept for a rerun after a failure have served their purpose.
  await removeParts(ctx.workspace, placed);
  meter.emit(true);
  ctx.record({ download: { files: tasks.length } });
  // How the files got here (downloaded, resumed, from the mirror, already present) varies run to run: execution facts.
  ctx.recordExecution({ download: { bytes: meter.bytes, ...stats } });
  log(
    `${tasks.length} file(s) in ${w.out}: ${stats.network} downloaded, ${stats.mirror} from the mirror, ${stats.present} already present` +
      (stats.kept > 0 ? `, ${stats.kept} finished by an earlier run that did not complete` : '') +
      (w.extract ? `, ${stats.extracted} extracted` : ''),
  );
}
