// Unit tests of the review's parsing rules (METHODS A.3–A.8) and the Python number semantics they depend on.
import { describe, expect, test } from 'vitest';
import { toCell } from '../../stages/review/lib/cells.js';
import { cellText, pandasKind } from '../../stages/review/lib/csv.js';
import { csvText } from '../../stages/lib/pandas-csv.js';
import { parseDemographics } from '../../stages/review/lib/demographics.js';
import { modalityShare, parseModalityShares } from '../../stages/review/lib/modality-shares.js';
import { parsePedsVsAdult } from '../../stages/review/lib/peds-adult.js';
import { npRound, pyFloatRepr, pyFloorDiv, pyRound } from '../../stages/lib/pynum.js';
import { imputeSampleSize, parseSampleSize } from '../../stages/review/lib/sample-size.js';
import { firstParenCountry, institutionOf, lastParenCountry } from '../../stages/review/lib/sources.js';
import { digitClass, digitClassLabel } from '../../stages/review/lib/breakdown.js';
import { pedsDatasets } from '../../stages/review/lib/peds-datasets.js';
import type { Dataset } from '../../stages/review/lib/types.js';

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
  test('imputation: CT/MRI patients = sequences, Fundus ceil(images / 2), sequences fall back to patients then images', () => {
    expect(imputeSampleSize({ patients: null, sequences: 7, images: null }, 'CT, MRI')).toMatchObject({
      patients: 7,
      sequences: 7,
      imputedNumPatients: true,
    });
    // Fundus: the imputed patient count (not the image count) becomes the sequence count.
    expect(imputeSampleSize({ patients: null, sequences: null, images: 9 }, 'Fundus')).toMatchObject({
      patients: 5,
      sequences: 5,
      images: 9,
    });
    // Patients and images but no sequences (2020 LoDoPaB-CT, OCT, SPR Head CT…): sequences = patients, not images.
    expect(imputeSampleSize({ patients: 40, sequences: null, images: 2144 }, 'CT')).toMatchObject({
      patients: 40,
      sequences: 40,
      images: 2144,
      imputedNumPatients: false,
    });
    // Only images: the sequence count falls back to them.
    expect(imputeSampleSize({ patients: null, sequences: null, images: 30 }, 'US')).toMatchObject({
      patients: null,
      sequences: 30,
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
  test('exactly the authors\' string splits: institution stops at ")", the figure\'s country is not trimmed', () => {
    // extract_from_multi_str: line.split("(")[0].split(")")[0].strip()
    expect(institutionOf('Lab B) Site C (USA)')).toBe('Lab B');
    // plot_countries: line.split("(")[-1].split(")")[0], no strip; a line without "(" is its own "country".
    expect(lastParenCountry('Hospital ( USA)')).toBe(' USA');
    expect(lastParenCountry('Stanford University')).toBe('Stanford University');
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
    // Values printed by CPython 3.11: repr() picks the exponent form from the shortest digits, not from log10.
    expect([9.999999999999999e-5, 1e-4, 123456789012345.6, 1e15, -2.5e-7].map(pyFloatRepr)).toEqual(
      ['9.999999999999999e-05', '0.0001', '123456789012345.6', '1000000000000000.0', '-2.5e-07'],
    );
  });
  test('numpy round (pandas Series.round) is not Python round: 0.015 → 0.02 vs 0.01', () => {
    expect([npRound(0.015, 2), pyRound(0.015, 2)]).toEqual([0.02, 0.01]);
    expect([npRound(0.025, 2), pyRound(0.025, 2)]).toEqual([0.02, 0.03]);
    expect([npRound(0.45, 1), pyRound(0.45, 1)]).toEqual([0.4, 0.5]);
  });
  test('float floor division as CPython', () => {
    const cases: Array<[number, number]> = [[7, 2], [2.9999999999999996, 3], [1, 0.1], [0.3, 0.1], [-7.5, 2], [12.5, 3]];
    expect(cases.map(([a, b]) => pyFloorDiv(a, b))).toEqual([3, 0, 9, 2, -4, 4]);
  });
  test('CSV fields are quoted like Python csv (QUOTE_MINIMAL, "\\n" line ends)', () => {
    // As CPython's csv.writer(lineterminator="\n") writes them: a lone "\r" is no reason to quote.
    expect(csvText([['plain', 'a,b', 'line\nbreak', 'say "hi"', 'cr\rx'], ['1', '']])).toBe(
      'plain,"a,b","line\nbreak","say ""hi""",cr\rx\n1,\n',
    );
  });
  test('workbook columns take the dtype pandas gives them', () => {
    expect(pandasKind([true, false])).toBe('bool');
    expect(pandasKind([true, null, false])).toBe('float'); // "Is Age Complete": published as 1.0 / 0.0
    expect(pandasKind([3, 4])).toBe('int');
    expect(pandasKind([3, null])).toBe('float');
    expect(pandasKind([3, 'x', null])).toBe('object');
    expect([cellText(true, 'float'), cellText(false, 'float'), cellText(true, 'bool'), cellText(3, 'float'), cellText(3, 'int')])
      .toEqual(['1.0', '0.0', 'True', '3.0', '3']);
    expect([cellText(null, 'float'), cellText('N/A text', 'object'), cellText(2.5, 'object')]).toEqual(['', 'N/A text', '2.5']);
  });
  test('breakdown colour classes by number of digits', () => {
    expect([0, 4, 17, 751, 7520, 27500, 959482].map(digitClass)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(digitClassLabel(0)).toBe('0');
    expect(digitClassLabel(6)).toBe('[10^5,10^6)');
  });
});

describe('peds_datasets Percentage Overall (A.11)', () => {
  const dataset = (name: string, sequences: number, ctShare: number): Dataset => ({
    category: 'challenges', sheet: 'Challenges', excelRow: 2, cells: { 'Dataset Name': name, 'Imaging Modality(ies)': 'CT, MRI' },
    numPatients: sequences, numSequences: sequences, numImages: null, imputedNumPatients: false,
    containsChildren: 'Peds Only', propAdult: 0, modalityShares: { CT: ctShare, MRI: 1 - ctShare },
  });
  test('is pandas Series.round(2) (numpy rounding), not Python round: 0.015 % → 0.02', () => {
    // Values checked with pandas 1.5: (100 * pts / pts.sum()).astype(float).round(2) → [0.02, 99.98].
    const list = pedsDatasets([dataset('small', 3, 0.005), dataset('large', 99985, 0.001)], 'CT');
    expect(list.map((r) => [r.dataset.cells['Dataset Name'], r.pedsSampleSize, r.percentageOverall])).toEqual([
      ['large', 99.985, 99.98], ['small', 0.015, 0.02],
    ]);
  });
});
