/** The bootstrap settings every rate-computing kind takes (`with.resamples/seed/confidence`). */
import type { FieldSpec } from '../../../engine/stage-api.js';

export const bootstrapFields: Record<string, FieldSpec> = {
  resamples: { type: 'integer', default: 12000, description: 'Bootstrap resamples per interval (the authors: 12,000).' },
  seed: {
    type: 'integer',
    default: 42,
    description: 'Seed of a fresh numpy-compatible PCG64 generator per interval (the authors: 42), so bounds match theirs bit for bit.',
  },
  confidence: { type: 'number', default: 0.95, description: 'Two-sided coverage of the BCa intervals.' },
};
