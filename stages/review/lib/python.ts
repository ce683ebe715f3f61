/**
 * Python/pandas number semantics the authors' results depend on: `int()`/`float()` parsing, `round()` (half to even
 * on the exact binary value), and `repr(float)` as pandas writes floats to CSV.
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

/**
 * Python `round(x, k)`: correctly rounded on the exact value of the double, exact ties to even.
 * `toFixed` already rounds the exact value correctly except on exact ties, which it sends away from zero.
 */
export function pyRound(x: number, k: number): number {
  if (!Number.isFinite(x)) return x;
  const rounded = Number(x.toFixed(k));
  const exact = Math.abs(x).toFixed(Math.min(100, k + 30));
  const dot = exact.indexOf('.');
  if (!/^50*$/.test(exact.slice(dot + 1 + k))) return rounded;
  // An exact tie: keep the truncated value when its last digit is even, else toFixed's away-from-zero choice.
  const truncated = exact.slice(0, k === 0 ? dot : dot + 1 + k);
  const lastDigit = Number(truncated.at(-1));
  return lastDigit % 2 === 0 ? Math.sign(x) * Number(truncated) : rounded;
}

/** Python `repr(float)`: shortest round-trip digits, always with a decimal point or exponent. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 16) {
    // Python: 1e-05, 1.5e+16
    const [mant, e] = x.toExponential().split('e') as [string, string];
    const n = Number(e);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** A pandas CSV cell for a number: integers as ints when the value came in as an int, else float repr. */
export function pyNumberCell(x: number, asFloat: boolean): string {
  if (!asFloat && Number.isInteger(x)) return String(x);
  return pyFloatRepr(x);
}
