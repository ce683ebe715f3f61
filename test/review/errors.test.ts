// Unexpected workbook content: a clear StageError naming sheet, Excel row and column — or, where the authors' method
// treats the value as missing, a counted warning.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { StageError } from '../../engine/stage-api.js';
import { analyzeWorkbook } from '../../stages/review/lib/analyze.js';
import { mangleDuplicateColumns, readWorkbook } from '../../stages/review/lib/workbook.js';
import { csvRecords } from './helpers.js';
import { miniSheets, writeWorkbook, type SheetData } from './mini-workbook.js';

async function analyze(sheets: SheetData[]) {
  const file = await writeWorkbook(sheets);
  return analyzeWorkbook(await readWorkbook(file, 'mini.xlsx'), { excludeCancer: false, topCountries: 3 });
}

async function stageError(sheets: SheetData[]): Promise<StageError> {
  try {
    await analyze(sheets);
  } catch (e) {
    expect(e).toBeInstanceOf(StageError);
    expect((e as Error).message).not.toContain('\n'); // one paragraph
    return e as StageError;
  }
  throw new Error('expected a StageError');
}

function edit(fn: (sheets: SheetData[]) => void): SheetData[] {
  const sheets = miniSheets();
  fn(sheets);
  return sheets;
}
const sheet = (sheets: SheetData[], name: string) => sheets.find((s) => s.name === name)!;

describe('a valid mini workbook', () => {
  test('is analysed with the rules of METHODS A (imputation, de-duplication, shares)', async () => {
    const r = await analyze(miniSheets());
    // Chal A is listed twice: the challenge (first) is kept. Bench B has no share of adults: not usable.
    expect(r.totals.datasets).toBe(8);
    expect(r.totals.usable).toBe(7);
    // Patients: 1000 + 500 + 30 (MRI: patients = sequences) + 20 (Fundus: ceil(40 / 2)) + 200 + 300 + 400.
    expect(r.totals.patients).toBe(2450);
    // Children: 10 % of 1000 + 30 + 200.
    expect(r.totals.children).toBe(330);
    expect(r.totals.contains_children).toEqual({ 'Peds & Adult': 1, 'Adult Only': 4, 'Peds Only': 2 });
    expect(r.warnings).toEqual([]);
  });
});

describe('errors name the sheet, row and column', () => {
  test('a missing sheet', async () => {
    const e = await stageError(edit((s) => s.splice(3, 1)));
    expect(e.message).toContain('mini.xlsx');
    expect(e.message).toContain('sheet "Benchmarks"');
    expect(e.message).toMatch(/sheet 4 should be "Benchmarks" but is "Well-Cited Datasets"/);
  });
  test('too few sheets', async () => {
    const e = await stageError(edit((s) => s.splice(9)));
    expect(e.message).toMatch(/sheet "Repackaging \(Primary\)".*expects "Repackaging \(Primary\)" as sheet 10, but the workbook has only 9/);
  });
  test('a missing column', async () => {
    const e = await stageError(edit((s) => {
      const c = sheet(s, 'Challenges');
      c.columns = c.columns.filter((x) => x !== 'Sample Size');
    }));
    expect(e.message).toContain('sheet "Challenges", row 1, column "Sample Size"');
  });
  test('an unparseable sample size', async () => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Well-Cited Datasets').rows[1]!['Sample Size'] = 'Patients: about 40';
    }));
    // Header is row 1, so the second data row is Excel row 3.
    expect(e.message).toContain('sheet "Well-Cited Datasets", row 3, column "Sample Size"');
    expect(e.message).toContain('"Patients: about 40"');
  });
  test('a bare number as sample size', async () => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Data Collection (TCIA)').rows[0]!['Sample Size'] = 300;
    }));
    expect(e.message).toContain('sheet "Data Collection (TCIA)", row 2, column "Sample Size"');
  });
  test('a demographics line without "Key: Value"', async () => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Challenges').rows[1]!['Patient Demographics / Covariates / Metadata'] = 'Description: ok\nmostly adults';
    }));
    expect(e.message).toContain('sheet "Challenges", row 3, column "Patient Demographics / Covariates / Metadata"');
    expect(e.message).toContain('line 2');
  });
  test('a Modalities line without percentages', async () => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Benchmarks').rows[0]!['Patient Demographics / Covariates / Metadata'] = 'Modalities: CT, MRI';
    }));
    expect(e.message).toContain('sheet "Benchmarks", row 2, column "Patient Demographics / Covariates / Metadata"');
  });
  test('a file that is not an .xlsx workbook', async () => {
    const file = join(dirname(await writeWorkbook(miniSheets())), 'not.xlsx');
    await writeFile(file, 'just text');
    await expect(readWorkbook(file, 'not.xlsx')).rejects.toThrow(/not\.xlsx: cannot read the workbook as \.xlsx/);
    await expect(readWorkbook(`${file}.missing`, 'gone.xlsx')).rejects.toThrow(/gone\.xlsx: cannot read the workbook: the file does not exist/);
  });
});

