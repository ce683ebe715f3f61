/**
 * The page's only stylesheet, inline: no web fonts, no external resources. Fonts are the reader's own (DejaVu Sans
 * is what the figures use, so it comes first); print rules keep figures and tables whole on a page.
 */
export const STYLE = `
:root { --fg: #1d2329; --muted: #5b6670; --rule: #d8dde2; --accent: #2f5d8a; --bg-alt: #f5f7f9; }
* { box-sizing: border-box; }
html { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
body { margin: 0 auto; max-width: 62rem; padding: 2rem 1.5rem 4rem; line-height: 1.5; font-size: 15px; }
header { border-bottom: 2px solid var(--accent); margin-bottom: 1.5rem; }
h1 { font-size: 1.8rem; margin: 0 0 .4rem; line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .8rem; padding-bottom: .25rem; border-bottom: 1px solid var(--rule); }
p { margin: .6rem 0; }
code, .hash { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
.hash { word-break: break-all; color: var(--muted); }
.meta { color: var(--muted); font-size: .9rem; }
nav.toc ol { margin: .4rem 0 1rem; padding-left: 1.4rem; columns: 2; }
nav.toc a { color: var(--accent); text-decoration: none; }
.numbers { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: .8rem; margin: 1rem 0; }
.number { border: 1px solid var(--rule); border-left: 4px solid var(--accent); border-radius: 4px; padding: .6rem .8rem; }
.number .value { font-size: 1.5rem; font-weight: bold; font-variant-numeric: tabular-nums; }
.number .label { font-size: .85rem; color: var(--muted); }
.number .interval { font-size: .8rem; color: var(--muted); }
.number .source { overflow-wrap: anywhere; }
figure { margin: 1.5rem 0; text-align: center; }
figure .plot { display: inline-block; max-width: 100%; }
figure svg, figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .4rem; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: .3rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { background: var(--bg-alt); border-bottom: 2px solid var(--rule); }
td.num, th.num { text-align: right; }
th.group { text-align: center; border-bottom: 1px solid var(--rule); }
tbody tr:nth-child(even) { background: #fafbfc; }
.source { font-size: .75rem; color: var(--muted); font-weight: normal; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.prov dt { font-weight: bold; }
dl.prov dd { margin: 0; }
table.prov { table-layout: fixed; width: 100%; }
table.prov td { font-size: .8rem; overflow-wrap: anywhere; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav.toc { display: none; }
  h2 { break-after: avoid; }
  figure, table, .number { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  table { font-size: 8pt; }
  a { color: inherit; text-decoration: none; }
}
`;
