// train/classifier end to end through its run(ctx): a 2-epoch training on a small synthetic shard set whose loss
// decreases, with checkpoints, metrics JSON, learning curve and the backend recorded; plus clear input errors.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { manifest } from '../../stages/train/classifier/manifest.js';
import { run, type TrainWith } from '../../stages/train/classifier/run.js';
import { makeContext, makeShardSet, tempWorkspace, writeText } from './fixtures.js';

function withDefaults(over: Partial<TrainWith>): TrainWith {
  const d: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(manifest.with)) if (f.default !== undefined) d[k] = f.default;
  return { ...d, ...over } as TrainWith;
}

let ws: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  process.env['PIPE_TF_BACKEND'] = 'wasm';
  ws = await tempWorkspace();
  await makeShardSet(join(ws.dir, 'shards'), { n: 240, size: 32, seed: 1 });
});
afterAll(async () => {
  delete process.env['PIPE_TF_BACKEND'];
  await ws.cleanup();
});

describe('train/classifier', () => {
  it('trains 2 epochs with decreasing loss and writes best/last checkpoints, metrics and a learning curve', async () => {
    const ctx = makeContext(ws.dir, 'train@phantom', withDefaults({
      shards: 'shards/', model: 'out/model/', metrics: 'out/metrics.json', curve: 'out/learning_curve.vl.json',
      epochs: 2, batch_size: 16, lr: 0.003, arch: 'tiny_cnn', image_size: 32, seed: 7,
    }));
    await run(ctx);
    const metrics = JSON.parse(await readFile(join(ws.dir, 'out/metrics.json'), 'utf8'));
    expect(metrics.epochs).toHaveLength(2);
    const [e1, e2] = metrics.epochs;
    expect(e2.train_loss).toBeLessThan(e1.train_loss);
    expect(e2.val_loss).toBeLessThan(e1.val_loss);
    expect(metrics.backend).toBe('wasm');
    expect(ctx.records['backend']).toBe('wasm');
    expect(ctx.logs.some((l) => l.includes('tfjs backend wasm'))).toBe(true);
    expect(ctx.progressCalls).toBeGreaterThan(0);
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

  it('is reproducible: the same seed gives the same metrics on the same backend', async () => {
    const go = async (out: string): Promise<unknown> => {
      await run(makeContext(ws.dir, 't', withDefaults({
        shards: 'shards/', model: `${out}/model/`, metrics: `${out}/m.json`, epochs: 1, batch_size: 16, arch: 'tiny_cnn',
        image_size: 32, seed: 3,
      })));
      return JSON.parse(await readFile(join(ws.dir, `${out}/m.json`), 'utf8')).epochs.map((e: Record<string, number>) => [e['train_loss'], e['val_loss']]);
    };
    expect(await go('r1')).toEqual(await go('r2'));
  });

  it('joins a separate splits CSV on image_id and names a missing split clearly', async () => {
    const lines = ['image_id,split', ...Array.from({ length: 240 }, (_, i) => `img${String(i).padStart(4, '0')},${i % 5 === 0 ? 'calib' : 'train'}`)];
    await writeText(join(ws.dir, 'splits.csv'), lines.join('\n') + '\n');
    const ctx = makeContext(ws.dir, 'train@x', withDefaults({
      shards: 'shards/', splits: 'splits.csv', model: 'o/model/', metrics: 'o/m.json', epochs: 1, arch: 'tiny_cnn', image_size: 32,
    }));
    const err = await run(ctx).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StageError);
    expect((err as Error).message).toMatch(/no validation images: no row of splits\.csv has split "val"/);
  });

  it('rejects bad with: values and a splits CSV without the id column in one clear paragraph', async () => {
    const bad = makeContext(ws.dir, 'train@x', withDefaults({ shards: 'shards/', model: 'o/', metrics: 'o/m.json', epochs: 0 }));
    await expect(run(bad)).rejects.toThrow(/stage train@x: with\.epochs must be an integer ≥ 1, got 0/);
    await writeText(join(ws.dir, 'nosplit.csv'), 'id,split\na,train\n');
    const ctx = makeContext(ws.dir, 'train@y', withDefaults({ shards: 'shards/', splits: 'nosplit.csv', model: 'o/', metrics: 'o/m.json' }));
    await expect(run(ctx)).rejects.toThrow(/splits CSV nosplit\.csv has no "image_id" column \(line 1 has: id, split\)/);
  });

  it('stops promptly when cancelled and says so', async () => {
    const ctx = makeContext(ws.dir, 'train@c', withDefaults({
      shards: 'shards/', model: 'c/model/', metrics: 'c/m.json', epochs: 3, arch: 'tiny_cnn', image_size: 32,
    }));
    const abort = new AbortController();
    abort.abort();
    await expect(run({ ...ctx, signal: abort.signal })).rejects.toThrow(/stage train@c: training cancelled/);
    expect(existsSync(join(ws.dir, 'c/m.json'))).toBe(false);
  });

  it('resizes shards to image_size when they differ (model input and infer follow the model)', async () => {
    const ctx = makeContext(ws.dir, 'train@r', withDefaults({
      shards: 'shards/', model: 'rs/model/', metrics: 'rs/m.json', epochs: 1, arch: 'tiny_cnn', image_size: 24,
    }));
    await run(ctx);
    const json = JSON.parse(await readFile(join(ws.dir, 'rs/model/best/model.json'), 'utf8'));
    expect(json.userDefinedMetadata.imageSize).toBe(24);
    expect(JSON.stringify(json.modelTopology)).toContain('[null,24,24,1]');
  });
});
