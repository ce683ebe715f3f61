import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { run, type DownloadWith } from '../../stages/download/run.js';
import { parseChecksums } from '../../stages/download/checksums.js';
import { lookupNetrc } from '../../stages/download/netrc.js';
import { partFileFor } from '../../stages/download/resume.js';
import { fakeContext } from '../support/context.js';
import { downloadSuite, downloadWith } from './fixture.js';
import { rawTar, rawZip, startServer } from './server.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const BIG = randomBytes(300_000);
const SMALL = Buffer.from('hello, radiographs\n');

const t = downloadSuite('download-', ['PIPE_TEST_USER', 'PIPE_TEST_PASSWORD', 'NETRC', 'PIPE_TEST_BASE']);
const w = (over: Partial<DownloadWith> = {}): DownloadWith => downloadWith({ ...over });
const out = (x: DownloadWith): string => join(t.dir, x.out);
/** Where the kind keeps the part file of out/rel (under .pipe/tmp/download, not in the out directory). */
const partOf = async (x: DownloadWith, rel: string) => partFileFor(t.dir, join(out(x), rel));

describe('download', () => {
  it('downloads, verifies sha256, reports bytes and rate, leaves no partial files', async () => {
    t.server = await startServer({ '/data/big.bin': { body: BIG }, '/data/small.txt': { body: SMALL } });
    const x = w({ urls: [`${t.server.url}/data/big.bin`, `${t.server.url}/data/small.txt`], sha256: { 'big.bin': sha(BIG) } });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(await readFile(join(out(x), 'big.bin'))).toEqual(BIG);
    expect(await readFile(join(out(x), 'small.txt'))).toEqual(SMALL);
    expect((await readdir(out(x))).sort()).toEqual(['big.bin', 'small.txt']);
    const last = ctx.progressUpdates.at(-1)!;
    expect(last).toMatchObject({ done: BIG.length + SMALL.length, total: BIG.length + SMALL.length, unit: 'bytes' });
    expect(last.message).toMatch(/^2\/2 files, 300\.0 kB at [\d.]+ [kMG]B\/s$/);
    expect(ctx.records).toEqual({ download: { files: 2 } });
    expect(ctx.execution).toMatchObject({ download: { network: 2 } });
    // A second run finds the verified files in place and does not touch the network.
    const before = t.server.requests.length;
    await run(fakeContext(t.dir, x));
    expect(t.server.requests.length).toBe(before);
  });

  it('resumes a dropped connection with Range and ends with the right hash', async () => {
    t.server = await startServer({ '/f.bin': { body: BIG, dropAfter: 100_000, dropTimes: 2, etag: '"f1"' } });
    const x = w({ url: `${t.server.url}/f.bin`, sha256: { 'f.bin': sha(BIG) } });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(sha(await readFile(join(out(x), 'f.bin')))).toBe(sha(BIG));
    const hits = t.server.hits('/f.bin');
    expect(hits.map((h) => h.range)).toEqual([undefined, 'bytes=100000-', 'bytes=200000-']);
    expect(hits.map((h) => h.ifRange)).toEqual([undefined, '"f1"', '"f1"']);
    expect(ctx.logs.filter((l) => l.startsWith('retrying f.bin'))).toHaveLength(2);
    expect(ctx.progressUpdates.at(-1)).toMatchObject({ done: BIG.length, total: BIG.length, unit: 'bytes' });
    const part = await partOf(x, 'f.bin');
    expect(existsSync(part.part) || existsSync(part.meta)).toBe(false);
    expect(await readdir(out(x))).toEqual(['f.bin']);
  });

  it('keeps the part file across runs (outside the out directory) and resumes from it', async () => {
    t.server = await startServer({ '/p.bin': { body: BIG, etag: '"p1"', dropAfter: 123_456 } });
    const x = w({ url: `${t.server.url}/p.bin`, sha256: { 'p.bin': sha(BIG) }, retries: 0 });
    await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gave up on .*p\.bin after 1 attempt/);
    const part = await partOf(x, 'p.bin');
    expect((await readFile(part.part)).length).toBe(123_456);
    expect(JSON.parse(await readFile(part.meta, 'utf8'))).toMatchObject({ etag: '"p1"', total: BIG.length });
    expect(await readdir(out(x))).toEqual([]); // nothing partial among the outputs
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(t.server.hits('/p.bin').map((h) => h.range)).toEqual([undefined, 'bytes=123456-']);
    expect(ctx.progressUpdates.at(-1)).toMatchObject({ done: BIG.length, total: BIG.length });
    expect(sha(await readFile(join(out(x), 'p.bin')))).toBe(sha(BIG));
    expect(existsSync(part.part)).toBe(false);
  });

  it('resumes only the same version of a file (If-Range with its ETag), restarting when it changed', async () => {
    const v1 = randomBytes(200_000);
    const v2 = randomBytes(180_000);
    t.server = await startServer({ '/v.bin': { body: v1, etag: '"v1"', dropAfter: 70_000 } });
    const x = w({ url: `${t.server.url}/v.bin`, retries: 0 });
    await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gave up/);
    const part = await partOf(x, 'v.bin');
    expect(existsSync(part.part)).toBe(true);
    // The file changes on the server before the next run: the resume must not splice v1's head onto v2's tail.
    t.server.routes.set('/v.bin', { body: v2, etag: '"v2"' });
    const ctx = fakeContext(t.dir, { ...x, retries: 1 });
    await run(ctx);
    expect(sha(await readFile(join(out(x), 'v.bin')))).toBe(sha(v2));
    const last = t.server.hits('/v.bin').at(-1)!;
    expect(last).toMatchObject({ range: 'bytes=70000-', ifRange: '"v1"' });
    expect(ctx.logs).toContain(
      `cannot resume ${t.server.url}/v.bin from byte 70000: the server sent the whole file (it changed since, or ignores Range); restarting from byte 0`,
    );
    expect(existsSync(part.meta)).toBe(false);
  });

  it('restarts cleanly when the server ignores Range', async () => {
    t.server = await startServer({ '/r.bin': { body: BIG, ignoreRange: true, dropAfter: 50_000, etag: '"r"' } });
    const x = w({ url: `${t.server.url}/r.bin`, sha256: { 'r.bin': sha(BIG) } });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(t.server.hits('/r.bin').map((h) => h.range)).toEqual([undefined, 'bytes=50000-']);
    expect(sha(await readFile(join(out(x), 'r.bin')))).toBe(sha(BIG));
    expect(ctx.logs.some((l) => l.includes('from byte 50000: the server sent the whole file'))).toBe(true);
  });

  it('retries 500s with backoff, then succeeds or gives up naming the URL', async () => {
    t.server = await startServer({ '/flaky': { body: SMALL, statuses: [500, 503] }, '/down': { body: SMALL, statuses: [500, 500, 500, 500, 500] } });
    const ok = w({ url: `${t.server.url}/flaky` });
    const ctx = fakeContext(t.dir, ok);
    await run(ctx);
    expect(await readFile(join(out(ok), 'flaky'))).toEqual(SMALL);
    expect(ctx.logs.filter((l) => /^retrying flaky in [\d.]+s \(attempt [23]\/4\): HTTP 50[03] from http:\/\/127\.0\.0\.1/.test(l))).toHaveLength(2);
    const bad = w({ url: `${t.server.url}/down`, retries: 2 });
    await expect(run(fakeContext(t.dir, bad, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: gave up on ${t.server.url}/down after 3 attempt(s): HTTP 500 from ${t.server.url}/down.`,
    );
    expect(t.server.hits('/down')).toHaveLength(3);
  });

  it('fails at once on 404, naming the URL', async () => {
    t.server = await startServer({});
    await expect(run(fakeContext(t.dir, w({ url: `${t.server.url}/missing.csv` }), { stage: 'dl' }))).rejects.toThrow(
      `stage dl: HTTP 404: ${t.server.url}/missing.csv does not exist (file missing.csv).`,
    );
    expect(t.server.requests).toHaveLength(1);
  });

  it('deletes a file with the wrong checksum, retries once, then names file, expected and actual', async () => {
    t.server = await startServer({ '/c.bin': { body: SMALL } });
    const x = w({ url: `${t.server.url}/c.bin`, sha256: { 'c.bin': 'a'.repeat(64) } });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: checksum mismatch for c.bin from ${t.server.url}/c.bin: expected sha256 ${'a'.repeat(64)}, got ${sha(SMALL)} (downloaded 2 time(s); the file was deleted).`,
    );
    expect(t.server.hits('/c.bin')).toHaveLength(2);
    expect(await readdir(out(x))).toEqual([]);
  });

  it('authenticates from environment variables without ever logging the secret; 401 names the variables and netrc', async () => {
    const secret = 'S3cr3t-p4ss!';
    t.server = await startServer({ '/priv.csv': { body: SMALL, auth: { user: 'alice', pass: secret } } });
    const x = w({ url: `${t.server.url}/priv.csv`, auth: { user_env: 'PIPE_TEST_USER', password_env: 'PIPE_TEST_PASSWORD' } });
    process.env['NETRC'] = join(t.dir, 'no-such-netrc');
    let error: Error | null = null;
    await run(fakeContext(t.dir, x, { stage: 'dl' })).catch((e: Error) => (error = e));
    expect(String(error)).toContain(
      `HTTP 401 Unauthorized for ${t.server.url}/priv.csv: the server refused the credentials (no credentials). To authenticate, set the environment variables PIPE_TEST_USER and PIPE_TEST_PASSWORD, or add "machine 127.0.0.1 login <user> password <password>" to ${join(t.dir, 'no-such-netrc')}.`,
    );
    process.env['PIPE_TEST_USER'] = 'alice';
    process.env['PIPE_TEST_PASSWORD'] = secret;
    const ctx = fakeContext(t.dir, { ...x, out: w().out });
    await run(ctx);
    expect(await readFile(join(t.dir, ctx.with.out, 'priv.csv'))).toEqual(SMALL);
    expect(ctx.logs).toContain('using credentials for 127.0.0.1 from environment variables PIPE_TEST_USER and PIPE_TEST_PASSWORD');
    const everything = JSON.stringify([ctx.logs, ctx.progressUpdates, ctx.records, ctx.with]);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(Buffer.from(`alice:${secret}`).toString('base64'));
    // Wrong password from the environment: still a clear 401 and no secret in the message.
    process.env['PIPE_TEST_PASSWORD'] = 'wrong-one';
    const e2 = await run(fakeContext(t.dir, { ...x, out: w().out }, { stage: 'dl' })).catch((e: Error) => e);
    expect(String(e2)).toContain('the server refused the credentials (environment variables PIPE_TEST_USER and PIPE_TEST_PASSWORD)');
    expect(String(e2)).not.toContain('wrong-one');
  });

  it('follows redirects, sending credentials only to the original origin', async () => {
    const other = await startServer({ '/cdn/file.bin': { body: SMALL } });
    try {
      t.server = await startServer({
        '/same': { body: SMALL, redirect: '/real/file.bin' },
        '/real/file.bin': { body: SMALL },
        '/away': { body: SMALL, redirect: `${other.url}/cdn/file.bin` },
      });
      process.env['PIPE_TEST_USER'] = 'dave';
      process.env['PIPE_TEST_PASSWORD'] = 'redirect-secret';
      const x = w({ urls: [`${t.server.url}/same`, `${t.server.url}/away`], auth: { user_env: 'PIPE_TEST_USER', password_env: 'PIPE_TEST_PASSWORD' } });
      await run(fakeContext(t.dir, x));
      expect(await readFile(join(out(x), 'same'))).toEqual(SMALL);
      expect(await readFile(join(out(x), 'away'))).toEqual(SMALL);
      expect(t.server.hits('/real/file.bin')[0]!.authorization).toMatch(/^Basic /);
      expect(other.hits('/cdn/file.bin')[0]!.authorization).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('refuses auth settings that are not environment variable names', async () => {
    await expect(run(fakeContext(t.dir, w({ url: 'http://127.0.0.1:9/x', auth: { user_env: 'alice', password_env: 'hunter2 !' } }), { stage: 'dl' }))).rejects.toThrow(
      'stage dl: with.auth.password_env must name an environment variable (e.g. PHYSIONET_USER), not hold a value.',
    );
    await expect(run(fakeContext(t.dir, w({ url: 'http://127.0.0.1:9/x', auth: { password: 'x' } as never }), { stage: 'dl' }))).rejects.toThrow(
      /with\.auth has no field password/,
    );
  });

  it('authenticates from a netrc file named by $NETRC', async () => {
    t.server = await startServer({ '/n.csv': { body: SMALL, auth: { user: 'bob', pass: 'netrc-secret' } } });
    const netrc = join(t.dir, 'test.netrc');
    await writeFile(netrc, 'machine example.org login x password y\n\nmachine 127.0.0.1\n  login bob\n  password netrc-secret\n');
    process.env['NETRC'] = netrc;
    const ctx = fakeContext(t.dir, w({ url: `${t.server.url}/n.csv`, auth: { user_env: 'PIPE_TEST_USER', password_env: 'PIPE_TEST_PASSWORD' } }));
    await run(ctx);
    expect(ctx.logs).toContain(`using credentials for 127.0.0.1 from netrc file ${netrc}`);
    expect(JSON.stringify([ctx.logs, ctx.records])).not.toContain('netrc-secret');
    expect(t.server.hits('/n.csv')[0]!.authorization).toBe(`Basic ${Buffer.from('bob:netrc-secret').toString('base64')}`);
  });

  it('survives a slow server and a stalled connection (idle timeout, then resume)', async () => {
    const body = randomBytes(20_000);
    t.server = await startServer({ '/slow': { body, bytesPerSec: 40_000 }, '/stall': { body, stallMs: 3000, etag: '"s"' } });
    const ctx = fakeContext(t.dir, w({ urls: [`${t.server.url}/slow`, `${t.server.url}/stall`], timeout_s: 0.5 }));
    await run(ctx);
    expect(await readFile(join(t.dir, ctx.with.out, 'slow'))).toEqual(body);
    expect(await readFile(join(t.dir, ctx.with.out, 'stall'))).toEqual(body);
    expect(t.server.hits('/stall').map((h) => h.range)).toEqual([undefined, 'bytes=10-']);
    expect(ctx.logs.some((l) => /^retrying stall .*no data for 0\.5s/.test(l)), ctx.logs.join('\n')).toBe(true);
    expect(ctx.progressUpdates.filter((p) => p.unit === 'bytes').length).toBeGreaterThan(2);
  });

  it('stops promptly on cancellation and keeps the partial file for a later resume', async () => {
    t.server = await startServer({ '/big': { body: BIG, bytesPerSec: 100_000 } });
    const ac = new AbortController();
    const x = w({ url: `${t.server.url}/big` });
    const started = Date.now();
    setTimeout(() => ac.abort(), 300);
    await expect(run(fakeContext(t.dir, x, { stage: 'dl', signal: ac.signal }))).rejects.toThrow('stage dl: cancelled.');
    expect(Date.now() - started).toBeLessThan(2000);
    const partial = await readFile((await partOf(x, 'big')).part);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial).toEqual(BIG.subarray(0, partial.length));
    expect(existsSync(join(out(x), 'big'))).toBe(false);
  });

  it('takes files from the offline mirror first, with no server at all', async () => {
    const mirror = join(t.dir, 'mirror');
    await mkdir(join(mirror, 'sub'), { recursive: true });
    await writeFile(join(mirror, 'SHA256SUMS.txt'), `${sha(SMALL)}  sub/a.txt\n${sha(BIG)}  b.bin\n`);
    await writeFile(join(mirror, 'sub/a.txt'), SMALL);
    await writeFile(join(mirror, 'b.bin'), BIG);
    const x = w({ manifest: 'http://127.0.0.1:9/files/SHA256SUMS.txt', mirror, retries: 0 });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(await readFile(join(out(x), 'sub/a.txt'))).toEqual(SMALL);
    expect(await readFile(join(out(x), 'b.bin'))).toEqual(BIG);
    expect(ctx.records).toEqual({ download: { files: 2 } });
    expect(ctx.execution).toMatchObject({ download: { mirror: 2, network: 0 } });
  });

  it('downloads a SHA256SUMS manifest selection relative to its folder', async () => {
    const files = { 'annotations/labels.csv': SMALL, 'train/x y.dicom': BIG, 'test/z.dicom': randomBytes(10) };
    const sums = Object.entries(files).map(([p, b]) => `${sha(b)}  ${p}`).join('\n') + '\n';
    t.server = await startServer({
      '/files/ds/1.0.0/SHA256SUMS.txt': { body: Buffer.from(sums) },
      ...Object.fromEntries(Object.entries(files).map(([p, b]) => [`/files/ds/1.0.0/${p}`, { body: b }])),
    });
    const x = w({ manifest: `${t.server.url}/files/ds/1.0.0/SHA256SUMS.txt`, include: ['annotations/*', 'train/**'] });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(await readFile(join(out(x), 'train/x y.dicom'))).toEqual(BIG);
    expect(existsSync(join(out(x), 'test/z.dicom'))).toBe(false);
    expect(ctx.logs).toContain('2 of 3 manifest entries selected');
  });

  it('extracts tar.gz and zip archives, and rejects entries that escape the directory', async () => {
    const src = join(t.dir, 'src');
    await mkdir(join(src, 'dir'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'A');
    await writeFile(join(src, 'dir/b.txt'), 'B');
    await tar.c({ gzip: true, file: join(t.dir, 'good.tar.gz'), cwd: src }, ['a.txt', 'dir/b.txt']);
    t.server = await startServer({
      '/good.tar.gz': { body: await readFile(join(t.dir, 'good.tar.gz')) },
      '/good.zip': { body: rawZip([{ name: 'z/one.txt', body: '1' }, { name: 'two.txt', body: '2' }]) },
      '/evil.tar': { body: rawTar([{ name: 'ok.txt', body: 'fine' }, { name: '../evil.txt', body: 'pwned' }]) },
      '/evil.zip': { body: rawZip([{ name: '../../evil.txt', body: 'pwned' }]) },
      '/link.tar': { body: rawTar([{ name: 'innocent', type: '2', link: '../../etc/passwd' }]) },
    });
    const x = w({ urls: [`${t.server.url}/good.tar.gz`, `${t.server.url}/good.zip`], extract: true });
    await run(fakeContext(t.dir, x));
    expect(await readFile(join(out(x), 'a.txt'), 'utf8')).toBe('A');
    expect(await readFile(join(out(x), 'dir/b.txt'), 'utf8')).toBe('B');
    expect(await readFile(join(out(x), 'z/one.txt'), 'utf8')).toBe('1');
    expect(await readFile(join(out(x), 'two.txt'), 'utf8')).toBe('2');
    for (const [name, entry] of [['evil.tar', '../evil.txt'], ['evil.zip', '../../evil.txt']]) {
      const y = w({ url: `${t.server.url}/${name}`, extract: true });
      await expect(run(fakeContext(t.dir, y, { stage: 'dl' }))).rejects.toThrow(
        `stage dl: ${name}: entry "${entry}" would be written outside the target directory (contains ".."); refusing to extract.`,
      );
      expect(existsSync(join(out(y), 'ok.txt'))).toBe(false);
    }
    await expect(run(fakeContext(t.dir, w({ url: `${t.server.url}/link.tar`, extract: true })))).rejects.toThrow(/link "innocent" → "\.\.\/\.\.\/etc\/passwd" points outside/);
    expect(existsSync(join(t.dir, 'evil.txt'))).toBe(false);
    expect(existsSync(join(t.dir, 'dl', 'evil.txt'))).toBe(false);
  });
});

describe('download: files, secret base URLs, mirror-only files', () => {
  it('resolves files against a base URL from an environment variable and never shows its token', async () => {
    t.server = await startServer({ '/share/a/x.bin': { body: SMALL }, '/share/a/sub/y.bin': { body: BIG } });
    process.env['PIPE_TEST_BASE'] = `${t.server.url}/share/a?sig=TOPSECRET`;
    const x = w({
      files: [{ path: 'renamed.bin', url: 'x.bin' }, { path: 'deep/y.bin', url: 'sub/y.bin', sha256: sha(BIG) }],
      base_url_env: 'PIPE_TEST_BASE',
    });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(await readFile(join(out(x), 'renamed.bin'))).toEqual(SMALL);
    expect(await readFile(join(out(x), 'deep/y.bin'))).toEqual(BIG);
    expect(t.server.hits('/share/a/x.bin')[0]!.query).toBe('?sig=TOPSECRET');
    const e = await run(fakeContext(t.dir, { ...x, out: w().out, files: [{ path: 'gone.bin', url: 'gone.bin' }] }, { stage: 'dl' })).catch((err: Error) => err);
    expect(String(e)).toContain('StageError: stage dl: HTTP 404: $PIPE_TEST_BASE/gone.bin does not exist (file gone.bin).');
    expect(JSON.stringify([String(e), ctx.logs, ctx.records])).not.toContain('TOPSECRET');
    delete process.env['PIPE_TEST_BASE'];
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      'stage dl: with.base_url_env names PIPE_TEST_BASE, which is not set: export the dataset\'s (signed) download URL in it.',
    );
  });

  it('takes files without a public URL from the mirror, and says where to get them otherwise', async () => {
    const note = 'download it from https://example.org/portal after registering';
    const x = w({ files: [{ path: 'labels.csv', note }] });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: labels.csv has no public download URL and no with.mirror is set: ${note}.`,
    );
    const mirror = join(t.dir, 'mirror2');
    await mkdir(mirror, { recursive: true });
    await writeFile(join(mirror, 'labels.csv'), SMALL);
    await run(fakeContext(t.dir, { ...x, mirror }));
    expect(await readFile(join(out(x), 'labels.csv'))).toEqual(SMALL);
  });
});

describe('download helpers', () => {
  it('parses SHA256SUMS with positions in errors and refuses unsafe paths', () => {
    const h = 'ab'.repeat(32);
    expect(parseChecksums(`${h}  a/b.csv\n${h} *c.bin\n\n`, 'S')).toEqual({ ok: true, value: [{ path: 'a/b.csv', sha256: h }, { path: 'c.bin', sha256: h }] });
    expect(parseChecksums(`${h}  ok\nnot a line\n`, 'S')).toEqual({ ok: false, error: 'S:2:1: expected "<sha256>  <path>", got "not a line"' });
    expect(parseChecksums(`${h}  ../x\n`, 'S')).toMatchObject({ ok: false, error: expect.stringContaining('unsafe path "../x"') });
  });

  it('reads netrc machines, default and macdef blocks', () => {
    const text = 'macdef init\ncd /pub\n\nmachine a.org login u1 password p1\ndefault login anon password guest\n';
    expect(lookupNetrc(text, 'a.org')).toEqual({ login: 'u1', password: 'p1' });
    expect(lookupNetrc(text, 'b.org')).toEqual({ login: 'anon', password: 'guest' });
  });
});
