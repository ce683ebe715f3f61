/**
 * Loading one predictions CSV (the authors' `predictions.csv`, plain or gzip) into the few columns the evaluation
 * needs. Errors name the file, line and column — never a stack trace.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { readStageInputSync, stageInputLimit, StageError } from '../../../engine/stage-api.js';
import { parsePandasNumber } from '../../lib/pandas-csv.js';

export interface Predictions {
  /** Path as given (for messages). */
  file: string;
  n: number;
  /** `dset` / `split` columns of the first row, when present. */
  dset?: string;
  split?: string;
  /** `age_years` (NaN = missing), when the column exists. */
  ageYears?: Float64Array;
  /** Raw DICOM age strings (`age`), when there is no `age_years` column (VinDr-PCXR). */
  ageRaw?: string[];
  /** NaN = empty cell. */
  hasFinding: Float64Array;
  cardiomegaly: Float64Array;
  /** `class_probs` = [p_negative, p_positive] as written (4 dp). */
  pNeg: Float64Array;
  pPos: Float64Array;
}

/**
 * Where a predictions file is: a file itself, or a directory in either layout — the vendored
 * `<dir>/<split>.csv.gz` / `<dir>/<split>.csv`, or the authors' `<dir>/<split>/best/predictions.csv`
 * (also `<dir>/<split>/predictions.csv`, and `<dir>/best/predictions.csv` when `dir` is the split folder).
 */
export function resolvePredictionsFile(absPath: string, split: string | undefined, shown = absPath): string {
  if (!existsSync(absPath)) throw new StageError(`Predictions not found: ${shown} does not exist.`);
  if (statSync(absPath).isFile()) return absPath;
  const candidates = [
    ...(split
      ? [`${split}.csv.gz`, `${split}.csv`, join(split, 'best', 'predictions.csv'), join(split, 'predictions.csv'),
        join(split, 'best', 'predictions.csv.gz'), join(split, 'predictions.csv.gz')]
      : []),
    join('best', 'predictions.csv'), 'predictions.csv', join('best', 'predictions.csv.gz'), 'predictions.csv.gz',
  ];
  for (const c of candidates) {
    const p = join(absPath, c);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  throw new StageError(
    `No predictions for split "${split ?? '?'}" in directory ${shown}: looked for ${candidates.join(', ')}.`,
  );
}

function readText(abs: string, shown: string): string {
  const buf = readStageInputSync(abs, 'Predictions file', shown);
  // gzip by magic number, not by name: a retrained run may write either.
  if (buf[0] !== 0x1f || buf[1] !== 0x8b) return buf.toString('utf8');
  const limit = stageInputLimit();
  try {
    return gunzipSync(buf, { maxOutputLength: limit }).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new StageError(`Predictions file ${shown} unzips to more than ${limit / 1024 / 1024} MiB; raise PIPE_MAX_STAGE_INPUT_MB to read it.`);
    }
    throw new StageError(`Predictions file ${shown} looks gzip-compressed but cannot be decompressed (${(err as Error).message}); is it truncated?`);
  }
}

