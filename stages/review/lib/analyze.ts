import { breakdown, breakdownCsvRows, digitClass, digitClassLabel, MODALITY_UNITS, BREAKDOWN_TASKS, type BreakdownCell } from './breakdown.js';
import { csvText, pandasNumber } from '../../lib/pandas-csv.js';
import { ageDocumented, countries, modalities, summaryStatisticsAgeFields, taskCategories, AGE_LEVELS, type ShareRow } from './figures.js';
import { isUsable, loadAll } from './load.js';
import { countryLinesWithoutParen } from './sources.js';
import { pedsCsvRows, pedsDatasets, pedsFileStem } from './peds-datasets.js';
import { describePapers, describeRepackaging } from './printed.js';
import { containsChildrenCounts } from './summary.js';
import { summaryTable } from './summary-table.js';
import type { ReviewWarning, Workbook } from './types.js';
import { WarningLog } from './warnings.js';

export interface AnalyzeOptions {
  /** Drop cancer datasets (A.7) from the analysis set behind every output except the fixed summary rows. */
  excludeCancer: boolean;
  /** Number of countries in the country figure. */
  topCountries: number;
}

export interface ReviewResult {
  /** Output files, relative to the out directory, with their content. */
  files: Record<string, string>;
  totals: {
    datasets: number;
    usable: number;
    patients: number;
    children: number;
    perc_children: number | null;
    contains_children: Record<string, number>;
  };
  warnings: ReviewWarning[];
}

const SUMMARY_COLUMNS = [
  'index', 'num_countries', 'num_institutions', 'num_datasets_total', 'num_datasets_filtered', 'num_total',
  'num_children', 'perc_children',
] as const;

