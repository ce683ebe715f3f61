// The evaluation figure specs compile with Vega-Lite and render with Vega, with the data our summary stage writes
// (fixtures = out/eval/fpr_by_age.csv and hm_impact.csv of a full run), and draw the marks the paper's figures have.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile } from 'vega-lite';
import { parse, read, View } from 'vega';

const FIG = new URL('../../pipelines/figures/', import.meta.url);
const FIX = new URL('./fixtures/', import.meta.url);

interface SceneNode {
  marktype?: string;
  name?: string;
  items?: SceneNode[];
}

async function render(figure: string, dataset: string) {
  const spec = JSON.parse(readFileSync(new URL(`eval-${figure}.vl.json`, FIG), 'utf8'));
  expect(spec.data).toEqual({ name: dataset }); // data by name; the plot stage supplies it from the file of that basename
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  view.data(dataset, read(readFileSync(new URL(`${dataset}.csv`, FIX), 'utf8'), { type: 'csv', parse: 'auto' }));
  await view.runAsync();
  const svg = await view.toSVG();
  const marks: Record<string, number> = {};
  const walk = (node: SceneNode) => {
    for (const item of node.items ?? []) {
      if (node.marktype && node.name) marks[node.name] = (marks[node.name] ?? 0) + 1;
      walk(item);
    }
  };
  walk((view.scenegraph() as unknown as { root: SceneNode }).root);
  view.finalize();
  return { svg, marks };
}

describe('evaluation figures', () => {
  it('children: 4 panels × 11 age bars with BCa error bars', async () => {
    const { svg, marks } = await render('children', 'fpr_by_age');
    expect(marks.bars_marks).toBe(44);
    expect(marks.ci_layer_2_marks).toBe(44); // the error bar's rule; layers 0 and 1 are its caps
    expect(marks.ci_layer_0_marks).toBe(44);
    expect(marks.cell).toBe(4);
    expect(svg).toContain('False Positives on Healthy Children');
    expect(svg).toContain('#cc78bc');
  });
  it('same-source adults: each model on its own dataset (4 + 5 + 5 + 5 bins)', async () => {
    const { svg, marks } = await render('adult-same', 'fpr_by_age');
    expect(marks.bars_marks).toBe(19);
    expect(marks.ci_layer_2_marks).toBe(19);
    for (const colour of ['#0173b2', '#de8f05', '#029e73', '#d55e00']) expect(svg).toContain(colour);
  });
  it('different-source adults: 3 models per bin, grouped', async () => {
    const { svg, marks } = await render('adult-diff', 'fpr_by_age');
    expect(marks.bars_marks).toBe(3 * (4 + 5 + 5 + 5));
    expect(marks.ci_marks).toBe(57);
    expect(svg).toContain('Trained on');
  });
  it('Figure 2: 4 training sets × 5 evaluation sets, 120 bars with intervals', async () => {
    const { svg, marks } = await render('fig2', 'fpr_by_age');
    expect(marks.cell).toBe(20);
    expect(marks.bars_marks).toBe(4 * (11 + 4 + 5 + 5 + 5));
    expect(marks.ci_layer_2_marks).toBe(120);
    expect(svg).toContain('False Positives on Healthy Children vs. Adults');
    for (const colour of ['#cc78bc', '#0173b2', '#de8f05', '#029e73', '#d55e00']) expect(svg).toContain(colour);
  });
  it('impact of histogram matching: one line of 5 blend ratios per model', async () => {
    const { svg, marks } = await render('hm', 'hm_impact');
    expect(marks.cell).toBe(4);
    expect(marks.points_marks).toBe(20);
    expect(marks.line_marks).toBe(20);
    expect(svg).toContain('Blend Ratio');
  });
});
