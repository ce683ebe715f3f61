/**
 * Built-in stage kinds (`uses:`): their manifests (small, no heavy imports; loaded to validate a pipeline, or when a
 * stage uses a kind) and the fingerprint
 * of their implementation and toolchain (part of the key). A kind's run.js is never imported here: only the stage runner does that,
 * when the stage actually runs.
 */
import { existsSync, readdirSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ModuleRefs, scanModule } from './closure.js';
import { declaredDependencies, forgetInstalledPackages, installedVersions } from './packages.js';
import { writeFileAtomicSync } from '../cache/atomic.js';
import { ownFolderSync } from '../cache/dir.js';
import { readRegularFileSync } from '../cache/read.js';
import { hashBytes } from '../cache/hash.js';
import type { Hash, HashState } from '../cache/types.js';
import type { StageManifest } from './stage-api.js';

/** dist/engine → dist; when run from sources (tsx), engine → the repo root. */
const here = dirname(fileURLToPath(import.meta.url));
const distRoot = dirname(here);
const repoRoot = basename(distRoot) === 'dist' ? dirname(distRoot) : distRoot;
/** Where compiled kinds live: `<stagesRoot>/<kind>/manifest.js` and `run.js`. */
export const stagesRoot = basename(distRoot) === 'dist' ? join(distRoot, 'stages') : join(repoRoot, 'dist', 'stages');
/** The compiled engine folder (dist/engine), home of runner.js. */
export const engineDistDir = basename(distRoot) === 'dist' ? here : join(repoRoot, 'dist', 'engine');

let manifests: Map<string, StageManifest> | undefined;
/** kind → the root folder its compiled manifest.js/run.js live under. */
const roots = new Map<string, string>();

/**
 * Extra folders of compiled kinds (`<dir>/<kind>/manifest.js`, `run.js`), colon-separated, from PIPE_KINDS_PATH:
 * project-local kinds, and the engine's tests (which need a kind whose implementation they can edit).
 * A kind found there shadows a built-in one of the same name.
 */
function kindRoots(): string[] {
  const extra = (process.env.PIPE_KINDS_PATH ?? '').split(':').filter((d) => d.length > 0);
  return [stagesRoot, ...extra.map((d) => resolve(d))];
}

let found: Array<{ root: string; files: string[] }> | undefined;
let scan: typeof scanModule | undefined;

/**
 * The `manifest.js` files under the kind roots (a walk of a few dozen folders, nothing imported): a cached validated
 * pipeline is only valid while they are unchanged.
 */
export function findKindManifests(): readonly string[] {
  found ??= kindRoots().map((root) => ({ root, files: existsSync(root) ? findManifests(root) : [] }));
  return found.flatMap((r) => r.files);
}

/**
 * Import every `manifest.js` under the kind roots once (a dozen small modules), so that `resolveKind` can be
 * synchronous for the DSL's validation. A run whose validated pipeline comes from the cache and uses no kind never
 * imports them.
 */
export async function loadKinds(): Promise<Map<string, StageManifest>> {
  if (manifests) return manifests;
  // The module scanner (es-module-lexer's wasm) only serves kinds' closures.
  scan = (await import('./closure.js')).scanModule;
  findKindManifests();
  const loaded = new Map<string, StageManifest>();
  for (const { root, files } of found!) {
    const mods = await Promise.all(files.map(async (file) => [file, (await import(pathToFileURL(file).href)) as { manifest?: StageManifest }] as const));
    for (const [file, mod] of mods) {
      const kind = relative(root, dirname(file)).split(sep).join('/');
      if (!mod.manifest) continue;
      loaded.set(kind, mod.manifest);
      roots.set(kind, root);
    }
  }
  manifests = loaded;
  return loaded;
}

function scannerOf(): typeof scanModule {
  if (!scan) throw new Error('internal: a kind closure was asked for before loadKinds()');
  return scan;
}

/** The folder holding a kind's compiled run.js (the runner's `stagesRoot`). */
export function kindRoot(kind: string): string {
  return roots.get(kind) ?? stagesRoot;
}

