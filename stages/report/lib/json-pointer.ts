import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';

/** RFC 6901: the value at `pointer` in `doc`; the error says which token was missing. */
export function resolvePointer(doc: unknown, pointer: string): Result<unknown, string> {
  if (pointer === '') return ok(doc);
  const tokens = pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  let cur: unknown = doc;
  let at = '';
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(t) || Number(t) >= cur.length) {
        return err(`${at || '(root)'} is a list of ${cur.length}, and has no item "${t}"`);
      }
      cur = cur[Number(t)];
    } else if (cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, t)) {
      cur = (cur as Record<string, unknown>)[t];
    } else {
      const keys = cur !== null && typeof cur === 'object' ? Object.keys(cur).slice(0, 12) : [];
      return err(
        `${at || '(root)'} has no "${t}"` + (keys.length ? ` (it has: ${keys.join(', ')})` : ` (it is ${JSON.stringify(cur)})`),
      );
    }
    at += `/${t.replace(/~/g, '~0').replace(/\//g, '~1')}`;
  }
  return ok(cur);
}

/** Equal as text, or as numbers when both read as numbers (`ratio: "1.0"` matches the CSV's 1). */
function sameValue(a: unknown, b: unknown): boolean {
  if (String(a) === String(b)) return true;
  const x = Number(a);
  const y = Number(b);
  return a !== '' && b !== '' && a !== null && b !== null && Number.isFinite(x) && Number.isFinite(y) && x === y;
}

/** The one row of a list whose fields equal `match`. */
export function selectRow(doc: unknown, match: Record<string, string | number | boolean>): Result<unknown, string> {
  if (!Array.isArray(doc)) return err('`where` needs a list of rows, and this is not one');
  const hits = doc.filter(
    (row) =>
      row !== null &&
      typeof row === 'object' &&
      Object.entries(match).every(([k, v]) => sameValue((row as Record<string, unknown>)[k], v)),
  );
  const what = Object.entries(match).map(([k, v]) => `${k}=${v}`).join(', ');
  if (hits.length === 1) return ok(hits[0]);
  return err(hits.length === 0 ? `no row has ${what}` : `${hits.length} rows have ${what}; add columns to \`where\` to pick one`);
}
