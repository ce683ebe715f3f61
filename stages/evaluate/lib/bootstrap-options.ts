import type { BootstrapOptions } from './bootstrap.js';
import { numberField } from './io.js';

/** Read and check `with.resamples/seed/confidence`. */
export function bootstrapOptions(stage: string, w: { resamples?: unknown; seed?: unknown; confidence?: unknown }): BootstrapOptions {
  return {
    resamples: numberField(stage, 'resamples', w.resamples ?? 12000, { integer: true, min: 1, max: 10_000_000 }),
    seed: numberField(stage, 'seed', w.seed ?? 42, { integer: true, min: 0 }),
    confidence: numberField(stage, 'confidence', w.confidence ?? 0.95, { min: 0.5, max: 0.999999 }),
  };
}
