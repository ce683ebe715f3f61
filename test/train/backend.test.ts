// tfjs backend selection: best available first, PIPE_TF_BACKEND forces one, unusable choices fail with one clear
// sentence naming what is usable; the train stage turns that into a StageError.
import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError, candidateBackends, selectBackend, unavailableReason } from '../../stages/lib/tf/backend.js';
import { manifest } from '../../stages/train/classifier/manifest.js';
import { run, type TrainWith } from '../../stages/train/classifier/run.js';
import { makeContext } from './fixtures.js';

afterEach(() => {
  delete process.env['PIPE_TF_BACKEND'];
});

describe('selectBackend', () => {
  it('PIPE_TF_BACKEND=cpu forces the cpu backend', async () => {
    process.env['PIPE_TF_BACKEND'] = 'cpu';
    const c = await selectBackend();
    expect(c.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(c.detail).toMatch(/forced by PIPE_TF_BACKEND/);
  });

  it('without a choice picks the first usable backend in the order node-gpu, node, webgpu, wasm, cpu', async () => {
    const c = await selectBackend(undefined);
    expect(c.name).toBe(candidateBackends()[0]);
    if (unavailableReason('node') !== undefined) {
      // This machine (no libtensorflow): wasm, and the log line says why the better ones were not used.
      expect(c.name).toBe('wasm');
      expect(c.detail).toMatch(/not used: node-gpu: @tensorflow\/tfjs-node-gpu is not installed; node: @tensorflow\/tfjs-node is not installed/);
    }
    expect(tf.getBackend()).toBe(c.tfName);
  });

  it('an unavailable backend is an error naming the usable ones', async () => {
    const missing = (['node-gpu', 'node', 'webgpu'] as const).find((n) => unavailableReason(n) !== undefined);
    expect(missing).toBeDefined();
    const err = await selectBackend(missing).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toMatch(new RegExp(`PIPE_TF_BACKEND=${missing} asks for the ${missing} backend, but .*; usable here: .*cpu\\.`));
  });

  it('an unknown name is an error listing the known ones', async () => {
    await expect(selectBackend('cuda')).rejects.toThrow(/PIPE_TF_BACKEND=cuda is not a tfjs backend pipe knows; use one of node-gpu, node, webgpu, wasm, cpu/);
  });

  it('the train stage reports an unusable PIPE_TF_BACKEND as a StageError before touching its inputs', async () => {
    process.env['PIPE_TF_BACKEND'] = 'cuda';
    const w = Object.fromEntries(Object.entries(manifest.with).filter(([, f]) => f.default !== undefined).map(([k, f]) => [k, f.default]));
    const ctx = makeContext('/nonexistent', 'train@x', { ...w, shards: 'none/', model: 'm/', metrics: 'm.json' } as TrainWith);
    const err = await run(ctx).then(() => undefined, (e: unknown) => e);
    expect((err as Error).name).toBe('StageError');
    expect((err as Error).message).toMatch(/^stage train@x: PIPE_TF_BACKEND=cuda is not a tfjs backend/);
  });
});
