// The review on the authors' vendored workbook: every number METHODS.md part A gives, and the output formats.
import { beforeAll, describe, expect, test } from 'vitest';
import { analyzeWorkbook, type ReviewResult } from '../../stages/review/lib/analyze.js';
import { loadAll, rawRows } from '../../stages/review/lib/load.js';
import { containsChildrenCounts } from '../../stages/review/lib/summary.js';
import type { Workbook } from '../../stages/review/lib/types.js';
import { WarningLog } from '../../stages/review/lib/warnings.js';
import { csvRecords, seedWorkbook } from './helpers.js';

let wb: Workbook;
let result: ReviewResult;
beforeAll(async () => {
  wb = await seedWorkbook();
  result = analyzeWorkbook(wb, { excludeCancer: false, topCountries: 3 });
});

describe('analysis set (A.2)', () => {
  test('row counts per category and after de-duplication', () => {
    expect(rawRows(wb, 'challenges')).toHaveLength(58);
    expect(rawRows(wb, 'benchmarks')).toHaveLength(18);
    expect(rawRows(wb, 'datasets')).toHaveLength(30);
    expect(rawRows(wb, 'collections_datasets')).toHaveLength(106);
    expect(rawRows(wb, 'papers')).toHaveLength(46);
    const all = loadAll(wb, {}, new WarningLog());
    expect(all).toHaveLength(203);
    const byCategory = (c: string) => all.filter((d) => d.category === c).length;
    expect([byCategory('challenges'), byCategory('benchmarks'), byCategory('datasets'), byCategory('collections_datasets')])
      .toEqual([58, 18, 25, 102]);
    // No fuzzy matching: both AMOS entries stay.
    const names = all.map((d) => d.cells['Dataset Name']);
    expect(names).toContain('2022 AMOS');
    expect(names).toContain('AMOS');
  });
  test('forward fill of Benchmark and Image Collection', () => {
    const collections = rawRows(wb, 'collections_datasets');
    expect(new Set(collections.map((r) => r.cells['Image Collection']))).toEqual(
      new Set(['MIDRC', 'Stanford AIMI', 'TCIA']),
    );
    expect(rawRows(wb, 'benchmarks').every((r) => typeof r.cells['Benchmark'] === 'string')).toBe(true);
  });
});

describe('headline totals (A.8, A.9)', () => {
  test('203 datasets, 135 usable, 512,608 patients, 6,026 children, 1.18 %', () => {
    expect(result.totals).toMatchObject({ datasets: 203, usable: 135, patients: 512608, children: 6026, perc_children: 1.18 });
  });
  test('Contains Children of the usable datasets: Adult Only 101, Peds & Adult 29, Peds Only 5', () => {
    expect(result.totals.contains_children).toEqual({ 'Adult Only': 101, 'Peds & Adult': 29, 'Peds Only': 5 });
    expect(containsChildrenCounts(loadAll(wb, {}, new WarningLog()))).toEqual(result.totals.contains_children);
  });
  test('the sum is sequential: numpy-style pairwise summation would give 512,607 (METHODS A.8 pitfall)', () => {
    const usable = loadAll(wb, {}, new WarningLog()).filter((d) => d.propAdult !== null && d.numPatients !== null);
    const adults = usable.map((d) => d.propAdult! * d.numPatients!);
    const children = usable.map((d) => (1 - d.propAdult!) * d.numPatients!);
    expect(Math.trunc(pairwiseSum(adults) + pairwiseSum(children))).toBe(512607);
    expect(result.totals.patients).toBe(512608);
  });
  test('no warnings on the authors\' workbook', () => {
    expect(result.warnings).toEqual([]);
  });
});

