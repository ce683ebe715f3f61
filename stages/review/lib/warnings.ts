import type { ReviewWarning } from './types.js';

/** Collects warnings once per (kind, sheet, row, column): the same sheet is loaded for several summary rows. */
export class WarningLog {
  private readonly seen = new Map<string, ReviewWarning>();

  add(w: ReviewWarning): void {
    const key = `${w.kind}\u0000${w.sheet}\u0000${w.row}\u0000${w.column}`;
    if (!this.seen.has(key)) this.seen.set(key, w);
  }

  list(): ReviewWarning[] {
    return [...this.seen.values()];
  }

  /** Counts by kind, for the JSON summary. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.seen.values()) out[w.kind] = (out[w.kind] ?? 0) + 1;
    return out;
  }
}
