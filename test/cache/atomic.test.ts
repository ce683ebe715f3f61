// The one atomic write (cache/atomic.ts): the cache, the engine and every kind write whole files through it
// (kinds through engine/stage-api.ts and stages/lib/atomic-write.ts, which also stages whole folders).
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createExclusive, createExclusiveSync, tempName, writeFileAtomic, writeFileAtomicSync } from '../../cache/atomic.js';
import * as stageApi from '../../engine/stage-api.js';
import * as stageLib from '../../stages/lib/atomic-write.js';
import { tempDir } from './helpers.js';

/** Chunks that fail after the first: an error in the middle of a write (as ENOSPC would be). */
function* failing(): Generator<string> {
  yield 'first part, ';
  throw new Error('disk full (simulated)');
}

describe('writeFileAtomic / writeFileAtomicSync', () => {
  for (const [name, write] of [
    ['async', writeFileAtomic],
    ['sync', async (...a: Parameters<typeof writeFileAtomicSync>) => writeFileAtomicSync(...a)],
  ] as const) {
    it(`${name}: replaces a file whole, creating folders; chunks are written in order; nothing left beside it`, async () => {
      const d = tempDir();
      const file = join(d, 'a/b/out.txt');
      await write(file, 'old');
      await write(file, ['new ', Buffer.from('bytes'), ' and text']);
      expect(readFileSync(file, 'utf8')).toBe('new bytes and text');
      await write(file, new Uint8Array([104, 105]), { fsync: true });
      expect(readFileSync(file, 'utf8')).toBe('hi');
      expect(readdirSync(join(d, 'a/b'))).toEqual(['out.txt']);
    });

    it(`${name}: an error mid-write leaves the old file and no temp file`, async () => {
      const d = tempDir();
      const file = join(d, 'out.txt');
      await write(file, 'old');
      await expect(write(file, failing())).rejects.toThrow(/disk full/);
      expect(readFileSync(file, 'utf8')).toBe('old');
      expect(readdirSync(d)).toEqual(['out.txt']);
      // A target that cannot be replaced (a folder): the rename fails, the temp file goes.
      mkdirSync(join(d, 'dir'));
      await expect(write(join(d, 'dir'), 'x')).rejects.toThrow(/EISDIR|EEXIST|ENOTEMPTY|EPERM/);
      expect(readdirSync(d).sort()).toEqual(['dir', 'out.txt']);
    });

    it(`${name}: a link at the target is replaced, never written through`, async () => {
      const d = tempDir();
      writeFileSync(join(d, 'outside.txt'), 'untouched');
      symlinkSync(join(d, 'outside.txt'), join(d, 'out.txt'));
      await write(join(d, 'out.txt'), 'mine');
      expect(lstatSync(join(d, 'out.txt')).isFile()).toBe(true);
      expect(readFileSync(join(d, 'outside.txt'), 'utf8')).toBe('untouched');
    });
  }

  it('mode: the permission bits of the new file (before the umask)', async () => {
    const d = tempDir();
    await writeFileAtomic(join(d, 'x'), 'x', { mode: 0o600 });
    expect(statSync(join(d, 'x')).mode & 0o777).toBe(0o600);
  });

  it('tempName: beside the target, tagged, with this pid, never the same twice', () => {
    const a = tempName('/w/out.txt', 'pipe-restore');
    expect(a).toMatch(new RegExp(`^/w/out\\.txt\\.pipe-restore-${process.pid}-[0-9a-f]{12}$`));
    expect(tempName('/w/out.txt')).not.toBe(tempName('/w/out.txt'));
  });
});

describe('createExclusive', () => {
  it('creates once: the second call (even with other bytes) is false and changes nothing; no temp left', async () => {
    const d = tempDir();
    const file = join(d, 'sub/id.json');
    expect(await createExclusive(file, 'first', { fsync: true })).toBe(true);
    expect(await createExclusive(file, 'second')).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('first');
    expect(readdirSync(join(d, 'sub'))).toEqual(['id.json']);
  });

  it('ten racing creators: exactly one wins', async () => {
    const d = tempDir();
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => createExclusive(join(d, 'x'), `w${i}`)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(readFileSync(join(d, 'x'), 'utf8')).toBe(`w${wins.indexOf(true)}`);
  });
});

describe('kinds write through the same implementation', () => {
  it('engine/stage-api.ts and stages/lib/atomic-write.ts hand kinds the cache’s functions, not copies', () => {
    expect(stageApi.writeFileAtomic).toBe(writeFileAtomic);
    expect(stageLib.writeFileAtomic).toBe(writeFileAtomic);
    expect(stageLib.writeFileAtomicSync).toBe(writeFileAtomicSync);
    expect(stageLib.tempName).toBe(tempName);
  });

  it('writeDirAtomic: the folder is replaced whole; on an error the old one stays and no staging folder is left', async () => {
    const d = tempDir();
    const dir = join(d, 'out/set');
    await stageLib.writeDirAtomic(dir, async (staging) => {
      expect(staging.startsWith(join(d, 'out/.set.tmp-'))).toBe(true);
      writeFileSync(join(staging, 'a.txt'), 'A');
    });
    expect(readdirSync(join(d, 'out'))).toEqual(['set']);
    await expect(
      stageLib.writeDirAtomic(dir, async (staging) => {
        writeFileSync(join(staging, 'b.txt'), 'B');
        throw new Error('cancelled half-way');
      }),
    ).rejects.toThrow(/half-way/);
    expect(readdirSync(join(d, 'out'))).toEqual(['set']);
    expect(readdirSync(dir)).toEqual(['a.txt']);
    const n = await stageLib.writeDirAtomic(dir, async (staging) => {
      symlinkSync('a.txt', join(staging, 'link'));
      writeFileSync(join(staging, 'a.txt'), 'new');
      return 2;
    });
    expect(n).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'link']);
    expect(readlinkSync(join(dir, 'link'))).toBe('a.txt');
  });
});

describe('synchronous small-file writes (run records, history markers)', () => {
  it('writeFileAtomicSync makes missing folders, replaces whole, and leaves no temp file', () => {
    const d = tempDir();
    writeFileAtomicSync(`${d}/a/b/rec.json`, 'one');
    writeFileAtomicSync(`${d}/a/b/rec.json`, 'two');
    expect(readFileSync(`${d}/a/b/rec.json`, 'utf8')).toBe('two');
    expect(readdirSync(`${d}/a/b`)).toEqual(['rec.json']);
  });

  it('createExclusiveSync: the first writer wins, later ones are told so and change nothing', () => {
    const d = tempDir();
    expect(createExclusiveSync(`${d}/x/rec.json`, 'first')).toBe(true);
    expect(createExclusiveSync(`${d}/x/rec.json`, 'second')).toBe(false);
    expect(readFileSync(`${d}/x/rec.json`, 'utf8')).toBe('first');
    expect(readdirSync(`${d}/x`)).toEqual(['rec.json']);
  });

  it('temp names never repeat in a process (a counter, not a random draw per call)', () => {
    const d = tempDir();
    const names = new Set(Array.from({ length: 10_000 }, () => tempName(`${d}/f`)));
    expect(names.size).toBe(10_000);
  });
});