describe('summary_stats.csv (A.9)', () => {
  const COLUMNS = 'index,num_countries,num_institutions,num_datasets_total,num_datasets_filtered,num_total,num_children,perc_children';
  test('header, 14 rows in the authors\' order, Total row', () => {
    const text = result.files['summary_stats.csv']!;
    expect(text.split('\n')[0]).toBe(COLUMNS);
    const rows = csvRecords(text);
    expect(rows.map((r) => r.index)).toEqual([
      'Dataset Collections', 'Collection tcia', 'Collection midrc_parsed', 'Collection stanford_aimi', 'ML Challenges',
      'ML Challenges (Grand Challenge)', 'ML Challenges (Kaggle)', 'Highly-Cited Datasets', 'ML Benchmarks',
      'Benchmarks (MSD)', 'Benchmarks (MedFAIR)', 'Benchmarks (AMOS)', 'Total', 'Total w/o Cancer',
    ]);
    const total = rows.find((r) => r.index === 'Total')!;
    expect([total.num_datasets_total, total.num_datasets_filtered, total.num_total, total.num_children, total.perc_children])
      .toEqual(['203', '135', '512608', '6026', '1.18']);
  });
  test('every row is consistent', () => {
    const rows = csvRecords(result.files['summary_stats.csv']!);
    const by = Object.fromEntries(rows.map((r) => [r.index, r]));
    for (const r of rows) {
      const [total, filtered, patients, children] = [r.num_datasets_total, r.num_datasets_filtered, r.num_total, r.num_children].map(Number) as [number, number, number, number];
      expect(filtered).toBeLessThanOrEqual(total);
      expect(children).toBeLessThanOrEqual(patients);
      expect(r.perc_children).toMatch(/^\d+\.\d+$/); // a float as pandas writes it, e.g. "0.0"
      // num_children is truncated, so the exact share lies within [children, children + 1) / patients.
      expect(Number(r.perc_children)).toBeGreaterThanOrEqual((100 * children) / patients - 0.005);
      expect(Number(r.perc_children)).toBeLessThanOrEqual((100 * (children + 1)) / patients + 0.005);
    }
    const n = (i: string, c: string) => Number(by[i]![c]);
    // The three collections partition "Dataset Collections" (no names shared between them).
    const parts = (c: string) => n('Collection tcia', c) + n('Collection midrc_parsed', c) + n('Collection stanford_aimi', c);
    for (const c of ['num_datasets_total', 'num_datasets_filtered']) expect(parts(c)).toBe(n('Dataset Collections', c));
    // Counts are truncated float sums (summation order matters at .999…): the parts agree within 2 patients.
    for (const c of ['num_total', 'num_children']) {
      expect(Math.abs(n('Dataset Collections', c) - parts(c))).toBeLessThanOrEqual(2);
    }
    expect(n('Dataset Collections', 'num_datasets_total')).toBe(106);
    expect(n('ML Challenges', 'num_datasets_total')).toBe(58);
    expect(n('Highly-Cited Datasets', 'num_datasets_total')).toBe(30);
    expect(n('ML Benchmarks', 'num_datasets_total')).toBe(18);
    expect(n('ML Challenges (Grand Challenge)', 'num_datasets_total') + n('ML Challenges (Kaggle)', 'num_datasets_total'))
      .toBeLessThanOrEqual(58);
    expect(n('Benchmarks (MSD)', 'num_datasets_total') + n('Benchmarks (MedFAIR)', 'num_datasets_total') + n('Benchmarks (AMOS)', 'num_datasets_total'))
      .toBe(18);
    expect(n('Total w/o Cancer', 'num_datasets_total')).toBeLessThan(203);
  });
  test('summary_stats.json holds the same rows and the Contains Children counts', () => {
    const json = JSON.parse(result.files['summary_stats.json']!) as { rows: Array<Record<string, unknown>>; contains_children: unknown };
    const csv = csvRecords(result.files['summary_stats.csv']!);
    expect(json.rows.map((r) => String(r.num_total))).toEqual(csv.map((r) => r.num_total));
    expect(json.contains_children).toEqual({ 'Adult Only': 101, 'Peds & Adult': 29, 'Peds Only': 5 });
  });
});

