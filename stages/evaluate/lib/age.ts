/**
 * Ages as the authors parse them (METHODS B.2). VinDr-PCXR carries the raw DICOM age string (0010,1010) such as
 * "001Y", "010M", "020D"; everything else has a numeric `age_years`.
 */

/** Python's int(): optional sign, digits, surrounding whitespace. */
const INTEGER = /^\s*[+-]?\d+\s*$/;

/**
 * DICOM age string → years, or undefined when missing/unparseable.
 * "Y" → int years (undefined above 125); "M" → floor(months / 12); "D" → days / 365 (a fraction, so a 20-day-old
 * is 0.0548 — truncated to 0 when binned). Any unit letter is removed wherever it occurs (Python's str.replace).
 * A bare integer (no unit; never in the published data) is read as years.
 */
export function parseAgeString(text: string | undefined | null): number | undefined {
  const t = text ?? '';
  const unit = t.includes('Y') ? 'Y' : t.includes('M') ? 'M' : t.includes('D') ? 'D' : '';
  const digits = unit ? t.split(unit).join('') : t;
  if (!INTEGER.test(digits)) return undefined;
  const value = Number.parseInt(digits, 10);
  let years: number;
  if (unit === 'M') years = Math.floor(value / 12);
  else if (unit === 'D') years = value / 365;
  else years = value;
  return years > 125 ? undefined : years;
}

/** Ages are truncated toward zero before binning (quirk 4: day and month ages of infants become 0). */
export const truncAge = (years: number): number => Math.trunc(years);
