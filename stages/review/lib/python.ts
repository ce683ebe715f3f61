/**
 * Python parsing the authors' results depend on: `int()` and `float()` of workbook text. (Rounding and float
 * formatting live in stages/lib/pynum.ts.)
 */

/** Python `int(text)` for the texts a workbook holds (surrounding whitespace allowed); null if it would raise. */
export function pyInt(text: string): number | null {
  const m = /^\s*([+-]?\d+(?:_\d+)*)\s*$/.exec(text);
  return m ? Number(m[1]!.replaceAll('_', '')) : null;
}

/** Python `float(text)`; null if it would raise. */
export function pyFloat(text: string): number | null {
  const t = text.trim().replaceAll('_', '');
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return Number(t);
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(t)) return NaN;
  return null;
}
