import { describe, expect, it } from 'vitest';
import { parseAgeString } from '../../stages/evaluate/lib/age.js';
import { binLabel, binOrder, compareLabels, schemeFor } from '../../stages/evaluate/lib/bins.js';
import { keepRow } from '../../stages/evaluate/lib/filters.js';
import { formatCountsCsv, parseCountsCsv } from '../../stages/evaluate/lib/counts-csv.js';

describe('DICOM age strings (METHODS B.2)', () => {
  it('parses years, months and days', () => {
    expect(parseAgeString('001Y')).toBe(1);
    expect(parseAgeString('010M')).toBe(0); // floor(10 / 12)
    expect(parseAgeString('030M')).toBe(2);
    expect(parseAgeString('020D')).toBeCloseTo(20 / 365, 15);
    expect(parseAgeString('125Y')).toBe(125);
  });
  it('missing for empty, non-integer and implausible ages', () => {
    expect(parseAgeString('')).toBeUndefined();
    expect(parseAgeString(undefined)).toBeUndefined();
    expect(parseAgeString('abc')).toBeUndefined();
    expect(parseAgeString('Y')).toBeUndefined();
    expect(parseAgeString('1.5Y')).toBeUndefined();
    expect(parseAgeString('126Y')).toBeUndefined();
    expect(parseAgeString('200Y')).toBeUndefined();
  });
});

describe('filters (METHODS B.2)', () => {
  it('VinDr-PCXR keeps healthy children with an age ≤ 10', () => {
    expect(keepRow('vindr_pcxr', 'test', 3, 0, -1)).toBe(true);
    expect(keepRow('vindr_pcxr', 'test', 10.9, 0, -1)).toBe(true);
    expect(keepRow('vindr_pcxr', 'test', 11, 0, -1)).toBe(false);
    expect(keepRow('vindr_pcxr', 'test', 3, 1, -1)).toBe(false);
    expect(keepRow('vindr_pcxr', 'test', NaN, 0, -1)).toBe(false);
  });
  it('calibration keeps healthy or cardiomegaly rows; healthy adults need an age', () => {
    expect(keepRow('nih_cxr18', 'test_adult_calib', NaN, 1, 1)).toBe(true);
    expect(keepRow('nih_cxr18', 'test_adult_calib', 50, 1, 0)).toBe(false);
    expect(keepRow('nih_cxr18', 'test_adult_calib', 50, 0, 0)).toBe(true);
    // (~Has Finding.astype(bool)) | Cardiomegaly.astype(bool): −1 and missing are truthy, so the authors keep these rows
    // (and count them as negatives); filterPredictions refuses them (kinds.test.ts).
    expect(keepRow('chexbert', 'test_adult_calib', 50, 1, -1)).toBe(true);
    expect(keepRow('chexbert', 'test_adult_calib', 50, 1, NaN)).toBe(true);
    expect(keepRow('padchest', 'test_healthy_adult', NaN, 0, 0)).toBe(false);
    expect(keepRow('padchest', 'test_peds', 5, 1, 0)).toBe(false);
  });
});

describe('age bins (METHODS B.4)', () => {
  it('bins adults left-closed and children by year, after truncation', () => {
    expect(schemeFor('vindr_pcxr', 'test')).toBe('child');
    expect(schemeFor('padchest', 'test_peds')).toBe('child');
    expect(schemeFor('padchest', 'test_healthy_adult')).toBe('adult');
    expect(binLabel(18, 'adult')).toBe('[18, 25)');
    expect(binLabel(24.9, 'adult')).toBe('[18, 25)');
    expect(binLabel(25, 'adult')).toBe('[25, 40)');
    expect(binLabel(99.5, 'adult')).toBe('[80, 100)');
    expect(binLabel(100, 'adult')).toBe('nan');
    expect(binLabel(17, 'adult')).toBe('nan');
    expect(binLabel(20 / 365, 'child')).toBe('0');
    expect(binLabel(10.7, 'child')).toBe('10');
  });
  it('orders labels as strings, like the authors\' groupby', () => {
    const labels = Array.from({ length: 11 }, (_, i) => String(i)).sort(compareLabels);
    expect(labels.join(',')).toBe('0,1,10,2,3,4,5,6,7,8,9');
    expect(binOrder('10')).toBe(10);
    expect(binOrder('[40, 60)')).toBe(40);
  });
});

describe('counts CSV (METHODS B.6)', () => {
  const bins = [
    { ageBin: '0', n: 2203, count: 997, percentage: 45.26, ci: { lower: 43.123, upper: 47.2991 } },
    { ageBin: '1', n: 1138, count: 452, percentage: 39.72, ci: { lower: 36.819, upper: 42.6186 } },
    { ageBin: '10', n: 43, count: 1, percentage: 2.33, ci: { lower: 0, upper: 6.9767 } },
  ];
  it('writes the authors\' format', () => {
    expect(formatCountsCsv(bins)).toBe(
      'age_bin,Pred. Count,Pred. Percentage,fpr_lower,fpr_upper\n0,997,45.26,43.123,47.2991\n1,452,39.72,36.819,42.6186\n10,1,2.33,0.0,6.9767\n',
    );
  });
  it('quotes adult labels and round-trips', () => {
    const adult = [{ ageBin: '[18, 25)', n: 10, count: 0, percentage: 0, ci: { lower: 0, upper: 0 } }];
    const text = formatCountsCsv(adult);
    expect(text.split('\n')[1]).toBe('"[18, 25)",0,0.0,0.0,0.0');
    expect(parseCountsCsv(text)).toEqual([{ ageBin: '[18, 25)', count: 0, percentage: 0, lower: 0, upper: 0 }]);
  });
});