/** The manifest of kind `evaluate/fpr`, or undefined for an unknown kind. Call `loadKinds()` first. */
export function resolveKind(kind: string): StageManifest | undefined {
  return manifests?.get(kind);
}

/** Every known kind (for "did you mean" lists and docs). */
export function knownKinds(): string[] {
  return [...(manifests?.keys() ?? [])].sort();
}

/** Absolute path of the compiled run module of a kind (imported only by the runner). */
export function runModulePath(kind: string): string {
  return join(kindRoot(kind), ...kind.split('/'), 'run.js');
}

/** The Node version and platform a `uses` stage runs on, and the npm packages its code reaches (see fingerprint.ts). */
export interface Toolchain {
  node: string;
  platform: string;
  /** package the code names → its installed version and a digest of its installed dependency tree (packages.ts). */
  packages: Record<string, string>;
}

/** What of a kind's code and toolchain goes into the key of the stages using it. */
export interface KindFingerprint {
  /** Repo-relative path of every file in the closure → its sha256 (null: imported but missing). */
  implementation: Record<string, Hash | null>;
  toolchain: Toolchain;
}

/** The implementation closure of a kind: files (absolute) and the packages its code reaches (name → a folder it is imported from). */
export interface KindClosure {
  files: string[];
  /** Closure files that are imported but do not exist (the stage would fail; the key still says so). */
  missing: string[];
  packages: Map<string, string>;
}

const closures = new Map<string, KindClosure>();
/** Module scans, shared by every kind's walk (the runner, the stage API and stages/lib are in most closures). */
const scans = new Map<string, ModuleRefs>();
const fingerprints = new Map<string, Promise<KindFingerprint>>();

/**
 * Forget the memoised closures and fingerprints (a long-lived process, e.g. `pipe watch`, calls this each cycle so
 * an edited kind is seen; the HashState still makes re-hashing unchanged files cost only stats).
 */
export function resetImplementationHashes(): void {
  closures.clear();
  fingerprints.clear();
  scans.clear();
  forgetInstalledPackages();
}

/**
 * A kind's implementation closure: its compiled run module, the stage runner and the stage API, every module they
 * import (transitively, stages/lib included), every worker or data file they locate with
 * `new URL('./x.js', import.meta.url)`, plus the manifest's `workers` and `data` lists. Nothing else of dist/: a
 * leftover .js that no import reaches changes nothing. Compiled .js, not .ts sources: the key describes the code
 * that runs (docs/cache.md says why).
 */
export function kindClosure(kind: string, state?: HashState & PeekingState): KindClosure {
  let c = closures.get(kind);
  if (c) return c;
  const manifest = resolveKind(kind);
  const compiled = join(kindRoot(kind), ...kind.split('/'));
  const src = join(repoRoot, 'stages', ...kind.split('/'));
  const builtIn = kindRoot(kind) === stagesRoot;
  const roots = [runModulePath(kind), join(engineDistDir, 'runner.js'), join(engineDistDir, 'stage-api.js')];
  for (const w of manifest?.workers ?? []) roots.push(resolve(compiled, w.replace(/\.ts$/, '.js')));
  const data = (manifest?.data ?? []).map((d) => resolve(builtIn && existsSync(src) ? src : compiled, d));
  c = walkClosure(roots, data, (file) => refsOf(file, state));
  closures.set(kind, c);
  return c;
}

function walkClosure(roots: string[], data: string[], refsOf: (file: string) => ModuleRefs): KindClosure {
  const seen = new Set<string>();
  const missing = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [...roots];
  for (const d of data) {
    if (isFile(d)) seen.add(d);
    else missing.add(d);
  }
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file) || missing.has(file)) continue;
    if (!isFile(file)) {
      missing.add(file);
      continue;
    }
    seen.add(file);
    if (!/\.[cm]?js$/.test(file)) continue;
    const refs = refsOf(file);
    const dir = dirname(file);
    for (const r of refs.imports) queue.push(resolve(dir, r));
    // Located files count only when they exist (`ts ? './worker.ts' : './worker.js'` names both).
    for (const r of refs.located) {
      const p = resolve(dir, r);
      if (isFile(p)) queue.push(p);
    }
    for (const p of refs.packages) if (!packages.has(p)) packages.set(p, dir);
  }
  return { files: [...seen].sort(), missing: [...missing].sort(), packages };
}

