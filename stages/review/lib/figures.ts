import { str } from './cells.js';
import { isUsable, rawRows, type Category } from './load.js';
import { pandasCell } from '../../lib/pandas-csv.js';
import { npRound, pyFloorDiv, pyRound } from '../../lib/pynum.js';
import { COL } from './sheets.js';
import { datasetCountries } from './sources.js';
import type { Dataset, Workbook } from './types.js';

/** A.11 age documentation: categories top → bottom as the figure shows them, and their sheets. */
export const AGE_CATEGORIES: ReadonlyArray<{ label: string; category: Category }> = [
  { label: 'Conference Papers', category: 'papers' },
  { label: 'Data Collections', category: 'collections_datasets' },
  { label: 'Challenges', category: 'challenges' },
  { label: 'Benchmarks', category: 'benchmarks' },
  { label: 'Well-Cited Datasets', category: 'datasets' },
];

/** Segments left → right with the authors' colours. */
export const AGE_LEVELS = [
  { level: 'Not Documented', color: '#7D85A7' },
  { level: 'Task/Data Description', color: '#85B8A2' },
  { level: 'Summary Statistics', color: '#4C9AC9' },
  { level: 'Binned Patient-Level', color: '#F2B87D' },
  { level: 'Patient-Level', color: '#FF7F4C' },
] as const;

export interface AgeDocumentedRow {
  category: string;
  category_order: number;
  level: string;
  level_order: number;
  count: number;
  total: number;
  percent: number;
  /** Cumulative start/end of the segment, as the authors draw overlapping cumulative bars. */
  start: number;
  end: number;
}

/** A.11 `plot_age_documented`: per raw category (no de-duplication), % of rows per `Age Documented How`. */
export function ageDocumented(wb: Workbook): { rows: AgeDocumentedRow[]; otherLevels: Record<string, number> } {
  const rows: AgeDocumentedRow[] = [];
  const otherLevels: Record<string, number> = {};
  AGE_CATEGORIES.forEach(({ label, category }, categoryOrder) => {
    const raw = rawRows(wb, category);
    const counts = new Map<string, number>();
    for (const r of raw) {
      // fillna("Not Documented"): only missing cells; any other value is its own level.
      const cell = r.cells[COL.ageDocumentedHow] ?? null;
      const level = cell === null ? 'Not Documented' : pandasCell(cell);
      counts.set(level, (counts.get(level) ?? 0) + 1);
      if (!AGE_LEVELS.some((l) => l.level === level)) otherLevels[level] = (otherLevels[level] ?? 0) + 1;
    }
    let cumulative = 0;
    AGE_LEVELS.forEach(({ level }, levelOrder) => {
      const count = counts.get(level) ?? 0;
      // (100 * value_counts(normalize=True)).round(1): the share first, then ×100, then numpy rounding.
      const percent = raw.length === 0 ? 0 : npRound(100 * (count / raw.length), 1);
      rows.push({
        category: label, category_order: categoryOrder, level, level_order: levelOrder, count, total: raw.length,
        percent, start: npRound(cumulative, 1), end: npRound(cumulative + percent, 1),
      });
      cumulative += percent;
    });
  });
  return { rows, otherLevels };
}

/** A.11 printout: of the "Summary Statistics" rows, the share whose demographics give each age field. */
export function summaryStatisticsAgeFields(wb: Workbook): Record<string, { count: number; total: number; share: number }> {
  const rows = AGE_CATEGORIES.flatMap(({ category }) => rawRows(wb, category)).filter(
    (r) => r.cells[COL.ageDocumentedHow] === 'Summary Statistics',
  );
  const out: Record<string, { count: number; total: number; share: number }> = {};
  for (const field of ['Age Range:', 'Avg. Age:', 'Median Age:']) {
    const count = rows.filter((r) => (str(r.cells[COL.demographics] ?? null) ?? '').includes(field)).length;
    out[field.replace(':', '')] = { count, total: rows.length, share: rows.length ? pyRound(count / rows.length, 4) : 0 };
  }
  return out;
}

export interface CountryRow {
  country: string;
  group: 'All' | 'Children';
  percent: number;
  patients: number;
  rank: number;
}

