// infer end to end: a model trained by train/classifier → predictions.csv in the authors' format, read back with the
// evaluate stages' own parser; save → load round trip gives identical predictions.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPredictions } from '../../stages/evaluate/lib/predictions.js';
import { manifest as inferManifest } from '../../stages/infer/manifest.js';
import { run as infer, type InferWith } from '../../stages/infer/run.js';
import { openShards, writeShards } from '../../stages/lib/shards.js';
import { selectBackend } from '../../stages/lib/tf/backend.js';
import { loadModel, saveModel } from '../../stages/lib/tf/model-io.js';
import { buildModel } from '../../stages/lib/tf/models.js';
import { Rng } from '../../stages/lib/tf/rng.js';
import { manifest as trainManifest } from '../../stages/train/classifier/manifest.js';
import { run as train, type TrainWith } from '../../stages/train/classifier/run.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';
import { discImage, makeShardSet } from './fixtures.js';

function defaults(m: { with: Record<string, { default?: unknown }> }): Record<string, unknown> {
  return Object.fromEntries(Object.entries(m.with).filter(([, f]) => f.default !== undefined).map(([k, f]) => [k, f.default]));
}
const inferWith = (o: Partial<InferWith>): InferWith => ({ ...defaults(inferManifest), backend: 'wasm', ...o }) as InferWith;

let ws: Ws;
beforeAll(async () => {
  ws = workspace({}, 'pipe-train-');
  await makeShardSet(join(ws.dir, 'adult'), { n: 160, size: 32, seed: 5 });
  // A VinDr-PCXR-like set: no age_years (raw "age" strings), Cardiomegaly −1 everywhere, one split "test".
  const rng = new Rng(9);
  const rows = Array.from({ length: 12 }, (_, i) => ({
    image_id: `c${i}`, dset: 'vindr_pcxr', split: 'test', age: i % 2 ? '010M' : '003Y', 'Has Finding': '0', Cardiomegaly: '-1',
  }));
  await writeShards(join(ws.dir, 'kids'), { width: 32, height: 32 }, rows, rows.map(() => discImage(32, 9, rng)));
  await train(fakeContext(ws.dir, { ...defaults(trainManifest), shards: 'adult/', model: 'm/', metrics: 'm.json',
    epochs: 2, batch_size: 16, lr: 0.003, arch: 'tiny_cnn', image_size: 32, seed: 2, backend: 'wasm' } as TrainWith, { stage: 'train' }));
});
afterAll(async () => {
  await ws.cleanup();
});