/**
 * The key material of a kind: the content of every closure file, by repo-relative path, and the toolchain (Node,
 * platform, installed versions of the packages the closure reaches and their dependencies). Goes through the
 * HashState, so a no-op run only stats the files (and reads the small modules to follow their imports).
 */
export function kindFingerprint(kind: string, state: HashState & PeekingState): Promise<KindFingerprint> {
  let f = fingerprints.get(kind);
  if (!f) {
    f = computeFingerprint(kind, state);
    fingerprints.set(kind, f);
  }
  return f;
}

async function computeFingerprint(kind: string, state: HashState & PeekingState): Promise<KindFingerprint> {
  const f = { implementation: await implementationHashes(kind, state), toolchain: toolchainOf(kind) };
  memo.saveSoon();
  return f;
}

/** The content of a kind's closure: repo-relative path → sha256 (null: imported but missing). */
export async function implementationHashes(kind: string, state: HashState & PeekingState): Promise<Record<string, Hash | null>> {
  const c = kindClosure(kind, state);
  const root = kindRoot(kind);
  const label = (file: string): string => {
    const rel = relative(repoRoot, file);
    return rel.startsWith('..') || isAbsolute(rel) ? `PIPE_KINDS_PATH/${relative(root, file).split(sep).join('/')}` : rel.split(sep).join('/');
  };
  const implementation: Record<string, Hash | null> = {};
  for (const f of c.missing) implementation[label(f)] = null;
  const hashes = await Promise.all(c.files.map((f) => state.hashPath(f)));
  c.files.forEach((f, i) => (implementation[label(f)] = hashes[i]!.hash));
  return implementation;
}

/** Node, platform-arch, and the installed versions of the packages a kind's closure reaches (transitively). */
export function toolchainOf(kind: string): Toolchain {
  const roots = kindClosure(kind).packages;
  return { node: process.version, platform: `${process.platform}-${process.arch}`, packages: memo.packages(roots, () => installedVersions(roots, repoRoot)) };
}

// ── what a no-op run need not recompute ──

/** The HashState's synchronous memo lookup (cache/state.ts `peek`), when the state has one. */
interface PeekingState {
  peek?(absPath: string, st: BigIntStats): Hash | undefined;
}

/** What one compiled module refers to: from this process's scans, the memo (by content), or a scan now. */
function refsOf(file: string, state: PeekingState | undefined): ModuleRefs {
  let refs = scans.get(file);
  if (refs) return refs;
  const st = statSync(file, { bigint: true });
  const known = state?.peek?.(file, st);
  refs = known ? memo.scan(known) : undefined;
  if (!refs) {
    const bytes = readFileSync(file);
    const hash = hashBytes(bytes);
    refs = memo.scan(hash) ?? memo.addScan(hash, scannerOf()(bytes.toString('utf8'), declaredDependencies(repoRoot)));
  }
  scans.set(file, refs);
  return refs;
}

/** The memo holds one line of module references per scanned file: megabytes at most. */
const MAX_KIND_MEMO_BYTES = 64 * 1024 * 1024;

/**
 * A small cache of the closure's costs, so a no-op run neither reads nor lexes the kinds' modules nor walks the
 * installed package tree: module scans by content (sha256 of a compiled module → what it refers to; a module whose
 * identity the HashState vouches for is not read at all) and package answers by the identity of the installed tree
 * (npm's hidden lock file and package.json, Node's version). Kept in `<workspace>/.pipe/kinds.json`; a cache only —
 * missing, damaged, or written for other declared dependencies, it is empty. Entries are facts (content → scan), so
 * two processes writing it at once lose nothing but work.
 */
class KindMemo {
  private file: string | undefined;
  private data: { v: number; deps: string; scans: Record<string, ModuleRefs>; packages: Record<string, Record<string, string>> } = { v: 1, deps: '', scans: {}, packages: {} };
  private used = new Set<string>();
  private dirty = false;
  private pending = false;

