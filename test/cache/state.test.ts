import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CacheError, canonicalJson, openHashState } from '../../cache/index.js';
import { settle, tempDir } from './helpers.js';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');
const FAKE = 'f'.repeat(64);

/** A state file claiming `path` (with its current identity) has hash FAKE: only a memo hit can return FAKE. */
function forgeState(stateFile: string, path: string): void {
  const st = statSync(path, { bigint: true });
  const dir = path.slice(0, path.lastIndexOf('/'));
  const name = path.slice(path.lastIndexOf('/') + 1);
  writeFileSync(stateFile, `pipe-hashstate\t2\n${dir}\n${name}\t${st.dev}\t${st.ino}\t${st.size}\t${st.mtimeNs}\t${st.ctimeNs}\t${FAKE}\n`);
}

describe('HashState memo', () => {
  it('a file with an unchanged identity is not read: a forged memo entry is returned as is', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'real content');
    forgeState(`${d}/state`, `${d}/f`);
    const s = await openHashState(`${d}/state`);
    expect((await s.hashPath(`${d}/f`)).hash).toBe(FAKE);
    expect(s.stats).toMatchObject({ hits: 1, reads: 0 });
  });

  it('touching mtime (or only ctime) re-reads the file', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'real content');
    forgeState(`${d}/state`, `${d}/f`);
    const st = statSync(`${d}/f`);
    utimesSync(`${d}/f`, st.atime, new Date(st.mtimeMs + 5000));
    let s = await openHashState(`${d}/state`);
    expect((await s.hashPath(`${d}/f`)).hash).toBe(sha('real content'));
    expect(s.stats.reads).toBe(1);

    // Same mtime restored (to the ns) after an edit of equal size: only ctime moved, and that suffices.
    utimesSync(`${d}/f`, 1_700_000_000, 1_700_000_000);
    forgeState(`${d}/state`, `${d}/f`);
    const before = statSync(`${d}/f`, { bigint: true });
    await new Promise((r) => setTimeout(r, 20)); // let the coarse kernel clock tick
    writeFileSync(`${d}/f`, 'REAL CONTENT');
    utimesSync(`${d}/f`, 1_700_000_000, 1_700_000_000);
    const after = statSync(`${d}/f`, { bigint: true });
    expect([after.mtimeNs, after.size, after.ino]).toEqual([before.mtimeNs, before.size, before.ino]);
    expect(after.ctimeNs).not.toBe(before.ctimeNs);
    s = await openHashState(`${d}/state`);
    expect((await s.hashPath(`${d}/f`)).hash).toBe(sha('REAL CONTENT'));
    expect(s.stats).toMatchObject({ hits: 0, reads: 1 });
  });

  it('a file replaced by another inode (rename over) is re-read', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'aaaa');
    forgeState(`${d}/state`, `${d}/f`);
    writeFileSync(`${d}/g`, 'bbbb');
    const st = statSync(`${d}/f`);
    utimesSync(`${d}/g`, st.atime, st.mtime);
    renameSync(`${d}/g`, `${d}/f`);
    const s = await openHashState(`${d}/state`);
    expect((await s.hashPath(`${d}/f`)).hash).toBe(sha('bbbb'));
  });

  it('memoises old files, and re-reads files written within the racy window', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'x');
    const racy = await openHashState(`${d}/s1`, { racyWindowMs: 60_000 });
    await racy.hashPath(`${d}/f`);
    await racy.hashPath(`${d}/f`);
    expect(racy.stats).toMatchObject({ hits: 0, reads: 2 });
    expect(racy.size).toBe(0);

    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them

    const s = await openHashState(`${d}/s2`, { racyWindowMs: 0 });
    await s.hashPath(`${d}/f`);
    await s.hashPath(`${d}/f`);
    expect(s.stats).toMatchObject({ hits: 1, reads: 1 });
  });

  it('missing paths hash as missing; special files are an error naming them', async () => {
    const d = tempDir();
    const s = await openHashState(`${d}/state`);
    expect(await s.hashPath(`${d}/nope`)).toEqual({ kind: 'missing', hash: null, size: 0, files: 0 });
    expect(await s.hashPath(`${d}/nope/deeper`)).toMatchObject({ kind: 'missing' });
    mkdirSync(`${d}/dir`);
    mkfifoOrSkip(`${d}/dir/fifo`);
    await expect(s.hashPath(`${d}/dir`)).rejects.toThrow(CacheError);
    await expect(s.hashPath(`${d}/dir`)).rejects.toThrow(/dir\/fifo is not a regular file/);
  });
});

