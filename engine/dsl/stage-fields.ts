/** Stage fields with their own small grammars: paths (deps, outs, metrics), resources, SLURM options. */
import path from 'node:path';
import type { DepSpec, OutSpec, SlurmOptions, SourceSpan } from '../model.js';
import type { ExpandContext, StageDraft } from './expand.js';
import { interpolateNode, type Scope, type Sink } from './interpolate.js';
import { nodeTypeName, typeName, type Loc, type YEntry, type YNode } from './load.js';
import { isLinkNow, normalisePath } from './paths.js';
import { parseMem, parseTime } from './units.js';

/** deps / outs / metrics: a path, `{path, cache, metric}` (outs, metrics), or a list of those. */
export function pathField(e: YEntry | undefined, field: 'deps' | 'outs' | 'metrics', s: StageDraft, scope: Scope, sink: Sink, ctx: ExpandContext): void {
  if (!e) return;
  if (e.value.t === 'scalar' && e.value.value === null) return;
  const items = e.value.t === 'seq' ? e.value.items : [e.value];
  items.forEach((it, i) => {
    const f = e.value.t === 'seq' ? indexedField(field, i) : field;
    let cache = true;
    let metric = field === 'metrics';
    let pathNode: YNode = it;
    if (it.t === 'map') {
      if (field === 'deps') {
        sink.error('a dep is a path string (a trailing `/` for a directory), not a mapping', it.loc, f);
        return;
      }
      const p = it.byKey.get('path');
      if (!p) {
        sink.error(`an entry of \`${field}\` written as a mapping needs \`path:\``, it.loc, f);
        return;
      }
      pathNode = p.value;
      const c = it.byKey.get('cache');
      if (c) {
        const v = interpolateNode(c.value, scope, sink, `${f}.cache`);
        if (typeof v === 'boolean') cache = v;
        else if (v !== undefined) sink.error(`\`cache\` must be true or false, not ${typeName(v)}`, c.value.loc, `${f}.cache`);
      }
      const mt = it.byKey.get('metric');
      if (mt) {
        const v = interpolateNode(mt.value, scope, sink, `${f}.metric`);
        if (typeof v === 'boolean') metric = v;
        else if (v !== undefined) sink.error(`\`metric\` must be true or false, not ${typeName(v)}`, mt.value.loc, `${f}.metric`);
      }
    }
    if (pathNode.t !== 'scalar') {
      // `outs: [[a, b]]`, `{path: [a]}`: a list written here is not a path (only a `${...}` may give several).
      sink.error(`\`${field}\` entries are path strings, not ${nodeTypeName(pathNode)}`, pathNode.loc, f);
      return;
    }
    const v = interpolateNode(pathNode, scope, sink, f);
    if (v === undefined) return;
    // `${vars.files}` may give a list of paths.
    const values = Array.isArray(v) ? v : [v];
    for (let raw of values) {
      if (typeof raw === 'number') raw = String(raw); // a file named `2024`
      if (typeof raw !== 'string') {
        sink.error(`\`${field}\` entries are path strings, not ${typeName(raw)}`, pathNode.loc, f);
        continue;
      }
      addPath(s, field === 'deps' ? 'dep' : 'out', raw, pathNode.loc, f, sink, ctx, { cache: cache && s.cacheOuts, metric });
    }
  });
}

/** `deps[3]`: built once per field and index, not once per expanded stage. */
const indexedNames = new Map<string, string[]>();
function indexedField(field: string, i: number): string {
  let names = indexedNames.get(field);
  if (!names) indexedNames.set(field, (names = []));
  return (names[i] ??= `${field}[${i}]`);
}

/**
 * The YAML field each dep/out was written in (`deps[1]`, `with.model`), for diagnostics found later. Keyed by the
 * span object, which every expansion of one template node shares: one entry per written path, not per stage.
 */
export type FieldsBySpan = Map<SourceSpan, string>;

/** Where paths are added: the workspace, the field of each written path, and how the disk is asked about links. */
export interface PathPlace {
  workdir: string;
  fields: FieldsBySpan;
  /**
   * Whether a path is a symbolic link now. The loader records each answer, and a validated pipeline kept in the
   * cache is used only while every answer still holds (engine/commands/pipeline-cache.ts). Default: lstat.
   */
  isLink?: (absPath: string) => boolean;
}

