import * as vega from 'vega';
import * as vl from 'vega-lite';
import sharp from 'sharp';
import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';
import type { Row } from './datasets.js';
import { directFieldReferences, externalData, hrefPointers, isObject, specProblems, stripHrefs, topLevelField, type JsonObject } from './spec.js';
import { useFontMetrics } from './text-metrics.js';

export interface Rendered {
  svg: string;
  /** How text was measured for layout: the font file's advance widths, or vega's estimate. */
  metrics: 'font-file' | 'estimated';
  /** Vega-Lite's compile warnings (e.g. a dropped encoding), for the stage log. */
  warnings: string[];
  /** JSON pointers of the spec's `href`s: a static figure has no links, so they were not rendered. */
  droppedLinks: string[];
}

/** A vega-util logger that collects messages instead of printing them to the console. */
function collectingLogger(warnings: string[]): vega.LoggerInterface {
  let lvl = vega.Warn;
  const logger = {
    level(l?: number) {
      if (l === undefined) return lvl;
      lvl = l;
      return logger;
    },
    error(...args: readonly unknown[]) {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    warn(...args: readonly unknown[]) {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return logger as unknown as vega.LoggerInterface;
}

/**
 * Data comes only from the stage's declared inputs: any load (data URL, image mark) is refused, never fetched. A
 * hyperlink (should one survive stripHrefs) sanitises to no link: vega-scenegraph's SVG renderer dereferences what
 * sanitize resolves to, and a rejection there is an unhandled TypeError that kills the process.
 */
function refusingLoader(): vega.Loader {
  const base = vega.loader();
  const refuse = async (uri: string): Promise<never> => {
    throw new Error(`refused to load "${uri}": list the file under with.data and reference it by name`);
  };
  const sanitize = async (uri: string, options?: { context?: string }): Promise<{ href: null }> => {
    if (options?.context === 'href') return { href: null };
    return refuse(uri);
  };
  return { ...base, sanitize, load: refuse } as unknown as vega.Loader;
}

/** Fields an encoding reads from a dataset that has no such column (Vega would silently draw nothing). */
export function missingFieldWarnings(spec: JsonObject, datasets: ReadonlyMap<string, Row[]>): string[] {
  const out: string[] = [];
  for (const ref of directFieldReferences(spec)) {
    const rows = datasets.get(ref.dataset);
    if (!rows || rows.length === 0) continue;
    const columns = new Set(rows.flatMap((r) => (r !== null && typeof r === 'object' ? Object.keys(r) : [])));
    if (!columns.has(topLevelField(ref.field))) {
      out.push(
        `${ref.pointer}: field "${ref.field}" is not a column of dataset "${ref.dataset}" ` +
          `(columns: ${[...columns].join(', ')}); that encoding will be empty`,
      );
    }
  }
  return out;
}

/**
 * Vega-Lite → Vega → SVG, headless (`renderer: 'none'`). Errors are plain messages; the caller prefixes the spec's
 * name. `datasets` are supplied by name; a name the spec needs but is not supplied is an error listing the ones
 * there are.
 */
export async function renderSvg(spec: JsonObject, datasets: ReadonlyMap<string, Row[]>): Promise<Result<Rendered, string>> {
  const problems = specProblems(spec);
  if (problems.length > 0) return err(problems.join('; '));
  const warnings: string[] = missingFieldWarnings(spec, datasets);
  let compiled: vega.Spec;
  try {
    compiled = vl.compile(spec as unknown as vl.TopLevelSpec, { logger: collectingLogger(warnings) }).spec;
  } catch (e) {
    return err(`Vega-Lite cannot compile it: ${(e as Error).message}`);
  }
  const droppedLinks = hrefPointers(spec);
  stripHrefs(compiled);
  const ext = externalData(compiled as { data?: [] });
  if (ext.urls.length > 0) {
    return err(
      `it loads data by URL (${ext.urls.join(', ')}); list such files under with.data instead and reference ` +
        `each as {"name": "<basename>"}, so that the stage re-runs when they change`,
    );
  }
  const available = [...datasets.keys()];
  const unknown = ext.named.filter((n) => !datasets.has(n));
  if (unknown.length > 0) {
    return err(
      `it references the dataset${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}, ` +
        `but with.data provides ${available.length ? available.map((n) => `"${n}"`).join(', ') : 'none'} ` +
        `(a file's dataset name is its basename without extension)`,
    );
  }
  const font = isObject(spec.config) && typeof spec.config.font === 'string' ? spec.config.font : 'sans-serif';
  const metrics = useFontMetrics(font);
  try {
    const view = new vega.View(vega.parse(compiled), {
      renderer: 'none',
      loader: refusingLoader(),
      logger: collectingLogger(warnings),
    });
    // vega mutates inserted tuples (adds ids); give it copies so callers' rows stay clean.
    for (const name of ext.named) view.data(name, datasets.get(name)!.map((r) => ({ ...r })));
    await view.runAsync();
    const svg = await view.toSVG();
    view.finalize();
    return ok({ svg, warnings, metrics, droppedLinks });
  } catch (e) {
    return err(`Vega cannot render it: ${(e as Error).message}`);
  }
}

/** SVG → PNG by librsvg at `scale` × the SVG's size (density 72 dpi = 1 px per SVG unit). */
export async function svgToPng(svg: string, scale: number): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 * scale }).png({ compressionLevel: 9 }).toBuffer();
}

/** The SVG's intrinsic size from its width/height attributes (vega always writes both). */
export function svgSize(svg: string): { width: number; height: number } | undefined {
  const head = /<svg\b[^>]*>/.exec(svg)?.[0];
  const w = head && /\swidth="([\d.]+)"/.exec(head)?.[1];
  const h = head && /\sheight="([\d.]+)"/.exec(head)?.[1];
  return w && h ? { width: Number(w), height: Number(h) } : undefined;
}

export const versions = { vega: vega.version, vegaLite: vl.version, librsvg: sharp.versions.rsvg ?? 'unknown' };
