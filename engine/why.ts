/**
 * Why a stage must run: the field-by-field difference between its current key fields and an earlier run's.
 * Pure: the same KeyFields the cache key is computed from, so the explanation can never disagree with the cache.
 */
import type { KeyFields } from './fingerprint.js';
import type { Reason } from './events.js';

export type ChangeField = 'schema' | 'cmd' | 'uses' | 'implementation' | 'toolchain' | 'with' | 'param' | 'dep' | 'env' | 'outs';

export interface Change {
  field: ChangeField;
  /** Param name, dep path, env var, `with` field, out path. */
  name?: string;
  before?: unknown;
  after?: unknown;
  /** Plain words: "param lr: 0.001 → 0.01". */
  message: string;
}

/** A change as a plan reason: `param-changed` and its words. */
export function changeReason(c: Change): Reason {
  return { code: `${c.field}-changed`, text: c.message };
}

/** Differences from `before` (an earlier run's fields) to `now`, in a stable order. */
export function diffFields(now: KeyFields, before: Partial<KeyFields> | Record<string, unknown>): Change[] {
  const b = recordedFields(before);
  const changes: Change[] = [];
  if (b.schema !== now.schema) {
    changes.push({ field: 'schema', before: b.schema, after: now.schema, message: "pipe's cache key format changed" });
  }
  if (now.uses !== b.uses) {
    changes.push({
      field: 'uses',
      before: b.uses,
      after: now.uses,
      message: b.uses === undefined ? `now uses ${now.uses}` : now.uses === undefined ? `no longer uses ${b.uses}` : `kind: ${b.uses} → ${now.uses}`,
    });
  } else if (now.uses !== undefined && !same(now.implementation, b.implementation)) {
    const files = changedFiles(b.implementation, now.implementation);
    changes.push({
      field: 'implementation',
      before: b.implementation,
      after: now.implementation,
      message: `implementation of ${now.uses} changed${files.length > 0 ? `: ${listed(files)}` : ''}`,
    });
  }
  if (now.uses !== undefined && now.uses === b.uses && b.toolchain !== undefined && !same(now.toolchain, b.toolchain)) {
    for (const [what, x, y] of toolchainPairs(b.toolchain, now.toolchain)) {
      if (x !== y) changes.push({ field: 'toolchain', name: what, before: x, after: y, message: `${what}: ${show(x)} → ${show(y)}` });
    }
  }
  // A switch between cmd and uses (or to another kind) says it all; listing every field would be noise.
  const switched = now.uses !== b.uses;
  if (!switched && now.cmd !== b.cmd && !(b.cmd !== undefined && now.cmd !== undefined && impliedByParams(b.cmd, now.cmd, b.params ?? {}, now.params))) {
    changes.push({
      field: 'cmd',
      before: b.cmd,
      after: now.cmd,
      message: b.cmd === undefined || now.cmd === undefined ? 'command changed' : `command changed: ${clip(b.cmd)} → ${clip(now.cmd)}`,
    });
  }
  for (const [name, x, y] of switched ? [] : pairs(b.with ?? {}, now.with ?? {})) {
    if (!same(x, y)) changes.push({ field: 'with', name, before: x, after: y, message: `with.${name}: ${show(x)} → ${show(y)}` });
  }
  for (const [name, x, y] of pairs(b.params ?? {}, now.params)) {
    if (same(x, y)) continue;
    const message =
      x === undefined ? `param ${name} now used (= ${show(y)})` : y === undefined ? `param ${name} no longer used` : `param ${name}: ${show(x)} → ${show(y)}`;
    changes.push({ field: 'param', name, before: x, after: y, message });
  }
  for (const [name, x, y] of pairs(b.deps ?? {}, now.deps)) {
    if (x === y) continue;
    let message: string;
    if (x === undefined) message = `dep ${name} added`;
    else if (y === undefined) message = `dep ${name} removed`;
    else if (y === null) message = `dep ${name} is missing`;
    else if (x === null) message = `dep ${name} appeared`;
    else message = `dep ${name} changed (hash ${short(String(x))}→${short(String(y))})`;
    changes.push({ field: 'dep', name, before: x, after: y, message });
  }
  for (const [name, x, y] of pairs(b.env ?? {}, now.env)) {
    if (x === y) continue;
    const message = x === undefined ? `env ${name} added` : y === undefined ? `env ${name} removed` : `env ${name} changed: ${show(x)} → ${show(y)}`;
    changes.push({ field: 'env', name, before: x, after: y, message });
  }
  const outsBefore = new Map((b.outs ?? []).map((o) => [o.path, o.cache]));
  const outsNow = new Map(now.outs.map((o) => [o.path, o.cache]));
  for (const [path, cache] of outsNow) {
    if (!outsBefore.has(path)) changes.push({ field: 'outs', name: path, after: cache, message: `out ${path} added` });
    else if (outsBefore.get(path) !== cache) {
      changes.push({ field: 'outs', name: path, before: outsBefore.get(path), after: cache, message: `out ${path}: cache ${outsBefore.get(path)} → ${cache}` });
    }
  }
  for (const path of outsBefore.keys()) {
    if (!outsNow.has(path)) changes.push({ field: 'outs', name: path, before: outsBefore.get(path), message: `out ${path} removed` });
  }
  return changes;
}

