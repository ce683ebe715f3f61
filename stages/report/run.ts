import type { StageContext } from '../../engine/stage-api.js';
import { StageError } from '../../engine/stage-api.js';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { renderHtml } from './lib/html.js';
import { renderMarkdown } from './lib/markdown.js';
import type { GeneratedAt, ReportModel } from './lib/model.js';
import { SectionResolver } from './lib/resolve.js';
import { parseSections } from './lib/sections.js';

export interface ReportWith {
  title: string;
  intro?: string;
  inputs: string[];
  sections: unknown;
  html: string;
  markdown?: string;
}

/**
 * The report's "generated" date, never the clock and never an upstream run's timing (neither is in this stage's
 * key, so either would make two runs on the same inputs write different bytes): SOURCE_DATE_EPOCH when the stage
 * declares it in its `env:` (the reproducible-builds convention; declared env values are keyed), else none.
 */
export function reportDate(env: Readonly<Record<string, string | undefined>>): GeneratedAt | undefined {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch === undefined || epoch === '') return undefined;
  const t = /^\d{1,12}$/.test(epoch) ? new Date(Number(epoch) * 1000) : undefined;
  if (!t || Number.isNaN(t.getTime())) {
    throw new StageError(`SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC, not "${epoch.slice(0, 40)}".`);
  }
  return { at: t.toISOString(), from: 'SOURCE_DATE_EPOCH' };
}

export async function run(ctx: StageContext<ReportWith>): Promise<void> {
  const w = ctx.with;
  const specs = parseSections(w.sections, w.inputs ?? []);
  if (!specs.ok) throw new StageError(`stage ${ctx.stage}: ${specs.error}.`);

  const sections = await new SectionResolver(ctx.resolve, (line) => ctx.log(line), ctx.upstream).sections(specs.value);
  if (ctx.signal.aborted) return;
  const model: ReportModel = {
    title: w.title,
    intro: w.intro,
    sections,
    provenance: {
      pipelineFile: ctx.pipeline.file,
      pipelineName: ctx.pipeline.name,
      pipeVersion: ctx.pipeline.pipeVersion,
      stage: ctx.stage,
      key: ctx.key,
      generatedAt: reportDate(process.env),
      upstream: ctx.upstream,
      inputs: Object.entries(ctx.depHashes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    },
  };
  const figures = sections.reduce((n, s) => n + s.figures.length, 0);
  const tables = sections.reduce((n, s) => n + s.tables.length, 0);
  const numbers = sections.reduce((n, s) => n + s.numbers.length, 0);
  ctx.progress({ message: `${sections.length} sections, ${figures} figures, ${tables} tables, ${numbers} numbers` });

  await writeFileAtomic(ctx.resolve(w.html), renderHtml(model));
  ctx.log(`wrote ${w.html} (${figures} figures, ${tables} tables, ${numbers} numbers, ${ctx.upstream.length} upstream stages)`);
  if (w.markdown !== undefined) {
    await writeFileAtomic(ctx.resolve(w.markdown), renderMarkdown(model, w.markdown));
    ctx.log(`wrote ${w.markdown}`);
  }
}
