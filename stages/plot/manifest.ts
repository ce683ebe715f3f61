import type { StageManifest } from '../../engine/stage-api.js';

/**
 * `uses: plot` — render a Vega-Lite v5 spec to SVG (and PNG) with data produced by earlier stages.
 * Each `data` file becomes a named dataset (its basename without extension) that the spec references as
 * `"data": {"name": "<basename>"}`; see pipelines/figures/README.md.
 */
export const manifest: StageManifest = {
  kind: 'plot',
  description: 'Render a Vega-Lite v5 spec (file or inline) with named datasets to SVG and PNG, fonts included.',
  with: {
    spec: { type: 'path', role: 'dep', description: 'Vega-Lite spec file (`.vl.json`); exactly one of spec/inline.' },
    inline: { type: 'any', description: 'An inline Vega-Lite spec object; exactly one of spec/inline.' },
    data: {
      type: 'path[]',
      role: 'dep',
      default: [],
      description:
        'CSV/JSON files; each is the dataset named by its basename without extension (out/eval/fpr.csv → "fpr").',
    },
    svg: { type: 'path', role: 'out', required: true, description: 'SVG file to write.' },
    png: { type: 'path', role: 'out', description: 'PNG file to write (rendered from the SVG by librsvg).' },
    scale: { type: 'number', default: 2, description: 'PNG pixel ratio (2 = twice the SVG size).' },
    width: { type: 'number', description: 'Override the spec’s width.' },
    height: { type: 'number', description: 'Override the spec’s height.' },
    title: { type: 'string', description: 'Override the spec’s title.' },
    config: {
      type: 'object',
      default: {},
      description: 'Merged over the spec’s `config` (e.g. `{font: "DejaVu Sans"}`, the default font).',
    },
  },
  resources: { cpus: 1, memBytes: 512 * 1024 * 1024, gpus: 0 },
};