describe('warnings where the authors treat a value as missing', () => {
  test('an unparseable "(x%)" in Peds vs. Adult is counted, and the dataset leaves the counts', async () => {
    const r = await analyze(edit((s) => {
      sheet(s, 'Challenges').rows[0]!['Peds vs. Adult'] = 'Peds, Adult (most%)';
    }));
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ kind: 'unparsed_peds_percentage', sheet: 'Challenges', row: 2, column: 'Peds vs. Adult' });
    expect(r.totals.usable).toBe(6);
    const json = JSON.parse(r.files['review.json']!) as { warnings: { counts: Record<string, number> } };
    expect(json.warnings.counts).toEqual({ unparsed_peds_percentage: 1 });
  });
  test('an unrecognised Peds vs. Adult value is counted as Unknown with a warning', async () => {
    const r = await analyze(edit((s) => {
      sheet(s, 'Data Collection (TCIA)').rows[0]!['Peds vs. Adult'] = 'adults';
    }));
    expect(r.warnings.map((w) => [w.kind, w.sheet, w.row])).toEqual([['unrecognised_peds_vs_adult', 'Data Collection (TCIA)', 2]]);
    expect(r.totals.usable).toBe(6);
  });
});

describe('values the authors\' parser takes but that would quietly corrupt the totals are errors', () => {
  test.each([
    ['Peds, Adult (nan%)', 'NaN'],
    ['Peds, Adult (inf%)', 'Infinity'],
    ['Peds, Adult (>150%)', '150'],
    ['Peds, Adult (-5%)', '-5'],
  ])('Peds vs. Adult %s', async (value, shown) => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Challenges').rows[0]!['Peds vs. Adult'] = value;
    }));
    expect(e.message).toContain('sheet "Challenges", row 2, column "Peds vs. Adult"');
    expect(e.message).toContain(`percentage from 0 to 100, got ${shown}`);
  });
  test('a negative sample size', async () => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Challenges').rows[1]!['Sample Size'] = 'Patients: -500';
    }));
    expect(e.message).toContain('sheet "Challenges", row 3, column "Sample Size"');
    expect(e.message).toContain('the patients count adds up to -500');
  });
  test('a Modalities share above 100 %', async () => {
    const e = await stageError(edit((s) => {
      sheet(s, 'Benchmarks').rows[0]!['Patient Demographics / Covariates / Metadata'] = 'Modalities: CT (140%), MRI (10%)';
    }));
    expect(e.message).toContain('sheet "Benchmarks", row 2, column "Patient Demographics / Covariates / Metadata"');
    expect(e.message).toContain('gives CT 140%');
  });
});

describe('the authors\' rules where METHODS is silent or says otherwise', () => {
  test('a Source line without "(country)" counts as a country in the country figure, with a warning', async () => {
    const r = await analyze(edit((s) => {
      sheet(s, 'Challenges').rows[1]!['Source / Institutions (Location)'] = 'Hosp B (Spain)\nCentral Lab';
    }));
    // Chal B (500 patients) splits over Spain and "Central Lab": 250 each (plot_countries' floor division).
    const all = csvRecords(r.files['countries_all.csv']!).filter((x) => x.group === 'All');
    expect(all.find((x) => x.country === 'Central Lab')).toMatchObject({ patients: '250' });
    expect(all.find((x) => x.country === 'Spain')).toMatchObject({ patients: '250' });
    expect(r.warnings.map((w) => [w.kind, w.sheet, w.row, w.column])).toEqual([
      ['source_line_without_country', 'Challenges', 3, 'Source / Institutions (Location)'],
    ]);
    // The summary statistics skip the line: countries stay those with "(…)".
    const total = csvRecords(r.files['summary_stats.csv']!).find((x) => x.index === 'Total')!;
    expect(total.num_countries).toBe('4');
  });
  test('age documentation shares are pandas\' (100 * value_counts(normalize=True)).round(1): 23 of 80 → 28.7', async () => {
    const r = await analyze(edit((s) => {
      const c = sheet(s, 'Challenges');
      const template = c.rows[0]!;
      c.rows = Array.from({ length: 80 }, (_, i) => ({
        ...template, 'Dataset Name': `Chal ${i}`, 'Age Documented How': i < 23 ? 'Patient-Level' : 'Summary Statistics',
      }));
    }));
    const rows = csvRecords(r.files['age_documented_how.csv']!).filter((x) => x.category === 'Challenges');
    // Python's round(100 * 23 / 80, 1) would give 28.8; pandas multiplies the share and rounds with numpy.
    expect(rows.find((x) => x.level === 'Patient-Level')!.percent).toBe('28.7');
    expect(rows.find((x) => x.level === 'Summary Statistics')!.percent).toBe('71.2');
  });
});

describe('a header with a repeated column name', () => {
  test('is de-duplicated as pandas does: the first "Sample Size" is the one read, the second is "Sample Size.1"', async () => {
    const r = await analyze(edit((s) => {
      const c = sheet(s, 'Challenges');
      c.columns = [...c.columns, 'Sample Size (again)'];
      c.header = [...c.columns.slice(0, -1), 'Sample Size'];
      for (const row of c.rows) row['Sample Size (again)'] = 'Patients: 999,999';
    }));
    expect(r.totals.patients).toBe(2450); // as without the second column (the later one won before)
  });
  test('mangling follows pandas (values printed by pandas 1.5 read_csv)', () => {
    expect(mangleDuplicateColumns(['a', 'b', 'a', 'a.1', 'a'])).toEqual(['a', 'b', 'a.2', 'a.1', 'a.3']);
  });
});