describe('infer', () => {
  it("writes the authors' predictions.csv: metadata columns, then pred, prob, out, loss, class_probs at 4 dp", async () => {
    const out = 'inf/exp_cardiomegaly-phantom-mixup-imb_sampler/phantom/test_healthy_adult/best/predictions.csv';
    const ctx = fakeContext(ws.dir, inferWith({ model: 'm/', shards: 'adult/', split: 'test_healthy_adult', out }), { stage: 'infer' });
    await infer(ctx);
    const text = await readFile(join(ws.dir, out), 'utf8');
    const records = parse(text, { columns: true }) as Record<string, string>[];
    const header = text.split('\n')[0]!.split(',');
    expect(header).toEqual(['dset', 'split', 'image_id', 'patient_id', 'age_years', 'Has Finding', 'Cardiomegaly', 'pred', 'prob', 'out', 'loss', 'class_probs']);
    expect(records.length).toBeGreaterThan(10);
    expect(records.every((r) => r['split'] === 'test_healthy_adult')).toBe(true);
    for (const r of records) {
      for (const c of ['prob', 'out', 'loss']) expect(r[c]).toMatch(/^-?\d+\.\d{1,4}$/);
      expect(r['class_probs']).toMatch(/^\[\d\.\d{1,4}, \d\.\d{1,4}\]$/);
      const [p0, p1] = JSON.parse(r['class_probs']!) as [number, number];
      expect(Math.abs(p0 + p1 - 1)).toBeLessThanOrEqual(2e-4);
      expect(Number(r['pred'])).toBe(p1 > p0 ? 1 : 0);
      expect(Number(r['prob'])).toBe(Math.max(p0, p1));
      const label = Number(r['Cardiomegaly']);
      expect(Number(r['loss'])).toBeCloseTo(-Math.log(label === 1 ? p1 : p0), 2);
    }
    // The evaluate stages' own reader takes it as-is.
    const p = loadPredictions(join(ws.dir, out), out);
    expect(p.n).toBe(records.length);
    expect(p.split).toBe('test_healthy_adult');
    expect(Array.from(p.pPos)).toEqual(records.map((r) => JSON.parse(r['class_probs']!)[1]));
    expect(ctx.records['backend']).toBe('wasm');
  });

  it('omits the loss column for an unlabelled (pediatric, label −1) set and keeps the raw age strings', async () => {
    const out = 'inf/kids/test/best/predictions.csv';
    await infer(fakeContext(ws.dir, inferWith({ model: 'm/', shards: 'kids/', split: 'test', out }), { stage: 'infer@kids' }));
    const text = await readFile(join(ws.dir, out), 'utf8');
    expect(text.split('\n')[0]).toBe('image_id,dset,split,age,Has Finding,Cardiomegaly,pred,prob,out,class_probs');
    const p = loadPredictions(join(ws.dir, out), out);
    expect(p.n).toBe(12);
    expect(p.ageRaw?.slice(0, 2)).toEqual(['003Y', '010M']);
    expect(Array.from(p.cardiomegaly).every((v) => v === -1)).toBe(true);
  });

  it('adds a −1 label column when the rows have none, and names a missing split clearly', async () => {
    const rng = new Rng(1);
    const rows = [{ image_id: 'a', split: 'test', age: '005Y', 'Has Finding': '0' }];
    await writeShards(join(ws.dir, 'nolabel'), { width: 32, height: 32 }, rows, [discImage(32, 9, rng)]);
    await infer(fakeContext(ws.dir, inferWith({ model: 'm/', shards: 'nolabel/', out: 'nl.csv' }), { stage: 'i' }));
    expect((await readFile(join(ws.dir, 'nl.csv'), 'utf8')).split('\n')[0]).toBe('image_id,split,age,Has Finding,Cardiomegaly,pred,prob,out,class_probs');
    const ctx = fakeContext(ws.dir, inferWith({ model: 'm/', shards: 'adult/', split: 'nope', out: 'x.csv' }), { stage: 'infer@x' });
    await expect(infer(ctx)).rejects.toThrow(/stage infer@x: no rows of adult\/ have split "nope"/);
    const bad = fakeContext(ws.dir, inferWith({ model: 'missing/', shards: 'adult/', out: 'x.csv' }), { stage: 'infer@y' });
    await expect(infer(bad)).rejects.toThrow(/stage infer@y: cannot read the model .*missing\/model\.json/);
  });

  it('writes the same predictions.csv bytes with 1 or 2 worker threads, and records the worker count and timing', async () => {
    const go = async (out: string, cpus: number): Promise<string> => {
      const ctx = fakeContext(ws.dir, inferWith({ model: 'm/', shards: 'adult/', out, batch_size: 16 }), { stage: 'infer' });
      await infer({ ...ctx, resources: { ...ctx.resources, cpus } });
      expect(ctx.execution['workers']).toBe(Math.min(cpus, availableParallelism()));
      expect(ctx.execution['infer_img_per_s']).toBeGreaterThan(0);
      return readFile(join(ws.dir, out), 'utf8');
    };
    const one = await go('same/p1.csv', 1);
    expect(one.split('\n').length).toBe(162); // header + 160 rows + final newline
    expect(await go('same/p2.csv', 2)).toBe(one);
  });

  it('save → load round trip gives identical predictions', async () => {
    await selectBackend('wasm');
    const model = buildModel('tiny_cnn', 32, 11);
    const set = await openShards(join(ws.dir, 'adult'));
    const px = await set.readBatch([0, 1, 2, 3, 4, 5, 6, 7]);
    await set.close();
    const x = tf.tensor4d(Float32Array.from(px, (v) => v / 255), [8, 32, 32, 1]);
    const before = (model.predict(x) as tf.Tensor).dataSync();
    await saveModel(model, join(ws.dir, 'rt'), { arch: 'tiny_cnn', imageSize: 32, mean: 0.5, std: 0.25, labelColumn: 'Cardiomegaly', classes: ['n', 'p'] });
    const { model: again, metadata } = await loadModel(join(ws.dir, 'rt'));
    const after = (again.predict(x) as tf.Tensor).dataSync();
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(metadata).toMatchObject({ arch: 'tiny_cnn', imageSize: 32, mean: 0.5, std: 0.25 });
    expect(again.countParams()).toBe(model.countParams());
  });
});
