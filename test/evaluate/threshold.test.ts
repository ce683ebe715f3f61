import { describe, expect, it } from 'vitest';
import { auroc, detCurve, youdenThreshold } from '../../stages/evaluate/lib/threshold.js';
import { reestimate } from '../../stages/evaluate/lib/fpr.js';

describe("Youden's J threshold (METHODS B.3)", () => {
  it('resolves ties to the lowest threshold', () => {
    // J = 0.5 both at t = 0.9 (TPR .5, FPR 0) and at t = 0.3 (TPR 1, FPR .5).
    const r = youdenThreshold([0.9, 0.3, 0.6, 0.1], [1, 1, 0, 0]);
    expect(r.threshold).toBe(0.3);
    expect(r.youdenJ).toBe(0.5);
  });
  it('predicts positive at score ≥ threshold and rounds to 4 decimals', () => {
    const r = youdenThreshold([0.123456, 0.123456, 0.05, 0.01], [1, 0, 0, 0]);
    expect(r.raw).toBe(0.123456);
    expect(r.threshold).toBe(0.1235);
    expect(r.tpr).toBe(1);
    expect(r.fpr).toBeCloseTo(1 / 3, 15);
  });
  it('keeps sklearn det_curve\'s range (min FPR … first TPR = 1), increasing thresholds', () => {
    const c = detCurve([0.95, 0.9, 0.8, 0.7, 0.4, 0.2], [0, 1, 1, 0, 1, 0]);
    // 0.95 and 0.9 share the minimal FPR with 0.8 at lower TPR: sklearn starts at the last of them.
    expect(c.thresholds).toEqual([0.4, 0.7, 0.8]);
    expect(c.fnr[0]).toBe(0);
  });
  it('needs both classes', () => {
    expect(() => youdenThreshold([0.1, 0.2], [0, 0])).toThrow(/both classes/);
  });
});

describe('AUROC', () => {
  it('counts ties as half', () => {
    expect(auroc([0.9, 0.3, 0.6, 0.1], [1, 1, 0, 0])).toBe(0.75);
    expect(auroc([0.5, 0.5], [1, 0])).toBe(0.5);
    expect(Number.isNaN(auroc([0.5, 0.4], [1, 1]))).toBe(true);
  });
});

describe("the authors' count-based FPR re-estimate (METHODS B.7)", () => {
  it('drops zero-count bins from the denominator', () => {
    const bins = [
      { count: 0, percentage: 0 }, // 100 healthy rows, no positives: vanishes
      { count: 10, percentage: 10 },
    ];
    expect(reestimate(bins)).toBe(10); // the true rate is 10 / 200 = 5 %
  });
  it('works from rounded percentages', () => {
    expect(reestimate([{ count: 997, percentage: 45.26 }, { count: 452, percentage: 39.72 }], { scale: 1, decimals: 4 })).toBe(0.4337);
  });
});
