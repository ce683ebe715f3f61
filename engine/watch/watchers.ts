/**
 * The set of live watchers, reconciled with the watch list after every reload: chokidar for single files (it copes
 * with editors' atomic saves — write a temp file, rename it over — and re-watches the new inode), a TreeWatcher per
 * directory dep, and for paths that do not exist yet a watch on their nearest existing parent folder, which reports
 * the path when it appears.
 */
import { lstatSync, watch as fsWatch, statSync, type FSWatcher as NodeWatcher } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { FSWatcher } from 'chokidar';
import { resolveLink, TreeWatcher, type LinkTarget } from './tree.js';
import { within, type WatchTargets } from './paths.js';
import { realOf } from '../out-policy.js';

export interface WatchSetOptions {
  onChange: (abs: string) => void;
  onWarning: (message: string) => void;
  /** Every raw event and re-established folder watch (see TreeWatcherOptions.onRaw). */
  onRaw?: (abs: string) => void;
  /**
   * A watched file changed and will be reported after chokidar has stat'ed it (its raw event): a debounce waiting
   * for the burst to end counts it (engine/watch/coalesce.ts `activity`).
   */
  onActivity?: () => void;
  /** A folder tree stopped being watched in full (closed, its root gone, or a watch failed inside it). */
  onTreeLost?: (root: string) => void;
}

type Kind = 'file' | 'dir' | 'missing';

/** A watch on the folder `dir` (identity `id` when watched) for one name in it (engine/watch/watchers.ts watchName). */
interface NameWatch {
  watcher: NodeWatcher;
  dir: string;
  id: string;
  /** The folder was removed (or the watch failed): the watch sees nothing any more. */
  stale: boolean;
}

/** A folder's identity: a folder removed and made again under the same name is another one (unless the inode is reused: `stale`). */
function idOf(dir: string): string {
  try {
    const st = statSync(dir);
    return `${st.dev}:${st.ino}`;
  } catch {
    return '';
  }
}

interface Linked {
  files: Set<string>;
  trees: Set<string>;
  missing: Set<string>;
}


