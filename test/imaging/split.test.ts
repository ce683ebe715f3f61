import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeShards } from '../../stages/lib/shards.js';
import { binLabel, onePerPatient, roundHalfEven, splitRows, type Row } from '../../stages/split/recipe.js';
import { run, type SplitWith } from '../../stages/split/run.js';
import { createRng } from '../../stages/synth/cxr/prng.js';
import { makeCtx, makeWorkspace } from './ctx.js';

let ws: { dir: string; cleanup(): Promise<void> };
beforeAll(async () => {
  ws = await makeWorkspace('split-');
});
afterAll(async () => ws.cleanup());

/** An NIH-like table: several images per patient, ~10% cardiomegaly, ~35% other findings, some minors. */
function nihRows(patients: number, seed = 'rows'): Row[] {
  const rng = createRng(seed);
  const rows: Row[] = [];
  for (let p = 0; p < patients; p++) {
    const n = rng.int(1, 3);
    const age = rng.bernoulli(0.06) ? rng.int(2, 17) : rng.int(18, 95);
    const cm = rng.bernoulli(0.12);
    for (let v = 0; v < n; v++) {
      const other = !cm && rng.bernoulli(0.35);
      rows.push({
        dset: 'nih_cxr18',
        image_id: `${p}_${v}`,
        patient_id: String(p),
        age_years: v === 1 && rng.bernoulli(0.3) ? '' : String(age),
        'Has Finding': cm || other ? '1' : '0',
        Cardiomegaly: cm ? '1' : '0',
      });
    }
  }
  return rows;
}

const opts = { dset: 'nih_cxr18', seed: 42, healthyProp: 0.1, ageBins: [18, 25, 40, 60, 80, 100], calibFrac: 0.1, valFrac: 0.25, onePerPatient: true };

describe('split recipe', () => {
  it('keeps one image per patient, preferring rows with an age, then cardiomegaly rows', () => {
    const rows: Row[] = [
      { patient_id: 'a', age_years: '', Cardiomegaly: '1' },
      { patient_id: 'a', age_years: '50', Cardiomegaly: '0' },
      { patient_id: 'b', age_years: '60', Cardiomegaly: '0' },
      { patient_id: 'b', age_years: '61', Cardiomegaly: '1' },
      { patient_id: 'b', age_years: '62', Cardiomegaly: '0' },
      { patient_id: 'c', age_years: '30', Cardiomegaly: '0' },
    ];
    expect(onePerPatient(rows, [0, 1, 2, 3, 4, 5], 42)).toEqual([1, 3, 5]);
    const many = nihRows(300);
    const kept = onePerPatient(many, many.map((_, i) => i), 42);
    expect(new Set(kept.map((i) => many[i]!['patient_id'])).size).toBe(kept.length);
    expect(kept.length).toBe(300);
  });

  it('follows C.3: peds, healthy adults per age bin, calibration shares, stratified 75/25 train/val', () => {
    const rows = nihRows(1500);
    const r = splitRows(rows, opts);
    const by = (s: string): number[] => [...r.assignment].filter(([, v]) => v === s).map(([i]) => i);
    // One image per patient.
    const pids = [...r.assignment.keys()].map((i) => rows[i]!['patient_id']);
    expect(new Set(pids).size).toBe(pids.length);
    expect(pids.length).toBe(1500);
    // Minors → test_peds; nobody under 18 anywhere else.
    for (const i of by('test_peds')) expect(Number(rows[i]!['age_years'])).toBeLessThan(18);
    for (const [i, s] of r.assignment) if (s !== 'test_peds' && rows[i]!['age_years']) expect(Number(rows[i]!['age_years'])).toBeGreaterThanOrEqual(18);
    // Healthy adults: trunc(0.1 × bin size) per bin, all healthy, all in their bin.
    const healthy = by('test_healthy_adult');
    expect(r.perBin.length).toBe(5);
    for (const b of r.perBin) {
      expect(b.sampled).toBe(Math.trunc(0.1 * b.eligible));
      const inBin = healthy.filter((i) => binLabel(Number(rows[i]!['age_years']), opts.ageBins) === b.bin);
      expect(inBin.length).toBe(b.sampled);
    }
    for (const i of healthy) expect(rows[i]!['Has Finding']).toBe('0');
    // Calibration: 10% of remaining positives + 10% of remaining no-finding rows.
    const calib = by('test_adult_calib');
    const remaining = [...r.assignment].filter(([, s]) => ['train', 'val', 'test_adult_calib'].includes(s)).map(([i]) => i);
    const pos = remaining.filter((i) => rows[i]!['Cardiomegaly'] === '1').length;
    const neg = remaining.filter((i) => rows[i]!['Has Finding'] === '0').length;
    expect(calib.filter((i) => rows[i]!['Cardiomegaly'] === '1').length).toBe(roundHalfEven(0.1 * pos));
    expect(calib.filter((i) => rows[i]!['Has Finding'] === '0').length).toBe(roundHalfEven(0.1 * neg));
    expect(calib.every((i) => rows[i]!['Cardiomegaly'] === '1' || rows[i]!['Has Finding'] === '0')).toBe(true);
    // Train/val 75/25, same positive share (within one image).
    const train = by('train');
    const val = by('val');
    const n = train.length + val.length;
    expect(val.length).toBe(n - Math.floor(0.75 * n));
    const posT = train.filter((i) => rows[i]!['Cardiomegaly'] === '1').length;
    const posV = val.filter((i) => rows[i]!['Cardiomegaly'] === '1').length;
    expect(Math.abs(posV - ((posT + posV) * val.length) / n)).toBeLessThanOrEqual(1);
  });

  it('is deterministic for a seed, different for another, and sends pediatric sets to test', () => {
    const rows = nihRows(400);
    const a = [...splitRows(rows, opts).assignment];
    expect([...splitRows(rows, opts).assignment]).toEqual(a);
    const b = [...splitRows(rows, { ...opts, seed: 7 }).assignment];
    expect(b).not.toEqual(a);
    const kids = rows.map((r) => ({ ...r, dset: 'vindr_pcxr' }));
    const k = splitRows(kids, { ...opts, dset: 'vindr_pcxr' });
    expect(new Set(k.assignment.values())).toEqual(new Set(['test']));
    expect(k.assignment.size).toBe(kids.length);
  });
});

