import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { StageError, type StageContext } from '../../engine/stage-api.js';
import { resolveAuth, type AuthSpec, type ResolvedAuth } from './auth.js';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import { globToRegExp, parseChecksums, unsafeRelativePath } from './checksums.js';
import { ArchiveError, archiveKind, extractArchive } from './extract.js';
import { attemptDownload, clearValidator, redactUrl } from './http.js';

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
  extract: boolean;
  concurrency: number;
}

interface FileTask {
  /** null: no public URL; the file must come from the mirror (`note` says where to get it). */
  url: string | null;
  /** How the URL appears in messages (redacted, or `$VAR/path` when it derives from a secret base URL). */
  display: string;
  rel: string;
  sha256?: string;
  note?: string;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
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
    const fmt = (b: number): string => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);
    this.ctx.progress({
      done: this.bytes,
      total: this.total > 0 ? Math.max(this.total, this.bytes) : undefined,
      unit: 'bytes',
      message: `${this.filesDone}/${this.files} files, ${fmt(this.bytes)} at ${fmt(rate)}/s`,
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

export async function run(ctx: StageContext<DownloadWith>): Promise<void> {
  const w = ctx.with;
  const stage = ctx.stage;
  function fail(msg: string): never {
    throw new StageError(`stage ${stage}: ${msg}`);
  }
  const out = ctx.resolve(w.out);
  const urls = [...(w.url ? [w.url] : []), ...(w.urls ?? [])];
  if (!urls.length && !w.manifest && !w.files?.length) fail('with: give url, urls, files or manifest (a SHA256SUMS.txt URL).');
  // A base URL from an environment variable is a secret (signed share links): messages show `$VAR/…` instead.
  let base: { url: string; label: string } | null = null;
  if (w.base_url_env) {
    const v = process.env[w.base_url_env];
    if (!v) fail(`with.base_url_env names ${w.base_url_env}, which is not set: export the dataset's (signed) download URL in it.`);
    base = { url: v, label: `$${w.base_url_env}` };
  } else if (w.base_url) base = { url: w.base_url, label: redactUrl(w.base_url) };
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
  const resolveRef = (ref: string, field: string): { url: string; display: string } => {
    if (isHttpUrl(ref)) return { url: ref, display: redactUrl(ref) };
    if (!base) fail(`with.${field} ${JSON.stringify(ref)} is relative, but there is no base_url or base_url_env.`);
    return { url: fileUrl(base.url, ref), display: `${base.label.replace(/\/$/, '')}/${ref}` };
  };
  if (!Number.isInteger(w.retries) || w.retries < 0) fail(`with.retries must be a non-negative integer (got ${w.retries}).`);
  if (w.auth !== undefined && w.auth !== null) {
    const known = ['user_env', 'password_env', 'netrc'];
    for (const [k, v] of Object.entries(w.auth)) {
      if (!known.includes(k)) fail(`with.auth has no field ${k} (fields: ${known.join(', ')}; values are environment variable NAMES).`);
      if (k !== 'netrc' && (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)))
        fail(`with.auth.${k} must name an environment variable (e.g. PHYSIONET_USER), not hold a value.`);
    }
  }
  const policy: BackoffPolicy = { retries: w.retries, baseMs: w.backoff_ms, capMs: 30_000 };
  const mirror = w.mirror ? (isAbsolute(w.mirror) ? w.mirror : ctx.resolve(w.mirror)) : null;
  const authByHost = new Map<string, ResolvedAuth>();
  const authFor = (url: string): ResolvedAuth => {
    const host = new URL(url).hostname;
    let a = authByHost.get(host);
    if (!a) {
      a = resolveAuth(w.auth, host);
      authByHost.set(host, a);
      if (a.header) ctx.log(`using credentials for ${host} from ${a.source}`);
    }
    return a;
  };
  let meter = new Meter(ctx, 1);
  const stats = { network: 0, mirror: 0, present: 0, extracted: 0 };

  /** Place one file at out/rel: present and valid → keep; mirror → copy; else HTTP with resume and retries. */
  async function fetchFile(task: FileTask): Promise<void> {
    const final = join(out, task.rel);
    const part = `${final}.part`;
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
      const tmp = `${final}.mirror-${process.pid}`;
      await copyFile(join(mirror, task.rel), tmp);
      const bad = await verify(tmp);
      if (bad === null) {
        await rename(tmp, final);
        stats.mirror++;
        meter.add((await stat(final)).size);
        return;
      }
      await rm(tmp, { force: true });
      ctx.log(`mirror copy of ${task.rel} has sha256 ${bad}, expected ${task.sha256}; downloading instead`);
    }
    if (task.url === null)
      fail(
        `${task.rel} has no public download URL${mirror ? ` and is not in the mirror ${mirror}` : ' and no with.mirror is set'}` +
          `${task.note ? `: ${task.note}` : ''}.`,
      );
    const url = task.url;
    const auth = authFor(url);
    // Bytes already in a part file from an earlier run count as done (later attempts in this run add live).
    if (existsSync(part)) meter.add((await stat(part)).size);
    let checksumFailures = 0;
    let fileTotal = 0;
    for (let attempt = 0; ; attempt++) {
      if (ctx.signal.aborted) fail('cancelled.');
      const outcome = await attemptDownload(url, part, {
        authorization: auth.header,
        idleTimeoutMs: w.timeout_s * 1000,
        signal: ctx.signal,
        onData: (n) => meter.add(n),
        onTotal: (n) => {
          // One total per file, however many attempts announced it.
          meter.total += n - fileTotal;
          fileTotal = n;
        },
      });
      if (outcome.kind === 'fatal') {
        if (outcome.reason === 'cancelled') fail('cancelled.');
        if (outcome.status === 401 || outcome.status === 403)
          fail(
            `${outcome.reason}: the server refused the credentials (${auth.source}). To authenticate, ${auth.hint}. ` +
              `Credentials are read at run time and never stored in the pipeline, lock file or logs.`,
          );
        fail(`${task.display === redactUrl(task.url) ? outcome.reason : outcome.reason.replace(redactUrl(task.url), task.display)} (file ${task.rel}).`);
      }
      let reason: string;
      if (outcome.kind === 'complete') {
        const bad = await verify(part);
        if (bad === null) {
          await rename(part, final);
          await clearValidator(part);
          stats.network++;
          return;
        }
        meter.add(-(await stat(part)).size);
        await rm(part, { force: true });
        await clearValidator(part);
        checksumFailures++;
        if (checksumFailures > 1 || attempt >= policy.retries)
          fail(
            `checksum mismatch for ${task.rel} from ${task.display}: expected sha256 ${task.sha256}, got ${bad} ` +
              `(downloaded ${checksumFailures} time(s); the file was deleted).`,
          );
        reason = `sha256 ${bad} does not match ${task.sha256}`;
      } else reason = outcome.reason;
      if (attempt >= policy.retries) fail(`gave up on ${task.display} after ${attempt + 1} attempt(s): ${reason.replace(redactUrl(url), task.display)}.`);
      const delay = outcome.kind === 'retryable' && outcome.retryAfterMs !== undefined ? outcome.retryAfterMs : backoffDelay(policy, attempt);
      ctx.log(`retrying ${task.rel} in ${(delay / 1000).toFixed(1)}s (attempt ${attempt + 2}/${policy.retries + 1}): ${reason.replace(redactUrl(url), task.display)}`);
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
  for (const u of urls) {
    const rel = decodeURIComponent(basename(new URL(u).pathname)) || 'index.html';
    tasks.push({ url: u, display: redactUrl(u), rel, sha256: w.sha256?.[rel]?.toLowerCase() });
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
    });
  }
  if (w.manifest) {
    // The manifest itself is always fetched fresh (mirror first): it is what tells us what the dataset is.
    const m = resolveRef(w.manifest, 'manifest');
    const rel = decodeURIComponent(basename(new URL(m.url).pathname));
    await rm(join(out, rel), { force: true });
    await runAll([{ url: m.url, display: m.display, rel }]);
    Object.assign(stats, { network: 0, mirror: 0, present: 0 }); // the record counts data files only
    const parsed = parseChecksums(await readFile(join(out, rel), 'utf8'), m.display);
    if (!parsed.ok) fail(`the checksum manifest is malformed: ${parsed.error}.`);
    const entryBase = base ?? { url: new URL('.', m.url).toString(), label: new URL('.', redactUrl(m.url).replace(/\?…$/, '')).toString() };
    const include = (w.include ?? []).map(globToRegExp);
    const entries = parsed.value.filter((e) => e.path !== rel && (!include.length || include.some((r) => r.test(e.path))));
    if (!entries.length) fail(`no entry of ${m.display} matches with.include ${JSON.stringify(w.include ?? [])}.`);
    for (const e of entries)
      tasks.push({ url: fileUrl(entryBase.url, e.path), display: `${entryBase.label.replace(/\/$/, '')}/${e.path}`, rel: e.path, sha256: e.sha256 });
    ctx.log(`${entries.length} of ${parsed.value.length} manifest entries selected`);
  }
  for (const t of tasks) {
    const why = unsafeRelativePath(t.rel);
    if (why) fail(`refusing to write ${JSON.stringify(t.rel)} (${why}).`);
  }
  await runAll(tasks);

  if (w.extract) {
    for (const t of tasks) {
      if (!archiveKind(t.rel)) continue;
      try {
        const names = await extractArchive(join(out, t.rel), dirname(join(out, t.rel)), t.rel);
        stats.extracted += names.length;
        ctx.log(`extracted ${names.length} file(s) from ${t.rel}`);
      } catch (e) {
        if (e instanceof ArchiveError) fail(e.message + '.');
        throw e;
      }
    }
  }
  meter.emit(true);
  ctx.record({ download: { files: tasks.length, bytes: meter.bytes, ...stats } });
  ctx.log(
    `${tasks.length} file(s) in ${w.out}: ${stats.network} downloaded, ${stats.mirror} from the mirror, ${stats.present} already present` +
      (w.extract ? `, ${stats.extracted} extracted` : ''),
  );
}