function mkfifoOrSkip(p: string): void {
  execFileSync('mkfifo', [p]);
}

describe('directory hash (Merkle manifest)', () => {
  function make(root: string, files: Array<[string, string]>): void {
    for (const [rel, content] of files) {
      mkdirSync(`${root}/${rel}`.replace(/\/[^/]*$/, ''), { recursive: true });
      writeFileSync(`${root}/${rel}`, content);
    }
  }
  const FILES: Array<[string, string]> = [
    ['b.txt', 'bee'],
    ['a/z.bin', 'zed'],
    ['a/y/deep.txt', 'deep'],
    ['c', ''],
  ];

  it('is the sha256 of the documented manifest, and stable under creation order', async () => {
    const d = tempDir();
    make(`${d}/one`, FILES);
    make(`${d}/two`, [...FILES].reverse());
    const s = await openHashState(`${d}/state`);
    const one = await s.hashPath(`${d}/one`);
    const two = await s.hashPath(`${d}/two`);
    expect(one).toEqual(two);
    const manifest = [...FILES]
      .sort((x, y) => (x[0] < y[0] ? -1 : 1))
      .map(([rel, c]) => [rel, sha(c), Buffer.byteLength(c)]);
    expect(one).toEqual({ kind: 'dir', hash: sha(canonicalJson(manifest)), size: 10, files: 4 });
  });

  it('changes on rename, content edit, added file, removed file; not on an empty subdirectory', async () => {
    const d = tempDir();
    make(`${d}/t`, FILES);
    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const seen = new Set<string>();
    const h = async (): Promise<string> => (await s.hashPath(`${d}/t`)).hash!;
    seen.add(await h());
    renameSync(`${d}/t/b.txt`, `${d}/t/B.txt`);
    seen.add(await h());
    writeFileSync(`${d}/t/a/z.bin`, 'ZED');
    seen.add(await h());
    writeFileSync(`${d}/t/new`, '');
    seen.add(await h());
    rmSync(`${d}/t/a/y/deep.txt`);
    seen.add(await h());
    expect(seen.size).toBe(5);
    const last = await h();
    mkdirSync(`${d}/t/empty`);
    expect(await h()).toBe(last);
  });

  it('follows symlinks; rejects broken links and link cycles with a clear error', async () => {
    const d = tempDir();
    make(`${d}/real`, FILES);
    mkdirSync(`${d}/linked`);
    symlinkSync(`${d}/real/b.txt`, `${d}/linked/b.txt`);
    symlinkSync(`${d}/real/a`, `${d}/linked/a`);
    writeFileSync(`${d}/linked/c`, '');
    const s = await openHashState(`${d}/state`);
    expect((await s.hashPath(`${d}/linked`)).hash).toBe((await s.hashPath(`${d}/real`)).hash);

    symlinkSync(`${d}/nowhere`, `${d}/real/dangling`);
    await expect(s.hashPath(`${d}/real`)).rejects.toThrow(/real\/dangling is a broken symbolic link/);
    rmSync(`${d}/real/dangling`);
    symlinkSync(`${d}/real`, `${d}/real/a/loop`);
    await expect(s.hashPath(`${d}/real`)).rejects.toMatchObject({ code: 'symlink-cycle' });
  });

  it('a trailing slash or doubled slash names the same directory and the same memo entries', async () => {
    const d = tempDir();
    make(`${d}/t`, FILES);
    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const plain = await s.hashPath(`${d}/t`);
    expect(await s.hashPath(`${d}/t/`)).toEqual(plain);
    expect(await s.hashPath(`${d}//t/./`)).toEqual(plain);
    expect(s.stats).toMatchObject({ reads: 4, hits: 8 });
    expect(s.size).toBe(4);
  });

  it('a file name that is not valid UTF-8 is an error, not silently skipped', async () => {
    const d = tempDir();
    mkdirSync(`${d}/t`);
    writeFileSync(`${d}/t/ok`, 'ok');
    writeFileSync(Buffer.from(`${d}/t/bad-\xff-name`, 'latin1'), 'x');
    const s = await openHashState(`${d}/state`);
    await expect(s.hashPath(`${d}/t`)).rejects.toMatchObject({ code: 'not-found' });
    await expect(s.hashPath(`${d}/t`)).rejects.toThrow(/not valid UTF-8/);
  });

  it('files after a subdirectory (a, b/, c) stay memoised: a directory is pruned only once all its files are seen', async () => {
    const d = tempDir();
    make(`${d}/t`, [['a', '1'], ['b/x', '2'], ['c', '3'], ['b/y/z', '4'], ['b/zz', '5']]);
    await settle();
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    await s.hashPath(`${d}/t`);
    await s.hashPath(`${d}/t`);
    await s.hashPath(`${d}/t`);
    expect(s.stats).toMatchObject({ reads: 5, hits: 10 });
    expect(s.size).toBe(5);
  });

  it('a second hash of an unchanged tree reads nothing', async () => {
    const d = tempDir();
    make(`${d}/t`, FILES);
    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const first = await s.hashPath(`${d}/t`);
    expect(s.stats.reads).toBe(4);
    expect(await s.hashPath(`${d}/t`)).toEqual(first);
    expect(s.stats).toMatchObject({ reads: 4, hits: 4 });
  });
});

