/** numpy's rounding: `np.round(x, d)` = rint(x·10^d)/10^d with round-half-to-even (what the authors' CSVs hold). */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function roundTo(x: number, decimals: number): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** decimals;
  return rint(x * f) / f;
}

/** A float as Python's `repr`/pandas `to_csv` writes it: integral values keep a trailing ".0". */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return '';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  return String(x);
}
