/**
 * `with:` of a `uses:` stage checked against its kind's manifest: unknown fields, missing required ones, types and
 * enum values; defaults applied; `path`/`path[]` fields with a role become the stage's deps and outs.
 */
import type { FieldSpec, StageManifest } from '../stage-api.js';
import { DiagnosticBag, didYouMean } from './diagnostics.js';
import type { StageDraft } from './expand.js';
import { addPath, type PathPlace } from './stage-fields.js';
import { typeName, type Loc } from './load.js';
import { isPlainMap } from './params.js';

export function applyWith(s: StageDraft, manifest: StageManifest, place: PathPlace, bag: DiagnosticBag): void {
  const given = s.with ?? {};
  const result: Record<string, unknown> = {};
  const fallbackLoc = (s.withLoc ?? s.usesLoc)!;
  const dedup = (loc: Loc, message: string) => `${s.declaredAs}|${loc.src.file}|${loc.start}|${message}`;
  const error = (message: string, loc: Loc, field: string) =>
    bag.error(message, loc.span, { stage: s.name, field, dedup: dedup(loc, message) });

  for (const key of Object.keys(given)) {
    if (Object.prototype.hasOwnProperty.call(manifest.with, key)) continue;
    const loc = s.withFields.get(key)?.keyLoc ?? fallbackLoc;
    const known = Object.keys(manifest.with);
    error(
      `\`${manifest.kind}\` has no field \`${key}\`${didYouMean(key, known)}; its fields: ${known.map((k) => `\`${k}\``).join(', ') || '(none)'}`,
      loc,
      `with.${key}`,
    );
  }

  for (const [key, spec] of Object.entries(manifest.with)) {
    const field = `with.${key}`;
    let v = given[key];
    const loc = s.withFields.get(key)?.valueLoc ?? fallbackLoc;
    if (v === undefined && s.withFields.has(key)) continue; // interpolation failed: already reported
    if (v === undefined || v === null) {
      if (spec.default !== undefined) v = structuredClone(spec.default);
      else {
        if (spec.required) {
          error(`\`${manifest.kind}\` needs \`with.${key}\` (${spec.type}): ${spec.description}`, s.withLoc ?? fallbackLoc, field);
        }
        continue;
      }
    }
    const checked = checkField(key, spec, v);
    if (typeof checked === 'string') {
      error(checked, loc, field);
      continue;
    }
    let value = checked.value;
    if (spec.type === 'path' || spec.type === 'path[]') {
      const paths = spec.type === 'path' ? [value as string] : (value as string[]);
      const normalised: string[] = [];
      for (const p of paths) {
        const role = spec.role === 'out' ? 'out' : 'dep';
        const sink = { error: (m: string, l: Loc, f: string) => error(m, l, f) };
        if (spec.role) {
          const n = addPath(s, role, p, loc, field, sink, place);
          if (n !== undefined) normalised.push(n);
        } else {
          // A path the kind uses without a role (e.g. a label): normalised, not a dep or out.
          const scratch = { deps: [], outs: [] };
          const n = addPath(scratch, 'dep', p, loc, field, sink, place);
          if (n !== undefined) normalised.push(n);
        }
      }
      value = spec.type === 'path' ? normalised[0] : normalised;
      if (value === undefined) continue;
    }
    result[key] = value;
  }
  s.with = result;
}

/** Type-check one value; a message when it does not fit. Numbers are accepted (as text) for string fields. */
function checkField(key: string, spec: FieldSpec, v: unknown): { value: unknown } | string {
  const bad = (expected: string) => `\`${key}\` must be ${expected}, not ${typeName(v)}${typeof v === 'string' ? ` \`${v}\`` : ''}`;
  switch (spec.type) {
    case 'string':
      if (typeof v === 'string') return { value: v };
      if (typeof v === 'number') return { value: String(v) };
      return bad('a string');
    case 'path':
      return typeof v === 'string' && v !== '' ? { value: v } : bad('a path (a string)');
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? { value: v } : bad('a number');
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v) ? { value: v } : bad('a whole number');
    case 'boolean':
      return typeof v === 'boolean' ? { value: v } : bad('true or false');
    case 'enum': {
      const values = spec.values ?? [];
      if (typeof v === 'string' && values.includes(v)) return { value: v };
      return `\`${key}\` must be one of ${values.map((x) => `\`${x}\``).join(', ')}, not \`${String(v)}\`${didYouMean(String(v), values)}`;
    }
    case 'path[]':
    case 'string[]':
      if (typeof v === 'string' && spec.type === 'path[]') return { value: [v] };
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return { value: v };
      return bad(spec.type === 'path[]' ? 'a list of paths' : 'a list of strings');
    case 'number[]':
      if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return { value: v };
      return bad('a list of numbers');
    case 'object':
      return isPlainMap(v) ? { value: v } : bad('a mapping');
    case 'any':
      return { value: v };
  }
}
