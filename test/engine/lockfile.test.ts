import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { renderLock, stageDigest, type LockFile } from '../../engine/lockfile.js';
import { flatten, metricsTable } from '../../engine/metrics.js';
import { globToRegExp, matcher } from '../../engine/glob.js';

const h = (c: string) => c.repeat(64);

describe('lock file rendering', () => {
  it('is valid YAML that parses back to the same data, whatever the strings hold', () => {
    const lock: LockFile = {
      schema: 1,
      pipeline: 'paper: "the study"',
      stages: {
        'fpr@model=padchest,split=test': {
          key: h('a'),
          uses: 'evaluate/fpr',
          with: { model: 'models/padchest/', split: 'test', nested: { b: [1, 'two', null], a: true } },
          params: { 'eval.n': 1000, yes: 'no', lr: 0.001, weird: "it's: #not a comment\nnewline ünïcode" },
          deps: [{ path: 'models/padchest/', hash: h('b') }, { path: 'data/a b.csv', hash: null }],
          outs: [{ path: 'out/fpr-padchest-test.json', hash: h('c'), size: 12 }, { path: 'out/dir/', hash: h('d'), size: 3, files: 2 }],
        },
        '123': { key: h('e'), cmd: 'echo "quoted" \'single\' $HOME; rm -rf ~ # x', deps: [], outs: [] },
        true: { key: h('f'), cmd: 'true', deps: [], outs: [] },
      },
    };
    const text = renderLock(lock);
    const back = parse(text) as LockFile;
    expect(back.pipeline).toBe(lock.pipeline);
    expect(Object.keys(back.stages)).toEqual(['123', 'fpr@model=padchest,split=test', 'true']);
    const s = back.stages['fpr@model=padchest,split=test']!;
    expect(s.with).toEqual(lock.stages['fpr@model=padchest,split=test']!.with);
    expect(s.params).toEqual(lock.stages['fpr@model=padchest,split=test']!.params);
    expect(s.deps.map((d) => d.path)).toEqual(['data/a b.csv', 'models/padchest/']);
    expect(s.outs[0]).toEqual({ path: 'out/dir/', hash: h('d'), size: 3, files: 2 });
    expect(back.stages['123']!.cmd).toBe(lock.stages['123']!.cmd);
    // Deterministic: insertion order does not matter.
    const shuffled: LockFile = { ...lock, stages: Object.fromEntries(Object.entries(lock.stages).reverse()) };
    expect(renderLock(shuffled)).toBe(text);
    expect(stageDigest('x', lock.stages['123']!)).toBe(stageDigest('x', { ...lock.stages['123']! }));
  });
});

describe('metrics helpers', () => {
  it('flattens nested JSON and tabulates the union of keys', () => {
    expect(flatten({ auc: { a: 0.9 }, n: 3, xs: [1, 2], empty: {} })).toEqual({ 'auc.a': 0.9, n: 3, 'xs.0': 1, 'xs.1': 2, empty: '{}' });
    expect(flatten(5)).toEqual({ value: 5 });
    const t = metricsTable([
      { stage: 's', path: 'm.json', run: 'current', metrics: { a: 1 } },
      { stage: 't', path: 'n.json', run: 'current', metrics: { b: 0.123456789 } },
    ]);
    expect(t.split('\n')[0]).toMatch(/^stage\s+file\s+run\s+a\s+b$/);
    expect(t).toMatch(/t\s+n\.json\s+current\s+-\s+0\.123457/);
  });
});

describe('stage globs', () => {
  it('matches names with *, ? and classes', () => {
    expect(globToRegExp('train@*').test('train@vindr_cxr')).toBe(true);
    expect(globToRegExp('fpr@model=?adchest*').test('fpr@model=padchest,split=test')).toBe(true);
    expect(globToRegExp('s[0-2]').test('s3')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    const m = matcher(['prep', 'eval@*']);
    expect([m('prep'), m('eval@x'), m('train')]).toEqual([true, true, false]);
  });
});
