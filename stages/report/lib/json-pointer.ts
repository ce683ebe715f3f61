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
