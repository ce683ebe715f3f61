/**
 * The set of live watchers, reconciled with the watch list after every reload: chokidar for single files (it copes
 * with editors' atomic saves — write a temp file, rename it over — and re-watches the new inode), a TreeWatcher per
 * directory dep, and for paths that do not exist yet a watch on their nearest existing parent folder, which reports
 * the path when it appears.
 */
import { watch as fsWatch, statSync, type FSWatcher as NodeWatcher } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { FSWatcher } from 'chokidar';
import { TreeWatcher } from './tree.js';
import type { WatchTargets } from './paths.js';

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

export class WatchSet {
  private chokidar: FSWatcher | undefined;
  private readonly files = new Set<string>();
  private readonly trees = new Map<string, TreeWatcher>();
  /** Missing path → the watcher on its nearest existing ancestor. */
  private readonly missing = new Map<string, NodeWatcher>();
  private ignore: (abs: string) => boolean = () => false;

  constructor(private readonly opts: WatchSetOptions) {}

  /** Watch exactly `targets` (paths the ignore predicate matches are never reported). */
  async update(targets: WatchTargets, ignore: (abs: string) => boolean): Promise<void> {
    this.ignore = ignore;
    const wantFiles = new Set<string>();
    const wantTrees = new Set<string>();
    const wantMissing = new Set<string>();
    for (const p of [...targets.files, ...targets.trees]) {
      const k = kindOf(p);
      if (k === 'dir') wantTrees.add(p);
      else if (k === 'file') wantFiles.add(p);
      else wantMissing.add(p);
    }

    for (const [p, w] of this.missing) if (!wantMissing.has(p)) (w.close(), this.missing.delete(p));
    for (const p of wantMissing) if (!this.missing.has(p)) this.watchMissing(p);

    // A tree whose root went away or was replaced by a new folder of the same name is watched afresh.
    for (const [p, t] of this.trees) {
      if (wantTrees.has(p) && t.valid) continue;
      t.close();
      this.trees.delete(p);
      this.opts.onTreeLost?.(p);
    }
    const starting: Promise<void>[] = [];
    for (const p of wantTrees) {
      if (this.trees.has(p)) continue;
      const t = new TreeWatcher(p, {
        ignore: (a) => this.ignore(a),
        onChange: this.opts.onChange,
        onWarning: this.opts.onWarning,
        ...(this.opts.onRaw ? { onRaw: this.opts.onRaw } : {}),
        onGap: () => this.opts.onTreeLost?.(p),
      });
      this.trees.set(p, t);
      starting.push(t.start());
    }

    const removed = [...this.files].filter((f) => !wantFiles.has(f));
    const added = [...wantFiles].filter((f) => !this.files.has(f));
    for (const f of removed) this.files.delete(f);
    for (const f of added) this.files.add(f);
    if (removed.length > 0) this.chokidar?.unwatch(removed);
    if (added.length > 0) starting.push(this.addFiles(added));
    await Promise.all(starting);
  }

  /** Folder trees watched in full right now (every directory in them under a watch). */
  fullTrees(): string[] {
    return [...this.trees].filter(([, t]) => t.valid && !t.gapped).map(([p]) => p);
  }

  /** What is watched now, as classified on disk: files, folder trees, and paths waiting to appear. */
  watched(): { files: string[]; trees: string[]; missing: string[] } {
    return { files: [...this.files], trees: [...this.trees.keys()], missing: [...this.missing.keys()] };
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
    for (const w of this.missing.values()) w.close();
    this.trees.clear();
    this.missing.clear();
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
        this.opts.onChange(path);
      });
      w.on('raw', () => this.opts.onActivity?.());
      w.on('error', (e: unknown) => this.opts.onWarning(`watcher: ${e instanceof Error ? e.message : String(e)}`));
      await new Promise<void>((r) => w.once('ready', () => r()));
    } else {
      this.chokidar.add(files);
    }
  }

  /** Report `abs` when something appears on its way (the next path component under the existing ancestor). */
  private watchMissing(abs: string): void {
    const anc = existingAncestor(abs);
    const next = relative(anc, abs).split(sep)[0] ?? basename(abs);
    try {
      const w = fsWatch(anc, { persistent: true }, (_e, name) => {
        if (name === null || name.toString() === next) this.opts.onChange(abs);
      });
      w.on('error', () => undefined);
      this.missing.set(abs, w);
    } catch (e) {
      this.opts.onWarning(`cannot watch ${join(anc, next)} for ${abs}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
