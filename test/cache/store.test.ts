import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asHash, CacheError, openHashState, openStore, pidAlive, type RestoreMode } from '../../cache/index.js';
import { listObjects, runChild, startChild, tempDir } from './helpers.js';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

function makeTree(root: string): void {
  mkdirSync(`${root}/sub/deeper`, { recursive: true });
  writeFileSync(`${root}/a.txt`, 'alpha');
  writeFileSync(`${root}/sub/b.txt`, 'beta');
  writeFileSync(`${root}/sub/deeper/c.bin`, Buffer.alloc(5 * 1024 * 1024, 7)); // streamed path (> 4 MiB)
  writeFileSync(`${root}/dup.txt`, 'alpha'); // same content: one object
}


describe('Store.put / has', () => {
  it('stores a file as a read-only object named by its sha256, idempotently', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'content');
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/f`, 'f');
    expect(out).toEqual({ path: 'f', kind: 'file', hash: sha('content'), size: 7, files: 1 });
    const obj = `${d}/cache/objects/${out.hash.slice(0, 2)}/${out.hash.slice(2)}`;
    expect(store.objectPath(out.hash)).toBe(obj);
    expect(readFileSync(obj, 'utf8')).toBe('content');
    expect(statSync(obj).mode & 0o777).toBe(0o444);
    const ino = statSync(obj).ino;
    await store.put(`${d}/f`, 'f');
    expect(statSync(obj).ino).toBe(ino); // existing object not rewritten
    expect(await store.has(out)).toBe(true);
    expect(readdirSync(`${d}/cache/tmp`)).toEqual([]);
  });

  it('stores a directory as file objects plus its manifest under the directory hash', async () => {
    const d = tempDir();
    makeTree(`${d}/out`);
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/out`, 'out');
    const state = await openHashState(`${d}/state`);
    expect(out).toMatchObject({ path: 'out', kind: 'dir', // the declared path, unchanged (outPathKey compares)
      hash: (await state.hashPath(`${d}/out`)).hash, files: 4 });
    expect(listObjects(`${d}/cache`)).toHaveLength(4); // alpha (twice), beta, c.bin, manifest
    expect((await store.readManifest(out.hash)).map((e) => e[0])).toEqual(['a.txt', 'dup.txt', 'sub/b.txt', 'sub/deeper/c.bin']);
    expect(await store.has(out)).toBe(true);
    // has() is false when any file object is gone
    rmSync(store.objectPath(asHash(sha('beta'))));
    expect(await store.has(out)).toBe(false);
  });

  it('a missing output is a CacheError naming it', async () => {
    const d = tempDir();
    await expect(openStore(`${d}/cache`).put(`${d}/nope`, 'models/x/')).rejects.toThrow(/declared output models\/x\/\) does not exist/);
  });

  it('with a HashState, a file whose memoised hash is already stored is not read again', async () => {
    const d = tempDir();
    mkdirSync(`${d}/out`);
    writeFileSync(`${d}/other`, 'other');
    writeFileSync(`${d}/out/f`, 'content');
    const store0 = openStore(`${d}/cache`);
    const other = await store0.put(`${d}/other`, 'other');
    // A memo claiming out/f (its identity right now) hashes to `other`: only a put that trusts the memo, and does
    // not read out/f, can answer other.hash.
    const st = statSync(`${d}/out/f`, { bigint: true });
    writeFileSync(`${d}/state`, `pipe-hashstate\t2\n${d}/out\nf\t${st.dev}\t${st.ino}\t${st.size}\t${st.mtimeNs}\t${st.ctimeNs}\t${other.hash}\n`);
    const state = await openHashState(`${d}/state`);
    const store = openStore(`${d}/cache`, { state });
    expect((await store.put(`${d}/out/f`, 'out/f')).hash).toBe(other.hash);
    const dir = await store.put(`${d}/out`, 'out');
    expect((await store.readManifest(dir.hash))[0]![1]).toBe(other.hash);
    // Without the memo the file is read and stored under its real hash.
    expect((await store0.put(`${d}/out/f`, 'out/f')).hash).toBe(sha('content'));
    expect(state.stats.reads).toBe(0);
  });
});

const RESTORE_MODES: RestoreMode[][] = [['reflink', 'copy'], ['hardlink', 'copy'], ['copy']];

