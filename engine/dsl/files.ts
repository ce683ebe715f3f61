/**
 * Reading the files a pipeline is made of: the main YAML, its `include:` fragments (recursively, relative to the
 * including file), and params files. This is the only part of the DSL that touches the disk.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DiagnosticBag, displayPath } from './diagnostics.js';
import type { StageDecl } from './expand.js';
import { checkKeys } from './shape.js';
import { nodeTypeName, parseYaml, toPlain, type Loc, type YEntry, type YMap, type YNode } from './load.js';
import { FRAGMENT_KEYS, TOP_KEYS } from './schema.js';
import { globToRegExp, isGlob } from '../glob.js';

/** One file of the definition: the main file or a fragment. */
export interface Unit {
  file: string;
  root: YMap;
  main: boolean;
}

export function readText(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    return { error: `cannot read ${displayPath(file)}: ${why}` };
  }
}

/** Parse one YAML file into a mapping; problems go to the bag. */
export function readYamlMap(file: string, bag: DiagnosticBag, from?: Loc): YMap | undefined {
  const r = readText(file);
  if ('error' in r) {
    bag.error(r.error, from?.span);
    return undefined;
  }
  const parsed = parseYaml(file, r.text);
  for (const d of parsed.diagnostics) bag.add(d);
  if (!parsed.root) return undefined;
  if (parsed.root.t !== 'map') {
    bag.error(`${displayPath(file)} must hold a mapping (\`name:\`, \`params:\`, \`stages:\`...), not ${nodeTypeName(parsed.root)}`, parsed.root.loc.span);
    return undefined;
  }
  return parsed.root;
}

/**
 * The main file and its fragments, fragments first (depth-first, each after its own includes), main last: the
 * order in which params and vars are merged, so the including file wins.
 */
export function readUnits(mainFile: string, root: YMap, bag: DiagnosticBag, globDirs: Set<string> = new Set()): Unit[] {
  const units: Unit[] = [];
  const seen = new Set<string>([mainFile]);
  const visit = (file: string, r: YMap, main: boolean, stack: string[]) => {
    const inc = r.byKey.get('include');
    if (inc) {
      const items = inc.value.t === 'seq' ? inc.value.items : [inc.value];
      for (const it of items) {
        if (it.t !== 'scalar' || typeof it.value !== 'string' || it.value === '') {
          bag.error(`\`include\` lists fragment files (paths relative to ${displayPath(file)}), not ${nodeTypeName(it)}`, it.loc.span, { field: 'include' });
          continue;
        }
        let targets = [path.resolve(path.dirname(file), it.value)];
        if (/[*?[]/.test(it.value)) {
          targets = globFiles(path.dirname(file), it.value).filter((t) => t !== file);
          // A file added to (or removed from) the folder changes the pipeline: the folder is a source too.
          const literal = path.resolve(path.dirname(file), it.value.split('/').filter((s, i, a) => i < a.length - 1 && !/[*?[]/.test(s)).join('/') || '.');
          if (!/[*?[]/.test(path.dirname(it.value))) globDirs.add(literal);
          for (const t of targets) globDirs.add(path.dirname(t));
          if (targets.length === 0) bag.warning(`\`include: ${it.value}\` matches no file`, it.loc.span, { field: 'include' });
        }
        for (const target of targets) {
          if (stack.includes(target)) {
            bag.error(`include cycle: ${[...stack, target].map(displayPath).join(' → ')}`, it.loc.span, { field: 'include' });
            continue;
          }
          if (seen.has(target)) continue; // already included elsewhere (a diamond): read once
          seen.add(target);
          const fr = readYamlMap(target, bag, it.loc);
          if (!fr) continue;
          const hint: Record<string, string> = {};
          for (const k of Object.keys(TOP_KEYS)) if (!(k in FRAGMENT_KEYS)) hint[k] = ` (\`${k}:\` is only allowed in the main pipeline file)`;
          checkKeys(fr, FRAGMENT_KEYS, bag, `fragment ${displayPath(target)}`, { hint });
          visit(target, fr, false, [...stack, target]);
        }
      }
    }
    units.push({ file, root: r, main });
  };
  visit(mainFile, root, true, [mainFile]);
  return units;
}

/**
 * Files matching a relative glob (`paper/*.yaml`, `parts/?-[ab].yml`): `*`, `?` and `[...]` within one path
 * segment (no `**`), sorted, so the include order is stable.
 */
export function globFiles(base: string, pattern: string): string[] {
  let current = [path.resolve(base, pattern.startsWith('/') ? '/' : '.')];
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    const next: string[] = [];
    for (const dir of current) {
      if (!isGlob(seg)) {
        next.push(path.join(dir, seg));
        continue;
      }
      const re = globToRegExp(seg, { pathSegment: true });
      let entries: import('node:fs').Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        if (e.name.startsWith('.') && !seg.startsWith('.')) continue;
        if (!re.test(e.name)) continue;
        if (last ? e.isFile() || e.isSymbolicLink() : e.isDirectory() || e.isSymbolicLink()) next.push(path.join(dir, e.name));
      }
    }
    current = next;
  });
  return current.filter((f) => existsSync(f) && statSync(f).isFile());
}


