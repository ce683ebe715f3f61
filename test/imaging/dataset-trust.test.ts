// preprocess/images against hostile or broken datasets (issue 11 items 5 and 18, image bounds), with real files,
// real symlinks and real DICOM written by dcmjs: a dataset-relative path never leads outside its root, a DICOM whose
// LUT values cannot be interpreted or whose pixels are unusable fails (or is skipped) by name instead of becoming
// shards of garbage, and an image over the pixel limit is refused before it is decoded.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGrayPng } from '../../stages/lib/png.js';
import { DatasetPaths, readDatasetMetadata } from '../../stages/lib/metadata.js';
import { openShards } from '../../stages/lib/shards.js';
import { run as preprocess, type PreprocessWith } from '../../stages/preprocess/images/run.js';
import { writeDicom, type DicomEncoding } from '../../stages/synth/cxr/dicom.js';
import { createRng } from '../../stages/synth/cxr/prng.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';

let ws: Ws;
const N = 16;
const png = (v: number): Promise<Buffer> =>
  encodeGrayPng({ width: N, height: N, depth: 8, data: Uint8Array.from({ length: N * N }, (_, i) => (v + i) % 256) });

beforeAll(async () => {
  ws = workspace({}, 'dataset-trust-');
  await mkdir(join(ws.dir, 'data/ds/img'), { recursive: true });
  await writeFile(join(ws.dir, 'data/ds/img/a.png'), await png(10));
  // A file outside the dataset root (inside the test's workspace).
  await writeFile(join(ws.dir, 'x.png'), await png(200));
});
afterAll(async () => {
  await ws.cleanup();
});

const table = (meta: string, out: string, extra: Partial<PreprocessWith> = {}): PreprocessWith => ({
  dataset: 'data/ds/', layout: 'table', metadata: `data/ds/${meta}`, out, size: N, skip_unreadable: false, ...extra,
});

describe('dataset-relative paths stay inside the dataset root', () => {
  it('refuses ../ in a metadata table, naming the file and line, and writes nothing', async () => {
    await writeFile(join(ws.dir, 'data/ds/up.csv'), 'image_id,path\na,img/a.png\nx,../../x.png\n');
    const ctx = fakeContext(ws.dir, table('up.csv', 'out/up/'), { stage: 'prep' });
    await expect(preprocess(ctx)).rejects.toThrow(
      /^stage prep: data\/ds\/up\.csv line 3: image path "\.\.\/\.\.\/x\.png" resolves outside the dataset root \(to .*\/x\.png\); every image must lie inside the dataset\.$/,
    );
    expect(existsSync(join(ws.dir, 'out/up'))).toBe(false);
  });

  it('refuses an absolute path, even one that exists', async () => {
    await writeFile(join(ws.dir, 'data/ds/abs.csv'), `image_id,path\nx,${join(ws.dir, 'x.png')}\n`);
    await expect(preprocess(fakeContext(ws.dir, table('abs.csv', 'out/abs/'), { stage: 'prep' }))).rejects.toThrow(
      /data\/ds\/abs\.csv line 2: image path ".*x\.png" is absolute; paths in the metadata must be relative to the dataset root/,
    );
  });

  it('refuses a symlink inside the dataset that points outside it (file or directory), follows one that stays inside', async () => {
    await symlink(join(ws.dir, 'x.png'), join(ws.dir, 'data/ds/img/link-out.png'));
    await symlink(ws.dir, join(ws.dir, 'data/ds/dirlink'));
    await symlink('a.png', join(ws.dir, 'data/ds/img/link-in.png'));
    await writeFile(join(ws.dir, 'data/ds/links.csv'), 'image_id,path\na,img/a.png\nx,img/link-out.png\n');
    await expect(preprocess(fakeContext(ws.dir, table('links.csv', 'out/links/'), { stage: 'prep' }))).rejects.toThrow(
      /data\/ds\/links\.csv line 3: image path "img\/link-out\.png" resolves outside the dataset root through a symbolic link \(to .*\/x\.png\)/,
    );
    await writeFile(join(ws.dir, 'data/ds/dirs.csv'), 'image_id,path\nx,dirlink/x.png\n');
    await expect(preprocess(fakeContext(ws.dir, table('dirs.csv', 'out/dirs/'), { stage: 'prep' }))).rejects.toThrow(
      /data\/ds\/dirs\.csv line 2: image path "dirlink\/x\.png" resolves outside the dataset root through a symbolic link/,
    );
    await writeFile(join(ws.dir, 'data/ds/inside.csv'), 'image_id,path\na,img/a.png\nb,img/link-in.png\n');
    await preprocess(fakeContext(ws.dir, table('inside.csv', 'out/inside/')));
    const set = await openShards(join(ws.dir, 'out/inside'));
    const px = await set.readBatch([0, 1]);
    expect(Buffer.from(px.subarray(0, N * N)).equals(Buffer.from(px.subarray(N * N)))).toBe(true);
    await set.close();
  });

  it('a published layout (VinDr-CXR) with an image id that climbs out is refused at its CSV line, before any file is read', async () => {
    const root = join(ws.dir, 'data/vindr');
    await mkdir(join(root, 'annotations'), { recursive: true });
    await writeFile(
      join(root, 'annotations/image_labels_train.csv'),
      'image_id,rad_id,No finding,Cardiomegaly\nok1,R1,1,0\nok1,R2,1,0\n../../../escape,R1,0,1\n',
    );
    await writeFile(join(root, 'annotations/image_labels_test.csv'), 'image_id,No finding,Cardiomegaly\nt1,1,0\n');
    const r = await readDatasetMetadata(root, 'vindr_cxr');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(
      /annotations\/image_labels_train\.csv line 4: image path "train\/\.\.\/\.\.\/\.\.\/escape\.dicom" resolves outside the dataset root/,
    );
  });

  it('DatasetPaths: plain relative paths resolve under the root, missing files included', () => {
    const g = new DatasetPaths(join(ws.dir, 'data/ds'));
    const r = g.resolve('img/not-yet.png');
    expect(r.ok && r.value.endsWith('/data/ds/img/not-yet.png')).toBe(true);
    expect(g.resolve('img/../img/a.png').ok).toBe(true);
    expect(g.resolve('').ok).toBe(false);
  });
});

