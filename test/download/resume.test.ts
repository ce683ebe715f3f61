// Resumed downloads never splice two versions of a file (issue 16.1), and a part file survives Ctrl-C of `pipe run`
// so that the next run continues it (issue 16.2). A real HTTP server on 127.0.0.1; the interruption is a real SIGINT
// to a real `pipe run` process.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { partFileFor, planResume, partialMismatch, validatorsOf } from '../../stages/download/resume.js';
import { run, type DownloadWith } from '../../stages/download/run.js';
import { pipeAsync } from '../engine/helpers.js';
import { fakeContext } from '../support/context.js';
import { downloadSuite, downloadWith } from './fixture.js';
import { startServer } from './server.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const t = downloadSuite('download-resume-');
const w = (over: Partial<DownloadWith> = {}): DownloadWith => downloadWith({ retries: 0, concurrency: 1, ...over });

/** First run: the server drops the connection at byte `at`; the run fails and leaves a part file of `at` bytes. */
async function interrupted(x: DownloadWith, file: string, at: number): Promise<void> {
  await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gave up/);
  const part = await partFileFor(t.dir, join(t.dir, x.out, file));
  expect((await stat(part.part)).size).toBe(at);
}

/** Sizes of the part files a workspace keeps (sorted). */
async function partSizes(dir: string): Promise<number[]> {
  const parts = join(dir, '.pipe/tmp/download');
  if (!existsSync(parts)) return [];
  const names = (await readdir(parts)).filter((f) => f.endsWith('.part'));
  return (await Promise.all(names.map(async (f) => (await stat(join(parts, f))).size))).sort((x, y) => x - y);
}