/** A decimal number as Python writes one (no hex, no "Infinity"). */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parse `"[0.795, 0.205]"` (the authors' JSON list); undefined if it is not a list of two numbers. NaN and infinities
 * parse (as Python's `json.loads` reads them) so that `scoreProblem` can name them.
 */
export function parseClassProbs(text: string): [number, number] | undefined {
  const t = text.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return undefined;
  const parts = t.slice(1, -1).split(',').map((x) => x.trim());
  if (parts.length !== 2) return undefined;
  const value = (x: string): number | undefined =>
    NUMBER.test(x) ? Number(x) : x === 'NaN' || x === 'nan' ? NaN : /^[+-]?(Infinity|inf)$/.test(x) ? (x.startsWith('-') ? -Infinity : Infinity) : undefined;
  const a = value(parts[0]!);
  const b = value(parts[1]!);
  return a === undefined || b === undefined ? undefined : [a, b];
}

/**
 * Why a class-probability pair is not a usable score, or undefined if it is: every value a finite probability in
 * [0, 1] and the pair not summing to 0 (the threshold divides by the sum; 0/0 is NaN and would sort anywhere).
 */
export function scoreProblem([a, b]: readonly [number, number]): string | undefined {
  for (const v of [a, b]) {
    if (Number.isNaN(v)) return 'holds NaN';
    if (!Number.isFinite(v)) return `holds ${v > 0 ? '' : '-'}infinity`;
    if (v < 0 || v > 1) return `holds ${v}, outside [0, 1]`;
  }
  if (a + b === 0) return 'sums to 0, so the normalised score p1 / (p0 + p1) is 0/0';
  return undefined;
}

/** Load a predictions file (absolute path `abs`, shown to users as `shown`). */
export function loadPredictions(abs: string, shown = abs): Predictions {
  // Read first: a file that cannot be read (or unzipped) says so itself; only the CSV parser's errors are parse errors.
  const text = readText(abs, shown);
  let records: string[][];
  try {
    records = parse(text, { relax_quotes: false, skip_empty_lines: true }) as string[][];
  } catch (err) {
    const e = err as { lines?: number; column?: number; message?: string };
    throw new StageError(`Cannot parse predictions CSV ${shown}${e.lines ? ` at line ${e.lines}` : ''}: ${e.message ?? String(err)}`);
  }
  if (records.length === 0) throw new StageError(`Predictions CSV ${shown} is empty (no header line).`);
  const header = records[0]!;
  const col = (name: string): number => header.indexOf(name);
  const need = (name: string): number => {
    const i = col(name);
    if (i < 0) {
      throw new StageError(
        `Predictions CSV ${shown} has no column "${name}" (line 1 has: ${header.join(', ')}). ` +
          'Expected the authors\' predictions.csv layout (metadata columns, then pred, prob, out, [loss,] class_probs).',
      );
    }
    return i;
  };
  const iProbs = need('class_probs');
  const iHas = need('Has Finding');
  const iCardio = col('Cardiomegaly');
  const iAgeYears = col('age_years');
  const iAge = col('age');
  if (iAgeYears < 0 && iAge < 0) {
    throw new StageError(`Predictions CSV ${shown} has neither an "age_years" nor an "age" column (line 1).`);
  }
  const n = records.length - 1;
  const out: Predictions = {
    file: shown,
    n,
    hasFinding: new Float64Array(n),
    cardiomegaly: new Float64Array(n),
    pNeg: new Float64Array(n),
    pPos: new Float64Array(n),
  };
  const iDset = col('dset');
  const iSplit = col('split');
  if (n > 0 && iDset >= 0) out.dset = records[1]![iDset];
  if (n > 0 && iSplit >= 0) out.split = records[1]![iSplit];
  // The filters and age bins follow the file's dataset and split: a file mixing them would be read by its first row's.
  for (const [i, name, first] of [[iDset, 'dset', out.dset], [iSplit, 'split', out.split]] as const) {
    if (i < 0) continue;
    const r = records.findIndex((row, k) => k > 0 && row[i] !== first);
    if (r > 0) {
      throw new StageError(
        `Predictions CSV ${shown}, line ${r + 1}, column "${name}": "${records[r]![i]}" where line 2 has "${first}"; a ` +
          'predictions file holds one dataset and one split (its filters and age bins depend on them). Split the file.',
      );
    }
  }
  if (iAgeYears >= 0) out.ageYears = new Float64Array(n);
  else out.ageRaw = new Array<string>(n);
  for (let r = 0; r < n; r++) {
    const row = records[r + 1]!;
    const line = r + 2;
    if (row.length !== header.length) {
      throw new StageError(`Predictions CSV ${shown}, line ${line}: ${row.length} fields where the header has ${header.length}.`);
    }
    const probs = parseClassProbs(row[iProbs]!);
    if (!probs) {
      throw new StageError(
        `Predictions CSV ${shown}, line ${line}, column "class_probs" (${iProbs + 1}): "${row[iProbs]}" is not a list of two probabilities like "[0.7, 0.3]".`,
      );
    }
    const problem = scoreProblem(probs);
    if (problem) {
      throw new StageError(
        `Predictions CSV ${shown}, line ${line} (row ${r + 1}), column "class_probs": "${row[iProbs]}" ${problem}; every ` +
          'score must be a pair of finite probabilities in [0, 1], not both 0. Re-run the inference that wrote the file.',
      );
    }
    out.pNeg[r] = probs[0];
    out.pPos[r] = probs[1];
    const cell = (i: number, name: string, what: string): number => {
      const v = parsePandasNumber(row[i]);
      if (v === undefined) {
        throw new StageError(
          `Predictions CSV ${shown}, line ${line}, column "${name}" (${i + 1}): "${row[i]}" is not ${what} (an empty cell means missing).`,
        );
      }
      return v;
    };
    out.hasFinding[r] = cell(iHas, 'Has Finding', 'a 0/1 label');
    out.cardiomegaly[r] = iCardio >= 0 ? cell(iCardio, 'Cardiomegaly', 'a label (1, 0, −1)') : -1;
    if (out.ageYears) {
      const age = cell(iAgeYears, 'age_years', 'an age in years');
      if (age < 0) throw new StageError(`Predictions CSV ${shown}, line ${line}, column "age_years" (${iAgeYears + 1}): "${row[iAgeYears]}" is a negative age.`);
      out.ageYears[r] = age;
    } else out.ageRaw![r] = row[iAge] ?? '';
  }
  return out;
}
