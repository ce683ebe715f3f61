/**
 * The one path policy for outputs: every path pipe writes, deletes, restores or hashes as an out must resolve —
 * symlinks included (the real path of its deepest existing ancestor, and of the out itself when it is a link) —
 * strictly inside the workspace, and neither inside nor around pipe's own files: the workspace's `.pipe/`, the cache
 * directory, and the pipeline's definition (its YAML, includes, params files and lock file). A refusal names the
 * path and what it resolves to.
 *
 * Checked at load time (engine/commands/load.ts: located diagnostics, exit 2), before a stage is decided (its outs
 * are hashed), and again, fresh, right before anything is deleted, restored, or stored (engine/run/commit.ts): a
 * stage that ran may have turned a folder into a link.
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { absPath, outPathKey } from '../cache/paths.js';
import { lockPath } from './lockfile.js';
import type { Pipeline, StageSpec } from './model.js';

export interface Refusal {
  /** The out as declared. */
  path: string;
  /** One sentence naming the out, what it resolves to, and the rule it breaks. */
  reason: string;
  /**
   * Only the out itself is a link to somewhere it may not go; its folder is fine. Deleting the link (never its
   * target) is then safe, and is how a failed stage's outputs are cleared.
   */
  linkOnly: boolean;
}

/** An out's absolute path, where writing it lands (its folder's links resolved), and whether that folder exists. */
interface Placed {
  abs: string;
  place: string;
  folderExists: boolean;
}

interface Guarded {
  real: string;
  /** `real` with a trailing separator: what a path inside it starts with. */
  prefix: string;
  /** How a message names it: "pipe's own folder .pipe/", "the pipeline file p.yaml". */
  what: string;
}

export class OutPolicy {
  private readonly root: string;
  private readonly rootPrefix: string;
  private readonly guarded: Guarded[];
  /** Real paths of out folders and whether they exist, between stage executions (see `forget`). */
  private readonly folders = new Map<string, Resolved>();
  /** The names of the symbolic links in a folder, listed once (see `forget`). */
  private readonly linkNames = new Map<string, Set<string>>();

  constructor(
    private readonly workdir: string,
    guarded: Array<{ path: string; what: string }>,
  ) {
    this.root = realOf(workdir);
    this.rootPrefix = withSep(this.root);
    this.guarded = guarded.map((g) => {
      const real = realOf(g.path);
      return { real, prefix: withSep(real), what: g.what };
    });
  }

  /** The policy of a pipeline's workspace: `.pipe/`, the cache, and the pipeline's own files are guarded. */
  static of(p: Pipeline, pipeDir: string): OutPolicy {
    const rel = (f: string) => relative(p.workdir, f) || f;
    return new OutPolicy(p.workdir, [
      { path: pipeDir, what: `pipe's own folder ${rel(pipeDir)}/` },
      { path: p.settings.cacheDir, what: `the cache directory ${rel(p.settings.cacheDir)}/` },
      ...p.sourceFiles.map((f) => ({ path: f, what: f === p.file ? `the pipeline file ${rel(f)}` : `the pipeline's file ${rel(f)}` })),
      { path: lockPath(p.file), what: `the lock file ${rel(lockPath(p.file))}` },
    ]);
  }

  /**
   * Forget the memoised folder resolutions: called whenever a stage starts or ends running (it may have made links).
   * Checks before a delete, a restore or a store never use the memo.
   */
  forget(): void {
    this.folders.clear();
    this.linkNames.clear();
  }

  /**
   * Why `rel` may not be an out, or undefined. `fresh`: resolve everything now (before writing or deleting);
   * otherwise folder resolutions may come from the memo.
   */
  check(rel: string, opts: { fresh?: boolean } = {}): Refusal | undefined {
    return this.checkPlaced(rel, this.placed(rel, opts.fresh), true);
  }

  /**
   * Load time: the refusal of `rel`, not looking at the out itself (only its folder), or else where writing it lands:
   * the real path of its folder plus its name. Two outs that differ as written may land in one place (`L/x` with
   * `L -> d`, and `d/`).
   */
  placeOrRefusal(rel: string): { refusal: Refusal } | { place: string } {
    const placed = this.placed(rel);
    const refusal = this.checkPlaced(rel, placed, false);
    return refusal ? { refusal } : { place: placed.place };
  }

