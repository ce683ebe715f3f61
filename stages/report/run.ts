import type { StageContext } from '../../engine/stage-api.js';
import { StageError } from '../../engine/stage-api.js';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { renderHtml } from './lib/html.js';
import { renderMarkdown } from './lib/markdown.js';
import type { ReportModel } from './lib/model.js';
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

/** Report date: SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
export function reportDate(env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const epoch = env.SOURCE_DATE_EPOCH;
  return (epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : now).toISOString();
}

export async function run(ctx: StageContext<ReportWith>): Promise<void> {
  const w = ctx.with;
  const specs = parseSections(w.sections, w.inputs ?? []);
  if (!specs.ok) throw new StageError(`stage ${ctx.stage}: ${specs.error}.`);

  const sections = await new SectionResolver(ctx.resolve).sections(specs.value);
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
      generatedAt: reportDate(),
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
