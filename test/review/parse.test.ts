// Unit tests of the review's parsing rules (METHODS A.3–A.8) and the Python number semantics they depend on.
import { describe, expect, test } from 'vitest';
import { toCell } from '../../stages/review/lib/cells.js';
import { csvField, toCsv } from '../../stages/review/lib/csv.js';
import { parseDemographics } from '../../stages/review/lib/demographics.js';
import { modalityShare, parseModalityShares } from '../../stages/review/lib/modality-shares.js';
import { parsePedsVsAdult } from '../../stages/review/lib/peds-adult.js';
import { pyFloatRepr, pyRound } from '../../stages/review/lib/python.js';
import { imputeSampleSize, parseSampleSize } from '../../stages/review/lib/sample-size.js';
import { firstParenCountry, institutionOf, lastParenCountry } from '../../stages/review/lib/sources.js';
import { digitClass, digitClassLabel } from '../../stages/review/lib/breakdown.js';

describe('sample size (A.3)', () => {
  test('sums each kind over its lines, commas removed', () => {
    const r = parseSampleSize('Patients: 1,234\nSequences: 50\nImages: 9,000\nPatients: 6');
    expect(r).toEqual({ ok: true, value: { patients: 1240, sequences: 50, images: 9000 } });
  });
  test('text before the last "Patients: " is ignored; N/A lines are dropped', () => {
    const r = parseSampleSize('Train Patients: 100\nTest Patients: N/A\nImages: 20');
    expect(r).toEqual({ ok: true, value: { patients: 100, sequences: null, images: 20 } });
  });
  test('a missing cell and a zero sum are missing', () => {
    expect(parseSampleSize(null)).toEqual({ ok: true, value: { patients: null, sequences: null, images: null } });
    expect(parseSampleSize('Patients: 0\nImages: 0')).toEqual({
      ok: true,
      value: { patients: null, sequences: null, images: null },
    });
  });
  test('a line naming a kind without an integer is an error that quotes the line', () => {
    const r = parseSampleSize('Patients: about 40\nImages: 3');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.line).toBe('Patients: about 40');
  });
  test('imputation: CT/MRI patients = sequences, Fundus ceil(images / 2), sequences fall back to images then patients', () => {
    expect(imputeSampleSize({ patients: null, sequences: 7, images: null }, 'CT, MRI')).toMatchObject({
      patients: 7,
      sequences: 7,
      imputedNumPatients: true,
    });
    expect(imputeSampleSize({ patients: null, sequences: null, images: 9 }, 'Fundus')).toMatchObject({
      patients: 5,
      sequences: 9,
      images: 9,
    });
    expect(imputeSampleSize({ patients: 12, sequences: null, images: null }, 'X-ray')).toMatchObject({
      patients: 12,
      sequences: 12,
      imputedNumPatients: false,
    });
    // X-ray with only a patient count: images stay missing (never imputed).
    expect(imputeSampleSize({ patients: null, sequences: null, images: null }, 'X-ray').patients).toBeNull();
  });
});

describe('Peds vs. Adult (A.5)', () => {
  test.each([
    ['Adult', 'Adult Only', 1],
    ['Adult/Prenatal', 'Adult Only', 1],
    ['Peds', 'Peds Only', 0],
    ['Peds, Adult (>97.5%)', 'Peds & Adult', 0.975],
    ['Peds, Adult (99.2%)', 'Peds & Adult', 0.992],
    ['Peds, Adult (>99.46%)', 'Peds & Adult', 99.46 / 100],
    ['Peds, Adult', 'Peds & Adult', null],
    ['Peds ', 'Unknown', null],
    ['Unknown', 'Unknown', null],
  ] as const)('%s → %s, %s', (text, contains, prop) => {
    const r = parsePedsVsAdult(text);
    expect(r.containsChildren).toBe(contains);
    expect(r.propAdult).toBe(prop);
  });
  test('missing and non-text cells are Unknown (they must not match the "starts with" tests)', () => {
    expect(parsePedsVsAdult(null)).toEqual({ containsChildren: 'Unknown', propAdult: null });
    expect(parsePedsVsAdult(1)).toEqual({ containsChildren: 'Unknown', propAdult: null });
  });
  test('a percentage that is not a number is missing and flagged', () => {
    const r = parsePedsVsAdult('Peds, Adult (most%)');
    expect(r).toEqual({ containsChildren: 'Peds & Adult', propAdult: null, unparsedPercentage: 'Peds, Adult (most%)' });
  });
});

