import type { StageContext } from '../../engine/stage-api.js';
import { readStageInput, StageError } from '../../engine/stage-api.js';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { loadDatasets } from './lib/datasets.js';
import { codePointName, distinctChars, matchedFamily, svgFontFamilies, svgTexts, uncoveredChars } from './lib/glyphs.js';
import { parseJsonText } from './lib/json-text.js';
import { renderSvg, svgToPng, versions } from './lib/render.js';
import { applyOverrides, isObject, type JsonObject } from './lib/spec.js';

export interface PlotWith {
  spec?: string;
  inline?: unknown;
  data: string[];
  svg: string;
  png?: string;
  scale: number;
  width?: number;
  height?: number;
  title?: string;
  config: JsonObject;
}

/** The spec object and the name errors call it by (the file, or "the inline spec of stage X"). */
async function readSpec(ctx: StageContext<PlotWith>): Promise<{ spec: JsonObject; name: string }> {
  const w = ctx.with;
  const hasFile = w.spec !== undefined;
  const hasInline = w.inline !== undefined && w.inline !== null;
  if (hasFile === hasInline) {
    throw new StageError(
      `stage ${ctx.stage}: with: needs exactly one of \`spec\` (a .vl.json file) or \`inline\` (a spec object), ` +
        `${hasFile ? 'not both' : 'and has neither'}.`,
    );
  }
  if (hasInline) {
    if (!isObject(w.inline)) throw new StageError(`stage ${ctx.stage}: with.inline must be a Vega-Lite spec object.`);
    return { spec: w.inline, name: `the inline spec of stage ${ctx.stage}` };
  }
  const file = w.spec!;
  let text: string;
  try {
    text = (await readStageInput(ctx.resolve(file), 'the spec', file)).toString('utf8');
  } catch (e) {
    throw new StageError(`stage ${ctx.stage}: ${(e as Error).message}`);
  }
  const parsed = parseJsonText(text);
  if (!parsed.ok) {
    const { line, column, message } = parsed.error;
    throw new StageError(`${file}:${line}:${column}: the spec is not valid JSON: ${message}.`);
  }
  if (!isObject(parsed.value)) throw new StageError(`${file}: the spec must be a JSON object (a Vega-Lite spec).`);
  return { spec: parsed.value, name: file };
}

/** Refuse to write a PNG with boxes for characters no installed font has; note substituted font families. */
function checkFonts(ctx: StageContext<PlotWith>, svg: string, specName: string): void {
  const chars = distinctChars(svgTexts(svg));
  const coverage = uncoveredChars(chars);
  if (!coverage.checked) {
    ctx.log('fontconfig tools (fc-list) not found: cannot check that every character has a glyph');
    return;
  }
  if (coverage.missing.length > 0) {
    throw new StageError(
      `${specName}: no installed font has a glyph for ${coverage.missing.map(codePointName).join(', ')}, so the ` +
        `figure would show empty boxes; change the text or install a font that covers ${coverage.missing.length > 1 ? 'them' : 'it'} ` +
        `(e.g. Debian fonts-noto-core).`,
    );
  }
  for (const family of svgFontFamilies(svg)) {
    const got = matchedFamily(family);
    if (got !== undefined && got.toLowerCase() !== family.toLowerCase()) {
      ctx.log(`font "${family}" is not installed; fontconfig renders the PNG with "${got}"`);
    }
  }
}

export async function run(ctx: StageContext<PlotWith>): Promise<void> {
  const w = ctx.with;
  if (!(w.scale > 0 && w.scale <= 16)) {
    throw new StageError(`stage ${ctx.stage}: with.scale must be a number in (0, 16], got ${w.scale}.`);
  }
  const { spec, name } = await readSpec(ctx);
  const datasets = await loadDatasets(w.data ?? [], ctx.resolve);
  if (!datasets.ok) throw new StageError(`stage ${ctx.stage}: data file ${datasets.error}.`);
  for (const [n, rows] of datasets.value) ctx.log(`dataset "${n}": ${rows.length} rows`);

  const prepared = applyOverrides(spec, { width: w.width, height: w.height, title: w.title, config: w.config });
  const rendered = await renderSvg(prepared, datasets.value);
  if (!rendered.ok) throw new StageError(`${name}: ${rendered.error}.`);
  for (const warning of rendered.value.warnings) ctx.log(`vega-lite: ${warning}`);
  for (const pointer of rendered.value.droppedLinks) {
    ctx.log(`${name}: ${pointer}: links are not rendered (a figure is a static SVG/PNG file); the figure is drawn without them`);
  }
  if (rendered.value.metrics === 'estimated') {
    ctx.log('fontconfig could not find the font file: text widths for layout are estimated (labels may truncate early)');
  }
  if (ctx.signal.aborted) return;

  const svg = rendered.value.svg;
  checkFonts(ctx, svg, name);
  await writeFileAtomic(ctx.resolve(w.svg), svg);
  ctx.log(`wrote ${w.svg}`);
  if (w.png !== undefined) {
    const png = await svgToPng(svg, w.scale);
    if (ctx.signal.aborted) return;
    await writeFileAtomic(ctx.resolve(w.png), png);
    ctx.log(`wrote ${w.png}`);
  }
  ctx.record({
    vega: versions.vega,
    vegaLite: versions.vegaLite,
    librsvg: versions.librsvg,
    font: isObject(prepared.config) ? prepared.config.font : undefined,
    textMetrics: rendered.value.metrics,
  });
}
