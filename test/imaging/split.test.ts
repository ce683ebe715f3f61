// The split kind: the authors' membership row for row (fixtures from their own code, test/fixtures/split/generate.py),
// the numpy / sklearn ports it rests on, rules per dataset in mixed metadata (issue 16), and bad input named by line.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeShards } from '../../stages/lib/shards.js';
import { parseMetadata } from '../../stages/split/metadata.js';
import { pandasSample, RandomState } from '../../stages/split/numpy-random.js';
import { splitRows, type SplitOptions } from '../../stages/split/recipe.js';
import { run, type SplitWith } from '../../stages/split/run.js';
import { approximateMode, stratifiedShuffleSplit } from '../../stages/split/stratified-shuffle-split.js';
import { fakeContext } from '../support/context.js';
import { workspace, type Ws } from '../support/workspace.js';

type Row = Record<string, string>;
const FIXTURES = new URL('../fixtures/split/', import.meta.url).pathname;
const LAYOUTS = ['vindr_cxr', 'nih_cxr18', 'padchest', 'chexbert', 'vindr_pcxr'] as const;
const OPTIONS: SplitOptions = { seed: 42, ageBins: [18, 25, 40, 60, 80, 100], calibFrac: 0.1, valFrac: 0.25, onePerPatient: true };
const W: Omit<SplitWith, 'metadata' | 'out'> = { age_bins: [18, 25, 40, 60, 80, 100], calib_frac: 0.1, val_frac: 0.25, one_per_patient: true, seed: 42 };

const fixture = async (name: string) => readFile(join(FIXTURES, name), 'utf8');
const records = (text: string) => parse(text, { columns: true, skip_empty_lines: true }) as Row[];

let ws: Ws;
beforeAll(async () => {
  ws = workspace({}, 'split-');
});
afterAll(async () => ws.cleanup());

