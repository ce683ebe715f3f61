/**
 * Installed npm packages: which version of a package a module gets, and what that package depends on, for the
 * toolchain part of a `uses` stage's key (engine/fingerprint.ts says why). Node's lookup (`node_modules/<name>`,
 * walking up from the importing folder), answered from npm's hidden lock file `node_modules/.package-lock.json`
 * (one read: what npm itself trusts as the record of the installed tree) and from package.json files elsewhere.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';

interface PackageInfo {
  name: string;
  version: string;
  dir: string;
  deps: string[];
}

interface HiddenLock {
  root: string;
  packages: Record<string, { version?: string; dependencies?: object; optionalDependencies?: object }>;
}

let hidden: Map<string, HiddenLock | null> = new Map();
let fromFiles = new Map<string, PackageInfo | null>();
let declared = new Map<string, Set<string>>();

/** Forget what was read (watch mode, after an `npm install`). */
export function forgetInstalledPackages(): void {
  hidden = new Map();
  fromFiles = new Map();
  declared = new Map();
  trees = new Map();
  folders = new Map();
}

/** Package names a project's package.json declares (dependencies and optionalDependencies). */
export function declaredDependencies(projectRoot: string): Set<string> {
  let d = declared.get(projectRoot);
  if (d) return d;
  try {
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { dependencies?: object; optionalDependencies?: object };
    d = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]);
  } catch {
    d = new Set();
  }
  declared.set(projectRoot, d);
  return d;
}

/**
 * For each of `roots` (package name → a folder it is imported from): its installed version and a digest of its
 * installed dependency tree (every package it depends on, transitively — optional ones where installed — as
 * `name@version`), `"4.22.0 tree 1a2b3c4d5e6f"`; `"not installed"` when Node would not find it. One entry per package
 * the code names, not per package of the tree: the key stays small (one hash per stage key), and `pipe why` still
 * says which package's tree changed. `projectRoot` holds the hidden lock file.
 */
export function installedVersions(roots: ReadonlyMap<string, string>, projectRoot: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...roots.keys()].sort()) {
    const info = findPackage(name, roots.get(name)!, projectRoot);
    if (!info) {
      out[name] = 'not installed';
      continue;
    }
    const tree = treeOf(info, projectRoot);
    const list = [...tree].flatMap(([n, vs]) => [...vs].map((v) => `${n}@${v}`)).sort();
    out[name] = `${info.version} tree ${createHash('sha256').update(list.join('\n')).digest('hex').slice(0, 12)}`;
  }
  return out;
}

let trees = new Map<string, Map<string, Set<string>>>();

/** An installed package and everything it depends on (a missing dependency is an optional one not installed here). */
function treeOf(top: PackageInfo, projectRoot: string): Map<string, Set<string>> {
  const memo = trees.get(top.dir);
  if (memo) return memo;
  const versions = new Map<string, Set<string>>();
  const done = new Set<string>();
  const queue: PackageInfo[] = [top];
  while (queue.length > 0) {
    const info = queue.pop()!;
    if (done.has(info.dir)) continue;
    done.add(info.dir);
    (versions.get(info.name) ?? versions.set(info.name, new Set()).get(info.name)!).add(info.version);
    for (const d of info.deps) {
      const dep = findPackage(d, info.dir, projectRoot);
      if (dep) queue.push(dep);
    }
  }
  trees.set(top.dir, versions);
  return versions;
}

function findPackage(name: string, fromDir: string, projectRoot: string): PackageInfo | undefined {
  const lock = hiddenLock(projectRoot);
  for (let dir = fromDir; ; dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules' && ((lock && inside(join(dir, 'node_modules', 'x'), lock.root)) || hasNodeModules(dir))) {
      const pkgDir = join(dir, 'node_modules', ...name.split('/'));
      const info = lock && inside(pkgDir, lock.root) ? fromLock(lock, pkgDir) : fromPackageJson(pkgDir);
      if (info) return info;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

let folders = new Map<string, boolean>();

/** Does `dir` hold a node_modules folder? (One stat per folder, not one per package looked up from it.) */
function hasNodeModules(dir: string): boolean {
  let has = folders.get(dir);
  if (has === undefined) {
    has = statSync(join(dir, 'node_modules'), { throwIfNoEntry: false })?.isDirectory() ?? false;
    folders.set(dir, has);
  }
  return has;
}

function inside(p: string, root: string): boolean {
  return p.startsWith(`${root}${sep}node_modules${sep}`);
}

function fromLock(lock: HiddenLock, pkgDir: string): PackageInfo | undefined {
  const e = lock.packages[pkgDir.slice(lock.root.length + 1).split(sep).join('/')];
  if (!e) return undefined;
  return { name: nameOf(pkgDir), version: e.version ?? 'unknown', dir: pkgDir, deps: [...Object.keys(e.dependencies ?? {}), ...Object.keys(e.optionalDependencies ?? {})] };
}

function hiddenLock(projectRoot: string): HiddenLock | null {
  let h = hidden.get(projectRoot);
  if (h !== undefined) return h;
  try {
    const parsed = JSON.parse(readFileSync(join(projectRoot, 'node_modules', '.package-lock.json'), 'utf8')) as { packages?: HiddenLock['packages'] };
    h = parsed.packages ? { root: projectRoot, packages: parsed.packages } : null;
  } catch {
    h = null; // not npm, or never installed: package.json files answer
  }
  hidden.set(projectRoot, h);
  return h;
}

function fromPackageJson(pkgDir: string): PackageInfo | undefined {
  let info = fromFiles.get(pkgDir);
  if (info === undefined) {
    info = readPackage(pkgDir);
    fromFiles.set(pkgDir, info);
  }
  return info ?? undefined;
}

/** The install name: the folder below the last node_modules (`@scope/name` or `name`). */
function nameOf(pkgDir: string): string {
  const parts = pkgDir.split(sep);
  const i = parts.lastIndexOf('node_modules');
  return parts.slice(i + 1).join('/');
}

function readPackage(pkgDir: string): PackageInfo | null {
  const file = join(pkgDir, 'package.json');
  if (!statSync(file, { throwIfNoEntry: false })?.isFile()) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const p = JSON.parse(text) as { version?: string; dependencies?: object; optionalDependencies?: object };
    return { name: nameOf(pkgDir), version: p.version ?? 'unknown', dir: pkgDir, deps: [...Object.keys(p.dependencies ?? {}), ...Object.keys(p.optionalDependencies ?? {})] };
  } catch {
    return { name: nameOf(pkgDir), version: 'unreadable package.json', dir: pkgDir, deps: [] };
  }
}
