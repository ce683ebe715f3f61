// Tiny learnable imaging data for the train/infer tests: a shard set (S4's format, written with its writer) of
// phantom-like images whose label is visible — positives have a large bright "heart" disc, negatives a small one.
// (The StageContext and the workspace come from test/support/.)
import { writeFile } from 'node:fs/promises';
import { writeShards, type ShardRow } from '../../stages/lib/shards.js';
import { Rng } from '../../stages/lib/tf/rng.js';

export function discImage(size: number, radius: number, rng: Rng): Uint8Array {
  const px = new Uint8Array(size * size);
  const c = (size - 1) / 2 + (rng.next() - 0.5) * 3;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inside = (x - c) ** 2 + (y - c) ** 2 < radius * radius;
      px[y * size + x] = Math.max(0, Math.min(255, (inside ? 200 : 60) + rng.normal() * 20));
    }
  }
  return px;
}

/** Rows like the VinDr-style metadata (image_id, dset, Has Finding, Cardiomegaly, age_years) with a split column. */
export async function makeShardSet(
  dir: string,
  opts: { n: number; size: number; seed: number; positiveShare?: number; splits?: Array<[string, number]> },
): Promise<ShardRow[]> {
  const rng = new Rng(opts.seed);
  const rows: ShardRow[] = [];
  const images: Uint8Array[] = [];
  const plan = opts.splits ?? [['train', 0.6], ['val', 0.2], ['test_healthy_adult', 0.2]];
  for (let i = 0; i < opts.n; i++) {
    const pos = rng.next() < (opts.positiveShare ?? 0.3);
    let u = rng.next();
    let split = plan[plan.length - 1]![0];
    for (const [name, share] of plan) {
      if (u < share) {
        split = name;
        break;
      }
      u -= share;
    }
    rows.push({
      dset: 'phantom',
      split,
      image_id: `img${String(i).padStart(4, '0')}`,
      patient_id: `p${i}`,
      age_years: String(20 + (i % 60)),
      'Has Finding': pos ? '1' : '0',
      Cardiomegaly: pos ? '1' : '0',
    });
    images.push(discImage(opts.size, opts.size * (pos ? 0.33 : 0.18), rng));
  }
  await writeShards(dir, { width: opts.size, height: opts.size }, rows, images);
  return rows;
}

export async function writeText(path: string, text: string): Promise<void> {
  await writeFile(path, text);
}