describe('DICOM that cannot be interpreted fails by name (or is skipped), never becomes garbage shards', () => {
  const rng = createRng('trust');
  const ramp = Uint16Array.from({ length: N * N }, (_, i) => i * 13);
  const enc = (window: DicomEncoding['window']): DicomEncoding => ({ photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window });
  const dicom = (pixels: Uint16Array, e: DicomEncoding): Buffer => writeDicom(pixels, N, e, { age: '040Y', sex: 'F', id: 'p' }, rng);

  beforeAll(async () => {
    const dir = join(ws.dir, 'data/dcm');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'good.dcm'), dicom(ramp, enc({ center: 1600, width: 2000 })));
    // issue 11 item 18: all-zero pixels and WindowCenter "abc".
    await writeFile(join(dir, 'abc.dcm'), dicom(new Uint16Array(N * N), enc({ center: 'abc' as unknown as number, width: 400 })));
    await writeFile(join(dir, 'abc-ramp.dcm'), dicom(ramp, enc({ center: '12abc' as unknown as number, width: 400 })));
    await writeFile(join(dir, 'zeros.dcm'), dicom(new Uint16Array(N * N), enc({ center: 2000, width: 400 })));
    await writeFile(join(dir, 'width0.dcm'), dicom(ramp, enc({ center: 2000, width: 0 })));
  });

  const only = async (file: string, extra: Partial<PreprocessWith> = {}): Promise<unknown> => {
    await writeFile(join(ws.dir, 'data/dcm', `${file}.csv`), `image_id,path\ng,good.dcm\nb,${file}\n`);
    const w: PreprocessWith = { dataset: 'data/dcm/', layout: 'table', metadata: `data/dcm/${file}.csv`, out: `out/dcm-${file}/`, size: N, skip_unreadable: false, ...extra };
    return preprocess(fakeContext(ws.dir, w, { stage: 'prep' })).then(() => undefined, (e: unknown) => e);
  };

  it('a Window Center that is not a number ("abc", "12abc") fails naming the file and the attribute', async () => {
    expect(String(await only('abc.dcm'))).toMatch(/stage prep: cannot load image 2 of 2: .*abc\.dcm: Window Center \(0028,1050\) is "abc", not a number/);
    expect(String(await only('abc-ramp.dcm'))).toMatch(/abc-ramp\.dcm: Window Center \(0028,1050\) is "12abc", not a number/);
    expect(existsSync(join(ws.dir, 'out/dcm-abc.dcm'))).toBe(false);
  });

  it('pixel data that is one value after the LUTs, or a window width below 1, fails by name', async () => {
    expect(String(await only('zeros.dcm'))).toMatch(/zeros\.dcm: pixel data is unusable: every pixel is 0 after the modality LUT and the VOI window \(center 2000, width 400\)/);
    expect(String(await only('width0.dcm'))).toMatch(/width0\.dcm: Window Width \(0028,1051\) is 0; a linear VOI window needs a width of at least 1/);
  });

  it('with skip_unreadable the bad file is dropped with its reason logged, the good one kept', async () => {
    await writeFile(join(ws.dir, 'data/dcm/mixed.csv'), 'image_id,path\ng,good.dcm\nb,abc.dcm\nz,zeros.dcm\n');
    const ctx = fakeContext(ws.dir, { dataset: 'data/dcm/', layout: 'table', metadata: 'data/dcm/mixed.csv', out: 'out/mixed/', size: N, skip_unreadable: true } as PreprocessWith);
    await preprocess(ctx);
    expect(ctx.logs.filter((l) => l.startsWith('skipping unreadable image'))).toEqual([
      expect.stringMatching(/abc\.dcm: Window Center \(0028,1050\) is "abc"/),
      expect.stringMatching(/zeros\.dcm: pixel data is unusable/),
    ]);
    const set = await openShards(join(ws.dir, 'out/mixed'));
    expect(set.rows.map((r) => r['image_id'])).toEqual(['g']);
    const px = await set.readBatch([0]);
    expect(new Set(px).size).toBeGreaterThan(10); // real contrast, not one repeated value
    await set.close();
  });
});