/** Normalise one path and add it as a dep or an out; outs must stay inside the workspace. */
export function addPath(
  s: { deps: DepSpec[]; outs: OutSpec[] },
  role: 'dep' | 'out',
  raw: string,
  loc: Loc,
  field: string,
  sink: Pick<Sink, 'error'>,
  place: PathPlace,
  out: { cache: boolean; metric: boolean } = { cache: true, metric: false },
): string | undefined {
  const { workdir, fields } = place;
  const n = normalisePath(raw, workdir);
  if (!n.ok) {
    sink.error(`\`${raw}\` is not a usable path: it is ${n.reason}`, loc, field);
    return undefined;
  }
  const link = raw.includes('/..') ? linkBeforeDotDot(raw, workdir, place.isLink ?? isLinkNow) : undefined;
  if (link !== undefined) {
    sink.error(
      `\`${raw}\`: \`${link}\` is a symbolic link, so \`${link}/..\` is the folder above its target, not the one \`${link}\` is in: ` +
        `the command would ${role === 'out' ? 'write' : 'read'} another file than the \`${n.path}\` pipe ${role === 'out' ? 'records' : 'hashes'}. Write the path without \`..\` after a link`,
      loc,
      field,
    );
    return undefined;
  }
  if (role === 'out') {
    if (n.outside) {
      sink.error(
        `out \`${raw}\` is outside the workspace (${workdir}); outs must be workspace-relative paths (no absolute paths, no \`..\` escaping it)`,
        loc,
        field,
      );
      return undefined;
    }
    // `metrics:` may name an out the stage already declares (typically one of its kind's `with:` outs): that
    // marks the out as a metrics file instead of declaring it twice.
    const same = (out.metric || s.outs.some((o) => o.metric)) && s.outs.find((o) => o.path === n.path && (o.metric || out.metric));
    if (same) {
      same.metric = true;
      same.cache = same.cache && out.cache;
      return n.path;
    }
    const span = loc.span;
    if (!fields.has(span)) fields.set(span, field);
    s.outs.push({ path: n.path, cache: out.cache, metric: out.metric, span });
  } else {
    const span = loc.span;
    if (!fields.has(span)) fields.set(span, field);
    s.deps.push({ path: n.path, span });
  }
  return n.path;
}

/**
 * The first part of `raw` followed by `..` that is a symbolic link on disk (`link` of `link/../in.txt`), as written;
 * undefined when there is none. A path is normalised by its spelling (`link/../in.txt` is `in.txt`), but the
 * command's system call goes through the link and up from its target: the file pipe hashes or records would not be
 * the one the command reads or writes. A leading `..` climbs from the workspace itself, which is not checked (a
 * workspace reached through a link stays usable).
 */
function linkBeforeDotDot(raw: string, workdir: string, isLink: (absPath: string) => boolean): string | undefined {
  const base = raw.startsWith('/') ? '/' : workdir;
  const kept: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..' || kept.length === 0 || kept[kept.length - 1] === '..') kept.push(part);
    else if (isLink(path.posix.resolve(base, ...kept))) return `${base === '/' ? '/' : ''}${kept.join('/')}`;
    else kept.pop();
  }
  return undefined;
}

/** `resources:` cpus, mem (`8G`), gpus, time (`01:30:00`, `90m`). */
export function resourcesField(e: YEntry, s: StageDraft, scope: Scope, sink: Sink): void {
  if (e.value.t !== 'map') {
    sink.error(`\`resources\` must be a mapping like \`{cpus: 4, mem: 8G, gpus: 1, time: 01:00:00}\`, not ${nodeTypeName(e.value)}`, e.value.loc, 'resources');
    return;
  }
  for (const r of e.value.entries) {
    const field = `resources.${r.key}`;
    const v = interpolateNode(r.value, scope, sink, field);
    if (v === undefined || v === null) continue;
    const loc = r.value.loc;
    switch (r.key) {
      case 'cpus':
        if (typeof v === 'number' && v > 0) s.resources.cpus = v;
        else sink.error(`\`cpus\` must be a number > 0, not \`${String(v)}\``, loc, field);
        break;
      case 'gpus':
        if (typeof v === 'number' && Number.isInteger(v) && v >= 0) s.resources.gpus = v;
        else sink.error(`\`gpus\` must be a whole number ≥ 0, not \`${String(v)}\``, loc, field);
        break;
      case 'mem': {
        const b = parseMem(v);
        if (b === undefined) sink.error(`\`mem: ${String(v)}\` is not a memory size: write bytes or a number with K, M, G or T (e.g. \`512M\`, \`8G\`)`, loc, field);
        else s.resources.memBytes = b;
        break;
      }
      case 'time': {
        const t = parseTime(v);
        if (t === undefined) sink.error(`\`time: ${String(v)}\` is not a duration: write seconds, \`90m\`, \`1h30m\` or \`01:30:00\``, loc, field);
        else s.resources.timeSec = t;
        break;
      }
    }
  }
}

/** `slurm:` options (stage- or settings-level). Undefined when invalid (reported). */
export function slurmOptions(n: YNode, scope: Scope, sink: Sink, field: string): SlurmOptions | undefined {
  if (n.t !== 'map') {
    sink.error(`\`slurm\` must be a mapping (partition, account, qos, constraint, gpu_flag, extra), not ${nodeTypeName(n)}`, n.loc, field);
    return undefined;
  }
  const o: SlurmOptions = {};
  for (const e of n.entries) {
    const f = `${field}.${e.key}`;
    const v = interpolateNode(e.value, scope, sink, f);
    if (v === undefined || v === null) continue;
    switch (e.key) {
      case 'partition':
      case 'account':
      case 'qos':
      case 'constraint':
        if (typeof v === 'string' || typeof v === 'number') o[e.key] = String(v);
        else sink.error(`\`${e.key}\` must be a string, not ${typeName(v)}`, e.value.loc, f);
        break;
      case 'gpu_flag':
        if (v === 'gres' || v === 'gpus') o.gpuFlag = v;
        else sink.error(`\`gpu_flag\` must be \`gres\` or \`gpus\`, not \`${String(v)}\``, e.value.loc, f);
        break;
      case 'extra':
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) o.extra = v as string[];
        else if (typeof v === 'string') o.extra = [v];
        else sink.error('`extra` must be a list of sbatch flags (strings)', e.value.loc, f);
        break;
    }
  }
  return o;
}
