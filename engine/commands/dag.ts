/** `pipe dag FILE [--format text|mermaid|dot]`: the stage graph. */
import { loadAll } from './load.js';
import { UsageError } from './errors.js';

export async function dagCommand(file: string, opts: { format?: string }): Promise<number> {
  const format = opts.format ?? 'text';
  if (!['text', 'mermaid', 'dot'].includes(format)) throw new UsageError(`--format must be text, mermaid or dot, not ${format}`);
  const { pipeline, graph } = await loadAll(file);
  const byName = new Map(pipeline.stages.map((s) => [s.name, s]));
  const edges: Array<[string, string]> = [];
  for (const s of graph.order) for (const p of graph.predecessors(s)) edges.push([p, s]);
  let text: string;
  if (format === 'mermaid') text = mermaid(graph.order, edges);
  else if (format === 'dot') text = dot(pipeline.name, graph.order, edges, (s) => byName.get(s)?.uses ?? 'cmd');
  else {
    const lines: string[] = [];
    for (const s of graph.order) {
      const ups = graph.predecessors(s);
      const spec = byName.get(s);
      lines.push(`${s}${spec?.uses ? ` (${spec.uses})` : ''}${ups.length ? `  ← ${[...ups].sort().join(', ')}` : ''}`);
    }
    text = lines.join('\n');
  }
  process.stdout.write(`${text}\n`);
  return 0;
}

export function mermaid(nodes: readonly string[], edges: ReadonlyArray<[string, string]>): string {
  const id = new Map(nodes.map((n, i) => [n, `s${i}`]));
  const lines = ['flowchart TD'];
  for (const n of nodes) lines.push(`  ${id.get(n)}["${n.replace(/"/g, '#quot;')}"]`);
  for (const [a, b] of edges) lines.push(`  ${id.get(a)} --> ${id.get(b)}`);
  return lines.join('\n');
}

export function dot(name: string, nodes: readonly string[], edges: ReadonlyArray<[string, string]>, kind: (s: string) => string): string {
  const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = [`digraph ${q(name)} {`, '  rankdir=LR;', '  node [shape=box, fontname="DejaVu Sans"];'];
  for (const n of nodes) lines.push(`  ${q(n)} [tooltip=${q(kind(n))}];`);
  for (const [a, b] of edges) lines.push(`  ${q(a)} -> ${q(b)};`);
  lines.push('}');
  return lines.join('\n');
}
