// "Trust nothing at rest": objects are verified before they are served, damaged ones are evicted, objects never
// widen the permissions of their source, and links inside directory outputs are stored as links (issues 10, 11).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asHash, CacheError, manifestJson, openHashState, openStore, outPathKey, sameOutPath, type ManifestEntry } from '../../cache/index.js';
import { listObjects, settle, tempDir } from './helpers.js';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');


describe('hard-linked restores cannot corrupt the cache', () => {
  it('a restored link is read-only; an in-place edit of it is found at the next restore, evicted, and reported', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'the result');
    const state = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const store = openStore(`${d}/cache`, { state });
    const out = await store.put(`${d}/f`, 'f');
    await settle();
    await store.restore(out, `${d}/ws/f`, ['hardlink']);
    const obj = store.objectPath(out.hash);
    expect(statSync(`${d}/ws/f`).ino).toBe(statSync(obj).ino);
    expect(statSync(`${d}/ws/f`).mode & 0o222).toBe(0); // read-only, like the object
    // A second restore of the untouched object is vouched for by the memo (its link moved only the ctime).
    await store.restore(out, `${d}/ws/g`, ['hardlink']);
    expect(state.peek(obj, statSync(obj, { bigint: true }))).toBe(out.hash);

    // An in-place edit (root ignores the mode; anyone else chmods first), same size: the object IS the file.
    chmodSync(`${d}/ws/f`, 0o644);
    writeFileSync(`${d}/ws/f`, 'THE RESULT');
    await expect(store.restore(out, `${d}/ws/h`, ['hardlink'])).rejects.toMatchObject({ code: 'corrupt-object' });
    expect(existsSync(obj)).toBe(false); // evicted: the next run of the stage stores a good one
    expect(existsSync(`${d}/ws/h`)).toBe(false);
    expect(await store.has(out)).toBe(false);
  });

  it('a flipped byte in an object is never served by reflink or hardlink either', async () => {
    for (const modes of [['reflink', 'copy'], ['hardlink'], ['copy']] as const) {
      const d = tempDir();
      writeFileSync(`${d}/f`, 'good bytes');
      const state = await openHashState(`${d}/state`, { racyWindowMs: 0 });
      const store = openStore(`${d}/cache`, { state });
      const out = await store.put(`${d}/f`, 'f');
      await settle();
      await store.restore(out, `${d}/first`, [...modes]); // verified once, memoised
      const obj = store.objectPath(out.hash);
      const bytes = readFileSync(obj);
      bytes[3] ^= 1;
      chmodSync(obj, 0o644);
      writeFileSync(obj, bytes);
      chmodSync(obj, 0o444);
      await expect(store.restore(out, `${d}/second`, [...modes]), modes.join()).rejects.toMatchObject({ code: 'corrupt-object' });
      expect(existsSync(`${d}/second`)).toBe(false);
      expect(existsSync(obj)).toBe(false);
    }
  });

  it('a large (streamed) object is verified the same way', async () => {
    const d = tempDir();
    writeFileSync(`${d}/big`, Buffer.alloc(5 * 1024 * 1024, 9));
    const store = openStore(`${d}/cache`, { state: await openHashState(`${d}/state`, { racyWindowMs: 0 }) });
    const out = await store.put(`${d}/big`, 'big');
    const obj = store.objectPath(out.hash);
    chmodSync(obj, 0o644);
    const b = readFileSync(obj);
    b[4_500_000] ^= 4;
    writeFileSync(obj, b);
    await expect(store.restore(out, `${d}/dest`, ['hardlink', 'copy'])).rejects.toMatchObject({ code: 'corrupt-object' });
    expect(existsSync(obj)).toBe(false);
  });
});

describe('the memo of verified objects', () => {
  it('copy restores add nothing to it; hard-linked ones do, and gc\'s pruning forgets deleted objects', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'bytes');
    const state = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const store = openStore(`${d}/cache`, { state });
    const out = await store.put(`${d}/f`, 'f');
    await settle();
    const before = state.size;
    await store.restore(out, `${d}/copy`, ['copy']);
    expect(state.size).toBe(before);
    await store.restore(out, `${d}/link`, ['hardlink']);
    expect(state.size).toBe(before + 1);
    expect(state.pruneMissing(`${d}/cache/objects`)).toBe(0);
    rmSync(store.objectPath(out.hash));
    expect(state.pruneMissing(`${d}/cache/objects`)).toBe(1);
    expect(state.size).toBe(before);
  });
});

