import type { Cell } from './types.js';

export type DemographicsResult =
  | { ok: true; value: Record<string, string> }
  | { ok: false; line: string; lineNumber: number };

/**
 * METHODS A.4: each non-blank line is `Key: Value` with exactly one ": " (key and value trimmed). A line that is not
 * makes the authors' code raise and skip the whole category's demographics; we report it as an error instead.
 * Non-text cells have no demographics.
 */
export function parseDemographics(cell: Cell): DemographicsResult {
  const value: Record<string, string> = {};
  if (typeof cell !== 'string' || cell.trim() === '') return { ok: true, value };
  const lines = cell.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const parts = line.split(': ');
    if (parts.length !== 2) return { ok: false, line, lineNumber: i + 1 };
    value[parts[0]!.trim()] = parts[1]!.trim();
  }
  return { ok: true, value };
}
