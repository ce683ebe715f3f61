/**
 * Checks across stages, on the expanded pipeline: two stages writing one path (or one out inside another's out
 * directory), a stage reading its own out, deps that nobody writes and that do not exist, and cycles.
 * Pure except for the `fileExists` callback.
 */
import { sameOutPath } from '../../cache/paths.js';
import path from 'node:path';
import type { Pipeline, SourceSpan, StageSpec } from '../model.js';
import { buildDag, outIndexOf } from '../graph.js';
import { DiagnosticBag, displayPath, editDistance } from './diagnostics.js';
import type { FieldsBySpan } from './stage-fields.js';

const MAX_SUGGESTIONS = 20;

export function validatePipeline(p: Pipeline, bag: DiagnosticBag, exists: (abs: string) => boolean, fields: FieldsBySpan = new Map()): void {
  const fieldOf = (x: { span?: SourceSpan }) => (x.span ? fields.get(x.span) : undefined);
  // Many stages share deps (a script, a dataset): ask the disk once per path.
  const known = new Map<string, boolean>();
  const absOf = (dep: string) => (path.isAbsolute(dep) ? dep : path.join(p.workdir, dep));
  const depExists = (dep: string) => {
    let e = known.get(dep);
    if (e === undefined) known.set(dep, (e = exists(absOf(dep))));
    return e;
  };
  let byNameMap: Map<string, StageSpec> | undefined; // only needed to explain conflicts (rare)
  const byName = () => (byNameMap ??= new Map<string, StageSpec>(p.stages.map((s) => [s.name, s])));
  const index = outIndexOf(p);

  // Overlapping outs: same path, or one inside another's directory.
  for (const [a, b] of index.conflicts()) {
    const sb = byName().get(b.stage)!;
    const ob = sb.outs.find((o) => o.path === b.path);
    const same = a.path.replace(/\/$/, '') === b.path.replace(/\/$/, '');
    let message: string;
    if (a.stage === b.stage) {
      message = same ? `out \`${b.path}\` is listed twice` : `out \`${b.path}\` is inside this stage's own out \`${a.path}\``;
    } else if (same) {
      message = `\`${b.path}\` is written by two stages: \`${a.stage}\` and \`${b.stage}\` (each path has one writer)`;
    } else {
      message = `out \`${b.path}\` is inside \`${a.path}\`, which stage \`${a.stage}\` writes (one stage owns a directory and all that is in it)`;
    }
    const sa = byName().get(a.stage)!;
    const oa = sa.outs.find((o) => o.path === a.path);
    const other = oa?.span && a.stage !== b.stage ? ` [${displayPath(oa.span.file)}:${oa.span.line}:${oa.span.col}]` : '';
    bag.error(message + other, ob?.span ?? sb.span, { stage: b.stage, field: (ob && fieldOf(ob)) ?? 'outs' });
  }

  let suggestions = 0;
  for (const s of p.stages) {
    for (const d of s.deps) {
      if (s.outs.length && s.outs.some((o) => sameOutPath(o.path, d.path))) {
        bag.error(`\`${d.path}\` is both a dep and an out of this stage (a stage cannot read what it writes)`, d.span ?? s.span, { stage: s.name, field: fieldOf(d) ?? 'deps' });
        continue;
      }
      // A dep directory holding the stage's own out changes with every run (the stage would never be up to date);
      // a dep inside the stage's own out directory is removed before the stage runs.
      const nested = s.outs.find((o) => inside(o.path, d.path) || inside(d.path, o.path));
      if (nested) {
        const why = inside(nested.path, d.path)
          ? `contains this stage's own out \`${nested.path}\`, so every run would change its own input`
          : `is inside this stage's own out \`${nested.path}\`, which is cleared before the stage runs`;
        bag.error(`dep \`${d.path}\` ${why}; list the input files or subdirectories separately`, d.span ?? s.span, { stage: s.name, field: fieldOf(d) ?? 'deps' });
        continue;
      }
      if (index.producersOf(d.path).some((x) => x.stage !== s.name)) continue;
      if (depExists(d.path)) continue;
      const abs = absOf(d.path);
      if (d.path.endsWith('/') && depExists(d.path.slice(0, -1))) {
        // A file where a folder is declared (or one that replaced it while `pipe watch` ran): it does exist.
        bag.error(
          `dep \`${d.path}\` names a folder (it ends in /), but ${displayPath(abs.slice(0, -1))} is a file: drop the trailing / to depend on the file`,
          d.span ?? s.span,
          { stage: s.name, field: fieldOf(d) ?? 'deps', missing: abs },
        );
        continue;
      }
      // Suggest a close out path (bounded: only for the first few, it scans the outs).
      let hint = '';
      if (suggestions++ < MAX_SUGGESTIONS && index.size <= 20_000) {
        const near = nearestPath(d.path, index.paths());
        if (near) hint = ` (did you mean \`${near}\`, written by \`${index.producersOf(near)[0]?.stage ?? '?'}\`?)`;
      }
      bag.error(
        `dep \`${d.path}\` does not exist and no stage writes it${hint}${displayPath(abs) === d.path ? '' : ` (looked for ${displayPath(abs)})`}`,
        d.span ?? s.span,
        { stage: s.name, field: fieldOf(d) ?? 'deps', missing: abs },
      );
    }
  }

  const dag = buildDag(p);
  if (!dag.ok) for (const d of dag.error) bag.add(d);
}

/** Is `p` strictly inside the directory `dir`? */
function inside(p: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  return p.length > d.length && p.startsWith(d);
}

function nearestPath(p: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - p.length) > 3) continue;
    const d = editDistance(p, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(p.length / 5)) ? best : undefined;
}