/**
 * An earlier run's fields as `diffFields` reads them: each field only when it has the type pipe records (a run
 * record is a file any stage's command can write), else left out, so `cmd: null` or `outs: 5` is a change to say,
 * not a crash of `pipe why`.
 */
export function recordedFields(before: unknown): Partial<KeyFields> {
  const f = (isMap(before) ? before : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const map = <T>(v: unknown) => (isMap(v) ? (v as T) : undefined);
  const outs = Array.isArray(f.outs) ? f.outs.filter((o): o is KeyFields['outs'][number] => isMap(o) && typeof o.path === 'string') : undefined;
  return {
    ...(typeof f.schema === 'number' ? { schema: f.schema } : {}),
    ...(text(f.cmd) !== undefined ? { cmd: text(f.cmd) } : {}),
    ...(text(f.uses) !== undefined ? { uses: text(f.uses) } : {}),
    ...(map(f.implementation) ? { implementation: map<KeyFields['implementation']>(f.implementation) } : {}),
    ...(map(f.toolchain) ? { toolchain: map<KeyFields['toolchain']>(f.toolchain) } : {}),
    ...(map(f.with) ? { with: map<KeyFields['with']>(f.with) } : {}),
    ...(map(f.params) ? { params: map<KeyFields['params']>(f.params) } : {}),
    ...(map(f.deps) ? { deps: map<KeyFields['deps']>(f.deps) } : {}),
    ...(map(f.env) ? { env: map<KeyFields['env']>(f.env) } : {}),
    ...(outs ? { outs } : {}),
  };
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The nearest earlier run: the one whose fields differ least from `now` (ties: the newest, i.e. the first in the
 * newest-first list). This is the run a user most likely compares against when asking "what did I change?".
 */
export function nearest<R extends { fields: Record<string, unknown> }>(
  now: KeyFields,
  history: readonly R[],
): { record: R; changes: Change[] } | undefined {
  let best: { record: R; changes: Change[] } | undefined;
  for (const record of history) {
    const changes = diffFields(now, record.fields);
    if (!best || changes.length < best.changes.length) best = { record, changes };
  }
  return best;
}

/**
 * True when the command differs only because interpolated params changed (old values replaced by the new ones give
 * the new command): then "param lr: 0.1 → 0.2" says it all and "command changed" would be noise.
 */
function impliedByParams(before: string, now: string, pb: Record<string, unknown>, pn: Record<string, unknown>): boolean {
  let cmd = before;
  let any = false;
  for (const [, x, y] of pairs(pb, pn)) {
    if (same(x, y) || x === undefined || y === undefined || typeof x === 'object' || typeof y === 'object') continue;
    if (!cmd.includes(String(x))) continue;
    cmd = cmd.split(String(x)).join(String(y));
    any = true;
  }
  return any && cmd === now;
}

/** Files added, removed or changed between two implementation maps (path → hash). */
function changedFiles(before: unknown, now: Record<string, string | null> | undefined): string[] {
  if (typeof before !== 'object' || before === null || now === undefined) return [];
  return pairs(before as Record<string, unknown>, now)
    .filter(([, x, y]) => x !== y)
    .map(([p, x, y]) => (x === undefined ? `${p} added` : y === undefined ? `${p} removed` : p));
}

function toolchainPairs(b: KeyFields['toolchain'], n: KeyFields['toolchain']): Array<[string, unknown, unknown]> {
  const out: Array<[string, unknown, unknown]> = [
    ['node', b?.node, n?.node],
    ['platform', b?.platform, n?.platform],
  ];
  for (const [name, x, y] of pairs(b?.packages ?? {}, n?.packages ?? {})) out.push([`package ${name}`, x, y]);
  return out;
}

/** Names in a one-line reason: all of them up to three, else the first two and how many more. */
export function fewNamed(items: readonly string[]): string {
  return items.length <= 3 ? items.join(', ') : `${items.slice(0, 2).join(', ')} and ${items.length - 2} more`;
}

function listed(items: string[], n = 3): string {
  return items.length <= n ? items.join(', ') : `${items.slice(0, n).join(', ')} and ${items.length - n} more`;
}

function pairs(a: Record<string, unknown>, b: Record<string, unknown>): Array<[string, unknown, unknown]> {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  // Own keys only: a record read back from JSON has Object.prototype, and `a.constructor` is not a param.
  const own = (o: Record<string, unknown>, n: string) => (Object.prototype.hasOwnProperty.call(o, n) ? o[n] : undefined);
  return names.map((n) => [n, own(a, n), own(b, n)]);
}

function same(x: unknown, y: unknown): boolean {
  return x === y || JSON.stringify(x) === JSON.stringify(y);
}

function show(v: unknown): string {
  if (v === undefined) return '(unset)';
  return clip(typeof v === 'string' ? v : JSON.stringify(v));
}

function clip(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function short(h: string): string {
  return h.slice(0, 8);
}