describe('breakdown_by_modality_and_task.csv (A.10)', () => {
  test('two header rows, five modalities in order, 50 integer cells', () => {
    const lines = result.files['breakdown_by_modality_and_task.csv']!.trimEnd().split('\n');
    expect(lines[0]).toBe(
      'Task,All,All,Condition Classification,Condition Classification,Anatomy Segmentation,Anatomy Segmentation,' +
        'Lesion Segmentation,Lesion Segmentation,Image Enhancement,Image Enhancement',
    );
    expect(lines[1]).toBe('Type,Adult,Peds,Adult,Peds,Adult,Peds,Adult,Peds,Adult,Peds');
    expect(lines.slice(2).map((l) => l.split(',')[0])).toEqual(['X-ray', 'US', 'CT', 'MRI', 'Fundus']);
    const cells = lines.slice(2).flatMap((l) => l.split(',').slice(1));
    expect(cells).toHaveLength(50);
    for (const c of cells) expect(c).toMatch(/^\d+$/);
    // Each task is a subset of "All" on the same side.
    for (const l of lines.slice(2)) {
      const v = l.split(',').slice(1).map(Number);
      for (let i = 2; i < 10; i++) expect(v[i]!).toBeLessThanOrEqual(v[i % 2]!);
    }
    // Only US has Peds Only data (EchoNet Pediatric): its pediatric "All" is the largest pediatric share of a row.
    expect(lines.find((l) => l.startsWith('US,'))).toMatch(/^US,\d+,4467,/);
  });
  test('long format has one row per cell with its digit class', () => {
    const rows = csvRecords(result.files['breakdown.csv']!);
    expect(rows).toHaveLength(50);
    for (const r of rows) expect(r.digits).toBe(String(r.count === '0' ? 0 : r.count!.length));
  });
});

describe('peds_datasets/*.csv (A.11)', () => {
  test('row counts 17 / 9 / 9 / 1 / 3, columns in order, sorted by Percentage Overall', () => {
    const counts: Record<string, number> = {};
    for (const stem of ['ct', 'mri', 'x-ray', 'us', 'fundus']) {
      const text = result.files[`peds_datasets/${stem}.csv`]!;
      expect(text.split('\n')[0]).toBe(
        'Category,Image Collection,Benchmark,Dataset Name,Link,Paper Link,Considerations,Inferred,' +
          'Is Age Explicitly Documented,Age Documented How,Is Age Complete,Source / Institutions (Location),' +
          'Patient Demographics / Covariates / Metadata,Sample Size,Peds Sample Size,Percentage Overall,' +
          'Imaging Modality(ies),Peds vs. Adult,Organ / Body Part,Task / Pathology,Task Category',
      );
      const rows = csvRecords(text);
      counts[stem] = rows.length;
      const pct = rows.map((r) => Number(r['Percentage Overall']));
      expect([...pct].sort((a, b) => b - a)).toEqual(pct);
      expect(Math.abs(pct.reduce((a, b) => a + b, 0) - 100)).toBeLessThan(0.1);
    }
    expect(counts).toEqual({ ct: 17, mri: 9, 'x-ray': 9, us: 1, fundus: 3 });
  });
  test('values and formats: floats as pandas writes them, booleans True/False, ties in stable order', () => {
    const us = csvRecords(result.files['peds_datasets/us.csv']!);
    expect(us[0]).toMatchObject({
      'Category': 'collections_datasets',
      'Image Collection': 'Stanford AIMI',
      'Dataset Name': 'EchoNet Pediatric',
      'Is Age Explicitly Documented': 'True',
      'Peds Sample Size': '4467.0',
      'Percentage Overall': '100.0',
      'Peds vs. Adult': 'Peds',
    });
    const ct = csvRecords(result.files['peds_datasets/ct.csv']!).map((r) => r['Dataset Name']);
    expect(ct.indexOf('2022 AMOS')).toBe(ct.indexOf('AMOS') - 1);
  });
});

