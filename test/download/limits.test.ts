// Bounds on what a download may cost (issue 11.12): the size of a file (announced, or a body that never ends), the
// total time of a file (a body that trickles forever is never "idle"), the expansion of an archive (a 1 MiB zip
// that inflates to 1.1 GiB), and archives that are not what their names say (an HTML page saved as .tar.gz).
// Each error names the with: field and how to raise it; nothing is left half-written, half-extracted or cached.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { partFileFor } from '../../stages/download/resume.js';
import { run, type DownloadWith } from '../../stages/download/run.js';
import { pipeAsync } from '../engine/helpers.js';
import { fakeContext } from '../support/context.js';
import { downloadSuite, downloadWith } from './fixture.js';
import { deflatedZeros, rawTar, rawZip, startServer } from './server.js';

const t = downloadSuite('download-limits-');
const w = (over: Partial<DownloadWith> = {}): DownloadWith => downloadWith({ retries: 2, concurrency: 1, ...over });
const outDir = (x: DownloadWith): string => join(t.dir, x.out);
const HTML = Buffer.from('<!DOCTYPE html>\n<html><head><title>Sign in to continue</title></head><body>Please log in.</body></html>\n');

/** Every file left under a directory (recursively), hidden ones included. */
async function leftovers(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => !e.isDirectory()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe('download: size and time bounds', () => {
  it('refuses a file whose announced size passes with.max_bytes, before writing it', async () => {
    t.server = await startServer({ '/huge.bin': { body: randomBytes(3_000_000) } });
    const x = w({ url: `${t.server.url}/huge.bin`, max_bytes: 1_000_000 });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: ${t.server.url}/huge.bin (file huge.bin): the server announced 3000000 bytes, more than with.max_bytes = 1000000 (1.0 MB); ` +
        'the partial file was deleted. If the file is meant to be this large, raise with.max_bytes.',
    );
    expect(t.server.hits('/huge.bin')).toHaveLength(1); // a bound is not retried
    expect(await leftovers(outDir(x))).toEqual([]);
    expect(existsSync((await partFileFor(t.dir, join(outDir(x), 'huge.bin'))).part)).toBe(false);
  });

  it('stops a body without a length that never ends at with.max_bytes', async () => {
    t.server = await startServer({ '/endless': { body: Buffer.alloc(0), endless: true } });
    const x = w({ url: `${t.server.url}/endless`, max_bytes: 2 * 2 ** 20 });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: ${t.server.url}/endless (file endless): the body went on past with.max_bytes = 2097152 (2.1 MB) without ending; ` +
        'the partial file was deleted. If the file is meant to be this large, raise with.max_bytes.',
    );
    expect(t.server.sent('/endless')).toBeLessThan(64 * 2 ** 20); // stopped, not drained
    expect(await leftovers(outDir(x))).toEqual([]);
    expect(existsSync((await partFileFor(t.dir, join(outDir(x), 'endless'))).part)).toBe(false);
  });

  it('stops a body that trickles forever (never idle) at with.max_time_s', async () => {
    t.server = await startServer({ '/trickle': { body: Buffer.alloc(0), endless: true, trickleMs: 50 } });
    const x = w({ url: `${t.server.url}/trickle`, max_time_s: 1.5, timeout_s: 1 });
    const t0 = Date.now();
    const e = (await run(fakeContext(t.dir, x, { stage: 'dl' })).catch((err: Error) => err)) as Error;
    expect(e.message).toMatch(
      new RegExp(
        `^stage dl: ${t.server.url.replace(/[.]/g, '\\.')}/trickle \\(file trickle\\) did not finish within with\\.max_time_s = 1\\.5 s \\([1-9]\\d+ bytes had arrived; ` +
          `the partial file is kept, and the next run resumes it if the server proves the file unchanged\\)\\. For a large file on a slow link, raise with\\.max_time_s\\.$`,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(t.server.hits('/trickle')).toHaveLength(1);
  });

  it('does not wait out a Retry-After that would pass with.max_time_s', async () => {
    t.server = await startServer({ '/busy': { body: Buffer.from('x'), statuses: [503], retryAfter: ['3600'] } });
    const x = w({ url: `${t.server.url}/busy`, max_time_s: 5 });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: ${t.server.url}/busy (file busy) did not finish within with.max_time_s = 5 s: the last attempt failed (HTTP 503 from ${t.server.url}/busy) ` +
        'and the next would start 300.0s later, past the limit. For a large file on a slow link, raise with.max_time_s.',
    );
  });

  it('refuses non-positive bounds naming the field', async () => {
    await expect(run(fakeContext(t.dir, w({ url: 'http://127.0.0.1:9/x', max_bytes: 0 }), { stage: 'dl' }))).rejects.toThrow(
      'stage dl: with.max_bytes must be a positive number (got 0).',
    );
  });
});

describe('download: archive expansion bounds, all or nothing', () => {
  it('refuses a zip bomb (1 MiB → 1.1 GiB) by its declared sizes, writing nothing', async () => {
    const bomb = rawZip([{ name: 'readme.txt', body: 'hello' }, { name: 'zeros.bin', ...(await deflatedZeros(1100)) }]);
    expect(bomb.length).toBeLessThan(1.2e6);
    t.server = await startServer({ '/bomb.zip': { body: bomb } });
    const x = w({ url: `${t.server.url}/bomb.zip`, extract: true });
    const e = (await run(fakeContext(t.dir, x, { stage: 'dl' })).catch((err: Error) => err)) as Error;
    expect(e.message).toMatch(
      /^stage dl: bomb\.zip expands to 10\d\d× its own size of 1\.\d MiB \(1153433605 bytes declared by 2 entries so far\), more than with\.max_extract_ratio = 100 — a decompression bomb\? Nothing was extracted\. If the archive is trusted, raise with\.max_extract_ratio\.$/,
    );
    expect(await leftovers(outDir(x))).toEqual(['bomb.zip']);
  });

  it('refuses a tar.gz whose entries declare more than with.max_extract_bytes; and a gzip bomb by ratio', async () => {
    const tgz = gzipSync(rawTar([{ name: 'a.bin', body: randomBytes(150_000) }, { name: 'b.bin', body: randomBytes(150_000) }]));
    const zeros = gzipSync(rawTar([{ name: 'z.bin', body: Buffer.alloc(30 * 2 ** 20) }]));
    t.server = await startServer({ '/big.tar.gz': { body: tgz }, '/zeros.tgz': { body: zeros } });
    const x = w({ url: `${t.server.url}/big.tar.gz`, extract: true, max_extract_bytes: 200_000 });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      'stage dl: big.tar.gz expands to more than 195.3 KiB (with.max_extract_bytes = 200000; 2 entries declare 300000 bytes so far); nothing was extracted. ' +
        'If the archive is trusted and meant to be this large, raise with.max_extract_bytes.',
    );
    expect(await leftovers(outDir(x))).toEqual(['big.tar.gz']);
    const y = w({ url: `${t.server.url}/zeros.tgz`, extract: true });
    await expect(run(fakeContext(t.dir, y, { stage: 'dl' }))).rejects.toThrow(/^stage dl: zeros\.tgz expands to \d+× its own size .* more than with\.max_extract_ratio = 100/);
    expect(await leftovers(outDir(y))).toEqual(['zeros.tgz']);
    // Raised, the same archive extracts.
    await run(fakeContext(t.dir, { ...y, max_extract_ratio: 5000 }));
    expect((await readFile(join(outDir(y), 'z.bin'))).length).toBe(30 * 2 ** 20);
  });

  it('refuses a tar or zip with more entries than with.max_extract_entries (tiny files: bytes and ratio pass), writing nothing', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `f/${i}.txt`, body: `${i}` }));
    t.server = await startServer({ '/many.tar': { body: rawTar(many) }, '/many.zip': { body: rawZip(many) } });
    for (const name of ['many.tar', 'many.zip']) {
      const x = w({ url: `${t.server.url}/${name}`, extract: true, max_extract_entries: 25 });
      await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
        `stage dl: ${name} holds more than 25 entries (with.max_extract_entries = 25); nothing was extracted. ` +
          'If the archive is trusted and meant to hold this many files, raise with.max_extract_entries.',
      );
      expect(await leftovers(outDir(x))).toEqual([name]);
      // At the bound, the same archive extracts.
      const y = w({ url: `${t.server.url}/${name}`, extract: true, max_extract_entries: 40 });
      await run(fakeContext(t.dir, y, { stage: 'dl' }));
      expect((await leftovers(outDir(y))).filter((f) => f.startsWith('f/'))).toHaveLength(40);
    }
  });

  it('leaves nothing of an archive that fails midway (a corrupt entry after a good one)', async () => {
    const good = rawZip([{ name: 'dir/first.txt', body: 'fine' }, { name: 'dir/second.txt', body: 'will be corrupted' }]);
    const bad = Buffer.from(good);
    const at = bad.indexOf('will be corrupted');
    bad.write('WILL BE CORRUPTED', at); // same length, wrong CRC
    t.server = await startServer({ '/half.zip': { body: bad } });
    const x = w({ url: `${t.server.url}/half.zip`, extract: true });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(/^stage dl: half\.zip: entry "dir\/second\.txt" is corrupt \(CRC-32 [0-9a-f]{8}, the archive says [0-9a-f]{8}\)\.$/);
    expect(await leftovers(outDir(x))).toEqual(['half.zip']);
  });

  it('through pipe run: the zip bomb fails the stage with the bound named, nothing extracted and nothing cached', async () => {
    const bomb = rawZip([{ name: 'zeros.bin', ...(await deflatedZeros(1100)) }]);
    t.server = await startServer({ '/bomb.zip': { body: bomb } });
    const dir = await mkdtemp(join(tmpdir(), 'download-bomb-'));
    try {
      await writeFile(join(dir, 'pipeline.yaml'), `name: b\nstages:\n  fetch:\n    uses: download\n    with:\n      url: ${t.server.url}/bomb.zip\n      out: data/z/\n      extract: true\n`);
      const r = await pipeAsync(dir, ['run', 'pipeline.yaml']).done;
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout + r.stderr).toContain('more than with.max_extract_ratio = 100 — a decompression bomb? Nothing was extracted.');
      expect(existsSync(join(dir, 'data/z'))).toBe(false);
      // No object and no run record (the store's workspace registry names this workspace, which is not a result).
      expect(await leftovers(join(dir, '.pipe/cache/objects'))).toEqual([]);
      expect(await leftovers(join(dir, '.pipe/cache/runs'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('download: an archive must be what its name says', () => {
  it('an HTML page served as .tar.gz fails the download (not "extracted 0 files"), and is not kept', async () => {
    t.server = await startServer({ '/files/images_001.tar.gz': { body: HTML, contentType: 'text/html' } });
    const x = w({ files: [{ path: 'images_001.tar.gz', url: `${t.server.url}/files/images_001.tar.gz` }], extract: true });
    await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
      `stage dl: ${t.server.url}/files/images_001.tar.gz: images_001.tar.gz is not a gzip-compressed tar archive: it is an HTML page ` +
        '(it starts with "<!DOCTYPE html> <html><head><title>Sign in to continue</titl…") — often a login, consent or error page served instead of the file. ' +
        'The file was not kept; check the URL (and credentials) in a browser.',
    );
    expect(await leftovers(outDir(x))).toEqual([]);
  });

  it('also without extract: a .zip that is JSON, a .tar.gz that is gzipped text, a .gz that is not gzip', async () => {
    t.server = await startServer({
      '/a.zip': { body: Buffer.from('{"error": "AuthenticationFailed"}') },
      '/b.tar.gz': { body: gzipSync('just,a,csv\n1,2,3\n') },
      '/c.csv.gz': { body: Buffer.from('a,b\n1,2\n') },
      '/ok.csv.gz': { body: gzipSync('a,b\n1,2\n') },
    });
    const cases: Array<[string, string]> = [
      ['a.zip', 'a.zip is not a zip archive: it is JSON or text (it starts with "{\\"error\\": \\"AuthenticationFailed\\"}") — often an error message from the server'],
      ['b.tar.gz', 'b.tar.gz is not a gzip-compressed tar archive: it is gzip-compressed, but what it holds is not a tar archive'],
      ['c.csv.gz', 'c.csv.gz is not gzip-compressed: it is text (it starts with "a,b 1,2")'],
    ];
    for (const [name, why] of cases) {
      const x = w({ url: `${t.server.url}/${name}` });
      await expect(run(fakeContext(t.dir, x, { stage: 'dl' }))).rejects.toThrow(
        `stage dl: ${t.server.url}/${name}: ${why}. The file was not kept; check the URL (and credentials) in a browser.`,
      );
    }
    const ok = w({ url: `${t.server.url}/ok.csv.gz` });
    await run(fakeContext(t.dir, ok));
    expect(existsSync(join(outDir(ok), 'ok.csv.gz'))).toBe(true);
  });

  it('an empty tar (only end blocks) is still a tar: extracted 0 files', async () => {
    t.server = await startServer({ '/empty.tar': { body: Buffer.alloc(1024) } });
    const ctx = fakeContext(t.dir, w({ url: `${t.server.url}/empty.tar`, extract: true }));
    await run(ctx);
    expect(ctx.logs).toContain('extracted 0 file(s) from empty.tar');
  });
});
