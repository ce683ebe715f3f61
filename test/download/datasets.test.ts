// The real-dataset declarations (pipelines/datasets/*.yaml), exercised end to end on tiny fixtures in each dataset's
// published layout: served by a local HTTP server at the declared URL paths, downloaded by the `download` kind with
// the declaration's settings, then read by preprocess/images with the declared layout.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify } from 'csv-stringify/sync';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../../engine/dsl/index.js';
import type { StageManifest } from '../../engine/stage-api.js';
import { manifest as downloadManifest } from '../../stages/download/manifest.js';
import { run as download, type DownloadWith } from '../../stages/download/run.js';
import { openShards } from '../../stages/lib/shards.js';
import { manifest as preprocessManifest } from '../../stages/preprocess/images/manifest.js';
import { run as preprocess, type PreprocessWith } from '../../stages/preprocess/images/run.js';
import { manifest as splitManifest } from '../../stages/split/manifest.js';
import { run as synth, type SynthWith } from '../../stages/synth/cxr/run.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';
import { downloadWith } from './fixture.js';
import { rawTar, rawZip, startServer, type Route, type TestServer } from './server.js';

const DECL_DIR = join(import.meta.dirname, '../../pipelines/datasets');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Declaration {
  name: string;
  dset: string;
  layout: PreprocessWith['layout'];
  root: string;
  download: Record<string, unknown> & { files: Array<{ path: string; url?: string }> | null; manifest: string | null; base_url_env: string | null };
}

async function declaration(file: string): Promise<Declaration> {
  const doc = parseYaml(await readFile(join(DECL_DIR, file), 'utf8')) as { vars: { datasets: Record<string, Declaration> } };
  const [decl] = Object.values(doc.vars.datasets);
  return decl!;
}

async function tree(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) out[relative(dir, join(e.parentPath, e.name))] = await readFile(join(e.parentPath, e.name));
  return out;
}

const sums = (files: Record<string, Buffer>): Buffer =>
  Buffer.from(Object.entries(files).map(([p, b]) => `${sha(b)}  ${p}`).join('\n') + '\n');

/** The declaration's `download` settings as a `with:` (nulls dropped, as the DSL does), public URLs moved to `origin`. */
function withFor(decl: Declaration, origin: string, out: string, extra: Partial<DownloadWith> = {}): DownloadWith {
  const local = (u: string): string => (/^https?:/.test(u) ? origin + new URL(u).pathname : u);
  const d = Object.fromEntries(Object.entries(decl.download).filter(([, v]) => v !== null)) as Partial<DownloadWith>;
  return {
    ...downloadWith(),
    ...d,
    ...(d.manifest ? { manifest: local(d.manifest) } : {}),
    ...(d.files ? { files: d.files.map((f) => ({ ...f, ...(f.url ? { url: local(f.url) } : {}) })) } : {}),
    out,
    retries: 1,
    backoff_ms: 10,
    timeout_s: 10,
    extract: Boolean(d.extract),
    concurrency: 3,
    ...extra,
  };
}

let ws: Ws;
let server: TestServer | null = null;
beforeAll(async () => {
  ws = workspace({}, 'datasets-');
});
afterAll(async () => ws.cleanup());
afterEach(async () => {
  await server?.close();
  server = null;
  for (const v of ['PHYSIONET_USER', 'PHYSIONET_PASSWORD', 'PADCHEST_URL', 'CHEXPERT_URL']) delete process.env[v];
});

async function synthFixture(layout: SynthWith['layout'], patients: number): Promise<Record<string, Buffer>> {
  const out = `origin/${layout}`;
  await synth(fakeContext(ws.dir, { out, layout, patients, seed: 5, size: 48, test_fraction: 0.34, monochrome1_fraction: 0.5, compression: 'none' } as SynthWith));
  return tree(join(ws.dir, out));
}

async function preprocessed(decl: Declaration, root: string) {
  const out = `out/${decl.name}/`;
  await preprocess(fakeContext(ws.dir, { dataset: `${root}/`, layout: decl.layout, out, size: 32, skip_unreadable: false }));
  return openShards(join(ws.dir, out));
}