  private checkPlaced(rel: string, { abs, place: placed, folderExists }: Placed, leaf: boolean): Refusal | undefined {
    const folderProblem = this.problem(placed);
    if (folderProblem) return { path: rel, reason: this.say(rel, placed, folderProblem), linkOnly: false };
    // No folder, no leaf: a stage that never ran costs no stat per out (100,000 outs: a second).
    if (!leaf || !folderExists) return undefined;
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink()) return undefined;
    const real = realOf(abs);
    const leafProblem = this.problem(real);
    return leafProblem ? { path: rel, reason: this.say(rel, real, leafProblem, true), linkOnly: true } : undefined;
  }

  private placed(rel: string, fresh = false): Placed {
    const { abs, folder, name } = this.located(rel);
    let resolved = fresh ? undefined : this.folders.get(folder);
    if (resolved === undefined) {
      resolved = resolveReal(folder);
      if (!fresh) this.folders.set(folder, resolved);
    }
    return { abs, place: joinName(resolved.real, name), folderExists: resolved.exists };
  }

  /** Where `rel` lands on disk: the real path of its folder (memoised, as for outs) plus its name, not followed. */
  landing(rel: string): string {
    return this.placed(rel).place;
  }

  /**
   * Where `abs` leads: its real path, a link on the leaf followed. From memoised folder resolutions, not a realpath
   * per path, when `listing`: whether the leaf is a link comes from one listing of its folder (memoised), for many
   * paths in one folder (thousands of paths there cost one readdir). Else one realpath of `abs`.
   */
  leadsTo(abs: string, listing = true): string {
    if (!listing) {
      // One path in its folder: one realpath of it (missing on the way: followed by hand) costs less than an lstat
      // of it and a resolution of its folder.
      try {
        return realpathSync.native(abs);
      } catch {
        return realOf(abs);
      }
    }
    const slash = abs.lastIndexOf('/');
    const folder = slash === 0 ? '/' : abs.slice(0, slash);
    let links = this.linkNames.get(folder);
    if (!links) {
      links = new Set();
      try {
        for (const e of readdirSync(folder, { withFileTypes: true })) if (e.isSymbolicLink()) links.add(e.name);
      } catch {
        // Not a listable folder (missing, a file): nothing in it is a link.
      }
      this.linkNames.set(folder, links);
    }
    return links.has(abs.slice(slash + 1)) ? realOf(abs) : this.landing(abs);
  }

  /** The absolute path of an out, its folder and its name. */
  private located(rel: string): { abs: string; folder: string; name: string } {
    const abs = absPath(this.workdir, rel);
    return { abs, folder: dirname(abs), name: basename(abs) };
  }

  /** How a message names a place: workspace-relative when inside it. */
  shown(real: string): string {
    return inside(real, this.root) ? relative(this.root, real) : real;
  }

  /** A real path inside the workspace as a workspace-relative, `/`-separated path (the root: ''); else undefined. */
  relInside(real: string): string | undefined {
    return inside(real, this.root) ? relative(this.root, real).split(sep).join('/') : undefined;
  }

  /** The first refusal among a stage's outs. */
  checkStage(stage: StageSpec, opts: { fresh?: boolean } = {}): Refusal | undefined {
    for (let i = 0; i < stage.outs.length; i++) {
      const r = this.check(stage.outs[i]!.path, opts);
      if (r) return r;
    }
    return undefined;
  }

  /** What is wrong with an out that resolves to `real`, or undefined. */
  private problem(real: string): string | undefined {
    if (real === this.root || !real.startsWith(this.rootPrefix)) return `outside the workspace ${this.root}`;
    for (let i = 0; i < this.guarded.length; i++) {
      const g = this.guarded[i]!;
      if (real === g.real) return `${g.what} itself`;
      if (real.startsWith(g.prefix)) return `inside ${g.what}`;
      if (g.real.length > real.length && g.real.startsWith(real) && (real.endsWith(sep) || g.real.charCodeAt(real.length) === SEP)) return `a folder holding ${g.what}`;
    }
    return undefined;
  }

  private say(rel: string, real: string, problem: string, link = false): string {
    const shown = inside(real, this.root) ? relative(this.root, real) : real;
    const via = shown === outPathKey(rel) ? '' : ` resolves${link ? ' (it is a symbolic link)' : ' (through a symbolic link)'} to ${shown}, which`;
    return `out ${rel}${via || ' is'} ${via ? 'is ' : ''}${problem}: pipe never writes, deletes, restores or hashes an output there`;
  }
}

function inside(p: string, dir: string): boolean {
  return p.startsWith(withSep(dir));
}

function withSep(dir: string): string {
  return dir.endsWith(sep) ? dir : `${dir}${sep}`;
}

const SEP = sep.charCodeAt(0);

/** join(folder, name) for a real folder (normal, absolute) and one name, without join's copy for a plain name. */
function joinName(folder: string, name: string): string {
  // '' (the out is `/`), or `.`/`..` (a relative workdir's slow path): what join makes of them, normalised.
  if (name === '' || name === '.' || name === '..') return join(folder, name);
  return folder.endsWith(sep) ? folder + name : `${folder}${sep}${name}`;
}

/**
 * The real path of `abs` as far as it exists: the real path of its deepest existing ancestor (a dangling link
 * followed to where it points, at most 40 hops), with the rest appended.
 */
export function realOf(abs: string): string {
  return resolveReal(abs).real;
}

interface Resolved {
  real: string;
  /** `abs` itself exists (a dangling link does not: nothing can be inside it). */
  exists: boolean;
}

function resolveReal(abs: string): Resolved {
  const rest: string[] = [];
  let p = resolve(abs);
  const at = (base: string): Resolved => ({ real: join(base, ...rest), exists: rest.length === 0 });
  for (let hops = 0; hops <= 40; ) {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) {
      const up = dirname(p);
      if (up === p) return at(p);
      rest.unshift(basename(p));
      p = up;
      continue;
    }
    try {
      return at(realpathSync.native(p));
    } catch {
      // A dangling link (or a loop): follow it by hand; whatever gets created through it lands at its target.
      if (!st.isSymbolicLink()) return at(p);
      p = resolve(dirname(p), readlinkSync(p));
      hops++;
    }
  }
  return { real: join(p, ...rest), exists: false };
}
