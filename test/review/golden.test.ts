// Golden tests: the review's tables against the authors' own published outputs (data/seed/published/review/, upstream
// data/save_data/figures/eda/open_mi/), every cell. Numbers are compared at the precision the published column shows,
// dataset lists as sets with their counts, row order only where METHODS defines it. A mismatch names the cell, both
// values and the workbook rows that feed it.
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, test } from 'vitest';
import { analyzeWorkbook, type ReviewResult } from '../../stages/review/lib/analyze.js';
import { BREAKDOWN_TASKS, breakdownContributions, MODALITY_UNITS, SIDES, type Side } from '../../stages/review/lib/breakdown.js';
import { isUsable, loadAll } from '../../stages/review/lib/load.js';
import { pedsDatasets, pedsFileStem } from '../../stages/review/lib/peds-datasets.js';
import { pyRound } from '../../stages/lib/pynum.js';
import { summaryRowSets } from '../../stages/review/lib/summary-table.js';
import type { Dataset, Workbook } from '../../stages/review/lib/types.js';
import { WarningLog } from '../../stages/review/lib/warnings.js';
import { ROOT, seedWorkbook } from './helpers.js';

const PUBLISHED = `${ROOT}data/seed/published/review/`;
const published = (name: string): string[][] => parse(readFileSync(`${PUBLISHED}${name}`, 'utf8')) as string[][];
const ours = (name: string): string[][] => parse(result.files[name]!) as string[][];

let wb: Workbook;
let result: ReviewResult;
let analysisSet: Dataset[];
beforeAll(async () => {
  wb = await seedWorkbook();
  result = analyzeWorkbook(wb, { excludeCancer: false, topCountries: 3 });
  analysisSet = loadAll(wb, {}, new WarningLog());
});

const NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;
const decimals = (s: string): number => (s.includes('.') && !/e/i.test(s) ? s.length - s.indexOf('.') - 1 : 0);

/** Decimal places a published column shows (its most precise cell): the precision ours is compared at. */
function columnPrecision(rows: string[][], column: number): number {
  return Math.max(0, ...rows.map((r) => (NUMBER.test(r[column] ?? '') ? decimals(r[column]!) : 0)));
}

/** Equal at the published precision (numbers), or exactly (text). */
function sameCell(mine: string | undefined, theirs: string, precision: number): boolean {
  if (mine === undefined) return false;
  if (NUMBER.test(theirs) && NUMBER.test(mine)) return pyRound(Number(mine), precision) === Number(theirs);
  return mine === theirs;
}

const where = (d: Dataset): string => `${d.sheet}!${d.excelRow} "${String(d.cells['Dataset Name'])}"`;

/** Collects every mismatching cell with its explanation, so one run reports them all. */
class Mismatches {
  readonly list: string[] = [];
  add(cell: string, mine: string | undefined, theirs: string, feeders: string): void {
    this.list.push(`${cell}: ours ${mine === undefined ? '(missing)' : JSON.stringify(mine)}, published ${JSON.stringify(theirs)}\n    fed by ${feeders}`);
  }
  assertNone(): void {
    expect(this.list, `${this.list.length} cell(s) differ from the published table:\n${this.list.join('\n')}`).toEqual([]);
  }
}

describe('summary_stats.csv against the published table (A.9)', () => {
  test('header, the 14 rows in the authors\' order, every cell', () => {
    const theirs = published('summary_stats.csv');
    const mine = ours('summary_stats.csv');
    expect(mine[0]).toEqual(theirs[0]);
    // A.9 fixes the rows and their order.
    expect(mine.slice(1).map((r) => r[0])).toEqual(theirs.slice(1).map((r) => r[0]));
    const sets = new Map(summaryRowSets(wb, new WarningLog()).map((s) => [s.index, s.rows]));
    const bad = new Mismatches();
    const header = theirs[0]!;
    for (const [i, row] of theirs.slice(1).entries()) {
      for (let c = 1; c < header.length; c++) {
        const mineCell = mine[i + 1]?.[c];
        if (sameCell(mineCell, row[c]!, columnPrecision(theirs.slice(1), c))) continue;
        const rows = sets.get(row[0]!) ?? [];
        const usable = rows.filter(isUsable);
        const feeders = /num_datasets_total|num_countries|num_institutions/.test(header[c]!)
          ? `${rows.length} workbook rows: ${rows.map(where).join(', ')}`
          : `${usable.length} usable workbook rows: ${usable.map((d) => `${where(d)} (patients ${d.numPatients}, adult share ${d.propAdult})`).join(', ')}`;
        bad.add(`summary_stats.csv, row "${row[0]}", column "${header[c]}"`, mineCell, row[c]!, feeders);
      }
    }
    bad.assertNone();
  });
});

