/**
 * Links inside dep folders that lead into another stage's out. The DAG joins a reader to a writer by the paths both
 * declare, so a dep folder holding `x -> ../out/a.txt` reads `out/a.txt` with no edge to the stage that writes it:
 * the reader could run before the writer, read a half-written file, or be decided up to date on the old content
 * while the writer rewrites it (a stale result, exit 0). Such a stage is refused before its decision is used, naming
 * the link, the writer and the dep to declare instead — unless the writer is upstream of it anyway (another dep
 * orders the two), where reading through the link is safe. Deps written through a link are refused at load
 * (engine/commands/load.ts `depsThroughLinks`); this covers what the folder walk meets, as the disk is when the
 * stage is decided.
 */
import { readlinkSync } from 'node:fs';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { CacheError } from '../../cache/errors.js';
import { absPath, outPathKey } from '../../cache/paths.js';
import { outIndexOf } from '../graph.js';
import type { Pipeline, StageSpec } from '../model.js';
import type { Workspace } from '../workspace.js';
import type { EndCode, Reason } from '../events.js';

export class DepLinks {
  /** A link (absolute path) → where it leads, workspace-relative and `/`-separated; undefined when outside it. */
  private readonly landings = new Map<string, string | undefined>();

  constructor(
    private readonly pipeline: Pipeline,
    private readonly ws: Workspace,
    /** Every stage upstream of a stage, through any number of others. */
    private readonly upstreamOf: (stage: string) => ReadonlySet<string>,
  ) {}

  /** Why `stage` may not use what its dep folders' `links` lead to, or undefined. One realpath per link per run. */
  refusal(stage: StageSpec, links: readonly string[]): Reason<EndCode> | undefined {
    const index = outIndexOf(this.pipeline);
    let upstream: ReadonlySet<string> | undefined;
    for (const link of links) {
      const rel = this.landing(link);
      if (rel === undefined) continue;
      // A link to the workspace root itself leads to every out.
      const reached = rel === '' ? this.pipeline.stages.flatMap((s) => s.outs.map((o) => ({ stage: s.name, path: o.path }))) : index.producersOf(rel);
      const writers = reached.filter((o) => o.stage !== stage.name && !(upstream ??= this.upstreamOf(stage.name)).has(o.stage));
      if (writers.length === 0) continue;
      const linkRel = this.ws.outs.shown(link).split(sep).join('/');
      const dep = stage.deps.find((d) => link.startsWith(`${absPath(this.ws.root, outPathKey(d.path))}/`));
      const to = rel === '' ? 'the workspace itself' : `\`${rel}\``;
      const all = [...new Set(writers.map((o) => `\`${o.stage}\` (${o.path})`))];
      const named = all.length <= 3 ? all.join(', ') : `${all.slice(0, 2).join(', ')} and ${all.length - 2} more`;
      return {
        code: 'dep-through-link',
        text:
          `dep \`${dep?.path ?? linkRel}\` holds a symbolic link \`${linkRel}\` that leads to ${to}, and ${all.length > 1 ? 'stages' : 'stage'} ${named} ` +
          `${all.length > 1 ? 'write' : 'writes'} there without being upstream of \`${stage.name}\`: pipe orders stages by the paths they declare, ` +
          `so \`${stage.name}\` could read it before it is written or keep a result computed from the old content; ` +
          `declare \`${rel === '' ? writers[0]!.path : rel}\` as a dep of \`${stage.name}\` (it then runs after its writer), or replace the link with a copy`,
      };
    }
    return undefined;
  }

  /**
   * A dep folder's walk stopped at a broken link (cache/walk.ts): when the link leads to where another stage writes,
   * its out simply is not there yet, and the refusal says so instead of "make it point to an existing file".
   */
  brokenLink(stage: StageSpec, e: unknown): Reason<EndCode> | undefined {
    return e instanceof CacheError && e.code === 'broken-symlink' && e.path !== undefined ? this.refusal(stage, [e.path]) : undefined;
  }

  private landing(link: string): string | undefined {
    if (this.landings.has(link)) return this.landings.get(link);
    // Where the link points (read once), then where that leads: a dataset folder of 100,000 links into one folder
    // costs a readlink each and one listing, not a realpath each.
    let target: string;
    try {
      target = resolve(dirname(link), readlinkSync(link));
    } catch {
      target = link; // not a link any more (changed since the walk): resolved as it is now
    }
    const shown = this.ws.outs.shown(this.ws.outs.leadsTo(target)); // workspace-relative when inside it, else absolute
    const rel = isAbsolute(shown) ? undefined : shown.split(sep).join('/');
    this.landings.set(link, rel);
    return rel;
  }
}
