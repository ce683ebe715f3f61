import type { FieldSpec } from '../../../engine/stage-api.js';

/**
 * The `backend` with: field of the tfjs kinds (train/classifier, infer). Kept apart from backend.ts so manifests, which
 * the engine loads on every run, import nothing heavy.
 */
export const BACKEND_SETTINGS = ['auto', 'node-gpu', 'node', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendSetting = (typeof BACKEND_SETTINGS)[number];

export const BACKEND_FIELD: FieldSpec = {
  type: 'enum',
  values: BACKEND_SETTINGS,
  default: 'auto',
  description:
    'tfjs backend: auto (the best usable, in the order node-gpu, node, webgpu, wasm, cpu; depends on what the host has ' +
    'installed) or one of them. Part of the key, since backends differ in the last bits; the one used is in the run ' +
    'record. Pin wasm (or cpu) for results that reproduce bit for bit on any host.',
};