describe('numpy RandomState and sklearn StratifiedShuffleSplit ports (values printed by numpy 1.24 / sklearn 1.2)', () => {
  it('MT19937: permutation, choice without replacement, the raw stream', () => {
    expect(new RandomState(42).permutation(10)).toEqual([8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
    expect(new RandomState(42).choiceWithoutReplacement(1000, 5)).toEqual([521, 737, 740, 660, 411]);
    expect(new RandomState(0).permutation(3)).toEqual([2, 1, 0]);
    // np.random.RandomState(42).randint(0, 2**32, size=3, dtype=np.uint64): the first 32-bit outputs.
    const rs = new RandomState(42);
    expect([rs.nextUint32(), rs.nextUint32(), rs.nextUint32()]).toEqual([1608637542, 3421126067, 4083286876]);
    expect(() => new RandomState(2 ** 32)).toThrow(/between 0 and 2\*\*32 - 1/);
  });
  it('pandas sample: n, and frac with Python\'s round (0.1 × 25 = 2.5 → 2)', () => {
    expect(pandasSample(25, { frac: 0.1 }, 42)).toEqual(new RandomState(42).permutation(25).slice(0, 2));
    expect(pandasSample(35, { frac: 0.1 }, 42)).toHaveLength(4); // 3.5 → 4
    expect(pandasSample(7, { n: 0 }, 42)).toEqual([]);
  });
  it('_approximate_mode and the first StratifiedShuffleSplit', () => {
    expect(approximateMode([2, 2, 2, 1], 2, new RandomState(42))).toEqual([1, 1, 0, 0]);
    expect(approximateMode([5, 2], 4, new RandomState(0))).toEqual([3, 1]);
    const y = [...Array<number>(30).fill(0), ...Array<number>(7).fill(1), ...Array<number>(13).fill(0)];
    expect(stratifiedShuffleSplit(y, 0.75, 42).test.sort((a, b) => a - b)).toEqual([7, 10, 14, 18, 20, 22, 23, 28, 30, 33, 40, 42, 45]);
    expect(() => stratifiedShuffleSplit([0, 0, 0, 1], 0.75, 42)).toThrow(/least populated class has only 1 member/);
  });
});

describe('the authors\' membership, row for row (fixtures from their code, test/fixtures/split/generate.py)', () => {
  for (const dset of LAYOUTS) {
    it(`${dset}: every row in the same split, the same rows dropped`, async () => {
      const meta = parseMetadata(await fixture(`${dset}.metadata.csv`), `${dset}.metadata.csv`);
      const want = new Map(records(await fixture(`${dset}.expected.csv`)).map((r) => [r['image_id']!, r['split']!]));
      const got = splitRows(meta.meta, OPTIONS).assignment;
      const wrong: string[] = [];
      meta.meta.forEach((row, i) => {
        const mine = got.get(i) ?? '(dropped)';
        const theirs = want.get(row.imageId) ?? '(dropped)';
        if (mine !== theirs) wrong.push(`line ${meta.lines[i]} ${row.imageId}: ours ${mine}, authors ${theirs}`);
      });
      expect(wrong.slice(0, 20), `${wrong.length} of ${meta.meta.length} rows differ`).toEqual([]);
      expect(got.size).toBe(want.size);
      expect(new Set(got.values()).size).toBeGreaterThan(dset === 'vindr_pcxr' ? 0 : 3);
    });
  }
});

describe('mixed metadata: rules per dataset, patients per (dataset, patient id) — issue 16', () => {
  it('VinDr-CXR, PadChest and NIH rows interleaved in one file get exactly the membership each has alone', async () => {
    const files = ['vindr_cxr', 'padchest', 'nih_cxr18'];
    const texts = await Promise.all(files.map((d) => fixture(`${d}.metadata.csv`)));
    const tables = texts.map(records);
    const columns = ['dset', 'image_id', 'patient_id', 'age_years', 'Has Finding', 'Cardiomegaly'];
    // Interleave the rows: a file is not sorted by dataset.
    const mixed: Row[] = [];
    for (let i = 0; i < Math.max(...tables.map((t) => t.length)); i++) for (const t of tables) if (t[i]) mixed.push(t[i]!);
    await writeFile(join(ws.dir, 'mixed.csv'), stringify([columns, ...mixed.map((r) => columns.map((c) => r[c] ?? ''))]));
    await run(fakeContext(ws.dir, { ...W, metadata: 'mixed.csv', out: 'mixed-split.csv', sizes: 'mixed-sizes.json' }));
    const out = records(await readFile(join(ws.dir, 'mixed-split.csv'), 'utf8'));
    const want = new Map<string, string>();
    for (const d of files) for (const r of records(await fixture(`${d}.expected.csv`))) want.set(`${d}/${r['image_id']}`, r['split']!);
    const got = new Map(out.map((r) => [`${r['dset']}/${r['image_id']}`, r['split']!]));
    expect(got).toEqual(want);
    const sizes = JSON.parse(await readFile(join(ws.dir, 'mixed-sizes.json'), 'utf8'));
    expect(Object.keys(sizes.datasets)).toEqual(['vindr_cxr', 'padchest', 'nih_cxr18']);
    expect(sizes.datasets.padchest.sizes.test_peds).toBe(37);
  });
  it('the issue\'s case: 200 vindr_cxr + 200 padchest rows sharing patient ids, every 4th PadChest patient aged 10', async () => {
    const columns = ['dset', 'image_id', 'patient_id', 'age_years', 'Has Finding', 'Cardiomegaly'];
    const rows: string[][] = [];
    for (let p = 0; p < 200; p++) {
      const pid = `P${String(p).padStart(4, '0')}`;
      rows.push(['vindr_cxr', `v${p}`, pid, String(30 + (p % 50)), String(p % 3 === 0 ? 1 : 0), String(p % 9 === 0 ? 1 : 0)]);
      rows.push(['padchest', `c${p}`, pid, p % 4 === 0 ? '10' : String(40 + (p % 40)), String(p % 2), String(p % 10 === 1 ? 1 : 0)]);
    }
    await writeFile(join(ws.dir, 'issue16.csv'), stringify([columns, ...rows]));
    const ctx = fakeContext(ws.dir, { ...W, metadata: 'issue16.csv', out: 'issue16-split.csv' });
    await run(ctx);
    const out = records(await readFile(join(ws.dir, 'issue16-split.csv'), 'utf8'));
    // No PadChest row dropped as "another image of the same patient", and all 50 minors in test_peds.
    expect(out.filter((r) => r['dset'] === 'padchest')).toHaveLength(200);
    expect(out.filter((r) => r['dset'] === 'padchest' && r['split'] === 'test_peds')).toHaveLength(50);
    expect(out.filter((r) => r['dset'] === 'vindr_cxr')).toHaveLength(200);
    expect(ctx.logs).toEqual([
      expect.stringMatching(/^vindr_cxr: train \d+, val \d+, test_adult_calib \d+, test_healthy_adult \d+ \(dropped 0 /),
      expect.stringMatching(/^padchest: train \d+, val \d+, test_adult_calib \d+, test_healthy_adult \d+, test_peds 50 \(dropped 0 /),
    ]);
    // with.dataset on a mixed file is refused, never applied to every row.
    await expect(run(fakeContext(ws.dir, { ...W, metadata: 'issue16.csv', out: 'x.csv', dataset: 'vindr_cxr' }, { stage: 'split@mixed' }))).rejects.toThrow(
      /^stage split@mixed: issue16\.csv, line 3: the row is dataset "padchest" but with\.dataset is "vindr_cxr"\. The split rules are per dataset/,
    );
  });
});

describe('split stage', () => {
  it('reads a shard set, writes the split CSV (input order, row index) and sizes JSON', async () => {
    const rows = records(await fixture('nih_cxr18.metadata.csv')).slice(0, 600);
    await writeShards(join(ws.dir, 'shards'), { width: 2, height: 2 }, rows, rows.map(() => new Uint8Array(4)));
    const w: SplitWith = { ...W, metadata: 'shards/', out: 'out/split.csv', sizes: 'out/sizes.json' };
    const ctx = fakeContext(ws.dir, w);
    await run(ctx);
    const out = records(await readFile(join(ws.dir, 'out/split.csv'), 'utf8'));
    const sizes = JSON.parse(await readFile(join(ws.dir, 'out/sizes.json'), 'utf8'));
    expect(Object.keys(out[0]!)).toEqual([...Object.keys(rows[0]!), 'row', 'split']);
    for (const r of out) expect(rows[Number(r['row'])]!['image_id']).toBe(r['image_id']);
    expect(out.map((r) => Number(r['row']))).toEqual([...out.map((r) => Number(r['row']))].sort((a, b) => a - b));
    expect(new Set(out.map((r) => r['patient_id'])).size).toBe(out.length);
    expect(sizes.datasets.nih_cxr18.dropped_one_per_patient).toBe(rows.length - out.length);
    const total = Object.values(sizes.sizes as Record<string, number>).reduce((s, x) => s + x, 0);
    expect(total).toBe(out.length);
    expect(ctx.logs.at(-1)).toMatch(/^nih_cxr18: train \d+, val \d+, test_adult_calib \d+, test_healthy_adult \d+, test_peds \d+/);
    // Same input and seed → byte-identical output; another seed → other members.
    await run(fakeContext(ws.dir, { ...w, out: 'out/split2.csv', sizes: undefined }));
    expect(await readFile(join(ws.dir, 'out/split2.csv'), 'utf8')).toBe(await readFile(join(ws.dir, 'out/split.csv'), 'utf8'));
    await run(fakeContext(ws.dir, { ...w, out: 'out/split3.csv', sizes: undefined, seed: 7 }));
    expect(await readFile(join(ws.dir, 'out/split3.csv'), 'utf8')).not.toBe(await readFile(join(ws.dir, 'out/split.csv'), 'utf8'));
  });

  it('explains bad input in one paragraph, naming file, line, column and value', async () => {
    await mkdir(join(ws.dir, 'bad'), { recursive: true });
    const w: SplitWith = { ...W, metadata: 'bad/a.csv', out: 'bad/o.csv' };
    const bad = async (name: string, rows: string[][], extra: Partial<SplitWith> = {}) => {
      await writeFile(join(ws.dir, 'bad', name), stringify(rows));
      return run(fakeContext(ws.dir, { ...w, metadata: `bad/${name}`, ...extra }, { stage: 'split@x' }));
    };
    const head = ['dset', 'image_id', 'patient_id', 'age_years', 'Has Finding', 'Cardiomegaly'];
    await expect(bad('a.csv', [['image_id', 'age_years'], ['x', '3']])).rejects.toThrow(
      'stage split@x: bad/a.csv lacks column(s) patient_id, dset (needed by the split recipe; without a dset column, set with.dataset).',
    );
    await expect(bad('b.csv', [head, ['nih', 'x', 'p', '3', '0', '0']])).rejects.toThrow(
      'stage split@x: bad/b.csv, line 2, column "dset": "nih" is not a dataset with split rules (vindr_cxr, nih_cxr18, padchest, chexbert, vindr_pcxr).',
    );
    await expect(bad('c.csv', [head, ['nih_cxr18', 'x', 'p', '058Y', '0', '0']])).rejects.toThrow(
      'stage split@x: bad/c.csv, line 2, column "age_years": "058Y" is not a number (an empty cell means missing).',
    );
    await expect(bad('d.csv', [head, ['padchest', 'x', 'p', '40', '0', '0'], ['padchest', 'y', 'q', '41', 'yes', '0']])).rejects.toThrow(
      'stage split@x: bad/d.csv, line 3, column "Has Finding": "yes" is not a number (an empty cell means missing).',
    );
    await expect(bad('e.csv', [head, ['padchest', 'x', 'p', '40', '0', '2']])).rejects.toThrow(
      'stage split@x: bad/e.csv, line 2, column "Cardiomegaly": "2" is not one of 1, 0, -1 (or empty).',
    );
    await expect(bad('f.csv', [head, ['padchest', 'x', '', '40', '0', '0']])).rejects.toThrow(
      'stage split@x: bad/f.csv, line 2, column "patient_id": "" is empty: padchest keeps one image per patient.',
    );
    await expect(bad('g.csv', [head, ['padchest', 'x', 'p', '40', '0', '0'], ['padchest', 'x', 'q', '41', '0', '0']])).rejects.toThrow(
      'stage split@x: bad/g.csv, line 3, column "image_id": "x" is listed twice for padchest (lines 2 and 3).',
    );
    await expect(bad('h.csv', [head, ['vindr_cxr', 'x', 'x', '-4', '0', '0']])).rejects.toThrow('"-4" is a negative age.');
    // A positive labelled "no finding": the authors' loader would list it twice and their split refuses it.
    const rows = [head, ...Array.from({ length: 40 }, (_, i) => ['vindr_cxr', `i${i}`, `i${i}`, '', i < 10 ? '1' : '0', i < 10 ? '1' : '0'])];
    rows[12] = ['vindr_cxr', 'i11', 'i11', '', '0', '1'];
    await expect(bad('i.csv', rows)).rejects.toThrow(/training row\(s\) of vindr_cxr have Cardiomegaly 1 but Has Finding 0.*\(bad\/i\.csv, line 13\)$/);
    // Too few positives for a stratified train/val split.
    const one = [head, ...Array.from({ length: 40 }, (_, i) => ['vindr_cxr', `j${i}`, `j${i}`, '', i === 0 ? '1' : '0', i === 0 ? '1' : '0'])];
    await expect(bad('j.csv', one, { calib_frac: 0 })).rejects.toThrow(/the train\/val split of vindr_cxr \(StratifiedShuffleSplit over 40 training rows, 1 positive\) is impossible: the least populated class has only 1 member/);
    await expect(bad('k.csv', [head], { dataset: 'nih' })).rejects.toThrow('with.dataset must be one of');
    await expect(bad('l.csv', [head], { max_metadata_mb: 0.00001 })).rejects.toThrow(/bad\/l\.csv is 0\.0 MB, more than with\.max_metadata_mb = 0\.00001; raise with\.max_metadata_mb/);
  });

  it('a file without a dset column takes with.dataset; pediatric sets go to test whole', async () => {
    await copyFile(join(FIXTURES, 'vindr_pcxr.metadata.csv'), join(ws.dir, 'pcxr.csv'));
    const text = (await readFile(join(ws.dir, 'pcxr.csv'), 'utf8')).split('\n').map((l) => l.split(',').slice(1).join(',')).join('\n');
    await writeFile(join(ws.dir, 'pcxr-nodset.csv'), text);
    await run(fakeContext(ws.dir, { ...W, metadata: 'pcxr-nodset.csv', out: 'pcxr-split.csv', dataset: 'vindr_pcxr' }));
    const out = records(await readFile(join(ws.dir, 'pcxr-split.csv'), 'utf8'));
    expect(out).toHaveLength(300);
    expect(new Set(out.map((r) => r['split']))).toEqual(new Set(['test']));
  });
});
