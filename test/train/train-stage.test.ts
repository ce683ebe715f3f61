// train/classifier end to end through its run(ctx): a 2-epoch training on a small synthetic shard set whose loss
// decreases, with checkpoints, metrics JSON, learning curve and the backend, workers and timings recorded (in the run
// record, never in the outputs: a retrain writes the same bytes); plus clear input errors.
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { manifest } from '../../stages/train/classifier/manifest.js';
import { run, type TrainWith } from '../../stages/train/classifier/run.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';
import { makeShardSet, writeText } from './fixtures.js';

function withDefaults(over: Partial<TrainWith>): TrainWith {
  const d: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(manifest.with)) if (f.default !== undefined) d[k] = f.default;
  return { ...d, backend: 'wasm', ...over } as TrainWith;
}

let ws: Ws;
beforeAll(async () => {
  ws = workspace({}, 'pipe-train-');
  await makeShardSet(join(ws.dir, 'shards'), { n: 240, size: 32, seed: 1 });
});
afterAll(async () => {
  await ws.cleanup();
});

describe('train/classifier', () => {
  it('trains 2 epochs with decreasing loss and writes best/last checkpoints, metrics and a learning curve', async () => {
    const ctx = fakeContext(ws.dir, withDefaults({
      shards: 'shards/', model: 'out/model/', metrics: 'out/metrics.json', curve: 'out/learning_curve.vl.json',
      epochs: 2, batch_size: 16, micro_batch: 8, lr: 0.003, arch: 'tiny_cnn', image_size: 32, seed: 7,
    }), { stage: 'train@phantom' });
    await run(ctx);
    const metrics = JSON.parse(await readFile(join(ws.dir, 'out/metrics.json'), 'utf8'));
    expect(metrics.epochs).toHaveLength(2);
    const [e1, e2] = metrics.epochs;
    expect(e2.train_loss).toBeLessThan(e1.train_loss);
    expect(e2.val_loss).toBeLessThan(e1.val_loss);
    expect(metrics.backend).toBe('wasm');
    expect(ctx.records['backend']).toBe('wasm');
    // Timings and the worker count are facts of this execution: in the run record, not in the metrics file, and not
    // in the provenance stages below see (ctx.record).
    expect(ctx.execution['workers']).toBe(Math.min(2, availableParallelism()));
    expect(ctx.execution['train_seconds']).toBeGreaterThan(0);
    expect(ctx.execution['train_img_per_s']).toBeGreaterThan(0);
    expect(Object.keys(ctx.records)).not.toEqual(expect.arrayContaining(['workers']));
    expect(JSON.stringify(ctx.records)).not.toMatch(/seconds|per_s|workers/);
    expect(JSON.stringify(metrics)).not.toMatch(/seconds|per_s/);
    expect(ctx.logs.some((l) => l.includes('tfjs backend wasm'))).toBe(true);
    expect(ctx.progressUpdates.length).toBeGreaterThan(0);
    for (const which of ['best', 'last']) {
      expect(existsSync(join(ws.dir, 'out/model', which, 'model.json'))).toBe(true);
      expect(existsSync(join(ws.dir, 'out/model', which, 'weights.bin'))).toBe(true);
    }
    const best = JSON.parse(await readFile(join(ws.dir, 'out/model/best/model.json'), 'utf8'));
    expect(best.userDefinedMetadata.epoch).toBe(metrics.best_epoch);
    expect(best.userDefinedMetadata.mean).toBeCloseTo(metrics.normalisation.mean, 10);
    const curve = JSON.parse(await readFile(join(ws.dir, 'out/learning_curve.vl.json'), 'utf8'));
    expect(curve.data.values).toHaveLength(2 * 5);
    expect(curve.$schema).toContain('vega-lite/v5');
  });

  it('a retrain with the same seed writes bit-identical files, whatever the number of cores it is given', async () => {
    const outs = ['model/best/model.json', 'model/best/weights.bin', 'model/last/model.json', 'model/last/weights.bin', 'm.json', 'curve.vl.json'];
    const go = async (out: string, cpus: number): Promise<string[]> => {
      const ctx = fakeContext(ws.dir, withDefaults({
        shards: 'shards/', model: `${out}/model/`, metrics: `${out}/m.json`, curve: `${out}/curve.vl.json`, epochs: 2,
        batch_size: 16, micro_batch: 4, arch: 'tiny_cnn', image_size: 32, seed: 3,
      }), { stage: 't' });
      await run({ ...ctx, resources: { ...ctx.resources, cpus } });
      expect(ctx.execution['workers']).toBe(Math.min(cpus, availableParallelism()));
      return Promise.all(outs.map(async (f) => (await readFile(join(ws.dir, out, f))).toString('base64')));
    };
    const one = await go('r1', 1);
    expect(await go('r2', 1)).toEqual(one);
    expect(await go('r3', 2)).toEqual(one);
  });

  it('joins a separate splits CSV on image_id and names a missing split clearly', async () => {
    const lines = ['image_id,split', ...Array.from({ length: 240 }, (_, i) => `img${String(i).padStart(4, '0')},${i % 5 === 0 ? 'calib' : 'train'}`)];
    await writeText(join(ws.dir, 'splits.csv'), lines.join('\n') + '\n');
    const ctx = fakeContext(ws.dir, withDefaults({
      shards: 'shards/', splits: 'splits.csv', model: 'o/model/', metrics: 'o/m.json', epochs: 1, arch: 'tiny_cnn', image_size: 32,
    }), { stage: 'train@x' });
    const err = await run(ctx).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StageError);
    expect((err as Error).message).toMatch(/no validation images: no row of splits\.csv has split "val"/);
  });

  it('rejects bad with: values and a splits CSV without the id column in one clear paragraph', async () => {
    const bad = fakeContext(ws.dir, withDefaults({ shards: 'shards/', model: 'o/', metrics: 'o/m.json', epochs: 0 }), { stage: 'train@x' });
    await expect(run(bad)).rejects.toThrow(/stage train@x: with\.epochs must be an integer ≥ 1, got 0/);
    await writeText(join(ws.dir, 'nosplit.csv'), 'id,split\na,train\n');
    const ctx = fakeContext(ws.dir, withDefaults({ shards: 'shards/', splits: 'nosplit.csv', model: 'o/', metrics: 'o/m.json' }), { stage: 'train@y' });
    await expect(run(ctx)).rejects.toThrow(/splits CSV nosplit\.csv has no "image_id" column \(line 1 has: id, split\)/);
  });

  it('stops promptly when cancelled and says so', async () => {
    const ctx = fakeContext(ws.dir, withDefaults({
      shards: 'shards/', model: 'c/model/', metrics: 'c/m.json', epochs: 3, arch: 'tiny_cnn', image_size: 32,
    }), { stage: 'train@c' });
    const abort = new AbortController();
    abort.abort();
    await expect(run({ ...ctx, signal: abort.signal })).rejects.toThrow(/stage train@c: training cancelled/);
    expect(existsSync(join(ws.dir, 'c/m.json'))).toBe(false);
  });

  it('cancelled mid-training: a clear error, no metrics written, and every worker thread gone', async () => {
    const threads = (): number => readdirSync('/proc/self/task').length;
    const before = threads();
    const abort = new AbortController();
    const ctx = fakeContext(ws.dir, withDefaults({
      shards: 'shards/', model: 'mid/model/', metrics: 'mid/m.json', epochs: 5, batch_size: 8, micro_batch: 4, arch: 'tiny_cnn', image_size: 32,
    }), { stage: 'train@mid' });
    const run$ = run({ ...ctx, signal: abort.signal, progress: () => abort.abort() });
    await expect(run$).rejects.toThrow(/^stage train@mid: training cancelled\.$/);
    expect(existsSync(join(ws.dir, 'mid/m.json'))).toBe(false);
    // Terminated threads leave the process shortly after terminate() resolves.
    for (let i = 0; i < 50 && threads() > before; i++) await new Promise((r) => setTimeout(r, 100));
    expect(threads()).toBeLessThanOrEqual(before);
  });

  it('resizes shards to image_size when they differ (model input and infer follow the model)', async () => {
    const ctx = fakeContext(ws.dir, withDefaults({
      shards: 'shards/', model: 'rs/model/', metrics: 'rs/m.json', epochs: 1, arch: 'tiny_cnn', image_size: 24,
    }), { stage: 'train@r' });
    await run(ctx);
    const json = JSON.parse(await readFile(join(ws.dir, 'rs/model/best/model.json'), 'utf8'));
    expect(json.userDefinedMetadata.imageSize).toBe(24);
    expect(JSON.stringify(json.modelTopology)).toContain('[null,24,24,1]');
  });
});