describe('breakdown_by_modality_and_task.csv against the published table (A.10)', () => {
  test('both header rows, modalities in the fixed order, all 50 cells', () => {
    const theirs = published('breakdown_by_modality_and_task.csv');
    const mine = ours('breakdown_by_modality_and_task.csv');
    expect(mine.slice(0, 2)).toEqual(theirs.slice(0, 2));
    expect(mine.slice(2).map((r) => r[0])).toEqual(theirs.slice(2).map((r) => r[0]));
    const bad = new Mismatches();
    let cells = 0;
    for (const [i, row] of theirs.slice(2).entries()) {
      for (let c = 1; c < row.length; c++) {
        cells++;
        const mineCell = mine[i + 2]?.[c];
        if (sameCell(mineCell, row[c]!, 0)) continue;
        const task = BREAKDOWN_TASKS.find((t) => t.label === theirs[0]![c])!;
        const side = theirs[1]![c] as Side;
        const feeding = breakdownContributions(analysisSet, row[0]!, task, side);
        const feeders = `${feeding.length} workbook rows: ${feeding
          .map((f) => `${where(f.dataset)} (sequences ${f.dataset.numSequences}, images ${f.dataset.numImages}, ` +
            `points ${f.points}, × ${side} share ${f.share} = ${f.value})`)
          .join(', ')}`;
        bad.add(`breakdown_by_modality_and_task.csv, row "${row[0]}", column "${theirs[0]![c]} / ${side}"`, mineCell, row[c]!, feeders);
      }
    }
    expect(cells).toBe(MODALITY_UNITS.length * BREAKDOWN_TASKS.length * SIDES.length);
    bad.assertNone();
  });
});

describe('peds_datasets/<modality>.csv against the published lists (A.11)', () => {
  for (const { modality } of MODALITY_UNITS) {
    const file = `peds_datasets/${pedsFileStem(modality)}.csv`;
    test(`${file}: the same datasets, every column, sorted by Percentage Overall`, () => {
      const theirs = published(file);
      const mine = ours(file);
      expect(mine[0]).toEqual(theirs[0]);
      const header = theirs[0]!;
      const nameCol = header.indexOf('Dataset Name');
      const pctCol = header.indexOf('Percentage Overall');
      // The same datasets, each listed as often (a set with counts).
      const count = (rows: string[][]) => {
        const m = new Map<string, number>();
        for (const r of rows) m.set(r[nameCol]!, (m.get(r[nameCol]!) ?? 0) + 1);
        return Object.fromEntries([...m].sort());
      };
      expect(count(mine.slice(1)), `${file}: datasets listed`).toEqual(count(theirs.slice(1)));
      // Order: A.11 sorts by Percentage Overall descending; ties (2022 AMOS / AMOS) have no defined order.
      const groups = (rows: string[][]) => {
        const g: Array<{ pct: string; names: string[] }> = [];
        for (const r of rows) {
          if (g.at(-1)?.pct === r[pctCol]) g.at(-1)!.names.push(r[nameCol]!);
          else g.push({ pct: r[pctCol]!, names: [r[nameCol]!] });
        }
        return g.map((x) => ({ pct: x.pct, names: x.names.sort() }));
      };
      expect(groups(mine.slice(1)), `${file}: order by Percentage Overall`).toEqual(groups(theirs.slice(1)));
      // Every cell of every dataset.
      const feeding = new Map(pedsDatasets(analysisSet, modality).map((r) => [String(r.dataset.cells['Dataset Name']), r.dataset]));
      const bad = new Mismatches();
      for (const row of theirs.slice(1)) {
        const mineRow = mine.find((r) => r[nameCol] === row[nameCol]);
        for (let c = 0; c < header.length; c++) {
          if (sameCell(mineRow?.[c], row[c]!, columnPrecision(theirs.slice(1), c))) continue;
          const d = feeding.get(row[nameCol]!);
          bad.add(`${file}, dataset "${row[nameCol]}", column "${header[c]}"`, mineRow?.[c], row[c]!,
            d ? `${where(d)} (sample size ${JSON.stringify(d.cells['Sample Size'])}, sequences ${d.numSequences}, images ` +
              `${d.numImages}, adult share ${d.propAdult})` : 'no workbook row (the dataset is not in our list)');
        }
      }
      bad.assertNone();
    });
  }
});