describe('dataset declarations', () => {
  it('load through the DSL with stages.yaml into download → preprocess → split stages', async () => {
    const kinds = new Map<string, StageManifest>([
      ['download', downloadManifest],
      ['preprocess/images', preprocessManifest],
      ['split', splitManifest],
    ]);
    const files = ['vindr_cxr', 'vindr_pcxr', 'nih', 'padchest', 'chexpert', 'stages'].map((f) => join(DECL_DIR, `${f}.yaml`));
    const main = join(ws.dir, 'real.yaml');
    await writeFile(main, `name: real\ninclude:\n${files.map((f) => `  - ${f}`).join('\n')}\n`);
    const r = await loadPipeline(main, { resolveKind: (k) => kinds.get(k) });
    if (!r.ok) throw new Error(JSON.stringify(r.error, null, 2));
    const names = r.value.stages.map((s) => s.name).sort();
    expect(names).toHaveLength(15);
    expect(names).toContain('dataset-download@vindr_cxr');
    expect(names).toContain('dataset-split@chexbert');
    const dl = r.value.stages.find((s) => s.name === 'dataset-download@vindr_pcxr')!;
    expect(dl.with).toMatchObject({
      out: 'data/cxr_datasets/vindr-pcxr/1.0.0/',
      manifest: 'https://physionet.org/files/vindr-pcxr/1.0.0/SHA256SUMS.txt',
      auth: { user_env: 'PHYSIONET_USER', password_env: 'PHYSIONET_PASSWORD' },
    });
    const prep = r.value.stages.find((s) => s.name === 'dataset-preprocess@nih_cxr18')!;
    expect(prep.deps.map((d) => d.path)).toContain('data/cxr_datasets/NIH/');
    const split = r.value.stages.find((s) => s.name === 'dataset-split@vindr_cxr')!;
    expect(split.with).toMatchObject({ dataset: 'vindr_cxr', healthy_prop: 0.2 });
  });

  it('VinDr-CXR: PhysioNet SHA256SUMS + credentials → DICOM → shards', async () => {
    const decl = await declaration('vindr_cxr.yaml');
    const files = await synthFixture('vindr_cxr', 3);
    files['LICENSE.txt'] = Buffer.from('license');
    const dir = dirname(new URL(decl.download.manifest!).pathname);
    const routes: Record<string, Route> = { [`${dir}/SHA256SUMS.txt`]: { body: sums(files), auth: { user: 'u', pass: 'pw' } } };
    for (const [p, b] of Object.entries(files)) routes[`${dir}/${p}`] = { body: b, auth: { user: 'u', pass: 'pw' } };
    server = await startServer(routes);
    process.env['PHYSIONET_USER'] = 'u';
    process.env['PHYSIONET_PASSWORD'] = 'pw';
    const ctx = fakeContext(ws.dir, withFor(decl, server.url, 'dl/vindr_cxr'));
    await download(ctx);
    expect(ctx.logs).toContain('5 of 7 manifest entries selected'); // 2 tables + 3 images; not LICENSE or phantom_truth
    const set = await preprocessed(decl, 'dl/vindr_cxr');
    expect(set.rows).toHaveLength(3);
    expect(set.rows.every((r) => r['dset'] === 'vindr_cxr' && /^(train|test)\/[0-9a-f]{32}\.dicom$/.test(r['path']!))).toBe(true);
    expect(set.rows.some((r) => /^\d{3}Y$/.test(r['age']!))).toBe(true);
    await set.close();
  });

  it('VinDr-PCXR: same route, ages in months/days, everything one test set', async () => {
    const decl = await declaration('vindr_pcxr.yaml');
    const files = await synthFixture('vindr_pcxr', 3);
    const dir = dirname(new URL(decl.download.manifest!).pathname);
    const routes: Record<string, Route> = { [`${dir}/SHA256SUMS.txt`]: { body: sums(files) } };
    for (const [p, b] of Object.entries(files)) routes[`${dir}/${p}`] = { body: b };
    server = await startServer(routes);
    await download(fakeContext(ws.dir, withFor(decl, server.url, 'dl/vindr_pcxr')));
    const set = await preprocessed(decl, 'dl/vindr_pcxr');
    expect(set.rows).toHaveLength(3);
    expect(set.rows.every((r) => r['split'] === 'test' && r['Cardiomegaly'] === '-1')).toBe(true);
    await set.close();
  });

  it('NIH: public archive links (renamed, extracted) + label table from the mirror', async () => {
    const decl = await declaration('nih.yaml');
    const files = await synthFixture('nih', 3);
    const images = Object.keys(files).filter((p) => p.startsWith('images-224/'));
    const routes: Record<string, Route> = {};
    const archives = decl.download.files!.filter((f) => f.url);
    expect(archives).toHaveLength(12);
    archives.forEach((f, k) => {
      // Real archives hold images/<Image Index>; spread the fixture's images over the 12 archives.
      const mine = images.filter((_, i) => i % 12 === k);
      const tar = rawTar(mine.map((p) => ({ name: `images/${p.slice('images-224/'.length)}`, body: files[p]! })));
      routes[new URL(f.url!).pathname] = { body: gzipSync(tar) };
    });
    server = await startServer(routes);
    const mirror = join(ws.dir, 'mirror-nih');
    await mkdir(mirror, { recursive: true });
    await writeFile(join(mirror, 'Data_Entry_2017.csv'), files['Data_Entry_2017.csv']!);
    const ctx = fakeContext(ws.dir, withFor(decl, server.url, 'dl/nih', { mirror }));
    await download(ctx);
    expect(ctx.records).toEqual({ download: { files: 13 } }); // what reaches stages below: the file count only
    expect(ctx.execution).toMatchObject({ download: { network: 12, mirror: 1, extracted: images.length } });
    const set = await preprocessed(decl, 'dl/nih');
    expect(set.rows).toHaveLength(images.length);
    expect(set.rows.every((r) => r['path']!.startsWith('images/') && /^\d+$/.test(r['age_years']!))).toBe(true);
    await set.close();
  });

  it('PadChest: private share URL from $PADCHEST_URL, gzipped table, numbered zips extracted', async () => {
    const decl = await declaration('padchest.yaml');
    const files = await synthFixture('padchest', 4);
    const images = Object.keys(files).filter((p) => p.startsWith('images-224/'));
    const served: Record<string, Buffer> = {
      'PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz': gzipSync(files['PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv']!),
      // ImageDir is 0 for every synthetic image: the real zips are named after ImageDir.
      '0.zip': rawZip(images.map((p) => ({ name: `0/${p.slice('images-224/'.length)}`, body: files[p]! }))),
      'README.txt': Buffer.from('not selected'),
    };
    const routes: Record<string, Route> = { '/share/pc/SHA256SUMS.txt': { body: sums(served) } };
    for (const [p, b] of Object.entries(served)) routes[`/share/pc/${p}`] = { body: b };
    server = await startServer(routes);
    process.env['PADCHEST_URL'] = `${server.url}/share/pc/?token=abc`;
    const ctx = fakeContext(ws.dir, withFor(decl, server.url, 'dl/padchest'));
    await download(ctx);
    expect(ctx.logs).toContain('2 of 3 manifest entries selected');
    expect(JSON.stringify(ctx.logs)).not.toContain('token=abc');
    const set = await preprocessed(decl, 'dl/padchest');
    const pa = (await readFile(join(ws.dir, 'origin/padchest/phantom_truth.csv'), 'utf8')).split('\n').filter((l) => l.endsWith(',PA,')).length;
    expect(set.rows).toHaveLength(pa);
    expect(set.rows.every((r) => r['path']!.startsWith('0/') && r['view'] === 'PA')).toBe(true);
    await set.close();
  });

  it('CheXpert: signed container URL from $CHEXPERT_URL, CheXbert tables and JPEGs', async () => {
    const decl = await declaration('chexpert.yaml');
    const findings = [
      'Enlarged Cardiomediastinum', 'Cardiomegaly', 'Lung Opacity', 'Lung Lesion', 'Edema', 'Consolidation', 'Pneumonia',
      'Atelectasis', 'Pneumothorax', 'Pleural Effusion', 'Pleural Other', 'Fracture', 'Support Devices', 'No Finding',
    ];
    const jpg = (v: number) => sharp(Buffer.alloc(40 * 40, v), { raw: { width: 40, height: 40, channels: 1 } }).jpeg().toBuffer();
    const header = ['Path', 'Sex', 'Age', 'Frontal/Lateral', 'AP/PA', ...findings];
    const row = (path: string, age: number, view: string, cm: string, none: string) => [path, 'Male', age, 'Frontal', view, ...findings.map((f) => (f === 'Cardiomegaly' ? cm : f === 'No Finding' ? none : ''))];
    const served: Record<string, Buffer> = {
      'train_cheXbert.csv': Buffer.from(stringify([header,
        row('CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg', 63, 'PA', '1', ''),
        row('CheXpert-v1.0/train/patient00002/study1/view1_frontal.jpg', 40, 'AP', '', '1'),
        row('CheXpert-v1.0/train/patient00003/study2/view1_frontal.jpg', 35, 'PA', '0', '1')])),
      'valid.csv': Buffer.from(stringify([header, row('CheXpert-v1.0/valid/patient64541/study1/view1_frontal.jpg', 70, 'PA', '-1', '')])),
      'train/patient00001/study1/view1_frontal.jpg': await jpg(50),
      'train/patient00002/study1/view1_frontal.jpg': await jpg(100),
      'train/patient00003/study2/view1_frontal.jpg': await jpg(150),
      'valid/patient64541/study1/view1_frontal.jpg': await jpg(200),
    };
    const routes: Record<string, Route> = { '/container/SHA256SUMS.txt': { body: sums(served) } };
    for (const [p, b] of Object.entries(served)) routes[`/container/${p}`] = { body: b };
    server = await startServer(routes);
    process.env['CHEXPERT_URL'] = `${server.url}/container?sv=2020&sig=SIGNATURE`;
    const ctx = fakeContext(ws.dir, withFor(decl, server.url, 'dl/chexbert'));
    await download(ctx);
    expect(server.hits('/container/valid.csv')[0]!.query).toBe('?sv=2020&sig=SIGNATURE');
    expect(JSON.stringify(ctx.logs)).not.toContain('SIGNATURE');
    const set = await preprocessed(decl, 'dl/chexbert');
    expect(set.rows.map((r) => r['image_id'])).toEqual(['patient00001-study1-view1_frontal.jpg', 'patient00003-study2-view1_frontal.jpg', 'patient64541-study1-view1_frontal.jpg']);
    expect(set.rows.map((r) => r['Has Finding'])).toEqual(['1', '0', '1']);
    const px = await set.readBatch([1]);
    expect(Math.abs(px[0]! - 150)).toBeLessThanOrEqual(2);
    await set.close();
  });
});
