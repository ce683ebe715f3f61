/**
 * numpy's `percentile(a, q)` with the default 'linear' method, operation for operation (q / 100, virtual index
 * (n − 1)·q, floor, and the two-sided lerp numpy uses for t ≥ 0.5), so bounds match to the last digit.
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const quantile = q / 100;
  const virtual = (n - 1) * quantile;
  let prev: number;
  let next: number;
  if (virtual >= n - 1) {
    prev = n - 1;
    next = n - 1;
  } else if (virtual < 0) {
    prev = 0;
    next = 0;
  } else {
    prev = Math.floor(virtual);
    next = prev + 1;
  }
  // Out of range, a = b and gamma does not matter.
  const gamma = virtual - prev;
  const a = sorted[prev]!;
  const b = sorted[next]!;
  const diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}