  open(file: string): void {
    if (this.file === file) return;
    this.file = file;
    const deps = [...declaredDependencies(repoRoot)].sort().join(',');
    this.data = { v: 1, deps, scans: {}, packages: {} };
    try {
      // Bounded and non-blocking: a FIFO put here by a stage's command would hang every run.
      const d = JSON.parse(readRegularFileSync(file, MAX_KIND_MEMO_BYTES) ?? '') as KindMemo['data'];
      if (d.v === 1 && d.deps === deps && isMap(d.scans) && isMap(d.packages)) this.data = d;
    } catch {
      // No memo yet, or a damaged one (not a regular file, over the bound): start empty; the next save replaces it.
    }
  }

  /**
   * The memo's scan of a module, when it has the shape a scan has. The memo is a file under `.pipe` any stage's
   * command can write: `{"scans": 5}` or a scan without its lists crashed every run of a `uses:` stage.
   */
  scan(hash: string): ModuleRefs | undefined {
    const r = Object.hasOwn(this.data.scans, hash) ? this.data.scans[hash] : undefined;
    if (!isMap(r) || !texts(r.imports) || !texts(r.located) || !texts(r.packages)) return undefined;
    this.used.add(hash);
    return r;
  }

  addScan(hash: string, refs: ModuleRefs): ModuleRefs {
    this.data.scans[hash] = refs;
    this.used.add(hash);
    this.dirty = true;
    return refs;
  }

  packages(roots: ReadonlyMap<string, string>, compute: () => Record<string, string>): Record<string, string> {
    const tree = identity(join(repoRoot, 'node_modules', '.package-lock.json'));
    if (tree === undefined) return compute(); // no npm record of the tree: nothing cheap to validate against
    const key = JSON.stringify([process.version, tree, identity(join(repoRoot, 'package.json')), [...roots].sort()]);
    let p = Object.hasOwn(this.data.packages, key) ? this.data.packages[key] : undefined;
    if (!isMap(p) || !Object.values(p).every((v) => typeof v === 'string')) {
      p = this.data.packages[key] = compute();
      this.dirty = true;
    }
    return p;
  }

  /** Save once the current burst of fingerprints is done; only what this process used is kept. */
  saveSoon(): void {
    if (!this.dirty || !this.file || this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (!this.dirty || !this.file) return;
      const scans = Object.fromEntries(Object.entries(this.data.scans).filter(([h]) => this.used.has(h)));
      try {
        ownFolderSync(dirname(this.file)); // `.pipe` as it was when opened (cache/dir.ts)
        writeFileAtomicSync(this.file, JSON.stringify({ ...this.data, scans }));
        this.dirty = false;
      } catch {
        // A cache: a full disk costs the next run a re-scan, nothing else.
      }
    });
  }
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function texts(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

const memo = new KindMemo();

/** Where the closure memo lives (`<workspace>/.pipe/kinds.json`); set when a workspace is opened. */
export function useKindMemo(file: string): void {
  memo.open(file);
}

function identity(file: string): string | undefined {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  return st ? `${st.size}:${st.mtimeNs}:${st.ino}` : undefined;
}

/** Files and folders whose edits can change a kind's key (watch mode watches them; engine files excluded: editing the engine needs a restart anyway). */
export function kindWatchPaths(kind: string): string[] {
  const compiled = join(kindRoot(kind), ...kind.split('/'));
  const src = join(repoRoot, 'stages', ...kind.split('/'));
  const folders = kindRoot(kind) === stagesRoot && existsSync(src) ? [src, compiled] : [compiled];
  const inside = (f: string, d: string): boolean => f === d || f.startsWith(`${d}${sep}`);
  const others = kindClosure(kind).files.filter((f) => !folders.some((d) => inside(f, d)) && !inside(f, engineDistDir));
  return [...folders, ...others];
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function findManifests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findManifests(p));
    else if (entry.name === 'manifest.js') out.push(p);
  }
  return out;
}