describe('malformed objects', () => {
  it('an object replaced by a directory is evicted, not an EISDIR for every later run', async () => {
    const d = tempDir();
    mkdirSync(`${d}/out`);
    writeFileSync(`${d}/out/a`, 'a');
    writeFileSync(`${d}/f`, 'f');
    const store = openStore(`${d}/cache`);
    const dir = await store.put(`${d}/out`, 'out');
    const file = await store.put(`${d}/f`, 'f');
    for (const o of [dir, file]) {
      const obj = store.objectPath(o.hash);
      rmSync(obj);
      mkdirSync(`${obj}/inside`, { recursive: true });
    }
    expect(await store.has(dir)).toBe(false);
    expect(await store.has(file)).toBe(false);
    await expect(store.readManifest(dir.hash)).rejects.toMatchObject({ code: 'corrupt-object' });
    expect(existsSync(store.objectPath(dir.hash))).toBe(false);
    await expect(store.restore(file, `${d}/dest`, ['hardlink', 'copy'])).rejects.toBeInstanceOf(CacheError);
    expect(existsSync(store.objectPath(file.hash))).toBe(false);
    // Stored again, a proper object takes the place.
    mkdirSync(store.objectPath(file.hash)); // (once more, in the way of a put)
    await store.put(`${d}/f`, 'f');
    expect(statSync(store.objectPath(file.hash)).isFile()).toBe(true);
    await store.restore(file, `${d}/dest`, ['copy']);
    expect(readFileSync(`${d}/dest`, 'utf8')).toBe('f');
  });

  it('a record naming a sound file object as a directory is refused without evicting the object', async () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'not a manifest');
    const store = openStore(`${d}/cache`);
    const file = await store.put(`${d}/f`, 'f');
    await expect(store.restore({ ...file, kind: 'dir', path: 'd/' }, `${d}/dest`, ['copy'])).rejects.toMatchObject({ code: 'bad-manifest' });
    expect(existsSync(store.objectPath(file.hash))).toBe(true);
    expect(existsSync(`${d}/dest`)).toBe(false);
  });
});

describe('object permissions', () => {
  it('an object keeps only the read bits of its source; a restored copy never becomes more readable', async () => {
    const d = tempDir();
    writeFileSync(`${d}/secret`, 'token', { mode: 0o600 });
    chmodSync(`${d}/secret`, 0o600);
    writeFileSync(`${d}/group`, 'shared', { mode: 0o640 });
    chmodSync(`${d}/group`, 0o640);
    writeFileSync(`${d}/public`, 'hello');
    chmodSync(`${d}/public`, 0o644);
    const store = openStore(`${d}/cache`);
    const s = await store.put(`${d}/secret`, 'secret');
    const g = await store.put(`${d}/group`, 'group');
    const p = await store.put(`${d}/public`, 'public');
    expect(statSync(store.objectPath(s.hash)).mode & 0o777).toBe(0o400);
    expect(statSync(store.objectPath(g.hash)).mode & 0o777).toBe(0o440);
    expect(statSync(store.objectPath(p.hash)).mode & 0o777).toBe(0o444);
    await store.restore(s, `${d}/back`, ['copy']);
    expect(statSync(`${d}/back`).mode & 0o777).toBe(0o600);
    // The same bytes stored again from a less readable file narrow the existing object.
    writeFileSync(`${d}/also-secret`, 'hello', { mode: 0o600 });
    chmodSync(`${d}/also-secret`, 0o600);
    await store.put(`${d}/also-secret`, 'also-secret');
    expect(statSync(store.objectPath(p.hash)).mode & 0o777).toBe(0o400);
    // A directory's manifest and files alike.
    mkdirSync(`${d}/private`, { mode: 0o700 });
    chmodSync(`${d}/private`, 0o700);
    writeFileSync(`${d}/private/k`, 'key material', { mode: 0o600 });
    chmodSync(`${d}/private/k`, 0o600);
    const dir = await store.put(`${d}/private`, 'private');
    expect(statSync(store.objectPath(dir.hash)).mode & 0o777).toBe(0o400);
    expect(statSync(store.objectPath(asHash(sha('key material')))).mode & 0o777).toBe(0o400);
  });
});

