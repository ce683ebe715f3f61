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
import { dirname, resolve, sep } from 'node:path';
import { CacheError } from '../../cache/errors.js';
import { absPath, outPathKey } from '../../cache/paths.js';
import { outIndexOf } from '../graph.js';
import { fewNamed } from '../why.js';
import type { Pipeline, StageSpec } from '../model.js';
import type { Workspace } from '../workspace.js';
import type { EndCode, Reason } from '../events.js';

/** A link met in a dep folder that leads into outs: where it leads, and which outs are there. */
interface Hit {
  link: string;
  /** Workspace-relative and `/`-separated; '' is the workspace root itself. */
  rel: string;
  outs: ReadonlyArray<{ stage: string; path: string }>;
}

export class DepLinks {
  /**
   * The links of one dep folder's hash that lead into outs, by its list of links: the list is the memoised hash's
   * own, shared by every stage reading that folder, so a matrix of 1,000 readers resolves its links once.
   */
  private readonly hits = new WeakMap<readonly string[], Hit[]>();

  constructor(
    private readonly pipeline: Pipeline,
    private readonly ws: Workspace,
    /** Every stage upstream of a stage, through any number of others. */
    private readonly upstreamOf: (stage: string) => ReadonlySet<string>,
  ) {}

  /** Why `stage` may not use what its dep folders' links (one list per folder) lead to, or undefined. */
  refusal(stage: StageSpec, linkLists: ReadonlyArray<readonly string[]>): Reason<EndCode> | undefined {
    let upstream: ReadonlySet<string> | undefined;
    let first: { hit: Hit; writers: Hit['outs'] } | undefined;
    let more = 0;
    for (const links of linkLists) {
      for (const hit of this.hitsOf(links)) {
        const writers = hit.outs.filter((o) => o.stage !== stage.name && !(upstream ??= this.upstreamOf(stage.name)).has(o.stage));
        if (writers.length === 0) continue;
        if (first) more++;
        else first = { hit, writers };
      }
    }
    return first && this.refusalOf(stage, first.hit, first.writers, more);
  }

  /**
   * A dep folder's walk stopped at a broken link (cache/walk.ts): when the link leads to where another stage writes,
   * its out simply is not there yet, and the refusal says so instead of "make it point to an existing file".
   */
  brokenLink(stage: StageSpec, e: unknown): Reason<EndCode> | undefined {
    return e instanceof CacheError && e.code === 'broken-symlink' && e.path !== undefined ? this.refusal(stage, [[e.path]]) : undefined;
  }

  private refusalOf(stage: StageSpec, hit: Hit, writers: Hit['outs'], more: number): Reason<EndCode> {
    const { link, rel } = hit;
    const linkRel = this.ws.outs.shown(link).split(sep).join('/');
    const dep = stage.deps.find((d) => link.startsWith(`${absPath(this.ws.root, outPathKey(d.path))}/`));
    const to = rel === '' ? 'the workspace itself' : `\`${rel}\``;
    const all = [...new Set(writers.map((o) => `\`${o.stage}\` (${o.path})`))];
    const others = more > 0 ? ` (and ${more} more link${more > 1 ? 's' : ''} into outs like it)` : '';
    return {
      code: 'dep-through-link',
      text:
        `dep \`${dep?.path ?? linkRel}\` holds a symbolic link \`${linkRel}\`${others} that leads to ${to}, and ${all.length > 1 ? 'stages' : 'stage'} ${fewNamed(all)} ` +
        `${all.length > 1 ? 'write' : 'writes'} there without being upstream of \`${stage.name}\`: pipe orders stages by the paths they declare, ` +
        `so \`${stage.name}\` could read it before it is written or keep a result computed from the old content; ` +
        `declare \`${rel === '' ? writers[0]!.path : rel}\` as a dep of \`${stage.name}\` (it then runs after its writer), or replace the link with a copy`,
    };
  }

  private hitsOf(links: readonly string[]): Hit[] {
    let hits = this.hits.get(links);
    if (hits) return hits;
    hits = [];
    const index = outIndexOf(this.pipeline);
    // Where each link points (a readlink each), then where that leads (OutPolicy.leadsTo): a folder several targets
    // share is listed once for its links; a folder holding one target (a dataset of one folder per file) costs an
    // lstat of it instead of a listing.
    const targets = links.map(targetOf);
    const perFolder = new Map<string, number>();
    for (const t of targets) perFolder.set(dirname(t), (perFolder.get(dirname(t)) ?? 0) + 1);
    for (let i = 0; i < links.length; i++) {
      const target = targets[i]!;
      const rel = this.ws.outs.relInside(this.ws.outs.leadsTo(target, perFolder.get(dirname(target))! > 1));
      if (rel === undefined) continue; // outside the workspace
      // A link to the workspace root itself leads to every out.
      const outs = rel === '' ? this.pipeline.stages.flatMap((s) => s.outs.map((o) => ({ stage: s.name, path: o.path }))) : index.producersOf(rel);
      if (outs.length > 0) hits.push({ link: links[i]!, rel, outs });
    }
    this.hits.set(links, hits);
    return hits;
  }
}

/** Where a link points (its target, resolved against its folder); itself when it is no link any more. */
function targetOf(link: string): string {
  try {
    return resolve(dirname(link), readlinkSync(link));
  } catch {
    return link; // changed since the walk: resolved as it is now
  }
}
