import type { StageManifest } from '../../engine/stage-api.js';

/**
 * `uses: report` — one self-contained HTML page (inline figures, tables, headline numbers, provenance) and a
 * Markdown summary. `sections` is free-form, so every file it mentions must also be listed in `inputs` (the dep
 * field the engine hashes); the stage checks that.
 */
export const manifest: StageManifest = {
  kind: 'report',
  description: 'Assemble a self-contained HTML report (figures, tables, numbers, provenance) and a Markdown summary.',
  with: {
    title: { type: 'string', required: true, description: 'Page title.' },
    intro: { type: 'string', description: 'Paragraph(s) under the title (blank line = new paragraph).' },
    inputs: {
      type: 'path[]',
      role: 'dep',
      default: [],
      description: 'Every file the sections reference (a path ending in / covers a folder).',
    },
    sections: {
      type: 'any',
      required: true,
      description:
        'List of {title, text?, numbers?: [{label, file (JSON or CSV), pointer, where?, format?, suffix?, low?, high?, interval?}], ' +
        'figures?: [path | {path, caption?}] (SVG is sanitised: no script, handler or outside URL survives), ' +
        'tables?: [path | {path, caption?, columns?, formats? (column or * → d3-format), maxRows?, headerRows?} | ' +
        '{runs: stage or declaration, fields: [key] | {key: label}, caption?, formats?} (values upstream runs recorded with ctx.record)]}. ' +
        "The page is dated from SOURCE_DATE_EPOCH when the stage declares it in its env:, else undated; never the clock.",
    },
    html: { type: 'path', role: 'out', required: true, description: 'The HTML report to write.' },
    markdown: { type: 'path', role: 'out', description: 'The Markdown summary to write.' },
  },
  resources: { cpus: 1, memBytes: 512 * 1024 * 1024, gpus: 0 },
};
