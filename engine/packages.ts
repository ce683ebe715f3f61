/**
 * Installed npm packages: which version of a package a module gets, and what that package depends on, for the
 * toolchain part of a `uses` stage's key (engine/fingerprint.ts says why). Node's lookup (`node_modules/<name>`,
 * walking up from the importing folder), answered from npm's hidden lock file `node_modules/.package-lock.json`
 * (one read: what npm itself trusts as the record of the installed tree) and from package.json files elsewhere.
 */
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
 * The installed versions of `roots` (package name → a folder it is imported from) and of everything they depend on
 * (optional dependencies where installed), by name, sorted; several versions of one name are space-separated. A
 * root that is not installed is named `not installed`. `projectRoot` holds the hidden lock file.
 */
export function installedVersions(roots: ReadonlyMap<string, string>, projectRoot: string): Record<string, string> {
  const versions = new Map<string, Set<string>>();
  for (const [name, from] of roots) {
    const info = findPackage(name, from, projectRoot);
    if (!info) versions.set(name, new Set(['not installed']));
    else for (const [n, v] of treeOf(info, projectRoot)) for (const x of v) (versions.get(n) ?? versions.set(n, new Set()).get(n)!).add(x);
  }
  const out: Record<string, string> = {};
  for (const name of [...versions.keys()].sort()) out[name] = [...versions.get(name)!].sort().join(' ');
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
    if (basename(dir) !== 'node_modules') {
      const pkgDir = join(dir, 'node_modules', ...name.split('/'));
      const info = lock && inside(pkgDir, lock.root) ? fromLock(lock, pkgDir) : fromPackageJson(pkgDir);
      if (info) return info;
    }
    if (dirname(dir) === dir) return undefined;
  }
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
