import { pyFloat } from './python.js';

/**
 * The authors' `parse_percentage_from_text`: the text after the last "(", with ">" removed, up to "%)", as a float.
 * "(>97.5%)" → 97.5 (so "more than 97.5 %" counts as exactly 97.5 %). `undefined` = no "(" at all (not an error);
 * `null` = a "(" whose content is not a number (the authors print a message and treat it as missing).
 */
export function parsePercentage(text: string): number | null | undefined {
  const parts = text.split('(');
  if (parts.length === 1) return undefined;
  return pyFloat(parts.at(-1)!.replaceAll('>', '').split('%)')[0]!);
}