/**
 * A.11 `plot_countries`: each usable dataset's patients split evenly over its country occurrences (last "(…)" of each
 * Source line) with Python's float floor division, children likewise with num_patients × (1 − PropAdult) (0 counts
 * as missing). Percent of each group's grand total (Python round, 2 dp); countries ranked by that rounded percent
 * (ties in order of first appearance: the authors' unstable sort leaves them undefined); the top `top` countries by
 * "All", with their "Children" share (0 if absent).
 */
export function countries(rows: readonly Dataset[], top = 3): { top: CountryRow[]; all: CountryRow[] } {
  const all = new Map<string, number>();
  const children = new Map<string, number>();
  for (const d of rows.filter(isUsable)) {
    const list = datasetCountries(d);
    if (list.length === 0) continue;
    const each = pyFloorDiv(d.numPatients!, list.length);
    const kids = d.numPatients! * (1 - d.propAdult!);
    for (const c of list) all.set(c, (all.get(c) ?? 0) + each);
    if (kids !== 0) {
      const eachKid = pyFloorDiv(kids, list.length);
      for (const c of list) children.set(c, (children.get(c) ?? 0) + eachKid);
    }
  }
  const totalAll = sum(all.values());
  const totalChildren = sum(children.values());
  const percentAll = (patients: number) => pyRound((100 * patients) / totalAll, 2);
  const ranked = [...all.entries()]
    .map((e, i) => ({ e, i }))
    .sort((a, b) => percentAll(b.e[1]) - percentAll(a.e[1]) || a.i - b.i)
    .map(({ e }) => e);
  const rowsOf = (entries: Array<[string, number]>): CountryRow[] =>
    entries.flatMap(([country, patients], rank) => [
      { country, group: 'All' as const, percent: percentAll(patients), patients, rank },
      {
        country, group: 'Children' as const, rank,
        percent: totalChildren === 0 ? 0 : pyRound((100 * (children.get(country) ?? 0)) / totalChildren, 2),
        patients: children.get(country) ?? 0,
      },
    ]);
  return { top: rowsOf(ranked.slice(0, top)), all: rowsOf(ranked) };
}

function sum(values: Iterable<number>): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** A.11 task labels of the task figure. */
export const TASK_LABELS = [
  'Anatomy/Organ Segmentation/Detection',
  'Lesion/Tumor Segmentation/Detection',
  'Disease (Risk) Segmentation/Detection',
  'Condition/Disease Classification',
  'Image Reconstruction/Generation (Enhancement/Registration)',
];

export interface ShareRow {
  label: string;
  count: number;
  total: number;
  percent: number;
  rank: number;
}

function shares(labels: readonly string[], texts: ReadonlyArray<string | null>, denominator: number): ShareRow[] {
  return labels
    .map((label) => {
      const count = texts.filter((t) => t !== null && t.includes(label)).length;
      return { label, count, total: denominator, percent: denominator ? pyRound((100 * count) / denominator, 2) : 0 };
    })
    .map((r, i) => ({ r, i }))
    .sort((a, b) => b.r.count - a.r.count || a.i - b.i)
    .map(({ r }, rank) => ({ ...r, rank }));
}

/** A.11 `plot_task_types`: % of usable datasets with a task category that contain each label (substring). */
export function taskCategories(rows: readonly Dataset[]): ShareRow[] {
  const texts = rows
    .filter(isUsable)
    .map((d) => str(d.cells[COL.taskCategory] ?? null))
    .filter((t): t is string => t !== null && t !== '');
  return shares(TASK_LABELS, texts, texts.length);
}

export const FIGURE_MODALITIES = ['CT', 'MRI', 'X-ray', 'US', 'Fundus'];

/** A.11 `plot_modalities`: % of usable datasets whose modality text contains each name (substring, unlike A.10). */
export function modalities(rows: readonly Dataset[]): ShareRow[] {
  const usable = rows.filter(isUsable);
  return shares(FIGURE_MODALITIES, usable.map((d) => str(d.cells[COL.modality] ?? null)), usable.length);
}