describe('figure data (A.11)', () => {
  test('modalities: CT 52.59, MRI 38.52, X-ray 14.81, US 8.15, Fundus 3.70', () => {
    const rows = csvRecords(result.files['modalities.csv']!);
    expect(rows.map((r) => [r.modality, Number(r.percent)])).toEqual([
      ['CT', 52.59], ['MRI', 38.52], ['X-ray', 14.81], ['US', 8.15], ['Fundus', 3.7],
    ]);
  });
  test('countries: USA 77.68/95.56, Spain 13.39/3.44, Vietnam 3.53/0.0', () => {
    const rows = csvRecords(result.files['countries.csv']!);
    expect(rows.map((r) => [r.country, r.group, Number(r.percent)])).toEqual([
      ['USA', 'All', 77.68], ['USA', 'Children', 95.56],
      ['Spain', 'All', 13.39], ['Spain', 'Children', 3.44],
      ['Vietnam', 'All', 3.53], ['Vietnam', 'Children', 0],
    ]);
  });
  test('task categories: denominator 116, sorted descending', () => {
    const rows = csvRecords(result.files['task_categories.csv']!);
    expect(rows).toHaveLength(5);
    for (const r of rows) expect(r.total).toBe('116');
    const pct = rows.map((r) => Number(r.percent));
    expect([...pct].sort((a, b) => b - a)).toEqual(pct);
  });
  test('age documentation: 5 categories × 5 levels, each bar sums to 100 %', () => {
    const rows = csvRecords(result.files['age_documented_how.csv']!);
    expect(rows).toHaveLength(25);
    const totals = new Map<string, number>();
    for (const r of rows) totals.set(r.category!, (totals.get(r.category!) ?? 0) + Number(r.count));
    expect(Object.fromEntries(totals)).toEqual({
      'Conference Papers': 46, 'Data Collections': 106, 'Challenges': 58, 'Benchmarks': 18, 'Well-Cited Datasets': 30,
    });
    for (const cat of totals.keys()) {
      const pct = rows.filter((r) => r.category === cat).reduce((s, r) => s + Number(r.percent), 0);
      expect(Math.abs(pct - 100)).toBeLessThanOrEqual(0.2);
    }
  });
});

describe('printed-only analyses', () => {
  test('papers and repackaging', () => {
    const printed = JSON.parse(result.files['printed.json']!) as {
      papers: { papers: { total: number } };
      repackaging: { primary_using_patient_level_secondary: { count: number }; secondary_peds_share_weighted_by_use: number };
    };
    expect(printed.papers.papers.total).toBe(46);
    expect(printed.repackaging.primary_using_patient_level_secondary.count).toBe(8);
    // The authors' p = 0.018 ("1.18%" in their label) is this share.
    expect(printed.repackaging.secondary_peds_share_weighted_by_use).toBe(0.018);
  });
});

describe('exclude_cancer option', () => {
  test('the analysis set behind the outputs drops cancer datasets', () => {
    const r = analyzeWorkbook(wb, { excludeCancer: true, topCountries: 3 });
    expect(r.totals.datasets).toBe(100);
    const wo = csvRecords(result.files['summary_stats.csv']!).find((x) => x.index === 'Total w/o Cancer')!;
    expect(r.totals.patients).toBe(Number(wo.num_total));
    expect(r.totals.usable).toBe(Number(wo.num_datasets_filtered));
  });
});

/** numpy's pairwise summation (8 accumulators up to 128 elements, halves above), to show the order matters. */
function pairwiseSum(a: readonly number[], lo = 0, n = a.length): number {
  if (n < 8) {
    let s = 0;
    for (let i = lo; i < lo + n; i++) s += a[i]!;
    return s;
  }
  if (n <= 128) {
    const r = a.slice(lo, lo + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = r[j]! + a[lo + i + j]!;
    let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[lo + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, lo, n2) + pairwiseSum(a, lo + n2, n - n2);
}
