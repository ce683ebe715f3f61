// tfjs backend selection from the keyed with.backend setting (no environment variable reaches it): auto takes the
// best available, a named one is used or fails with one clear sentence naming what is usable; the stages turn that
// into a StageError naming the field, and record the backend actually used.
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { BackendUnavailableError, candidateBackends, selectBackend, unavailableReason, type BackendSetting } from '../../stages/lib/tf/backend.js';
import { manifest as inferManifest } from '../../stages/infer/manifest.js';
import { manifest } from '../../stages/train/classifier/manifest.js';
import { run, type TrainWith } from '../../stages/train/classifier/run.js';
import { fakeContext } from '../support/context.js';

describe('selectBackend', () => {
  it('backend cpu activates the cpu backend and says the setting chose it', async () => {
    const c = await selectBackend('cpu');
    expect(c.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(c.detail).toMatch(/with\.backend: cpu/);
  });

  it('auto picks the first usable backend in the order node-gpu, node, webgpu, wasm, cpu', async () => {
    const c = await selectBackend('auto');
    expect(c.name).toBe(candidateBackends()[0]);
    if (unavailableReason('node') !== undefined) {
      // This machine (no libtensorflow): wasm, and the log line says why the better ones were not used.
      expect(c.name).toBe('wasm');
      expect(c.detail).toMatch(/not used: node-gpu: @tensorflow\/tfjs-node-gpu is not installed; node: @tensorflow\/tfjs-node is not installed/);
    }
    expect(tf.getBackend()).toBe(c.tfName);
  });

  it('the environment variable of earlier versions no longer changes the choice', async () => {
    process.env['PIPE_TF_BACKEND'] = 'cpu';
    try {
      expect((await selectBackend('auto')).name).toBe(candidateBackends()[0]);
    } finally {
      delete process.env['PIPE_TF_BACKEND'];
    }
  });

  it('an unavailable backend is an error naming the usable ones', async () => {
    const missing = (['node-gpu', 'node', 'webgpu'] as const).find((n) => unavailableReason(n) !== undefined);
    expect(missing).toBeDefined();
    const err = await selectBackend(missing).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toMatch(new RegExp(`backend ${missing} is not usable here: .*; usable here: .*cpu\\.`));
  });

  it('an unknown name is an error listing the known ones', async () => {
    await expect(selectBackend('cuda' as BackendSetting)).rejects.toThrow(/backend "cuda" is not a tfjs backend pipe knows; use one of auto, node-gpu, node, webgpu, wasm, cpu/);
  });

  it('train/classifier and infer declare backend as a with: field (so it is keyed), default auto', () => {
    for (const m of [manifest, inferManifest]) {
      expect(m.with['backend']).toMatchObject({ type: 'enum', default: 'auto' });
      expect(m.with['backend']!.values).toEqual(['auto', 'node-gpu', 'node', 'webgpu', 'wasm', 'cpu']);
    }
  });

  it('the train stage reports an unusable with.backend as a StageError before touching its inputs', async () => {
    const missing = (['node-gpu', 'node', 'webgpu'] as const).find((n) => unavailableReason(n) !== undefined)!;
    const w = Object.fromEntries(Object.entries(manifest.with).filter(([, f]) => f.default !== undefined).map(([k, f]) => [k, f.default]));
    const ctx = fakeContext('/nonexistent', { ...w, backend: missing, shards: 'none/', model: 'm/', metrics: 'm.json' } as TrainWith, { stage: 'train@x' });
    const err = await run(ctx).then(() => undefined, (e: unknown) => e);
    expect((err as Error).name).toBe('StageError');
    expect((err as Error).message).toMatch(new RegExp(`^stage train@x: with\\.backend: backend ${missing} is not usable here`));
  });
});
