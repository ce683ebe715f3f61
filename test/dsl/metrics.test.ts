import { describe, expect, it } from 'vitest';
import { loadErr, loadOk, stage } from './helpers.js';

describe('metrics:', () => {
  it('declares a metrics file as an out with metric: true', async () => {
    const p = await loadOk(`
name: m
stages:
  s:
    cmd: echo 1 > m.json && touch model.bin
    outs: [model.bin]
    metrics: [m.json]
`);
    expect(stage(p, 's').outs).toEqual([
      expect.objectContaining({ path: 'model.bin', metric: false }),
      expect.objectContaining({ path: 'm.json', metric: true, cache: true }),
    ]);
  });

  it("marks an out the kind's with: already declares, instead of declaring it twice", async () => {
    const p = await loadOk(
      `
name: m
stages:
  fpr:
    uses: evaluate/fpr
    with: {model: models/a/, split: test, out: out/fpr.json}
    metrics:
      - out/fpr.json
`,
      { 'models/a/': '' },
    );
    const outs = stage(p, 'fpr').outs;
    expect(outs).toHaveLength(1);
    expect(outs[0]).toMatchObject({ path: 'out/fpr.json', metric: true });
  });

  it('still rejects a plain out listed twice', async () => {
    const e = await loadErr(`
name: m
stages:
  s:
    cmd: touch a
    outs: [a, a]
`);
    expect(e.errors.map((d) => d.message)).toContain('out `a` is listed twice');
  });
});
