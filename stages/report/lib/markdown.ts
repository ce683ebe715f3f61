import { posix } from 'node:path';
import { extraText } from './html.js';
import type { ReportModel, ResolvedSection, ResolvedTable } from './model.js';
import { mdCell, paragraphs } from './text.js';

function tableMd(t: ResolvedTable): string[] {
  const out = [t.caption ? `**${mdCell(t.caption)}** (\`${t.path}\`)` : `\`${t.path}\``, ''];
  // Markdown has one header row: stack multi-row headers per column ("All / Peds").
  const header = t.header[0]!.map((_, i) => t.header.map((r) => r[i]).filter((x, k, xs) => x !== '' && xs.indexOf(x) === k).join(' / '));
  out.push(`| ${header.map(mdCell).join(' | ')} |`);
  out.push(`|${t.numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`);
  for (const r of t.rows) out.push(`| ${r.map(mdCell).join(' | ')} |`);
  if (t.omitted > 0) out.push('', `_${t.omitted} more rows in \`${t.path}\`._`);
  out.push('');
  return out;
}

/** Figures are linked, not embedded: relative to the Markdown file, so the summary renders next to out/. */
function sectionMd(s: ResolvedSection, mdDir: string): string[] {
  const out = [`## ${s.title}`, ''];
  if (s.text) for (const p of paragraphs(s.text)) out.push(p, '');
  for (const n of s.numbers) {
    out.push(`- **${n.label}:** ${n.value}${n.interval ? ` (${n.interval})` : ''} — \`${n.source}\``);
  }
  if (s.numbers.length) out.push('');
  for (const f of s.figures) {
    out.push(`![${(f.caption ?? posix.basename(f.path)).replace(/[[\]]/g, '')}](${posix.relative(mdDir, f.path)})`, '');
  }
  for (const t of s.tables) out.push(...tableMd(t));
  return out;
}

/** The Markdown summary: same sections, figures as relative links, provenance condensed to one table. */
export function renderMarkdown(m: ReportModel, markdownPath: string): string {
  const p = m.provenance;
  const mdDir = posix.dirname(markdownPath);
  const out = [`# ${m.title}`, ''];
  if (m.intro) for (const para of paragraphs(m.intro)) out.push(para, '');
  out.push(
    `_Generated ${p.generatedAt ? `${p.generatedAt.at} ` : ''}by pipe ${p.pipeVersion} from \`${p.pipelineFile}\` (pipeline ${p.pipelineName}); ` +
      `report stage \`${p.stage}\`, key \`${p.key}\`._`,
    '',
  );
  for (const s of m.sections) out.push(...sectionMd(s, mdDir));
  out.push('## Provenance', '', '| Stage | Uses | Key | Outputs | Recorded |', '| --- | --- | --- | --- | --- |');
  for (const u of p.upstream) {
    const outs = u.outputs.map((o) => `\`${o.path}\` ${o.hash}`).join('<br>');
    out.push(`| ${mdCell(u.stage)} | \`${mdCell(u.uses ?? u.cmd ?? '')}\` | \`${u.key}\` | ${mdCell(outs)} | ${mdCell(extraText(u.extra))} |`);
  }
  out.push('', '| Input | Content hash |', '| --- | --- |');
  for (const [path, hash] of p.inputs) out.push(`| \`${mdCell(path)}\` | \`${hash}\` |`);
  out.push('');
  return out.join('\n');
}
