// The imaging kinds through the real CLI (`node bin/pipe.js run`, built by the global setup): synth → preprocess →
// split on a temp workspace, cache hits on a rerun, a param edit re-running only what depends on it, a bad image
// failing with one paragraph, and a credentialed download whose secret reaches no log, lock file or run record.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeGrayPng } from '../../stages/lib/png.js';
import { openShards } from '../../stages/lib/shards.js';
import { startServer } from '../download/server.js';
import { runPipe } from '../support/cli.js';

const ROOT = join(import.meta.dirname, '../..');

const PIPELINE = `name: imaging
params:
  seed: 42
stages:
  synth:
    uses: synth/cxr
    with: { out: data/raw/, layout: vindr_cxr, patients: 24, seed: 3, size: 64, cardiomegaly_prevalence: 0.3 }
  prep:
    uses: preprocess/images
    with: { dataset: data/raw/, layout: vindr_cxr, out: out/shards/, size: 32 }
  split:
    uses: split
    with: { metadata: out/shards/, out: out/splits.csv, sizes: out/sizes.json, seed: \${params.seed} }
`;

/** Every file under dir (recursively), for secret scans. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('imaging kinds through pipe run', () => {
  it('runs synth → preprocess → split, is a no-op the second time, and re-runs only split on a seed edit', async () => {
    const ws = await mkdtemp(join(tmpdir(), 'imaging-pipe-'));
    writeFileSync(join(ws, 'pipeline.yaml'), PIPELINE);
    const first = await runPipe(ws, ['run', 'pipeline.yaml']);
    expect(first.code, first.out).toBe(0);
    const set = await openShards(join(ws, 'out/shards'));
    expect(set.index).toMatchObject({ width: 32, height: 32, count: 24 });
    await set.close();
    const sizes = JSON.parse(readFileSync(join(ws, 'out/sizes.json'), 'utf8'));
    expect(Object.values(sizes.sizes as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(24);

    const again = await runPipe(ws, ['run', 'pipeline.yaml']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/3 up-to-date/);
    const edited = await runPipe(ws, ['run', 'pipeline.yaml', '-S', 'seed=7']);
    expect(edited.code, edited.out).toBe(0);
    expect(edited.out).toMatch(/▶ split \(with\.seed: 42 → 7/);
    expect(edited.out).not.toMatch(/▶ (synth|prep)\b/);
  });

  it('fails on an unreadable image with one paragraph naming it, no stack trace', async () => {
    const ws = await mkdtemp(join(tmpdir(), 'imaging-pipe-'));
    mkdirSync(join(ws, 'data/imgs'), { recursive: true });
    writeFileSync(join(ws, 'data/imgs/good.png'), await encodeGrayPng({ width: 16, height: 16, depth: 8, data: new Uint8Array(256).fill(9) }));
    writeFileSync(join(ws, 'data/imgs/bad.png'), 'not a png at all');
    writeFileSync(join(ws, 'data/meta.csv'), 'image_id,path\ngood,imgs/good.png\nbad,imgs/bad.png\n');
    writeFileSync(
      join(ws, 'pipeline.yaml'),
      'name: bad\nstages:\n  prep:\n    uses: preprocess/images\n    with: { dataset: data/, layout: table, metadata: data/meta.csv, out: out/s/, size: 8 }\n',
    );
    const r = await runPipe(ws, ['run', 'pipeline.yaml']);
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toContain('cannot load image 2 of 2');
    expect(r.out).toContain('imgs/bad.png');
    expect(r.out).toContain('Set skip_unreadable: true to drop unreadable images.');
    expect(r.out).not.toMatch(/\n\s+at .*\.js:\d+/);
  });

  it('downloads with credentials from the environment; the secret is in no log, lock file or run record', async () => {
    const secret = 'pw-9f8e7d-never-store-me';
    const body = Buffer.from('image_id,label\nx,1\n');
    const server = await startServer({ '/files/ds/labels.csv': { body, auth: { user: 'carol', pass: secret }, statuses: [500] } });
    try {
      const ws = await mkdtemp(join(tmpdir(), 'imaging-pipe-'));
      writeFileSync(
        join(ws, 'pipeline.yaml'),
        `name: dl\nstages:\n  fetch:\n    uses: download\n    with:\n      url: ${server.url}/files/ds/labels.csv\n      out: data/ds/\n      backoff_ms: 10\n      auth: { user_env: DS_USER, password_env: DS_PASSWORD }\n`,
      );
      const r = await runPipe(ws, ['run', 'pipeline.yaml'], { DS_USER: 'carol', DS_PASSWORD: secret, NETRC: join(ws, 'none') });
      expect(r.code, r.out).toBe(0);
      expect(readFileSync(join(ws, 'data/ds/labels.csv'))).toEqual(body);
      expect(server.hits('/files/ds/labels.csv')).toHaveLength(2); // the 500 was retried
      const b64 = Buffer.from(`carol:${secret}`).toString('base64');
      expect(r.out).not.toContain(secret);
      const scanned = files(ws).filter((f) => !f.endsWith('labels.csv') && statSync(f).size < 5e6);
      expect(scanned.some((f) => f.includes('.pipe') || f.endsWith('.lock') || f.includes('lock'))).toBe(true);
      for (const f of scanned) {
        const text = readFileSync(f, 'latin1');
        expect(text.includes(secret) || text.includes(b64), f).toBe(false);
      }
    } finally {
      await server.close();
    }
  });
});