function kindOf(abs: string): Kind {
  try {
    return statSync(abs).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

/** The nearest existing ancestor of a missing path. */
function existingAncestor(abs: string): string {
  let d = dirname(abs);
  while (kindOf(d) !== 'dir' && dirname(d) !== d) d = dirname(d);
  return d;
}

function isLink(abs: string): boolean {
  try {
    return lstatSync(abs).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Symbolic links: a dep is hashed through its links (cache/walk.ts `follow`), so what a link leads to is watched too,
 * and an event there is reported as the link (the stage reading it is the one made stale). A link that is a target
 * itself is watched by its name in its folder (retargeting it, as `ln -sfn` does, raises no event on either end),
 * its target by its resolved path; links met inside watched trees are followed the same way, as they appear.
 */
export class WatchSet {
  private chokidar: FSWatcher | undefined;
  /** Files asked for (reported by `watched`); chokidar watches `watching`: those of them that are not links. */
  private files = new Set<string>();
  private readonly watching = new Set<string>();
  private readonly trees = new Map<string, TreeWatcher>();
  /** Trees asked for (the rest of `trees` are folders links lead to). */
  private requested = new Set<string>();
  /** A tree's resolved root when it was started: a root link retargeted since means watching it afresh. */
  private readonly realRoots = new Map<string, string>();
  /** Missing path → the watcher on its nearest existing ancestor. */
  private readonly missing = new Map<string, NameWatch>();
  /** Where links lead (resolved) → the links, for the links among the targets and inside watched trees. */
  private linksTo = new Map<string, string[]>();
  /**
   * Files links lead to, watched by their folder (one watch per folder, not per file: a dataset folder of 20,000
   * links into a store), as folder → the names in it.
   */
  private readonly linkedDirs = new Map<string, { names: Set<string>; watcher: NodeWatcher }>();
  /** Link → where it leads, as last resolved. */
  private links = new Map<string, LinkTarget>();
  /** Links whose target reported a change: resolved again at the next update (it may have gone, or come). */
  private readonly staleLinks = new Set<string>();
  /** What links lead to, by kind (as last resolved). */
  private linked: Linked = { files: new Set(), trees: new Set(), missing: new Set() };
  /** Targets that are links: each one's name watched in its folder. */
  private readonly names = new Map<string, NameWatch>();
  private ignore: (abs: string) => boolean = () => false;

  constructor(private readonly opts: WatchSetOptions) {}

  /** Watch exactly `targets` (paths the ignore predicate matches are never reported). */
  async update(targets: WatchTargets, ignore: (abs: string) => boolean): Promise<void> {
    this.ignore = ignore;
    const all = [...targets.files, ...targets.trees];
    const topLinks = new Map(all.filter(isLink).map((l) => [l, resolveLink(l)]));
    this.syncNames(new Set(topLinks.keys()), this.names);

    const wantFiles = new Set<string>();
    const wantTrees = new Set<string>();
    const wantMissing = new Set<string>();
    for (const p of all) {
      const k = kindOf(p);
      if (k === 'dir') wantTrees.add(p);
      else if (k === 'file') wantFiles.add(p);
      else wantMissing.add(p);
    }
    this.files = wantFiles;
    this.requested = wantTrees;
    // What the links lead to, until no new one is found (a linked folder may hold links of its own).
    // Links resolve when met (TreeWatcher); again only those whose target reported a change since.
    for (const t of this.trees.values()) for (const l of this.staleLinks) t.reresolve(l);
    this.staleLinks.clear();
    let links = this.links; // as last resolved: unchanged, one round is enough
    let linked = this.linked; // what they led to last time stays watched while they are resolved again
    // (bounded: each round adds a watched folder, and the links are finite)
    for (let round = 0; ; round++) {
      await this.sync(wantFiles, wantTrees, wantMissing, linked);
      const found = new Map(topLinks);
      for (const t of this.trees.values()) for (const [l, to] of t.links) if (!this.ignore(l)) found.set(l, to);
      const next: Linked = { files: new Set(), trees: new Set(), missing: new Set() };
      const realDirs = new Map<string, string>();
      for (const [link, { target, kind: k }] of found) {
        if (this.ignore(target)) continue; // into an output: the engine writes it (and refuses a reader it does not order)
        // Back to a folder holding the link (a cycle: the hash refuses it, and following it would watch all above).
        const dir = dirname(link);
        let real = realDirs.get(dir);
        if (real === undefined) realDirs.set(dir, (real = realOf(dir)));
        if (within(real, target) || dirname(target) === target) continue;
        if (k === 'dir' && wantTrees.has(link)) continue; // a tree's root link: its watcher goes through it
        (k === 'dir' ? next.trees : k === 'file' ? next.files : next.missing).add(target);
      }
      const same = found.size === links.size && [...found].every(([l, t]) => links.get(l)?.target === t.target && links.get(l)?.kind === t.kind);
      links = found;
      const grew = [...next.trees].some((t) => !this.trees.has(t)) || [...next.missing].some((m) => !this.missing.has(m));
      linked = next;
      if ((same && !grew) || round > found.size) {
        await this.sync(wantFiles, wantTrees, wantMissing, linked);
        break;
      }
    }
    this.linked = linked;
    this.links = links;
    this.linksTo = new Map();
    for (const [link, { target }] of links) this.linksTo.set(target, [...(this.linksTo.get(target) ?? []), link]);
  }

  /** Reconcile the live watchers with what is wanted now: the targets and what their links lead to. */
  private async sync(files: Set<string>, trees: Set<string>, missing: Set<string>, linked: Linked): Promise<void> {
    const wantMissing = new Set([...missing, ...linked.missing]);
    const wantTrees = new Set([...trees, ...linked.trees]);
    // A file that is a link is watched where it leads (`linked`), its retarget by its name (`names`).
    const wantWatch = new Set([...files].filter((f) => !isLink(f)));
    const wantDirs = new Map<string, Set<string>>();
    for (const f of linked.files) {
      const names = wantDirs.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      wantDirs.set(dirname(f), names);
    }
    for (const [d, w] of this.linkedDirs) if (!wantDirs.has(d)) (w.watcher.close(), this.linkedDirs.delete(d));
    for (const [d, names] of wantDirs) {
      const had = this.linkedDirs.get(d);
      if (had) had.names = names;
      else this.watchLinkedDir(d, names);
    }

    this.syncNames(wantMissing, this.missing);

    // A tree whose root went away, was replaced by a new folder of the same name or (a link) leads elsewhere now
    // is watched afresh.
    for (const [p, t] of this.trees) {
      if (wantTrees.has(p) && t.valid && this.realRoots.get(p) === realOf(p)) continue;
      t.close();
      this.trees.delete(p);
      this.realRoots.delete(p);
      this.opts.onTreeLost?.(p);
    }
    const starting: Promise<void>[] = [];
    for (const p of wantTrees) {
      if (this.trees.has(p)) continue;
      const t = new TreeWatcher(p, {
        ignore: (a) => this.ignore(a),
        onChange: (a) => this.report(a),
        onWarning: this.opts.onWarning,
        ...(this.opts.onRaw ? { onRaw: this.opts.onRaw } : {}),
        onGap: () => this.opts.onTreeLost?.(p),
      });
      this.trees.set(p, t);
      this.realRoots.set(p, realOf(p));
      starting.push(t.start());
    }

    const removed = [...this.watching].filter((f) => !wantWatch.has(f));
    const added = [...wantWatch].filter((f) => !this.watching.has(f));
    for (const f of removed) this.watching.delete(f);
    for (const f of added) this.watching.add(f);
    if (removed.length > 0) this.chokidar?.unwatch(removed);
    if (added.length > 0) starting.push(this.addFiles(added));
    await Promise.all(starting);
  }

  /** A change at `abs`, and at every link that leads to it or to a folder holding it. */
  private report(abs: string): void {
    this.opts.onChange(abs);
    if (this.linksTo.size === 0) return;
    for (let p = abs; ; p = dirname(p)) {
      for (const link of this.linksTo.get(p) ?? []) {
        this.staleLinks.add(link);
        this.opts.onChange(link);
      }
      if (dirname(p) === p) break;
    }
  }

  /** The folder of files links lead to: a change to one of `names` (written, replaced, removed, created). */
  private watchLinkedDir(dir: string, names: Set<string>): void {
    try {
      const entry = { names, watcher: undefined as unknown as NodeWatcher };
      entry.watcher = fsWatch(dir, { persistent: true }, (_e, name) => {
        if (name === null) for (const n of entry.names) this.report(join(dir, n));
        else if (entry.names.has(name.toString())) this.report(join(dir, name.toString()));
      });
      entry.watcher.on('error', () => undefined);
      this.linkedDirs.set(dir, entry);
    } catch (e) {
      this.opts.onWarning(`cannot watch ${dir}, where links of a dep lead: ${e instanceof Error ? e.message : String(e)}; changes there are not seen`);
    }
  }

  /** Folder trees asked for and watched in full right now (every directory in them under a watch). */
  fullTrees(): string[] {
    return [...this.trees].filter(([p, t]) => this.requested.has(p) && t.valid && !t.gapped).map(([p]) => p);
  }

  /** What is watched now, as classified on disk: files, folder trees, and paths waiting to appear. */
  watched(): { files: string[]; trees: string[]; missing: string[] } {
    return { files: [...this.files], trees: [...this.trees.keys()].filter((p) => this.requested.has(p)), missing: [...this.missing.keys()] };
  }

  stats(): { files: number; trees: number; dirs: number; missing: number } {
    let dirs = 0;
    for (const t of this.trees.values()) dirs += t.size;
    return { files: this.files.size, trees: this.trees.size, dirs, missing: this.missing.size };
  }

  async close(): Promise<void> {
    for (const [p, t] of this.trees) {
      t.close();
      this.opts.onTreeLost?.(p);
    }
    for (const w of [...this.missing.values(), ...this.names.values(), ...this.linkedDirs.values()]) w.watcher.close();
    this.trees.clear();
    this.missing.clear();
    this.names.clear();
    this.linkedDirs.clear();
    await this.chokidar?.close();
    this.chokidar = undefined;
  }

  private async addFiles(files: string[]): Promise<void> {
    if (!this.chokidar) {
      const { watch } = await import('chokidar');
      const w = watch(files, { ignoreInitial: true, persistent: true, ignored: (p: string) => this.ignore(p) });
      this.chokidar = w;
      w.on('all', (_event: string, path: string) => {
        this.opts.onRaw?.(path);
        this.report(path);
      });
      w.on('raw', () => this.opts.onActivity?.());
      w.on('error', (e: unknown) => this.opts.onWarning(`watcher: ${e instanceof Error ? e.message : String(e)}`));
      await new Promise<void>((r) => w.once('ready', () => r()));
    } else {
      this.chokidar.add(files);
    }
  }

  /**
   * Watch exactly `want` by name (see watchName). One is watched afresh when the folder watched for it is no longer
   * the right one: a nearer ancestor of a missing path now exists (its folder was made; the file comes later), or the
   * folder was removed and made again (the old watch sees nothing any more).
   */
  private syncNames(want: ReadonlySet<string>, into: Map<string, NameWatch>): void {
    for (const [p, w] of into) {
      if (want.has(p) && !w.stale && w.dir === existingAncestor(p) && w.id === idOf(w.dir)) continue;
      w.watcher.close();
      into.delete(p);
    }
    for (const p of want) if (!into.has(p)) this.watchName(p, into);
  }

  /**
   * Report `abs` when its name changes in its folder (a link retargeted), or, missing, when something appears on
   * its way (the next path component under the nearest existing ancestor).
   */
  private watchName(abs: string, into: Map<string, NameWatch>): void {
    const anc = existingAncestor(abs);
    const next = relative(anc, abs).split(sep)[0] ?? basename(abs);
    try {
      const entry: NameWatch = { watcher: undefined as unknown as NodeWatcher, dir: anc, id: idOf(anc), stale: false };
      entry.watcher = fsWatch(anc, { persistent: true }, (_e, name) => {
        // The folder's own removal comes under its own name (so may a child's of that name): watch it afresh.
        if (name === null || name.toString() === basename(anc)) entry.stale = true;
        if (name === null || name.toString() === next) this.report(abs);
      });
      entry.watcher.on('error', () => (entry.stale = true));
      into.set(abs, entry);
      // A missing path: what appeared between the look that chose `anc` and this watch raised its event before the
      // watch was there (`mkdir -p data/raw; echo > data/raw/in.csv` in one go). Looked at again now, and reported.
      if (into === this.missing && (existingAncestor(abs) !== anc || kindOf(abs) !== 'missing')) queueMicrotask(() => this.report(abs));
    } catch (e) {
      this.opts.onWarning(`cannot watch ${join(anc, next)} for ${abs}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