/** Stage declarations of every unit; a name defined twice is a diagnostic naming both places. */
export function collectStageDecls(units: Unit[], bag: DiagnosticBag): StageDecl[] {
  const decls: StageDecl[] = [];
  const where = new Map<string, Loc>();
  // Main file first in the stage list (it is what the user reads first).
  const ordered = [...units.filter((u) => u.main), ...units.filter((u) => !u.main)];
  for (const u of ordered) {
    const st = u.root.byKey.get('stages');
    if (!st) continue;
    if (st.value.t === 'scalar' && st.value.value === null) continue;
    if (st.value.t !== 'map') {
      bag.error(`\`stages\` must be a mapping of stage names to stages, not ${nodeTypeName(st.value)}`, st.value.loc.span, { field: 'stages' });
      continue;
    }
    for (const e of st.value.entries) {
      const prev = where.get(e.key);
      if (prev) {
        const p = prev.span;
        bag.error(`stage \`${e.key}\` is defined twice: also at ${displayPath(p.file)}:${p.line}:${p.col} (stage names are unique across all included files)`, e.keyLoc.span, { stage: e.key });
        continue;
      }
      where.set(e.key, e.keyLoc);
      decls.push({ name: e.key, keyLoc: e.keyLoc, node: e.value });
    }
  }
  return decls;
}

/** A unit's mapping-valued section (`params:`, `vars:`), or undefined; a wrong type is reported. */
export function section(u: Unit, key: string, bag: DiagnosticBag): YEntry | undefined {
  const e = u.root.byKey.get(key);
  if (!e) return undefined;
  if (e.value.t === 'scalar' && e.value.value === null) return undefined;
  if (e.value.t !== 'map') {
    bag.error(`\`${key}\` must be a mapping, not ${nodeTypeName(e.value)}`, e.value.loc.span, { field: key });
    return undefined;
  }
  return e;
}

/** A params file (YAML or JSON) as a plain mapping. */
export function readParamsFile(file: string, bag: DiagnosticBag, from?: Loc): Record<string, unknown> | undefined {
  const m = readYamlMap(file, bag, from);
  return m ? (toPlain(m) as Record<string, unknown>) : undefined;
}

/** String-list field (`include`, `params_files`) values with their nodes. */
export function stringList(n: YNode): Array<{ value: string; node: YNode } | { bad: YNode }> {
  const items = n.t === 'seq' ? n.items : [n];
  return items.map((it) => (it.t === 'scalar' && typeof it.value === 'string' && it.value !== '' ? { value: it.value, node: it } : { bad: it }));
}
