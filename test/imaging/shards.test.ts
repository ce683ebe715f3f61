import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryShards, openShards, writeShards, type ShardRow } from '../../stages/lib/shards.js';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shards-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function image(w: number, h: number, seed: number): Uint8Array {
  const px = new Uint8Array(w * h);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7 + seed * 31) % 256;
  return px;
}

describe('shards', () => {
  it('round-trips pixels and rows across several shard files, with exact mean/std', async () => {
    const dir = join(await tmp(), 'set');
    const w = 5;
    const h = 3;
    const n = 11;
    const rows: ShardRow[] = Array.from({ length: n }, (_, i) => ({
      image_id: `img${i}`,
      patient_id: `p${i}`,
      age: i % 2 ? '045Y' : '010M',
      note: i === 3 ? 'has, comma "quoted"' : '',
    }));
    const imgs = rows.map((_, i) => image(w, h, i));
    async function* lazy() {
      for (const px of imgs) yield px;
    }
    const index = await writeShards(dir, { width: w, height: h, maxShardBytes: 4 * w * h + 3 }, rows, lazy());
    expect(index.count).toBe(n);
    expect(index.shards.map((s) => s.count)).toEqual([4, 4, 3]);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(['index.json', 'rows.csv', 'shard-00000.bin', 'shard-00001.bin', 'shard-00002.bin']);
    expect((await stat(join(dir, 'shard-00002.bin'))).size).toBe(3 * w * h);
    // No temp directory left behind next to the set.
    expect(await readdir(join(dir, '..'))).toEqual(['set']);

    let s = 0;
    let s2 = 0;
    for (const px of imgs) for (const v of px) (s += v / 255), (s2 += (v / 255) ** 2);
    const N = n * w * h;
    expect(index.mean).toBeCloseTo(s / N, 12);
    expect(index.std).toBeCloseTo(Math.sqrt(s2 / N - (s / N) ** 2), 10);

    const set = await openShards(dir);
    expect(set.rows).toEqual(rows);
    expect(set.index.columns).toEqual(['image_id', 'patient_id', 'age', 'note']);
    const batch = await set.readBatch([10, 0, 5, 5]);
    expect(Array.from(batch.subarray(0, w * h))).toEqual(Array.from(imgs[10]!));
    expect(Array.from(batch.subarray(w * h, 2 * w * h))).toEqual(Array.from(imgs[0]!));
    expect(Array.from(batch.subarray(3 * w * h))).toEqual(Array.from(imgs[5]!));
    await expect(set.readBatch([11])).rejects.toThrow(/out of range/);
    await set.close();

    const mem = memoryShards({ width: w, height: h }, rows, imgs);
    expect(mem.index.mean).toBeCloseTo(index.mean, 14);
    expect(mem.index.std).toBeCloseTo(index.std, 14);
    expect(await mem.readBatch([10, 0, 5, 5])).toEqual(batch);
  });

  it('rejects a wrong image size and a row/image count mismatch, leaving nothing behind', async () => {
    const root = await tmp();
    const dir = join(root, 'bad');
    await expect(writeShards(dir, { width: 2, height: 2 }, [{ a: '1' }], [new Uint8Array(3)])).rejects.toThrow(
      /3 bytes, expected 2×2 = 4/,
    );
    await expect(writeShards(dir, { width: 2, height: 2 }, [{ a: '1' }, { a: '2' }], [new Uint8Array(4)])).rejects.toThrow(
      /2 rows but 1 images/,
    );
    expect(await readdir(root)).toEqual([]);
  });

  it('replaces an existing set atomically and detects a truncated shard', async () => {
    const dir = join(await tmp(), 'set');
    await writeShards(dir, { width: 2, height: 2 }, [{ a: '1' }, { a: '2' }], [new Uint8Array(4), new Uint8Array(4).fill(9)]);
    await writeShards(dir, { width: 2, height: 2 }, [{ a: '3' }], [new Uint8Array(4).fill(255)]);
    const set = await openShards(dir);
    expect(set.rows).toEqual([{ a: '3' }]);
    expect(set.index.mean).toBe(1);
    expect(set.index.std).toBe(0);
    await set.close();
    const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(idx).toMatchObject({ version: 1, channels: 1, dtype: 'uint8', count: 1, width: 2, height: 2 });
    await truncate(join(dir, 'shard-00000.bin'), 2);
    const broken = await openShards(dir);
    await expect(broken.readBatch([0])).rejects.toThrow(/truncated/);
    await broken.close();
  });

  it('refuses an index.json whose shard file names leave the set directory (a hostile input never reads elsewhere)', async () => {
    const dir = join(await tmp(), 'set');
    await writeShards(dir, { width: 2, height: 2 }, [{ a: '1' }], [new Uint8Array(4).fill(5)]);
    const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    for (const file of ['../../../etc/passwd', '/etc/passwd', 'sub/shard-00000.bin', 'rows.csv']) {
      await writeFile(join(dir, 'index.json'), JSON.stringify({ ...idx, shards: [{ file, count: 1 }] }));
      await expect(openShards(dir)).rejects.toThrow(`index.json: not a shard index (shard file ${JSON.stringify(file)} is not a shard-NNNNN.bin name)`);
    }
    await writeFile(join(dir, 'index.json'), JSON.stringify({ ...idx, shards: [{ file: 'shard-00000.bin', count: -1 }], count: -1 }));
    await expect(openShards(dir)).rejects.toThrow(/shard shard-00000\.bin has count -1/);
  });
});
