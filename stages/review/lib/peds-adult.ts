import { parsePercentage } from './percentage.js';
import type { Cell, ContainsChildren } from './types.js';

export interface AgeGroup {
  containsChildren: ContainsChildren;
  /** Share of adult patients, 0–1; null when unknown. */
  propAdult: number | null;
  /** Set when a "(…%)" was present but not a number: the authors treat it as missing; we warn. */
  unparsedPercentage?: string;
}

/**
 * METHODS A.5. "Adult…" → Adult Only (1.0); exactly "Peds" → Peds Only (0.0); "Peds, Adult (>x%)" → Peds & Adult
 * with x/100 (without a percentage: unknown share); anything else (or missing) → Unknown.
 */
export function parsePedsVsAdult(cell: Cell): AgeGroup {
  if (typeof cell !== 'string') return { containsChildren: 'Unknown', propAdult: null };
  if (cell.startsWith('Adult')) return { containsChildren: 'Adult Only', propAdult: 1.0 };
  if (cell === 'Peds') return { containsChildren: 'Peds Only', propAdult: 0.0 };
  if (cell.startsWith('Peds, Adult')) {
    const pct = parsePercentage(cell);
    if (pct === undefined) return { containsChildren: 'Peds & Adult', propAdult: null };
    if (pct === null) return { containsChildren: 'Peds & Adult', propAdult: null, unparsedPercentage: cell };
    return { containsChildren: 'Peds & Adult', propAdult: pct / 100 };
  }
  return { containsChildren: 'Unknown', propAdult: null };
}
