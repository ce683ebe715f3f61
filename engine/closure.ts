/**
 * What one compiled ES module refers to, read from its text: the modules it imports (static and literal dynamic
 * imports, `export … from`), the files it locates through `new URL('./x.js', import.meta.url)` (worker entry
 * points, data files beside the module), `require('pkg')` calls, and the npm packages it names. The implementation
 * hash of a kind is the content of the closure of these references (engine/kinds.ts); this file is pure (text in,
 * references out).
 */
import { isBuiltin } from 'node:module';
import { initSync, parse } from 'es-module-lexer';

export interface ModuleRefs {
  /** Relative specifiers of imported modules (`./a.js`, `../lib/b.js`), resolved against the module's folder. */
  imports: string[];
  /** Relative paths located with `new URL(…, import.meta.url)`; a file that exists is part of the closure. */
  located: string[];
  /** npm package names the module imports, requires or names (`sharp`, `@tensorflow/tfjs-node`). */
  packages: string[];
}

let ready = false;

/**
 * Scan a module's source. `dependencies` are the package names the project declares: a string literal naming one
 * counts as a reference even when the import takes a variable (`const load = (p) => import(p); load('x')`).
 */
export function scanModule(source: string, dependencies: ReadonlySet<string>): ModuleRefs {
  if (!ready) {
    initSync();
    ready = true;
  }
  const imports = new Set<string>();
  const packages = new Set<string>();
  const add = (spec: string): void => {
    if (spec.startsWith('./') || spec.startsWith('../')) imports.add(spec);
    else {
      const pkg = packageName(spec);
      if (pkg) packages.add(pkg);
    }
  };
  const [specs] = parse(source);
  for (const s of specs) if (s.n !== undefined) add(s.n);
  for (const m of source.matchAll(/\brequire(?:\.resolve)?\(\s*(['"])([^'"]+)\1/g)) add(m[2]!);
  for (const m of source.matchAll(/(['"`])(@?[a-z0-9][\w.-]*(?:\/[\w.-]+)?)(?:\/[^'"`\s]*)?\1/gi)) {
    if (dependencies.has(m[2]!)) packages.add(m[2]!);
  }
  const located = new Set<string>();
  for (const m of source.matchAll(/\bnew URL\(([^()]*?),\s*import\.meta\.url\s*\)/g)) {
    for (const lit of m[1]!.matchAll(/(['"`])(\.\.?\/[^'"`$]+)\1/g)) located.add(lit[2]!);
  }
  return { imports: [...imports], located: [...located], packages: [...packages] };
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; builtins, `node:`, URLs and absolute paths → undefined. */
export function packageName(spec: string): string | undefined {
  if (spec.startsWith('node:') || spec.startsWith('/') || spec.startsWith('.') || /^[a-z][a-z0-9+.-]*:/i.test(spec)) return undefined;
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (!name || isBuiltin(name)) return undefined;
  return name;
}
