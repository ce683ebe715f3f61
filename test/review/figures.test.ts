// The review's Vega-Lite specs compile and render with the data files review/analyze writes, and the pipeline
// fragment renders exactly these figures.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { analyzeWorkbook, type ReviewResult } from '../../stages/review/lib/analyze.js';
import { countMarks, csvRows, renderSpec, ROOT, seedWorkbook } from './helpers.js';

let result: ReviewResult;
beforeAll(async () => {
  result = analyzeWorkbook(await seedWorkbook(), { excludeCancer: false, topCountries: 3 });
});

async function render(name: string): Promise<string> {
  return renderSpec(`pipelines/figures/review-${name}.vl.json`, { [name]: csvRows(result.files[`${name}.csv`]!) });
}

describe('review figures render with their data', () => {
  test('age documentation: 5 categories × 5 levels of stacked bars, authors\' colours', async () => {
    const svg = await render('age_documented_how');
    expect(countMarks(svg, 'rect')).toBe(25);
    expect(svg).toContain('How is Age Documented?');
    expect(svg).toContain('Percentage (%)');
    for (const colour of ['#7D85A7', '#85B8A2', '#4C9AC9', '#F2B87D', '#FF7F4C']) expect(svg.toLowerCase()).toContain(colour.toLowerCase());
    for (const c of ['Conference Papers', 'Data Collections', 'Challenges', 'Benchmarks', 'Well-Cited Datasets']) expect(svg).toContain(c);
  });
  test('countries: 3 countries × (All, Children) bars with their values', async () => {
    const svg = await render('countries');
    expect(countMarks(svg, 'rect')).toBe(6);
    expect(countMarks(svg, 'text')).toBe(6);
    for (const s of ['Top Data Contributing Countries', 'USA', 'Spain', 'Vietnam', '77.68', '95.56', '13.39', '3.44', '3.53']) expect(svg).toContain(s);
    expect(svg.toLowerCase()).toContain('#434a66');
    expect(svg.toLowerCase()).toContain('#f4c22d');
  });
  test('task categories: 5 bars', async () => {
    const svg = await render('task_categories');
    expect(countMarks(svg, 'rect')).toBe(5);
    expect(svg).toContain('Most Common Tasks');
    expect(svg).toContain('Percentage of Datasets (%)');
  });
  test('modalities: 5 bars labelled with the METHODS percentages', async () => {
    const svg = await render('modalities');
    expect(countMarks(svg, 'rect')).toBe(5);
    for (const s of ['Most Common Imaging Modalities', '52.59', '38.52', '14.81', '8.15', '3.70']) expect(svg).toContain(s);
  });
  test('breakdown table: 50 coloured cells with their counts', async () => {
    const svg = await render('breakdown');
    expect(countMarks(svg, 'rect')).toBe(50);
    expect(countMarks(svg, 'text')).toBe(50);
    expect(svg).toContain('Data Breakdown by Task and Modality');
    expect(svg).toContain('959,482');
    expect(svg).toContain('[10^5,10^6)');
  });
});

describe('pipeline fragment pipelines/paper/review.yaml', () => {
  const fragment = parseYaml(readFileSync(join(ROOT, 'pipelines/paper/review.yaml'), 'utf8')) as {
    vars: { review: { figures: string[]; data: string } };
    stages: Record<string, { uses?: string; do?: { uses: string; with: Record<string, unknown> } }>;
  };
  test('one plot stage per figure; each spec exists and reads the dataset named like its data file', () => {
    const figures = fragment.vars.review.figures;
    expect(figures.sort()).toEqual(['age_documented_how', 'breakdown', 'countries', 'modalities', 'task_categories']);
    expect(fragment.stages.review!.uses).toBe('review/analyze');
    const fig = fragment.stages['review-fig']!.do!;
    expect(fig.uses).toBe('plot');
    for (const name of figures) {
      const specPath = String(fig.with.spec).replace('${item}', name);
      expect(existsSync(join(ROOT, specPath))).toBe(true);
      const spec = JSON.parse(readFileSync(join(ROOT, specPath), 'utf8')) as { data: { name: string } };
      const dataFile = String((fig.with.data as string[])[0]).replace('${vars.review.data}', fragment.vars.review.data).replace('${item}', name);
      expect(spec.data.name).toBe(name);
      expect(dataFile).toBe(`out/review/data/${name}.csv`);
      expect(result.files[`${name}.csv`]).toBeDefined();
    }
  });
});
