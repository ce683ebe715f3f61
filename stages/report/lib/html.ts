import type { UpstreamRun } from '../../../engine/stage-api.js';
import type { Provenance, ReportModel, ResolvedFigure, ResolvedNumber, ResolvedSection, ResolvedTable } from './model.js';
import { STYLE } from './style.js';
import { escapeHtml as e, inlineHtml, paragraphs } from './text.js';

const para = (text: string | undefined): string => (text ? paragraphs(text).map((p) => `<p>${inlineHtml(p)}</p>`).join('\n') : '');

function numberHtml(n: ResolvedNumber): string {
  return (
    `<div class="number"><div class="value">${e(n.value)}</div><div class="label">${e(n.label)}</div>` +
    (n.interval ? `<div class="interval">${e(n.interval)}</div>` : '') +
    `<div class="source" title="${e(n.source)}">${e(n.source)}</div></div>`
  );
}

function figureHtml(f: ResolvedFigure): string {
  const caption = `<figcaption>${f.caption ? `${inlineHtml(f.caption)} ` : ''}<span class="source">${e(f.path)}</span></figcaption>`;
  const body =
    f.kind === 'svg'
      ? `<div class="plot">${f.svg}</div>`
      : `<img src="${e(f.dataUri)}" alt="${e(f.caption ?? f.path)}">`;
  return `<figure data-source="${e(f.path)}">${body}${caption}</figure>`;
}

/** Upper header rows merge runs of equal cells (a group label over its sub-columns); the last row never does. */
export function headerRowHtml(row: readonly string[], last: boolean, cls: (i: number) => string): string {
  const cells: string[] = [];
  for (let i = 0; i < row.length; ) {
    let span = 1;
    while (!last && i + span < row.length && row[i + span] === row[i]) span++;
    const attrs = span > 1 ? ` colspan="${span}" class="group"` : cls(i);
    cells.push(`<th scope="col"${attrs}>${e(row[i]!)}</th>`);
    i += span;
  }
  return `<tr>${cells.join('')}</tr>`;
}

function tableHtml(t: ResolvedTable): string {
  const cls = (i: number): string => (t.numeric[i] ? ' class="num"' : '');
  const head = t.header.map((row, r) => headerRowHtml(row, r === t.header.length - 1, cls)).join('');
  const body = t.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${e(c)}</td>`).join('')}</tr>`).join('\n');
  const more = t.omitted > 0 ? `<p class="source">${t.omitted} more rows in ${e(t.path)}</p>` : '';
  return (
    `<div class="table-wrap"><table data-source="${e(t.path)}"><caption>${t.caption ? `${inlineHtml(t.caption)} ` : ''}` +
    `<span class="source">${e(t.path)}</span></caption><thead>${head}</thead><tbody>\n${body}\n</tbody></table>${more}</div>`
  );
}

function sectionHtml(s: ResolvedSection): string {
  return [
    `<section id="${e(s.id)}">`,
    `<h2>${e(s.title)}</h2>`,
    para(s.text),
    s.numbers.length ? `<div class="numbers">${s.numbers.map(numberHtml).join('\n')}</div>` : '',
    ...s.figures.map(figureHtml),
    ...s.tables.map(tableHtml),
    `</section>`,
  ]
    .filter((x) => x !== '')
    .join('\n');
}

/** Extra provenance a stage recorded (backend, versions...), as `key: value` pairs. */
export function extraText(extra: Record<string, unknown> | undefined): string {
  if (!extra) return '';
  return Object.entries(extra)
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('; ');
}

function extraHtml(extra: Record<string, unknown> | undefined): string {
  return Object.entries(extra ?? {})
    .map(([k, v]) => `<div><strong>${e(k)}</strong>: ${e(typeof v === 'string' ? v : JSON.stringify(v))}</div>`)
    .join('');
}

function upstreamRow(u: UpstreamRun): string {
  const outs = u.outputs.map((o) => `<div><code>${e(o.path)}</code><br><span class="hash">${e(o.hash)}</span></div>`).join('');
  return (
    `<tr><td><strong>${e(u.stage)}</strong><br><code>${e(u.uses ?? u.cmd ?? '')}</code></td>` +
    `<td class="hash">${e(u.key)}</td><td>${outs}</td><td>${extraHtml(u.extra)}</td></tr>`
  );
}

function provenanceHtml(p: Provenance): string {
  const inputs = p.inputs.map(([path, hash]) => `<tr><td><code>${e(path)}</code></td><td class="hash">${e(hash)}</td></tr>`);
  return [
    `<section id="provenance">`,
    `<h2>Provenance</h2>`,
    `<dl class="prov">`,
    `<dt>Pipeline file</dt><dd><code>${e(p.pipelineFile)}</code></dd>`,
    `<dt>Pipeline</dt><dd>${e(p.pipelineName)}</dd>`,
    `<dt>pipe version</dt><dd>${e(p.pipeVersion)}</dd>`,
    `<dt>Generated</dt><dd>${p.generatedAt ? `${e(p.generatedAt.at)} <span class="source">(${e(p.generatedAt.from)})</span>` : 'undated (declare SOURCE_DATE_EPOCH in the report stage\'s <code>env:</code> to date it)'}</dd>`,
    `<dt>Report stage</dt><dd>${e(p.stage)}</dd>`,
    `<dt>Report key</dt><dd class="hash">${e(p.key)}</dd>`,
    `</dl>`,
    `<div class="table-wrap"><table class="prov" id="upstream"><caption>Stages this report depends on (topological order)</caption>`,
    `<colgroup><col style="width:20%"><col style="width:22%"><col style="width:33%"><col style="width:25%"></colgroup>`,
    `<thead><tr><th>Stage</th><th>Key</th><th>Outputs and hashes</th><th>Recorded</th></tr></thead><tbody>`,
    ...p.upstream.map(upstreamRow),
    `</tbody></table></div>`,
    `<div class="table-wrap"><table class="prov" id="inputs"><caption>Inputs of this report</caption>`,
    `<colgroup><col style="width:40%"><col style="width:60%"></colgroup>`,
    `<thead><tr><th>File</th><th>Content hash</th></tr></thead><tbody>`,
    ...inputs,
    `</tbody></table></div>`,
    `</section>`,
  ].join('\n');
}

/**
 * The page's Content Security Policy, a second wall behind the SVG sanitiser: no script of any kind (inline, event
 * handler, javascript: URL), nothing fetched (images only as data: URIs), styles only inline.
 */
export const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/** One self-contained page: inline CSS, inline figures, nothing fetched. */
export function renderHtml(m: ReportModel): string {
  const toc = [...m.sections.map((s) => [s.id, s.title]), ['provenance', 'Provenance']]
    .map(([id, t]) => `<li><a href="#${e(id!)}">${e(t!)}</a></li>`)
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pipe ${e(m.provenance.pipeVersion)}">
<title>${e(m.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${e(m.title)}</h1>
${para(m.intro)}
<p class="meta">Generated ${m.provenance.generatedAt ? `${e(m.provenance.generatedAt.at)} ` : ''}by pipe ${e(m.provenance.pipeVersion)} from <code>${e(m.provenance.pipelineFile)}</code> (pipeline ${e(m.provenance.pipelineName)}).</p>
</header>
<nav class="toc"><strong>Contents</strong><ol>${toc}</ol></nav>
<main>
${m.sections.map(sectionHtml).join('\n')}
${provenanceHtml(m.provenance)}
</main>
</body>
</html>
`;
}
