/** Resolve, load and filter one predictions input for a stage (workspace-relative path → filtered rows). */
import { filterPredictions, type EvalRows } from './filters.js';
import { loadPredictions, resolvePredictionsFile } from './predictions.js';
import { relative } from 'node:path';

export interface Loaded {
  rows: EvalRows;
  /** Workspace-relative path of the file actually read. */
  file: string;
}

export function loadEvalRows(workspace: string, abs: string, shown: string, dset: string | undefined, split: string): Loaded {
  const file = resolvePredictionsFile(abs, split, shown);
  const rel = relative(workspace, file);
  const rows = filterPredictions(loadPredictions(file, rel), { ...(dset ? { dset } : {}), split });
  return { rows, file: rel };
}
