import { StageError } from '../../../engine/stage-api.js';
import { numberField, readJson } from './io.js';
import type { ThresholdJson } from './results.js';

/** The threshold a rate stage applies: from a threshold JSON (`with.threshold`) or a literal `threshold_value`. */
export function thresholdFrom(
  stage: string,
  resolve: (rel: string) => string,
  w: { threshold?: string; threshold_value?: unknown },
): number {
  if (w.threshold_value !== undefined && w.threshold_value !== null) {
    return numberField(stage, 'threshold_value', w.threshold_value, { min: 0, max: 1 });
  }
  if (!w.threshold) throw new StageError(`Stage ${stage}: give with.threshold (a threshold JSON) or with.threshold_value.`);
  const t = readJson<Partial<ThresholdJson>>(resolve(w.threshold), w.threshold, stage);
  if (typeof t.threshold !== 'number' || !Number.isFinite(t.threshold)) {
    throw new StageError(`Stage ${stage}: ${w.threshold} has no numeric "threshold" field (is it an evaluate/threshold output?).`);
  }
  return t.threshold;
}
