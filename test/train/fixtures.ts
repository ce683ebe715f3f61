// Tiny learnable imaging data for the train/infer tests: a shard set (S4's format, written with its writer) of
// phantom-like images whose label is visible — positives have a large bright "heart" disc, negatives a small one —
// plus a ready-made StageContext that runs a kind's run(ctx) in a temp workspace.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { StageContext } from '../../engine/stage-api.js';
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

export interface TestContext<W> extends StageContext<W> {
  logs: string[];
  records: Record<string, unknown>;
  /** What the stage passed to recordExecution (timings, worker counts). */
  execution: Record<string, unknown>;
  progressCalls: number;
}

export function makeContext<W>(workspace: string, stage: string, w: W): TestContext<W> {
  const logs: string[] = [];
  const records: Record<string, unknown> = {};
  const execution: Record<string, unknown> = {};
  const ctx: TestContext<W> = {
    stage,
    workspace,
    with: w,
    params: {},
    key: 'test',
    depHashes: {},
    upstream: [],
    pipeline: { file: 'test.yaml', name: 'test', pipeVersion: '0' },
    resolve: (p: string) => resolve(workspace, p),
    tmpDir: join(workspace, '.tmp'),
    resources: { cpus: 2, memBytes: 4 * 1024 ** 3, gpus: 0, gpuIds: [] },
    signal: new AbortController().signal,
    log: (m: string) => void logs.push(m),
    progress: () => void ctx.progressCalls++,
    record: (info: Record<string, unknown>) => void Object.assign(records, info),
    recordExecution: (info: Record<string, unknown>) => void Object.assign(execution, info),
    logs,
    records,
    execution,
    progressCalls: 0,
  };
  return ctx;
}

export async function tempWorkspace(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pipe-train-'));
  await mkdir(join(dir, '.tmp'), { recursive: true });
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeText(path: string, text: string): Promise<void> {
  await writeFile(path, text);
}
