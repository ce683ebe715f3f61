import { str } from './cells.js';
import { parseRow, rawRows } from './load.js';
import { pyRound } from '../../lib/pynum.js';
import { COL } from './sheets.js';
import type { Cell, Dataset, Workbook } from './types.js';
import { WarningLog } from './warnings.js';

/** A count with its share (rounded to 4 places, as the authors print). */
export interface Share {
  count: number;
  total: number;
  share: number | null;
}

function share(count: number, total: number): Share {
  return { count, total, share: total === 0 ? null : pyRound(count / total, 4) };
}

function valueCounts(cells: ReadonlyArray<Cell | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of cells) {
    const key = c === null || c === undefined ? '(missing)' : String(c);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** METHODS A.11 `descibe_papers` (printed only upstream): MIDL papers and the datasets they reference. */
export function describePapers(wb: Workbook) {
  const papers = rawRows(wb, 'papers');
  const midl = rawRows(wb, 'midl_datasets');
  const contains = (c: Cell | undefined, s: string) => typeof c === 'string' && c.includes(s);
  const pedsKnown = midl.filter((r) => typeof r.cells[COL.pedsVsAdult] === 'string');
  return {
    papers: {
      total: papers.length,
      public_data: share(papers.filter((r) => contains(r.cells['Private/Public Data'], 'Public')).length, papers.length),
      age_explicitly_documented: share(
        papers.filter((r) => r.cells['Is Age Explicitly Documented'] === true).length,
        papers.length,
      ),
      known_to_have_peds: share(papers.filter((r) => contains(r.cells[COL.pedsVsAdult], 'Peds')).length, papers.length),
    },
    midl_datasets: {
      total: midl.length,
      age_documented: share(midl.filter((r) => r.cells[COL.ageDocumentedHow] !== null).length, midl.length),
      patient_level_age: share(midl.filter((r) => r.cells[COL.ageDocumentedHow] === 'Patient-Level').length, midl.length),
      known_to_have_peds: share(midl.filter((r) => contains(r.cells[COL.pedsVsAdult], 'Peds')).length, midl.length),
      // The authors print count / all rows but a mean that skips empty cells; both are given.
      known_to_have_peds_among_documented: share(
        pedsKnown.filter((r) => contains(r.cells[COL.pedsVsAdult], 'Peds')).length,
        pedsKnown.length,
      ),
    },
  };
}

/** Mean of the known values (pandas `mean` skips missing); null when none is known. */
function meanKnown(values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return null;
  let s = 0;
  for (const v of known) s += v;
  return s / known.length;
}

/** METHODS A.11 `describe_data_repackaging` (printed only upstream): how repackaged datasets document age. */
export function describeRepackaging(wb: Workbook) {
  const warnings = new WarningLog();
  const parse = (category: 'repackaging_1st' | 'repackaging_2nd' | 'medsam'): Dataset[] =>
    rawRows(wb, category).map((r) => parseRow(wb, r, warnings));
  const primary = parse('repackaging_1st');
  const secondary = parse('repackaging_2nd');
  const medsam = parse('medsam');

  const secondaryLists = (d: Dataset) => (str(d.cells['Secondary Datasets'] ?? null) ?? '').split('\n');
  const patientLevel = new Set(
    secondary.filter((d) => d.cells[COL.ageDocumentedHow] === 'Patient-Level').map((d) => d.cells[COL.name]),
  );
  const withPatientLevel = primary.filter((d) => secondaryLists(d).some((name) => patientLevel.has(name)));

  // Secondary rows joined once per reference from a primary dataset (weighted by use).
  const byName = new Map(secondary.map((d) => [d.cells[COL.name], d]));
  const referenced = primary.flatMap((p) =>
    secondaryLists(p).flatMap((name) => (byName.has(name) ? [byName.get(name)!] : [])),
  );
  const meanAdult = meanKnown(secondary.map((d) => d.propAdult));
  const meanAdultWeighted = meanKnown(referenced.map((d) => d.propAdult));

  const p = 0.018;
  const needed = (n: number) => (n * (0.22 - p)) / (1 - 0.22);

  const children = (rows: readonly Dataset[]) => {
    let s = 0;
    for (const d of rows) if (d.numPatients !== null && d.propAdult !== null) s += d.numPatients * (1 - d.propAdult);
    return Math.trunc(s);
  };
  const validations = [...new Set(medsam.map((d) => String(d.cells['Validation'] ?? '(missing)')))];
  const medsamByValidation: Record<string, Record<string, number>> = {};
  for (const v of validations) {
    medsamByValidation[v] = valueCounts(
      medsam.filter((d) => String(d.cells['Validation'] ?? '(missing)') === v).map((d) => d.containsChildren),
    );
  }
  return {
    secondary_age_documented_how: valueCounts(secondary.map((d) => d.cells[COL.ageDocumentedHow])),
    primary_using_patient_level_secondary: {
      count: withPatientLevel.length,
      age_documented_how: valueCounts(withPatientLevel.map((d) => d.cells[COL.ageDocumentedHow])),
    },
    secondary_peds_share: meanAdult === null ? null : pyRound(1 - meanAdult, 4),
    secondary_peds_share_weighted_by_use: meanAdultWeighted === null ? null : pyRound(1 - meanAdultWeighted, 4),
    datasets_needed_for_22_percent_children: { p, n100: pyRound(needed(100), 2), n110: pyRound(needed(110), 2) },
    medsam: {
      contains_children_by_validation: medsamByValidation,
      children_all: children(medsam),
      children_internal: children(medsam.filter((d) => d.cells['Validation'] === 'Internal')),
    },
    warnings: warnings.counts(),
  };
}
