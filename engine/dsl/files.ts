/**
 * Reading the files a pipeline is made of: the main YAML, its `include:` fragments (recursively, relative to the
 * including file), and params files. This is the only part of the DSL that touches the disk.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { SourceSpan } from '../model.js';
import { DiagnosticBag, displayPath, registerSource } from './diagnostics.js';
import { DEFAULT_LIMITS, formatBytes, LIMIT_VARS, raiseHint, type Limits } from './limits.js';
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

export type ReadResult = { text: string } | { error: string; span?: SourceSpan };

/**
 * A pipeline, include or params file as text: a regular file only (a FIFO, device or directory is refused without
 * blocking on it), at most `maxBytes` (the file's size is checked first and the read stops one byte past the limit,
 * so `/dev/zero`-like files cannot fill memory), and valid UTF-8 (an invalid byte is an error at its line and
 * column, never silently replaced by U+FFFD).
 */
export function readText(file: string, maxBytes: number = DEFAULT_LIMITS.fileBytes): ReadResult {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return { error: cannotRead(file, e) };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      return { error: `cannot read ${displayPath(file)}: it is ${fileKind(st)}; pipeline, include and params files must be regular files` };
    }
    if (st.size > maxBytes) return { error: tooBig(file, `is ${formatBytes(st.size)}, over`, maxBytes) };
    const bytes = readAtMost(fd, maxBytes + 1, st.size);
    if (bytes.length > maxBytes) return { error: tooBig(file, 'grew while it was read, past', maxBytes) };
    return decodeUtf8(file, bytes);
  } catch (e) {
    return { error: cannotRead(file, e) };
  } finally {
    closeSync(fd);
  }
}

function cannotRead(file: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
  return `cannot read ${displayPath(file)}: ${why}`;
}

function tooBig(file: string, what: string, maxBytes: number): string {
  return (
    `${displayPath(file)} ${what} the limit of ${formatBytes(maxBytes)} for one pipeline, include or params file ` +
    `(${raiseHint('fileBytes')}, e.g. ${LIMIT_VARS.fileBytes}=256M)`
  );
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Up to `limit` bytes of an open file; `sizeHint` (its stat size) sizes the first read. */
function readAtMost(fd: number, limit: number, sizeHint: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  let want = Math.min(limit, Math.max(sizeHint + 1, 64 * 1024));
  while (total < limit) {
    const buf = Buffer.allocUnsafe(Math.min(want, limit - total));
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    chunks.push(n === buf.length ? buf : buf.subarray(0, n));
    total += n;
    want = Math.min(want * 2, 16 * 1024 * 1024);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(file: string, bytes: Buffer): ReadResult {
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    const at = firstInvalidUtf8(bytes);
    const lineStart = bytes.lastIndexOf(0x0a, at - 1) + 1;
    let line = 1;
    for (let i = bytes.indexOf(0x0a); i >= 0 && i < at; i = bytes.indexOf(0x0a, i + 1)) line++;
    const col = utf8.decode(bytes.subarray(lineStart, at)).length + 1;
    // The text with replacement characters, only so the diagnostic can show the line.
    registerSource(file, bytes.toString('utf8'));
    const byte = bytes[at]!.toString(16).padStart(2, '0');
    return {
      error:
        `not valid UTF-8: byte 0x${byte} at byte offset ${at} does not belong to a UTF-8 character; pipeline, include and ` +
        'params files must be UTF-8 text (pipe neither guesses encodings nor replaces bytes)',
      span: { file, line, col, endLine: line, endCol: col + 1 },
    };
  }
}

/** Offset of the first byte that is not part of a well-formed UTF-8 sequence (RFC 3629), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0 || i + n >= b.length) return i; // not a lead byte, or a sequence cut off by the end of the file
    const c1 = b[i + 1]!;
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are excluded by the second byte's range.
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

/** One file of the definition: its text and parse, or why it could not be read. */
export type ParsedFile = { error: string; span?: SourceSpan } | { text: string; parsed: ReturnType<typeof parseYaml> };

/**
 * Files read and parsed by the loads of one command, by path and bounds. `pipe exp run` loads the pipeline once per
 * variant, each over the same files: handing every load the same map reads and parses each file once. A load never
 * changes a parsed tree (it only memoises on it: interpolate.ts, expand.ts, experiments.ts), so loads can share it.
 */
export type ParsedFiles = Map<string, ParsedFile>;

/** How a load reads a file of the definition: within its bounds, and once per command when given a ParsedFiles. */
export type FileReader = (file: string) => ParsedFile;

export function fileReader(limits: Limits, memo?: ParsedFiles): FileReader {
  return (file) => {
    const key = `${file}\0${limits.fileBytes}\0${limits.yamlDepth}`;
    const known = memo?.get(key);
    if (known) return known;
    const r = readText(file, limits.fileBytes);
    const f: ParsedFile = 'error' in r ? r : { text: r.text, parsed: parseYaml(file, r.text, { maxDepth: limits.yamlDepth }) };
    memo?.set(key, f);
    return f;
  };
}

/** Parse one YAML file into a mapping; problems go to the bag. */
export function readYamlMap(file: string, bag: DiagnosticBag, read: FileReader, from?: Loc, flag?: string): YMap | undefined {
  const f = read(file);
  if ('error' in f) {
    // Named by where it came from: the `include:`/`params_files:` entry, or the command-line flag.
    bag.error(flag && !f.span ? `\`${flag}\`: ${f.error}` : f.error, f.span ?? from?.span);
    return undefined;
  }
  const { root, diagnostics } = f.parsed;
  for (const d of diagnostics) bag.add(d);
  if (!root) return undefined;
  if (root.t !== 'map') {
    bag.error(`${displayPath(file)} must hold a mapping (\`name:\`, \`params:\`, \`stages:\`...), not ${nodeTypeName(root)}`, root.loc.span);
    return undefined;
  }
  return root;
}

/**
 * The main file and its fragments, fragments first (depth-first, each after its own includes), main last: the
 * order in which params and vars are merged, so the including file wins.
 */
export function readUnits(mainFile: string, root: YMap, bag: DiagnosticBag, read: FileReader, globDirs: Set<string> = new Set()): Unit[] {
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
          const fr = readYamlMap(target, bag, read, it.loc);
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
export function readParamsFile(file: string, bag: DiagnosticBag, read: FileReader, from?: Loc, flag?: string): Record<string, unknown> | undefined {
  const m = readYamlMap(file, bag, read, from, flag);
  return m ? (toPlain(m) as Record<string, unknown>) : undefined;
}

/** String-list field (`include`, `params_files`) values with their nodes. */
export function stringList(n: YNode): Array<{ value: string; node: YNode } | { bad: YNode }> {
  const items = n.t === 'seq' ? n.items : [n];
  return items.map((it) => (it.t === 'scalar' && typeof it.value === 'string' && it.value !== '' ? { value: it.value, node: it } : { bad: it }));
}
