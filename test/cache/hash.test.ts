import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asHash, CacheError, canonicalJson, hashFile, hashJson, manifestJson, parseManifest, type ManifestEntry } from '../../cache/index.js';
import { hashSmallFileSync, openRegular } from '../../cache/hash.js';
import { tempDir } from './helpers.js';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

describe('hashFile', () => {
  it('is the sha256 of the bytes, for empty, small and multi-chunk files', async () => {
    const d = tempDir();
    const big = Buffer.alloc(5 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    for (const [name, bytes] of [['empty', Buffer.alloc(0)], ['small', Buffer.from('hello\n')], ['big', big]] as const) {
      writeFileSync(`${d}/${name}`, bytes);
      expect(await hashFile(`${d}/${name}`)).toBe(sha(bytes));
    }
  });

  it('readers refuse a FIFO or a device put where a regular file was, at once: never blocked on, never read forever', async () => {
    // Every caller stats first and sees a regular file; a running stage can swap in a FIFO before the open. A plain
    // open of a FIFO waits for a writer (the synchronous one would block pipe's only thread); /dev/zero never ends.
    const d = tempDir();
    execFileSync('mkfifo', [`${d}/fifo`]);
    for (const path of [`${d}/fifo`, '/dev/zero']) {
      expect(() => hashSmallFileSync(path, 5)).toThrow(CacheError);
      expect(() => hashSmallFileSync(path, 5)).toThrow(`${path} is not a regular file`);
      await expect(hashFile(path)).rejects.toThrow(`${path} is not a regular file`);
      await expect(openRegular(path)).rejects.toMatchObject({ code: 'special-file', path });
    }
    writeFileSync(`${d}/f`, 'ok\n');
    const fh = await openRegular(`${d}/f`);
    expect((await fh.readFile()).toString()).toBe('ok\n');
    await fh.close();
  });

  it('small-file readers notice a file larger than its stat said (being written) instead of hashing a prefix', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'grown content');
    const buf = Buffer.alloc(64);
    expect(hashSmallFileSync(`${d}/f`, 13, buf)).toBe(sha('grown content'));
    expect(hashSmallFileSync(`${d}/f`, 5, buf)).toBeUndefined();
    expect(hashSmallFileSync(`${d}/f`, 13, Buffer.alloc(8))).toBeUndefined(); // buffer too small: never a prefix
    expect(hashSmallFileSync(`${d}/f`, 50)).toBe(sha('grown content')); // shrank: hashes what is there (shared buffer)
  });

  it('rejects a missing file', async () => {
    await expect(hashFile(`${tempDir()}/nope`)).rejects.toThrow(/ENOENT/);
  });
});

describe('canonicalJson / hashJson', () => {
  it('sorts keys at every depth and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('is independent of insertion order, sensitive to values', () => {
    const a = { lr: 0.001, epochs: 5, data: ['x', 'y'] };
    const b = { data: ['x', 'y'], epochs: 5, lr: 0.001 };
    expect(hashJson(a)).toBe(hashJson(b));
    expect(hashJson(a)).toBe(sha(canonicalJson(a)));
    expect(hashJson(a)).not.toBe(hashJson({ ...a, lr: 0.01 }));
    expect(hashJson(a)).not.toBe(hashJson({ ...a, data: ['y', 'x'] })); // arrays keep their order
  });

  it('follows JSON semantics for undefined, toJSON and unicode', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
    expect(canonicalJson({ t: new Date(0) })).toBe('{"t":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson({ 'é': '"\n' })).toBe(JSON.stringify({ 'é': '"\n' }));
  });

  it('refuses values that JSON would silently turn into null', () => {
    expect(() => canonicalJson({ x: NaN })).toThrow(/non-finite number at \.x/);
    expect(() => canonicalJson({ x: [1, Infinity] })).toThrow(/\.x\[1\]/);
    expect(() => canonicalJson(10n)).toThrow(/bigint/);
    expect(() => canonicalJson(undefined)).toThrow(/not JSON-serialisable/);
  });
});

describe('directory manifest', () => {
  it('the fast writer equals canonicalJson and parses back', () => {
    const h = asHash(sha('x'));
    const entries: ManifestEntry[] = [
      ['a "quoted"/b.txt', h, 3],
      ['tab\there', h, 0],
      ['ünï/c', h, 12345678901],
    ];
    const text = manifestJson(entries);
    expect(text).toBe(canonicalJson(entries));
    expect(parseManifest(text, 'm')).toEqual(entries);
  });

  it('rejects entries that would escape the restore directory', () => {
    const h = sha('x');
    for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a//b', '']) {
      expect(() => parseManifest(JSON.stringify([[bad, h, 1]]), 'obj')).toThrow(/malformed/);
    }
    expect(() => parseManifest('{', 'obj')).toThrow(/not JSON/);
  });
});