describe('demographics (A.4)', () => {
  test('Key: Value lines, blank lines skipped, key and value trimmed', () => {
    expect(parseDemographics('Age Range: 18 to 90\n\n Sex : M (50%), F (50%) \nModalities: CT (83.3%), MRI (17.7%)')).toEqual({
      ok: true,
      value: { 'Age Range': '18 to 90', 'Sex': 'M (50%), F (50%)', Modalities: 'CT (83.3%), MRI (17.7%)' },
    });
  });
  test('a line without exactly one ": " is an error with its line number', () => {
    expect(parseDemographics('Description: fine\nno separator here')).toEqual({
      ok: false,
      line: 'no separator here',
      lineNumber: 2,
    });
    expect(parseDemographics('Description: a: b')).toMatchObject({ ok: false, lineNumber: 1 });
  });
  test('"N/A" cells are missing as pandas reads them, so they parse to nothing', () => {
    expect(toCell('N/A')).toBeNull();
    expect(parseDemographics(toCell('N/A'))).toEqual({ ok: true, value: {} });
  });
});

describe('modality shares (A.6)', () => {
  test('parsed, not renormalised; fallback 1 / number of tokens', () => {
    const r = parseModalityShares('CT (83.3%), MRI (17.7%)');
    expect(r).toEqual({ ok: true, value: { CT: 0.833, MRI: 0.177 } });
    expect(modalityShare(r.ok ? r.value : null, 'CT, MRI', 'MRI')).toBe(0.177);
    expect(modalityShare(null, 'CT, MRI, US', 'US')).toBe(1 / 3);
  });
  test('a part without a percentage is an error result', () => {
    expect(parseModalityShares('CT (50%), MRI')).toEqual({ ok: false, part: 'MRI' });
  });
});

describe('sources (A.8 vs A.11)', () => {
  const line = 'Hospital (Paris) Annex (France)';
  test('summary statistics take the first "(…)", the country figure the last', () => {
    expect(firstParenCountry(line)).toBe('Paris');
    expect(lastParenCountry(line)).toBe('France');
    expect(institutionOf(line)).toBe('Hospital');
    expect(firstParenCountry('No country here')).toBeNull();
    expect(institutionOf('No country here')).toBe('No country here');
  });
});

describe('Python number semantics', () => {
  test('round: half to even on exact ties, correct rounding of inexact values', () => {
    expect(pyRound(0.125, 2)).toBe(0.12);
    expect(pyRound(0.375, 2)).toBe(0.38);
    expect(pyRound(2.5, 0)).toBe(2);
    expect(pyRound(3.5, 0)).toBe(4);
    expect(pyRound(0.285, 2)).toBe(0.28); // the double is just below .285
    expect(pyRound(1.0049999, 2)).toBe(1);
    expect(pyRound(-0.125, 2)).toBe(-0.12);
    expect(pyRound((100 * 6026.77) / 512608.9, 2)).toBe(1.18);
  });
  test('float repr as pandas writes floats', () => {
    expect(pyFloatRepr(100)).toBe('100.0');
    expect(pyFloatRepr(0)).toBe('0.0');
    expect(pyFloatRepr(2144.750000000002)).toBe('2144.750000000002');
    expect(pyFloatRepr(0.00001)).toBe('1e-05');
    expect(pyFloatRepr(1.5e16)).toBe('1.5e+16');
  });
  test('CSV fields are quoted like Python csv (QUOTE_MINIMAL)', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('line\nbreak')).toBe('"line\nbreak"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(toCsv([['a', 'b'], ['1', '']])).toBe('a,b\n1,\n');
  });
  test('breakdown colour classes by number of digits', () => {
    expect([0, 4, 17, 751, 7520, 27500, 959482].map(digitClass)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(digitClassLabel(0)).toBe('0');
    expect(digitClassLabel(6)).toBe('[10^5,10^6)');
  });
});