/** The whole review (METHODS part A) from a workbook: every table, list and figure data file as text. */
export function analyzeWorkbook(wb: Workbook, opts: AnalyzeOptions): ReviewResult {
  const warnings = new WarningLog();
  const files: Record<string, string> = {};

  // A.9 summary statistics (its rows are fixed by the authors; "Total w/o Cancer" always excludes cancer).
  const summary = summaryTable(wb, warnings);
  files['summary_stats.csv'] = csvText([
    [...SUMMARY_COLUMNS],
    ...summary.map((s) => SUMMARY_COLUMNS.map((c) => (c === 'index' ? s[c] : pandasNumber(s[c], c === 'perc_children' ? 'float' : 'int')))),
  ]);

  const rows = loadAll(wb, { excludeCancer: opts.excludeCancer }, warnings);
  const usable = rows.filter(isUsable);
  const total = summary.find((s) => s.index === 'Total')!;
  const contains = containsChildrenCounts(rows);
  const totals = {
    datasets: rows.length,
    usable: usable.length,
    patients: opts.excludeCancer ? summary.find((s) => s.index === 'Total w/o Cancer')!.num_total : total.num_total,
    children: opts.excludeCancer ? summary.find((s) => s.index === 'Total w/o Cancer')!.num_children : total.num_children,
    perc_children: opts.excludeCancer
      ? summary.find((s) => s.index === 'Total w/o Cancer')!.perc_children
      : total.perc_children,
    contains_children: contains,
  };

  // A.10 breakdown: the authors' two-header-row table, plus a long table for plotting.
  const cells = breakdown(rows);
  files['breakdown_by_modality_and_task.csv'] = csvText(breakdownCsvRows(cells));
  files['breakdown.csv'] = csvText(breakdownLongRows(cells));

  // A.11 pediatric datasets per modality.
  const pedsCounts: Record<string, number> = {};
  for (const { modality } of MODALITY_UNITS) {
    const list = pedsDatasets(rows, modality);
    pedsCounts[pedsFileStem(modality)] = list.length;
    files[`peds_datasets/${pedsFileStem(modality)}.csv`] = csvText(pedsCsvRows(list, rows));
  }

  // A.11 figure data.
  const age = ageDocumented(wb);
  files['age_documented_how.csv'] = csvText([
    ['category', 'category_order', 'level', 'level_order', 'color', 'count', 'total', 'percent', 'start', 'end'],
    ...age.rows.map((r) => [
      r.category, pandasNumber(r.category_order), r.level, pandasNumber(r.level_order),
      AGE_LEVELS[r.level_order]!.color, pandasNumber(r.count), pandasNumber(r.total), pandasNumber(r.percent),
      pandasNumber(r.start), pandasNumber(r.end),
    ]),
  ]);
  for (const [level, n] of Object.entries(age.otherLevels)) {
    warnings.add({ kind: 'unknown_age_documented_level', sheet: '(several)', row: 0, column: 'Age Documented How',
      message: `${n} row(s) have the level "${level}", which is none of the five the figure shows` });
  }
  const c = countries(rows, opts.topCountries);
  for (const d of usable) {
    for (const line of countryLinesWithoutParen(d)) {
      warnings.add({ kind: 'source_line_without_country', sheet: d.sheet, row: d.excelRow, column: 'Source / Institutions (Location)',
        message: `the line ${JSON.stringify(line)} has no "(country)"; the country figure counts it as a country of its ` +
          'own, as the authors\' plot_countries does (the summary statistics skip it)' });
    }
  }
  const countryCsv = (list: typeof c.top) =>
    csvText([
      ['country', 'group', 'percent', 'patients', 'rank'],
      ...list.map((r) => [r.country, r.group, pandasNumber(r.percent), pandasNumber(r.patients), pandasNumber(r.rank)]),
    ]);
  files['countries.csv'] = countryCsv(c.top);
  files['countries_all.csv'] = countryCsv(c.all);
  const tasks = taskCategories(rows);
  files['task_categories.csv'] = shareCsv('task', tasks);
  const mods = modalities(rows);
  files['modalities.csv'] = shareCsv('modality', mods);

  const warningList = warnings.list();
  const summaryJson = {
    workbook: wb.file,
    options: { exclude_cancer: opts.excludeCancer, top_countries: opts.topCountries },
    totals,
    summary_stats: summary,
    contains_children: contains,
    // Why datasets of the analysis set are not among the usable ones (METHODS A.8).
    not_usable: {
      no_share_of_adults: rows.filter((d) => d.propAdult === null).length,
      no_patient_count: rows.filter((d) => d.numPatients === null).length,
      peds_adult_without_percentage: rows.filter((d) => d.containsChildren === 'Peds & Adult' && d.propAdult === null).length,
    },
    breakdown: cells,
    peds_datasets: pedsCounts,
    figures: {
      age_documented_how: age.rows,
      summary_statistics_age_fields: summaryStatisticsAgeFields(wb),
      countries: c.top,
      task_categories: tasks,
      modalities: mods,
    },
    warnings: { counts: warnings.counts(), list: warningList },
  };
  files['summary_stats.json'] = JSON.stringify(
    { rows: summary, contains_children: contains, totals, warnings: warnings.counts() },
    null,
    2,
  ) + '\n';
  files['review.json'] = JSON.stringify(summaryJson, null, 2) + '\n';
  files['printed.json'] = JSON.stringify({ papers: describePapers(wb), repackaging: describeRepackaging(wb) }, null, 2) + '\n';
  return { files, totals, warnings: warningList };
}

function shareCsv(labelColumn: string, rows: readonly ShareRow[]): string {
  return csvText([
    [labelColumn, 'count', 'total', 'percent', 'rank'],
    ...rows.map((r) => [r.label, pandasNumber(r.count), pandasNumber(r.total), pandasNumber(r.percent), pandasNumber(r.rank)]),
  ]);
}

/** Long format of the breakdown for the table-like heatmap: one row per cell with its colour class. */
function breakdownLongRows(cells: readonly BreakdownCell[]): string[][] {
  const modalityOrder: string[] = MODALITY_UNITS.map((m) => m.modality);
  const taskOrder = BREAKDOWN_TASKS.map((t) => t.label);
  return [
    ['modality', 'modality_order', 'task', 'type', 'column', 'column_order', 'count', 'label', 'digits', 'digit_class'],
    ...cells.map((cell) => {
      const columnOrder = taskOrder.indexOf(cell.task) * 2 + (cell.type === 'Adult' ? 0 : 1);
      return [
        cell.modality, pandasNumber(modalityOrder.indexOf(cell.modality)), cell.task, cell.type,
        `${cell.task} (${cell.type})`, pandasNumber(columnOrder), pandasNumber(cell.count, 'int'),
        cell.count.toLocaleString('en-US'), pandasNumber(digitClass(cell.count)), digitClassLabel(digitClass(cell.count)),
      ];
    }),
  ];
}