/** `pipe run` in `dir`, Ctrl-C'd once a part file holds `bytes` (gated on the file, not on a sleep): exit 130. */
async function runInterruptedAt(dir: string, bytes: number): Promise<void> {
  const first = pipeAsync(dir, ['run', 'pipeline.yaml']);
  const t0 = Date.now();
  while (!(await partSizes(dir)).includes(bytes)) {
    if (Date.now() - t0 > 60_000) throw new Error(`the download never started:\n${first.out()}\n${first.err()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  first.child.kill('SIGINT');
  const r1 = await first.done;
  expect(r1.code, r1.stdout + r1.stderr).toBe(130);
}

describe('download: a resume must prove it continues the same file', () => {
  it('a server without ETag/Last-Modified: the changed file restarts from zero instead of being spliced (issue 16.1)', async () => {
    const v1 = randomBytes(200_000);
    const v2 = randomBytes(240_000);
    t.server = await startServer({ '/b.bin': { body: v1, dropAfter: 90_000 } });
    const x = w({ url: `${t.server.url}/b.bin` });
    await interrupted(x, 'b.bin', 90_000);
    // The file changes; a ranged request would now get `206 bytes 90000-239999/240000`.
    t.server.routes.set('/b.bin', { body: v2 });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    const got = await readFile(join(t.dir, x.out, 'b.bin'));
    expect(got.length).toBe(240_000);
    expect(sha(got)).toBe(sha(v2));
    expect(t.server.hits('/b.bin').at(-1)!.range).toBeUndefined();
    expect(ctx.logs).toContain(
      `cannot resume ${t.server.url}/b.bin from byte 90000: the server gave no strong ETag or Last-Modified that could prove the file is unchanged; restarting from byte 0`,
    );
  });

  it('a 206 whose total length differs from the first response restarts, even under the same ETag', async () => {
    const v1 = randomBytes(200_000);
    const v2 = randomBytes(240_000);
    t.server = await startServer({ '/t.bin': { body: v1, etag: '"same"', dropAfter: 90_000 } });
    const x = w({ url: `${t.server.url}/t.bin`, retries: 1 });
    await interrupted({ ...x, retries: 0 }, 't.bin', 90_000);
    // A server that does not implement If-Range, and reuses the ETag for the new content.
    t.server.routes.set('/t.bin', { body: v2, etag: '"same"', ignoreIfRange: true });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(sha(await readFile(join(t.dir, x.out, 't.bin')))).toBe(sha(v2));
    expect(t.server.hits('/t.bin').slice(-2).map((h) => h.range)).toEqual(['bytes=90000-', undefined]);
    expect(ctx.logs).toContain(
      `cannot resume ${t.server.url}/t.bin from byte 90000: the server's partial response the total length changed from 200000 to 240000 bytes; restarting from byte 0`,
    );
  });

  it('a 206 with another ETag restarts; a weak ETag is never used to resume', async () => {
    const v1 = randomBytes(100_000);
    const v2 = randomBytes(100_000);
    t.server = await startServer({ '/e.bin': { body: v1, etag: '"a"', dropAfter: 30_000 }, '/weak.bin': { body: v1, etag: 'W/"w"', dropAfter: 30_000 } });
    const x = w({ url: `${t.server.url}/e.bin` });
    await interrupted(x, 'e.bin', 30_000);
    t.server.routes.set('/e.bin', { body: v2, etag: '"b"', ignoreIfRange: true });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(sha(await readFile(join(t.dir, x.out, 'e.bin')))).toBe(sha(v2));
    expect(ctx.logs.some((l) => l.includes('its ETag changed from "a" to "b"'))).toBe(true);

    const y = w({ url: `${t.server.url}/weak.bin` });
    await interrupted(y, 'weak.bin', 30_000);
    await run(fakeContext(t.dir, y));
    expect(t.server.hits('/weak.bin').map((h) => h.range)).toEqual([undefined, undefined]);
    expect(await readFile(join(t.dir, y.out, 'weak.bin'))).toEqual(v1);
  });

  it('resumes with a strong Last-Modified when there is no ETag', async () => {
    const body = randomBytes(150_000);
    const lastModified = 'Wed, 01 Jan 2025 00:00:00 GMT';
    t.server = await startServer({ '/lm.bin': { body, lastModified, dropAfter: 60_000 } });
    const x = w({ url: `${t.server.url}/lm.bin`, sha256: { 'lm.bin': sha(body) } });
    await interrupted(x, 'lm.bin', 60_000);
    await run(fakeContext(t.dir, x));
    expect(t.server.hits('/lm.bin').at(-1)).toMatchObject({ range: 'bytes=60000-', ifRange: lastModified });
    expect(await readFile(join(t.dir, x.out, 'lm.bin'))).toEqual(body);
  });

  it('a finished file kept after the stage failed is checked again: bytes that rotted meanwhile are downloaded anew', async () => {
    const a = randomBytes(40_000);
    t.server = await startServer({ '/a.bin': { body: a, etag: '"a-1"' } });
    const x = w({ files: [{ path: 'a.bin', url: `${t.server.url}/a.bin`, sha256: sha(a) }, { path: 'gone.bin', url: `${t.server.url}/gone.bin` }] });
    await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gone\.bin does not exist/);
    await rm(join(t.dir, x.out), { recursive: true, force: true }); // as the engine does after a failed stage
    // The stage failed after a.bin finished: its bytes are kept for the next run. Flip one of them.
    const part = await partFileFor(t.dir, join(t.dir, x.out, 'a.bin'));
    const rotten = Buffer.from(a);
    rotten[123] ^= 0xff;
    await writeFile(part.part, rotten);
    t.server.routes.set('/gone.bin', { body: Buffer.from('back\n') });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(await readFile(join(t.dir, x.out, 'a.bin'))).toEqual(a);
    // Its sha256 no longer vouches for it: dropped, and fetched whole (not resumed from the bad bytes).
    expect(t.server.hits('/a.bin').map((h) => h.range)).toEqual([undefined, undefined]);
    expect(ctx.logs).toContain(`the copy of a.bin an earlier run kept has sha256 ${sha(rotten)}, expected ${sha(a)}; downloading it again`);
  });

  it('a kept file without a sha256 is placed again only when the 416 carries the validator it came with', async () => {
    const v1 = randomBytes(30_000);
    const v2 = randomBytes(30_000);
    t.server = await startServer({ '/c.bin': { body: v1, etag: '"c-1"' } });
    const x = w({ files: [{ path: 'c.bin', url: `${t.server.url}/c.bin` }, { path: 'gone.bin', url: `${t.server.url}/gone.bin` }] });
    await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gone\.bin does not exist/);
    // Same length, new content and ETag, on a server that ignores If-Range: the request for the bytes past the end
    // of the kept copy gets a 416 all the same, but under the new ETag.
    t.server.routes.set('/c.bin', { body: v2, etag: '"c-2"', ignoreIfRange: true });
    await rm(join(t.dir, x.out), { recursive: true, force: true }); // as the engine does after a failed stage
    t.server.routes.set('/gone.bin', { body: Buffer.from('back\n') });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(sha(await readFile(join(t.dir, x.out, 'c.bin')))).toBe(sha(v2));
    expect(t.server.hits('/c.bin').map((h) => h.range)).toEqual([undefined, 'bytes=30000-', undefined]);
    expect(ctx.logs).toContain(`cannot resume ${t.server.url}/c.bin from byte 30000: its 416 gives ETag "c-2", not "c-1"; restarting from byte 0`);
  });

  it('a successful run leaves no part behind, also of a file an earlier run finished and this one took from the mirror', async () => {
    const a = randomBytes(20_000);
    t.server = await startServer({ '/a.bin': { body: a, etag: '"a-1"' } });
    const files = [{ path: 'a.bin', url: `${t.server.url}/a.bin`, sha256: sha(a) }, { path: 'gone.bin', url: `${t.server.url}/gone.bin` }];
    const x = w({ files });
    await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gone\.bin does not exist/);
    await rm(join(t.dir, x.out), { recursive: true, force: true }); // as the engine does after a failed stage
    const part = await partFileFor(t.dir, join(t.dir, x.out, 'a.bin'));
    expect(existsSync(part.part)).toBe(true);
    const mirror = await mkdtemp(join(tmpdir(), 'download-mirror-'));
    await writeFile(join(mirror, 'a.bin'), a);
    t.server.routes.set('/gone.bin', { body: Buffer.from('back\n') });
    await run(fakeContext(t.dir, { ...x, mirror }));
    expect(await readFile(join(t.dir, x.out, 'a.bin'))).toEqual(a);
    expect(existsSync(part.part)).toBe(false);
    expect(existsSync(part.meta)).toBe(false);
    await rm(mirror, { recursive: true, force: true });
  });

  it('out on another file system than .pipe (a real tmpfs): finished files are copied, not linked, and still kept', async (testCtx) => {
    const a = randomBytes(20_000);
    t.server = await startServer({ '/a.bin': { body: a, etag: '"a-1"' } });
    const x = w({ out: 'on-tmpfs/', files: [{ path: 'a.bin', url: `${t.server.url}/a.bin`, sha256: sha(a) }, { path: 'gone.bin', url: `${t.server.url}/gone.bin` }] });
    const mnt = join(t.dir, 'on-tmpfs');
    await rm(mnt, { recursive: true, force: true });
    await mkdir(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      console.warn(`SKIPPED: mount -t tmpfs failed (${(m.stderr || m.error?.message || '').trim()}): needs root`);
      testCtx.skip();
    }
    try {
      await expect(run(fakeContext(t.dir, x))).rejects.toThrow(/gone\.bin does not exist/);
      await rm(join(mnt, 'a.bin'), { force: true }); // as the engine does after a failed stage
      const part = await partFileFor(t.dir, join(mnt, 'a.bin'));
      expect((await stat(part.part)).size).toBe(20_000);
      t.server.routes.set('/gone.bin', { body: Buffer.from('back\n') });
      await run(fakeContext(t.dir, x));
      expect(await readFile(join(mnt, 'a.bin'))).toEqual(a);
      expect(t.server.hits('/a.bin')).toHaveLength(1);
      expect(existsSync(part.part)).toBe(false);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('a link or a FIFO put at a part\'s name (by a stage beside it, say) is removed, never written, truncated, read or placed through', async () => {
    const body = randomBytes(30_000);
    t.server = await startServer({ '/l.bin': { body, etag: '"l-1"' }, '/m.bin': { body, etag: '"m-1"' } });
    const outside = await mkdtemp(join(tmpdir(), 'download-outside-'));
    try {
      // A victim whose bytes match the declared sha256 (so a placed link would pass the check) and one that a
      // resume would append to.
      await writeFile(join(outside, 'same.bin'), body);
      await writeFile(join(outside, 'victim.txt'), 'precious\n');
      const x = w({ files: [{ path: 'l.bin', url: `${t.server.url}/l.bin`, sha256: sha(body) }, { path: 'm.bin', url: `${t.server.url}/m.bin` }] });
      const l = await partFileFor(t.dir, join(t.dir, x.out, 'l.bin'));
      const m = await partFileFor(t.dir, join(t.dir, x.out, 'm.bin'));
      await symlink(join(outside, 'same.bin'), l.part);
      await writeFile(l.meta, JSON.stringify({ source: 'x', etag: '"l-1"', total: 30_000 }));
      await symlink(join(outside, 'victim.txt'), m.part);
      expect(spawnSync('mkfifo', [m.meta]).status).toBe(0);
      await run(fakeContext(t.dir, x));
      for (const f of ['l.bin', 'm.bin']) {
        expect(await readFile(join(t.dir, x.out, f))).toEqual(body);
        expect((await lstat(join(t.dir, x.out, f))).isSymbolicLink()).toBe(false);
      }
      expect(await readFile(join(outside, 'victim.txt'), 'utf8')).toBe('precious\n');
      expect(await readFile(join(outside, 'same.bin'))).toEqual(body);
      // Both fetched whole: nothing was resumed from what the links pointed to.
      expect(t.server.hits('/l.bin').map((h) => h.range)).toEqual([undefined]);
      expect(t.server.hits('/m.bin').map((h) => h.range)).toEqual([undefined]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('decides from what the first response proved (pure rules)', () => {
    const meta = { source: 's', etag: '"x"', total: 100 };
    expect(planResume(meta, 40, 's')).toEqual({ resume: true, ifRange: '"x"' });
    expect(planResume(meta, 40, 'other')).toMatchObject({ resume: false, why: 'the partial file came from another URL' });
    expect(planResume({ ...meta, total: null }, 40, 's')).toMatchObject({ resume: false });
    expect(planResume(null, 40, 's')).toMatchObject({ resume: false });
    expect(partialMismatch(meta, 40, { 'content-range': 'bytes 40-99/100', etag: '"x"' })).toBeNull();
    expect(partialMismatch(meta, 40, { 'content-range': 'bytes 41-99/100' })).toBe('it starts at byte 41, not at 40');
    expect(partialMismatch(meta, 40, { 'content-range': 'bytes 40-99/*' })).toBe('it does not give the total length');
    // Last-Modified is a strong validator only when at least a second older than the response's Date.
    const date = 'Wed, 01 Jan 2025 00:00:00 GMT';
    expect(validatorsOf({ 'last-modified': date, date })).toEqual({});
    expect(validatorsOf({ 'last-modified': date, date: 'Wed, 01 Jan 2025 00:00:05 GMT', etag: 'W/"weak"' })).toEqual({ lastModified: date });
  });
});

describe('download: Ctrl-C of pipe run keeps the part file, and the next run resumes it (issue 16.2)', () => {
  it('SIGINT mid-file: rc 130, no partial output, the part kept under .pipe/tmp; the rerun sends Range + If-Range', async () => {
    const body = randomBytes(400_000);
    // The first request sends 150,000 bytes and then holds the connection open: the transfer is under way when
    // the test presses Ctrl-C (gated on the bytes having reached the part file, not on a sleep).
    t.server = await startServer({ '/big.bin': { body, etag: '"big-1"', holdAfter: 150_000 } });
    const dir = await mkdtemp(join(tmpdir(), 'download-sigint-'));
    try {
      await writeFile(
        join(dir, 'pipeline.yaml'),
        `name: dl\nstages:\n  fetch:\n    uses: download\n    with:\n      url: ${t.server.url}/big.bin\n      out: data/b/\n      sha256: { big.bin: ${sha(body)} }\n`,
      );
      const parts = join(dir, '.pipe/tmp/download');
      await runInterruptedAt(dir, 150_000);
      expect(existsSync(join(dir, 'data/b/big.bin'))).toBe(false);
      expect(await partSizes(dir)).toEqual([150_000]);

      const second = pipeAsync(dir, ['run', 'pipeline.yaml']);
      const r2 = await second.done;
      expect(r2.code, r2.stdout + r2.stderr).toBe(0);
      expect(await readFile(join(dir, 'data/b/big.bin'))).toEqual(body);
      expect(t.server.hits('/big.bin').map((h) => [h.range, h.ifRange])).toEqual([
        [undefined, undefined],
        ['bytes=150000-', '"big-1"'],
      ]);
      expect(await readdir(parts)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('SIGINT after two files of three finished: the rerun downloads none again (a declared sha256 vouches, else a 416 proves it unchanged)', async () => {
    const small = randomBytes(50_000);
    const other = randomBytes(60_000);
    const body = randomBytes(400_000);
    t.server = await startServer({
      '/a.bin': { body: small, etag: '"a-1"' },
      '/c.bin': { body: other, etag: '"c-1"' },
      '/big.bin': { body, etag: '"big-1"', holdAfter: 150_000 },
    });
    const dir = await mkdtemp(join(tmpdir(), 'download-sigint-'));
    try {
      await writeFile(
        join(dir, 'pipeline.yaml'),
        `name: dl\nstages:\n  fetch:\n    uses: download\n    with:\n      out: data/b/\n      concurrency: 1\n      files:\n` +
          `        - {path: a.bin, url: ${t.server.url}/a.bin, sha256: ${sha(small)}}\n` +
          `        - {path: c.bin, url: ${t.server.url}/c.bin}\n` +
          `        - {path: big.bin, url: ${t.server.url}/big.bin, sha256: ${sha(body)}}\n`,
      );
      const parts = join(dir, '.pipe/tmp/download');
      await runInterruptedAt(dir, 150_000);
      // No partial output: the finished files went with the cancelled stage's outs; their bytes wait under .pipe/tmp.
      expect(existsSync(join(dir, 'data/b/a.bin'))).toBe(false);
      expect(await partSizes(dir)).toEqual([50_000, 60_000, 150_000]);

      const second = pipeAsync(dir, ['run', 'pipeline.yaml', '-v']);
      const r2 = await second.done;
      expect(r2.code, r2.stdout + r2.stderr).toBe(0);
      expect(await readFile(join(dir, 'data/b/a.bin'))).toEqual(small);
      expect(await readFile(join(dir, 'data/b/c.bin'))).toEqual(other);
      expect(await readFile(join(dir, 'data/b/big.bin'))).toEqual(body);
      // a.bin: its sha256 vouches for the kept bytes, no request; c.bin (no sha256): asked only for the bytes past
      // its end, and the server's 416 under the same ETag proves the kept copy whole and current.
      expect(t.server.hits('/a.bin').map((h) => h.range)).toEqual([undefined]);
      expect(t.server.hits('/c.bin').map((h) => [h.range, h.ifRange])).toEqual([
        [undefined, undefined],
        ['bytes=60000-', '"c-1"'],
      ]);
      expect(t.server.hits('/big.bin').map((h) => h.range)).toEqual([undefined, 'bytes=150000-']);
      expect(r2.stdout + r2.stderr).toMatch(/3 file\(s\) in data\/b\/: 1 downloaded, 0 from the mirror, 0 already present, 2 finished by an earlier run that did not complete/);
      expect(await readdir(parts)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
