/**
 * Python and numpy number semantics the authors' results depend on, in one place: Python's `round()`, numpy's
 * `np.round` / pandas `Series.round` (a different rule), Python's float floor division, and `repr(float)`.
 */

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

/** numpy `rint`: nearest integer, halves to even. */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * numpy `np.round(x, d)` (and pandas `Series.round`): rint(x·10^d) / 10^d — the product is rounded first, so it can
 * differ from Python's `round` (0.015 → 0.02 here, 0.01 in Python).
 */
export function npRound(x: number, decimals: number): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** decimals;
  return rint(x * f) / f;
}

/** Python `a // b` on floats (CPython float_floor_div: from fmod, so it never rounds up across an integer). */
export function pyFloorDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError('float floor division by zero');
  let mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) {
    mod += b;
    div -= 1;
  }
  if (div === 0) return Math.sign(a / b) * 0;
  let floordiv = Math.floor(div);
  if (div - floordiv > 0.5) floordiv += 1;
  return floordiv;
}

/**
 * Python `repr(float)` (what pandas writes for a float64 cell): the shortest digits that round-trip, in exponent form
 * when the decimal exponent is below −4 or at least 16 ("5e-05", "1.5e+16", two exponent digits at least), else
 * positional with at least one decimal ("30.0", "0.0001"). NaN → "nan", infinities → "inf" / "-inf".
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() gives the same shortest round-trip digits as repr; its exponent decides the form (computing it
  // with log10 is off by one just below powers of ten, e.g. 9.999999999999999e-05).
  const [mantissa, e] = x.toExponential().split('e') as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const s = String(x); // positional for every exponent in [-4, 16)
  return s.includes('.') ? s : `${s}.0`;
}