describe('symlinks inside a directory output', () => {
  it('are stored and restored as links, never followed; the hash counts the link, equal to the memo\'s keep-mode hash', async () => {
    const d = tempDir();
    mkdirSync(`${d}/ws/out/v2`, { recursive: true });
    writeFileSync(`${d}/ws/out/v2/model.bin`, 'weights');
    symlinkSync('v2', `${d}/ws/out/latest`); // a link to a folder inside the output
    symlinkSync('v2/model.bin', `${d}/ws/out/model.bin`);
    writeFileSync(`${d}/ws/data.txt`, 'input');
    symlinkSync('../data.txt', `${d}/ws/out/input.txt`); // inside the workspace, outside the output
    const state = await openHashState(`${d}/state`);
    const store = openStore(`${d}/cache`, { workspace: `${d}/ws`, state });
    const out = await store.put(`${d}/ws/out`, 'out/');
    const manifest = await store.readManifest(out.hash);
    expect(manifest).toEqual([
      ['input.txt', '../data.txt'],
      ['latest', 'v2'],
      ['model.bin', 'v2/model.bin'],
      ['v2/model.bin', sha('weights'), 7],
    ] satisfies ManifestEntry[]);
    expect(out).toMatchObject({ kind: 'dir', files: 1, size: 7, hash: sha(manifestJson(manifest)) });
    expect(listObjects(`${d}/cache`).map((o) => readFileSync(o, 'utf8'))).not.toContain('input'); // the target was not copied
    expect((await state.hashPath(`${d}/ws/out`, { links: 'keep' })).hash).toBe(out.hash);
    // Dependencies still follow links (what a stage reads): a different hash.
    expect((await state.hashPath(`${d}/ws/out`)).hash).not.toBe(out.hash);

    rmSync(`${d}/ws/out`, { recursive: true });
    await store.restore(out, `${d}/ws/out`, ['copy']);
    expect(readlinkSync(`${d}/ws/out/latest`)).toBe('v2');
    expect(readlinkSync(`${d}/ws/out/input.txt`)).toBe('../data.txt');
    expect(lstatSync(`${d}/ws/out/v2/model.bin`).isFile()).toBe(true);
    expect(readFileSync(`${d}/ws/out/latest/model.bin`, 'utf8')).toBe('weights');
  });

  it('a link leaving the workspace is refused with its path named, and nothing of its target is stored', async () => {
    const d = tempDir();
    mkdirSync(`${d}/elsewhere`);
    writeFileSync(`${d}/elsewhere/shadow`, 'root:secret-hash', { mode: 0o600 });
    mkdirSync(`${d}/ws/out/sub`, { recursive: true });
    writeFileSync(`${d}/ws/out/ok.txt`, 'fine');
    symlinkSync(`${d}/elsewhere/shadow`, `${d}/ws/out/sub/s`);
    const store = openStore(`${d}/cache`, { workspace: `${d}/ws` });
    await expect(store.put(`${d}/ws/out`, 'out/')).rejects.toMatchObject({ code: 'link-outside', message: expect.stringMatching(/^out\/sub\/s is a symbolic link to .*elsewhere\/shadow, which is outside the workspace/) });
    // Relative escapes and escapes through another link are refused too.
    rmSync(`${d}/ws/out/sub/s`);
    symlinkSync('../../../elsewhere/shadow', `${d}/ws/out/sub/s`);
    await expect(store.put(`${d}/ws/out`, 'out/')).rejects.toMatchObject({ code: 'link-outside' });
    rmSync(`${d}/ws/out/sub/s`);
    symlinkSync(`${d}/elsewhere`, `${d}/ws/portal`); // a link in the workspace (not in the output) to outside
    symlinkSync('../../portal/shadow', `${d}/ws/out/sub/s`);
    await expect(store.put(`${d}/ws/out`, 'out/')).rejects.toMatchObject({ code: 'link-outside' });
    expect(listObjects(`${d}/cache`).map((o) => readFileSync(o, 'utf8'))).not.toContain('root:secret-hash');

    // A manifest in a shared store whose link would leave the workspace it is restored into (crafted, or written by
    // a foreign tool) is refused before anything is written.
    const evil = manifestJson([['a.txt', '/etc/passwd'], ['b', '../../../../x']]);
    const h = sha(evil);
    mkdirSync(`${d}/cache/objects/${h.slice(0, 2)}`, { recursive: true });
    writeFileSync(`${d}/cache/objects/${h.slice(0, 2)}/${h.slice(2)}`, evil);
    const out = { path: 'out/', kind: 'dir' as const, hash: asHash(h), size: 0, files: 0 };
    await expect(store.restore(out, `${d}/ws/out/sub/restored`, ['copy'])).rejects.toMatchObject({ code: 'link-outside' });
    expect(existsSync(`${d}/ws/out/sub/restored`)).toBe(false);
  });
});

describe('output paths', () => {
  it('`dir` and `dir/` are one output', () => {
    expect(outPathKey('out/d/')).toBe('out/d');
    expect(outPathKey('./out//d')).toBe('out/d');
    expect(sameOutPath('out/d', 'out/d/')).toBe(true);
    expect(sameOutPath('out/d', 'out/dd')).toBe(false);
  });

  it('put returns the path as declared', async () => {
    const d = tempDir();
    mkdirSync(`${d}/o`);
    writeFileSync(`${d}/o/x`, 'x');
    const store = openStore(`${d}/cache`);
    expect((await store.put(`${d}/o`, 'o')).path).toBe('o');
    expect((await store.put(`${d}/o/`, 'o/')).path).toBe('o/');
  });
});
