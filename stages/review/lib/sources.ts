import { str } from './cells.js';
import { COL } from './sheets.js';
import type { Cell, Dataset } from './types.js';

/** Values that mean "unknown" in the Source column. */
const UNKNOWN = new Set(['', 'N/A', 'NA', 'None']);

function sourceLines(cell: Cell | undefined): string[] {
  const text = str(cell ?? null);
  return text === null ? [] : text.split('\n').filter((line) => line !== '');
}

/** A.8 country of one Source line: between the FIRST "(" and the next ")", trimmed; null without "(". */
export function firstParenCountry(line: string): string | null {
  const open = line.indexOf('(');
  if (open < 0) return null;
  return line.slice(open + 1).split(')')[0]!.trim();
}

/**
 * A.11 `plot_countries` country of one Source line, as the authors' `line.split("(")[-1].split(")")[0]`: the text
 * after the LAST "(" up to the next ")", not trimmed; a line without "(" yields its own text (up to a ")") — the
 * institution then counts as a country, which `countryLinesWithoutParen` reports.
 */
export function lastParenCountry(line: string): string {
  return line.split('(').at(-1)!.split(')')[0]!;
}

/** A.8 institution of one Source line: `line.split("(")[0].split(")")[0]`, trimmed (the whole line without "("). */
export function institutionOf(line: string): string {
  return line.split('(')[0]!.split(')')[0]!.trim();
}

/** A.8: distinct countries and institutions over all rows of a set (not only the usable ones). */
export function countriesAndInstitutions(rows: readonly Dataset[]): { countries: Set<string>; institutions: Set<string> } {
  const countries = new Set<string>();
  const institutions = new Set<string>();
  for (const d of rows) {
    for (const line of sourceLines(d.cells[COL.source])) {
      const country = firstParenCountry(line);
      if (country !== null && !UNKNOWN.has(country)) countries.add(country);
      const institution = institutionOf(line);
      if (!UNKNOWN.has(institution)) institutions.add(institution);
    }
  }
  return { countries, institutions };
}

/** A.11: the countries of one dataset for the country figure (last "(…)" of each line; "", "N/A", "NA" dropped). */
export function datasetCountries(d: Dataset): string[] {
  return sourceLines(d.cells[COL.source])
    .map(lastParenCountry)
    .filter((c) => c !== '' && c !== 'N/A' && c !== 'NA');
}

/** Source lines of a dataset without "(", which the country figure counts as a country named after the line. */
export function countryLinesWithoutParen(d: Dataset): string[] {
  return sourceLines(d.cells[COL.source]).filter((line) => !line.includes('(') && lastParenCountry(line) !== '');
}