describe('split stage', () => {
  it('reads a shard set, writes the split CSV (input order, row index) and sizes JSON', async () => {
    const rows = nihRows(200, 'stage');
    await writeShards(join(ws.dir, 'shards'), { width: 2, height: 2 }, rows, rows.map(() => new Uint8Array(4)));
    const w: SplitWith = {
      metadata: 'shards/', out: 'out/split.csv', sizes: 'out/sizes.json', age_bins: [18, 25, 40, 60, 80, 100],
      calib_frac: 0.1, val_frac: 0.25, one_per_patient: true, seed: 42,
    };
    const ctx = makeCtx(ws.dir, w);
    await run(ctx);
    const out = parse(await readFile(join(ws.dir, 'out/split.csv')), { columns: true }) as Row[];
    const sizes = JSON.parse(await readFile(join(ws.dir, 'out/sizes.json'), 'utf8'));
    expect(Object.keys(out[0]!)).toEqual([...Object.keys(rows[0]!), 'row', 'split']);
    expect(out.length).toBe(200);
    for (const r of out) expect(rows[Number(r['row'])]!['image_id']).toBe(r['image_id']);
    expect(out.map((r) => Number(r['row']))).toEqual([...out.map((r) => Number(r['row']))].sort((a, b) => a - b));
    expect(sizes.dataset).toBe('nih_cxr18');
    expect(sizes.dropped_one_per_patient).toBe(rows.length - 200);
    const total = Object.values(sizes.sizes as Record<string, number>).reduce((s, x) => s + x, 0);
    expect(total).toBe(200);
    expect(ctx.logs.at(-1)).toMatch(/^nih_cxr18: train \d+, val \d+, test_adult_calib \d+, test_healthy_adult \d+/);
    // Same input and seed → byte-identical output.
    await run(makeCtx(ws.dir, { ...w, out: 'out/split2.csv', sizes: undefined }));
    expect(await readFile(join(ws.dir, 'out/split2.csv'), 'utf8')).toBe(await readFile(join(ws.dir, 'out/split.csv'), 'utf8'));
  });

  it('explains bad input in one paragraph', async () => {
    await mkdir(join(ws.dir, 'bad'), { recursive: true });
    await writeFile(join(ws.dir, 'bad/a.csv'), stringify([['image_id', 'age_years'], ['x', '3']]));
    const w: SplitWith = { metadata: 'bad/a.csv', out: 'bad/o.csv', age_bins: [18, 25], calib_frac: 0.1, val_frac: 0.25, one_per_patient: true, seed: 1 };
    await expect(run(makeCtx(ws.dir, w, { stage: 'split@x' }))).rejects.toThrow(
      /^stage split@x: .*bad\/a\.csv lacks column\(s\) patient_id, Has Finding \(needed by the split recipe\)\.$/,
    );
    await writeFile(join(ws.dir, 'bad/b.csv'), stringify([['image_id', 'patient_id', 'age_years', 'Has Finding'], ['x', 'p', '3', '0']]));
    await expect(run(makeCtx(ws.dir, { ...w, metadata: 'bad/b.csv' }, { stage: 'split@x' }))).rejects.toThrow(
      'stage split@x: with.dataset must be one of vindr_cxr, vindr_pcxr, nih_cxr18, padchest, chexbert (got ""; set it or add a dset column).',
    );
    await expect(run(makeCtx(ws.dir, { ...w, metadata: 'bad/b.csv', dataset: 'nih_cxr18', val_frac: 1.5 }))).rejects.toThrow(/Cardiomegaly column/);
  });
});