describe('Store.restore', () => {
  for (const modes of RESTORE_MODES) {
    it(`restores files and directories with [${modes.join(', ')}]`, async () => {
      const d = tempDir();
      makeTree(`${d}/src`);
      const store = openStore(`${d}/cache`);
      const dir = await store.put(`${d}/src`, 'src');
      const file = await store.put(`${d}/src/a.txt`, 'src/a.txt');
      // over an existing, different directory and file
      mkdirSync(`${d}/ws/dest/stale`, { recursive: true });
      writeFileSync(`${d}/ws/dest/stale/old`, 'old');
      writeFileSync(`${d}/ws/file.txt`, 'old file');
      await store.restore(dir, `${d}/ws/dest`, [...modes]);
      await store.restore(file, `${d}/ws/file.txt`, [...modes]);
      const state = await openHashState(`${d}/state`);
      expect((await state.hashPath(`${d}/ws/dest`)).hash).toBe(dir.hash);
      expect(existsSync(`${d}/ws/dest/stale`)).toBe(false);
      expect(readFileSync(`${d}/ws/file.txt`, 'utf8')).toBe('alpha');
      expect(readdirSync(`${d}/ws`).sort()).toEqual(['dest', 'file.txt']); // no temp leftovers

      const restored = `${d}/ws/dest/sub/b.txt`;
      const obj = store.objectPath(asHash(sha('beta')));
      const shared = statSync(restored).ino === statSync(obj).ino;
      if (modes[0] === 'hardlink') {
        expect(shared).toBe(true);
        expect(statSync(restored).mode & 0o777).toBe(0o444);
      } else {
        expect(shared).toBe(false);
        // editing the restored file leaves the store intact
        writeFileSync(restored, 'edited');
        expect(readFileSync(obj, 'utf8')).toBe('beta');
        expect(await store.has(dir)).toBe(true);
        expect(sha(readFileSync(obj))).toBe(sha('beta'));
      }
    });
  }

  it('a file restores over a directory and a directory over a file', async () => {
    const d = tempDir();
    makeTree(`${d}/src`);
    const store = openStore(`${d}/cache`);
    const dir = await store.put(`${d}/src`, 'src');
    const file = await store.put(`${d}/src/a.txt`, 'src/a.txt');
    mkdirSync(`${d}/was-dir/x`, { recursive: true });
    writeFileSync(`${d}/was-file`, 'f');
    await store.restore(file, `${d}/was-dir`, ['copy']);
    await store.restore(dir, `${d}/was-file`, ['copy']);
    expect(readFileSync(`${d}/was-dir`, 'utf8')).toBe('alpha');
    expect(readFileSync(`${d}/was-file/sub/b.txt`, 'utf8')).toBe('beta');
    expect(readdirSync(d).sort()).toEqual(['cache', 'src', 'was-dir', 'was-file']);
  });

  it('a restore cleans up staging leftovers of crashed restores, not those of live processes', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'x');
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/f`, 'f');
    const dead = 4_000_000 + Math.floor(Math.random() * 100_000); // above the default pid_max: never alive
    expect(pidAlive(dead)).toBe(false);
    mkdirSync(`${d}/ws/out.pipe-restore-${dead}-0123456789ab/sub`, { recursive: true });
    writeFileSync(`${d}/ws/out.pipe-old-${dead}-0123456789ab`, 'old');
    mkdirSync(`${d}/ws/out.pipe-restore-${process.pid}-0123456789ab`); // ours: in progress
    writeFileSync(`${d}/ws/other.pipe-restore-${dead}-0123456789ab`, 'not a sibling of out');
    await store.restore(out, `${d}/ws/out`, ['copy']);
    expect(readdirSync(`${d}/ws`).sort()).toEqual(
      ['out', `out.pipe-restore-${process.pid}-0123456789ab`, `other.pipe-restore-${dead}-0123456789ab`].sort(),
    );
  });

  it('reflink alone either clones (own inode) or says no mode worked', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'x');
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/f`, 'f');
    try {
      await store.restore(out, `${d}/g`, ['reflink']);
      expect(statSync(`${d}/g`).ino).not.toBe(statSync(store.objectPath(out.hash)).ino);
      expect(readFileSync(`${d}/g`, 'utf8')).toBe('x');
    } catch (e) {
      expect(e).toBeInstanceOf(CacheError);
      expect(String(e)).toMatch(/none of the restore modes \[reflink\]/);
      expect(existsSync(`${d}/g`)).toBe(false);
    }
  });

  it('a corrupt object is detected on copy, deleted, and the destination left untouched', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'good bytes');
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/f`, 'f');
    const obj = store.objectPath(out.hash);
    chmodSync(obj, 0o644);
    writeFileSync(obj, 'evil bytes');
    writeFileSync(`${d}/dest`, 'previous');
    await expect(store.restore(out, `${d}/dest`, ['copy'])).rejects.toMatchObject({ code: 'corrupt-object' });
    expect(existsSync(obj)).toBe(false);
    expect(readFileSync(`${d}/dest`, 'utf8')).toBe('previous');
    expect(readdirSync(d).sort()).toEqual(['cache', 'dest', 'f']);
    expect(await store.has(out)).toBe(false);
    await expect(store.restore(out, `${d}/dest`, ['copy'])).rejects.toMatchObject({ code: 'missing-object' });
  });

  it('a corrupt large (streamed) object inside a directory is detected and the old destination kept', async () => {
    const d = tempDir();
    makeTree(`${d}/src`);
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/src`, 'src');
    const big = (await store.readManifest(out.hash)).find((e) => e[0] === 'sub/deeper/c.bin')!;
    const obj = store.objectPath(big[1]);
    chmodSync(obj, 0o644);
    const bytes = readFileSync(obj);
    bytes[4_000_000] ^= 1; // one flipped bit, same size
    writeFileSync(obj, bytes);
    mkdirSync(`${d}/dest`);
    writeFileSync(`${d}/dest/keep`, 'old');
    await expect(store.restore(out, `${d}/dest`, ['copy'])).rejects.toMatchObject({ code: 'corrupt-object' });
    expect(existsSync(obj)).toBe(false);
    expect(readdirSync(`${d}/dest`)).toEqual(['keep']);
    expect(readdirSync(d).sort()).toEqual(['cache', 'dest', 'src']);
  });

  it('a corrupt directory manifest is detected', async () => {
    const d = tempDir();
    makeTree(`${d}/src`);
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/src`, 'src');
    chmodSync(store.objectPath(out.hash), 0o644);
    writeFileSync(store.objectPath(out.hash), '[]');
    await expect(store.restore(out, `${d}/dest`, ['copy'])).rejects.toMatchObject({ code: 'corrupt-object' });
    expect(existsSync(`${d}/dest`)).toBe(false);
    expect(await store.has(out)).toBe(false); // the corrupt manifest was deleted
  });

  it('readObject returns verified bytes and refuses a corrupt object', async () => {
    const d = tempDir();
    writeFileSync(`${d}/m.json`, '{"auc":0.9}');
    const store = openStore(`${d}/cache`);
    const out = await store.put(`${d}/m.json`, 'm.json');
    expect((await store.readObject(out.hash)).toString()).toBe('{"auc":0.9}');
    chmodSync(store.objectPath(out.hash), 0o644);
    writeFileSync(store.objectPath(out.hash), '{"auc":1.0}');
    await expect(store.readObject(out.hash)).rejects.toMatchObject({ code: 'corrupt-object' });
    await expect(store.readObject(out.hash)).rejects.toMatchObject({ code: 'missing-object' });
  });
});

describe('executable files (docs/cache.md "File modes")', () => {
  const RUN = '#!/bin/sh\necho hi\n';
  const file = (path: string, bytes: string | Buffer, mode: number): void => {
    writeFileSync(path, bytes);
    chmodSync(path, mode);
  };
  /** An execute bit wherever the file is readable (0755, 0700, or what the umask left of them). */
  const executable = (path: string): void => {
    const m = statSync(path).mode & 0o777;
    expect(m & 0o111, path).not.toBe(0);
    expect(m & 0o111, path).toBe((m & 0o444) >> 2);
  };

  for (const modes of [...RESTORE_MODES, ['hardlink']] as RestoreMode[][]) {
    it(`put records which files were executable; restore with [${modes.join(', ')}] gives them the bit as their own files, and objects stay read-only`, async () => {
      const d = tempDir();
      mkdirSync(`${d}/src/bin`, { recursive: true });
      file(`${d}/src/bin/run.sh`, RUN, 0o755);
      file(`${d}/src/bin/big`, Buffer.alloc(5 * 1024 * 1024, 3), 0o755); // streamed path (> 4 MiB)
      file(`${d}/src/bin/own`, 'mine', 0o700);
      file(`${d}/src/data.txt`, RUN, 0o644); // the same bytes as run.sh, one object: not executable here
      file(`${d}/tool.sh`, 'tool', 0o755);
      file(`${d}/plain`, 'plain', 0o644);
      const store = openStore(`${d}/cache`);
      const dir = await store.put(`${d}/src`, 'src');
      const tool = await store.put(`${d}/tool.sh`, 'tool.sh');
      expect(dir.executables).toEqual(['bin/big', 'bin/own', 'bin/run.sh']);
      expect(tool.executable).toBe(true);
      // Without the bit: exactly what earlier versions returned, no new field.
      expect(await store.put(`${d}/plain`, 'plain')).toEqual({ path: 'plain', kind: 'file', hash: sha('plain'), size: 5, files: 1 });
      for (const o of listObjects(`${d}/cache`)) expect(statSync(o).mode & 0o333, o).toBe(0); // objects: read bits only

      await store.restore(dir, `${d}/ws/src`, [...modes]);
      await store.restore(tool, `${d}/ws/tool.sh`, [...modes]);
      for (const [rel, bytes] of [['src/bin/run.sh', RUN], ['src/bin/big', Buffer.alloc(5 * 1024 * 1024, 3)], ['src/bin/own', 'mine'], ['tool.sh', 'tool']] as const) {
        const restored = `${d}/ws/${rel}`;
        executable(restored);
        expect(statSync(restored).ino, rel).not.toBe(statSync(store.objectPath(asHash(sha(bytes)))).ino); // never a link to the object
      }
      expect(statSync(`${d}/ws/src/bin/own`).mode & 0o077).toBe(0); // never more than the stage's 0700 gave
      expect(statSync(`${d}/ws/src/data.txt`).mode & 0o111).toBe(0);
      const runObj = store.objectPath(asHash(sha(RUN)));
      expect(statSync(runObj).mode & 0o777).toBe(0o444); // the shared object's mode is untouched
      if (modes[0] === 'hardlink') expect(statSync(`${d}/ws/src/data.txt`).ino).toBe(statSync(runObj).ino); // the rest is still linked
      // What the restore left is what put saw: hashed as an output, the same hash and the same executable files.
      const state = await openHashState(`${d}/state`);
      const now = await state.hashPath(`${d}/ws/src`, { links: 'keep' });
      expect({ hash: now.hash, executables: now.executables }).toEqual({ hash: dir.hash, executables: dir.executables });
      expect((await state.hashPath(`${d}/ws/tool.sh`, { links: 'keep' })).executable).toBe(true);
    });
  }

  it('a record naming paths its manifest does not list as files changes nothing there: only restored files get the bit', async () => {
    const d = tempDir();
    mkdirSync(`${d}/src/sub`, { recursive: true });
    file(`${d}/src/a.txt`, 'a', 0o644);
    file(`${d}/outside`, 'mine', 0o644);
    const store = openStore(`${d}/cache`, { workspace: d });
    const dir = await store.put(`${d}/src`, 'src');
    await store.restore({ ...dir, executables: ['../outside', 'a.txt', 'sub', 'nope'] }, `${d}/ws/src`, ['copy']);
    executable(`${d}/ws/src/a.txt`);
    expect(statSync(`${d}/outside`).mode & 0o777).toBe(0o644);
    expect(readdirSync(`${d}/ws/src`)).toEqual(['a.txt']);
  });
});

describe('concurrency', () => {
  it('two processes putting the same tree into one store at once both succeed, with whole objects', async () => {
    const d = tempDir();
    mkdirSync(`${d}/tree`);
    for (let i = 0; i < 300; i++) writeFileSync(`${d}/tree/f${i}`, `file ${i % 150}`.repeat(50));
    writeFileSync(`${d}/tree/big`, Buffer.alloc(6 * 1024 * 1024, 3));
    const body = `
      const store = cache.openStore(args.cache);
      for (let r = 0; r < 3; r++) {
        const out = await store.put(args.tree, 'tree');
        process.stdout.write(out.hash + '\\n');
      }`;
    const kids = [0, 1].map(() => startChild(d, body, { cache: `${d}/cache`, tree: `${d}/tree` }).done);
    const results = await Promise.all(kids);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const hashes = new Set(results.flatMap((r) => r.stdout.trim().split('\n')));
    expect(hashes.size).toBe(1);
    const objects = listObjects(`${d}/cache`);
    expect(objects).toHaveLength(150 + 1 + 1);
    for (const o of objects) expect(sha(readFileSync(o))).toBe(o.split('/').slice(-2).join(''));
    expect(readdirSync(`${d}/cache/tmp`)).toEqual([]);
  });

  it('a child can restore what another process stored', async () => {
    const d = tempDir();
    makeTree(`${d}/src`);
    const out = await openStore(`${d}/cache`).put(`${d}/src`, 'src');
    await runChild(d, `await cache.openStore(args.cache).restore(args.out, args.dest, ['copy']);`, {
      cache: `${d}/cache`,
      out,
      dest: `${d}/dest`,
    });
    expect(readFileSync(`${d}/dest/sub/b.txt`, 'utf8')).toBe('beta');
  });
});
