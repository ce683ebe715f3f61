import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { drawAnatomy, drawCtr } from '../../stages/synth/cxr/anatomy.js';
import { renderPhantom } from '../../stages/synth/cxr/phantom.js';
import { createRng } from '../../stages/synth/cxr/prng.js';
import { run, type SynthWith } from '../../stages/synth/cxr/run.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';

let ws: Ws;
beforeAll(async () => {
  ws = workspace({}, 'synth-');
});
afterAll(async () => ws.cleanup());

const base = (over: Partial<SynthWith>): SynthWith => ({
  out: 'data/x',
  layout: 'vindr_cxr',
  patients: 6,
  seed: 7,
  size: 64,
  test_fraction: 0.17,
  monochrome1_fraction: 0.3,
  compression: 'none',
  ...over,
});

async function digestTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    out[relative(dir, full)] = createHash('sha256').update(await readFile(full)).digest('hex');
  }
  return out;
}

const csv = async (file: string): Promise<Record<string, string>[]> =>
  parse(await readFile(file), { columns: true, skip_empty_lines: true }) as Record<string, string>[];

describe('synth/cxr', () => {
  it('is deterministic: same seed → identical bytes; another seed → different images', async () => {
    for (const out of ['data/a', 'data/b']) await run(fakeContext(ws.dir, base({ out, format: 'dicom' })));
    await run(fakeContext(ws.dir, base({ out: 'data/c', format: 'dicom', seed: 8 })));
    const a = await digestTree(join(ws.dir, 'data/a'));
    const b = await digestTree(join(ws.dir, 'data/b'));
    const c = await digestTree(join(ws.dir, 'data/c'));
    expect(Object.keys(a).length).toBeGreaterThan(6);
    expect(b).toEqual(a);
    expect(Object.values(c).filter((h) => Object.values(a).includes(h))).toEqual([]);
    // Worker threads (cpus > 1) write the same bytes as the single-threaded path.
    await run(fakeContext(ws.dir, base({ out: 'data/w1', format: 'dicom', patients: 30 }), { cpus: 1 }));
    await run(fakeContext(ws.dir, base({ out: 'data/w2', format: 'dicom', patients: 30 }), { cpus: 2 }));
    expect(await digestTree(join(ws.dir, 'data/w2'))).toEqual(await digestTree(join(ws.dir, 'data/w1')));
    // PNG output is deterministic too (sharp's encoder is).
    for (const out of ['data/p1', 'data/p2']) await run(fakeContext(ws.dir, base({ out, layout: 'nih' })));
    expect(await digestTree(join(ws.dir, 'data/p2'))).toEqual(await digestTree(join(ws.dir, 'data/p1')));
  });

  it('draws larger hearts (CTR) for healthy children than for healthy adults, measured on the rendered masks', () => {
    const rng = createRng('ctr-test');
    const measure = (age: number, cardiomegaly: boolean): number => {
      const r = rng.fork(`${age}-${cardiomegaly}-${rng.next()}`);
      const an = drawAnatomy(r, age, drawCtr(r, age, cardiomegaly));
      const ex = { contrast: 1, brightness: 0, gamma: 1, noise: 0.01, heel: 0 };
      const ph = renderPhantom({ size: 128, anatomy: an, findings: [], exposure: ex }, r);
      expect(Math.abs(ph.measuredCtr - an.ctr)).toBeLessThan(0.03); // the image shows the CTR it was drawn with
      return ph.measuredCtr;
    };
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
    const infants = Array.from({ length: 12 }, (_, i) => measure(0.1 + i * 0.08, false));
    const children = Array.from({ length: 12 }, (_, i) => measure(1 + (i * 9) / 12, false));
    const adults = Array.from({ length: 12 }, (_, i) => measure(20 + i * 5, false));
    const sick = Array.from({ length: 8 }, (_, i) => measure(30 + i * 6, true));
    expect(mean(infants)).toBeGreaterThan(0.53);
    expect(mean(infants)).toBeGreaterThan(mean(children));
    expect(mean(children)).toBeGreaterThan(mean(adults) + 0.03);
    expect(Math.max(...adults)).toBeLessThanOrEqual(0.55);
    expect(Math.min(...sick)).toBeGreaterThan(0.49);
    expect(mean(sick)).toBeGreaterThan(mean(adults) + 0.1);
    // Many healthy infants cross the adult cardiomegaly cut-off: the bias the study measures.
    expect(infants.filter((c) => c > 0.5).length).toBeGreaterThanOrEqual(8);
  });

  it('writes the VinDr-CXR layout: 3 radiologists per train image, DICOM ages like "045Y", majority = truth', async () => {
    await run(fakeContext(ws.dir, base({ out: 'data/vindr', patients: 12, cardiomegaly_prevalence: 0.5 })));
    const root = join(ws.dir, 'data/vindr');
    const train = await csv(join(root, 'annotations/image_labels_train.csv'));
    const test = await csv(join(root, 'annotations/image_labels_test.csv'));
    const truth = await csv(join(root, 'phantom_truth.csv'));
    expect(Object.keys(test[0] ?? train[0]!)).toContain(test.length ? 'Other disease' : 'Other diseases');
    expect(train.length + test.length * 3).toBe(truth.length * 3);
    const perImage = new Map<string, Record<string, string>[]>();
    for (const r of train) perImage.set(r['image_id']!, [...(perImage.get(r['image_id']!) ?? []), r]);
    for (const [id, rs] of perImage) {
      expect(rs).toHaveLength(3);
      expect(new Set(rs.map((r) => r['rad_id'])).size).toBe(3);
      const votes = rs.filter((r) => r['Cardiomegaly'] === '1').length;
      expect(votes >= 2 ? '1' : '0').toBe(truth.find((t) => t['image_id'] === id)!['cardiomegaly']);
    }
    for (const t of truth) {
      expect(t['path']).toMatch(/^(train|test)\/[0-9a-f]{32}\.dicom$/);
      expect(Number(t['age_days'] || 99999)).toBeGreaterThan(0);
    }
  });

  it('writes NIH and PadChest tables with their age encodings and label syntax', async () => {
    await run(fakeContext(ws.dir, base({ out: 'data/nih', layout: 'nih', patients: 10 })));
    const nih = await csv(join(ws.dir, 'data/nih/Data_Entry_2017.csv'));
    expect(Object.keys(nih[0]!).slice(0, 7)).toEqual([
      'Image Index', 'Finding Labels', 'Follow-up #', 'Patient ID', 'Patient Age', 'Patient Gender', 'View Position',
    ]);
    for (const r of nih) {
      expect(r['Patient Age']).toMatch(/^\d{3}Y$/);
      expect(r['Image Index']).toMatch(/^\d{8}_\d{3}\.png$/);
      expect(r['Finding Labels']).toMatch(/^(No Finding|[A-Za-z]+(\|[A-Za-z]+)*)$/);
    }
    expect(nih.length).toBeGreaterThan(10); // follow-up images
    await run(fakeContext(ws.dir, base({ out: 'data/pc', layout: 'padchest', patients: 10 })));
    const pc = await csv(join(ws.dir, 'data/pc/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv'));
    for (const r of pc) {
      expect(r['Labels']).toMatch(/^\['[a-z ]+'(, '[a-z ]+')*\]$/);
      expect(r['StudyDate_DICOM']).toMatch(/^\d{8}$/);
      expect(Number(r['StudyDate_DICOM']!.slice(0, 4)) - Number(r['PatientBirth'])).toBeGreaterThanOrEqual(2);
    }
    // PadChest originals are 16-bit PNGs.
    const file = (await readdir(join(ws.dir, 'data/pc/images-224')))[0]!;
    const sharp = (await import('sharp')).default;
    expect((await sharp(join(ws.dir, 'data/pc/images-224', file)).metadata()).depth).toBe('ushort');
  });

  it('writes pediatric ages in months and days for infants', async () => {
    await run(fakeContext(ws.dir, base({ out: 'data/pcxr', layout: 'vindr_pcxr', patients: 30 })));
    const truth = await csv(join(ws.dir, 'data/pcxr/phantom_truth.csv'));
    const ages = truth.map((t) => Number(t['age_years_true'])).filter((a) => a > 0);
    expect(Math.max(...ages)).toBeLessThan(11);
    expect(ages.filter((a) => a < 1).length).toBeGreaterThan(3);
    const labels = await csv(join(ws.dir, 'data/pcxr/image_labels_train.csv'));
    expect(Object.keys(labels[0]!).slice(0, 3)).toEqual(['image_id', 'rad_ID', 'No finding']);
  });

  it('rejects impossible settings with one clear paragraph', async () => {
    await expect(run(fakeContext(ws.dir, base({ layout: 'nih', format: 'dicom' }), { stage: 'synth@nih' }))).rejects.toThrow(
      new StageError('stage synth@nih: with.format dicom is not available for layout nih: that dataset is distributed as PNG files'),
    );
    await expect(run(fakeContext(ws.dir, base({ cardiomegaly_prevalence: 1.5 })))).rejects.toThrow(/cardiomegaly_prevalence must be a number within \[0, 1\]/);
    await expect(run(fakeContext(ws.dir, base({ ages: { min: 50, max: 20 } })))).rejects.toThrow(/max 20 below min 50/);
  });
});
