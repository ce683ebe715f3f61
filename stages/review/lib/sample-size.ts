import { pyInt } from './python.js';

export interface SampleSize {
  patients: number | null;
  sequences: number | null;
  images: number | null;
}

export type SampleSizeResult = { ok: true; value: SampleSize } | { ok: false; line: string; reason: string };

const KINDS = [
  { field: 'patients', marker: 'Patient', prefix: 'Patients: ' },
  { field: 'sequences', marker: 'Sequences', prefix: 'Sequences: ' },
  { field: 'images', marker: 'Images', prefix: 'Images: ' },
] as const;

/**
 * METHODS A.3: newline-separated `Patients: 1,234` / `Sequences: 50` / `Images: 9,000` lines; lines with "N/A" are
 * dropped; each kind sums the integers after the last "<Kind>: " of the lines mentioning it. A sum of 0 (or no such
 * line) is missing. A line that mentions a kind but holds no integer fails (the authors' `int()` raises there).
 */
export function parseSampleSize(text: string | null): SampleSizeResult {
  const lines = text === null ? [] : text.split('\n').filter((line) => !line.includes('N/A'));
  const value: SampleSize = { patients: null, sequences: null, images: null };
  for (const kind of KINDS) {
    let sum = 0;
    for (const line of lines) {
      if (!line.includes(kind.marker)) continue;
      const n = pyInt(line.split(kind.prefix).at(-1)!.replaceAll(',', ''));
      if (n === null) return { ok: false, line, reason: `expected "${kind.prefix}<integer>"` };
      sum += n;
    }
    value[kind.field] = sum === 0 ? null : sum;
  }
  return { ok: true, value };
}

/**
 * A.3 imputation, decided on the originally missing patient count: CT/MRI → patients = sequences; Fundus →
 * ceil(images / 2). Then a missing sequence count takes the (possibly imputed) patient count, else the image count —
 * patients first, as the authors' `parse_sample_size` does (`row["num_patients"] if not pd.isnull(...) else
 * row["num_images"]`). Taking images first inflates CT/US sequence counts where a dataset reports many images per
 * patient (2020 LoDoPaB-CT: 40 children, not 2,144.75).
 */
export function imputeSampleSize(
  parsed: SampleSize,
  modalityText: string | null,
): SampleSize & { imputedNumPatients: boolean } {
  let { patients, sequences } = parsed;
  const { images } = parsed;
  let imputed = false;
  if (patients === null && modalityText !== null) {
    if (modalityText.includes('CT') || modalityText.includes('MRI')) {
      patients = sequences;
      imputed = true;
    }
    if (modalityText.includes('Fundus')) {
      patients = images === null ? null : Math.ceil(images / 2);
      imputed = true;
    }
  }
  if (sequences === null) sequences = patients ?? images;
  return { patients, sequences, images, imputedNumPatients: imputed };
}
