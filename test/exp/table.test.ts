// The comparison table as data (issue 13): which metric columns `pipe exp show` offers, and which it keeps first
// when an 80-column terminal cannot hold them all.
import { describe, expect, it } from 'vitest';
import { columnsOf, fitTable, namesMetric, type ExpRow } from '../../engine/experiments/table.js';

const baseline: ExpRow = {
  name: 'workspace',
  baseline: true,
  status: 'workspace',
  params: { lr: 0.001 },
  metrics: { 'a.json': { fpr: 0.1, auc: 0.9 }, 'b.json': { fpr: 0.2 }, 'other.json': { rows: 7 } },
};
const variant = (name: string, lr: number, fpr: number): ExpRow => ({
  name,
  status: 'ok',
  params: { lr },
  metrics: { 'a.json': { fpr, auc: 0.9 }, 'b.json': { fpr: 0.2 } },
});

describe('exp show columns', () => {
  it('offers only the metrics files the variants recorded, naming a key two files share by file:key', () => {
    const rows = [baseline, variant('v1', 0.01, 0.3), variant('v2', 0.1, 0.4)];
    const cols = columnsOf(rows, ['a.json', 'b.json', 'other.json']);
    expect(cols.params).toEqual(['lr']);
    expect(cols.metrics.map((m) => m.id)).toEqual(['a.json:fpr', 'auc', 'b.json:fpr']);
    // With no variant recorded yet, the workspace's metrics files are all there is to show.
    expect(columnsOf([baseline], ['a.json', 'b.json', 'other.json']).metrics.map((m) => m.id)).toContain('rows');
  });

  it('a preferred metric named by file:key or by its column id is kept before metrics that merely vary', () => {
    const rows = [baseline, variant('v1', 0.01, 0.3), variant('v2', 0.1, 0.4)];
    const cols = columnsOf(rows, ['a.json', 'b.json']);
    const b = cols.metrics.find((m) => m.path === 'b.json')!;
    expect(namesMetric(b, 'b.json:fpr')).toBe(true);
    expect(namesMetric(b, 'fpr')).toBe(false);
    // The narrowest terminal that holds the preferred column: a.json:fpr (as wide, and varying) no longer fits beside it.
    let w = 10;
    let fit = fitTable(rows, cols, w, ['b.json:fpr']);
    while (!fit.table.header.includes('b.json:fpr') && w < 200) fit = fitTable(rows, cols, ++w, ['b.json:fpr']);
    expect(fit.table.header).toContain('b.json:fpr');
    expect(fit.table.header).not.toContain('a.json:fpr');
    expect(fitTable(rows, cols, w, []).table.header).toContain('a.json:fpr');
  });
});
