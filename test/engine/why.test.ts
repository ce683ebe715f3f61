import { describe, expect, it } from 'vitest';
import { KEY_SCHEMA, type KeyFields } from '../../engine/fingerprint.js';
import { diffFields, nearest } from '../../engine/why.js';

const base: KeyFields = {
  schema: KEY_SCHEMA,
  cmd: 'python train.py --lr 0.001',
  params: { lr: 0.001, epochs: 5 },
  deps: { 'data/x.csv': 'a1b2c3d4e5f6', 'train.py': 'ffff0000' },
  env: { SEED: '1' },
  outs: [{ path: 'models/m/', cache: true }],
};

describe('diffFields', () => {
  it('names the param, not the command it changed', () => {
    const now = { ...base, cmd: 'python train.py --lr 0.01', params: { lr: 0.01, epochs: 5 } };
    expect(diffFields(now, base).map((c) => c.message)).toEqual(['param lr: 0.001 → 0.01']);
  });
  it('reports a command edit that params do not explain', () => {
    const now = { ...base, cmd: 'python train2.py --lr 0.001' };
    expect(diffFields(now, base).map((c) => c.message)).toEqual(['command changed: python train.py --lr 0.001 → python train2.py --lr 0.001']);
  });
  it('names the dep with short hashes, env vars, outs', () => {
    const now: KeyFields = {
      ...base,
      deps: { 'data/x.csv': 'c3d4e5f6a7b8', 'train.py': 'ffff0000', 'extra.txt': 'abc' },
      env: { SEED: '2', NEW: 'x' },
      outs: [{ path: 'models/m/', cache: false }],
    };
    const msgs = diffFields(now, base).map((c) => c.message);
    expect(msgs).toContain('dep data/x.csv changed (hash a1b2c3d4→c3d4e5f6)');
    expect(msgs).toContain('dep extra.txt added');
    expect(msgs).toContain('env SEED changed: 1 → 2');
    expect(msgs).toContain('env NEW added');
    expect(msgs).toContain('out models/m/: cache true → false');
  });
  it('reports implementation changes of a kind', () => {
    const a: KeyFields = { schema: KEY_SCHEMA, uses: 'evaluate/fpr', implementation: 'h1', with: { split: 'test' }, params: {}, deps: {}, env: {}, outs: [] };
    const b = { ...a, implementation: 'h2', with: { split: 'calib' } };
    expect(diffFields(b, a).map((c) => c.message)).toEqual(['implementation of evaluate/fpr changed', 'with.split: test → calib']);
  });
  it('is empty for equal fields', () => {
    expect(diffFields(base, JSON.parse(JSON.stringify(base)))).toEqual([]);
  });
});

describe('nearest', () => {
  it('picks the run with the fewest differences, the newest on ties', () => {
    const r1 = { name: 'newest', fields: { ...base, params: { lr: 0.1, epochs: 5 }, env: { SEED: '9' } } as unknown as Record<string, unknown> };
    const r2 = { name: 'older', fields: { ...base, params: { lr: 0.1, epochs: 5 } } as unknown as Record<string, unknown> };
    const r3 = { name: 'oldest', fields: { ...base, params: { lr: 0.2, epochs: 5 } } as unknown as Record<string, unknown> };
    expect(nearest(base, [r1, r2, r3])!.record.name).toBe('older');
    expect(nearest(base, [])).toBeUndefined();
  });
});

describe('implementation and toolchain changes', () => {
  const kind: KeyFields = {
    schema: KEY_SCHEMA,
    uses: 'synth/cxr',
    implementation: { 'dist/stages/synth/cxr/run.js': 'a', 'dist/stages/lib/png.js': 'b' },
    toolchain: { node: 'v20.1.0', platform: 'linux-x64', packages: { sharp: '0.35.5' } },
    with: {},
    params: {},
    deps: {},
    env: {},
    outs: [],
  };
  it('names the file of the closure that changed', () => {
    const now = { ...kind, implementation: { ...kind.implementation, 'dist/stages/lib/png.js': 'c', 'dist/stages/lib/new.js': 'd' } };
    expect(diffFields(now, kind).map((c) => c.message)).toEqual(['implementation of synth/cxr changed: dist/stages/lib/new.js added, dist/stages/lib/png.js']);
  });
  it('names the Node version and the package versions that changed', () => {
    const now = { ...kind, toolchain: { node: 'v20.2.0', platform: 'linux-x64', packages: { sharp: '0.35.6' } } };
    expect(diffFields(now, kind).map((c) => c.message)).toEqual(['node: v20.1.0 → v20.2.0', 'package sharp: 0.35.5 → 0.35.6']);
  });
});
