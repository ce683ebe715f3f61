import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGrayPng } from '../../stages/lib/png.js';
import { openShards } from '../../stages/lib/shards.js';
import { run as preprocess, type PreprocessWith } from '../../stages/preprocess/images/run.js';
import { encodeDisplay, writeDicom, type DicomEncoding } from '../../stages/synth/cxr/dicom.js';
import { createRng } from '../../stages/synth/cxr/prng.js';
import { run as synth, type SynthWith } from '../../stages/synth/cxr/run.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';

let ws: Ws;
beforeAll(async () => {
  ws = workspace({}, 'preprocess-');
});
afterAll(async () => ws.cleanup());

const N = 32;
/** A display image with structure in both directions, values spread over [0, 1]. */
function display(seed: number): Float32Array {
  const d = new Float32Array(N * N);
  for (let y = 0; y < N; y++)
    for (let x = 0; x < N; x++) d[y * N + x] = (0.5 + 0.45 * Math.sin((x + seed) / 5) * Math.cos(y / 7) + 0.04 * ((x * y) % 3)) % 1;
  return d;
}

/** Write files + a `table` metadata CSV, preprocess at the same size (no resampling), return the pixels. */
async function roundTrip(name: string, files: Array<{ file: string; bytes: Buffer }>, size = N): Promise<Uint8Array[]> {
  const dir = join(ws.dir, name);
  await mkdir(dir, { recursive: true });
  for (const f of files) await writeFile(join(dir, f.file), f.bytes);
  await writeFile(join(dir, 'meta.csv'), stringify([['image_id', 'path'], ...files.map((f) => [f.file, f.file])]));
  const w: PreprocessWith = { dataset: `${name}/`, layout: 'table', metadata: `${name}/meta.csv`, out: `out/${name}/`, size, skip_unreadable: false };
  await preprocess(fakeContext(ws.dir, w));
  const set = await openShards(join(ws.dir, 'out', name));
  const px = await set.readBatch(files.map((_, i) => i));
  await set.close();
  return files.map((_, i) => px.subarray(i * size * size, (i + 1) * size * size));
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('preprocess/images', () => {
  it('keeps 8-bit PNG pixels and scales 16-bit PNGs by 1/256 (METHODS C.5)', async () => {
    const u8 = Uint8Array.from({ length: N * N }, (_, i) => (i * 13) % 256);
    const u16 = Uint16Array.from({ length: N * N }, (_, i) => (i * 977) % 65536);
    const [a, b] = await roundTrip('png', [
      { file: 'a.png', bytes: await encodeGrayPng({ width: N, height: N, depth: 8, data: u8 }) },
      { file: 'b.png', bytes: await encodeGrayPng({ width: N, height: N, depth: 16, data: u16 }) },
    ]);
    expect(Array.from(a!)).toEqual(Array.from(u8));
    expect(Array.from(b!)).toEqual(Array.from(u16, (v) => v >> 8));
  });

  it('applies rescale, VOI window, MONOCHROME1 inversion and bit depth to DICOM written by dcmjs', async () => {
    const encodings: DicomEncoding[] = [
      { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window: null },
      { photometric: 'MONOCHROME1', bitsStored: 12, slope: 1, intercept: 0, window: null },
      { photometric: 'MONOCHROME2', bitsStored: 16, slope: 1, intercept: 0, window: { center: 30000, width: 40001 } },
      { photometric: 'MONOCHROME1', bitsStored: 16, slope: 2, intercept: 0, window: { center: 70000, width: 60001 } },
      { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: -1024, window: { center: 1000, width: 2501 } },
    ];
    const rng = createRng('dicom-test');
    const want = encodings.map((_, k) => display(k));
    const files = encodings.map((enc, k) => ({
      file: `img${k}.dicom`,
      bytes: writeDicom(encodeDisplay(want[k]!, enc), N, enc, { age: '045Y', sex: 'M', id: `p${k}` }, rng),
    }));
    const got = await roundTrip('dicom', files);
    for (const [k, px] of got.entries()) {
      const expected = Array.from(want[k]!, (v) => Math.floor(v * 255));
      expect(maxDiff(px, expected), `encoding ${k}`).toBeLessThanOrEqual(1);
    }
    // Without the window the stored values of file 2 would look washed out: check that they really needed it.
    const raw = encodeDisplay(want[2]!, encodings[2]!);
    const naive = Array.from(raw, (s) => Math.floor((s / 65536) * 255));
    expect(maxDiff(naive, Array.from(want[2]!, (v) => Math.floor(v * 255)))).toBeGreaterThan(20);
    // And MONOCHROME1 files store the inverse: bright stored = dark displayed.
    const stored1 = encodeDisplay(want[1]!, encodings[1]!);
    const brightest = stored1.indexOf(Math.max(...stored1));
    expect(got[1]![brightest]!).toBeLessThan(10);
  });

  it('decodes JPEG baseline pixel data and refuses unsupported transfer syntaxes by name', async () => {
    const sharp = (await import('sharp')).default;
    const gray = Uint8Array.from({ length: N * N }, (_, i) => (i % N) * 8);
    const jpeg = await sharp(gray, { raw: { width: N, height: N, channels: 1 } }).jpeg({ quality: 95 }).toBuffer();
    const decodedBySharp = await sharp(jpeg).toColourspace('b-w').raw().toBuffer();
    const enc: DicomEncoding = { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window: null };
    const rng = createRng('jpeg');
    const base = writeDicom(new Uint16Array(N * N), N, enc, { age: null, sex: 'M', id: 'j' }, rng, new Uint8Array(jpeg));
    // Same bytes, but the JPEG baseline transfer syntax and 8 bits stored.
    const patched = Buffer.from(base.toString('latin1').replace('1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.50'), 'latin1');
    const [got] = await roundTrip('jpegdcm', [{ file: 'a.dcm', bytes: patched }]);
    // Max below 256 → treated as 8-bit (C.5): value/256·255, truncated.
    expect(maxDiff(got!, Array.from(decodedBySharp, (v) => Math.floor((v / 256) * 255)))).toBeLessThanOrEqual(1);
    // JPEG-LS (same UID length, so the file stays well-formed): named in the error with what is supported.
    const jpegls = Buffer.from(base.toString('latin1').replace('1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.80'), 'latin1');
    await expect(roundTrip('jlsdcm', [{ file: 'r.dcm', bytes: jpegls }])).rejects.toThrow(
      /r\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.80 is not supported \(supported: .*JPEG 2000/,
    );
  });

  it('treats DICOM whose maximum is below 256 as 8-bit (C.5) and clips outside the window', async () => {
    const stored = Uint16Array.from({ length: N * N }, (_, i) => i % 200);
    const enc: DicomEncoding = { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window: null };
    const clip: DicomEncoding = { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window: { center: 2048, width: 1001 } };
    const ramp = Uint16Array.from({ length: N * N }, (_, i) => Math.floor((i / (N * N)) * 4095));
    const rng = createRng('eight');
    const [eight, clipped] = await roundTrip('dicom8', [
      { file: 'a.dcm', bytes: writeDicom(stored, N, enc, { age: null, sex: 'F', id: 'a' }, rng) },
      { file: 'b.dcm', bytes: writeDicom(ramp, N, clip, { age: null, sex: 'F', id: 'b' }, rng) },
    ]);
    expect(maxDiff(eight!, Array.from(stored, (s) => Math.floor((s / 256) * 255)))).toBeLessThanOrEqual(1);
    expect(clipped![0]).toBe(0);
    // Window top maps to 2^12 − 1, divided by 2^12 (authors' arithmetic) → 254.94 → truncated to 254.
    expect(clipped![N * N - 1]).toBe(254);
    expect(clipped!.filter((v) => v === 0).length).toBeGreaterThan(N * N * 0.3);
  });

  it('gives the same images from a DICOM and a PNG copy of one synthetic dataset, with C.2 metadata', async () => {
    const w = (out: string, format: SynthWith['format'], compression: SynthWith['compression'] = 'none'): SynthWith => ({
      out, layout: 'vindr_cxr', patients: 8, seed: 3, size: 96, format, test_fraction: 0.25, monochrome1_fraction: 0.5, compression,
    });
    await synth(fakeContext(ws.dir, w('data/vd', 'dicom')));
    await synth(fakeContext(ws.dir, w('data/vp', 'png8')));
    await synth(fakeContext(ws.dir, w('data/vj', 'dicom', 'jpeg2000')));
    for (const name of ['vd', 'vp', 'vj']) {
      const ctx = fakeContext<PreprocessWith>(ws.dir, { dataset: `data/${name}/`, layout: 'vindr_cxr', out: `out/${name}/`, size: 64, skip_unreadable: false });
      await preprocess(ctx);
      expect(ctx.progressUpdates.at(-1)).toMatchObject({ done: 8, total: 8, unit: 'images' });
    }
    const d = await openShards(join(ws.dir, 'out/vd'));
    const p = await openShards(join(ws.dir, 'out/vp'));
    expect(d.rows.map((r) => r['image_id'])).toEqual(p.rows.map((r) => r['image_id']));
    const a = await d.readBatch(d.rows.map((_, i) => i));
    const b = await p.readBatch(p.rows.map((_, i) => i));
    expect(maxDiff(a, b)).toBeLessThanOrEqual(2);
    // Lossless JPEG 2000 pixel data decodes to exactly the uncompressed DICOM's pixels.
    const j = await openShards(join(ws.dir, 'out/vj'));
    expect(Buffer.from(await j.readBatch(j.rows.map((_, i) => i))).equals(Buffer.from(a))).toBe(true);
    await j.close();
    const header = (await readFile(join(ws.dir, 'data/vj', d.rows[0]!['path']!))).subarray(0, 400).toString('latin1');
    expect(header).toContain('1.2.840.10008.1.2.4.90');
    expect(d.index.mean).toBeCloseTo(p.index.mean, 2);
    expect(d.index.std).toBeGreaterThan(0.1);
    // Metadata from the DICOM headers: ages ≥ 18 parsed, Has Finding = 1 − No finding.
    const truth = (await readFile(join(ws.dir, 'data/vd/phantom_truth.csv'), 'utf8')).split('\n');
    for (const r of d.rows) {
      expect(r['dset']).toBe('vindr_cxr');
      expect(r['patient_id']).toBe(r['image_id']);
      expect(r['Has Finding']).toBe(String(1 - Number(r['No finding'])));
      if (r['age']) expect(Number(r['age_years'])).toBe(Number(r['age']!.slice(0, 3)));
      const t = truth.find((l) => l.startsWith(r['image_id']!))!.split(',');
      expect(r['Cardiomegaly']).toBe(t[6]);
    }
    expect(d.rows.filter((r) => r['age_years'] !== '').length).toBeGreaterThan(4);
    await d.close();
    await p.close();
  });

  it('names a missing or corrupt image in one paragraph, or skips it when asked', async () => {
    const dir = join(ws.dir, 'bad');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'ok.png'), await encodeGrayPng({ width: 8, height: 8, depth: 8, data: new Uint8Array(64).fill(7) }));
    await writeFile(join(dir, 'broken.png'), 'this is not a PNG');
    await writeFile(join(dir, 'meta.csv'), 'image_id,path\nok,ok.png\nbroken,broken.png\nok2,ok.png\n');
    const w: PreprocessWith = { dataset: 'bad/', layout: 'table', metadata: 'bad/meta.csv', out: 'out/bad/', size: 8, skip_unreadable: false };
    await expect(preprocess(fakeContext(ws.dir, w, { stage: 'prep' }))).rejects.toThrow(
      /^stage prep: cannot load image 2 of 3: .*broken\.png: .*Set skip_unreadable: true/,
    );
    const ctx = fakeContext(ws.dir, { ...w, skip_unreadable: true });
    await preprocess(ctx);
    const set = await openShards(join(ws.dir, 'out/bad'));
    expect(set.rows.map((r) => r['image_id'])).toEqual(['ok', 'ok2']);
    await set.close();
    // Several bad files among many good ones, with loads in flight when each failure arrives: rows and pixels stay paired.
    const names: string[] = [];
    for (let i = 0; i < 12; i++) {
      const name = `m${i}.png`;
      if (i === 2 || i === 7) await writeFile(join(dir, name), `broken ${i}`);
      else await writeFile(join(dir, name), await encodeGrayPng({ width: 8, height: 8, depth: 8, data: new Uint8Array(64).fill(10 * i) }));
      names.push(name);
    }
    await writeFile(join(dir, 'many.csv'), 'image_id,path\n' + names.map((n, i) => `${i},${n}`).join('\n') + '\n');
    const many = fakeContext(ws.dir, { ...w, metadata: 'bad/many.csv', out: 'out/many/', skip_unreadable: true });
    await preprocess(many);
    expect(many.logs.filter((l) => l.startsWith('skipping unreadable image'))).toHaveLength(2);
    const m = await openShards(join(ws.dir, 'out/many'));
    const ids = m.rows.map((r) => Number(r['image_id']));
    expect(ids).toEqual([0, 1, 3, 4, 5, 6, 8, 9, 10, 11]);
    const px = await m.readBatch(ids.map((_, k) => k));
    ids.forEach((id, k) => expect(px[k * 64]).toBe(10 * id));
    await m.close();
    await writeFile(join(dir, 'meta2.csv'), 'image_id,path\nx,nope.png\n');
    await expect(preprocess(fakeContext(ws.dir, { ...w, metadata: 'bad/meta2.csv' }, { stage: 'prep' }))).rejects.toThrow(
      'stage prep: 1 image file(s) listed in the metadata are missing under bad/, e.g. nope.png',
    );
    await expect(
      preprocess(fakeContext(ws.dir, { ...w, layout: 'nih', metadata: undefined }, { stage: 'prep' })),
    ).rejects.toThrow(/stage prep: cannot read the nih metadata: .*Data_Entry_2017\.csv: file not found/);
  });

  it('writes bit-identical shard sets from the same inputs, whatever the number of worker threads (no clock or host in them)', async () => {
    const dir = join(ws.dir, 'same');
    await mkdir(dir, { recursive: true });
    const enc: DicomEncoding = { photometric: 'MONOCHROME1', bitsStored: 12, slope: 1, intercept: 0, window: { center: 2000, width: 3001 } };
    const rng = createRng('same');
    const names: string[] = [];
    for (let k = 0; k < 6; k++) {
      const name = k % 2 ? `i${k}.png` : `i${k}.dcm`;
      const bytes = k % 2
        ? await encodeGrayPng({ width: N, height: N, depth: 16, data: Uint16Array.from(display(k), (v) => Math.round(v * 65535)) })
        : writeDicom(encodeDisplay(display(k), enc), N, enc, { age: '030Y', sex: 'M', id: `p${k}` }, rng);
      await writeFile(join(dir, name), bytes);
      names.push(name);
    }
    await writeFile(join(dir, 'meta.csv'), stringify([['image_id', 'path'], ...names.map((n) => [n, n])]));
    const files = async (out: string): Promise<string[]> => {
      const { readdir } = await import('node:fs/promises');
      const list = (await readdir(join(ws.dir, out))).sort();
      return Promise.all(list.map(async (f) => `${f}:${(await readFile(join(ws.dir, out, f))).toString('base64')}`));
    };
    const w = (out: string): PreprocessWith => ({ dataset: 'same/', layout: 'table', metadata: 'same/meta.csv', out, size: 24, skip_unreadable: false });
    await preprocess(fakeContext(ws.dir, w('out/same1/'), { cpus: 1 }));
    await preprocess(fakeContext(ws.dir, w('out/same2/'), { cpus: 2 }));
    await preprocess(fakeContext(ws.dir, w('out/same3/'), { cpus: 2 }));
    const one = await files('out/same1');
    expect(one.map((f) => f.split(':')[0])).toEqual(['index.json', 'rows.csv', 'shard-00000.bin']);
    expect(await files('out/same2')).toEqual(one);
    expect(await files('out/same3')).toEqual(one);
  });
});