describe('image pixel count is bounded', () => {
  it('a PNG or DICOM over with.max_image_pixels fails before decoding, naming the limit and the field to raise', async () => {
    const dir = join(ws.dir, 'data/big');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a.png'), await png(1));
    const rng = createRng('big');
    const ramp = Uint16Array.from({ length: N * N }, (_, i) => i * 13);
    await writeFile(join(dir, 'a.dcm'), writeDicom(ramp, N, { photometric: 'MONOCHROME2', bitsStored: 12, slope: 1, intercept: 0, window: null }, { age: null, sex: 'M', id: 'b' }, rng));
    for (const [file, kind] of [['a.png', 'png'], ['a.dcm', 'dcm']] as const) {
      await writeFile(join(dir, `${kind}.csv`), `image_id,path\na,${file}\n`);
      const w: PreprocessWith = { dataset: 'data/big/', layout: 'table', metadata: `data/big/${kind}.csv`, out: `out/big-${kind}/`, size: 8, skip_unreadable: false, max_image_pixels: 200 };
      await expect(preprocess(fakeContext(ws.dir, w, { stage: 'prep' }))).rejects.toThrow(
        new RegExp(`${file.replace('.', '\\.')}: (Rows × Columns = )?16×16 = 256 pixels, more than the limit of 200 pixels.*or raise with\\.max_image_pixels\\.$`),
      );
      // At the limit it loads.
      await preprocess(fakeContext(ws.dir, { ...w, max_image_pixels: 256 }));
      expect(existsSync(join(ws.dir, `out/big-${kind}/index.json`))).toBe(true);
    }
  });
});

describe('a full disk while writing shards', () => {
  // A real ENOSPC: a 256 kB tmpfs mounted at the stage's output folder (needs the right to mount; skipped, saying so,
  // where there is none).
  let mounted: string | null = null;
  beforeAll(async () => {
    const at = join(ws.dir, 'small');
    await mkdir(at, { recursive: true });
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', at], { encoding: 'utf8' });
    if (r.status === 0) mounted = at;
    else console.warn(`SKIPPED (visible on purpose): cannot mount a small tmpfs here (${(r.stderr || r.error?.message || '').trim()}); the ENOSPC test needs one`);
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [mounted]);
  });

  it('is a clear stage failure naming the output, with no partial shard set or temp folder left', async (t) => {
    if (!mounted) t.skip();
    const dir = join(ws.dir, 'data/many');
    await mkdir(dir, { recursive: true });
    const files = Array.from({ length: 40 }, (_, i) => `p${i}.png`);
    for (const [i, f] of files.entries()) await writeFile(join(dir, f), await png(i));
    await writeFile(join(dir, 'meta.csv'), 'image_id,path\n' + files.map((f, i) => `${i},${f}`).join('\n') + '\n');
    // 40 images of 128×128 = 640 kB of shards: more than the 256 kB device holds.
    const w: PreprocessWith = { dataset: 'data/many/', layout: 'table', metadata: 'data/many/meta.csv', out: 'small/set/', size: 128, skip_unreadable: false };
    await expect(preprocess(fakeContext(ws.dir, w, { stage: 'prep' }))).rejects.toThrow(
      /^stage prep: no space left on the device while writing small\/set\/ \(ENOSPC\)/,
    );
    expect(await readdir(mounted!)).toEqual([]);
  });
});