describe('persistence', () => {
  it('round-trips through flush/open, including odd path characters, and rewrites only when dirty', async () => {
    const d = tempDir();
    const odd = `${d}/we\tird\\na\nme`;
    writeFileSync(odd, 'odd');
    writeFileSync(`${d}/plain`, 'plain');
    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    await s.hashPath(odd);
    await s.hashPath(`${d}/plain`);
    await s.flush();
    const text = readFileSync(`${d}/state`, 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(4); // header + directory + 2 entries, one line each

    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them

    const again = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    expect(again.size).toBe(2);
    expect((await again.hashPath(odd)).hash).toBe(sha('odd'));
    expect((await again.hashPath(`${d}/plain`)).hash).toBe(sha('plain'));
    expect(again.stats).toMatchObject({ hits: 2, reads: 0 });

    const mtime = statSync(`${d}/state`).mtimeMs;
    const ino = statSync(`${d}/state`).ino;
    await again.flush(); // nothing changed: no rewrite
    expect(statSync(`${d}/state`).ino).toBe(ino);
    expect(statSync(`${d}/state`).mtimeMs).toBe(mtime);
  });

  it('walking a directory prunes memo entries of deleted files and subdirectories', async () => {
    const d = tempDir();
    mkdirSync(`${d}/t/sub`, { recursive: true });
    for (const f of ['a', 'b', 'sub/c', 'sub/d']) writeFileSync(`${d}/t/${f}`, f);
    await settle(); // racyWindowMs 0 memoises files older than the hash start: let the clock pass them
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    await s.hashPath(`${d}/t`);
    expect(s.size).toBe(4);
    rmSync(`${d}/t/a`);
    await s.hashPath(`${d}/t`);
    expect(s.size).toBe(3);
    rmSync(`${d}/t/sub`, { recursive: true });
    await s.hashPath(`${d}/t`);
    expect(s.size).toBe(1);
    await s.flush();
    expect(readFileSync(`${d}/state`, 'utf8')).not.toContain('/sub');
    rmSync(`${d}/t/b`);
    expect(await s.hashPath(`${d}/t/b`)).toMatchObject({ kind: 'missing' });
    expect(s.size).toBe(0);
  });

  it('two processes flushing one state file keep each other\'s entries', async () => {
    const d = tempDir();
    mkdirSync(`${d}/a`);
    mkdirSync(`${d}/b`);
    writeFileSync(`${d}/a/x`, 'a');
    writeFileSync(`${d}/b/y`, 'b');
    await settle();
    const one = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const two = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    await one.hashPath(`${d}/a`);
    await two.hashPath(`${d}/b`);
    await one.flush();
    await two.flush(); // would overwrite one's entries without the merge
    const three = await openHashState(`${d}/state`);
    expect(three.size).toBe(2);
    await three.hashPath(`${d}/a/x`);
    await three.hashPath(`${d}/b/y`);
    expect(three.stats).toMatchObject({ hits: 2, reads: 0 });
  });

  it('a damaged or foreign state file is an empty memo, not an error', async () => {
    const d = tempDir();
    writeFileSync(`${d}/state`, 'something else\n');
    expect((await openHashState(`${d}/state`)).size).toBe(0);
    writeFileSync(`${d}/state`, `pipe-hashstate\t2\n/d\nx\t1\t2\t3\t4\t5\t${'a'.repeat(64)}\ntorn\t1\t2\t3\t4\t5\tab`);
    expect((await openHashState(`${d}/state`)).size).toBe(1);
  });
});
